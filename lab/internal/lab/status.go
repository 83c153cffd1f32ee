// lab status: each process of the lab and the cluster it serves.

package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"grappe.dev/lab/internal/config"
	"grappe.dev/lab/internal/footprint"
	"grappe.dev/lab/internal/hosts"
	"grappe.dev/lab/internal/proc"
)

// Status reports each process and a summary of the cluster.
func Status(ctx context.Context, dir string, out io.Writer) error {
	cfg, err := config.Load(dir)
	if err != nil {
		return err
	}
	m := proc.Manager{Dir: dir}
	fmt.Fprintf(out, "lab %s (API server %s)\n", dir, cfg.APIServerURL())
	allUp := true
	for _, name := range components {
		pid := m.Pid(name)
		state := "stopped"
		if pid != 0 {
			state = fmt.Sprintf("running  pid %-7d rss %d MiB", pid, proc.RSSKiB(pid)/1024)
		} else {
			allUp = false
		}
		fmt.Fprintf(out, "  %-24s %s\n", name, state)
	}
	// The Tigera operator runs only while its pod does (footprint/operator.go).
	if pid := m.Pid(footprint.OperatorProcess); pid != 0 {
		fmt.Fprintf(out, "  %-24s running  pid %-7d rss %d MiB (while its pod runs)\n", footprint.OperatorProcess, pid, proc.RSSKiB(pid)/1024)
	}
	labHosts, err := hosts.List(&cfg)
	if err != nil {
		return err
	}
	for _, h := range labHosts {
		state := "stopped"
		if pid := m.Pid(h.ProcName()); pid != 0 {
			state = fmt.Sprintf("running  pid %-7d ssh root@%s", pid, h.Node.IP)
		} else {
			allUp = false
		}
		fmt.Fprintf(out, "  %-24s %s\n", h.ProcName(), state)
	}
	client, _, err := Clients(&cfg)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	nodes, err := client.CoreV1().Nodes().List(cctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		fmt.Fprintf(out, "  cluster: API server unreachable: %v\n", err)
		return errors.New("the lab is not fully up")
	}
	ready, notReady, unknown := 0, 0, 0
	for i := range nodes.Items {
		rc := readyCondition(&nodes.Items[i])
		switch {
		case rc == nil || rc.Status == corev1.ConditionUnknown:
			unknown++
		case rc.Status == corev1.ConditionTrue:
			ready++
		default:
			notReady++
		}
	}
	var cni []string
	for i := range nodes.Items {
		if v := footprint.CNIConfig(&nodes.Items[i]); len(v) > 0 {
			cni = v
			break
		}
	}
	cniText := "none"
	if len(cni) > 0 {
		cniText = strings.Join(cni, ",")
	}
	fmt.Fprintf(out, "  nodes: %d (%d Ready, %d NotReady, %d Unknown); CNI config on nodes: %s\n",
		len(nodes.Items), ready, notReady, unknown, cniText)
	if !allUp {
		return errors.New("some lab processes are stopped (lab heal restarts a stopped API server; lab up restarts the rest)")
	}
	return nil
}
