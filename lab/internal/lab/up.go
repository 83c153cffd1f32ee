// Package lab implements the lab's commands: up, down, status, break, heal, cni.
package lab

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"grappe.dev/lab/internal/config"
	"grappe.dev/lab/internal/footprint"
	"grappe.dev/lab/internal/hosts"
	"grappe.dev/lab/internal/pki"
	"grappe.dev/lab/internal/proc"
	"grappe.dev/lab/internal/seed"
	"grappe.dev/lab/internal/stages"
)

// UsageError is a mistake on the command line (exit status 2).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }

// UpOptions are `lab up`'s flags.
type UpOptions struct {
	Dir          string
	PortBase     int
	Nodes        int
	PodsPerNode  int
	NodeCIDR     string
	PodSubnet    string
	CNI          string
	BinDir       string
	ManifestsDir string
	// Hosts: "on" makes every node a host reachable over SSH (root only), "off" does not.
	Hosts string
}

// DefaultUpOptions is a 4-node lab (betelgeuse + 3 workers), no CNI.
func DefaultUpOptions() UpOptions {
	d := config.Defaults("")
	return UpOptions{PortBase: d.PortBase, Nodes: 4, NodeCIDR: d.NodeCIDR, CNI: "none", Hosts: "off"}
}

// components in start order.
var components = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "footprint"}

