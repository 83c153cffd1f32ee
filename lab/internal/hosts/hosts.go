// Package hosts turns the lab's nodes into hosts that Grappe reaches over SSH: per node a
// network namespace holding the node's InternalIP (one bridge per lab, on the node CIDR's last
// address, joins them to the machine), a real OpenSSH server inside it, and the node's own
// copies of the paths the runbook touches, bind-mounted over /etc/cni, /opt/cni, /var/lib,
// /etc/kubernetes and /root/.kube in the sshd's private mount namespace. iptables there is the
// real one (the namespace's own tables). kubeadm, systemctl, journalctl, crictl and ipvsadm are
// lab host tools (tools.go) shadowing the real ones in /usr/local/sbin: they act on the node's
// files and on the lab cluster as the real commands would.
//
// Layout, under <lab dir>/hosts/<node>/:
//
//	fs/...        the node's files (fs/etc/cni/net.d, fs/opt/cni/bin, fs/var/lib/{cni,kubelet},
//	              fs/etc/kubernetes/{manifests,pki,*.conf}, fs/root/.kube/config)
//	tools/        the host tools, mounted on /usr/local/sbin
//	state/        what the host tools remember (kubelet state, journal, IPVS table)
//	ssh/          sshd_config and the host key
//
// The lab-wide client key is <lab dir>/ssh/id_ed25519 (root may log in with it) and
// <lab dir>/ssh/known_hosts lists every host key, for tools that need them pinned beforehand.
package hosts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"grappe.dev/lab/internal/config"
	"grappe.dev/lab/internal/proc"
)

// Host is one node's host.
type Host struct {
	Node config.Node
	// Dir is <lab dir>/hosts/<node>.
	Dir string
	// NS is the network namespace's name.
	NS string
}

// File is a path inside the host's directory.
func (h Host) File(parts ...string) string {
	return filepath.Join(append([]string{h.Dir}, parts...)...)
}

// FS is a path on the host as its own commands see it (e.g. FS("/etc/cni/net.d")).
func (h Host) FS(path string) string { return h.File("fs", path) }

// ProcName is the sshd's name for the lab's process manager.
func (h Host) ProcName() string { return "sshd-" + h.Node.Name }

// mounts are the host paths that each node has its own copy of, bind-mounted in the sshd's
// mount namespace. /var/lib as a whole, so that `rm -rf /var/lib/cni` removes the directory
// itself as on a real host (a mount point could not be removed).
var mounts = []string{"/etc/cni", "/opt/cni", "/var/lib", "/etc/kubernetes", "/root/.kube"}

// ToolNames are the host tools installed in /usr/local/sbin.
var ToolNames = []string{"kubeadm", "systemctl", "journalctl", "crictl", "ipvsadm", "birdcl"}

// List returns the lab's hosts (none when the lab runs without them).
func List(cfg *config.Config) ([]Host, error) {
	if !cfg.Hosts {
		return nil, nil
	}
	nodes, err := cfg.Nodes()
	if err != nil {
		return nil, err
	}
	out := make([]Host, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, Host{Node: n, Dir: cfg.File("hosts", n.Name), NS: fmt.Sprintf("grappe-%d-%s", cfg.PortBase, n.Name)})
	}
	return out, nil
}

// Get returns one node's host.
func Get(cfg *config.Config, node string) (Host, error) {
	hosts, err := List(cfg)
	if err != nil {
		return Host{}, err
	}
	for _, h := range hosts {
		if h.Node.Name == node {
			return h, nil
		}
	}
	if !cfg.Hosts {
		return Host{}, errors.New("this lab runs without hosts (lab up --hosts)")
	}
	return Host{}, fmt.Errorf("no host for node %q", node)
}

// bridge names the lab's bridge (at most 15 characters).
func bridge(cfg *config.Config) string { return fmt.Sprintf("glab%d", cfg.PortBase) }

// rootNS names the handle on the machine's own network namespace, through which the host tools
// reach the lab's API server and processes from inside a node's namespace.
func rootNS(cfg *config.Config) string { return fmt.Sprintf("grappe-%d-root", cfg.PortBase) }

// gateway is the bridge's address: the node CIDR's last usable address.
func gateway(cfg *config.Config) (net.IP, int, error) {
	_, network, err := net.ParseCIDR(cfg.NodeCIDR)
	if err != nil {
		return nil, 0, err
	}
	ones, _ := network.Mask.Size()
	ip := make(net.IP, 4)
	copy(ip, network.IP.To4())
	for i := range ip {
		ip[i] |= ^network.Mask[i]
	}
	ip[3]--
	return ip, ones, nil
}

