// Package labtest is the lab's own test suite: it starts labs with lab/lab (real etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler and KWOK), drives them with the
// machine's kubectl and client-go, and checks what Grappe relies on: kubeadm's look, Calico's
// footprint, PDB-blocked evictions, each injected failure and its healing.
package labtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

var (
	ippools    = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "ippools"}
	ipamblocks = schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "ipamblocks"}
)

// repo returns the repository root (this file is lab/labtest/helpers_test.go).
func repo(t *testing.T) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the repository")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func manifests(t *testing.T) string {
	if d := os.Getenv("GRAPPE_MANIFESTS"); d != "" {
		return d
	}
	return filepath.Join(repo(t), "..", "shared", "manifests")
}

type lab struct {
	t          *testing.T
	dir        string
	kubeconfig string
	client     kubernetes.Interface
	dyn        dynamic.Interface
}

// run runs f as a subtest named name, with the lab seen from it: its helpers fail that subtest
// (a subtest must not call FailNow on its parent).
func (l *lab) run(name string, f func(t *testing.T, l *lab)) bool {
	return l.t.Run(name, func(t *testing.T) {
		c := *l
		c.t = t
		f(t, &c)
	})
}

// labCmd runs lab/lab with args and fails the test on error.
func (l *lab) labCmd(args ...string) string {
	l.t.Helper()
	out, err := runLab(l.t, append(args, "--dir", l.dir)...)
	if err != nil {
		l.t.Fatalf("lab %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// removeManifest deletes what file created and waits until all of it is gone, calico-node pods
// included. A CRD deleted while its storage is (re)initializing fails its finalizer's step and
// is retried with a growing backoff (over 2 minutes once beside the browser tests; end2end's
// removeManifest saw 3.5): a CRD still there is annotated every 10 s, which requeues it.
func (l *lab) removeManifest(file string, timeout time.Duration) {
	l.t.Helper()
	start := time.Now()
	l.kubectl("delete", "--ignore-not-found", "--wait=false", "-f", file)
	nudged := start
	eventually(l.t, timeout, "the objects of "+filepath.Base(file)+" gone", func() error {
		left := strings.Fields(l.kubectl("get", "--ignore-not-found", "-o", "name", "-f", file))
		pods := strings.Fields(l.kubectl("get", "pods", "-A", "-l", "k8s-app=calico-node", "-o", "name"))
		if len(left) == 0 && len(pods) == 0 {
			return nil
		}
		var crds []string
		for _, name := range left {
			if strings.HasPrefix(name, "customresourcedefinition") {
				crds = append(crds, name)
			}
		}
		if len(crds) > 0 && time.Since(nudged) > 10*time.Second {
			nudged = time.Now()
			// One gone meanwhile fails the command: the next round reads what is left.
			args := append([]string{"--kubeconfig", l.kubeconfig, "annotate", "--overwrite"}, crds...)
			_ = exec.Command("kubectl", append(args, "labtest.grappe.dev/requeue="+nudged.Format("150405"))...).Run()
		}
		return fmt.Errorf("still there: %v, calico-node pods %v", left, pods)
	})
	l.t.Logf("the objects of %s were gone %s after the delete", filepath.Base(file), time.Since(start).Round(time.Second))
}

func runLab(t *testing.T, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(repo(t), "lab", "lab"), args...)
	cmd.Env = append(os.Environ(), "GRAPPE_MANIFESTS="+manifests(t))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (l *lab) kubectl(args ...string) string {
	l.t.Helper()
	cmd := exec.Command("kubectl", append([]string{"--kubeconfig", l.kubeconfig}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		l.t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// startLab brings a lab up and registers its teardown.
func startLab(t *testing.T, portBase int, extra ...string) *lab {
	t.Helper()
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Fatal("kubectl is required by the lab suite (the machine's kubectl)")
	}
	dir := t.TempDir()
	l := &lab{t: t, dir: dir, kubeconfig: filepath.Join(dir, "kubeconfig")}
	// Registered first: a failed `lab up` may leave processes behind.
	t.Cleanup(func() {
		if out, err := runLab(t, "down", "--dir", dir); err != nil {
			t.Errorf("lab down: %v\n%s", err, out)
		}
	})
	start := time.Now()
	out, err := runLab(t, append([]string{"up", "--dir", dir, "--port-base", fmt.Sprint(portBase)}, extra...)...)
	if err != nil {
		t.Fatalf("lab up failed: %v\n%s", err, out)
	}
	t.Logf("lab up in %.1fs", time.Since(start).Seconds())
	rc, err := clientcmd.BuildConfigFromFlags("", l.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	l.client = kubernetes.NewForConfigOrDie(rc)
	l.dyn = dynamic.NewForConfigOrDie(rc)
	return l
}

// eventually retries f until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("%s: still failing after %s: %v", what, timeout, err)
}

func ctx() context.Context { return context.Background() }

func readyStatus(n *corev1.Node) (corev1.ConditionStatus, string) {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status, c.Message
		}
	}
	return "", ""
}

func condition(n *corev1.Node, t corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == t {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

func (l *lab) allNodes(check func(*corev1.Node) error) error {
	nodes, err := l.client.CoreV1().Nodes().List(ctx(), metav1.ListOptions{})
	if err != nil {
		return err
	}
	if len(nodes.Items) == 0 {
		return fmt.Errorf("no nodes")
	}
	for i := range nodes.Items {
		if err := check(&nodes.Items[i]); err != nil {
			return fmt.Errorf("%s: %w", nodes.Items[i].Name, err)
		}
	}
	return nil
}

func (l *lab) calicoNodePod(node string) (*corev1.Pod, error) {
	pods, err := l.client.CoreV1().Pods("kube-system").List(ctx(), metav1.ListOptions{
		LabelSelector: "k8s-app=calico-node", FieldSelector: "spec.nodeName=" + node,
	})
	if err != nil {
		return nil, err
	}
	if len(pods.Items) != 1 {
		return nil, fmt.Errorf("%d calico-node pods on %s", len(pods.Items), node)
	}
	return &pods.Items[0], nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
