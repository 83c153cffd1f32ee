package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"grappe.dev/lab/internal/apply"
	"grappe.dev/lab/internal/config"
	"grappe.dev/lab/internal/footprint"
	"grappe.dev/lab/internal/hosts"
	"grappe.dev/lab/internal/proc"
	"grappe.dev/lab/internal/stages"
)

// OverlapPool is the IPPool `lab break pool-overlap` creates.
const OverlapPool = "lab-overlap-pool"

var ippoolsGVR = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "ippools"}

// nodeBreaks are the failures played by annotating a node.
var nodeBreaks = map[string]bool{
	"duplicate-ip": true, "wrong-ip": true, "calico-not-ready": true,
	"network-unavailable-stale": true, "node-notready": true, "bgp-peer-down": true,
	"tunnel-addr-missing": true,
}

// Break injects one failure and waits until its signal is visible.
func Break(ctx context.Context, dir, kind string, args []string, out io.Writer) error {
	cfg, err := config.Load(dir)
	if err != nil {
		return err
	}
	m := proc.Manager{Dir: dir}
	if kind == "apiserver" {
		if err := m.Kill("kube-apiserver"); err != nil {
			return err
		}
		fmt.Fprintf(out, "kube-apiserver stopped (killed); %s now refuses connections. `lab heal` restarts it.\n", cfg.APIServerURL())
		return nil
	}
	if kind == "mtu-mismatch" {
		return breakMTU(&cfg, args, out)
	}
	if kind == "slow-reset" || kind == "ssh-cut" {
		if len(args) == 0 {
			return &UsageError{Err: fmt.Errorf("usage: lab break %s NODE", kind)}
		}
		return breakHost(&cfg, m, kind, args[0], out)
	}
	client, rc, err := Clients(&cfg)
	if err != nil {
		return err
	}
	if kind == "pool-overlap" {
		return breakPoolOverlap(ctx, &cfg, rc, out)
	}
	if kind == "ipam-leak" {
		return breakIpamLeak(ctx, &cfg, client, args, out)
	}
	if kind == "pool-cross-subnet" {
		dyn, err := dynamic.NewForConfig(rc)
		if err != nil {
			return err
		}
		return breakCrossSubnet(ctx, dyn, out)
	}
	if kind == "pool-nearly-full" {
		dyn, err := dynamic.NewForConfig(rc)
		if err != nil {
			return err
		}
		return breakPoolNearlyFull(ctx, &cfg, client, dyn, out)
	}
	if kind == "kube-proxy-mode" {
		if len(args) == 0 || !map[string]bool{"iptables": true, "ipvs": true, "nftables": true}[args[0]] {
			return &UsageError{Err: errors.New("usage: lab break kube-proxy-mode iptables|ipvs|nftables")}
		}
		if err := setKubeProxyMode(ctx, client, args[0]); err != nil {
			return err
		}
		fmt.Fprintf(out, "kube-proxy's ConfigMap now says mode: %s; `lab heal` sets it back to the default\n", args[0])
		return nil
	}
	if !nodeBreaks[kind] {
		return &UsageError{Err: fmt.Errorf("unknown failure %q (see `lab help`)", kind)}
	}
	nodes, err := cfg.Nodes()
	if err != nil {
		return err
	}
	target := firstWorker(&cfg)
	if kind == "duplicate-ip" && cfg.Workers > 1 {
		target = config.WorkerName(1)
	}
	if len(args) > 0 {
		target = args[0]
	}
	node, err := client.CoreV1().Nodes().Get(ctx, target, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("node %s: %w", target, err)
	}
	breaks := footprint.Breaks(node)
	breaks[kind] = true
	annotations := map[string]any{footprint.BreakAnnotation: joinSet(breaks)}
	if kind == "duplicate-ip" {
		other := nodes[0].Name
		if other == target && len(nodes) > 1 {
			other = nodes[1].Name
		}
		if target != config.WorkerName(0) && cfg.Workers > 0 && len(args) < 2 {
			other = config.WorkerName(0)
		}
		if len(args) > 1 {
			other = args[1]
		}
		if other == target {
			return &UsageError{Err: errors.New("a node cannot duplicate its own address")}
		}
		annotations[footprint.DuplicateOfAnnotation] = other
	}
	if kind == "node-notready" {
		annotations[stages.KubeletAnnotation] = "stopped"
	}
	if kind == "bgp-peer-down" {
		peer := config.WorkerName(1)
		if len(args) > 1 {
			peer = args[1]
		}
		if peer == target || cfg.Workers < 2 && len(args) < 2 {
			return &UsageError{Err: errors.New("usage: lab break bgp-peer-down NODE PEER (two different nodes)")}
		}
		if _, err := client.CoreV1().Nodes().Get(ctx, peer, metav1.GetOptions{}); err != nil {
			return fmt.Errorf("node %s: %w", peer, err)
		}
		annotations[footprint.BGPPeerAnnotation] = peer
	}
	if err := patchNodeAnnotations(ctx, client, target, annotations); err != nil {
		return err
	}
	fmt.Fprintf(out, "injected %s on %s; waiting for its signal...\n", kind, target)
	signal, err := waitSignal(ctx, client, kind, target)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s\n", signal)
	return nil
}

