//! MTU and encapsulation, from the watched state and what the hosts said over SSH.
//!
//! Each IP pool's encapsulation costs bytes on every packet between nodes (IPIP 20, VXLAN 50
//! or 70 over IPv6, WireGuard 60 or 80, none 0), so a pod's MTU must be the smallest path MTU
//! between hosts minus that overhead. The pod MTU is the configured one (the operator's
//! `Installation` `spec.calicoNetwork.mtu`, or the manifest's `calico-config` `veth_mtu`), or,
//! when neither sets one (`0`, Calico's default since 3.15), what Felix detects on each host:
//! its uplink's MTU minus the overhead. Pods of a host with a larger uplink then send packets a
//! smaller path drops; hence the largest known uplink counts for auto-detection.
//!
//! The path MTU is the smallest one known: the uplink MTUs from the nodes' host checks and the
//! largest packets the path-MTU probes got through. Without either, 1500 is assumed, and said.

use grappe_views::hosts::HostCheckView;
use grappe_views::mtu::{HostMtuView, MissingTunnelView, MtuPoolView, MtuVerdict, MtuView};

use crate::net::Cidr;
use crate::state::model::IpPoolInfo;
use crate::state::store::Stores;

/// The MTU assumed for a path nothing measured (Ethernet's).
pub const ASSUMED_MTU: u32 = 1500;
/// Nodes offered to the probe's selects.
const PROBE_NODES: usize = 200;

/// Calico's own links, by name (the workload links `cali*` are summed up).
const CALICO_LINKS: [&str; 5] = [
    "tunl0",
    "vxlan.calico",
    "vxlan-v6.calico",
    "wireguard.cali",
    "wg-v6.cali",
];

/// A host check's uplink MTU and Calico's links, when the check read its links.
#[must_use]
pub fn host_links(check: &HostCheckView) -> Option<HostMtuView> {
    let uplink = check.uplink.as_deref()?;
    let mtu = check
        .links
        .iter()
        .find(|(name, _)| name == uplink)
        .map(|(_, m)| *m)?;
    let mut calico_links: Vec<(String, u32)> = check
        .links
        .iter()
        .filter(|(name, _)| CALICO_LINKS.contains(&name.as_str()))
        .cloned()
        .collect();
    let workloads: Vec<u32> = check
        .links
        .iter()
        .filter(|(name, _)| name.starts_with("cali") && !CALICO_LINKS.contains(&name.as_str()))
        .map(|(_, m)| *m)
        .collect();
    if let Some(largest) = workloads.iter().max() {
        calico_links.push((format!("cali* ({})", workloads.len()), *largest));
    }
    Some(HostMtuView {
        node: check.node.clone(),
        iface: uplink.to_owned(),
        mtu,
        calico_links,
        at: check.at.clone(),
    })
}

/// A pool's encapsulation: its name on the page and the bytes it adds.
#[must_use]
pub fn encapsulation(pool: &IpPoolInfo, wireguard: bool) -> (String, u32) {
    let v6 = pool.cidr.contains(':');
    let cross = |mode: &str| {
        if mode == "CrossSubnet" {
            " CrossSubnet"
        } else {
            ""
        }
    };
    if wireguard {
        ("WireGuard".into(), if v6 { 80 } else { 60 })
    } else if pool.vxlan_mode != "Never" && !pool.vxlan_mode.is_empty() {
        (
            format!("VXLAN{}", cross(&pool.vxlan_mode)),
            if v6 { 70 } else { 50 },
        )
    } else if pool.ipip_mode != "Never" && !pool.ipip_mode.is_empty() && !v6 {
        (format!("IPIP{}", cross(&pool.ipip_mode)), 20)
    } else {
        ("none".into(), 0)
    }
}

/// The configured pod MTU and where it is set, when one is (0 means auto-detection).
fn configured(stores: &Stores) -> Option<(u32, &'static str)> {
    let positive = |v: Option<i64>| v.and_then(|m| u32::try_from(m).ok()).filter(|m| *m > 0);
    if let Some(m) = positive(stores.installation.as_ref().and_then(|i| i.mtu)) {
        return Some((m, "Installation spec.calicoNetwork.mtu"));
    }
    positive(stores.calico_veth_mtu).map(|m| (m, "calico-config veth_mtu"))
}

/// The link MTUs of the nodes that exist (a deleted node's stay in the facts, unread).
fn links(stores: &Stores) -> impl Iterator<Item = &HostMtuView> {
    stores
        .host_facts
        .links
        .values()
        .filter(|l| stores.nodes.contains_key(&l.node))
}

/// The smallest path MTU known and where it comes from (empty when assumed).
fn smallest_path(stores: &Stores) -> (u32, String) {
    let links = links(stores).map(|l| (l.mtu, format!("Node/{} {}", l.node, l.iface)));
    let probes = stores.host_facts.probes.iter().filter_map(|p| {
        p.largest
            .map(|m| (m, format!("probe {} -> {} ({})", p.from, p.to, p.to_ip)))
    });
    links
        .chain(probes)
        .min_by_key(|(m, _)| *m)
        .unwrap_or((ASSUMED_MTU, String::new()))
}

