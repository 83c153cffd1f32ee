package footprint

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"grappe.dev/lab/internal/stages"
)

// calicoAPI is the API that serves Calico's resources: its CRDs (crd.projectcalico.org/v1, what a
// manifest install and the operator's operator-crds.yaml create) or its native v3 CRDs
// (projectcalico.org/v3, v3_projectcalico_org.yaml in 3.32), whichever exists.
type calicoAPI struct{ group, version string }

var (
	crdAPI      = calicoAPI{"crd.projectcalico.org", "v1"}
	nativeV3API = calicoAPI{"projectcalico.org", "v3"}
)

func (a calicoAPI) res(resource string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: a.group, Version: a.version, Resource: resource}
}

func (a calicoAPI) apiVersion() string { return a.group + "/" + a.version }

// The Calico resources the footprint writes, by plural.
const (
	ippools            = "ippools"
	ipamblocks         = "ipamblocks"
	blockaffinities    = "blockaffinities"
	ipamhandles        = "ipamhandles"
	clusterinformation = "clusterinformations"
	felixconfiguration = "felixconfigurations"

	kubeControllersConfiguration = "kubecontrollersconfigurations"
)

// calicoNamespaces are where calico-node runs: kube-system (a manifest install) or calico-system
// (the operator's).
var calicoNamespaces = []string{"kube-system", "calico-system"}

// CalicoVersion is what ClusterInformation reports (the seed's version).
const calicoFieldManager = "calico-node"

type calico struct {
	c *Controller

	// apiMu guards api: which API group serves Calico's resources.
	apiMu sync.RWMutex
	api   calicoAPI

	mu      sync.Mutex
	present bool
	loaded  bool
	pools   []pool
	blocks  map[string]*block
	byNode  map[string][]*block
	dirty   map[string]bool
	handles []string // IPAMHandles to delete
	// leaked: per node, the addresses of deleted pods whose CNI DEL "crashed" (`lab break
	// ipam-leak`), released when the node's break is healed.
	leaked map[string][]leak
}

func newCalico(c *Controller) *calico {
	return &calico{c: c, api: crdAPI, blocks: map[string]*block{}, byNode: map[string][]*block{}, dirty: map[string]bool{}, leaked: map[string][]leak{}}
}

// res is a Calico resource in the API that serves it now.
// (Its own lock: callers may hold k.mu.)
func (k *calico) res(resource string) schema.GroupVersionResource {
	k.apiMu.RLock()
	defer k.apiMu.RUnlock()
	return k.api.res(resource)
}

func (k *calico) apiVersion() string {
	k.apiMu.RLock()
	defer k.apiMu.RUnlock()
	return k.api.apiVersion()
}

func (k *calico) calicoPods() []*corev1.Pod {
	var pods []*corev1.Pod
	for _, ns := range calicoNamespaces {
		found, err := k.c.factory.Core().V1().Pods().Lister().Pods(ns).List(labels.SelectorFromSet(labels.Set{"k8s-app": "calico-node"}))
		if err == nil {
			pods = append(pods, found...)
		}
	}
	var running []*corev1.Pod
	for _, p := range pods {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			running = append(running, p)
		}
	}
	return running
}

func isMissing(err error) bool {
	return apierrors.IsNotFound(err) || meta.IsNoMatchError(err)
}

