// What the footprint writes to a node and reads from it: annotation and condition patches, the
// node's address, its CNI configurations and injected breaks, and the Events a kubelet records.

package footprint

import (
	"context"
	"fmt"
	"log"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"grappe.dev/lab/internal/stages"
)

func (c *Controller) patchNodeAnnotations(ctx context.Context, node *corev1.Node, annotations map[string]*string) error {
	changed := map[string]*string{}
	for k, v := range annotations {
		cur, has := node.Annotations[k]
		if (v == nil && has) || (v != nil && (!has || cur != *v)) {
			changed[k] = v
		}
	}
	if len(changed) == 0 {
		return nil
	}
	patch, err := jsonMarshal(map[string]any{"metadata": map[string]any{"annotations": changed}})
	if err != nil {
		return err
	}
	_, err = c.client.CoreV1().Nodes().Patch(ctx, node.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "calico-node"})
	return err
}

func (c *Controller) patchNodeConditions(ctx context.Context, node *corev1.Node, conditions []corev1.NodeCondition) error {
	var changed []corev1.NodeCondition
	for _, want := range conditions {
		cur := findNodeCondition(node, want.Type)
		if cur != nil && cur.Status == want.Status && cur.Reason == want.Reason && cur.Message == want.Message &&
			(want.LastTransitionTime.IsZero() || cur.LastTransitionTime.Equal(&want.LastTransitionTime)) {
			continue
		}
		if want.LastTransitionTime.IsZero() {
			want.LastTransitionTime = metav1.Now()
		}
		want.LastHeartbeatTime = want.LastTransitionTime
		changed = append(changed, want)
	}
	if len(changed) == 0 {
		return nil
	}
	patch, err := jsonMarshal(map[string]any{"status": map[string]any{"conditions": changed}})
	if err != nil {
		return err
	}
	_, err = c.client.CoreV1().Nodes().PatchStatus(ctx, node.Name, patch)
	return err
}

func findNodeCondition(node *corev1.Node, t corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == t {
			return &node.Status.Conditions[i]
		}
	}
	return nil
}

// nodeInternalIP is the node's InternalIP (from status, else from the lab annotation).
func nodeInternalIP(node *corev1.Node) string {
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return node.Annotations[stages.InternalIPAnnotation]
}

// CNIConfig returns the CNI configurations present on a node's host, in conflist order.
func CNIConfig(node *corev1.Node) []string {
	v := node.Annotations[stages.CNIConfigAnnotation]
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// Breaks returns the failure kinds injected on a node.
func Breaks(node *corev1.Node) map[string]bool {
	out := map[string]bool{}
	for _, k := range strings.Split(node.Annotations[BreakAnnotation], ",") {
		if k = strings.TrimSpace(k); k != "" {
			out[k] = true
		}
	}
	return out
}

func addToSet(set []string, v string) []string {
	for _, s := range set {
		if s == v {
			return set
		}
	}
	out := append(append([]string{}, set...), v)
	// conflist order: 10-calico.conflist sorts before 10-flannel.conflist
	sort.Strings(out)
	return out
}

// event records a Kubernetes Event about a pod, as the kubelet would.
func (c *Controller) event(ctx context.Context, pod *corev1.Pod, eventType, reason, message string) {
	now := metav1.Now()
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("%s.%x", pod.Name, now.UnixNano()),
			Namespace: pod.Namespace,
		},
		InvolvedObject: corev1.ObjectReference{
			Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID, APIVersion: "v1",
			FieldPath: "spec.containers{calico-node}",
		},
		Reason:         reason,
		Message:        message,
		Type:           eventType,
		Source:         corev1.EventSource{Component: "kubelet", Host: pod.Spec.NodeName},
		FirstTimestamp: now,
		LastTimestamp:  now,
		Count:          1,
	}
	if _, err := c.client.CoreV1().Events(pod.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		log.Printf("footprint: event %s on %s: %v", reason, pod.Name, err)
	}
}
