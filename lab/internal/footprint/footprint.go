// Package footprint is the lab-only stand-in for what the real calico-node, Calico's CNI plugin,
// calico-kube-controllers and flanneld write to the API. KWOK runs no containers, so when the
// Calico manifest is applied the DaemonSet's pods become Running but nothing would create the
// IP pool, the node annotations, the IPAM blocks or give pods their addresses. This controller
// does, through the API, with the same object shapes Calico uses; it also plays the failures
// that `lab break` injects (see breaks.go).
//
// What it models, per node:
//   - the CNI configuration on the host (annotation lab.grappe.dev/cni-config): written when a
//     CNI's node agent first runs there and left behind when the CNI is deleted, as on a real
//     host (kubeadm reset does not remove it either);
//   - Calico's per-node state while calico-node runs there: projectcalico.org/IPv4Address and
//     IPv4IPIPTunnelAddr annotations, NetworkUnavailable=False/CalicoIsUp, a /26 IPAM block and
//     its BlockAffinity; NetworkUnavailable=True/CalicoIsDown when calico-node stops;
//   - Flannel's node annotations and NetworkUnavailable=False/FlannelIsUp;
//   - pod addresses from the first working CNI in conflist order (10-calico before 10-flannel).
package footprint

import (
	"context"
	"fmt"
	"log"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"grappe.dev/lab/internal/config"
	"grappe.dev/lab/internal/hosts"
	"grappe.dev/lab/internal/stages"
)

const (
	// BreakAnnotation lists the failures injected on a node (comma-separated kinds).
	BreakAnnotation = "lab.grappe.dev/break"
	// DuplicateOfAnnotation names the node whose address a duplicate-ip node claims.
	DuplicateOfAnnotation = "lab.grappe.dev/duplicate-of"
	// BGPPeerAnnotation names the node a bgp-peer-down node has no BGP session with.
	BGPPeerAnnotation = "lab.grappe.dev/bgp-peer-down"

	calicoIPv4Annotation   = "projectcalico.org/IPv4Address"
	calicoTunnelAnnotation = "projectcalico.org/IPv4IPIPTunnelAddr"
	// containerIDAnnotation: the container ID Calico's CNI writes on a pod it gave an address;
	// the address's IPAM handle is handlePrefix + that ID.
	containerIDAnnotation = "cni.projectcalico.org/containerID"
	handlePrefix          = "k8s-pod-network."

	nodeIndex = "node"
	// bgpPeerIndex: nodes by the peer their bgp-peer-down break names.
	bgpPeerIndex = "bgp-peer-down"
)

// Controller reconciles the CNI footprint of every node.
type Controller struct {
	cfg    *config.Config
	client kubernetes.Interface
	dyn    dynamic.Interface

	nodes     listerscorev1.NodeLister
	nodeIndex cache.Indexer
	podIndex  cache.Indexer
	synced    []cache.InformerSynced
	factory   informers.SharedInformerFactory
	queue     workqueue.TypedRateLimitingInterface[string]

	calico  *calico
	flannel *flannel

	mu sync.Mutex
	// lastCrash remembers when a crash-looping calico-node was last "restarted".
	lastCrash map[string]time.Time
	// The operator pod the running operator process stands for, and when its token is renewed.
	operatorPodUID  types.UID
	operatorRenew   time.Time
	operatorStarted time.Time
	// addressed holds the pods given an address whose annotation the informer may not show
	// yet, so that a reconcile racing the watch does not address them twice.
	addressed sync.Map // types.UID -> struct{}
}

// New builds the controller.
func New(cfg *config.Config, rc *rest.Config) (*Controller, error) {
	rc = rest.CopyConfig(rc)
	rc.QPS = 1000
	rc.Burst = 2000
	typed := rest.CopyConfig(rc)
	typed.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	typed.ContentType = "application/vnd.kubernetes.protobuf"
	client, err := kubernetes.NewForConfig(typed)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	podInformer := factory.Core().V1().Pods().Informer()
	if err := podInformer.SetTransform(trimPod); err != nil {
		return nil, err
	}
	if err := podInformer.AddIndexers(cache.Indexers{nodeIndex: func(obj any) ([]string, error) {
		if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
			return []string{p.Spec.NodeName}, nil
		}
		return nil, nil
	}}); err != nil {
		return nil, err
	}
	nodeInformer := factory.Core().V1().Nodes().Informer()
	if err := nodeInformer.AddIndexers(cache.Indexers{bgpPeerIndex: bgpPeerDownOf}); err != nil {
		return nil, err
	}
	c := &Controller{
		cfg:       cfg,
		client:    client,
		dyn:       dyn,
		nodes:     factory.Core().V1().Nodes().Lister(),
		nodeIndex: nodeInformer.GetIndexer(),
		podIndex:  podInformer.GetIndexer(),
		synced:    []cache.InformerSynced{podInformer.HasSynced, nodeInformer.HasSynced},
		factory:   factory,
		queue:     workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
		lastCrash: map[string]time.Time{},
	}
	c.calico = newCalico(c)
	c.flannel = newFlannel(c)

	_, _ = nodeInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.enqueueNode(obj) },
		UpdateFunc: func(_, obj any) { c.enqueueNode(obj) },
		DeleteFunc: func(obj any) { c.nodeDeleted(obj) },
	})
	_, _ = podInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.enqueuePod(obj) },
		UpdateFunc: func(_, obj any) { c.podUpdated(obj) },
		DeleteFunc: func(obj any) { c.podDeleted(obj) },
	})
	return c, nil
}