// reconcileGlobal creates what calico-node creates at startup (default pool, cluster
// information, felix configuration) once Calico's CRDs exist and a calico-node runs, and flushes
// IPAM blocks changed by releases.
func (k *calico) reconcileGlobal(ctx context.Context) error {
	dyn := k.c.dyn
	list, err := dyn.Resource(crdAPI.res(ippools)).List(ctx, metav1.ListOptions{})
	api := crdAPI
	if isMissing(err) {
		list, err = dyn.Resource(nativeV3API.res(ippools)).List(ctx, metav1.ListOptions{})
		api = nativeV3API
	}
	if err == nil {
		k.apiMu.Lock()
		moved := k.api != api
		k.api = api
		k.apiMu.Unlock()
		if moved {
			log.Printf("footprint: Calico's resources are served by %s", api.apiVersion())
			k.mu.Lock()
			k.loaded = false
			k.mu.Unlock()
		}
	}
	if err != nil {
		if isMissing(err) {
			k.mu.Lock()
			if k.present {
				log.Printf("footprint: Calico CRDs gone: forgetting IPAM state")
			}
			k.present, k.loaded, k.pools = false, false, nil
			k.blocks, k.byNode, k.dirty, k.handles = map[string]*block{}, map[string][]*block{}, map[string]bool{}, nil
			k.mu.Unlock()
			return nil
		}
		return err
	}
	k.mu.Lock()
	k.present = true
	k.mu.Unlock()
	if len(k.calicoPods()) == 0 {
		return k.flush(ctx)
	}
	if len(list.Items) == 0 {
		if err := k.createDefaultPool(ctx); err != nil {
			return err
		}
		if list, err = dyn.Resource(k.res(ippools)).List(ctx, metav1.ListOptions{}); err != nil {
			return err
		}
	}
	var pools []pool
	for _, item := range list.Items {
		cidr, _, _ := unstructured.NestedString(item.Object, "spec", "cidr")
		prefix, err := netip.ParsePrefix(cidr)
		if err != nil || !prefix.Addr().Is4() {
			continue
		}
		bs, found, _ := unstructured.NestedInt64(item.Object, "spec", "blockSize")
		if !found {
			bs = 26
		}
		ipip, _, _ := unstructured.NestedString(item.Object, "spec", "ipipMode")
		disabled, _, _ := unstructured.NestedBool(item.Object, "spec", "disabled")
		pools = append(pools, pool{name: item.GetName(), cidr: prefix.Masked(), blockSize: int(bs), ipipMode: ipip, disabled: disabled})
	}
	sort.Slice(pools, func(i, j int) bool { return pools[i].name < pools[j].name })
	k.mu.Lock()
	k.pools = pools
	loaded := k.loaded
	k.mu.Unlock()
	if err := k.ensureSingleton(ctx, k.res(clusterinformation), "ClusterInformation", map[string]any{
		"calicoVersion":  calicoVersion(k.calicoPods()),
		"clusterGUID":    randomHex(16),
		"clusterType":    "k8s,bgp,kubeadm,kdd",
		"datastoreReady": true,
	}, "calicoVersion"); err != nil {
		return err
	}
	if err := k.ensureSingleton(ctx, k.res(felixconfiguration), "FelixConfiguration", map[string]any{
		"bpfLogLevel":       "",
		"floatingIPs":       "Disabled",
		"logSeverityScreen": "Info",
		"reportingInterval": "0s",
	}); err != nil {
		return err
	}
	// calico-kube-controllers' own configuration, which it creates at its start with its
	// defaults (calicoctl ipam check reads it and stops without it).
	period := map[string]any{"reconcilerPeriod": "5m0s"}
	if err := k.ensureSingleton(ctx, k.res(kubeControllersConfiguration), "KubeControllersConfiguration", map[string]any{
		"controllers": map[string]any{
			"node":             map[string]any{"reconcilerPeriod": "5m0s", "syncLabels": "Enabled", "leakGracePeriod": "15m0s"},
			"policy":           period,
			"workloadEndpoint": period,
			"serviceAccount":   period,
			"namespace":        period,
		},
		"etcdV3CompactionPeriod": "10m0s",
		"healthChecks":           "Enabled",
		"logSeverityScreen":      "Info",
	}); err != nil {
		return err
	}
	if !loaded {
		if err := k.load(ctx); err != nil {
			return err
		}
	}
	if err := k.flush(ctx); err != nil {
		return err
	}
	k.dropStrayBlocks(ctx)
	return nil
}

