package lab

// The IPAM failures: addresses leaked by a CNI DEL that never ran, and a small pool nearly
// filled by real pods. Both go through the footprint's IPAM as the real flow does (CNI ADD
// gives each pod its address and handle); `lab heal` undoes them.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"grappe.dev/lab/internal/config"
	"grappe.dev/lab/internal/footprint"
	"grappe.dev/lab/internal/stages"
)

const (
	// LeakNamespace holds the pods whose addresses `lab break ipam-leak` leaks.
	LeakNamespace = "lab-ipam-leak"
	// SmallPool is the pool `lab break pool-nearly-full` fills.
	SmallPool = "lab-small-pool"
	// SmallPoolNamespace holds the pods that fill it.
	SmallPoolNamespace = "lab-pool"
	// smallPoolCIDR: 32 addresses in 4 blocks of 8, outside the lab's node, pod and service
	// ranges.
	smallPoolCIDR = "172.30.255.0/27"
	// smallPoolPods fill 29 of its 32 addresses: 90.6 %.
	smallPoolPods = 29
	// DefaultLeaks is how many addresses `ipam-leak` leaks without a count: above Grappe's
	// threshold (10).
	DefaultLeaks = 12
)

// breakIpamLeak leaks n addresses on node: pods get their address, then are deleted while
// their CNI DEL "crashes", so that each address and its handle stay. Only addresses no running
// or pending pod shows count: after a reinstall, fresh blocks may hand out again an address
// that a pod of the earlier install still shows, and that one is in use, not leaked (as
// `calicoctl ipam check` counts it). A pod given such an address is kept until the n leaks are
// made, so that its address is not handed out again, then deleted with a CNI DEL that runs.
func breakIpamLeak(ctx context.Context, cfg *config.Config, client kubernetes.Interface, args []string, out io.Writer) error {
	n := DefaultLeaks
	if len(args) > 0 {
		v, err := strconv.Atoi(args[0])
		if err != nil || v < 1 || v > 500 {
			return &UsageError{Err: errors.New("usage: lab break ipam-leak [N (1 to 500) [NODE]]")}
		}
		n = v
	}
	node := firstWorker(cfg)
	if len(args) > 1 {
		node = args[1]
	}
	target, err := client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("node %s: %w", node, err)
	}
	// The node's break first: the footprint releases a node's leaks once it is healed.
	breaks := footprint.Breaks(target)
	breaks["ipam-leak"] = true
	if err := patchNodeAnnotations(ctx, client, node, map[string]any{footprint.BreakAnnotation: joinSet(breaks)}); err != nil {
		return err
	}
	ips, by, err := leakAddresses(ctx, client, node, n)
	if err != nil {
		return err
	}
	if len(by) > 0 {
		fmt.Fprintf(out, "%d address(es) given were shown by other pods (as after a reinstall): released, not counted: %s\n", len(by), strings.Join(by, ", "))
	}
	fmt.Fprintf(out, "%d addresses leaked on %s (pods deleted, CNI DEL never ran): %s\n", n, node, strings.Join(ips, ", "))
	return nil
}

// leakAddresses makes n leaks on node (see [breakIpamLeak]): the addresses leaked, and those
// set aside with the pod that shows each.
func leakAddresses(ctx context.Context, client kubernetes.Interface, node string, n int) (ips, by []string, err error) {
	prefix := "leak-" + node + "-"
	annotations := map[string]string{footprint.CNIDelAnnotation: "crash"}
	var shown []string
	next := 0
	for round := 0; len(ips) < n && round < 4; round++ {
		want := n - len(ips)
		if err := createAddressedPods(ctx, client, LeakNamespace, prefix, node, next, want, annotations); err != nil {
			return nil, nil, err
		}
		// Read once the addresses are given: a pod that finished meanwhile (its address
		// released, then given again here) uses it no more.
		inUse, err := podAddresses(ctx, client)
		if err != nil {
			return nil, nil, err
		}
		for i := next; i < next+want; i++ {
			name := fmt.Sprintf("%s%d", prefix, i)
			pod, err := client.CoreV1().Pods(LeakNamespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return nil, nil, err
			}
			ip := pod.Annotations[stages.PodIPAnnotation]
			if holder, ok := inUse[ip]; ok {
				shown = append(shown, name)
				by = append(by, ip+" ("+holder+")")
				continue
			}
			ips = append(ips, ip)
			if err := deletePodNow(ctx, client, LeakNamespace, name); err != nil {
				return nil, nil, err
			}
		}
		next += want
	}
	// Their CNI DEL runs: the crash annotation removed first.
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{footprint.CNIDelAnnotation: nil}}})
	if err != nil {
		return nil, nil, err
	}
	for _, name := range shown {
		if _, err := client.CoreV1().Pods(LeakNamespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "lab"}); err != nil {
			return nil, nil, err
		}
		if err := deletePodNow(ctx, client, LeakNamespace, name); err != nil {
			return nil, nil, err
		}
	}
	if err := waitNoPods(ctx, client, LeakNamespace); err != nil {
		return nil, nil, err
	}
	if len(ips) < n {
		return nil, nil, fmt.Errorf("only %d of %d addresses leaked on %s: %d of those given are shown by other pods", len(ips), n, node, len(shown))
	}
	return ips, by, nil
}

