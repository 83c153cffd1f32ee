package hosts

// The lab's birdcl: `birdcl -s /var/run/calico/bird.ctl show protocols` as BIRD 1.6 (Calico's)
// prints it, from the lab's peering (the footprint's calico-node and `lab break bgp-peer-down`).

import (
	"fmt"
	"strings"
	"time"
)

// BGPSession is one BGP protocol of a node's BIRD.
type BGPSession struct {
	// Name as Calico's confd names it: Mesh_10_13_0_3 (mesh), Node_10_13_0_5 (a BGPPeer).
	Name string
	// Established or not (Active, the socket refused).
	Up    bool
	Since time.Time
}

// birdSocket is where calico-node's BIRD listens (a hostPath in calico-node).
const birdSocket = "/var/run/calico/bird.ctl"

func (t toolRun) birdcl() int {
	socket, _ := value(t.args, "-s")
	if socket == "" {
		socket = "/var/run/bird.ctl"
	}
	pos := positional(t.args)
	if len(pos) < 2 || pos[0] != "show" || !strings.HasPrefix("protocols", pos[1]) {
		fmt.Fprintln(t.Err, "birdcl: the lab's birdcl knows -s SOCKET show protocols")
		return 1
	}
	sessions, running, err := t.c.BGPSessions(t.ctx, t.h.Node.Name)
	if err != nil {
		return t.fail(err)
	}
	if socket != birdSocket || !running {
		fmt.Fprintf(t.Out, "Unable to connect to server control socket (%s): No such file or directory\n", socket)
		return 1
	}
	fmt.Fprintln(t.Out, "BIRD v0.3.3+birdv1.6.8 ready.")
	fmt.Fprintf(t.Out, "%-16s %-8s %-8s %-6s %-10s %s\n", "name", "proto", "table", "state", "since", "info")
	var since time.Time
	if len(sessions) > 0 {
		since = sessions[0].Since
	}
	for _, p := range []string{"static1 Static", "kernel1 Kernel", "device1 Device", "direct1 Direct"} {
		f := strings.Fields(p)
		fmt.Fprintf(t.Out, "%-16s %-8s %-8s %-6s %-10s\n", f[0], f[1], "master", "up", since.Format("15:04:05"))
	}
	for _, s := range sessions {
		state, info := "up", "Established"
		if !s.Up {
			state, info = "start", "Active        Socket: Connection refused"
		}
		fmt.Fprintf(t.Out, "%-16s %-8s %-8s %-6s %-10s  %s\n", s.Name, "BGP", "master", state, s.Since.Format("15:04:05"), info)
	}
	return 0
}
