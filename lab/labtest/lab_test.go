package labtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestLab walks one 4-node lab through its life: kubeadm's look without a CNI, Calico v3.25.1, an
// IPAM leak beside an address a pod shows, eviction under a PDB, every injected failure, an
// upgrade to v3.26.5, and removal.
func TestLab(t *testing.T) {
	l := startLab(t, 18000)

	l.run("nodes look like kubeadm nodes without a CNI", func(t *testing.T, l *lab) {
		if err := l.allNodes(func(n *corev1.Node) error {
			status, msg := readyStatus(n)
			if status != corev1.ConditionFalse || !strings.Contains(msg, "cni plugin not initialized") {
				return fmt.Errorf("Ready=%s %q", status, msg)
			}
			if n.Spec.PodCIDR == "" {
				return fmt.Errorf("no podCIDR")
			}
			if n.Status.NodeInfo.KubeletVersion != "v1.35.8" {
				return fmt.Errorf("kubelet %s", n.Status.NodeInfo.KubeletVersion)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		cp, err := l.client.CoreV1().Nodes().Get(ctx(), "betelgeuse", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := cp.Labels["node-role.kubernetes.io/control-plane"]; !ok || len(cp.Spec.Taints) == 0 ||
			cp.Spec.Taints[0].Key != "node-role.kubernetes.io/control-plane" {
			t.Fatalf("betelgeuse is not a kubeadm control plane: labels %v taints %v", cp.Labels, cp.Spec.Taints)
		}
		cm, err := l.client.CoreV1().ConfigMaps("kube-system").Get(ctx(), "kubeadm-config", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"podSubnet: 192.168.0.0/16", "serviceSubnet: 10.96.0.0/12"} {
			if !strings.Contains(cm.Data["ClusterConfiguration"], want) {
				t.Fatalf("kubeadm-config lacks %q", want)
			}
		}
		mirror, err := l.client.CoreV1().Pods("kube-system").Get(ctx(), "kube-apiserver-betelgeuse", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if mirror.Annotations["kubernetes.io/config.mirror"] == "" {
			t.Fatal("kube-apiserver-betelgeuse is not a mirror pod")
		}
		// CoreDNS waits for the network, as on a real cluster.
		pods, err := l.client.CoreV1().Pods("kube-system").List(ctx(), metav1.ListOptions{LabelSelector: "k8s-app=kube-dns"})
		if err != nil || len(pods.Items) != 2 {
			t.Fatalf("coredns pods: %v %d", err, len(pods.Items))
		}
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning {
				t.Fatalf("%s runs without a CNI", p.Name)
			}
		}
		if _, err := l.client.PolicyV1().PodDisruptionBudgets("kube-system").Get(ctx(), "coredns", metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
	})

	l.run("Calico v3.25.1 applies server-side and runs on every node", func(t *testing.T, l *lab) {
		out := l.kubectl("apply", "--server-side", "-f", filepath.Join(manifests(t), "calico-v3.25.1.yaml"))
		if n := strings.Count(out, "serverside-applied"); n != 27 {
			t.Fatalf("%d objects applied, want 27:\n%s", n, out)
		}
		eventually(t, 120*time.Second, "calico-node Ready and nodes Ready", func() error {
			return l.allNodes(func(n *corev1.Node) error {
				if s, msg := readyStatus(n); s != corev1.ConditionTrue {
					return fmt.Errorf("Ready=%s %s", s, msg)
				}
				p, err := l.calicoNodePod(n.Name)
				if err != nil {
					return err
				}
				if !podReady(p) {
					return fmt.Errorf("%s not ready", p.Name)
				}
				return nil
			})
		})
		eventually(t, 60*time.Second, "calico-kube-controllers available", func() error {
			d, err := l.client.AppsV1().Deployments("kube-system").Get(ctx(), "calico-kube-controllers", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if d.Status.AvailableReplicas != 1 {
				return fmt.Errorf("available %d", d.Status.AvailableReplicas)
			}
			return nil
		})
	})

	l.run("kubectl lists the nodes like the seed's k get no", func(t *testing.T, l *lab) {
		out := l.kubectl("get", "no")
		if !regexp.MustCompile(`(?m)^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION$`).MatchString(out) {
			t.Fatalf("header:\n%s", out)
		}
		if !regexp.MustCompile(`(?m)^betelgeuse\s+Ready\s+control-plane\s+\S+\s+v1\.35\.8$`).MatchString(out) {
			t.Fatalf("betelgeuse line:\n%s", out)
		}
		if got := len(strings.Split(strings.TrimSpace(out), "\n")) - 1; got != 4 {
			t.Fatalf("%d nodes listed:\n%s", got, out)
		}
		version := l.kubectl("version", "-o", "json")
		if !strings.Contains(version, `"gitVersion": "v1.35.8"`) {
			t.Fatalf("server version:\n%s", version)
		}
	})

	l.run("Calico's footprint: pool, annotations, IPAM blocks, pod IPs", func(t *testing.T, l *lab) {
		pool, err := l.dyn.Resource(ippools).Get(ctx(), "default-ipv4-ippool", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		spec := pool.Object["spec"].(map[string]any)
		if spec["cidr"] != "192.168.0.0/16" || spec["ipipMode"] != "Always" || spec["natOutgoing"] != true {
			t.Fatalf("default pool spec %v", spec)
		}
		blocks, err := l.dyn.Resource(ipamblocks).List(ctx(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		affine := map[string]bool{}
		for _, b := range blocks.Items {
			cidr, _, _ := unstructured.NestedString(b.Object, "spec", "cidr")
			affinity, _, _ := unstructured.NestedString(b.Object, "spec", "affinity")
			if !strings.HasSuffix(cidr, "/26") || !strings.HasPrefix(cidr, "192.168.") {
				t.Fatalf("block %s", cidr)
			}
			affine[strings.TrimPrefix(affinity, "host:")] = true
		}
		if err := l.allNodes(func(n *corev1.Node) error {
			ip := n.Annotations["projectcalico.org/IPv4Address"]
			internal := ""
			for _, a := range n.Status.Addresses {
				if a.Type == corev1.NodeInternalIP {
					internal = a.Address
				}
			}
			if ip != internal+"/16" {
				return fmt.Errorf("IPv4Address %q, InternalIP %q", ip, internal)
			}
			if !strings.HasPrefix(n.Annotations["projectcalico.org/IPv4IPIPTunnelAddr"], "192.168.") {
				return fmt.Errorf("tunnel %q", n.Annotations["projectcalico.org/IPv4IPIPTunnelAddr"])
			}
			c := condition(n, corev1.NodeNetworkUnavailable)
			if c == nil || c.Status != corev1.ConditionFalse || c.Reason != "CalicoIsUp" {
				return fmt.Errorf("NetworkUnavailable %+v", c)
			}
			if !affine[n.Name] {
				return fmt.Errorf("no IPAM block affine to it")
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 60*time.Second, "demo pods Running with Calico addresses", func() error {
			pods, err := l.client.CoreV1().Pods("demo").List(ctx(), metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil {
				return err
			}
			for _, p := range pods.Items {
				if p.Status.Phase != corev1.PodRunning || !strings.HasPrefix(p.Status.PodIP, "192.168.") ||
					p.Annotations["cni.projectcalico.org/podIP"] != p.Status.PodIP+"/32" {
					return fmt.Errorf("%s: %s %s (annotation %s)", p.Name, p.Status.Phase, p.Status.PodIP, p.Annotations["cni.projectcalico.org/podIP"])
				}
			}
			return nil
		})
	})

	l.run("ipam-leak leaks only addresses no pod shows", leakSkipsShownAddresses)

	l.run("an eviction blocked by a PodDisruptionBudget answers 429", func(t *testing.T, l *lab) {
		pods, err := l.client.CoreV1().Pods("demo").List(ctx(), metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil || len(pods.Items) == 0 {
			t.Fatalf("web pods: %v", err)
		}
		err = l.client.PolicyV1().Evictions("demo").Evict(ctx(), &policyv1.Eviction{
			ObjectMeta: metav1.ObjectMeta{Name: pods.Items[0].Name, Namespace: "demo"},
		})
		if !apierrors.IsTooManyRequests(err) {
			t.Fatalf("eviction of %s: want 429, got %v", pods.Items[0].Name, err)
		}
		if !strings.Contains(err.Error(), "disruption budget") {
			t.Fatalf("message: %v", err)
		}
	})

	l.run("each failure shows its signal and heal clears it", func(t *testing.T, l *lab) {
		out := l.labCmd("break", "duplicate-ip", "bellatrix", "rigel")
		if !strings.Contains(out, "is already using the IPv4 address") {
			t.Fatalf("duplicate-ip:\n%s", out)
		}
		eventually(t, 30*time.Second, "duplicate annotations", func() error {
			a, _ := l.client.CoreV1().Nodes().Get(ctx(), "bellatrix", metav1.GetOptions{})
			b, _ := l.client.CoreV1().Nodes().Get(ctx(), "rigel", metav1.GetOptions{})
			if a.Annotations["projectcalico.org/IPv4Address"] != b.Annotations["projectcalico.org/IPv4Address"] {
				return fmt.Errorf("addresses differ")
			}
			p, err := l.calicoNodePod("bellatrix")
			if err != nil {
				return err
			}
			cs := p.Status.ContainerStatuses[0]
			if cs.State.Waiting == nil || cs.State.Waiting.Reason != "CrashLoopBackOff" || cs.RestartCount < 1 {
				return fmt.Errorf("calico-node state %+v", cs.State)
			}
			return nil
		})
		events := l.kubectl("get", "events", "-n", "kube-system", "--field-selector", "reason=BackOff")
		if !strings.Contains(events, "Back-off restarting failed container calico-node") {
			t.Fatalf("no BackOff event:\n%s", events)
		}

		out = l.labCmd("break", "wrong-ip", "saiph")
		if !strings.Contains(out, "IPv4Address=10.0.2.15/") {
			t.Fatalf("wrong-ip:\n%s", out)
		}
		l.labCmd("break", "calico-not-ready", "betelgeuse")
		eventually(t, 30*time.Second, "readiness event", func() error {
			ev := l.kubectl("get", "events", "-n", "kube-system", "--field-selector", "reason=Unhealthy")
			if !strings.Contains(ev, "BIRD is not ready: BGP not established with") {
				return fmt.Errorf("no Unhealthy event yet")
			}
			ds, err := l.client.AppsV1().DaemonSets("kube-system").Get(ctx(), "calico-node", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if ds.Status.NumberReady != 2 {
				return fmt.Errorf("calico-node numberReady %d, want 2 (two nodes broken)", ds.Status.NumberReady)
			}
			return nil
		})
		out = l.labCmd("break", "network-unavailable-stale", "rigel")
		if !strings.Contains(out, "NetworkUnavailable=True reason CalicoIsDown") {
			t.Fatalf("network-unavailable-stale:\n%s", out)
		}
		l.labCmd("break", "pool-overlap")
		if _, err := l.dyn.Resource(ippools).Get(ctx(), "lab-overlap-pool", metav1.GetOptions{}); err != nil {
			t.Fatalf("overlap pool: %v", err)
		}
		out = l.labCmd("break", "node-notready", "saiph")
		if !strings.Contains(out, "Ready=Unknown") {
			t.Fatalf("node-notready:\n%s", out)
		}

		l.labCmd("heal")
		eventually(t, 120*time.Second, "everything healthy again", func() error {
			if _, err := l.dyn.Resource(ippools).Get(ctx(), "lab-overlap-pool", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("overlap pool still there: %v", err)
			}
			return l.allNodes(func(n *corev1.Node) error {
				if s, msg := readyStatus(n); s != corev1.ConditionTrue {
					return fmt.Errorf("Ready=%s %s", s, msg)
				}
				internal := n.Annotations["lab.grappe.dev/internal-ip"]
				if n.Annotations["projectcalico.org/IPv4Address"] != internal+"/16" {
					return fmt.Errorf("IPv4Address %s", n.Annotations["projectcalico.org/IPv4Address"])
				}
				if c := condition(n, corev1.NodeNetworkUnavailable); c == nil || c.Status != corev1.ConditionFalse {
					return fmt.Errorf("NetworkUnavailable %+v", c)
				}
				p, err := l.calicoNodePod(n.Name)
				if err != nil {
					return err
				}
				if !podReady(p) {
					return fmt.Errorf("%s not ready", p.Name)
				}
				return nil
			})
		})
	})

	l.run("the API server stopped and restarted keeps its data", func(t *testing.T, l *lab) {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "survivor", Namespace: "default"}, Data: map[string]string{"k": "v"}}
		if _, err := l.client.CoreV1().ConfigMaps("default").Create(ctx(), cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		out := l.labCmd("break", "apiserver")
		if !strings.Contains(out, "kube-apiserver stopped") {
			t.Fatalf("break apiserver:\n%s", out)
		}
		short, cancel := context.WithTimeout(ctx(), 3*time.Second)
		_, err := l.client.CoreV1().ConfigMaps("default").Get(short, "survivor", metav1.GetOptions{})
		cancel()
		if err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("API server still answers: %v", err)
		}
		status, _ := runLab(t, "status", "--dir", l.dir)
		if !regexp.MustCompile(`kube-apiserver\s+stopped`).MatchString(status) {
			t.Fatalf("status:\n%s", status)
		}
		l.labCmd("heal")
		got, err := l.client.CoreV1().ConfigMaps("default").Get(ctx(), "survivor", metav1.GetOptions{})
		if err != nil || got.Data["k"] != "v" {
			t.Fatalf("after restart: %v %v", err, got)
		}
	})

	l.run("an upgrade to Calico v3.26.5 applies and rolls out", func(t *testing.T, l *lab) {
		out := l.kubectl("apply", "--server-side", "--force-conflicts", "-f", filepath.Join(manifests(t), "calico-v3.26.5.yaml"))
		if n := strings.Count(out, "serverside-applied"); n != 31 {
			t.Fatalf("%d objects applied, want 31:\n%s", n, out)
		}
		eventually(t, 180*time.Second, "calico-node v3.26.5 Ready everywhere", func() error {
			return l.allNodes(func(n *corev1.Node) error {
				p, err := l.calicoNodePod(n.Name)
				if err != nil {
					return err
				}
				if !strings.HasSuffix(p.Spec.Containers[0].Image, ":v3.26.5") || !podReady(p) {
					return fmt.Errorf("%s image %s ready %v", p.Name, p.Spec.Containers[0].Image, podReady(p))
				}
				return nil
			})
		})
	})

	l.run("deleting the manifest removes Calico's workloads and CRD objects", func(t *testing.T, l *lab) {
		l.removeManifest(filepath.Join(manifests(t), "calico-v3.26.5.yaml"), 240*time.Second)
		eventually(t, 60*time.Second, "calico gone", func() error {
			if _, err := l.dyn.Resource(ippools).List(ctx(), metav1.ListOptions{}); err == nil {
				return fmt.Errorf("IPPools still served")
			}
			// calico-node's shutdown leaves NetworkUnavailable=True/CalicoIsDown behind; the
			// CNI config stays on the hosts, so nodes stay Ready (as on a real cluster).
			return l.allNodes(func(n *corev1.Node) error {
				c := condition(n, corev1.NodeNetworkUnavailable)
				if c == nil || c.Status != corev1.ConditionTrue || c.Reason != "CalicoIsDown" {
					return fmt.Errorf("NetworkUnavailable %+v", c)
				}
				if s, _ := readyStatus(n); s != corev1.ConditionTrue {
					return fmt.Errorf("Ready=%s", s)
				}
				return nil
			})
		})
	})
}

// TestFlannelFootprint checks the Flannel side on a small lab: podCIDR-based addresses and
// flannel's node annotations; and the load pods of --pods-per-node and `lab pods`.
func TestFlannelFootprint(t *testing.T) {
	l := startLab(t, 18100, "--nodes", "2", "--cni", "flannel", "--pods-per-node", "2")
	if err := l.allNodes(func(n *corev1.Node) error {
		if s, _ := readyStatus(n); s != corev1.ConditionTrue {
			return fmt.Errorf("not Ready")
		}
		if n.Annotations["flannel.alpha.coreos.com/backend-type"] != "vxlan" {
			return fmt.Errorf("annotations %v", n.Annotations)
		}
		if c := condition(n, corev1.NodeNetworkUnavailable); c == nil || c.Reason != "FlannelIsUp" {
			return fmt.Errorf("NetworkUnavailable %+v", c)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "pods get addresses from their node's podCIDR", func() error {
		pods, err := l.client.CoreV1().Pods("demo").List(ctx(), metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return err
		}
		for _, p := range pods.Items {
			node, err := l.client.CoreV1().Nodes().Get(ctx(), p.Spec.NodeName, metav1.GetOptions{})
			if err != nil {
				return err
			}
			prefix := strings.Join(strings.Split(node.Spec.PodCIDR, ".")[:3], ".") + "."
			if p.Status.Phase != corev1.PodRunning || !strings.HasPrefix(p.Status.PodIP, prefix) {
				return fmt.Errorf("%s: %s %s (podCIDR %s)", p.Name, p.Status.Phase, p.Status.PodIP, node.Spec.PodCIDR)
			}
		}
		return nil
	})

	l.run("lab up --pods-per-node leaves bound pods Ready", func(t *testing.T, l *lab) {
		pods, err := l.client.CoreV1().Pods("bench").List(ctx(), metav1.ListOptions{})
		if err != nil || len(pods.Items) != 2 {
			t.Fatalf("bench pods after lab up --pods-per-node 2: %v %d", err, len(pods.Items))
		}
		for _, p := range pods.Items {
			if p.Spec.NodeName != "rigel" || p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
				t.Fatalf("%s: node %q phase %s IP %q", p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.PodIP)
			}
		}
	})

	l.run("lab pods binds bare pods to every worker, once", func(t *testing.T, l *lab) {
		out := l.labCmd("pods", "3")
		if !strings.Contains(out, "1 pods created (2 already there)") {
			t.Fatalf("lab pods 3:\n%s", out)
		}
		if out := l.labCmd("pods", "3"); !strings.Contains(out, "0 pods created (3 already there)") {
			t.Fatalf("lab pods 3 again:\n%s", out)
		}
		pods, err := l.client.CoreV1().Pods("bench").List(ctx(), metav1.ListOptions{})
		if err != nil || len(pods.Items) != 3 {
			t.Fatalf("bench pods: %v %d", err, len(pods.Items))
		}
		for _, p := range pods.Items {
			if p.Spec.NodeName == "" || p.Spec.NodeName == "betelgeuse" {
				t.Fatalf("%s bound to %q, want a worker", p.Name, p.Spec.NodeName)
			}
		}
	})

	l.run("a pod marked not Ready while its node was away is Ready again, as a kubelet would", func(t *testing.T, l *lab) {
		pods, err := l.client.CoreV1().Pods("bench").List(ctx(), metav1.ListOptions{})
		if err != nil || len(pods.Items) == 0 {
			t.Fatalf("bench pods: %v %d", err, len(pods.Items))
		}
		p := pods.Items[0]
		// What the node lifecycle controller does to the pods of a node that missed heartbeats.
		for i := range p.Status.Conditions {
			if p.Status.Conditions[i].Type == corev1.PodReady {
				p.Status.Conditions[i].Status = corev1.ConditionFalse
			}
		}
		if _, err := l.client.CoreV1().Pods("bench").UpdateStatus(ctx(), &p, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("mark %s not Ready: %v", p.Name, err)
		}
		eventually(t, 60*time.Second, p.Name+" Ready again", func() error {
			got, err := l.client.CoreV1().Pods("bench").Get(ctx(), p.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !podReady(got) {
				return fmt.Errorf("%s not Ready", got.Name)
			}
			return nil
		})
	})

	// After a reboot the state directory survives and every process is gone: `lab up` with the
	// same flags brings the same cluster back (a seeded Service with a fixed ClusterIP once made
	// this fail).
	l.run("lab up after every process was killed brings the same cluster back", func(t *testing.T, l *lab) {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "before-reboot", Namespace: "default"}}
		if _, err := l.client.CoreV1().ConfigMaps("default").Create(ctx(), cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		pids, err := filepath.Glob(filepath.Join(l.dir, "pids", "*.pid"))
		if err != nil || len(pids) != 6 {
			t.Fatalf("pid files: %v %v", pids, err)
		}
		for _, f := range pids {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
			if err != nil {
				t.Fatal(err)
			}
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		eventually(t, 10*time.Second, "every process gone", func() error {
			status, _ := runLab(t, "status", "--dir", l.dir)
			if strings.Contains(status, "running") {
				return fmt.Errorf("%s", status)
			}
			return nil
		})
		if out, err := runLab(t, "up", "--dir", l.dir, "--port-base", "18100", "--nodes", "2", "--cni", "flannel", "--pods-per-node", "2"); err != nil {
			t.Fatalf("lab up again: %v\n%s", err, out)
		}
		if _, err := l.client.CoreV1().ConfigMaps("default").Get(ctx(), "before-reboot", metav1.GetOptions{}); err != nil {
			t.Fatalf("the cluster's data is gone: %v", err)
		}
		nodes, err := l.client.CoreV1().Nodes().List(ctx(), metav1.ListOptions{})
		if err != nil || len(nodes.Items) != 2 {
			t.Fatalf("nodes after restart: %v %d", err, len(nodes.Items))
		}
	})
}
