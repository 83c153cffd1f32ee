package lab

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"grappe.dev/lab/internal/config"
	"grappe.dev/lab/internal/hosts"
	"grappe.dev/lab/internal/proc"
	"grappe.dev/lab/internal/stages"
)

// labCluster is what a host tool changes in the lab beyond the node's files.
type labCluster struct {
	cfg *config.Config
	m   proc.Manager
}

func (c labCluster) SetKubelet(ctx context.Context, node string, running bool) error {
	client, _, err := Clients(c.cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var value any
	if !running {
		value = "stopped"
	}
	if _, err := client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{}); err != nil {
		return err
	}
	return patchNodeAnnotations(ctx, client, node, map[string]any{stages.KubeletAnnotation: value})
}

func (c labCluster) APIServer() (bool, time.Time) {
	pid := c.m.Pid("kube-apiserver")
	if pid == 0 {
		return false, time.Time{}
	}
	return true, proc.StartTime(pid)
}

func (c labCluster) StartAPIServer(ctx context.Context) error {
	return startAPIServer(ctx, c.cfg, c.m)
}

func (c labCluster) StopAPIServer() error {
	return c.m.Stop("kube-apiserver", 10*time.Second)
}

// HostTool runs a host tool (kubeadm, systemctl, ...) for a node; it returns the exit code.
func HostTool(ctx context.Context, dir, node, tool string, args []string) (int, error) {
	cfg, err := config.Load(dir)
	if err != nil {
		return 1, err
	}
	h, err := hosts.Get(&cfg, node)
	if err != nil {
		return 1, err
	}
	c := labCluster{cfg: &cfg, m: proc.Manager{Dir: cfg.Dir}}
	return hosts.Tool(ctx, h, c, tool, args, hosts.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}), nil
}

// HostInit becomes a node's sshd (inside its namespaces; lab up starts it).
func HostInit(dir, node string) error {
	cfg, err := config.Load(dir)
	if err != nil {
		return err
	}
	return hosts.Init(&cfg, node)
}

// SSH runs ssh to a node's host as root with the lab's key and pinned host keys.
func SSH(dir, node string, command []string) error {
	cfg, err := config.Load(dir)
	if err != nil {
		return err
	}
	h, err := hosts.Get(&cfg, node)
	if err != nil {
		return &UsageError{Err: err}
	}
	args := []string{"-i", cfg.File("ssh", "id_ed25519"), "-o", "UserKnownHostsFile=" + cfg.File("ssh", "known_hosts"),
		"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "root@" + h.Node.IP.String()}
	cmd := exec.Command("ssh", append(args, command...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		os.Exit(exit.ExitCode())
	}
	return err
}
