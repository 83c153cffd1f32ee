package labtest

// Calico as clusters run it in 2026, in the lab: the v3.31.7 and v3.32.1 manifests, the real
// Tigera operator (built by lab/lab) with calico-system and TigeraStatus, native
// projectcalico.org/v3 resources, kube-proxy's mode changed by `lab break`.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	tigerastatuses = schema.GroupVersionResource{Group: "operator.tigera.io", Version: "v1", Resource: "tigerastatuses"}
	apiservices    = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}
	v3ipamblocks   = schema.GroupVersionResource{Group: "projectcalico.org", Version: "v3", Resource: "ipamblocks"}
	v3ippools      = schema.GroupVersionResource{Group: "projectcalico.org", Version: "v3", Resource: "ippools"}
	// crd.projectcalico.org/v1
	clusterinformations = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "clusterinformations"}
	kubeControllersConf = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "kubecontrollersconfigurations"}
)

func operatorFile(t *testing.T, name string) string {
	return filepath.Join(manifests(t), "calico-operator-v3.32.1", name)
}

// installation is custom-resources.yaml's Installation alone (the lab runs none of the optional
// components' pods), written to a file for kubectl.
func installation(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(operatorFile(t, "custom-resources.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(data), "\n---") {
		if strings.Contains(doc, "kind: Installation") {
			path := filepath.Join(t.TempDir(), "installation.yaml")
			if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
				t.Fatal(err)
			}
			return path
		}
	}
	t.Fatal("custom-resources.yaml has no Installation")
	return ""
}

