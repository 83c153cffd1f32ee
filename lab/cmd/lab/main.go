// Command lab runs Grappe's lab: a real Kubernetes control plane (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler) on loopback, KWOK's fake nodes, and the CNI footprint
// controller, with failure injection.
//
//	lab up [flags]          start (idempotent) and print the kubeconfig path
//	lab down                stop everything and remove the lab's state
//	lab status              report each process and the cluster
//	lab break KIND [NODE]   inject a failure (see `lab break --help`)
//	lab heal                undo every injected failure
//	lab cni apply|delete FILE   server-side apply / delete a CNI manifest
//	lab kubeconfig          print the kubeconfig path
//	lab pods N              N bare pods per worker, bound directly (benchmark load)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"grappe.dev/lab/internal/lab"
)

func usage() {
	fmt.Fprint(os.Stderr, `usage: lab COMMAND [flags]

commands:
  up          start the lab (idempotent); prints the kubeconfig path
  down        stop every process and remove the lab directory
  status      show each process and the cluster's state
  break KIND [NODE [OTHER]]
              inject a failure; KIND is one of:
                duplicate-ip       NODE claims OTHER's IPv4Address; calico-node crash-loops
                wrong-ip           NODE's IPv4Address is not its InternalIP (10.0.2.15)
                pool-overlap       an IPPool covering the node addresses
                calico-not-ready   calico-node on NODE fails its readiness probe (BIRD)
                network-unavailable-stale
                                   NetworkUnavailable=True/CalicoIsDown, 2 h old, on NODE
                apiserver          kube-apiserver stops (the static pod lost after a CNI change)
                node-notready      NODE's kubelet stops posting status (Ready=Unknown)
                slow-reset         NODE's kubeadm reset takes 30 s (stopping containers), so
                                   that a test can cut it in the middle
                ssh-cut            every SSH connection to NODE's host is cut now (its sshd's
                                   per-connection processes killed); not a lasting failure
                kube-proxy-mode MODE
                                   kube-proxy's ConfigMap says mode MODE (iptables, ipvs,
                                   nftables), as after an admin's edit
                ipam-leak [N [NODE]]
                                   N (default 12) pods on NODE get their address, then are
                                   deleted while their CNI DEL "crashes": the addresses and
                                   handles stay allocated (leaked)
                bgp-peer-down [NODE [PEER]]
                                   NODE's and PEER's calico-node report no BGP session with
                                   each other (readiness probe "BGP not established with …")
                pool-nearly-full   IPPool lab-small-pool (172.30.255.0/27, /29 blocks) filled
                                   to 29 of 32 addresses by pods that ask for it
                mtu-mismatch [NODE [MTU]]
                                   NODE's host interface (eth0) gets MTU (default 1400): larger
                                   packets to it are really dropped (ping -M do finds it)
                tunnel-addr-missing [NODE]
                                   calico-node on NODE runs without its IPIP tunnel address
                                   (projectcalico.org/IPv4IPIPTunnelAddr removed)
                pool-cross-subnet  the first IPIP pool's ipipMode becomes CrossSubnet (every
                                   lab node is in one subnet: nothing is encapsulated)
  heal        undo every injected failure
  cni apply FILE | cni delete FILE
              server-side apply or delete a manifest (like kubectl apply --server-side / delete -f)
  kubeconfig  print the admin kubeconfig path
  ssh NODE [-- COMMAND...]
              ssh as root to NODE's host (labs started with --hosts on), with the lab's key
              (<dir>/ssh/id_ed25519) and its pinned host keys (<dir>/ssh/known_hosts)
  pods N      create N bare pods per worker in namespace bench, bound directly (benchmark load)

common flags:
  --dir DIR   the lab's state directory (default $GRAPPE_LAB_DIR or ~/.cache/grappe/lab/run/default)
`)
}

func defaultDir() string {
	if d := os.Getenv("GRAPPE_LAB_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = os.TempDir()
	}
	return filepath.Join(home, ".cache", "grappe", "lab", "run", "default")
}

// init keeps the main goroutine on the process's main thread. `lab host-init` ends in execve(2):
// called from another thread, the kernel shows the process as a zombie while that thread takes
// the main one's place, and `lab up`, waiting for the host's sshd, read the zombie as sshd gone
// ("sshd of host … does not answer", seen once under a loaded test run).
func init() {
	runtime.LockOSThread()
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, cmd, args)
	if err != nil {
		var usageErr *lab.UsageError
		if errors.As(err, &usageErr) {
			fmt.Fprintf(os.Stderr, "lab %s: %v\n", cmd, err)
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "lab %s: error: %v\n", cmd, err)
		os.Exit(1)
	}
}

// flagsFirst moves flags (and their values) before positional arguments, so that
// `lab break duplicate-ip --dir X` works like `lab break --dir X duplicate-ip`.
// Every lab flag takes a value.
func flagsFirst(args []string) []string {
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			positional = append(positional, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "-") && len(a) > 1:
			flags = append(flags, a)
			if !strings.Contains(a, "=") && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
		default:
			positional = append(positional, a)
		}
	}
	return append(flags, positional...)
}

