// What the Calico footprint reads back and writes through the API: the blocks that exist after a
// restart, the blocks, handles and tunnel addresses it writes, in the group the cluster serves.

package footprint

import (
	"context"
	"fmt"
	"log"
	"maps"
	"net/netip"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// load reads the IPAM blocks that exist (after a restart of this controller).
func (k *calico) load(ctx context.Context) error {
	list, err := k.c.dyn.Resource(k.res(ipamblocks)).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, item := range list.Items {
		cidrText, _, _ := unstructured.NestedString(item.Object, "spec", "cidr")
		cidr, err := netip.ParsePrefix(cidrText)
		if err != nil {
			continue
		}
		if b, ok := k.blocks[item.GetName()]; ok {
			// Already claimed here: one object per block, or two copies allocate the same
			// ordinals to two pods and a release in one is lost by a write of the other.
			b.merge(&item)
			continue
		}
		affinity, _, _ := unstructured.NestedString(item.Object, "spec", "affinity")
		b := &block{name: item.GetName(), cidr: cidr, node: strings.TrimPrefix(affinity, "host:"), written: true}
		b.setFrom(&item)
		k.blocks[b.name] = b
		k.byNode[b.node] = append(k.byNode[b.node], b)
	}
	k.loaded = true
	return nil
}

// flush writes blocks changed by releases and deletes released handles.
func (k *calico) flush(ctx context.Context) error {
	k.mu.Lock()
	var blocks []*block
	for name := range k.dirty {
		if b, ok := k.blocks[name]; ok {
			blocks = append(blocks, b)
		}
	}
	k.dirty = map[string]bool{}
	handles := k.handles
	k.handles = nil
	k.mu.Unlock()
	for i, b := range blocks {
		if err := k.writeBlock(ctx, b); err != nil {
			// What was not written goes to the next flush (the global pass comes every few
			// seconds): dropped, a released address stayed allocated in the API for good.
			k.retry(blocks[i+1:], handles)
			return err
		}
	}
	var failed []string
	for _, h := range handles {
		err := k.c.dyn.Resource(k.res(ipamhandles)).Delete(ctx, h, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			log.Printf("footprint: delete handle %s (again at the next flush): %v", h, err)
			failed = append(failed, h)
		}
	}
	k.retry(nil, failed)
	return nil
}

// retry marks blocks dirty again (those the footprint still knows) and puts handles back on
// the list to delete, for the next flush.
func (k *calico) retry(blocks []*block, handles []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, b := range blocks {
		if k.blocks[b.name] == b {
			k.dirty[b.name] = true
		}
	}
	k.handles = append(k.handles, handles...)
}

// writeBlock writes a block (see [calico.putBlock]). A write the API refuses (a timeout on a
// loaded machine) leaves the block due for the next flush, whoever asked for it: the pods'
// addresses (assign) as much as the releases (flush). Dropped, the API kept blocks without
// allocations that pods held, and a restart of the footprint gave those addresses again.
func (k *calico) writeBlock(ctx context.Context, b *block) error {
	err := k.putBlock(ctx, b)
	if err != nil {
		k.retry([]*block{b}, nil)
	}
	return err
}

// putBlock writes a block as it is in memory now (its BlockAffinity first when the block is
// new, as Calico's IPAM claims the affinity before the block). No lock is held during the API
// calls; writes of one block are serialized.
func (k *calico) putBlock(ctx context.Context, b *block) error {
	b.writeMu.Lock()
	defer b.writeMu.Unlock()
	k.mu.Lock()
	obj := b.object(k.apiVersion())
	isNew := !b.written
	node, cidr, name := b.node, b.cidr, b.name
	// The ordinals this write carries; those changed while it is in flight stay pending.
	carried := maps.Clone(b.pending)
	k.mu.Unlock()
	if isNew {
		// crd.projectcalico.org/v1 spells the flag as a string, projectcalico.org/v3 as a boolean.
		var deleted any = "false"
		if k.res(blockaffinities).Group == nativeV3API.group {
			deleted = false
		}
		affinity := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": k.apiVersion(),
			"kind":       "BlockAffinity",
			"metadata":   map[string]any{"name": node + "-" + name},
			"spec": map[string]any{
				"cidr":    cidr.String(),
				"deleted": deleted,
				"node":    node,
				"state":   "confirmed",
			},
		}}
		if err := k.applyObject(ctx, k.res(blockaffinities), affinity); err != nil {
			return err
		}
	}
	if isNew {
		if err := k.applyObject(ctx, k.res(ipamblocks), obj); err != nil {
			return err
		}
		k.mu.Lock()
		b.written = true
		b.wrote(carried)
		k.mu.Unlock()
		return nil
	}
	return k.updateBlock(ctx, b)
}

