package hosts

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Cluster is what the host tools need from the lab beyond the node's files: the kubelet's
// effect on the Node object and the control plane's static pods.
type Cluster interface {
	// SetKubelet makes the node's kubelet post status again (running) or stop (the node goes
	// NotReady after the grace period).
	SetKubelet(ctx context.Context, node string, running bool) error
	// APIServer reports whether the lab's kube-apiserver runs and since when.
	APIServer() (running bool, since time.Time)
	// StartAPIServer (re)starts the lab's kube-apiserver and waits until it is ready.
	StartAPIServer(ctx context.Context) error
	// StopAPIServer stops it (its static pod's manifest is gone).
	StopAPIServer() error
	// BGPSessions lists the node's BGP sessions as its BIRD has them, and whether
	// calico-node (hence BIRD) runs there.
	BGPSessions(ctx context.Context, node string) ([]BGPSession, bool, error)
}

// IO are a host tool's standard streams.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
}

// Tool runs one host tool as the real command would on that node and returns its exit code.
func Tool(ctx context.Context, h Host, c Cluster, tool string, args []string, s IO) int {
	t := toolRun{ctx: ctx, h: h, c: c, args: args, IO: s}
	switch tool {
	case "systemctl":
		return t.systemctl()
	case "journalctl":
		return t.journalctl()
	case "kubeadm":
		return t.kubeadm()
	case "crictl":
		return t.crictl()
	case "ipvsadm":
		return t.ipvsadm()
	case "birdcl":
		return t.birdcl()
	}
	fmt.Fprintf(s.Err, "%s: not a lab host tool\n", tool)
	return 127
}

type toolRun struct {
	IO
	ctx  context.Context
	h    Host
	c    Cluster
	args []string
}

// valueFlags are the options of the host tools that take a value (`-n 20`).
var valueFlags = map[string]bool{"-n": true, "--lines": true, "-u": true, "--unit": true, "--name": true, "-o": true, "--output": true, "--since": true, "-s": true}

// positional drops options (words starting with -) and the values of those that take one.
func positional(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if valueFlags[a] {
			i++
			continue
		}
		if !strings.HasPrefix(a, "-") {
			out = append(out, a)
		}
	}
	return out
}

func has(args []string, flags ...string) bool {
	for _, a := range args {
		for _, f := range flags {
			if a == f {
				return true
			}
		}
	}
	return false
}

// value returns the value of --flag V, --flag=V or -f V.
func value(args []string, flags ...string) (string, bool) {
	for i, a := range args {
		for _, f := range flags {
			if a == f && i+1 < len(args) {
				return args[i+1], true
			}
			if strings.HasPrefix(a, f+"=") {
				return strings.TrimPrefix(a, f+"="), true
			}
		}
	}
	return "", false
}

// kubelet state: "active <unix>" or "inactive <unix>" in state/kubelet.
func setKubelet(h Host, state string, since time.Time) error {
	return os.WriteFile(h.File("state", "kubelet"), []byte(fmt.Sprintf("%s %d\n", state, since.Unix())), 0o644)
}

func kubeletState(h Host) (string, time.Time) {
	data, err := os.ReadFile(h.File("state", "kubelet"))
	if err != nil {
		return "inactive", time.Time{}
	}
	f := strings.Fields(string(data))
	if len(f) != 2 {
		return "inactive", time.Time{}
	}
	sec, _ := strconv.ParseInt(f[1], 10, 64)
	return f[0], time.Unix(sec, 0)
}

func kubeletPid(since time.Time) int { return 1000 + int(since.Unix()%90000) }