// trimPod keeps what the controller reads, so that 150,000 pods fit in memory.
func trimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	p.ManagedFields = nil
	for i := range p.Spec.Containers {
		p.Spec.Containers[i].Env = nil
		p.Spec.Containers[i].VolumeMounts = nil
		p.Spec.Containers[i].LivenessProbe = nil
		p.Spec.Containers[i].ReadinessProbe = nil
	}
	p.Spec.Volumes = nil
	p.Spec.InitContainers = nil
	p.Spec.Affinity = nil
	return p, nil
}

func (c *Controller) enqueueNode(obj any) {
	if n, ok := obj.(*corev1.Node); ok {
		c.queue.Add(n.Name)
	}
}

func (c *Controller) enqueuePod(obj any) {
	if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
		c.queue.Add(p.Spec.NodeName)
	}
}

// podUpdated releases the Calico address of a pod that finished (Succeeded or Failed), as the
// CNI DEL of its torn-down sandbox does on a node (calicoctl counts such an address as leaked),
// then reconciles the pod's node. Flannel's host-local addresses go when the pod does.
func (c *Controller) podUpdated(obj any) {
	if p, ok := obj.(*corev1.Pod); ok && Finished(p) && p.Annotations[CNIDelAnnotation] != "crash" {
		if ip := p.Annotations[stages.PodIPAnnotation]; ip != "" {
			c.calico.release(p, ip)
		}
	}
	c.enqueuePod(obj)
}

// Finished says whether a pod has ended (Succeeded or Failed): its sandbox is gone and its
// address released, though its status still shows it.
func Finished(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

func (c *Controller) podDeleted(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	c.addressed.Delete(p.UID)
	if ip := p.Annotations[stages.PodIPAnnotation]; ip != "" {
		if p.Annotations[CNIDelAnnotation] == "crash" {
			c.calico.crashedDel(p, ip)
		} else {
			c.calico.release(p, ip)
			c.flannel.release(p.Spec.NodeName, ip)
		}
	}
	if p.Spec.NodeName != "" {
		c.queue.Add(p.Spec.NodeName)
	}
}

func (c *Controller) nodeDeleted(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if n, ok := obj.(*corev1.Node); ok {
		// calico-kube-controllers releases the IPAM of deleted nodes.
		c.calico.releaseNode(context.Background(), n.Name)
		c.flannel.forget(n.Name)
	}
}

// Run works until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) error {
	defer c.queue.ShutDown()
	c.factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return fmt.Errorf("caches did not sync")
	}
	log.Printf("footprint: caches synced")
	go c.periodic(ctx)
	for i := 0; i < workers; i++ {
		go wait.UntilWithContext(ctx, c.worker, time.Second)
	}
	<-ctx.Done()
	return nil
}

func (c *Controller) worker(ctx context.Context) {
	for {
		name, quit := c.queue.Get()
		if quit {
			return
		}
		err := c.reconcileNode(ctx, name)
		if err != nil {
			if !apierrors.IsConflict(err) {
				log.Printf("footprint: node %s: %v", name, err)
			}
			c.queue.AddRateLimited(name)
		} else {
			c.queue.Forget(name)
		}
		c.queue.Done(name)
	}
}

// periodic runs the global pass every 2 s, or every 15 s on labs of more than 200 nodes (events
// still drive each node's reconcile at once). The size is looked at before every pass: the
// controller starts before the nodes register, and a 5,000-node lab revisited every 2 s kept
// half a core busy doing nothing.
func (c *Controller) periodic(ctx context.Context) {
	for {
		c.global(ctx)
		period := 2 * time.Second
		if n, _ := c.nodes.List(everything()); len(n) > 200 {
			period = 15 * time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(period):
		}
	}
}

// global reconciles cluster-wide Calico state, then revisits every node (cheap when nothing
// changed: decisions are made from the informer caches).
func (c *Controller) global(ctx context.Context) {
	if err := c.reconcileOperator(ctx); err != nil {
		log.Printf("footprint: operator: %v", err)
	}
	if err := c.calico.reconcileGlobal(ctx); err != nil {
		log.Printf("footprint: calico: %v", err)
	}
	nodes, err := c.nodes.List(everything())
	if err != nil {
		return
	}
	for _, n := range nodes {
		c.queue.Add(n.Name)
	}
}