/// The largest uplink MTU known (what auto-detection gives the pods of that host).
fn largest_uplink(stores: &Stores) -> u32 {
    links(stores).map(|l| l.mtu).max().unwrap_or(ASSUMED_MTU)
}

fn wireguard(stores: &Stores) -> bool {
    stores
        .felixconfigs
        .get("default")
        .is_some_and(|f| f.wireguard)
}

/// The MTU budget of each enabled pool.
fn pools(stores: &Stores) -> Vec<MtuPoolView> {
    let (path_mtu, path_source) = smallest_path(stores);
    let configured = configured(stores);
    let wg = wireguard(stores);
    stores
        .ippools
        .values()
        .filter(|p| !p.disabled)
        .map(|p| {
            let (encapsulation, overhead) = encapsulation(p, wg);
            let expected = path_mtu.saturating_sub(overhead);
            let (pod_mtu, pod_source) = configured.map_or_else(
                || (largest_uplink(stores).saturating_sub(overhead), "auto"),
                |(m, s)| (m, s),
            );
            let verdict = if pod_mtu > expected {
                MtuVerdict::TooLarge
            } else if pod_mtu < expected && configured.is_some() {
                MtuVerdict::Smaller
            } else {
                MtuVerdict::Fits
            };
            MtuPoolView {
                name: p.name.clone(),
                cidr: p.cidr.clone(),
                encapsulation,
                overhead,
                path_mtu,
                path_source: path_source.clone(),
                expected,
                pod_mtu,
                pod_source: pod_source.to_owned(),
                verdict,
            }
        })
        .collect()
}

/// Nodes where Calico runs (its address annotation and a ready calico-node) without the
/// tunnel address an enabled pool's encapsulation needs.
fn missing_tunnels(stores: &Stores) -> Vec<MissingTunnelView> {
    let enabled = || stores.ippools.values().filter(|p| !p.disabled);
    let ipip = enabled().any(|p| p.ipip_mode != "Never" && !p.cidr.contains(':'));
    let vxlan = enabled().any(|p| p.vxlan_mode != "Never");
    let mut out = Vec::new();
    for n in stores.nodes.values() {
        let calico_ready = stores.calico_node_pod(&n.name).is_some_and(|p| p.ready);
        if n.calico_ipv4.is_none() || !calico_ready {
            continue;
        }
        if ipip && !n.ipip_tunnel {
            out.push(MissingTunnelView {
                node: n.name.clone(),
                encapsulation: "IPIP".into(),
                annotation: "projectcalico.org/IPv4IPIPTunnelAddr".into(),
            });
        }
        if vxlan && !n.vxlan_tunnel {
            out.push(MissingTunnelView {
                node: n.name.clone(),
                encapsulation: "VXLAN".into(),
                annotation: "projectcalico.org/IPv4VXLANTunnelAddr".into(),
            });
        }
    }
    out
}

/// CrossSubnet pools while every node Calico addresses is in one subnet: (pool, subnet).
fn cross_subnet_one_subnet(stores: &Stores) -> Vec<(String, String)> {
    let subnets: std::collections::BTreeSet<String> = stores
        .nodes
        .values()
        .filter_map(|n| n.calico_ipv4.as_deref())
        .filter_map(|a| a.parse::<Cidr>().ok())
        .map(|c| c.to_string())
        .collect();
    let addressed = stores
        .nodes
        .values()
        .filter(|n| n.calico_ipv4.is_some())
        .count();
    if subnets.len() != 1 || addressed < 2 {
        return Vec::new();
    }
    let subnet = subnets.into_iter().next().unwrap_or_default();
    stores
        .ippools
        .values()
        .filter(|p| !p.disabled && (p.ipip_mode == "CrossSubnet" || p.vxlan_mode == "CrossSubnet"))
        .map(|p| (p.name.clone(), subnet.clone()))
        .collect()
}

/// The MTU page of the cluster whose tables `stores` holds.
#[must_use]
pub fn view(stores: &Stores) -> MtuView {
    let facts = &stores.host_facts;
    MtuView {
        calico: !stores.ippools.is_empty(),
        pools: pools(stores),
        hosts: links(stores).cloned().collect(),
        probes: facts.probes.clone(),
        missing_tunnels: missing_tunnels(stores),
        cross_subnet_one_subnet: cross_subnet_one_subnet(stores),
        nodes: stores.nodes.keys().take(PROBE_NODES).cloned().collect(),
    }
}

impl crate::Engine {
    /// Gives each cluster's state the link MTUs of its nodes' latest stored checks (after a
    /// restart, so that the MTU page and its rule need no new check). Probes are not stored.
    ///
    /// # Errors
    /// [`crate::store::StoreError`].
    pub async fn restore_host_facts(&self) -> Result<usize, crate::store::StoreError> {
        let mut restored = 0;
        for name in self.clusters.names() {
            let Some(state) = self.states.get(name) else {
                continue;
            };
            for json in self.store.latest_host_checks(name.as_str()).await? {
                if let Ok(check) = serde_json::from_str::<HostCheckView>(&json) {
                    state.record_host_check(&check);
                    restored += 1;
                }
            }
        }
        Ok(restored)
    }
}

#[cfg(test)]
mod tests;
