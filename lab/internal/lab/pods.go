package lab

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"grappe.dev/lab/internal/config"
)

// BenchNamespace holds the load pods (`lab pods`, `lab up --pods-per-node`).
const BenchNamespace = "bench"

// Pods creates perNode bare pods on every worker, bound directly (spec.nodeName, as a
// DaemonSet's pods are), so that a large lab gets its pods at the API server's pace instead of
// the scheduler's (a few pods per second at 5,000 nodes on 2 cores). They are load for
// benchmarks of pod watches; without a CNI they stay ContainerCreating, with one they run.
// Idempotent: existing pods are kept.
func Pods(ctx context.Context, dir string, perNode int, out io.Writer) error {
	if perNode < 1 {
		return &UsageError{Err: fmt.Errorf("pods per node must be at least 1, not %d", perNode)}
	}
	cfg, err := config.Load(dir)
	if err != nil {
		return fmt.Errorf("no lab in %s (run lab up first): %w", dir, err)
	}
	client, _, err := Clients(&cfg)
	if err != nil {
		return err
	}
	workers, err := workerNames(&cfg)
	if err != nil {
		return err
	}
	return createBoundPods(ctx, client, workers, perNode, nil, out)
}

func workerNames(cfg *config.Config) ([]string, error) {
	nodes, err := cfg.Nodes()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(nodes))
	for _, n := range nodes[1:] { // nodes[0] is the control plane
		names = append(names, n.Name)
	}
	return names, nil
}

// loadWindow bounds the load pods that `up --pods-per-node` keeps created but not yet Ready:
// creation pauses when the window is full and resumes when half of it has turned Ready.
// Unpaced, creation ran ahead of the CNI footprint and KWOK on a saturated API server
// (5,000 nodes, 2 cores: 104,000 pods created, 62,000 addressed, 16,000 Ready): every pod
// then cost a second status write (KWOK's ContainerCreating stage, played when the address
// comes later than 3 s), and Ready pods came at 2 to 6 per second while creation took the
// API server's capacity. A variable for the unit test.
var loadWindow = 1000

// createBoundPods creates perNode pause pods named bench-NODE-I on each node, 32 requests in
// flight, and reports progress every 30 s (with the Ready count when ready is given). With
// ready, creation is paced by [loadWindow]; a window that stays full for [stallTimeout] (pods
// that never turn Ready) is an error.
func createBoundPods(ctx context.Context, client kubernetes.Interface, nodes []string, perNode int, ready func() int, out io.Writer) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: BenchNamespace}}
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	existing, err := podNames(ctx, client, BenchNamespace)
	if err != nil {
		return err
	}
	type job struct{ node, name string }
	jobs := make(chan job)
	var created, failed atomic.Int64
	var firstErrOnce sync.Once
	var firstErr error
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				pod := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: j.name, Namespace: BenchNamespace, Labels: map[string]string{"app": "bench"}},
					Spec: corev1.PodSpec{
						NodeName:    j.node,
						Containers:  []corev1.Container{{Name: "pause", Image: "registry.k8s.io/pause:3.10"}},
						Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					},
				}
				_, err := client.CoreV1().Pods(BenchNamespace).Create(ctx, pod, metav1.CreateOptions{})
				switch {
				case err == nil:
					created.Add(1)
				case apierrors.IsAlreadyExists(err):
				default:
					failed.Add(1)
					firstErrOnce.Do(func() { firstErr = err })
				}
			}
		}()
	}
	start := time.Now()
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if ready != nil {
					fmt.Fprintf(out, "[%5.0fs] %d pods created, %d Ready\n", time.Since(start).Seconds(), created.Load(), ready())
				} else {
					fmt.Fprintf(out, "[%5.0fs] %d pods created\n", time.Since(start).Seconds(), created.Load())
				}
			}
		}
	}()
	total := 0
	var paceErr error
	// Node by node: the CNI footprint addresses a node's waiting pods with one write of the
	// node's IPAM block, so a node's pods created together cost one block read and write instead
	// of one per pod (round-robin creation spread them over every node).
