package hosts

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"grappe.dev/lab/internal/config"
)

// write creates a file (and its directory) on the host.
func (h Host) write(path, content string, mode os.FileMode) error {
	full := h.FS(path)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	return os.WriteFile(full, []byte(content), mode)
}

func (h Host) mkdir(paths ...string) error {
	for _, p := range paths {
		if err := os.MkdirAll(h.FS(p), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// standardPlugins are what the kubernetes-cni package puts in /opt/cni/bin on a kubeadm node.
var standardPlugins = []string{"bandwidth", "bridge", "dhcp", "firewall", "host-device", "host-local", "ipvlan", "loopback", "macvlan", "portmap", "ptp", "sbr", "static", "tuning", "vlan", "vrf"}

func plugin(name string) string {
	return fmt.Sprintf("#!/bin/sh\n# lab stand-in for the CNI plugin %q (KWOK runs no containers)\necho 'CNI plugin %s: not runnable in the lab' >&2\nexit 1\n", name, name)
}

// seedFiles gives a new host what kubeadm init/join leave on a node without a CNI, and (every
// time) the host tools.
func seedFiles(cfg *config.Config, h Host, self string) error {
	for _, tool := range ToolNames {
		shim := fmt.Sprintf("#!/bin/sh\n# lab host tool %s of node %s (lab/internal/hosts/tools.go)\nexec ip netns exec %s '%s' host-tool --dir '%s' --node '%s' %s \"$@\"\n",
			tool, h.Node.Name, rootNS(cfg), self, cfg.Dir, h.Node.Name, tool)
		if err := os.MkdirAll(h.File("tools"), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(h.File("tools", tool), []byte(shim), 0o755); err != nil {
			return err
		}
	}
	if exists(h.File("state")) {
		return nil
	}
	kubeconfig, err := os.ReadFile(cfg.Kubeconfig())
	if err != nil {
		return err
	}
	ca, err := os.ReadFile(cfg.File("pki", "ca.crt"))
	if err != nil {
		return err
	}
	if err := h.mkdir("/etc/cni/net.d", "/etc/kubernetes/manifests", "/var/lib/kubelet/pki", "/var/lib/kubelet/pods"); err != nil {
		return err
	}
	files := map[string]string{
		"/etc/kubernetes/kubelet.conf":       string(kubeconfig),
		"/etc/kubernetes/pki/ca.crt":         string(ca),
		"/var/lib/kubelet/config.yaml":       kubeletConfig,
		"/var/lib/kubelet/kubeadm-flags.env": `KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.10"` + "\n",
		"/var/lib/kubelet/pki/kubelet.crt":   string(ca),
		"/var/lib/kubelet/cpu_manager_state": `{"policyName":"none","defaultCpuSet":"","checksum":1353318690}` + "\n",
	}
	if h.Node.ControlPlane {
		for _, f := range []string{"admin.conf", "super-admin.conf", "controller-manager.conf", "scheduler.conf"} {
			files["/etc/kubernetes/"+f] = string(kubeconfig)
		}
		files["/root/.kube/config"] = string(kubeconfig)
		for _, c := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
			files["/etc/kubernetes/manifests/"+c+".yaml"] = staticPod(cfg, h, c)
		}
		for _, f := range []string{"apiserver.crt", "apiserver-kubelet-client.crt", "front-proxy-ca.crt", "sa.pub"} {
			files["/etc/kubernetes/pki/"+f] = string(ca)
		}
		files["/var/lib/etcd/member/snap/db"] = "lab: etcd's data lives in the lab directory\n"
	}
	for _, p := range standardPlugins {
		files["/opt/cni/bin/"+p] = plugin(p)
	}
	for path, content := range files {
		mode := os.FileMode(0o644)
		if strings.HasPrefix(path, "/opt/cni/bin/") {
			mode = 0o755
		}
		if strings.HasSuffix(path, ".conf") || strings.HasSuffix(path, "/config") {
			mode = 0o600
		}
		if err := h.write(path, content, mode); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(h.File("state"), 0o755); err != nil {
		return err
	}
	now := time.Now()
	if err := setKubelet(h, "active", now); err != nil {
		return err
	}
	return h.journal(now,
		"Started kubelet.service - kubelet: The Kubernetes Node Agent.",
		"I0000 server.go:484] \"Kubelet version\" kubeletVersion=\""+config.KubernetesVersion+"\"",
		"I0000 kubelet_node_status.go:75] \"Attempting to register node\" node=\""+h.Node.Name+"\"",
		"E0000 kubelet.go:3117] \"Container runtime network not ready\" networkReady=\"NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized\"",
	)
}

const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
cgroupDriver: systemd
clusterDNS:
- 10.96.0.10
clusterDomain: cluster.local
rotateCertificates: true
staticPodPath: /etc/kubernetes/manifests
`

func staticPod(cfg *config.Config, h Host, component string) string {
	image := "registry.k8s.io/" + component + ":" + config.KubernetesVersion
	if component == "etcd" {
		image = "registry.k8s.io/etcd:3.6.5-0"
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  labels:
    component: %[1]s
    tier: control-plane
  name: %[1]s
  namespace: kube-system
spec:
  containers:
  - command:
    - %[1]s
    - --advertise-address=%[2]s
    image: %[3]s
    imagePullPolicy: IfNotPresent
    name: %[1]s
  hostNetwork: true
  priorityClassName: system-node-critical
`, component, h.Node.IP, image)
}

// seedIptables writes the chains kube-proxy (iptables mode) keeps on every node.
func seedIptables(h Host) error {
	return h.iptablesRestore(`*filter
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-KUBELET-CANARY - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A INPUT -j KUBE-FIREWALL
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -j KUBE-FIREWALL
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
COMMIT
*nat
:KUBE-KUBELET-CANARY - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-NPX46M4PTMTKRN6Y - [0:0]
:KUBE-SEP-LAB0000000000000 - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment "default/kubernetes:https cluster IP" -m tcp --dport 443 -j KUBE-SVC-NPX46M4PTMTKRN6Y
-A KUBE-SVC-NPX46M4PTMTKRN6Y -j KUBE-SEP-LAB0000000000000
-A KUBE-SEP-LAB0000000000000 -p tcp -m tcp -j DNAT --to-destination 127.0.0.1:6443
COMMIT
`)
}

func (h Host) iptablesRestore(rules string) error {
	cmd := exec.Command("ip", "netns", "exec", h.NS, "iptables-restore", "--noflush")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("iptables-restore in %s: %w: %s", h.NS, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// CNIInstalled leaves on the node's host what a CNI's node agent writes when it first runs
// there (the conflist, its plugin binaries, Calico's iptables chains, the kubelet journal's
// lines), once per CNI. Nothing happens on a lab without hosts. The CNI's removal leaves all
// of it behind, as on a real host.
func CNIInstalled(cfg *config.Config, node string, cnis []string) error {
	if !cfg.Hosts {
		return nil
	}
	h, err := Get(cfg, node)
	if err != nil {
		return err
	}
	var errs []error
	for _, cni := range cnis {
		marker := h.File("state", "cni-"+cni)
		if exists(marker) || !exists(h.File("state")) {
			continue
		}
		if err := h.installCNI(cni); err != nil {
			errs = append(errs, fmt.Errorf("host %s, %s: %w", node, cni, err))
			continue
		}
		errs = append(errs, os.WriteFile(marker, nil, 0o644))
	}
	return errors.Join(errs...)
}

func (h Host) installCNI(cni string) error {
	now := time.Now()
	switch cni {
	case "calico":
		stamp := now.Format("2006-01-02 15:04:05.000")
		files := map[string]string{
			"/etc/cni/net.d/10-calico.conflist": calicoConflist,
			"/etc/cni/net.d/calico-kubeconfig":  "# Kubeconfig file for Calico CNI plugin (lab).\napiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: https://10.96.0.1:443\n",
			"/opt/cni/bin/calico":               plugin("calico"),
			"/opt/cni/bin/calico-ipam":          plugin("calico-ipam"),
			"/var/lib/cni/cache/results/.keep":  "",
			"/var/lib/calico/nodename":          h.Node.Name,
			"/var/lib/calico/mtu":               "1480",
		}
		for path, content := range files {
			mode := os.FileMode(0o644)
			if strings.HasPrefix(path, "/opt/cni/bin/") {
				mode = 0o755
			}
			if err := h.write(path, content, mode); err != nil {
				return err
			}
		}
		if err := h.iptablesRestore(calicoChains); err != nil {
			return err
		}
		return h.journal(now,
			stamp+" [INFO][1] ipam.go 970: Writing block in order to claim IPs block=192.168.0.0/26 handle=\"k8s-pod-network\" host=\""+h.Node.Name+"\"",
			stamp+" [INFO][1] ipam_plugin.go 255: Calico CNI IPAM assigned addresses IPv4=[192.168.0.1/26] IPv6=[]",
			stamp+" [INFO][1] k8s.go 373: Calico CNI using IPs: [192.168.0.1/32]",
			stamp+" [INFO][1] dataplane_linux.go 66: Setting the host side veth name to cali0000000000a",
		)
	case "flannel":
		if err := h.write("/etc/cni/net.d/10-flannel.conflist", flannelConflist, 0o644); err != nil {
			return err
		}
		if err := h.write("/opt/cni/bin/flannel", plugin("flannel"), 0o755); err != nil {
			return err
		}
		return h.journal(now, "I0000 kubelet.go:3117] \"flannel: network plugin ready\"")
	}
	return nil
}

const calicoConflist = `{
  "name": "k8s-pod-network",
  "cniVersion": "0.3.1",
  "plugins": [
    {
      "type": "calico",
      "log_level": "info",
      "log_file_path": "/var/log/calico/cni/cni.log",
      "datastore_type": "kubernetes",
      "mtu": 0,
      "ipam": { "type": "calico-ipam" },
      "policy": { "type": "k8s" },
      "kubernetes": { "kubeconfig": "/etc/cni/net.d/calico-kubeconfig" }
    },
    { "type": "portmap", "snat": true, "capabilities": {"portMappings": true} },
    { "type": "bandwidth", "capabilities": {"bandwidth": true} }
  ]
}
`

const flannelConflist = `{
  "name": "cbr0",
  "cniVersion": "0.3.1",
  "plugins": [
    { "type": "flannel", "delegate": { "hairpinMode": true, "isDefaultGateway": true } },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
`

// calicoChains are a few of the chains Felix programs (the real set is much larger).
const calicoChains = `*filter
:cali-FORWARD - [0:0]
:cali-INPUT - [0:0]
:cali-OUTPUT - [0:0]
:cali-wl-to-host - [0:0]
-A INPUT -m comment --comment "cali:Cz_u1IQiXIMmKD4c" -j cali-INPUT
-A FORWARD -m comment --comment "cali:wUHhoiAYhphO9Mso" -j cali-FORWARD
-A OUTPUT -m comment --comment "cali:tVnHkvAo15HuiPy0" -j cali-OUTPUT
-A cali-INPUT -i cali+ -m comment --comment "cali:FewJpBykm9iJ-YNH" -g cali-wl-to-host
COMMIT
*nat
:cali-nat-outgoing - [0:0]
:cali-POSTROUTING - [0:0]
-A POSTROUTING -m comment --comment "cali:O3lYWMrLQYEMJtB5" -j cali-POSTROUTING
-A cali-POSTROUTING -m comment --comment "cali:Z-c7XtVd2Bq7s_hA" -j cali-nat-outgoing
COMMIT
*mangle
:cali-PREROUTING - [0:0]
-A PREROUTING -m comment --comment "cali:6gwbT8clXdHdC1b1" -j cali-PREROUTING
COMMIT
`
