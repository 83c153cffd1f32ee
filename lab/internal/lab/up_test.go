package lab

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"grappe.dev/lab/internal/config"
)

// fastProgress makes waitProgress poll every millisecond and give up after stall.
func fastProgress(t *testing.T, stall time.Duration) {
	t.Helper()
	oldStall, oldPoll, oldReport := stallTimeout, progressPoll, progressReport
	stallTimeout, progressPoll, progressReport = stall, time.Millisecond, 10*time.Millisecond
	t.Cleanup(func() { stallTimeout, progressPoll, progressReport = oldStall, oldPoll, oldReport })
}

func TestWaitProgressGoesOnWhileCountGrows(t *testing.T) {
	fastProgress(t, 50*time.Millisecond)
	var out bytes.Buffer
	n := 0
	started := time.Now()
	// One more every 20 ms: 300 ms in all, six times the stall limit, but never stalled.
	err := waitProgress(context.Background(), 15, "nodes Ready", &out, started, func() (int, error) {
		n = int(time.Since(started) / (20 * time.Millisecond))
		return n, nil
	})
	if err != nil {
		t.Fatalf("waitProgress: %v", err)
	}
	if n < 15 {
		t.Fatalf("returned at %d/15", n)
	}
	if !strings.Contains(out.String(), "/15 nodes Ready") {
		t.Fatalf("no progress reported: %q", out.String())
	}
}

func TestWaitProgressFailsWhenStalled(t *testing.T) {
	fastProgress(t, 50*time.Millisecond)
	var out bytes.Buffer
	err := waitProgress(context.Background(), 10, "load pods Ready", &out, time.Now(), func() (int, error) { return 7, nil })
	if err == nil || !strings.Contains(err.Error(), "no progress for 50ms: 7/10 load pods Ready") {
		t.Fatalf("want a stall error naming 7/10, got %v", err)
	}
	// A count that fails (the API server too busy to list) is no progress; the error is named.
	busy := errors.New("the server is currently unable to handle the request")
	calls := 0
	err = waitProgress(context.Background(), 10, "nodes Ready", &out, time.Now(), func() (int, error) {
		calls++
		if calls == 1 {
			return 3, nil
		}
		return 0, busy
	})
	if !errors.Is(err, busy) || !strings.Contains(err.Error(), "3/10 nodes Ready") {
		t.Fatalf("want a stall error at 3/10 naming the last error, got %v", err)
	}
}

// A node must miss at least two lease renewals (KWOK renews every lease/4 seconds) before the
// controller-manager calls it NotReady, at every size.
func TestNodeMonitorGraceOutlastsLeaseRenewals(t *testing.T) {
	for _, nodes := range []int{4, 100, 501, 2001, 5000} {
		cfg := &config.Config{Workers: nodes - 1}
		grace, err := time.ParseDuration(nodeMonitorGrace(cfg))
		if err != nil {
			t.Fatalf("%d nodes: grace %q: %v", nodes, nodeMonitorGrace(cfg), err)
		}
		renewal := time.Duration(leaseSeconds(cfg)) * time.Second / 4
		if grace < 2*renewal {
			t.Errorf("%d nodes: grace %v, lease renewed every %v", nodes, grace, renewal)
		}
	}
	if g := nodeMonitorGrace(&config.Config{Workers: 4999}); g != "450s" {
		t.Errorf("5,000 nodes: grace %s, want 450s", g)
	}
}
