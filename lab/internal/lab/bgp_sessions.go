package lab

// The BGP sessions the lab's birdcl reports for a node: a full mesh of the nodes where
// calico-node set itself up (their projectcalico.org/IPv4Address), or, with the mesh off
// (BGPConfiguration default), the route reflectors (and, for a reflector, every other node);
// a session is down while `lab break bgp-peer-down` names it at either end.

import (
	"context"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"grappe.dev/lab/internal/footprint"
	"grappe.dev/lab/internal/hosts"
)

var bgpConfigsGVR = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "bgpconfigurations"}

const rrAnnotation = "projectcalico.org/RouteReflectorClusterID"

// BGPSessions lists node's sessions; running says whether calico-node runs there.
func (c labCluster) BGPSessions(ctx context.Context, node string) ([]hosts.BGPSession, bool, error) {
	client, rc, err := Clients(c.cfg)
	if err != nil {
		return nil, false, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, false, err
	}
	var self *corev1.Node
	for i := range nodes.Items {
		if nodes.Items[i].Name == node {
			self = &nodes.Items[i]
		}
	}
	pod, err := calicoNodePod(ctx, client, node)
	if err != nil {
		return nil, false, err
	}
	if self == nil || pod == nil || self.Annotations["projectcalico.org/IPv4Address"] == "" {
		return nil, false, nil
	}
	since := pod.CreationTimestamp.Time
	if pod.Status.StartTime != nil {
		since = pod.Status.StartTime.Time
	}
	mesh := true
	if dyn, err := dynamic.NewForConfig(rc); err == nil {
		if cfg, err := dyn.Resource(bgpConfigsGVR).Get(ctx, "default", metav1.GetOptions{}); err == nil {
			if on, found, _ := unstructured.NestedBool(cfg.Object, "spec", "nodeToNodeMeshEnabled"); found {
				mesh = on
			}
		}
	}
	selfRR := self.Annotations[rrAnnotation] != ""
	var out []hosts.BGPSession
	for _, n := range nodes.Items {
		addr := strings.Split(n.Annotations["projectcalico.org/IPv4Address"], "/")[0]
		if n.Name == node || addr == "" {
			continue
		}
		name := "Mesh_" + strings.ReplaceAll(addr, ".", "_")
		if !mesh {
			if !selfRR && n.Annotations[rrAnnotation] == "" {
				continue
			}
			name = "Node_" + strings.ReplaceAll(addr, ".", "_")
		}
		down := footprint.BGPSessionDown(self, &n)
		out = append(out, hosts.BGPSession{Name: name, Up: !down, Since: since})
	}
	return out, true, nil
}
