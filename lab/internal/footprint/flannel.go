package footprint

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/netip"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"grappe.dev/lab/internal/stages"
)

// flannel plays flanneld (node annotations, NetworkUnavailable) and the host-local IPAM of
// Flannel's CNI plugin (addresses from the node's spec.podCIDR; .0 and .1 are not handed out).
type flannel struct {
	c  *Controller
	mu sync.Mutex
	// used addresses per node
	used map[string]map[netip.Addr]bool
}

func newFlannel(c *Controller) *flannel {
	return &flannel{c: c, used: map[string]map[netip.Addr]bool{}}
}

func randomMAC() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	b[0] = (b[0] | 2) & 0xfe
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5])
}

func (f *flannel) nodeState(node *corev1.Node, pod *corev1.Pod) (map[string]*string, *corev1.NodeCondition) {
	ann := map[string]*string{}
	if pod == nil {
		return ann, nil
	}
	set := func(k, v string) {
		if node.Annotations[k] == "" || k != "flannel.alpha.coreos.com/backend-data" {
			vv := v
			ann[k] = &vv
		}
	}
	set("flannel.alpha.coreos.com/backend-data", fmt.Sprintf(`{"VNI":1,"VtepMAC":"%s"}`, randomMAC()))
	set("flannel.alpha.coreos.com/backend-type", "vxlan")
	set("flannel.alpha.coreos.com/kube-subnet-manager", "true")
	set("flannel.alpha.coreos.com/public-ip", nodeInternalIP(node))
	return ann, &corev1.NodeCondition{
		Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse,
		Reason: "FlannelIsUp", Message: "Flannel is running on this node",
	}
}

func (f *flannel) assign(ctx context.Context, node *corev1.Node, pods []*corev1.Pod) error {
	prefix, err := netip.ParsePrefix(node.Spec.PodCIDR)
	if err != nil {
		return nil // no podCIDR yet: flannel waits for it
	}
	f.mu.Lock()
	used := f.usedOn(node.Name)
	type pick struct {
		pod *corev1.Pod
		ip  string
	}
	var picks []pick
	addr := prefix.Addr().Next().Next() // .0 is the network, .1 is cni0
	for _, p := range pods {
		for prefix.Contains(addr) && used[addr] {
			addr = addr.Next()
		}
		if !prefix.Contains(addr) {
			break
		}
		used[addr] = true
		picks = append(picks, pick{pod: p, ip: addr.String()})
	}
	f.mu.Unlock()
	for _, pk := range picks {
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{stages.PodIPAnnotation: pk.ip}}})
		_, err := f.c.client.CoreV1().Pods(pk.pod.Namespace).Patch(ctx, pk.pod.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "flannel"})
		if err == nil {
			f.c.addressed.Store(pk.pod.UID, struct{}{})
		}
		if apierrors.IsNotFound(err) {
			f.release(node.Name, pk.ip)
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// usedOn returns the node's used set, rebuilt from its pods the first time. Caller holds f.mu.
func (f *flannel) usedOn(node string) map[netip.Addr]bool {
	used, ok := f.used[node]
	if ok {
		return used
	}
	used = map[netip.Addr]bool{}
	for _, p := range f.c.podsOn(node) {
		if a, err := netip.ParseAddr(p.Annotations[stages.PodIPAnnotation]); err == nil {
			used[a] = true
		}
	}
	f.used[node] = used
	return used
}

func (f *flannel) release(node, ip string) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if used, ok := f.used[node]; ok {
		delete(used, a)
	}
}

func (f *flannel) forget(node string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.used, node)
}
