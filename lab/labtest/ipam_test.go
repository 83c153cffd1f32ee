package labtest

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"grappe.dev/lab/internal/stages"
)

// leakSkipsShownAddresses: a pod shows the address the node's block hands out next, while no
// block allocates it (as a pod of an earlier install does after Calico is reinstalled);
// `lab break ipam-leak 2` sets that address aside (released with a CNI DEL that runs) and
// leaks two others, so that every address it names is one `calicoctl ipam check` calls leaked.
func leakSkipsShownAddresses(t *testing.T, l *lab) {
	const node = "rigel"
	next := l.nextFreeAddress(node)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "earlier-install", Namespace: "default", Annotations: map[string]string{
			stages.PodIPAnnotation: next,
			// A pool that does not exist: the lab's CNI never gives it an address.
			"cni.projectcalico.org/ipv4pools": `["lab-no-such-pool"]`,
		}},
		Spec: corev1.PodSpec{
			NodeName:    node,
			Containers:  []corev1.Container{{Name: "pause", Image: "registry.k8s.io/pause:3.10"}},
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
		},
	}
	if _, err := l.client.CoreV1().Pods("default").Create(ctx(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer l.kubectl("delete", "pod", "-n", "default", "earlier-install", "--grace-period=0", "--ignore-not-found")
	eventually(t, 60*time.Second, "the earlier install's pod shows "+next, func() error {
		p, err := l.client.CoreV1().Pods("default").Get(ctx(), "earlier-install", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.PodIP != next {
			return fmt.Errorf("podIP %q", p.Status.PodIP)
		}
		return nil
	})

	out := l.labCmd("break", "ipam-leak", "2", node)
	if !strings.Contains(out, "1 address(es) given were shown by other pods (as after a reinstall): released, not counted: "+next+" (default/earlier-install)") {
		t.Fatalf("the address shown was not set aside:\n%s", out)
	}
	_, listed, _ := strings.Cut(out, "never ran): ")
	leaked := strings.Split(strings.TrimSpace(listed), ", ")
	if len(leaked) != 2 || slices.Contains(leaked, next) {
		t.Fatalf("leaked %v, want two addresses other than %s:\n%s", leaked, next, out)
	}
	eventually(t, 30*time.Second, next+" free again, the two leaked allocated", func() error {
		if l.allocated(node, next) {
			return fmt.Errorf("%s still allocated", next)
		}
		for _, ip := range leaked {
			if !l.allocated(node, ip) {
				return fmt.Errorf("%s not allocated", ip)
			}
		}
		return nil
	})
	l.labCmd("heal")
	eventually(t, 30*time.Second, "the leaked addresses released by heal", func() error {
		for _, ip := range leaked {
			if l.allocated(node, ip) {
				return fmt.Errorf("%s still allocated", ip)
			}
		}
		return nil
	})
}

// nodeBlocks returns the IPAM blocks affine to node.
func (l *lab) nodeBlocks(node string) []unstructured.Unstructured {
	l.t.Helper()
	blocks, err := l.dyn.Resource(ipamblocks).List(ctx(), metav1.ListOptions{})
	if err != nil {
		l.t.Fatal(err)
	}
	var mine []unstructured.Unstructured
	for _, b := range blocks.Items {
		if affinity, _, _ := unstructured.NestedString(b.Object, "spec", "affinity"); affinity == "host:"+node {
			mine = append(mine, b)
		}
	}
	return mine
}

// nextFreeAddress is the lowest free address of node's only block: the next one the lab's CNI
// (as Calico's) hands out there.
func (l *lab) nextFreeAddress(node string) string {
	l.t.Helper()
	blocks := l.nodeBlocks(node)
	if len(blocks) != 1 {
		l.t.Fatalf("%d blocks affine to %s, want 1", len(blocks), node)
	}
	for _, s := range blockSlots(l.t, blocks[0]) {
		if !s.allocated {
			return s.addr.String()
		}
	}
	l.t.Fatalf("the block of %s is full", node)
	return ""
}

// allocated says whether ip is allocated in one of node's blocks.
func (l *lab) allocated(node, ip string) bool {
	l.t.Helper()
	want, err := netip.ParseAddr(ip)
	if err != nil {
		l.t.Fatalf("%q: %v", ip, err)
	}
	for _, b := range l.nodeBlocks(node) {
		for _, s := range blockSlots(l.t, b) {
			if s.addr == want {
				return s.allocated
			}
		}
	}
	return false
}

// slot is one address of an IPAM block, in the block's order.
type slot struct {
	addr      netip.Addr
	allocated bool
}

// blockSlots reads an IPAM block's addresses and which of them are allocated.
func blockSlots(t *testing.T, b unstructured.Unstructured) []slot {
	t.Helper()
	text, _, _ := unstructured.NestedString(b.Object, "spec", "cidr")
	cidr, err := netip.ParsePrefix(text)
	if err != nil {
		t.Fatalf("block %s: cidr %q: %v", b.GetName(), text, err)
	}
	allocations, _, _ := unstructured.NestedSlice(b.Object, "spec", "allocations")
	slots := make([]slot, 0, len(allocations))
	addr := cidr.Addr()
	for _, a := range allocations {
		slots = append(slots, slot{addr: addr, allocated: a != nil})
		addr = addr.Next()
	}
	return slots
}