func step(out io.Writer, start time.Time, format string, args ...any) {
	fmt.Fprintf(out, "[%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
}

// Up starts the lab, or completes a partly running one.
func Up(ctx context.Context, o UpOptions, out io.Writer) error {
	start := time.Now()
	if o.Nodes < 1 {
		return &UsageError{Err: errors.New("--nodes must be at least 1 (the control plane)")}
	}
	switch o.CNI {
	case "none", "calico", "flannel":
	default:
		return &UsageError{Err: fmt.Errorf("--cni %q: use none, calico or flannel", o.CNI)}
	}
	if o.PodsPerNode > 0 && o.CNI == "none" {
		return &UsageError{Err: errors.New("--pods-per-node needs --cni: without a network the pods would stay Pending")}
	}
	if o.Hosts != "on" && o.Hosts != "off" {
		return &UsageError{Err: fmt.Errorf("--hosts %q: use on or off", o.Hosts)}
	}
	if o.Hosts == "on" {
		if o.Nodes > 100 {
			return &UsageError{Err: errors.New("--hosts on runs an sshd per node: at most 100 nodes")}
		}
		if err := hosts.Check(); err != nil {
			return err
		}
	}
	if o.BinDir == "" {
		return &UsageError{Err: errors.New("--bin-dir (or GRAPPE_LAB_BIN) must name the built binaries; use lab/lab, which builds them")}
	}
	for _, bin := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"} {
		if _, err := os.Stat(filepath.Join(o.BinDir, bin)); err != nil {
			return fmt.Errorf("binary %s missing in %s (run lab/lab, which builds it): %w", bin, o.BinDir, err)
		}
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return err
	}
	cfg := config.Defaults(dir)
	cfg.PortBase = o.PortBase
	cfg.Workers = o.Nodes - 1
	cfg.PodsPerNode = o.PodsPerNode
	cfg.NodeCIDR = o.NodeCIDR
	cfg.PodSubnet = o.PodSubnet
	if cfg.PodSubnet == "" {
		cfg.PodSubnet = "192.168.0.0/16"
		if o.Nodes > 250 {
			cfg.PodSubnet = "100.64.0.0/10"
		}
	}
	cfg.Hosts = o.Hosts == "on"
	cfg.BinDir, _ = filepath.Abs(o.BinDir)
	if o.ManifestsDir != "" {
		cfg.ManifestsDir, _ = filepath.Abs(o.ManifestsDir)
	}
	if existing, err := config.Load(dir); err == nil {
		if existing.PortBase != cfg.PortBase || existing.Workers != cfg.Workers || existing.NodeCIDR != cfg.NodeCIDR || existing.PodSubnet != cfg.PodSubnet || existing.Hosts != cfg.Hosts {
			return fmt.Errorf("a lab with other settings exists in %s (%d nodes, port base %d): run `lab down` first",
				dir, existing.Workers+1, existing.PortBase)
		}
	}
	nodes, err := cfg.Nodes()
	if err != nil {
		return &UsageError{Err: err}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := cfg.Save(); err != nil {
		return err
	}
	paths, err := pki.Ensure(cfg.File("pki"), []net.IP{nodes[0].IP})
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	if err := writeKubeconfig(&cfg, paths); err != nil {
		return err
	}
	if err := os.WriteFile(cfg.File("kwok-stages.yaml"), stages.YAML, 0o644); err != nil {
		return err
	}
	step(out, start, "lab %s: %d nodes, API server %s", dir, o.Nodes, cfg.APIServerURL())

	m := proc.Manager{Dir: dir}
	if err := checkPorts(&cfg, m); err != nil {
		return err
	}
	if _, err := m.Start(etcdSpec(&cfg)); err != nil {
		return err
	}
	if err := waitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/health", cfg.EtcdClientPort()), nil, 60*time.Second); err != nil {
		return fmt.Errorf("etcd did not become healthy: %w\n%s", err, m.TailLog("etcd", 20))
	}
	step(out, start, "etcd healthy")
	if err := startAPIServer(ctx, &cfg, m); err != nil {
		return err
	}
	step(out, start, "kube-apiserver ready")
	self, err := os.Executable()
	if err != nil {
		return err
	}
	for _, s := range []proc.Spec{kcmSpec(&cfg), schedulerSpec(&cfg), kwokSpec(&cfg), {
		Name: "footprint", Path: self, Args: []string{"footprint", "--dir", dir}, Env: cfg.GoEnv(),
	}} {
		if _, err := m.Start(s); err != nil {
			return err
		}
	}
	step(out, start, "controller-manager, scheduler, kwok and the CNI footprint started")

	client, restCfg, err := Clients(&cfg)
	if err != nil {
		return err
	}
	if err := seed.Seed(ctx, client, &cfg); err != nil {
		return fmt.Errorf("seeding the cluster: %w", err)
	}
	step(out, start, "seeded: kubeadm-config, mirror pods, kube-proxy, CoreDNS, demo workloads")
	if err := waitNodesInitialized(ctx, client, len(nodes), out, start); err != nil {
		return fmt.Errorf("%w\nkwok log:\n%s", err, m.TailLog("kwok", 20))
	}
	step(out, start, "%d nodes registered with pod CIDRs (NotReady until a CNI is installed)", len(nodes))
	if cfg.Hosts {
		if err := hosts.Up(ctx, &cfg, m, self); err != nil {
			return fmt.Errorf("lab hosts: %w", err)
		}
		step(out, start, "%d hosts answer SSH on their InternalIP (key %s, known hosts %s)", len(nodes), cfg.File("ssh", "id_ed25519"), cfg.File("ssh", "known_hosts"))
	}

	if o.CNI != "none" {
		manifest, err := cniManifest(&cfg, o.CNI)
		if err != nil {
			return err
		}
		if err := applyManifest(ctx, restCfg, manifest, "apply"); err != nil {
			return err
		}
		step(out, start, "applied %s", filepath.Base(manifest))
		if err := waitNodesReady(ctx, client, len(nodes), out, start); err != nil {
			return err
		}
		step(out, start, "%s running: all %d nodes Ready", o.CNI, len(nodes))
	}
	if o.PodsPerNode > 0 && o.CNI != "none" {
		// Bare pods bound to their node: at 5,000 nodes the scheduler binds a few pods per
		// second on 2 cores, the API server creates them more than ten times faster.
		workers, err := workerNames(&cfg)
		if err != nil {
			return err
		}
		counter, err := startPodReadyCounter(ctx, client, BenchNamespace)
		if err != nil {
			return err
		}
		want := o.PodsPerNode * len(workers)
		if err := createBoundPods(ctx, client, workers, o.PodsPerNode, counter.Ready, out); err != nil {
			return err
		}
		step(out, start, "%d load pods created in namespace %s", want, BenchNamespace)
		if err := counter.wait(ctx, want, out, start); err != nil {
			return err
		}
		step(out, start, "%d load pods Ready", want)
	}
	fmt.Fprintf(out, "\nLab up in %.1fs.\nkubeconfig: %s\n  export KUBECONFIG=%s\n", time.Since(start).Seconds(), cfg.Kubeconfig(), cfg.Kubeconfig())
	return nil
}

