package lab

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// loadClient is a fake clientset that counts pod creates and records, at each one, how many
// created pods were not Ready yet.
type loadClient struct {
	*fake.Clientset
	mu         sync.Mutex
	created    int
	ready      int
	maxPending int
}

func newLoadClient() *loadClient {
	c := &loadClient{Clientset: fake.NewClientset()}
	c.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.created++
		c.maxPending = max(c.maxPending, c.created-c.ready)
		return false, nil, nil // the tracker stores the pod
	})
	return c
}

func (c *loadClient) Ready() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ready
}

// turnReady makes one created pod Ready every 40 ms (several times slower than the fake's
// creates) until ctx ends.
func (c *loadClient) turnReady(ctx context.Context) {
	for ctx.Err() == nil {
		c.mu.Lock()
		if c.ready < c.created {
			c.ready++
		}
		c.mu.Unlock()
		time.Sleep(40 * time.Millisecond)
	}
}

func setWindow(t *testing.T, n int) {
	t.Helper()
	old := loadWindow
	loadWindow = n
	t.Cleanup(func() { loadWindow = old })
}

func TestLoadPodsArePacedByTheWindow(t *testing.T) {
	fastProgress(t, 5*time.Second)
	setWindow(t, 20)
	c := newLoadClient()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.turnReady(ctx)
	nodes := []string{"n1", "n2", "n3", "n4", "n5"}
	var out bytes.Buffer
	if err := createBoundPods(ctx, c, nodes, 24, c.Ready, &out); err != nil {
		t.Fatalf("createBoundPods: %v", err)
	}
	if c.created != 120 {
		t.Fatalf("created %d pods, want 120", c.created)
	}
	// The window, plus what the 32 creators had in flight when it filled.
	if c.maxPending > 20+32 {
		t.Fatalf("%d pods were created and not Ready at once, window 20", c.maxPending)
	}
	if c.maxPending < 20 {
		t.Fatalf("never more than %d pods pending: the window did not let creation run ahead", c.maxPending)
	}
}

func TestLoadPodsUnpacedWithoutReadyCount(t *testing.T) {
	fastProgress(t, 50*time.Millisecond) // a paced creation would fail fast here
	setWindow(t, 20)
	c := newLoadClient() // nothing turns Ready: `lab pods` does not wait for it
	var out bytes.Buffer
	if err := createBoundPods(context.Background(), c, []string{"n1", "n2"}, 30, nil, &out); err != nil {
		t.Fatalf("createBoundPods: %v", err)
	}
	if c.created != 60 {
		t.Fatalf("created %d pods, want 60", c.created)
	}
}

func TestLoadPodsFailWhenTheWindowStaysFull(t *testing.T) {
	fastProgress(t, 50*time.Millisecond)
	setWindow(t, 10)
	c := newLoadClient() // nothing turns Ready
	var out bytes.Buffer
	err := createBoundPods(context.Background(), c, []string{"n1", "n2"}, 30, c.Ready, &out)
	if err == nil || !strings.Contains(err.Error(), "window of 10 pods not Ready") || !strings.Contains(err.Error(), "load pods Ready") {
		t.Fatalf("want a stall error on the full window, got %v", err)
	}
	if c.created >= 60 || c.created < 10 {
		t.Fatalf("created %d pods: creation should stop once the window of 10 is full", c.created)
	}
}
