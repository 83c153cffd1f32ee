package footprint

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"grappe.dev/lab/internal/stages"
)

// crashInterval is how often a crash-looping calico-node "restarts".
const crashInterval = 20 * time.Second

func everything() labels.Selector { return labels.Everything() }

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// playAgentHealth makes calico-node's pod status show what an injected failure does to the real
// one (CrashLoopBackOff with its last log line, or a failing readiness probe), and restores it
// when the failure is healed.
func (c *Controller) playAgentHealth(ctx context.Context, node *corev1.Node, pod *corev1.Pod, breaks map[string]bool) error {
	idx := -1
	for i, cs := range pod.Status.ContainerStatuses {
		if cs.Name == "calico-node" {
			idx = i
		}
	}
	if idx < 0 {
		return nil
	}
	statuses := append([]corev1.ContainerStatus{}, pod.Status.ContainerStatuses...)
	cs := statuses[idx]
	down := c.bgpPeersDown(node)
	now := metav1.Now()
	switch {
	case breaks["duplicate-ip"]:
		c.mu.Lock()
		last := c.lastCrash[pod.Name]
		due := time.Since(last) >= crashInterval
		if due {
			c.lastCrash[pod.Name] = time.Now()
		}
		c.mu.Unlock()
		if cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff" && !due {
			return nil
		}
		ip := ""
		if other, err := c.nodes.Get(node.Annotations[DuplicateOfAnnotation]); err == nil {
			ip = nodeInternalIP(other)
		}
		logLine := fmt.Sprintf("%s [WARNING][9] startup/startup.go 1173: Calico node '%s' is already using the IPv4 address %s.",
			now.UTC().Format("2006-01-02 15:04:05.000"), node.Annotations[DuplicateOfAnnotation], ip)
		cs.Ready = false
		started := false
		cs.Started = &started
		cs.RestartCount++
		cs.LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 1, Reason: "Error", Message: logLine + "\nTerminating",
			StartedAt: metav1.NewTime(now.Add(-2 * time.Second)), FinishedAt: now,
		}}
		cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
			Reason:  "CrashLoopBackOff",
			Message: fmt.Sprintf("back-off 5m0s restarting failed container=calico-node pod=%s_%s(%s)", pod.Name, pod.Namespace, pod.UID),
		}}
		statuses[idx] = cs
		if err := c.patchPodStatus(ctx, pod, statuses, false, "containers with unready status: [calico-node]"); err != nil {
			return err
		}
		c.event(ctx, pod, corev1.EventTypeWarning, "BackOff",
			fmt.Sprintf("Back-off restarting failed container calico-node in pod %s_%s(%s)", pod.Name, pod.Namespace, pod.UID))
	case breaks["calico-not-ready"] || len(down) > 0:
		if !cs.Ready && cs.State.Running != nil {
			return nil
		}
		peers := c.peerIPs(node.Name)
		if len(down) > 0 {
			peers = down
		}
		cs.Ready = false
		started := true
		cs.Started = &started
		if cs.State.Running == nil {
			cs.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}
		}
		statuses[idx] = cs
		if err := c.patchPodStatus(ctx, pod, statuses, false, "containers with unready status: [calico-node]"); err != nil {
			return err
		}
		c.event(ctx, pod, corev1.EventTypeWarning, "Unhealthy",
			"Readiness probe failed: calico/node is not ready: BIRD is not ready: BGP not established with "+strings.Join(peers, ","))
	default:
		if cs.Ready && cs.State.Running != nil {
			return nil
		}
		c.mu.Lock()
		delete(c.lastCrash, pod.Name)
		c.mu.Unlock()
		cs.Ready = true
		started := true
		cs.Started = &started
		if cs.State.Running == nil {
			cs.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}
		}
		statuses[idx] = cs
		return c.patchPodStatus(ctx, pod, statuses, true, "")
	}
	return nil
}

// BGPSessionDown says whether the BGP session between nodes a and b is down (`lab break
// bgp-peer-down`): the break of either names the other (a session is down at both ends).
func BGPSessionDown(a, b *corev1.Node) bool {
	names := func(x, y *corev1.Node) bool {
		return Breaks(x)["bgp-peer-down"] && x.Annotations[BGPPeerAnnotation] == y.Name
	}
	return a.Name != b.Name && (names(a, b) || names(b, a))
}