// updateBlock writes an existing block as Calico's IPAM does: read, merge what another writer
// changed (Grappe releasing leaked addresses, its rollback), write with the resourceVersion
// read, again on a conflict.
func (k *calico) updateBlock(ctx context.Context, b *block) error {
	res := k.res(ipamblocks)
	for attempt := 0; ; attempt++ {
		current, err := k.c.dyn.Resource(res).Get(ctx, b.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		k.mu.Lock()
		if current.GetResourceVersion() != b.rv {
			b.merge(current)
		}
		obj := b.object(k.apiVersion())
		obj.SetResourceVersion(current.GetResourceVersion())
		carried := maps.Clone(b.pending)
		k.mu.Unlock()
		updated, err := k.c.dyn.Resource(res).Update(ctx, obj, metav1.UpdateOptions{FieldManager: calicoFieldManager})
		if apierrors.IsConflict(err) && attempt < 5 {
			continue
		}
		if err != nil {
			return err
		}
		k.mu.Lock()
		b.rv = updated.GetResourceVersion()
		b.wrote(carried)
		k.mu.Unlock()
		return nil
	}
}

// refresh takes another writer's changes to node's block holding addr, if any.
func (k *calico) refresh(ctx context.Context, node string, addr netip.Addr) {
	k.mu.Lock()
	var b *block
	for _, c := range k.byNode[node] {
		if c.cidr.Contains(addr) {
			b = c
		}
	}
	k.mu.Unlock()
	if b == nil {
		return
	}
	current, err := k.c.dyn.Resource(k.res(ipamblocks)).Get(ctx, b.name, metav1.GetOptions{})
	if err != nil {
		return
	}
	k.mu.Lock()
	if current.GetResourceVersion() != b.rv {
		b.merge(current)
	}
	k.mu.Unlock()
}

func (k *calico) applyObject(ctx context.Context, res schema.GroupVersionResource, obj *unstructured.Unstructured) error {
	data, err := obj.MarshalJSON()
	if err != nil {
		return err
	}
	force := true
	_, err = k.c.dyn.Resource(res).Patch(ctx, obj.GetName(), types.ApplyPatchType, data,
		metav1.PatchOptions{FieldManager: calicoFieldManager, Force: &force})
	return err
}

// poolFor picks the enabled pool a node's blocks come from.
func (k *calico) poolFor() (pool, bool) {
	for _, p := range k.pools {
		if !p.disabled && p.name == "default-ipv4-ippool" {
			return p, true
		}
	}
	for _, p := range k.pools {
		if !p.disabled {
			return p, true
		}
	}
	return pool{}, false
}

// claim returns a block of pool p affine to node with a free address, claiming the next free
// block of the pool in memory when needed (writeBlock puts it in the API). Caller holds k.mu.
func (k *calico) claim(node string, p pool) (*block, error) {
	for _, b := range k.byNode[node] {
		if b.free() > 0 && p.cidr.Contains(b.cidr.Addr()) {
			return b, nil
		}
	}
	size := 1 << (32 - p.blockSize)
	candidate := netip.PrefixFrom(p.cidr.Addr(), p.blockSize)
	for p.cidr.Contains(candidate.Addr()) {
		if _, taken := k.blocks[blockName(candidate)]; !taken {
			b := &block{name: blockName(candidate), cidr: candidate, node: node, alloc: make([]int, size)}
			for i := range b.alloc {
				b.alloc[i] = -1
			}
			k.blocks[b.name] = b
			k.byNode[node] = append(k.byNode[node], b)
			return b, nil
		}
		next := candidate.Addr()
		for i := 0; i < size; i++ {
			next = next.Next()
		}
		candidate = netip.PrefixFrom(next, p.blockSize)
	}
	return nil, fmt.Errorf("IP pool %s is full", p.cidr)
}

// tunnelAddress returns (allocating once) the node's IPIP tunnel address.
func (k *calico) tunnelAddress(ctx context.Context, node string) (string, error) {
	handle := "ipip-tunnel-addr-" + node
	k.mu.Lock()
	if !k.loaded {
		// Before the blocks that exist are read, a block claimed here could be one the API
		// has (a node's own after a restart). The global pass comes back to the node.
		k.mu.Unlock()
		return "", nil
	}
	for _, b := range k.byNode[node] {
		for ord, a := range b.alloc {
			if a >= 0 && b.attrs[a].HandleID == handle {
				addr := b.cidr.Addr()
				for i := 0; i < ord; i++ {
					addr = addr.Next()
				}
				written := b.written
				k.mu.Unlock()
				if !written {
					// A previous write failed: retry it.
					if err := k.writeBlock(ctx, b); err != nil {
						return "", err
					}
				}
				return addr.String(), nil
			}
		}
	}
	p, ok := k.poolFor()
	if !ok {
		k.mu.Unlock()
		return "", fmt.Errorf("no enabled IP pool")
	}
	b, err := k.claim(node, p)
	if err != nil {
		k.mu.Unlock()
		return "", err
	}
	addr, _ := b.allocate(attribute{HandleID: handle, Secondary: map[string]string{"node": node, "type": "ipipTunnelAddress"}})
	k.mu.Unlock()
	if err := k.writeBlock(ctx, b); err != nil {
		return "", err
	}
	if err := k.createHandle(ctx, handle, b.cidr); err != nil {
		return "", err
	}
	return addr.String(), nil
}

func (k *calico) createHandle(ctx context.Context, handle string, cidr netip.Prefix) error {
	// A plain create (cheaper for the API server than an apply); a leftover is replaced.
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": k.apiVersion(),
		"kind":       "IPAMHandle",
		"metadata":   map[string]any{"name": strings.ToLower(handle)},
		"spec": map[string]any{
			"handleID": handle,
			"block":    map[string]any{cidr.String(): int64(1)},
			"deleted":  false,
		},
	}}
	_, err := k.c.dyn.Resource(k.res(ipamhandles)).Create(ctx, obj, metav1.CreateOptions{FieldManager: calicoFieldManager})
	if apierrors.IsAlreadyExists(err) {
		return k.applyObject(ctx, k.res(ipamhandles), obj)
	}
	return err
}