// firstWorker is the node a failure goes to by default: the first worker, or the control plane
// of a lab without workers.
func firstWorker(cfg *config.Config) string {
	if cfg.Workers == 0 {
		return config.ControlPlaneName
	}
	return config.WorkerName(0)
}

func joinSet(set map[string]bool) string {
	var keys []string
	for k, v := range set {
		if v {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

func patchNodeAnnotations(ctx context.Context, c kubernetes.Interface, node string, annotations map[string]any) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": annotations}})
	if err != nil {
		return err
	}
	_, err = c.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "lab"})
	return err
}

func calicoNodePod(ctx context.Context, c kubernetes.Interface, node string) (*corev1.Pod, error) {
	pods, err := c.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{
		LabelSelector: "k8s-app=calico-node", FieldSelector: "spec.nodeName=" + node,
	})
	if err != nil || len(pods.Items) == 0 {
		return nil, err
	}
	return &pods.Items[0], nil
}

// breakHost plays a failure on a node's host: a slow kubeadm reset, or every SSH connection
// cut.
func breakHost(cfg *config.Config, m proc.Manager, kind, node string, out io.Writer) error {
	h, err := hosts.Get(cfg, node)
	if err != nil {
		return &UsageError{Err: err}
	}
	if kind == "slow-reset" {
		if err := os.WriteFile(h.File("state", hosts.SlowResetFlag), []byte("30s\n"), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(out, "kubeadm reset on %s now takes 30 s; `lab heal` makes it quick again\n", node)
		return nil
	}
	master := m.Pid(h.ProcName())
	if master == 0 {
		return fmt.Errorf("the sshd of %s does not run", node)
	}
	cut, err := proc.KillChildren(master)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%d SSH connection process(es) to %s killed\n", cut, node)
	return nil
}

// kubeProxyModeLine matches the mode line of kube-proxy's configuration.
var kubeProxyModeLine = regexp.MustCompile(`(?m)^mode:.*$`)

// setKubeProxyMode writes `mode: MODE` into kube-proxy's ConfigMap (kubeadm's
// KubeProxyConfiguration), as an admin who edits it would; "" is the default (iptables).
func setKubeProxyMode(ctx context.Context, c kubernetes.Interface, mode string) error {
	cm, err := c.CoreV1().ConfigMaps("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("kube-proxy's ConfigMap: %w", err)
	}
	conf := cm.Data["config.conf"]
	line := fmt.Sprintf("mode: %q", mode)
	if kubeProxyModeLine.MatchString(conf) {
		conf = kubeProxyModeLine.ReplaceAllString(conf, line)
	} else {
		conf += line + "\n"
	}
	cm.Data["config.conf"] = conf
	_, err = c.CoreV1().ConfigMaps("kube-system").Update(ctx, cm, metav1.UpdateOptions{FieldManager: "lab"})
	return err
}

// resetKubeProxyMode sets kube-proxy's mode back to the default; it says whether it changed.
func resetKubeProxyMode(ctx context.Context, c kubernetes.Interface) (bool, error) {
	cm, err := c.CoreV1().ConfigMaps("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if strings.Contains(cm.Data["config.conf"], `mode: ""`) {
		return false, nil
	}
	return true, setKubeProxyMode(ctx, c, "")
}

// waitSignal waits (up to 90 s) for what a failure makes visible, and describes it.
func waitSignal(ctx context.Context, c kubernetes.Interface, kind, target string) (string, error) {
	var signal string
	err := poll(ctx, 90*time.Second, func() (bool, string, error) {
		node, err := c.CoreV1().Nodes().Get(ctx, target, metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		switch kind {
		case "duplicate-ip", "calico-not-ready", "bgp-peer-down":
			pod, err := calicoNodePod(ctx, c, target)
			if err != nil || pod == nil {
				return false, "no calico-node pod on " + target + " (is Calico installed?)", nil
			}
			for _, cs := range pod.Status.ContainerStatuses {
				if cs.Name != "calico-node" || cs.Ready {
					continue
				}
				if kind == "duplicate-ip" && cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff" {
					signal = fmt.Sprintf("%s: calico-node CrashLoopBackOff; IPv4Address %s; last termination: %s",
						pod.Name, node.Annotations["projectcalico.org/IPv4Address"], cs.LastTerminationState.Terminated.Message)
					return true, "", nil
				}
				if kind != "duplicate-ip" && cs.State.Running != nil {
					signal = pod.Name + ": running, not ready (readiness probe failing: BIRD is not ready)"
					return true, "", nil
				}
			}
			return false, "calico-node still healthy", nil
		case "wrong-ip":
			got := node.Annotations["projectcalico.org/IPv4Address"]
			if strings.HasPrefix(got, "10.0.2.15/") {
				signal = fmt.Sprintf("%s: projectcalico.org/IPv4Address=%s while InternalIP is %s", target, got, node.Annotations[stages.InternalIPAnnotation])
				return true, "", nil
			}
			return false, "annotation not changed yet (is Calico installed?)", nil
		case "network-unavailable-stale":
			for _, cond := range node.Status.Conditions {
				if cond.Type == corev1.NodeNetworkUnavailable && cond.Status == corev1.ConditionTrue {
					signal = fmt.Sprintf("%s: NetworkUnavailable=True reason %s since %s", target, cond.Reason, cond.LastTransitionTime.UTC().Format(time.RFC3339))
					return true, "", nil
				}
			}
			return false, "NetworkUnavailable not True yet (is Calico installed?)", nil
		case "tunnel-addr-missing":
			if _, has := node.Annotations["projectcalico.org/IPv4IPIPTunnelAddr"]; !has && node.Annotations["projectcalico.org/IPv4Address"] != "" {
				signal = target + ": no projectcalico.org/IPv4IPIPTunnelAddr (calico-node set up no IPIP tunnel)"
				return true, "", nil
			}
			return false, "tunnel address still there (is Calico installed with an IPIP pool?)", nil
		case "node-notready":
			if rc := readyCondition(node); rc != nil && rc.Status == corev1.ConditionUnknown {
				signal = fmt.Sprintf("%s: Ready=Unknown (%s)", target, rc.Message)
				return true, "", nil
			}
			return false, "waiting for the node to turn Unknown", nil
		}
		return true, "", nil
	})
	return signal, err
}

func breakPoolOverlap(ctx context.Context, cfg *config.Config, rc *rest.Config, out io.Writer) error {
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return err
	}
	pool := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "crd.projectcalico.org/v1",
		"kind":       "IPPool",
		"metadata":   map[string]any{"name": OverlapPool},
		"spec": map[string]any{
			"cidr": cfg.NodeCIDR, "blockSize": int64(26), "ipipMode": "Always", "vxlanMode": "Never",
			"natOutgoing": true, "nodeSelector": "all()",
		},
	}}
	_, err = dyn.Resource(ippoolsGVR).Create(ctx, pool, metav1.CreateOptions{FieldManager: "lab"})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create IPPool %s (is Calico installed?): %w", OverlapPool, err)
	}
	fmt.Fprintf(out, "IPPool %s (cidr %s) now overlaps the node addresses\n", OverlapPool, cfg.NodeCIDR)
	return nil
}

