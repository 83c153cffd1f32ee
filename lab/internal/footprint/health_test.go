package footprint

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// The nodes a node has no BGP session with are found from both sides of a `lab break
// bgp-peer-down` (the broken node's own peer, and the nodes whose break names it) without a scan
// of every node.
func TestBGPPeersDownFromBothSides(t *testing.T) {
	index := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{bgpPeerIndex: bgpPeerDownOf})
	node := func(name, ip string, annotations map[string]string) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}}
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}
		if err := index.Add(n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	broken := map[string]string{BreakAnnotation: "ipam-leak,bgp-peer-down", BGPPeerAnnotation: "vega"}
	rigel := node("rigel", "10.13.0.11", broken)
	vega := node("vega", "10.13.0.12", nil)
	deneb := node("deneb", "10.13.0.13", map[string]string{BGPPeerAnnotation: "vega"}) // no break: no effect
	altair := node("altair", "10.13.0.14", map[string]string{BreakAnnotation: "bgp-peer-down", BGPPeerAnnotation: "vega"})
	c := &Controller{nodes: listerscorev1.NewNodeLister(index), nodeIndex: index}

	for _, tc := range []struct {
		node *corev1.Node
		want []string
	}{
		{rigel, []string{"10.13.0.12"}},
		{vega, []string{"10.13.0.11", "10.13.0.14"}},
		{deneb, nil},
		{altair, []string{"10.13.0.12"}},
	} {
		if got := c.bgpPeersDown(tc.node); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: peers down %v, want %v", tc.node.Name, got, tc.want)
		}
	}
}