// checkPorts refuses to start when a port this lab needs is taken by something else (another
// lab, most likely), instead of failing later with a component's bind error.
func checkPorts(cfg *config.Config, m proc.Manager) error {
	ports := map[string]int{
		"etcd": cfg.EtcdClientPort(), "kube-apiserver": cfg.APIServerPort(),
		"kube-controller-manager": cfg.KCMPort(), "kube-scheduler": cfg.SchedulerPort(), "kwok": cfg.KwokPort(),
	}
	for name, port := range ports {
		if m.Pid(name) != 0 {
			continue // ours, already running
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return fmt.Errorf("port %d (for %s) is in use, by another lab perhaps: choose another --port-base or stop it", port, name)
		}
		l.Close()
	}
	return nil
}

func cniManifest(cfg *config.Config, cni string) (string, error) {
	if cfg.ManifestsDir == "" {
		return "", errors.New("--manifests (or GRAPPE_MANIFESTS) must name the directory with the CNI manifests")
	}
	name := map[string]string{"calico": "calico-v3.25.1.yaml", "flannel": "kube-flannel-v0.28.9.yml"}[cni]
	path := filepath.Join(cfg.ManifestsDir, name)
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("manifest for %s: %w", cni, err)
	}
	return path, nil
}

func writeKubeconfig(cfg *config.Config, p pki.Paths) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubernetes"] = &clientcmdapi.Cluster{Server: cfg.APIServerURL(), CertificateAuthority: p.CACert}
	kc.AuthInfos["kubernetes-admin"] = &clientcmdapi.AuthInfo{ClientCertificate: p.AdminCert, ClientKey: p.AdminKey}
	kc.Contexts["kubernetes-admin@kubernetes"] = &clientcmdapi.Context{Cluster: "kubernetes", AuthInfo: "kubernetes-admin"}
	kc.CurrentContext = "kubernetes-admin@kubernetes"
	return clientcmd.WriteToFile(*kc, cfg.Kubeconfig())
}

// Clients returns a typed client and rest config for the lab (admin).
func Clients(cfg *config.Config) (kubernetes.Interface, *rest.Config, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig())
	if err != nil {
		return nil, nil, err
	}
	rc.QPS = 500
	rc.Burst = 1000
	rc.Timeout = 60 * time.Second
	// Protobuf for built-in types: much cheaper for the API server to encode than JSON.
	typed := rest.CopyConfig(rc)
	typed.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	typed.ContentType = "application/vnd.kubernetes.protobuf"
	c, err := kubernetes.NewForConfig(typed)
	return c, rc, err
}

