package footprint

import (
	"context"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
)

// A block write the API refuses (a timeout under load) is written at the next flush, with its
// handle deleted after it: a release dropped on the first failure left the leaked addresses of
// a healed `lab break ipam-leak` allocated for good.
func TestFlushRetriesWhatTheAPIRefused(t *testing.T) {
	ctx := context.Background()
	const node = "rigel"
	b := emptyBlock("10-64-1-0-26", "10.64.1.0/26", node, true)
	b.attrs = []attribute{{HandleID: "k8s-pod-network.abc", Secondary: map[string]string{"node": node}}}
	b.alloc[3] = 0
	api := b.object(crdAPI.apiVersion())
	handle := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": crdAPI.apiVersion(), "kind": "IPAMHandle",
		"metadata": map[string]any{"name": "k8s-pod-network.abc"},
	}}
	dyn := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme(), api, handle)
	refusals := 1
	dyn.PrependReactor("update", ipamblocks, func(k8stesting.Action) (bool, runtime.Object, error) {
		if refusals > 0 {
			refusals--
			return true, nil, apierrors.NewTimeoutError("the server was unable to return a response in the time allotted", 1)
		}
		return false, nil, nil
	})
	k := newCalico(&Controller{dyn: dyn})
	k.hold(b)

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{containerIDAnnotation: "abc"}},
		Spec:       corev1.PodSpec{NodeName: node},
	}
	k.release(pod, "10.64.1.3")
	if err := k.flush(ctx); err == nil {
		t.Fatal("the first flush met the refused write and must say so")
	}
	if got := allocated(t, dyn, b.name, 3); !got {
		t.Fatal("the refused write changed the block")
	}
	if err := k.flush(ctx); err != nil {
		t.Fatalf("second flush: %v", err)
	}
	if allocated(t, dyn, b.name, 3) {
		t.Fatal("the second flush did not write the release")
	}
	_, err := dyn.Resource(crdAPI.res(ipamhandles)).Get(ctx, "k8s-pod-network.abc", metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("the handle should be deleted after the block: %v", err)
	}
}

// An ordinal allocated while a block's write is in flight stays pending, so that a later merge
// with the API's copy keeps it.
func TestWriteKeepsWhatChangedDuringIt(t *testing.T) {
	// The apply of the new block is where another allocation lands.
	k, b := newBlockWithWrite("10-64-2-0-26", "10.64.2.0/26", "vega", func(b *block) {
		b.allocate(attribute{HandleID: "second"})
	})
	if _, ok := b.allocate(attribute{HandleID: "first"}); !ok {
		t.Fatal("allocate")
	}
	if err := k.writeBlock(context.Background(), b); err != nil {
		t.Fatalf("write: %v", err)
	}
	if _, ok := b.pending[0]; ok {
		t.Fatalf("ordinal 0 was written: pending %v", b.pending)
	}
	if _, ok := b.pending[1]; !ok {
		t.Fatalf("ordinal 1 came during the write: pending %v", b.pending)
	}
}

// An ordinal the write carried and that changed again while it was in flight (a pod's address
// written, the pod finished and its address released meanwhile) stays pending: the release
// was not written, and the next merge with the API's copy must not bring the address back.
func TestAChangeDuringTheWriteOfTheSameOrdinalStaysPending(t *testing.T) {
	var addr netip.Addr
	k, b := newBlockWithWrite("10-64-5-0-26", "10.64.5.0/26", "adhara", func(b *block) {
		b.releaseOrdinal(b.ordinal(addr))
	})
	addr, ok := b.allocate(attribute{HandleID: "k8s-pod-network.job"})
	if !ok {
		t.Fatal("allocate")
	}
	if err := k.writeBlock(context.Background(), b); err != nil {
		t.Fatalf("write: %v", err)
	}
	if _, ok := b.pending[b.ordinal(addr)]; !ok {
		t.Fatalf("the release made during the write is no longer pending: %v", b.pending)
	}
}

// A pod's address whose block write the API refused (assign writes without a flush) stays due:
// the next flush writes it.
func TestARefusedAssignWriteStaysDue(t *testing.T) {
	ctx := context.Background()
	b := emptyBlock("10-64-3-0-26", "10.64.3.0/26", "deneb", true)
	dyn := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme(), b.object(crdAPI.apiVersion()))
	dyn.PrependReactor("update", ipamblocks, func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewTimeoutError("the server was unable to return a response in the time allotted", 1)
	})
	k := newCalico(&Controller{dyn: dyn})
	k.hold(b)
	b.allocate(attribute{HandleID: "k8s-pod-network.def"})
	if err := k.writeBlock(ctx, b); err == nil {
		t.Fatal("the refused write must be an error")
	}
	if !k.dirty[b.name] {
		t.Fatal("the refused block is not due for the next flush")
	}
}

