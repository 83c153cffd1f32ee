package labtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ssh runs a command on a lab host with the machine's OpenSSH client, the lab's key and its
// pinned host keys; it returns the combined output and the exit code.
func (l *lab) ssh(ip, command string) (string, int) {
	l.t.Helper()
	cmd := exec.Command("ssh", "-i", filepath.Join(l.dir, "ssh", "id_ed25519"),
		"-o", "UserKnownHostsFile="+filepath.Join(l.dir, "ssh", "known_hosts"),
		"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
		"root@"+ip, command)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(out), exit.ExitCode()
	}
	if err != nil {
		l.t.Fatalf("ssh %s %q: %v\n%s", ip, command, err, out)
	}
	return string(out), 0
}

func (l *lab) mustSSH(ip, command string) string {
	l.t.Helper()
	out, code := l.ssh(ip, command)
	if code != 0 {
		l.t.Fatalf("ssh %s %q: exit %d\n%s", ip, command, code, out)
	}
	return out
}

// TestHosts checks the nodes' hosts: a real sshd on each InternalIP in its own network
// namespace, the node's own files, the host tools, Calico's files after an install, a kubeadm
// reset that makes the node NotReady and leaves what kubeadm leaves, and the seed's recovery of
// a lost kube-apiserver (touch its manifest, restart the kubelet).
func TestHosts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the lab hosts need root (network namespaces and an sshd per node); run the lab suite as root")
	}
	// Its own node range: the test lab of scripts/test has hosts on the default 10.13.0.0/16.
	l := startLab(t, 18400, "--nodes", "3", "--hosts", "on", "--node-cidr", "10.15.0.0/16")
	const cp, worker, other = "10.15.0.10", "10.15.0.11", "10.15.0.12"

	l.run("each node is a host with its own files", func(t *testing.T, l *lab) {
		out := l.mustSSH(worker, "ls -A /etc/cni/net.d; echo ---; ls /opt/cni/bin; echo ---; ls /etc/kubernetes; echo ---; ip -4 -o addr show eth0")
		parts := strings.Split(out, "---")
		if strings.TrimSpace(parts[0]) != "" {
			t.Fatalf("a node without a CNI has files in /etc/cni/net.d:\n%s", out)
		}
		if !strings.Contains(parts[1], "host-local") || strings.Contains(parts[1], "calico") {
			t.Fatalf("/opt/cni/bin:\n%s", parts[1])
		}
		if strings.Contains(parts[2], "admin.conf") || !strings.Contains(parts[2], "kubelet.conf") {
			t.Fatalf("a worker's /etc/kubernetes:\n%s", parts[2])
		}
		if !strings.Contains(parts[3], worker+"/16") {
			t.Fatalf("eth0 does not hold the InternalIP %s:\n%s", worker, parts[3])
		}
		if cpFiles := l.mustSSH(cp, "ls /etc/kubernetes/manifests; test -f /root/.kube/config && echo kubeconfig"); !strings.Contains(cpFiles, "kube-apiserver.yaml") || !strings.Contains(cpFiles, "kubeconfig") {
			t.Fatalf("the control plane's files:\n%s", cpFiles)
		}
		// The namespace's iptables is its own and holds kube-proxy's chains.
		if nat := l.mustSSH(worker, "iptables -t nat -S"); !strings.Contains(nat, "-N KUBE-SERVICES") {
			t.Fatalf("nat table:\n%s", nat)
		}
		if machine, err := exec.Command("iptables", "-t", "nat", "-S").CombinedOutput(); err == nil && strings.Contains(string(machine), "KUBE-SEP-LAB") {
			t.Fatal("the host's rules leaked into the machine's own iptables")
		}
		status, code := l.ssh(worker, "systemctl status kubelet")
		if code != 0 || !strings.Contains(status, "active (running)") || !strings.Contains(status, "cni plugin not initialized") {
			t.Fatalf("systemctl status kubelet: exit %d\n%s", code, status)
		}
	})

	l.run("a wrong host key is refused by the client", func(t *testing.T, l *lab) {
		known := filepath.Join(t.TempDir(), "known_hosts")
		data, err := os.ReadFile(filepath.Join(l.dir, "ssh", "known_hosts"))
		if err != nil {
			t.Fatal(err)
		}
		// rigel's line carrying bellatrix's key.
		var lines []string
		var otherKey string
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			if strings.HasPrefix(line, other+" ") {
				otherKey = strings.TrimPrefix(line, other+" ")
			}
		}
		lines = append(lines, worker+" "+otherKey)
		if err := os.WriteFile(known, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("ssh", "-i", filepath.Join(l.dir, "ssh", "id_ed25519"), "-o", "UserKnownHostsFile="+known,
			"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "root@"+worker, "true").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "HOST IDENTIFICATION HAS CHANGED") {
			t.Fatalf("a changed key was accepted: %v\n%s", err, out)
		}
	})

	l.run("installing Calico drops its files on every host", func(t *testing.T, l *lab) {
		l.labCmd("cni", "apply", filepath.Join(manifests(t), "calico-v3.25.1.yaml"))
		for _, ip := range []string{cp, worker, other} {
			eventually(t, 90*time.Second, "calico's conflist on "+ip, func() error {
				out, code := l.ssh(ip, "ls /etc/cni/net.d /opt/cni/bin")
				if code != 0 || !strings.Contains(out, "10-calico.conflist") || !strings.Contains(out, "calico-ipam") {
					return fmt.Errorf("exit %d: %s", code, out)
				}
				return nil
			})
		}
		journal := l.mustSSH(worker, "journalctl -u kubelet --no-pager -n 20")
		if !strings.Contains(journal, "Calico CNI IPAM assigned addresses") {
			t.Fatalf("the kubelet's journal has no calico lines:\n%s", journal)
		}
		if filter := l.mustSSH(worker, "iptables -S"); !strings.Contains(filter, "-N cali-INPUT") {
			t.Fatalf("no Calico chains:\n%s", filter)
		}
	})

	l.run("birdcl answers from the peering; bgp-peer-down shows at both ends", func(t *testing.T, l *lab) {
		const bird = "birdcl -s /var/run/calico/bird.ctl show protocols"
		// Until calico-node set itself up on the node, BIRD's socket is not there.
		eventually(t, 60*time.Second, "the mesh in birdcl on "+worker, func() error {
			out, code := l.ssh(worker, bird)
			if code != 0 || !strings.Contains(out, "Mesh_10_15_0_10") || !strings.Contains(out, "Mesh_10_15_0_12") {
				return fmt.Errorf("exit %d:\n%s", code, out)
			}
			if strings.Contains(out, "Mesh_10_15_0_11 ") || strings.Count(out, "Established") != 2 {
				return fmt.Errorf("not two established sessions:\n%s", out)
			}
			return nil
		})
		l.labCmd("break", "bgp-peer-down", "rigel", "bellatrix")
		out := l.mustSSH(worker, bird)
		if !strings.Contains(out, "Mesh_10_15_0_12  BGP      master   start") || !strings.Contains(out, "Connection refused") {
			t.Fatalf("rigel's session with bellatrix is not down:\n%s", out)
		}
		if back := l.mustSSH(other, bird); !strings.Contains(back, "Mesh_10_15_0_11  BGP      master   start") {
			t.Fatalf("bellatrix's session with rigel is not down:\n%s", back)
		}
		l.labCmd("heal")
		if out := l.mustSSH(worker, bird); strings.Count(out, "Established") != 2 {
			t.Fatalf("after heal:\n%s", out)
		}
		if out, code := l.ssh(worker, "birdcl -s /var/run/bird.ctl show protocols"); code == 0 || !strings.Contains(out, "Unable to connect") {
			t.Fatalf("another socket answered: exit %d\n%s", code, out)
		}
	})

	l.run("mtu-mismatch makes larger packets to a host really drop", func(t *testing.T, l *lab) {
		ping := func(size int) int {
			_, code := l.ssh(cp, fmt.Sprintf("ping -n -q -M do -c 1 -W 1 -s %d %s", size-28, worker))
			return code
		}
		if ping(1500) != 0 {
			t.Fatal("a 1500-byte packet does not pass before the break")
		}
		l.labCmd("break", "mtu-mismatch", "rigel")
		if link := l.mustSSH(worker, "ip -o link show eth0"); !strings.Contains(link, "mtu 1400") {
			t.Fatalf("eth0 after the break: %s", link)
		}
		if ping(1500) == 0 || ping(1450) == 0 {
			t.Fatal("packets larger than rigel's MTU still pass")
		}
		if ping(1400) != 0 {
			t.Fatal("a 1400-byte packet does not pass")
		}
		l.labCmd("heal")
		if ping(1500) != 0 {
			t.Fatal("a 1500-byte packet does not pass after heal")
		}
	})

	l.run("kubeadm reset clears what kubeadm clears and warns about the rest", func(t *testing.T, l *lab) {
		out, code := l.ssh(other, "kubeadm reset -f")
		if code != 0 {
			t.Fatalf("kubeadm reset: exit %d\n%s", code, out)
		}
		for _, want := range []string{"[reset] Stopping the kubelet service", "does not clean CNI configuration", "ipvsadm --clear", "$HOME/.kube/config", "WARNING: Changes made to this host"} {
			if !strings.Contains(out, want) {
				t.Errorf("kubeadm reset did not say %q:\n%s", want, out)
			}
		}
		left := l.mustSSH(other, "ls -A /etc/kubernetes/manifests /etc/kubernetes/pki /var/lib/kubelet; ls /etc/kubernetes; ls /etc/cni/net.d; iptables -t nat -S | grep -c KUBE-; systemctl is-active kubelet || true")
		if strings.Contains(left, "kubelet.conf") || strings.Contains(left, "config.yaml") {
			t.Fatalf("kubeadm's files are left:\n%s", left)
		}
		if !strings.Contains(left, "10-calico.conflist") || !strings.Contains(left, "inactive") {
			t.Fatalf("the CNI files and a stopped kubelet should be left:\n%s", left)
		}
		eventually(t, 90*time.Second, "bellatrix NotReady", func() error {
			n, err := l.client.CoreV1().Nodes().Get(ctx(), "bellatrix", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if status, _ := readyStatus(n); status == corev1.ConditionTrue {
				return fmt.Errorf("still Ready")
			}
			return nil
		})
	})

	l.run("the seed's recovery restarts a lost kube-apiserver", func(t *testing.T, l *lab) {
		l.labCmd("break", "apiserver")
		if out := l.mustSSH(cp, "crictl ps -a --name kube-apiserver"); !strings.Contains(out, "Exited") {
			t.Fatalf("crictl does not show the exited kube-apiserver:\n%s", out)
		}
		l.mustSSH(cp, "touch /etc/kubernetes/manifests/kube-apiserver.yaml && systemctl restart kubelet")
		if out := l.kubectl("get", "--raw", "/readyz"); strings.TrimSpace(out) != "ok" {
			t.Fatalf("/readyz: %s", out)
		}
		if out := l.mustSSH(cp, "crictl ps --name kube-apiserver"); !strings.Contains(out, "Running") {
			t.Fatalf("crictl:\n%s", out)
		}
	})

	l.run("lab down removes the namespaces and the bridge", func(t *testing.T, l *lab) {
		l.labCmd("down")
		entries, _ := os.ReadDir("/run/netns")
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "grappe-18400-") {
				t.Errorf("namespace %s left", e.Name())
			}
		}
		if _, err := os.Stat("/sys/class/net/glab18400"); err == nil {
			t.Error("bridge glab18400 left")
		}
	})
}