func adminTLS(cfg *config.Config) (*tls.Config, error) {
	p := pki.PathsIn(cfg.File("pki"))
	cert, err := tls.LoadX509KeyPair(p.AdminCert, p.AdminKey)
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(p.CACert)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

func waitHTTP(ctx context.Context, url string, tlsCfg *tls.Config, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		resp, err := client.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
		} else {
			last = err
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("timed out after %s: %v", timeout, last)
}

// waitNodesInitialized waits until want nodes are registered with their pod CIDR.
func waitNodesInitialized(ctx context.Context, c kubernetes.Interface, want int, out io.Writer, start time.Time) error {
	return waitNodes(ctx, c, want, "registered", out, start, func(n *corev1.Node) bool {
		return readyCondition(n) != nil && n.Spec.PodCIDR != ""
	})
}

// waitNodesReady waits until want nodes are Ready.
func waitNodesReady(ctx context.Context, c kubernetes.Interface, want int, out io.Writer, start time.Time) error {
	return waitNodes(ctx, c, want, "Ready", out, start, func(n *corev1.Node) bool {
		rc := readyCondition(n)
		return rc != nil && rc.Status == corev1.ConditionTrue
	})
}

// waitNodes waits until want nodes satisfy ok, listed from the API server's cache, with
// [waitProgress]'s reports and stall limit (a list the busy API server fails is no progress).
func waitNodes(ctx context.Context, c kubernetes.Interface, want int, what string, out io.Writer, start time.Time, ok func(*corev1.Node) bool) error {
	return waitProgress(ctx, want, "nodes "+what, out, start, func() (int, error) {
		list, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return 0, err
		}
		n := 0
		for i := range list.Items {
			if ok(&list.Items[i]) {
				n++
			}
		}
		return n, nil
	})
}

// waitProgress polls count every [progressPoll] until it reaches want, reporting every
// [progressReport]. It has no deadline: it fails when count has not grown for [stallTimeout]
// (an error from count is taken as no progress this round, and named if it comes to that).
func waitProgress(ctx context.Context, want int, what string, out io.Writer, start time.Time, count func() (int, error)) error {
	best, lastGain, lastReport := 0, time.Now(), time.Now()
	var lastErr error
	for {
		n, err := count()
		if err != nil {
			lastErr = err
		} else if n >= want {
			return nil
		} else if n > best {
			best, lastGain = n, time.Now()
		}
		if time.Since(lastGain) > stallTimeout {
			if lastErr != nil {
				return fmt.Errorf("no progress for %s: %d/%d %s (last error: %w)", stallTimeout, best, want, what, lastErr)
			}
			return fmt.Errorf("no progress for %s: %d/%d %s", stallTimeout, best, want, what)
		}
		if time.Since(lastReport) > progressReport {
			step(out, start, "%d/%d %s", best, want, what)
			lastReport = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(progressPoll):
		}
	}
}

func readyCondition(n *corev1.Node) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

// poll calls f every 500 ms until it says done, ctx ends or timeout passes.
func poll(ctx context.Context, timeout time.Duration, f func() (bool, string, error)) error {
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		done, state, err := f()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		last = state
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s (%s)", timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Down stops every process and removes the lab directory.
func Down(dir string, out io.Writer) error {
	m := proc.Manager{Dir: dir}
	if cfg, err := config.Load(dir); err == nil {
		if err := hosts.Down(&cfg, m); err != nil {
			return fmt.Errorf("lab hosts: %w", err)
		}
	}
	// In reverse order of start; the Tigera operator right after the footprint that starts it.
	stop := []string{footprint.OperatorProcess}
	for i := len(components) - 1; i >= 0; i-- {
		stop = append(stop, components[i])
	}
	stop[0], stop[1] = stop[1], stop[0]
	for i := range stop {
		if err := m.Stop(stop[i], 10*time.Second); err != nil {
			return fmt.Errorf("stop %s: %w", stop[i], err)
		}
	}
	if _, err := os.Stat(dir); err == nil {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		fmt.Fprintf(out, "lab in %s stopped and removed\n", dir)
	} else {
		fmt.Fprintf(out, "no lab in %s\n", dir)
	}
	return nil
}

// RunFootprint runs the CNI footprint controller until ctx ends.
func RunFootprint(ctx context.Context, dir string) error {
	cfg, err := config.Load(dir)
	if err != nil {
		return err
	}
	var ctrl *footprint.Controller
	// The API server may be down (failure injection): keep trying.
	for {
		_, rc, err := Clients(&cfg)
		if err == nil {
			ctrl, err = footprint.New(&cfg, rc)
		}
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
	return ctrl.Run(ctx, 16)
}
