//! The network doctor's views of a cluster's state (the BGP, IPAM and MTU pages) and what the
//! hosts tell Grappe over SSH for them (link MTUs, probes, peer names).

use super::ClusterState;

impl ClusterState {
    /// The BGP page: the peering topology and the sessions calico-node reports down.
    pub fn bgp(&self) -> grappe_views::bgp::BgpView {
        crate::bgp::view(&self.read())
    }

    /// The IPAM page: Calico's pools, blocks and allocations against what pods and nodes use.
    pub fn ipam(&self) -> grappe_views::ipam::IpamView {
        self.ipam_check().as_ref().clone()
    }

    /// The IPAM page's view: as [`Self::ipam`] with the first nodes only.
    pub fn ipam_page(&self) -> grappe_views::ipam::IpamView {
        self.ipam_check().for_page()
    }

    /// The MTU page: each pool's pod MTU against the paths the hosts' checks and the probes
    /// measured.
    pub fn mtu(&self) -> grappe_views::mtu::MtuView {
        crate::mtu::view(&self.read())
    }

    /// Keeps the link MTUs of a node's latest host check (the MTU page and its rule read them).
    pub fn record_host_check(&self, check: &grappe_views::hosts::HostCheckView) {
        if let Some(links) = crate::mtu::host_links(check) {
            self.update(|s| s.host_facts.record_links(links));
        }
    }

    /// Keeps a path-MTU probe as the latest of its pair of nodes.
    pub fn record_probe(&self, probe: grappe_views::mtu::ProbeView) {
        self.update(|s| {
            s.host_facts.record_probe(probe);
            true
        });
    }

    /// Names the node of each peer address in a session table read from a host.
    pub fn name_bgp_peers(&self, view: &mut grappe_views::bgp::NodeSessionsView) {
        let stores = self.read();
        let by_ip = crate::bgp::nodes_by_address(&stores);
        for s in &mut view.sessions {
            s.peer_node = s
                .peer_ip
                .as_ref()
                .and_then(|ip| by_ip.get(ip))
                .map(|n| (*n).to_owned());
        }
    }
}