feed:
	for _, n := range nodes {
		for i := 0; i < perNode; i++ {
			name := fmt.Sprintf("bench-%s-%d", n, i)
			total++
			if existing[name] {
				continue
			}
			if ready != nil {
				if paceErr = pace(ctx, len(existing)+int(created.Load()), ready, start); paceErr != nil {
					break feed
				}
			}
			select {
			case <-ctx.Done():
				break feed
			case jobs <- job{node: n, name: name}:
			}
		}
	}
	close(jobs)
	wg.Wait()
	close(done)
	elapsed := time.Since(start).Seconds()
	fmt.Fprintf(out, "%d pods created (%d already there) in %.0f s (%.0f pods/s)\n",
		created.Load(), int64(total)-created.Load()-failed.Load(), elapsed, float64(created.Load())/elapsed)
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d pods could not be created; first error: %w", n, firstErr)
	}
	if paceErr != nil {
		return fmt.Errorf("creation paused on a full window of %d pods not Ready: %w", loadWindow, paceErr)
	}
	return ctx.Err()
}

// pace returns at once while fewer than [loadWindow] of the made pods (existing and created)
// are not Ready; otherwise it waits until at most half the window is, with [waitProgress]'s
// stall limit.
func pace(ctx context.Context, made int, ready func() int, start time.Time) error {
	if made-ready() < loadWindow {
		return nil
	}
	return waitProgress(ctx, made-loadWindow/2, "load pods Ready", io.Discard, start, func() (int, error) { return ready(), nil })
}

// podNames lists the pods of ns by pages, so that a second run only creates what is missing
// instead of sending 150,000 creates that fail with AlreadyExists.
func podNames(ctx context.Context, client kubernetes.Interface, ns string) (map[string]bool, error) {
	names := map[string]bool{}
	opts := metav1.ListOptions{Limit: 5000}
	for {
		list, err := client.CoreV1().Pods(ns).List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list pods in %s: %w", ns, err)
		}
		for i := range list.Items {
			names[list.Items[i].Name] = true
		}
		if list.Continue == "" {
			return names, nil
		}
		opts.Continue = list.Continue
	}
}

// podReadyCounter follows the pods of one namespace through a watch and counts the Ready ones.
// Each cached pod is cut down to its name and Ready condition: 150,000 full pods would cost
// the lab process hundreds of MB, and listing them every few seconds would cost the API server
// more than running them.
type podReadyCounter struct {
	mu    sync.Mutex
	ready map[string]bool
	count int
}

func startPodReadyCounter(ctx context.Context, client kubernetes.Interface, ns string) (*podReadyCounter, error) {
	c := &podReadyCounter{ready: map[string]bool{}}
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns))
	inf := factory.Core().V1().Pods().Informer()
	if err := inf.SetTransform(func(obj any) (any, error) {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return obj, nil
		}
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, ResourceVersion: pod.ResourceVersion},
			Status:     corev1.PodStatus{Conditions: readyOnly(pod.Status.Conditions)},
		}, nil
	}); err != nil {
		return nil, err
	}
	set := func(obj any, gone bool) {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			if tomb, isTomb := obj.(cache.DeletedFinalStateUnknown); isTomb {
				pod, ok = tomb.Obj.(*corev1.Pod)
			}
			if !ok {
				return
			}
		}
		now := !gone && len(pod.Status.Conditions) == 1 && pod.Status.Conditions[0].Status == corev1.ConditionTrue
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.ready[pod.Name] != now {
			if now {
				c.count++
			} else {
				c.count--
			}
		}
		if now {
			c.ready[pod.Name] = true
		} else {
			delete(c.ready, pod.Name)
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { set(obj, false) },
		UpdateFunc: func(_, obj any) { set(obj, false) },
		DeleteFunc: func(obj any) { set(obj, true) },
	}); err != nil {
		return nil, err
	}
	factory.Start(ctx.Done())
	return c, nil
}

func readyOnly(conds []corev1.PodCondition) []corev1.PodCondition {
	for _, cond := range conds {
		if cond.Type == corev1.PodReady {
			return []corev1.PodCondition{{Type: corev1.PodReady, Status: cond.Status}}
		}
	}
	return nil
}

// Ready is the number of Ready pods seen so far.
func (c *podReadyCounter) Ready() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count
}

// wait returns when want pods are Ready, reporting every 30 s.
func (c *podReadyCounter) wait(ctx context.Context, want int, out io.Writer, start time.Time) error {
	return waitProgress(ctx, want, "load pods Ready", out, start, func() (int, error) { return c.Ready(), nil })
}