func run(ctx context.Context, cmd string, args []string) error {
	if cmd == "host-tool" {
		// Internal: `host-tool --dir D --node N TOOL ARGS...` (the host tools' shims), whose
		// ARGS are the tool's own and must not be read as the lab's flags.
		if len(args) < 5 || args[0] != "--dir" || args[2] != "--node" {
			return &lab.UsageError{Err: errors.New("usage: lab host-tool --dir DIR --node NODE TOOL [ARGS...]")}
		}
		code, err := lab.HostTool(ctx, args[1], args[3], args[4], args[5:])
		if err != nil {
			return err
		}
		os.Exit(code)
	}
	args = flagsFirst(args)
	fs := flag.NewFlagSet("lab "+cmd, flag.ContinueOnError)
	dir := fs.String("dir", defaultDir(), "lab state directory")
	switch cmd {
	case "up":
		opts := lab.DefaultUpOptions()
		fs.IntVar(&opts.PortBase, "port-base", opts.PortBase, "ports: apiserver BASE+443, etcd BASE+379/380, kcm BASE+257, scheduler BASE+259, kwok BASE+247")
		fs.IntVar(&opts.Nodes, "nodes", opts.Nodes, "number of nodes, the control plane included")
		fs.IntVar(&opts.PodsPerNode, "pods-per-node", opts.PodsPerNode, "pause pods per worker, bound directly and waited for until Ready (scale runs; needs --cni)")
		fs.StringVar(&opts.NodeCIDR, "node-cidr", opts.NodeCIDR, "where node InternalIPs come from (inside 192.168.0.0/16 to make the default pool overlap them)")
		fs.StringVar(&opts.PodSubnet, "pod-subnet", opts.PodSubnet, "kubeadm podSubnet (default 192.168.0.0/16; 100.64.0.0/10 above 250 nodes)")
		fs.StringVar(&opts.CNI, "cni", opts.CNI, "CNI to install after start: none, calico (v3.25.1) or flannel")
		fs.StringVar(&opts.BinDir, "bin-dir", os.Getenv("GRAPPE_LAB_BIN"), "directory with kube-apiserver, kube-controller-manager, kube-scheduler, etcd, kwok")
		fs.StringVar(&opts.Hosts, "hosts", opts.Hosts, "on: every node is also a host with a real sshd on its InternalIP in its own network namespace (root only)")
		fs.StringVar(&opts.ManifestsDir, "manifests", os.Getenv("GRAPPE_MANIFESTS"), "directory with the upstream CNI manifests")
		if err := fs.Parse(args); err != nil {
			return &lab.UsageError{Err: err}
		}
		opts.Dir = *dir
		return lab.Up(ctx, opts, os.Stdout)
	case "down":
		if err := fs.Parse(args); err != nil {
			return &lab.UsageError{Err: err}
		}
		return lab.Down(*dir, os.Stdout)
	case "status":
		if err := fs.Parse(args); err != nil {
			return &lab.UsageError{Err: err}
		}
		return lab.Status(ctx, *dir, os.Stdout)
	case "break":
		if err := fs.Parse(args); err != nil {
			return &lab.UsageError{Err: err}
		}
		if fs.NArg() < 1 {
			return &lab.UsageError{Err: errors.New("which failure? see `lab help`")}
		}
		return lab.Break(ctx, *dir, fs.Arg(0), fs.Args()[1:], os.Stdout)
	case "heal":
		if err := fs.Parse(args); err != nil {
			return &lab.UsageError{Err: err}
		}
		return lab.Heal(ctx, *dir, os.Stdout)
	case "cni":
		if err := fs.Parse(args); err != nil {
			return &lab.UsageError{Err: err}
		}
		if fs.NArg() != 2 || (fs.Arg(0) != "apply" && fs.Arg(0) != "delete") {
			return &lab.UsageError{Err: errors.New("usage: lab cni apply|delete FILE")}
		}
		return lab.CNI(ctx, *dir, fs.Arg(0), fs.Arg(1), os.Stdout)
	case "pods":
		if err := fs.Parse(args); err != nil {
			return &lab.UsageError{Err: err}
		}
		var n int
		if fs.NArg() != 1 {
			return &lab.UsageError{Err: errors.New("usage: lab pods N (pods per worker)")}
		}
		if _, err := fmt.Sscan(fs.Arg(0), &n); err != nil {
			return &lab.UsageError{Err: fmt.Errorf("pods per worker: %q is not a number", fs.Arg(0))}
		}
		return lab.Pods(ctx, *dir, n, os.Stdout)
	case "kubeconfig":
		if err := fs.Parse(args); err != nil {
			return &lab.UsageError{Err: err}
		}
		fmt.Println(filepath.Join(*dir, "kubeconfig"))
		return nil
	case "ssh":
		if err := fs.Parse(args); err != nil {
			return &lab.UsageError{Err: err}
		}
		if fs.NArg() < 1 {
			return &lab.UsageError{Err: errors.New("usage: lab ssh NODE [-- COMMAND...]")}
		}
		return lab.SSH(*dir, fs.Arg(0), fs.Args()[1:])
	case "host-init":
		// Internal: becomes a node's sshd inside its namespaces (started by `lab up --hosts on`).
		node := fs.String("node", "", "node name")
		if err := fs.Parse(args); err != nil {
			return &lab.UsageError{Err: err}
		}
		return lab.HostInit(*dir, *node)
	case "footprint":
		// Internal: the CNI footprint controller, started by `lab up`.
		if err := fs.Parse(args); err != nil {
			return &lab.UsageError{Err: err}
		}
		if addr := os.Getenv("LAB_PPROF"); addr != "" {
			// Where a large lab's time goes: `go tool pprof http://ADDR/debug/pprof/profile`.
			go func() { _ = http.ListenAndServe(addr, nil) }()
		}
		return lab.RunFootprint(ctx, *dir)
	case "help", "-h", "--help":
		usage()
		return nil
	default:
		usage()
		return &lab.UsageError{Err: fmt.Errorf("unknown command %q", cmd)}
	}
}
