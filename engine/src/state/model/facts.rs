//! What Grappe learnt from the hosts themselves over SSH, beside the API's objects: each node's
//! link MTUs (from its latest host check) and the latest path-MTU probes between nodes. The
//! MTU page and its diagnostics read them with the watched tables; the watches never touch
//! them.

use std::collections::BTreeMap;

use grappe_views::mtu::{HostMtuView, ProbeView};

/// The most probes kept per cluster (the latest per pair of nodes, the newest first).
pub const MAX_PROBES: usize = 50;

/// Facts from the hosts of one cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// Each node's uplink MTU and Calico links, from its latest check.
    pub links: BTreeMap<String, HostMtuView>,
    /// The latest probe of each (from, to) pair, the newest first.
    pub probes: Vec<ProbeView>,
}

impl HostFacts {
    /// Keeps a node's latest link MTUs; returns whether they changed.
    pub fn record_links(&mut self, view: HostMtuView) -> bool {
        if self.links.get(&view.node) == Some(&view) {
            return false;
        }
        self.links.insert(view.node.clone(), view);
        true
    }

    /// Keeps a probe as the latest of its pair.
    pub fn record_probe(&mut self, probe: ProbeView) {
        self.probes
            .retain(|p| !(p.from == probe.from && p.to == probe.to));
        self.probes.insert(0, probe);
        self.probes.truncate(MAX_PROBES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(from: &str, to: &str, largest: u32) -> ProbeView {
        ProbeView {
            from: from.into(),
            to: to.into(),
            to_ip: "10.13.0.3".into(),
            largest: Some(largest),
            steps: vec![],
            actor: "admin".into(),
            at: String::new(),
            duration_ms: 0,
        }
    }

    #[test]
    fn a_pair_keeps_its_latest_probe_and_the_list_is_bounded() {
        let mut f = HostFacts::default();
        f.record_probe(probe("a", "b", 1500));
        f.record_probe(probe("a", "c", 1500));
        f.record_probe(probe("a", "b", 1400));
        assert_eq!(f.probes.len(), 2);
        assert_eq!(f.probes[0].largest, Some(1400));
        for i in 0..100 {
            f.record_probe(probe("x", &format!("n{i}"), 1500));
        }
        assert_eq!(f.probes.len(), MAX_PROBES);
    }
}