// podsOn returns the pods bound to a node.
func (c *Controller) podsOn(node string) []*corev1.Pod {
	objs, err := c.podIndex.ByIndex(nodeIndex, node)
	if err != nil {
		return nil
	}
	pods := make([]*corev1.Pod, 0, len(objs))
	for _, o := range objs {
		if p, ok := o.(*corev1.Pod); ok {
			pods = append(pods, p)
		}
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].CreationTimestamp.Before(&pods[j].CreationTimestamp) })
	return pods
}

// agentPod returns the running (not terminating) pod of a CNI agent on a node.
func (c *Controller) agentPod(node, namespace, labelKey, labelValue string) *corev1.Pod {
	for _, p := range c.podsOn(node) {
		if p.Namespace == namespace && p.Labels[labelKey] == labelValue && p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			return p
		}
	}
	return nil
}

func (c *Controller) reconcileNode(ctx context.Context, name string) error {
	node, err := c.nodes.Get(name)
	if err != nil {
		return err
	}
	breaks := Breaks(node)
	if !breaks["ipam-leak"] {
		if n := c.calico.releaseLeaked(ctx, name); n > 0 {
			log.Printf("footprint: %s: released %d leaked address(es) (ipam-leak healed)", name, n)
			if err := c.calico.flush(ctx); err != nil {
				return err
			}
		}
	}
	var calicoPod *corev1.Pod
	for _, ns := range calicoNamespaces {
		if calicoPod = c.agentPod(name, ns, "k8s-app", "calico-node"); calicoPod != nil {
			break
		}
	}
	flannelPod := c.agentPod(name, "kube-flannel", "app", "flannel")

	// The CNI configuration a node agent leaves on the host.
	cniConfig := CNIConfig(node)
	if calicoPod != nil {
		cniConfig = addToSet(cniConfig, "calico")
	}
	if flannelPod != nil {
		cniConfig = addToSet(cniConfig, "flannel")
	}
	// On a lab with hosts, the node agent's files land on the node's host too.
	if err := hosts.CNIInstalled(c.cfg, name, cniConfig); err != nil {
		log.Printf("host files for %s: %v", name, err)
	}
	annotations := map[string]*string{}
	if joined := strings.Join(cniConfig, ","); joined != node.Annotations[stages.CNIConfigAnnotation] && len(cniConfig) > 0 {
		annotations[stages.CNIConfigAnnotation] = &joined
	}

	var conditions []corev1.NodeCondition
	calicoAnn, calicoCond := c.calico.nodeState(node, calicoPod, breaks)
	for k, v := range calicoAnn {
		annotations[k] = v
	}
	if calicoCond != nil {
		conditions = append(conditions, *calicoCond)
	}
	flannelAnn, flannelCond := c.flannel.nodeState(node, flannelPod)
	for k, v := range flannelAnn {
		annotations[k] = v
	}
	if flannelCond != nil && calicoCond == nil {
		conditions = append(conditions, *flannelCond)
	}
	if err := c.patchNodeAnnotations(ctx, node, annotations); err != nil {
		return err
	}
	if err := c.patchNodeConditions(ctx, node, conditions); err != nil {
		return err
	}
	if calicoPod != nil {
		if err := c.playAgentHealth(ctx, node, calicoPod, breaks); err != nil {
			return err
		}
	}
	if err := c.readyAgain(ctx, node); err != nil {
		return err
	}
	return c.assignPodIPs(ctx, node, cniConfig, calicoPod, flannelPod)
}

// assignPodIPs gives waiting pods an address from the first working CNI in conflist order.
func (c *Controller) assignPodIPs(ctx context.Context, node *corev1.Node, cniConfig []string, calicoPod, flannelPod *corev1.Pod) error {
	if len(cniConfig) == 0 {
		return nil
	}
	primary := cniConfig[0]
	var waiting []*corev1.Pod
	for _, p := range c.podsOn(node.Name) {
		if p.Spec.HostNetwork || p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodPending {
			continue
		}
		if p.Annotations[stages.PodIPAnnotation] != "" {
			c.addressed.Delete(p.UID) // the informer caught up
			continue
		}
		if _, done := c.addressed.Load(p.UID); done {
			continue
		}
		waiting = append(waiting, p)
	}
	if len(waiting) == 0 {
		return nil
	}
	switch primary {
	case "calico":
		if calicoPod == nil {
			return nil // the plugin cannot reach calico-node's datastore: sandboxes fail
		}
		return c.calico.assign(ctx, node, waiting)
	case "flannel":
		if flannelPod == nil {
			return nil
		}
		return c.flannel.assign(ctx, node, waiting)
	}
	return nil
}
