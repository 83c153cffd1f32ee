package lab

// The control plane's processes as the lab starts them: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and KWOK, with the lease and node-monitor timings
// that depend on the lab's size.

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"grappe.dev/lab/internal/config"
	"grappe.dev/lab/internal/pki"
	"grappe.dev/lab/internal/proc"
	"grappe.dev/lab/internal/stages"
)

func etcdSpec(cfg *config.Config) proc.Spec {
	peer := fmt.Sprintf("http://127.0.0.1:%d", cfg.EtcdPeerPort())
	client := fmt.Sprintf("http://127.0.0.1:%d", cfg.EtcdClientPort())
	return proc.Spec{Name: "etcd", Env: cfg.GoEnv(), Path: filepath.Join(cfg.BinDir, "etcd"), Args: []string{
		"--name=" + config.ControlPlaneName,
		"--data-dir=" + cfg.File("etcd"),
		"--listen-client-urls=" + client, "--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=" + config.ControlPlaneName + "=" + peer,
		"--unsafe-no-fsync", // lab only: speed over durability
		"--quota-backend-bytes=8589934592",
		"--snapshot-count=10000",
		"--log-level=warn",
	}}
}

func apiServerSpec(cfg *config.Config) proc.Spec {
	p := pki.PathsIn(cfg.File("pki"))
	nodes, _ := cfg.Nodes()
	return proc.Spec{Name: "kube-apiserver", Env: cfg.GoEnv(), Path: filepath.Join(cfg.BinDir, "kube-apiserver"), Args: []string{
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", cfg.EtcdClientPort()),
		fmt.Sprintf("--secure-port=%d", cfg.APIServerPort()),
		"--bind-address=127.0.0.1",
		"--advertise-address=" + nodes[0].IP.String(),
		"--tls-cert-file=" + p.ServerCert, "--tls-private-key-file=" + p.ServerKey,
		"--client-ca-file=" + p.CACert,
		"--service-account-key-file=" + p.SAPublicKey,
		"--service-account-signing-key-file=" + p.SAPrivateKey,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range=" + cfg.ServiceCIDR,
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		"--max-requests-inflight=2000",
		"--max-mutating-requests-inflight=1000",
		"--event-ttl=2h",
		// Aggregated APIs and webhooks are reached at their endpoints (pod IPs), not through
		// DNS for the Service name, which this machine resolves to its egress proxy.
		"--enable-aggregator-routing=true",
		"--profiling=false",
		"--v=1",
	}}
}

func startAPIServer(ctx context.Context, cfg *config.Config, m proc.Manager) error {
	if _, err := m.Start(apiServerSpec(cfg)); err != nil {
		return err
	}
	tlsCfg, err := adminTLS(cfg)
	if err != nil {
		return err
	}
	if err := waitHTTP(ctx, cfg.APIServerURL()+"/readyz", tlsCfg, 120*time.Second); err != nil {
		return fmt.Errorf("kube-apiserver did not become ready: %w\n%s", err, m.TailLog("kube-apiserver", 30))
	}
	return nil
}

func kcmSpec(cfg *config.Config) proc.Spec {
	p := pki.PathsIn(cfg.File("pki"))
	kc := cfg.Kubeconfig()
	return proc.Spec{Name: "kube-controller-manager", Env: cfg.GoEnv(), Path: filepath.Join(cfg.BinDir, "kube-controller-manager"), Args: []string{
		"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
		"--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", cfg.KCMPort()),
		"--allocate-node-cidrs=true", "--cluster-cidr=" + cfg.PodSubnet,
		fmt.Sprintf("--node-cidr-mask-size=%d", cfg.NodeCIDRMaskSize),
		"--service-cluster-ip-range=" + cfg.ServiceCIDR,
		"--service-account-private-key-file=" + p.SAPrivateKey,
		"--root-ca-file=" + p.CACert,
		"--use-service-account-credentials=true",
		"--controllers=*,bootstrapsigner,tokencleaner",
		"--leader-elect=false",
		"--node-monitor-grace-period=" + nodeMonitorGrace(cfg),
		"--kube-api-qps=300", "--kube-api-burst=600",
		"--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
		"--v=1",
	}}
}

func schedulerSpec(cfg *config.Config) proc.Spec {
	kc := cfg.Kubeconfig()
	return proc.Spec{Name: "kube-scheduler", Env: cfg.GoEnv(), Path: filepath.Join(cfg.BinDir, "kube-scheduler"), Args: []string{
		"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
		"--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", cfg.SchedulerPort()),
		"--leader-elect=false",
		"--kube-api-qps=300", "--kube-api-burst=600",
		"--v=1",
	}}
}

func kwokSpec(cfg *config.Config) proc.Spec {
	return proc.Spec{Name: "kwok", Env: cfg.GoEnv(), Path: filepath.Join(cfg.BinDir, "kwok"), Args: []string{
		"--kubeconfig=" + cfg.Kubeconfig(),
		"--config=" + cfg.File("kwok-stages.yaml"),
		"--manage-nodes-with-annotation-selector=" + stages.ManagedAnnotation + "=fake",
		fmt.Sprintf("--node-lease-duration-seconds=%d", leaseSeconds(cfg)),
		fmt.Sprintf("--server-address=127.0.0.1:%d", cfg.KwokPort()),
		// KWOK logs every patch and lease renewal at INFO: at scale that is most of its CPU.
		"--v=WARN",
	}}
}

// longLeaseNodes is the size above which leases last 600 s.
const longLeaseNodes = 2000

// Large labs renew node leases less often (every lease/4 seconds), so that 5,000 fake kubelets
// do not saturate a 2-core API server; the controller-manager's grace period follows, or nodes
// would flap to Unknown. Renewing every 60 s, 5,000 leases alone are 83 writes per second, most
// of what the API server wrote while 5,000 nodes waited for their load pods: above 2,000 nodes a
// lease is renewed every 150 s.
func leaseSeconds(cfg *config.Config) int {
	switch n := cfg.Workers + 1; {
	case n > longLeaseNodes:
		return 600
	case n > 500:
		return 240
	default:
		return 40
	}
}

// stallTimeout is how long the waits of a large lab (nodes registered, nodes Ready once a CNI
// is applied, load pods Ready) go on without any progress before they fail. They have no fixed
// deadline: on 2 cores their pace depends on what else runs (a 5,000-node lab shared with a
// release build of Grappe took 570 s to register and more than 41 minutes to bring every node
// up with Calico).
var stallTimeout = 10 * time.Minute

// How often waitProgress polls and reports (variables for the unit test).
var (
	progressPoll   = 2 * time.Second
	progressReport = 30 * time.Second
)

// nodeMonitorGrace is how long a node may miss heartbeats before the node lifecycle controller
// calls it NotReady and marks its pods not Ready. KWOK's heartbeats lag when the CPU is busy
// (500 nodes during a CNI install on 2 cores missed 20 s), and KWOK does not set a pod Ready
// again afterwards as a kubelet would: from 100 nodes on, the grace is 3 minutes. Breaks do not
// depend on it (they set the node's conditions themselves).
func nodeMonitorGrace(cfg *config.Config) string {
	switch n := cfg.Workers + 1; {
	case n > longLeaseNodes:
		// Three renewals (every lease/4 seconds).
		return fmt.Sprintf("%ds", 3*leaseSeconds(cfg)/4)
	case n >= 100:
		return "180s"
	default:
		return "20s"
	}
}
