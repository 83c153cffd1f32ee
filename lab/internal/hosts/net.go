package hosts

// A host's uplink (eth0 in its namespace): its MTU, read and set (`lab break mtu-mismatch`).

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// UplinkMTU is the MTU of the host's eth0.
func UplinkMTU(h Host) (int, error) {
	raw, err := exec.Command("ip", "-n", h.NS, "-o", "link", "show", "eth0").CombinedOutput()
	out := string(raw)
	if err != nil {
		return 0, fmt.Errorf("ip -n %s link show eth0: %w: %s", h.NS, err, strings.TrimSpace(out))
	}
	f := strings.Fields(out)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "mtu" {
			return strconv.Atoi(f[i+1])
		}
	}
	return 0, fmt.Errorf("no MTU in %q", strings.TrimSpace(out))
}

// SetUplinkMTU sets the MTU of the host's eth0.
func SetUplinkMTU(h Host, mtu int) error {
	if _, err := os.Stat("/run/netns/" + h.NS); err != nil {
		return fmt.Errorf("host %s is not up (lab up): %w", h.Node.Name, err)
	}
	return run("ip", "-n", h.NS, "link", "set", "eth0", "mtu", strconv.Itoa(mtu))
}