// calicoVersion is the version of the calico-node that started last (each writes its own
// version into ClusterInformation when it starts).
func calicoVersion(pods []*corev1.Pod) string {
	version, newest := "unknown", time.Time{}
	for _, p := range pods {
		if len(p.Spec.Containers) == 0 || p.CreationTimestamp.Time.Before(newest) {
			continue
		}
		newest, version = p.CreationTimestamp.Time, imageTag(p.Spec.Containers[0].Image)
	}
	return version
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (k *calico) ensureSingleton(ctx context.Context, res schema.GroupVersionResource, kind string, spec map[string]any, track ...string) error {
	cur, err := k.c.dyn.Resource(res).Get(ctx, "default", metav1.GetOptions{})
	if err == nil {
		// The fields calico-node keeps up to date (the version after an upgrade).
		changed := false
		for _, field := range track {
			if v, _, _ := unstructured.NestedFieldCopy(cur.Object, "spec", field); v != spec[field] {
				_ = unstructured.SetNestedField(cur.Object, spec[field], "spec", field)
				changed = true
			}
		}
		if changed {
			_, err = k.c.dyn.Resource(res).Update(ctx, cur, metav1.UpdateOptions{FieldManager: calicoFieldManager})
		}
		return err
	}
	if !apierrors.IsNotFound(err) {
		return err
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": k.apiVersion(),
		"kind":       kind,
		"metadata":   map[string]any{"name": "default"},
		"spec":       spec,
	}}
	_, err = k.c.dyn.Resource(res).Create(ctx, obj, metav1.CreateOptions{FieldManager: calicoFieldManager})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// createDefaultPool does what calico-node does when no pool exists: CALICO_IPV4POOL_CIDR from its
// environment, else kubeadm-config's podSubnet, else 192.168.0.0/16.
func (k *calico) createDefaultPool(ctx context.Context) error {
	env := map[string]string{}
	ds, err := k.c.client.AppsV1().DaemonSets("kube-system").Get(ctx, "calico-node", metav1.GetOptions{})
	if err == nil {
		for _, ctr := range ds.Spec.Template.Spec.Containers {
			if ctr.Name != "calico-node" {
				continue
			}
			for _, e := range ctr.Env {
				env[e.Name] = e.Value
			}
		}
	}
	cidr := env["CALICO_IPV4POOL_CIDR"]
	if cidr == "" {
		cidr = kubeadmPodSubnet(ctx, k)
	}
	if cidr == "" {
		cidr = "192.168.0.0/16"
	}
	ipip := env["CALICO_IPV4POOL_IPIP"]
	if ipip == "" {
		ipip = "Always"
	}
	vxlan := env["CALICO_IPV4POOL_VXLAN"]
	if vxlan == "" {
		vxlan = "Never"
	}
	blockSize := int64(26)
	if bs, err := strconv.Atoi(env["CALICO_IPV4POOL_BLOCK_SIZE"]); err == nil {
		blockSize = int64(bs)
	}
	log.Printf("footprint: Selected default IP pool is '%s'", cidr)
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": k.apiVersion(),
		"kind":       "IPPool",
		"metadata":   map[string]any{"name": "default-ipv4-ippool"},
		"spec": map[string]any{
			"allowedUses":  []any{"Workload", "Tunnel"},
			"blockSize":    blockSize,
			"cidr":         cidr,
			"ipipMode":     ipip,
			"natOutgoing":  true,
			"nodeSelector": "all()",
			"vxlanMode":    vxlan,
		},
	}}
	_, err = k.c.dyn.Resource(k.res(ippools)).Create(ctx, obj, metav1.CreateOptions{FieldManager: calicoFieldManager})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