// journal appends kubelet lines, formatted as journalctl prints them.
func (h Host) journal(t time.Time, lines ...string) error {
	f, err := os.OpenFile(h.File("state", "journal"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, since := kubeletState(h)
	for _, l := range lines {
		prefix := fmt.Sprintf("%s %s kubelet[%d]: ", t.Format("Jan 02 15:04:05"), h.Node.Name, kubeletPid(since))
		if strings.HasPrefix(l, "Started ") || strings.HasPrefix(l, "Stopped ") || strings.HasPrefix(l, "Stopping ") {
			prefix = fmt.Sprintf("%s %s systemd[1]: ", t.Format("Jan 02 15:04:05"), h.Node.Name)
		}
		if _, err := fmt.Fprintln(f, prefix+l); err != nil {
			return err
		}
	}
	return nil
}

func (h Host) journalLines() []string {
	f, err := os.Open(h.File("state", "journal"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

func tail(lines []string, n int) []string {
	if n >= 0 && len(lines) > n {
		return lines[len(lines)-n:]
	}
	return lines
}

func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dmin ago", int(d.Minutes()))
	default:
		return fmt.Sprintf("%dh %dmin ago", int(d.Hours()), int(d.Minutes())%60)
	}
}

func (t toolRun) systemctl() int {
	pos := positional(t.args)
	if len(pos) == 0 {
		fmt.Fprintln(t.Err, "systemctl: the lab's systemctl knows status, start, stop, restart and is-active")
		return 1
	}
	verb := pos[0]
	units := pos[1:]
	for _, u := range units {
		if strings.TrimSuffix(u, ".service") != "kubelet" {
			fmt.Fprintf(t.Err, "Unit %s could not be found.\n", u)
			return 4
		}
	}
	if len(units) == 0 {
		fmt.Fprintf(t.Err, "Too few arguments.\n")
		return 1
	}
	now := time.Now()
	switch verb {
	case "status":
		lines := 10
		if v, ok := value(t.args, "-n", "--lines"); ok {
			lines, _ = strconv.Atoi(v)
		}
		state, since := kubeletState(t.h)
		fmt.Fprintf(t.Out, "● kubelet.service - kubelet: The Kubernetes Node Agent\n")
		fmt.Fprintf(t.Out, "     Loaded: loaded (/lib/systemd/system/kubelet.service; enabled; preset: enabled)\n")
		fmt.Fprintf(t.Out, "    Drop-In: /usr/lib/systemd/system/kubelet.service.d\n             └─10-kubeadm.conf\n")
		when := since.Format("Mon 2006-01-02 15:04:05 MST")
		if state == "active" {
			fmt.Fprintf(t.Out, "     Active: active (running) since %s; %s\n", when, ago(now.Sub(since)))
			fmt.Fprintf(t.Out, "       Docs: https://kubernetes.io/docs/\n")
			fmt.Fprintf(t.Out, "   Main PID: %d (kubelet)\n", kubeletPid(since))
			fmt.Fprintf(t.Out, "     CGroup: /system.slice/kubelet.service\n             └─%d /usr/bin/kubelet --bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf --config=/var/lib/kubelet/config.yaml\n", kubeletPid(since))
		} else {
			fmt.Fprintf(t.Out, "     Active: inactive (dead) since %s; %s\n", when, ago(now.Sub(since)))
			fmt.Fprintf(t.Out, "       Docs: https://kubernetes.io/docs/\n")
		}
		if j := tail(t.h.journalLines(), lines); len(j) > 0 {
			fmt.Fprintf(t.Out, "\n%s\n", strings.Join(j, "\n"))
		}
		if state != "active" {
			return 3
		}
		return 0
	case "is-active":
		state, _ := kubeletState(t.h)
		if !has(t.args, "-q", "--quiet") {
			fmt.Fprintln(t.Out, state)
		}
		if state != "active" {
			return 3
		}
		return 0
	case "start", "restart":
		if verb == "restart" {
			if err := t.h.journal(now, "Stopping kubelet.service - kubelet: The Kubernetes Node Agent...", "Stopped kubelet.service - kubelet: The Kubernetes Node Agent."); err != nil {
				return t.fail(err)
			}
		}
		if err := setKubelet(t.h, "active", now); err != nil {
			return t.fail(err)
		}
		if err := t.h.journal(now, "Started kubelet.service - kubelet: The Kubernetes Node Agent."); err != nil {
			return t.fail(err)
		}
		code := t.staticPods(now)
		if exists(t.h.FS("/etc/kubernetes/kubelet.conf")) {
			if err := t.c.SetKubelet(t.ctx, t.h.Node.Name, true); err != nil {
				_ = t.h.journal(time.Now(), fmt.Sprintf("E0000 kubelet_node_status.go:549] \"Error updating node status, will retry\" err=%q", err.Error()))
			}
		}
		return code
	case "stop":
		if err := setKubelet(t.h, "inactive", now); err != nil {
			return t.fail(err)
		}
		if err := t.h.journal(now, "Stopping kubelet.service - kubelet: The Kubernetes Node Agent...", "Stopped kubelet.service - kubelet: The Kubernetes Node Agent."); err != nil {
			return t.fail(err)
		}
		if err := t.c.SetKubelet(t.ctx, t.h.Node.Name, false); err != nil {
			_ = t.h.journal(now, "lab: the Node could not be marked: "+err.Error())
		}
		return 0
	}
	fmt.Fprintf(t.Err, "Unknown command verb '%s'.\n", verb)
	return 1
}

// staticPods plays the kubelet's start on the control-plane host: the kube-apiserver static pod
// runs when its manifest is there; a manifest touched since the container started restarts it
// (what the seed's `touch kube-apiserver.yaml && systemctl restart kubelet` relies on).
func (t toolRun) staticPods(now time.Time) int {
	if !t.h.Node.ControlPlane {
		return 0
	}
	manifest, err := os.Stat(t.h.FS("/etc/kubernetes/manifests/kube-apiserver.yaml"))
	if err != nil {
		return 0
	}
	running, since := t.c.APIServer()
	if running && !manifest.ModTime().After(since) {
		return 0
	}
	if running {
		if err := t.c.StopAPIServer(); err != nil {
			return t.fail(err)
		}
	}
	_ = t.h.journal(now, "I0000 kubelet.go:2456] \"SyncLoop ADD\" source=\"file\" pods=[\"kube-system/kube-apiserver-"+t.h.Node.Name+"\"]")
	if err := t.c.StartAPIServer(t.ctx); err != nil {
		_ = t.h.journal(time.Now(), fmt.Sprintf("E0000 pod_workers.go:1301] \"Error syncing pod, skipping\" pod=\"kube-system/kube-apiserver-%s\" err=%q", t.h.Node.Name, err.Error()))
		return 0
	}
	_ = t.h.journal(time.Now(), "I0000 kubelet.go:2488] \"SyncLoop (PLEG): event for pod\" pod=\"kube-system/kube-apiserver-"+t.h.Node.Name+"\" event={\"Type\":\"ContainerStarted\"}")
	return 0
}

func (t toolRun) fail(err error) int {
	fmt.Fprintf(t.Err, "%v\n", err)
	return 1
}

func (t toolRun) journalctl() int {
	unit, ok := value(t.args, "-u", "--unit")
	if ok && strings.TrimSuffix(unit, ".service") != "kubelet" {
		fmt.Fprintln(t.Out, "-- No entries --")
		return 0
	}
	n := -1
	if v, ok := value(t.args, "-n", "--lines"); ok {
		n, _ = strconv.Atoi(v)
	}
	lines := tail(t.h.journalLines(), n)
	if len(lines) == 0 {
		fmt.Fprintln(t.Out, "-- No entries --")
		return 0
	}
	fmt.Fprintln(t.Out, strings.Join(lines, "\n"))
	return 0
}

type container struct{ name, image, state string }

func (t toolRun) containers() []container {
	state, _ := kubeletState(t.h)
	if state != "active" && !exists(t.h.FS("/etc/kubernetes/kubelet.conf")) {
		return nil // removed by kubeadm reset
	}
	var out []container
	if t.h.Node.ControlPlane {
		running, _ := t.c.APIServer()
		apiState := "Exited"
		if running {
			apiState = "Running"
		}
		out = append(out, container{"etcd", "registry.k8s.io/etcd:3.6.5-0", "Running"},
			container{"kube-apiserver", "registry.k8s.io/kube-apiserver:v1.35.8", apiState},
			container{"kube-controller-manager", "registry.k8s.io/kube-controller-manager:v1.35.8", "Running"},
			container{"kube-scheduler", "registry.k8s.io/kube-scheduler:v1.35.8", "Running"})
	}
	out = append(out, container{"kube-proxy", "registry.k8s.io/kube-proxy:v1.35.8", "Running"})
	if exists(t.h.File("state", "cni-calico")) {
		out = append(out, container{"calico-node", "docker.io/calico/node:v3.25.1", "Running"})
	}
	return out
}

func (t toolRun) crictl() int {
	pos := positional(t.args)
	if len(pos) == 0 || pos[0] != "ps" {
		fmt.Fprintln(t.Err, "crictl: the lab's crictl knows ps [-a] [--name NAME]")
		return 1
	}
	name, _ := value(t.args, "--name")
	all := has(t.args, "-a", "--all")
	fmt.Fprintf(t.Out, "%-15s %-50s %-15s %-10s %-25s %-8s %s\n", "CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD")
	for i, c := range t.containers() {
		if name != "" && !strings.Contains(c.name, name) {
			continue
		}
		if !all && c.state != "Running" {
			continue
		}
		fmt.Fprintf(t.Out, "%-15s %-50s %-15s %-10s %-25s %-8d %s\n", fmt.Sprintf("%013x", 0xc0ffee0000+i), c.image, "About an hour ago", c.state, c.name, 0, c.name+"-"+t.h.Node.Name)
	}
	return 0
}

func (t toolRun) ipvsadm() int {
	file := t.h.File("state", "ipvs")
	data, _ := os.ReadFile(file)
	switch {
	case has(t.args, "-C", "--clear"):
		if err := os.WriteFile(file, nil, 0o644); err != nil {
			return t.fail(err)
		}
		return 0
	case has(t.args, "-S", "--save"):
		fmt.Fprint(t.Out, string(data))
		return 0
	case len(t.args) == 0 || has(t.args, "-L", "-l", "--list", "-Ln"):
		fmt.Fprintln(t.Out, "IP Virtual Server version 1.2.1 (size=4096)")
		fmt.Fprintln(t.Out, "Prot LocalAddress:Port Scheduler Flags")
		fmt.Fprintln(t.Out, "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn")
		fmt.Fprint(t.Out, string(data))
		return 0
	}
	fmt.Fprintln(t.Err, "ipvsadm: the lab's ipvsadm knows -L/-Ln, -S and -C (this kernel has no IPVS)")
	return 2
}

func (t toolRun) kubeadm() int {
	pos := positional(t.args)
	if len(pos) == 0 {
		fmt.Fprintln(t.Err, "kubeadm: the lab's kubeadm knows reset and version")
		return 1
	}
	switch pos[0] {
	case "version":
		fmt.Fprintf(t.Out, "kubeadm version: &version.Info{Major:\"1\", Minor:\"35\", GitVersion:\"v1.35.8\"}\n")
		return 0
	case "reset":
		return t.reset()
	}
	fmt.Fprintf(t.Err, "unknown command %q for \"kubeadm\"\n", pos[0])
	return 1
}

// SlowResetFlag is the host state file that makes kubeadm reset wait (`lab break slow-reset`):
// it holds the duration.
const SlowResetFlag = "slow-reset"

// reset does what kubeadm reset does on a node (cmd/kubeadm/app/cmd/phases/reset) and prints
// what it prints, warnings about what it leaves behind included.
func (t toolRun) reset() int {
	now := time.Now()
	klog := func(file string, format string, args ...any) {
		fmt.Fprintf(t.Err, "W%s %7d %s] %s\n", now.Format("0102 15:04:05.000000"), os.Getpid(), file, fmt.Sprintf(format, args...))
	}
	apiUp, _ := t.c.APIServer()
	fmt.Fprintln(t.Out, "[reset] Reading configuration from the cluster...")
	fmt.Fprintln(t.Out, "[reset] FYI: You can look at this config file with 'kubectl -n kube-system get cm kubeadm-config -o yaml'")
	if !apiUp {
		klog("reset.go:124", "[reset] Unable to fetch the kubeadm-config ConfigMap from cluster: failed to get config map: connection refused")
	}
	klog("preflight.go:56", "[reset] WARNING: Changes made to this host by 'kubeadm init' or 'kubeadm join' will be reverted.")
	if !has(t.args, "-f", "--force") {
		fmt.Fprint(t.Out, "[reset] Are you sure you want to proceed? [y/N]: ")
		answer, _ := bufio.NewReader(t.In).ReadString('\n')
		if strings.ToLower(strings.TrimSpace(answer)) != "y" {
			fmt.Fprintln(t.Err, "error execution phase preflight: won't proceed; the user didn't answer (Y|y) in order to continue")
			return 1
		}
	}
	fmt.Fprintln(t.Out, "[preflight] Running pre-flight checks")
	if t.h.Node.ControlPlane {
		if err := clearDir(t.h.FS("/var/lib/etcd")); err != nil {
			return t.fail(err)
		}
		fmt.Fprintln(t.Out, "[reset] Deleted contents of the etcd data directory: /var/lib/etcd")
	}
	if data, err := os.ReadFile(t.h.File("state", SlowResetFlag)); err == nil {
		// `lab break slow-reset`: stopping the containers takes its time, as on a busy node.
		if d, err := time.ParseDuration(strings.TrimSpace(string(data))); err == nil {
			fmt.Fprintln(t.Out, "[reset] Stopping the running containers...")
			time.Sleep(d)
		}
	}
	fmt.Fprintln(t.Out, "[reset] Stopping the kubelet service")
	_ = setKubelet(t.h, "inactive", now)
	_ = t.h.journal(now, "Stopping kubelet.service - kubelet: The Kubernetes Node Agent...", "Stopped kubelet.service - kubelet: The Kubernetes Node Agent.")
	if err := t.c.SetKubelet(t.ctx, t.h.Node.Name, false); err != nil {
		klog("cleanupnode.go:71", "[reset] The node could not be marked: %v", err)
	}
	fmt.Fprintln(t.Out, "[reset] Unmounting mounted directories in \"/var/lib/kubelet\"")
	if exists(t.h.File("state", "cni-calico")) && !apiUp {
		klog("cleanupnode.go:99", "[reset] Failed to remove containers: [failed to stop running pod: plugin type=\"calico\" failed (delete): error getting ClusterInformation: connection refused]")
	}
	if t.h.Node.ControlPlane {
		if err := t.c.StopAPIServer(); err != nil {
			klog("cleanupnode.go:99", "[reset] Failed to remove containers: %v", err)
		}
	}
	dirs := []string{"/etc/kubernetes/manifests", "/var/lib/kubelet", "/etc/kubernetes/pki"}
	for _, d := range dirs {
		if err := clearDir(t.h.FS(d)); err != nil {
			return t.fail(err)
		}
	}
	fmt.Fprintf(t.Out, "[reset] Deleting contents of directories: [%s]\n", strings.Join(dirs, " "))
	files := []string{"/etc/kubernetes/admin.conf", "/etc/kubernetes/super-admin.conf", "/etc/kubernetes/kubelet.conf", "/etc/kubernetes/bootstrap-kubelet.conf", "/etc/kubernetes/controller-manager.conf", "/etc/kubernetes/scheduler.conf"}
	for _, f := range files {
		if err := os.Remove(t.h.FS(f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return t.fail(err)
		}
	}
	fmt.Fprintf(t.Out, "[reset] Deleting files: [%s]\n", strings.Join(files, " "))
	fmt.Fprint(t.Out, `
The reset process does not clean CNI configuration. To do so, you must remove /etc/cni/net.d

The reset process does not reset or clean up iptables rules or IPVS tables.
If you wish to reset iptables, you must do so manually by using the "iptables" command.

If your cluster was setup to utilize IPVS, run ipvsadm --clear (or similar)
to reset your system's IPVS tables.

The reset process does not clean your kubeconfig files and you must remove them manually.
Please, check the contents of the $HOME/.kube/config file.
`)
	return 0
}

// clearDir removes a directory's contents, keeping the directory.
func clearDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
