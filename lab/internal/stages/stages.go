// Package stages holds the KWOK stages that give the lab's fake nodes and pods their lifecycle.
//
// They differ from KWOK's defaults where a kubeadm cluster differs from a generic one:
//   - A node is Ready only while a CNI configuration is present on it (the lab marks that with
//     the annotation lab.grappe.dev/cni-config, as the conflist in /etc/cni/net.d would); before
//     a CNI is installed it is NotReady with the kubelet's real message
//     ("container runtime network not ready ... cni plugin not initialized").
//   - A pod that is not hostNetwork stays ContainerCreating until a CNI gives it an address (the
//     lab's CNI footprint writes lab.grappe.dev/pod-ip, as Calico's CNI plugin writes
//     cni.projectcalico.org/podIP); hostNetwork pods run with the node's IP at once.
//   - Node conditions never include NetworkUnavailable: on a real cluster the CNI sets it.
package stages

import _ "embed"

// YAML is the stage configuration passed to `kwok --config`.
//
//go:embed stages.yaml
var YAML []byte

// Annotation names shared with the footprint controller.
const (
	CNIConfigAnnotation  = "lab.grappe.dev/cni-config"
	PodIPAnnotation      = "lab.grappe.dev/pod-ip"
	InternalIPAnnotation = "lab.grappe.dev/internal-ip"
	ManagedAnnotation    = "kwok.x-k8s.io/node"
	// KubeletAnnotation set to "stopped" plays a dead kubelet (lab break node-notready).
	KubeletAnnotation = "lab.grappe.dev/kubelet"
)
