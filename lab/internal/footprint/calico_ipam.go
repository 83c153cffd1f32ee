// IPAM as on-call people meet it: pods that ask for a pool by annotation, the CNI DEL that frees
// a pod's address (or never ran: the address and its handle stay after the pod is gone), a
// deleted node's blocks, and the empty blocks of a deleted pool.

package footprint

import (
	"context"
	"encoding/json"
	"log"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	// PoolsAnnotation is Calico's per-pod choice of pools (a JSON list of names or CIDRs).
	PoolsAnnotation = "cni.projectcalico.org/ipv4pools"
	// CNIDelAnnotation set to "crash" on a pod makes its CNI DEL fail when it is deleted, as a
	// crashed node or runtime leaves it: its address stays allocated (`lab break ipam-leak`).
	CNIDelAnnotation = "lab.grappe.dev/cni-del"
)

// leak is an address whose pod is gone but whose release never ran.
type leak struct {
	pod *corev1.Pod
	ip  string
}

// podPool is the pool a pod's address comes from: the first enabled pool its annotation
// names (by name or CIDR), none when it names only pools that do not exist, else the default
// one. Caller holds k.mu.
func (k *calico) podPool(p *corev1.Pod) (pool, bool) {
	text := p.Annotations[PoolsAnnotation]
	if text == "" {
		return k.poolFor()
	}
	var wanted []string
	if err := json.Unmarshal([]byte(text), &wanted); err != nil {
		log.Printf("footprint: pod %s/%s: %s is not a JSON list: %v", p.Namespace, p.Name, PoolsAnnotation, err)
		return pool{}, false
	}
	for _, w := range wanted {
		for _, pl := range k.pools {
			if !pl.disabled && (pl.name == w || pl.cidr.String() == w) {
				return pl, true
			}
		}
	}
	return pool{}, false
}

// crashedDel records a deleted pod's address as leaked instead of releasing it.
func (k *calico) crashedDel(pod *corev1.Pod, ip string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	node := pod.Spec.NodeName
	k.leaked[node] = append(k.leaked[node], leak{pod: pod, ip: ip})
}

// releaseLeaked releases the addresses recorded as leaked on node (its break healed); it says
// how many.
func (k *calico) releaseLeaked(ctx context.Context, node string) int {
	k.mu.Lock()
	leaks := k.leaked[node]
	delete(k.leaked, node)
	k.mu.Unlock()
	for _, l := range leaks {
		// Grappe may have released (and a rollback put back) the address meanwhile.
		if addr, err := netip.ParseAddr(l.ip); err == nil {
			k.refresh(ctx, node, addr)
		}
		k.release(l.pod, l.ip)
	}
	return len(leaks)
}

// dropStrayBlocks deletes the empty blocks that no pool holds any more (a deleted pool's), as
// Calico's IPAM garbage collection does, with their affinities.
func (k *calico) dropStrayBlocks(ctx context.Context) {
	k.mu.Lock()
	var stray []*block
	for _, b := range k.blocks {
		if b.free() != len(b.alloc) || !b.written {
			continue
		}
		held := false
		for _, p := range k.pools {
			if p.cidr.Contains(b.cidr.Addr()) {
				held = true
				break
			}
		}
		if !held {
			stray = append(stray, b)
		}
	}
	for _, b := range stray {
		delete(k.blocks, b.name)
		kept := k.byNode[b.node][:0]
		for _, other := range k.byNode[b.node] {
			if other != b {
				kept = append(kept, other)
			}
		}
		k.byNode[b.node] = kept
	}
	k.mu.Unlock()
	for _, b := range stray {
		log.Printf("footprint: block %s (%s) is in no pool and empty: deleting it", b.name, b.cidr)
		_ = k.c.dyn.Resource(k.res(blockaffinities)).Delete(ctx, b.node+"-"+b.name, metav1.DeleteOptions{})
		_ = k.c.dyn.Resource(k.res(ipamblocks)).Delete(ctx, b.name, metav1.DeleteOptions{})
	}
}

// release frees a pod's address (Calico's CNI DEL: the pod deleted, or its sandbox torn down
// once it finished) while the address is still the pod's (see [owns]). An address given to
// another pod since (the first release already done, or a restart after a lost write) stays
// that pod's.
func (k *calico) release(pod *corev1.Pod, ip string) {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return
	}
	handle := podHandle(pod)
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, b := range k.byNode[pod.Spec.NodeName] {
		if ord := b.ordinal(addr); ord >= 0 {
			if idx := b.alloc[ord]; idx < 0 || !owns(b.attrs[idx], pod, handle) {
				return
			}
			if attr, ok := b.releaseOrdinal(ord); ok {
				k.dirty[b.name] = true
				k.handles = append(k.handles, strings.ToLower(attr.HandleID))
			}
			return
		}
	}
}

// podHandle is the IPAM handle of a pod's address, from the container ID Calico's CNI wrote on
// it ("" without one).
func podHandle(pod *corev1.Pod) string {
	if cid := pod.Annotations[containerIDAnnotation]; cid != "" {
		return handlePrefix + cid
	}
	return ""
}

// owns says whether an allocation is the pod's: by its handle when the pod carries its
// container ID, else (a pod whose address patch never landed) by the pod its attributes name.
func owns(attr attribute, pod *corev1.Pod, handle string) bool {
	if handle != "" {
		return strings.EqualFold(attr.HandleID, handle)
	}
	return attr.Secondary["namespace"] == pod.Namespace && attr.Secondary["pod"] == pod.Name
}

// releaseNode drops the IPAM of a deleted node (calico-kube-controllers' node controller).
func (k *calico) releaseNode(ctx context.Context, node string) {
	k.mu.Lock()
	blocks := k.byNode[node]
	delete(k.byNode, node)
	for _, b := range blocks {
		delete(k.blocks, b.name)
		delete(k.dirty, b.name)
	}
	present := k.present
	k.mu.Unlock()
	if !present {
		return
	}
	for _, b := range blocks {
		_ = k.c.dyn.Resource(k.res(blockaffinities)).Delete(ctx, node+"-"+b.name, metav1.DeleteOptions{})
		_ = k.c.dyn.Resource(k.res(ipamblocks)).Delete(ctx, b.name, metav1.DeleteOptions{})
	}
}