// Heal undoes every injected failure and waits until the cluster is back.
func Heal(ctx context.Context, dir string, out io.Writer) error {
	cfg, err := config.Load(dir)
	if err != nil {
		return err
	}
	m := proc.Manager{Dir: dir}
	if m.Pid("kube-apiserver") == 0 {
		if err := startAPIServer(ctx, &cfg, m); err != nil {
			return err
		}
		fmt.Fprintln(out, "kube-apiserver restarted and ready")
	}
	client, rc, err := Clients(&cfg)
	if err != nil {
		return err
	}
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var healed []string
	for _, node := range nodes.Items {
		if node.Annotations[footprint.BreakAnnotation] == "" && node.Annotations[stages.KubeletAnnotation] == "" {
			continue
		}
		annotations := map[string]any{
			footprint.BreakAnnotation:       nil,
			footprint.DuplicateOfAnnotation: nil,
			footprint.BGPPeerAnnotation:     nil,
			stages.KubeletAnnotation:        nil,
		}
		if err := patchNodeAnnotations(ctx, client, node.Name, annotations); err != nil {
			return err
		}
		healed = append(healed, node.Name)
	}
	hostList, err := hosts.List(&cfg)
	if err != nil {
		return err
	}
	for _, h := range hostList {
		if err := os.Remove(h.File("state", hosts.SlowResetFlag)); err == nil {
			fmt.Fprintf(out, "kubeadm reset on %s is quick again\n", h.Node.Name)
		}
	}
	if err := healMTU(&cfg, out); err != nil {
		return err
	}
	if changed, err := resetKubeProxyMode(ctx, client); err != nil {
		return err
	} else if changed {
		fmt.Fprintln(out, "kube-proxy's mode is the default again")
	}
	if dyn, err := dynamic.NewForConfig(rc); err == nil {
		err := dyn.Resource(ippoolsGVR).Delete(ctx, OverlapPool, metav1.DeleteOptions{})
		if err == nil {
			fmt.Fprintf(out, "IPPool %s deleted\n", OverlapPool)
		}
		if err := healIpam(ctx, client, dyn, out); err != nil {
			return err
		}
		if err := healCrossSubnet(ctx, dyn, out); err != nil {
			return err
		}
	}
	if len(healed) > 0 {
		fmt.Fprintf(out, "cleared failures on %s; waiting for calico-node and the nodes to recover...\n", strings.Join(healed, ", "))
		if err := waitHealed(ctx, client, healed); err != nil {
			return err
		}
	}
	fmt.Fprintln(out, "healed")
	return nil
}

