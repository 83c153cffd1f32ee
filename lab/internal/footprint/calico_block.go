// IPAM blocks as the footprint keeps them in memory: a pool, a block with its allocations
// (ordinal -> attribute) and the object it writes in either Calico API group.

package footprint

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

type pool struct {
	name      string
	cidr      netip.Prefix
	blockSize int
	ipipMode  string
	disabled  bool
}

type attribute struct {
	HandleID  string            `json:"handle_id"`
	Secondary map[string]string `json:"secondary"`
}

type block struct {
	name  string
	cidr  netip.Prefix
	node  string
	alloc []int // per ordinal: -1 when free, else index into attrs
	attrs []attribute
	// written is set once the block (and its affinity) exist in the API.
	written bool
	// writeMu orders this block's writes: each write snapshots after the previous one.
	writeMu sync.Mutex
	// rv is the resourceVersion of the footprint's last write or read of the block; another
	// writer (Grappe releasing leaked addresses, a rollback) changes it.
	rv string
	// pending are the ordinals this footprint changed since its last write, each with the
	// number of its last change: they win over the API's copy when another writer changed the
	// block meanwhile, and a write clears only those it carried unchanged since.
	pending map[int]uint64
	changes uint64
}

func (b *block) touch(ord int) {
	if b.pending == nil {
		b.pending = map[int]uint64{}
	}
	b.changes++
	b.pending[ord] = b.changes
}

// wrote clears the pending ordinals a write carried (carried: pending as the write took
// it), except those changed again while it was in flight.
func (b *block) wrote(carried map[int]uint64) {
	for ord, change := range carried {
		if b.pending[ord] == change {
			delete(b.pending, ord)
		}
	}
}

func blockName(p netip.Prefix) string {
	return strings.NewReplacer(".", "-", "/", "-").Replace(p.String())
}

func (b *block) free() int {
	n := 0
	for _, a := range b.alloc {
		if a < 0 {
			n++
		}
	}
	return n
}

func (b *block) allocate(attr attribute) (netip.Addr, bool) {
	for ord, a := range b.alloc {
		if a >= 0 {
			continue
		}
		b.attrs = append(b.attrs, attr)
		b.alloc[ord] = len(b.attrs) - 1
		b.touch(ord)
		addr := b.cidr.Addr()
		for i := 0; i < ord; i++ {
			addr = addr.Next()
		}
		return addr, true
	}
	return netip.Addr{}, false
}

func (b *block) ordinal(addr netip.Addr) int {
	if !b.cidr.Contains(addr) {
		return -1
	}
	cur := b.cidr.Addr()
	for ord := range b.alloc {
		if cur == addr {
			return ord
		}
		cur = cur.Next()
	}
	return -1
}

// releaseOrdinal frees an address and drops its attribute (re-indexing the others, as Calico
// keeps attributes compact).
func (b *block) releaseOrdinal(ord int) (attribute, bool) {
	if ord < 0 || ord >= len(b.alloc) || b.alloc[ord] < 0 {
		return attribute{}, false
	}
	idx := b.alloc[ord]
	attr := b.attrs[idx]
	b.alloc[ord] = -1
	b.touch(ord)
	b.attrs = append(b.attrs[:idx], b.attrs[idx+1:]...)
	for i, a := range b.alloc {
		if a > idx {
			b.alloc[i] = a - 1
		}
	}
	return attr, true
}

func (b *block) object(apiVersion string) *unstructured.Unstructured {
	allocations := make([]any, len(b.alloc))
	var unallocated []int
	for i, a := range b.alloc {
		if a < 0 {
			allocations[i] = nil
			unallocated = append(unallocated, i)
		} else {
			allocations[i] = a
		}
	}
	attrs := make([]any, len(b.attrs))
	for i, a := range b.attrs {
		sec := map[string]any{}
		for k, v := range a.Secondary {
			sec[k] = v
		}
		attrs[i] = map[string]any{"handle_id": a.HandleID, "secondary": sec}
	}
	if unallocated == nil {
		unallocated = []int{}
	}
	unalloc := make([]any, len(unallocated))
	for i, u := range unallocated {
		unalloc[i] = int64(u)
	}
	for i, a := range allocations {
		if n, ok := a.(int); ok {
			allocations[i] = int64(n)
		}
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": apiVersion,
		"kind":       "IPAMBlock",
		"metadata": map[string]any{
			"name":        b.name,
			"annotations": map[string]any{"projectcalico.org/metadata": "{}"},
		},
		"spec": map[string]any{
			"cidr":           b.cidr.String(),
			"affinity":       "host:" + b.node,
			"allocations":    allocations,
			"unallocated":    unalloc,
			"attributes":     attrs,
			"strictAffinity": false,
			"deleted":        false,
			"sequenceNumber": time.Now().UnixNano(),
		},
	}}
}

// setFrom replaces the block's allocations and attributes with an API object's.
func (b *block) setFrom(item *unstructured.Unstructured) {
	b.alloc, b.attrs = nil, nil
	allocs, _, _ := unstructured.NestedSlice(item.Object, "spec", "allocations")
	for _, a := range allocs {
		switch v := a.(type) {
		case int64:
			b.alloc = append(b.alloc, int(v))
		case float64:
			b.alloc = append(b.alloc, int(v))
		default:
			b.alloc = append(b.alloc, -1)
		}
	}
	attrs, _, _ := unstructured.NestedSlice(item.Object, "spec", "attributes")
	for _, a := range attrs {
		m, _ := a.(map[string]any)
		attr := attribute{Secondary: map[string]string{}}
		attr.HandleID, _ = m["handle_id"].(string)
		if sec, ok := m["secondary"].(map[string]any); ok {
			for kk, vv := range sec {
				attr.Secondary[kk] = fmt.Sprint(vv)
			}
		}
		b.attrs = append(b.attrs, attr)
	}
	b.rv = item.GetResourceVersion()
}

// merge takes another writer's copy of the block, keeping what this footprint changed since
// its last write (its pending ordinals).
func (b *block) merge(item *unstructured.Unstructured) {
	type mine struct {
		allocated bool
		attr      attribute
	}
	kept := map[int]mine{}
	for ord := range b.pending {
		if ord < len(b.alloc) && b.alloc[ord] >= 0 {
			kept[ord] = mine{true, b.attrs[b.alloc[ord]]}
		} else {
			kept[ord] = mine{}
		}
	}
	pending := b.pending
	b.setFrom(item)
	for ord, m := range kept {
		if ord >= len(b.alloc) {
			continue
		}
		if b.alloc[ord] >= 0 {
			b.releaseOrdinal(ord)
		}
		if m.allocated {
			b.attrs = append(b.attrs, m.attr)
			b.alloc[ord] = len(b.attrs) - 1
		}
	}
	b.pending = pending
}