func kubeadmPodSubnet(ctx context.Context, k *calico) string {
	cm, err := k.c.client.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{})
	if err != nil {
		return ""
	}
	var cc struct {
		Networking struct {
			PodSubnet string `json:"podSubnet"`
		} `json:"networking"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data["ClusterConfiguration"]), &cc); err != nil {
		return ""
	}
	return strings.Split(cc.Networking.PodSubnet, ",")[0]
}

// nodeState returns the annotations and NetworkUnavailable condition calico-node keeps on a
// node, taking injected failures into account.
func (k *calico) nodeState(node *corev1.Node, pod *corev1.Pod, breaks map[string]bool) (map[string]*string, *corev1.NodeCondition) {
	k.mu.Lock()
	present := k.present && len(k.pools) > 0
	k.mu.Unlock()
	ann := map[string]*string{}
	if pod == nil || !present {
		cur := findNodeCondition(node, corev1.NodeNetworkUnavailable)
		if cur != nil && cur.Reason == "CalicoIsUp" {
			// calico-node's shutdown hook: the condition stays, now True.
			return ann, &corev1.NodeCondition{
				Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionTrue,
				Reason: "CalicoIsDown", Message: "Calico is shutting down on this node",
			}
		}
		return ann, nil
	}
	ctx := context.Background()
	ip := nodeInternalIP(node)
	address := fmt.Sprintf("%s/%d", ip, k.c.cfg.NodePrefixLen())
	switch {
	case breaks["duplicate-ip"]:
		if other, err := k.c.nodes.Get(node.Annotations[DuplicateOfAnnotation]); err == nil {
			address = fmt.Sprintf("%s/%d", nodeInternalIP(other), k.c.cfg.NodePrefixLen())
		}
	case breaks["wrong-ip"]:
		address = "10.0.2.15/24"
	}
	ann[calicoIPv4Annotation] = &address
	k.mu.Lock()
	p, ok := k.poolFor()
	k.mu.Unlock()
	var tunnel string
	var err error
	if ok && (p.ipipMode == "Always" || p.ipipMode == "CrossSubnet") {
		tunnel, err = k.tunnelAddress(ctx, node.Name)
	}
	switch {
	case err != nil:
		log.Printf("footprint: tunnel address for %s: %v", node.Name, err)
	case breaks["tunnel-addr-missing"]:
		// `lab break tunnel-addr-missing`: calico-node runs, its tunnel setup did not.
		ann[calicoTunnelAnnotation] = nil
	case tunnel != "":
		ann[calicoTunnelAnnotation] = &tunnel
	}
	cond := &corev1.NodeCondition{
		Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse,
		Reason: "CalicoIsUp", Message: "Calico is running on this node",
	}
	if breaks["network-unavailable-stale"] {
		cond = &corev1.NodeCondition{
			Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionTrue,
			Reason: "CalicoIsDown", Message: "Calico is shutting down on this node",
			LastTransitionTime: metav1.NewTime(time.Now().Add(-2 * time.Hour).Truncate(time.Hour)),
		}
	}
	return ann, cond
}

// assign gives each waiting pod an address from the node's block(s), writes the blocks, then
// creates the handles and annotates the pods as Calico's CNI plugin does.
func (k *calico) assign(ctx context.Context, node *corev1.Node, pods []*corev1.Pod) error {
	type assignment struct {
		pod  *corev1.Pod
		addr netip.Addr
		cid  string
		cidr netip.Prefix
	}
	k.mu.Lock()
	if !k.present || !k.loaded || len(k.pools) == 0 {
		k.mu.Unlock()
		return nil
	}
	var done []assignment
	touched := map[string]*block{}
	for _, p := range pods {
		from, ok := k.podPool(p)
		if !ok {
			// The pool it asks for is not known (yet): its CNI ADD fails and is retried, as
			// the kubelet retries a sandbox.
			continue
		}
		b, err := k.claim(node.Name, from)
		if err != nil {
			k.mu.Unlock()
			return err
		}
		cid := randomHex(32)
		addr, _ := b.allocate(attribute{HandleID: handlePrefix + cid, Secondary: map[string]string{
			"namespace": p.Namespace, "node": node.Name, "pod": p.Name, "timestamp": time.Now().UTC().Format("2006-01-02 15:04:05.999999999 -0700 MST"),
		}})
		touched[b.name] = b
		done = append(done, assignment{pod: p, addr: addr, cid: cid, cidr: b.cidr})
	}
	k.mu.Unlock()
	for _, b := range touched {
		if err := k.writeBlock(ctx, b); err != nil {
			return err
		}
	}
	errs := make(chan error, len(done))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, a := range done {
		wg.Add(1)
		sem <- struct{}{}
		go func(a assignment) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := k.createHandle(ctx, handlePrefix+a.cid, a.cidr); err != nil {
				errs <- err
				return
			}
			ip := a.addr.String()
			patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{
				containerIDAnnotation:          a.cid,
				"cni.projectcalico.org/podIP":  ip + "/32",
				"cni.projectcalico.org/podIPs": ip + "/32",
				stages.PodIPAnnotation:         ip,
			}}})
			_, err := k.c.client.CoreV1().Pods(a.pod.Namespace).Patch(ctx, a.pod.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "calico"})
			if err == nil {
				k.c.addressed.Store(a.pod.UID, struct{}{})
			}
			if apierrors.IsNotFound(err) {
				k.release(a.pod, ip)
				return
			}
			if err != nil {
				errs <- err
			}
		}(a)
	}
	wg.Wait()
	close(errs)
	return <-errs
}