// tigeraStates reads every TigeraStatus as name -> the condition type that is True.
func (l *lab) tigeraStates() (map[string]string, error) {
	list, err := l.dyn.Resource(tigerastatuses).List(ctx(), metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	states := map[string]string{}
	for _, item := range list.Items {
		conditions, _, _ := unstructured.NestedSlice(item.Object, "status", "conditions")
		states[item.GetName()] = "none"
		for _, c := range conditions {
			m, _ := c.(map[string]any)
			if m["status"] == "True" && m["type"] != "Progressing" {
				states[item.GetName()] = fmt.Sprint(m["type"], ": ", m["message"])
			}
		}
	}
	return states, nil
}

// waitOperatorAvailable waits until the named components' TigeraStatus say Available.
func (l *lab) waitOperatorAvailable(t *testing.T, components ...string) {
	t.Helper()
	eventually(t, 180*time.Second, "TigeraStatus Available", func() error {
		states, err := l.tigeraStates()
		if err != nil {
			return err
		}
		for _, c := range components {
			if !strings.HasPrefix(states[c], "Available") {
				return fmt.Errorf("%s: %q (all: %v)", c, states[c], states)
			}
		}
		return nil
	})
}

// podsAddressed checks that the demo pods run with an address from the pool.
func (l *lab) podsAddressed() error {
	pods, err := l.client.CoreV1().Pods("demo").List(ctx(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		return err
	}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning || !strings.HasPrefix(p.Status.PodIP, "192.168.") {
			return fmt.Errorf("%s: %s %q", p.Name, p.Status.Phase, p.Status.PodIP)
		}
	}
	return nil
}

// TestCalicoToday: manifests 3.31.7 and 3.32.1, kube-proxy's mode, then the Tigera operator on
// the same lab.
func TestCalicoToday(t *testing.T) {
	l := startLab(t, 18200)

	l.run("Calico v3.31.7 and v3.32.1 manifests run on every node", func(t *testing.T, l *lab) {
		for _, file := range []string{"calico-v3.31.7.yaml", "calico-v3.32.1.yaml"} {
			l.kubectl("apply", "--server-side", "--force-conflicts", "-f", filepath.Join(manifests(t), file))
			version := strings.TrimSuffix(strings.TrimPrefix(file, "calico-"), ".yaml")
			eventually(t, 120*time.Second, version+" on every node", func() error {
				return l.allNodes(func(n *corev1.Node) error {
					p, err := l.calicoNodePod(n.Name)
					if err != nil {
						return err
					}
					if !podReady(p) || !strings.HasSuffix(p.Spec.Containers[0].Image, ":"+version) {
						return fmt.Errorf("%s: ready %v image %s", p.Name, podReady(p), p.Spec.Containers[0].Image)
					}
					if s, msg := readyStatus(n); s != corev1.ConditionTrue {
						return fmt.Errorf("Ready=%s %s", s, msg)
					}
					return nil
				})
			})
			eventually(t, 60*time.Second, "pods addressed", l.podsAddressed)
		}
		eventually(t, 30*time.Second, "ClusterInformation follows the upgrade", func() error {
			info, err := l.dyn.Resource(clusterinformations).Get(ctx(), "default", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if v, _, _ := unstructured.NestedString(info.Object, "spec", "calicoVersion"); v != "v3.32.1" {
				return fmt.Errorf("calicoVersion %q", v)
			}
			return nil
		})
		// calico-kube-controllers' own configuration (calicoctl ipam check stops without it).
		conf, err := l.dyn.Resource(kubeControllersConf).Get(ctx(), "default", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("KubeControllersConfiguration default: %v", err)
		}
		if v, _, _ := unstructured.NestedString(conf.Object, "spec", "controllers", "node", "leakGracePeriod"); v != "15m0s" {
			t.Fatalf("leakGracePeriod %q", v)
		}
	})

	l.run("lab break kube-proxy-mode edits kube-proxy's ConfigMap; heal restores it", func(t *testing.T, l *lab) {
		mode := func() string {
			cm, err := l.client.CoreV1().ConfigMaps("kube-system").Get(ctx(), "kube-proxy", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(cm.Data["config.conf"], "\n") {
				if strings.HasPrefix(line, "mode:") {
					return strings.Trim(strings.TrimSpace(strings.TrimPrefix(line, "mode:")), `"'`)
				}
			}
			return "(none)"
		}
		before := mode()
		l.labCmd("break", "kube-proxy-mode", "nftables")
		if got := mode(); got != "nftables" {
			t.Fatalf("mode after the break: %q", got)
		}
		if _, err := runLab(t, "break", "kube-proxy-mode", "bogus", "--dir", l.dir); err == nil {
			t.Fatal("an unknown mode was accepted")
		}
		l.labCmd("heal")
		if got := mode(); got != before {
			t.Fatalf("mode after heal: %q, before the break %q", got, before)
		}
	})

	l.run("the real Tigera operator installs Calico in calico-system", func(t *testing.T, l *lab) {
		l.removeManifest(filepath.Join(manifests(t), "calico-v3.32.1.yaml"), 5*time.Minute)
		l.kubectl("apply", "--server-side", "-f", operatorFile(t, "operator-crds.yaml"))
		l.kubectl("apply", "--server-side", "-f", operatorFile(t, "tigera-operator.yaml"))
		eventually(t, 60*time.Second, "the operator process runs", func() error {
			pid, err := os.ReadFile(filepath.Join(l.dir, "pids", "tigera-operator.pid"))
			if err != nil {
				return err
			}
			if _, err := os.Stat("/proc/" + strings.TrimSpace(string(pid))); err != nil {
				return err
			}
			return nil
		})
		if status := l.labCmd("status"); !strings.Contains(status, "tigera-operator") {
			t.Fatalf("lab status does not list the running operator:\n%s", status)
		}
		l.kubectl("create", "-f", installation(t))
		l.waitOperatorAvailable(t, "calico", "ippools")
		eventually(t, 120*time.Second, "calico-system's calico-node Ready on every node", func() error {
			return l.allNodes(func(n *corev1.Node) error {
				pods, err := l.client.CoreV1().Pods("calico-system").List(ctx(), metav1.ListOptions{
					LabelSelector: "k8s-app=calico-node", FieldSelector: "spec.nodeName=" + n.Name,
				})
				if err != nil || len(pods.Items) != 1 || !podReady(&pods.Items[0]) {
					return fmt.Errorf("calico-node in calico-system: %v %d", err, len(pods.Items))
				}
				return nil
			})
		})
		// The operator's pool (custom-resources.yaml: VXLANCrossSubnet) and blocks from it.
		pool, err := l.dyn.Resource(ippools).Get(ctx(), "default-ipv4-ippool", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if vxlan, _, _ := unstructured.NestedString(pool.Object, "spec", "vxlanMode"); vxlan != "CrossSubnet" {
			t.Fatalf("vxlanMode %q", vxlan)
		}
		if pool.GetLabels()["app.kubernetes.io/managed-by"] != "tigera-operator" {
			t.Fatalf("the pool is not the operator's: %v", pool.GetLabels())
		}
		eventually(t, 60*time.Second, "pods addressed from the operator's pool", l.podsAddressed)
		blocks, err := l.dyn.Resource(ipamblocks).List(ctx(), metav1.ListOptions{})
		if err != nil || len(blocks.Items) == 0 {
			t.Fatalf("IPAM blocks: %v %d", err, len(blocks.Items))
		}
	})

	l.run("an APIServer the lab cannot run leaves v3.projectcalico.org unavailable", func(t *testing.T, l *lab) {
		l.kubectl("create", "-f", l.writeFile("apiserver.yaml", "apiVersion: operator.tigera.io/v1\nkind: APIServer\nmetadata:\n  name: default\nspec: {}\n"))
		eventually(t, 120*time.Second, "APIService v3.projectcalico.org registered and unavailable", func() error {
			svc, err := l.dyn.Resource(apiservices).Get(ctx(), "v3.projectcalico.org", metav1.GetOptions{})
			if err != nil {
				return err
			}
			conditions, _, _ := unstructured.NestedSlice(svc.Object, "status", "conditions")
			for _, c := range conditions {
				if m, _ := c.(map[string]any); m["type"] == "Available" && m["status"] == "False" {
					return nil
				}
			}
			return fmt.Errorf("conditions %v", conditions)
		})
		states, err := l.tigeraStates()
		if err != nil || strings.HasPrefix(states["apiserver"], "Available") {
			t.Fatalf("TigeraStatus apiserver with no API server running: %v %v", states, err)
		}
		l.kubectl("delete", "apiservers.operator.tigera.io", "default", "--timeout=120s")
	})

	l.run("deleting the Installation removes calico-system; deleting the operator stops it", func(t *testing.T, l *lab) {
		l.kubectl("delete", "installations.operator.tigera.io", "default", "--timeout=120s")
		eventually(t, 120*time.Second, "calico-system gone", func() error {
			if _, err := l.client.CoreV1().Namespaces().Get(ctx(), "calico-system", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("calico-system still there: %v", err)
			}
			return nil
		})
		l.kubectl("delete", "-f", operatorFile(t, "tigera-operator.yaml"), "--timeout=120s")
		eventually(t, 60*time.Second, "the operator process stopped", func() error {
			if _, err := os.Stat(filepath.Join(l.dir, "pids", "tigera-operator.pid")); !os.IsNotExist(err) {
				return fmt.Errorf("pid file: %v", err)
			}
			return nil
		})
	})
}

// writeFile writes text to a file of the lab's test directory and returns its path.
func (l *lab) writeFile(name, text string) string {
	l.t.Helper()
	path := filepath.Join(l.t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		l.t.Fatal(err)
	}
	return path
}

// TestCalicoNativeV3: the operator with projectcalico.org/v3 CRDs (no crd.projectcalico.org).
func TestCalicoNativeV3(t *testing.T) {
	l := startLab(t, 18300, "--nodes", "3")
	l.kubectl("apply", "--server-side", "-f", operatorFile(t, "v3_projectcalico_org.yaml"))
	l.kubectl("apply", "--server-side", "-f", operatorFile(t, "tigera-operator.yaml"))
	l.kubectl("create", "-f", installation(t))
	l.waitOperatorAvailable(t, "calico", "ippools")
	eventually(t, 60*time.Second, "pods addressed", l.podsAddressed)
	if _, err := l.dyn.Resource(v3ippools).Get(ctx(), "default-ipv4-ippool", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	blocks, err := l.dyn.Resource(v3ipamblocks).List(ctx(), metav1.ListOptions{})
	if err != nil || len(blocks.Items) == 0 {
		t.Fatalf("projectcalico.org/v3 IPAM blocks: %v %d", err, len(blocks.Items))
	}
	if _, err := l.dyn.Resource(ipamblocks).List(ctx(), metav1.ListOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("crd.projectcalico.org/v1 is served in native v3 mode: %v", err)
	}
}