// podAddresses is every address a pod that has not finished shows in its status, outside the
// leak namespace, with the pod that shows it: a finished pod uses none (as calicoctl and Grappe
// count it).
func podAddresses(ctx context.Context, client kubernetes.Interface) (map[string]string, error) {
	pods, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	shown := map[string]string{}
	for _, p := range pods.Items {
		if p.Namespace == LeakNamespace || footprint.Finished(&p) {
			continue
		}
		for _, ip := range p.Status.PodIPs {
			shown[ip.IP] = p.Namespace + "/" + p.Name
		}
		if p.Status.PodIP != "" {
			shown[p.Status.PodIP] = p.Namespace + "/" + p.Name
		}
	}
	return shown, nil
}

// waitNoPods waits (at most a minute) until namespace ns has no pod left.
func waitNoPods(ctx context.Context, client kubernetes.Interface, ns string) error {
	return poll(ctx, 60*time.Second, func() (bool, string, error) {
		left, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		return len(left.Items) == 0, fmt.Sprintf("%d pods of %s left", len(left.Items), ns), nil
	})
}

func deletePodNow(ctx context.Context, client kubernetes.Interface, ns, name string) error {
	zero := int64(0)
	err := client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// breakPoolNearlyFull creates a small pool and fills 29 of its 32 addresses with pods that ask
// for it (Calico's ipv4pools annotation).
func breakPoolNearlyFull(ctx context.Context, cfg *config.Config, client kubernetes.Interface, dyn dynamic.Interface, out io.Writer) error {
	pool := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "crd.projectcalico.org/v1",
		"kind":       "IPPool",
		"metadata":   map[string]any{"name": SmallPool},
		"spec": map[string]any{
			"cidr": smallPoolCIDR, "blockSize": int64(29), "ipipMode": "Always", "vxlanMode": "Never",
			"natOutgoing": true, "nodeSelector": "all()",
		},
	}}
	_, err := dyn.Resource(ippoolsGVR).Create(ctx, pool, metav1.CreateOptions{FieldManager: "lab"})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create IPPool %s (is Calico installed?): %w", SmallPool, err)
	}
	node := firstWorker(cfg)
	// Until the footprint has read the new pool, their CNI ADD waits (as Calico's fails and
	// the kubelet retries).
	annotations := map[string]string{footprint.PoolsAnnotation: fmt.Sprintf("[%q]", SmallPool)}
	if err := createAddressedPods(ctx, client, SmallPoolNamespace, "fill-", node, 0, smallPoolPods, annotations); err != nil {
		return err
	}
	fmt.Fprintf(out, "IPPool %s (%s, blocks of /29) holds %d pods of %s on %s: %d of 32 addresses allocated\n",
		SmallPool, smallPoolCIDR, smallPoolPods, SmallPoolNamespace, node, smallPoolPods)
	return nil
}

// createAddressedPods creates n bare pods named PREFIX<from>.. on node in namespace ns (created
// if need be) with annotations, and waits until the CNI gave each its address.
func createAddressedPods(ctx context.Context, client kubernetes.Interface, ns, prefix, node string, from, n int, annotations map[string]string) error {
	namespace := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	if _, err := client.CoreV1().Namespaces().Create(ctx, namespace, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	names := map[string]bool{}
	for i := from; i < from+n; i++ {
		name := fmt.Sprintf("%s%d", prefix, i)
		names[name] = true
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: annotations},
			Spec: corev1.PodSpec{
				NodeName:    node,
				Containers:  []corev1.Container{{Name: "pause", Image: "registry.k8s.io/pause:3.10"}},
				Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			},
		}
		if _, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return poll(ctx, 90*time.Second, func() (bool, string, error) {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		addressed := 0
		for _, p := range pods.Items {
			if names[p.Name] && p.Annotations[stages.PodIPAnnotation] != "" {
				addressed++
			}
		}
		return addressed >= n, fmt.Sprintf("%d of %d pods in %s have an address (is Calico installed?)", addressed, n, ns), nil
	})
}

// healIpam deletes the pods filling the small pool, then the pool (the footprint deletes its
// empty blocks); the leaks go with their node's break.
func healIpam(ctx context.Context, client kubernetes.Interface, dyn dynamic.Interface, out io.Writer) error {
	pods, err := client.CoreV1().Pods(SmallPoolNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	if len(pods.Items) > 0 {
		zero := int64(0)
		err := client.CoreV1().Pods(SmallPoolNamespace).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if err := waitNoPods(ctx, client, SmallPoolNamespace); err != nil {
			return err
		}
		fmt.Fprintf(out, "%d pods of %s deleted\n", len(pods.Items), SmallPoolNamespace)
	}
	if err := dyn.Resource(ippoolsGVR).Delete(ctx, SmallPool, metav1.DeleteOptions{}); err == nil {
		fmt.Fprintf(out, "IPPool %s deleted\n", SmallPool)
	}
	return nil
}