// Check says why hosts cannot run here, or nil.
func Check() error {
	if os.Geteuid() != 0 {
		return errors.New("lab hosts need root (network namespaces, an sshd per node); run as root or without --hosts")
	}
	for _, tool := range []string{"ip", "unshare", "sshd", "ssh-keygen", "iptables-restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			if _, err2 := os.Stat("/usr/sbin/" + tool); err2 == nil {
				continue
			}
			return fmt.Errorf("lab hosts need %s (scripts/setup installs openssh-server, iptables and iproute2): %w", tool, err)
		}
	}
	return nil
}

func run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// Up creates (or completes) every host and starts its sshd; self is the lab tool's path (the
// host tools run it). It returns once every sshd accepts connections.
func Up(ctx context.Context, cfg *config.Config, m proc.Manager, self string) error {
	hosts, err := List(cfg)
	if err != nil || len(hosts) == 0 {
		return err
	}
	if err := Check(); err != nil {
		return err
	}
	if err := clientKey(cfg); err != nil {
		return err
	}
	gw, ones, err := gateway(cfg)
	if err != nil {
		return err
	}
	br := bridge(cfg)
	if !exists("/sys/class/net/" + br) {
		if err := refuseOverlap(cfg); err != nil {
			return err
		}
		if err := run("ip", "link", "add", br, "type", "bridge"); err != nil {
			return err
		}
		if err := run("ip", "addr", "add", fmt.Sprintf("%s/%d", gw, ones), "dev", br); err != nil {
			return err
		}
	}
	if err := run("ip", "link", "set", br, "up"); err != nil {
		return err
	}
	if !exists("/run/netns/" + rootNS(cfg)) {
		if err := run("ip", "netns", "attach", rootNS(cfg), fmt.Sprint(os.Getpid())); err != nil {
			return err
		}
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return err
	}
	var known strings.Builder
	for i, h := range hosts {
		if err := network(cfg, h, i, br, gw, ones); err != nil {
			return fmt.Errorf("host %s: %w", h.Node.Name, err)
		}
		fresh := !exists(h.File("state"))
		if err := seedFiles(cfg, h, self); err != nil {
			return fmt.Errorf("host %s: %w", h.Node.Name, err)
		}
		if fresh {
			if err := seedIptables(h); err != nil {
				return fmt.Errorf("host %s: %w", h.Node.Name, err)
			}
		}
		pub, err := sshdFiles(cfg, h)
		if err != nil {
			return fmt.Errorf("host %s: %w", h.Node.Name, err)
		}
		fmt.Fprintf(&known, "%s %s\n", h.Node.IP, pub)
		if _, err := m.Start(proc.Spec{Name: h.ProcName(), Path: "ip", Args: []string{
			"netns", "exec", h.NS, "unshare", "--mount", "--propagation", "private", "--",
			self, "host-init", "--dir", cfg.Dir, "--node", h.Node.Name,
		}}); err != nil {
			return err
		}
	}
	if err := os.WriteFile(cfg.File("ssh", "known_hosts"), []byte(known.String()), 0o644); err != nil {
		return err
	}
	for _, h := range hosts {
		if err := waitSSH(ctx, h, m); err != nil {
			return err
		}
	}
	return nil
}

// refuseOverlap stops a second lab from claiming node addresses already routed here.
func refuseOverlap(cfg *config.Config) error {
	_, network, err := net.ParseCIDR(cfg.NodeCIDR)
	if err != nil {
		return err
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return err
	}
	for _, iface := range ifaces {
		addrs, _ := iface.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && network.Contains(ipn.IP) {
				return fmt.Errorf("node CIDR %s is already in use on %s (%s), another lab's hosts most likely: run `lab down` there or choose --node-cidr", cfg.NodeCIDR, iface.Name, ipn)
			}
		}
	}
	return nil
}

func clientKey(cfg *config.Config) error {
	key := cfg.File("ssh", "id_ed25519")
	if exists(key) {
		return nil
	}
	if err := os.MkdirAll(cfg.File("ssh"), 0o700); err != nil {
		return err
	}
	return run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "grappe-lab", "-f", key)
}