// A release frees an address only while it is the pod's: by its handle, else by the pod its
// attributes name. A finished pod's address is released once, and its deletion later must not
// free the address a new pod got since.
func TestAReleaseFreesOnlyThePodsOwnAddress(t *testing.T) {
	b := emptyBlock("10-64-4-0-26", "10.64.4.0/26", "mira", false)
	k := newCalico(&Controller{})
	k.hold(b)
	addr, _ := b.allocate(attribute{HandleID: "k8s-pod-network.new", Secondary: map[string]string{"namespace": "demo", "pod": "new"}})
	old := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "old", Annotations: map[string]string{containerIDAnnotation: "old"}},
		Spec:       corev1.PodSpec{NodeName: "mira"},
	}
	k.release(old, addr.String())
	nameOnly := old.DeepCopy()
	nameOnly.Annotations = nil
	k.release(nameOnly, addr.String())
	if ord := b.ordinal(addr); b.alloc[ord] < 0 {
		t.Fatal("another pod's release freed the address of pod new")
	}
	owner := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "new", Annotations: map[string]string{containerIDAnnotation: "new"}},
		Spec:       corev1.PodSpec{NodeName: "mira"},
	}
	k.release(owner, addr.String())
	if ord := b.ordinal(addr); b.alloc[ord] >= 0 || !k.dirty[b.name] {
		t.Fatal("the owner's release did not free its address")
	}
}

// Blocks claimed before the existing ones were read stay one object each: load merges the API's
// copy into them. Two copies of a block gave the same address to two pods, and a release made
// in one was undone by a write of the other (a finished Job pod's address stayed allocated).
func TestLoadKeepsOneObjectPerBlock(t *testing.T) {
	ctx := context.Background()
	b := emptyBlock("10-64-6-0-26", "10.64.6.0/26", "wezen", true)
	b.allocate(attribute{HandleID: "ipip-tunnel-addr-wezen"})
	dyn := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme(), b.object(crdAPI.apiVersion()))
	k := newCalico(&Controller{dyn: dyn})
	k.hold(b)
	if err := k.load(ctx); err != nil {
		t.Fatalf("load: %v", err)
	}
	if len(k.byNode["wezen"]) != 1 || k.blocks[b.name] != b {
		t.Fatalf("load made a second copy of the block: %d in the node's list", len(k.byNode["wezen"]))
	}
}

// emptyBlock is a /26 block of node with every ordinal free (written: it exists in the API).
func emptyBlock(name, cidr, node string, written bool) *block {
	b := &block{name: name, cidr: netip.MustParsePrefix(cidr), node: node, written: written}
	b.alloc = make([]int, 64)
	for i := range b.alloc {
		b.alloc[i] = -1
	}
	return b
}

// newBlockWithWrite holds a new block in a footprint whose API runs during (under the
// footprint's lock) while the block's first write is in flight.
func newBlockWithWrite(name, cidr, node string, during func(b *block)) (*calico, *block) {
	b := emptyBlock(name, cidr, node, false)
	dyn := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
	k := newCalico(&Controller{dyn: dyn})
	k.hold(b)
	dyn.PrependReactor("patch", blockaffinities, func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, &unstructured.Unstructured{Object: map[string]any{"apiVersion": crdAPI.apiVersion(), "kind": "BlockAffinity"}}, nil
	})
	dyn.PrependReactor("patch", ipamblocks, func(k8stesting.Action) (bool, runtime.Object, error) {
		k.mu.Lock()
		defer k.mu.Unlock()
		during(b)
		return true, b.object(crdAPI.apiVersion()), nil
	})
	return k, b
}

// hold makes b one of the footprint's blocks in memory.
func (k *calico) hold(b *block) {
	k.blocks[b.name] = b
	k.byNode[b.node] = append(k.byNode[b.node], b)
}

func allocated(t *testing.T, dyn *dynamicfake.FakeDynamicClient, name string, ord int) bool {
	t.Helper()
	obj, err := dyn.Resource(schema.GroupVersionResource(crdAPI.res(ipamblocks))).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get block %s: %v", name, err)
	}
	allocs, _, _ := unstructured.NestedSlice(obj.Object, "spec", "allocations")
	return ord < len(allocs) && allocs[ord] != nil
}
