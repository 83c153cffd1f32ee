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

	"grappe.dev/lab/internal/config"
)

// BenchNamespace holds the pods `lab pods` creates.
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
	nodes, err := cfg.Nodes()
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: BenchNamespace}}
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
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
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(out, "[%5.0fs] %d pods created\n", time.Since(start).Seconds(), created.Load())
			}
		}
	}()
	total := 0
feed:
	for i := 0; i < perNode; i++ {
		for _, n := range nodes[1:] {
			select {
			case <-ctx.Done():
				break feed
			case jobs <- job{node: n.Name, name: fmt.Sprintf("bench-%s-%d", n.Name, i)}:
				total++
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
	return ctx.Err()
}