// bgpPeersDown is the addresses of the nodes node has no BGP session with: the peer its own
// break names, and the nodes whose break names it (found through [bgpPeerIndex]: a scan of every
// node on every reconcile took 80 % of the footprint's CPU at 5,000 nodes and held the load pods
// to a third of their pace).
func (c *Controller) bgpPeersDown(node *corev1.Node) []string {
	peers := map[string]*corev1.Node{}
	if peer := node.Annotations[BGPPeerAnnotation]; peer != "" {
		if n, err := c.nodes.Get(peer); err == nil {
			peers[n.Name] = n
		}
	}
	if objs, err := c.nodeIndex.ByIndex(bgpPeerIndex, node.Name); err == nil {
		for _, o := range objs {
			if n, ok := o.(*corev1.Node); ok {
				peers[n.Name] = n
			}
		}
	}
	var down []string
	for _, n := range peers {
		if BGPSessionDown(node, n) {
			down = append(down, nodeInternalIP(n))
		}
	}
	sort.Strings(down)
	return down
}

// bgpPeerDownOf indexes a node under the peer its bgp-peer-down break names.
func bgpPeerDownOf(obj any) ([]string, error) {
	n, ok := obj.(*corev1.Node)
	if !ok || !Breaks(n)["bgp-peer-down"] || n.Annotations[BGPPeerAnnotation] == "" {
		return nil, nil
	}
	return []string{n.Annotations[BGPPeerAnnotation]}, nil
}

// peerIPs lists the other nodes' addresses (BGP peers in a full mesh), at most five.
func (c *Controller) peerIPs(self string) []string {
	nodes, err := c.nodes.List(everything())
	if err != nil {
		return nil
	}
	var ips []string
	for _, n := range nodes {
		if n.Name != self && len(ips) < 5 {
			ips = append(ips, nodeInternalIP(n))
		}
	}
	return ips
}

func (c *Controller) patchPodStatus(ctx context.Context, pod *corev1.Pod, statuses []corev1.ContainerStatus, ready bool, message string) error {
	status := corev1.ConditionFalse
	reason := "ContainersNotReady"
	if ready {
		status, reason, message = corev1.ConditionTrue, "", ""
	}
	conditions := make([]corev1.PodCondition, 0, len(pod.Status.Conditions))
	for _, cond := range pod.Status.Conditions {
		if cond.Type == corev1.PodReady || cond.Type == corev1.ContainersReady {
			if cond.Status != status {
				cond.LastTransitionTime = metav1.Now()
			}
			cond.Status, cond.Reason, cond.Message = status, reason, message
		}
		conditions = append(conditions, cond)
	}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{
		"conditions":        conditions,
		"containerStatuses": statuses,
	}})
	if err != nil {
		return err
	}
	_, err = c.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	return err
}

// readyAgain plays the kubelet of a node that is back. The node lifecycle controller marks the
// pods of a node that missed its heartbeats not Ready (the Ready condition only); a kubelet sets
// them Ready again once it reports, KWOK does not, so on a busy lab they stayed not Ready for
// good. Pods whose containers are not ready (a crash-looping calico-node, a pod still being
// created) and nodes whose kubelet is stopped (lab break node-notready) are left as they are.
func (c *Controller) readyAgain(ctx context.Context, node *corev1.Node) error {
	if node.Annotations[stages.KubeletAnnotation] == "stopped" {
		return nil
	}
	if ready := findNodeCondition(node, corev1.NodeReady); ready == nil || ready.Status != corev1.ConditionTrue {
		return nil
	}
	for _, p := range c.podsOn(node.Name) {
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
			continue
		}
		if podCondition(p, corev1.ContainersReady) != corev1.ConditionTrue || podCondition(p, corev1.PodReady) != corev1.ConditionFalse {
			continue
		}
		conditions := make([]corev1.PodCondition, 0, len(p.Status.Conditions))
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady {
				cond.Status, cond.Reason, cond.Message = corev1.ConditionTrue, "", ""
				cond.LastTransitionTime = metav1.Now()
			}
			conditions = append(conditions, cond)
		}
		patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": conditions}})
		if err != nil {
			return err
		}
		_, err = c.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("pod %s/%s Ready again: %w", p.Namespace, p.Name, err)
		}
	}
	return nil
}

func podCondition(p *corev1.Pod, t corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return corev1.ConditionUnknown
}