func waitHealed(ctx context.Context, c kubernetes.Interface, names []string) error {
	return poll(ctx, 90*time.Second, func() (bool, string, error) {
		for _, name := range names {
			node, err := c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err.Error(), nil
			}
			if len(footprint.CNIConfig(node)) > 0 {
				if rc := readyCondition(node); rc == nil || rc.Status != corev1.ConditionTrue {
					return false, name + " not Ready yet", nil
				}
			}
			for _, cond := range node.Status.Conditions {
				if cond.Type == corev1.NodeNetworkUnavailable && cond.Status == corev1.ConditionTrue && cond.Reason == "CalicoIsDown" {
					if pod, _ := calicoNodePod(ctx, c, name); pod != nil {
						return false, name + " NetworkUnavailable still True", nil
					}
				}
			}
			if pod, _ := calicoNodePod(ctx, c, name); pod != nil {
				for _, cs := range pod.Status.ContainerStatuses {
					if cs.Name == "calico-node" && !cs.Ready {
						return false, pod.Name + " not ready yet", nil
					}
				}
			}
		}
		return true, "", nil
	})
}

// CNI applies or deletes a manifest.
func CNI(ctx context.Context, dir, verb, file string, out io.Writer) error {
	cfg, err := config.Load(dir)
	if err != nil {
		return err
	}
	_, rc, err := Clients(&cfg)
	if err != nil {
		return err
	}
	if _, err := os.Stat(file); err != nil {
		return err
	}
	if err := applyManifest(ctx, rc, file, verb); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: %s done\n", file, verb)
	return nil
}

func applyManifest(ctx context.Context, rc *rest.Config, file, verb string) error {
	objs, err := apply.Read(file)
	if err != nil {
		return err
	}
	client, err := apply.New(rc)
	if err != nil {
		return err
	}
	if verb == "delete" {
		return client.Delete(ctx, objs)
	}
	return client.Apply(ctx, objs)
}