func network(cfg *config.Config, h Host, i int, br string, gw net.IP, ones int) error {
	if !exists("/run/netns/" + h.NS) {
		if err := run("ip", "netns", "add", h.NS); err != nil {
			return err
		}
	}
	veth := fmt.Sprintf("gh%d-%d", cfg.PortBase, i)
	if len(veth) > 15 {
		return fmt.Errorf("interface name %s is too long", veth)
	}
	if !exists("/sys/class/net/" + veth) {
		steps := [][]string{
			{"link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", h.NS},
			{"link", "set", veth, "master", br},
			{"link", "set", veth, "up"},
			{"-n", h.NS, "addr", "add", fmt.Sprintf("%s/%d", h.Node.IP, ones), "dev", "eth0"},
			{"-n", h.NS, "link", "set", "eth0", "up"},
			{"-n", h.NS, "link", "set", "lo", "up"},
			{"-n", h.NS, "route", "add", "default", "via", gw.String()},
		}
		for _, s := range steps {
			if err := run("ip", s...); err != nil {
				return err
			}
		}
	}
	return nil
}

// sshdFiles writes the host's sshd_config and host key; it returns the public key line.
func sshdFiles(cfg *config.Config, h Host) (string, error) {
	if err := os.MkdirAll(h.File("ssh"), 0o700); err != nil {
		return "", err
	}
	key := h.File("ssh", "ssh_host_ed25519_key")
	if !exists(key) {
		if err := run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "root@"+h.Node.Name, "-f", key); err != nil {
			return "", err
		}
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		return "", err
	}
	authorized, err := os.ReadFile(cfg.File("ssh", "id_ed25519.pub"))
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(h.File("ssh", "authorized_keys"), authorized, 0o600); err != nil {
		return "", err
	}
	conf := fmt.Sprintf(`# sshd of lab host %s (written by lab up)
ListenAddress %s:22
HostKey %s
PidFile none
AuthorizedKeysFile %s
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
PrintLastLog no
`, h.Node.Name, h.Node.IP, key, h.File("ssh", "authorized_keys"))
	if err := os.WriteFile(h.File("ssh", "sshd_config"), []byte(conf), 0o600); err != nil {
		return "", err
	}
	f := strings.Fields(string(pub))
	if len(f) < 2 {
		return "", fmt.Errorf("%s.pub: unreadable", key)
	}
	return f[0] + " " + f[1], nil
}

func waitSSH(ctx context.Context, h Host, m proc.Manager) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(h.Node.IP.String(), "22"), time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) || m.Pid(h.ProcName()) == 0 {
			return fmt.Errorf("sshd of host %s does not answer on %s:22: %w\n%s", h.Node.Name, h.Node.IP, err, m.TailLog(h.ProcName(), 10))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Init runs inside the node's network namespace and a private mount namespace (lab up starts
// it so): it mounts the node's files over the host paths, then becomes the node's sshd.
func Init(cfg *config.Config, node string) error {
	h, err := Get(cfg, node)
	if err != nil {
		return err
	}
	binds := map[string]string{"/usr/local/sbin": h.File("tools")}
	for _, p := range mounts {
		binds[p] = h.FS(p)
	}
	for target, source := range binds {
		if err := os.MkdirAll(source, 0o755); err != nil {
			return err
		}
		// The mount point must exist on the machine; creating an empty directory is the only
		// trace a lab host leaves outside its namespace.
		if err := os.MkdirAll(target, 0o755); err != nil {
			return err
		}
		if err := syscall.Mount(source, target, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s on %s: %w", source, target, err)
		}
	}
	// sshd re-executes itself: it needs its absolute path.
	sshd := "/usr/sbin/sshd"
	if p, err := exec.LookPath("sshd"); err == nil && filepath.IsAbs(p) {
		sshd = p
	}
	return syscall.Exec(sshd, []string{sshd, "-D", "-e", "-f", h.File("ssh", "sshd_config")}, os.Environ())
}

// Down stops every sshd and removes the namespaces and the bridge.
func Down(cfg *config.Config, m proc.Manager) error {
	hosts, err := List(cfg)
	if err != nil {
		return err
	}
	var errs []error
	for i, h := range hosts {
		if err := m.Stop(h.ProcName(), 5*time.Second); err != nil {
			errs = append(errs, err)
		}
		veth := fmt.Sprintf("gh%d-%d", cfg.PortBase, i)
		if exists("/sys/class/net/" + veth) {
			errs = append(errs, run("ip", "link", "del", veth))
		}
		if exists("/run/netns/" + h.NS) {
			errs = append(errs, run("ip", "netns", "del", h.NS))
		}
	}
	if cfg.Hosts {
		if exists("/sys/class/net/" + bridge(cfg)) {
			errs = append(errs, run("ip", "link", "del", bridge(cfg)))
		}
		if exists("/run/netns/" + rootNS(cfg)) {
			errs = append(errs, run("ip", "netns", "del", rootNS(cfg)))
		}
	}
	return errors.Join(errs...)
}
