// Package config holds a lab's settings: where its state lives, its ports, its nodes and
// networks. `lab up` writes them to <dir>/lab.json; every other command reads them from there.
package config

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// KubernetesVersion is what the lab's binaries are built from and what nodes report.
const KubernetesVersion = "v1.35.8"

// ControlPlaneName is the seed runbook's control-plane node.
const ControlPlaneName = "betelgeuse"

// workerNames are Orion's stars, used for the first workers (betelgeuse is the control plane).
var workerNames = []string{"rigel", "bellatrix", "saiph", "mintaka", "alnilam", "alnitak", "meissa"}

// Config is one lab.
type Config struct {
	Dir         string `json:"dir"`
	PortBase    int    `json:"portBase"`
	Workers     int    `json:"workers"`
	PodsPerNode int    `json:"podsPerNode"`
	NodeCIDR    string `json:"nodeCIDR"`
	PodSubnet   string `json:"podSubnet"`
	ServiceCIDR string `json:"serviceCIDR"`
	// NodeCIDRMaskSize is kube-controller-manager's per-node pod CIDR size.
	NodeCIDRMaskSize int    `json:"nodeCIDRMaskSize"`
	BinDir           string `json:"binDir"`
	ManifestsDir     string `json:"manifestsDir"`
	// Hosts: every node is also a host reachable over SSH (lab/internal/hosts).
	Hosts bool `json:"hosts"`
}

// Ports derived from PortBase (mirroring the usual port numbers).
func (c *Config) APIServerPort() int  { return c.PortBase + 443 }
func (c *Config) EtcdClientPort() int { return c.PortBase + 379 }
func (c *Config) EtcdPeerPort() int   { return c.PortBase + 380 }
func (c *Config) KCMPort() int        { return c.PortBase + 257 }
func (c *Config) SchedulerPort() int  { return c.PortBase + 259 }
func (c *Config) KwokPort() int       { return c.PortBase + 247 }

// APIServerURL is where clients reach the API server.
func (c *Config) APIServerURL() string {
	return fmt.Sprintf("https://127.0.0.1:%d", c.APIServerPort())
}

// File returns a path inside the lab directory.
func (c *Config) File(parts ...string) string {
	return filepath.Join(append([]string{c.Dir}, parts...)...)
}

// Kubeconfig is the admin kubeconfig's path.
func (c *Config) Kubeconfig() string { return c.File("kubeconfig") }

// Node is one (fake) node of the lab.
type Node struct {
	Name         string
	IP           net.IP
	ControlPlane bool
}

// Nodes returns the control-plane node followed by the workers, with their InternalIPs.
func (c *Config) Nodes() ([]Node, error) {
	_, network, err := net.ParseCIDR(c.NodeCIDR)
	if err != nil {
		return nil, fmt.Errorf("node CIDR %q: %w", c.NodeCIDR, err)
	}
	ones, bits := network.Mask.Size()
	if bits != 32 {
		return nil, fmt.Errorf("node CIDR %q: only IPv4 is supported", c.NodeCIDR)
	}
	capacity := (1 << (bits - ones)) - 12
	if c.Workers+1 > capacity {
		return nil, fmt.Errorf("node CIDR %q holds %d nodes, %d asked", c.NodeCIDR, capacity, c.Workers+1)
	}
	base := binary.BigEndian.Uint32(network.IP.To4())
	ip := func(offset uint32) net.IP {
		out := make(net.IP, 4)
		binary.BigEndian.PutUint32(out, base+offset)
		return out
	}
	nodes := []Node{{Name: ControlPlaneName, IP: ip(10), ControlPlane: true}}
	for i := 0; i < c.Workers; i++ {
		nodes = append(nodes, Node{Name: WorkerName(i), IP: ip(uint32(11 + i))})
	}
	return nodes, nil
}

// smallLabNodes is the size up to which the lab's Go processes collect garbage less often.
const smallLabNodes = 200

// GoEnv is the environment of the lab's Go processes (control plane, KWOK, the footprint, the
// operator): on a lab of up to 200 nodes, GOGC=400 unless GOGC is set, so that they collect
// garbage a quarter as often. The API server spent 13 % of its CPU collecting garbage under a
// Calico install; with it, one lab test's processes took 9 % less CPU (27.0 -> 24.6 CPU-s, the
// API server 15.8 -> 13.7; twice each), for heaps a few hundred MB larger each. A larger lab
// keeps Go's default: its heaps are gigabytes.
func (c *Config) GoEnv() []string {
	if os.Getenv("GOGC") != "" || c.Workers+1 > smallLabNodes {
		return nil
	}
	return []string{"GOGC=400"}
}

// NodePrefixLen is the prefix length of node addresses (for Calico's IPv4Address annotation).
func (c *Config) NodePrefixLen() int {
	_, network, err := net.ParseCIDR(c.NodeCIDR)
	if err != nil {
		return 24
	}
	ones, _ := network.Mask.Size()
	return ones
}

// WorkerName names worker i.
func WorkerName(i int) string {
	if i < len(workerNames) {
		return workerNames[i]
	}
	return fmt.Sprintf("orion-w%05d", i)
}

// Defaults returns a lab of 3 workers on loopback ports 16xxx.
func Defaults(dir string) Config {
	return Config{
		Dir:              dir,
		PortBase:         16000,
		Workers:          3,
		PodsPerNode:      0,
		NodeCIDR:         "10.13.0.0/16",
		PodSubnet:        "192.168.0.0/16",
		ServiceCIDR:      "10.96.0.0/12",
		NodeCIDRMaskSize: 24,
	}
}

// Save writes the config to <dir>/lab.json.
func (c *Config) Save() error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(c.File("lab.json"), data, 0o600)
}

// Load reads <dir>/lab.json.
func Load(dir string) (Config, error) {
	var c Config
	data, err := os.ReadFile(filepath.Join(dir, "lab.json"))
	if err != nil {
		return c, fmt.Errorf("no lab in %s (run `lab up` first): %w", dir, err)
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("%s/lab.json: %w", dir, err)
	}
	return c, nil
}
