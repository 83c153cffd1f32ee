package lab

// The network doctor's MTU and encapsulation failures: a host whose interface MTU is below the
// cluster's (`mtu-mismatch`: real, so that ping with Don't Fragment finds it), and the default
// pool's IPIP mode set to CrossSubnet while every node is in one subnet (`pool-cross-subnet`).
// `lab heal` undoes both.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"grappe.dev/lab/internal/config"
	"grappe.dev/lab/internal/hosts"
)

const (
	// DefaultMismatchMTU is the MTU `mtu-mismatch` gives a host's interface without one.
	DefaultMismatchMTU = 1400
	// mtuMismatchFlag is the host state file that remembers the MTU to restore.
	mtuMismatchFlag = "mtu-mismatch"
	// ipipModeWasAnnotation remembers a pool's IPIP mode before `pool-cross-subnet`.
	ipipModeWasAnnotation = "lab.grappe.dev/ipip-mode-was"
)

// breakMTU lowers node's interface MTU (eth0 in its namespace) to mtu.
func breakMTU(cfg *config.Config, args []string, out io.Writer) error {
	node := firstWorker(cfg)
	if len(args) > 0 {
		node = args[0]
	}
	mtu := DefaultMismatchMTU
	if len(args) > 1 {
		v, err := strconv.Atoi(args[1])
		if err != nil || v < 576 || v > 9000 {
			return &UsageError{Err: errors.New("usage: lab break mtu-mismatch [NODE [MTU (576 to 9000)]]")}
		}
		mtu = v
	}
	h, err := hosts.Get(cfg, node)
	if err != nil {
		return &UsageError{Err: err}
	}
	before, err := hosts.UplinkMTU(h)
	if err != nil {
		return err
	}
	if _, err := os.Stat(h.File("state", mtuMismatchFlag)); err != nil {
		if err := os.WriteFile(h.File("state", mtuMismatchFlag), []byte(strconv.Itoa(before)+"\n"), 0o644); err != nil {
			return err
		}
	}
	if err := hosts.SetUplinkMTU(h, mtu); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: eth0 MTU %d (was %d); packets larger than that to %s are dropped. `lab heal` sets it back\n", node, mtu, before, h.Node.IP)
	return nil
}

// healMTU gives every host whose MTU was lowered its MTU back.
func healMTU(cfg *config.Config, out io.Writer) error {
	list, err := hosts.List(cfg)
	if err != nil {
		return err
	}
	for _, h := range list {
		data, err := os.ReadFile(h.File("state", mtuMismatchFlag))
		if err != nil {
			continue
		}
		mtu, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || mtu < 576 {
			mtu = 1500
		}
		if err := hosts.SetUplinkMTU(h, mtu); err != nil {
			return err
		}
		if err := os.Remove(h.File("state", mtuMismatchFlag)); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s: eth0 MTU %d again\n", h.Node.Name, mtu)
	}
	return nil
}

// breakCrossSubnet sets the first IPIP pool (by name) to CrossSubnet, remembering its mode.
func breakCrossSubnet(ctx context.Context, dyn dynamic.Interface, out io.Writer) error {
	list, err := dyn.Resource(ippoolsGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("IP pools (is Calico installed?): %w", err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].GetName() < list.Items[j].GetName() })
	for _, p := range list.Items {
		mode, _, _ := unstructured.NestedString(p.Object, "spec", "ipipMode")
		if mode != "Always" {
			continue
		}
		patch, err := json.Marshal(map[string]any{
			"metadata": map[string]any{"annotations": map[string]any{ipipModeWasAnnotation: mode}},
			"spec":     map[string]any{"ipipMode": "CrossSubnet"},
		})
		if err != nil {
			return err
		}
		if _, err := dyn.Resource(ippoolsGVR).Patch(ctx, p.GetName(), types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "lab"}); err != nil {
			return err
		}
		fmt.Fprintf(out, "IPPool %s: ipipMode CrossSubnet (was %s), while every node is in one subnet. `lab heal` sets it back\n", p.GetName(), mode)
		return nil
	}
	return errors.New("no IP pool with ipipMode Always (is Calico installed?)")
}

// healCrossSubnet gives the pools `pool-cross-subnet` changed their IPIP mode back.
func healCrossSubnet(ctx context.Context, dyn dynamic.Interface, out io.Writer) error {
	list, err := dyn.Resource(ippoolsGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil // no Calico: nothing to heal
	}
	for _, p := range list.Items {
		was, ok := p.GetAnnotations()[ipipModeWasAnnotation]
		if !ok {
			continue
		}
		patch, err := json.Marshal(map[string]any{
			"metadata": map[string]any{"annotations": map[string]any{ipipModeWasAnnotation: nil}},
			"spec":     map[string]any{"ipipMode": was},
		})
		if err != nil {
			return err
		}
		if _, err := dyn.Resource(ippoolsGVR).Patch(ctx, p.GetName(), types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "lab"}); err != nil {
			return err
		}
		fmt.Fprintf(out, "IPPool %s: ipipMode %s again\n", p.GetName(), was)
	}
	return nil
}
