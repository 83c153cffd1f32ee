//! Diagnostics: pure rules over a cluster's state that name known networking failures (from
//! `calico-failure-modes.md`) with their evidence. Each rule has a stable id; the UI holds the
//! title, explanation and fix of each id in English and French.
//!
//! Rules see only the slim tables and the link state, never the API server, so they are unit
//! tested from fixtures and cost a pass over the nodes.

use std::collections::BTreeMap;

use grappe_views::{Evidence, Finding, Severity};

use crate::net::{Cidr, address_part};
use crate::state::link::Link;
use crate::state::model::{NodeInfo, UnixSeconds};
use crate::state::store::Stores;
use crate::time::fmt_unix_seconds as fmt_time;

/// Every rule id, in the order findings are listed within a severity.
pub const RULES: [&str; 30] = [
    API_UNREACHABLE,
    NO_CNI,
    TWO_CNIS,
    coverage::CNI_NODE_NOT_COVERED,
    current::TIGERA_DEGRADED,
    ipam::DATASTORE_NOT_READY,
    ipam::POOL_FULL,
    ipam::POOL_NEARLY_FULL,
    ipam::IPAM_LEAKED,
    ipam::IPAM_ORPHAN_BLOCKS,
    ipam::IPAM_BORROWED,
    bgp::BGP_PEER_DOWN,
    bgp::ROUTE_REFLECTOR_SINGLE,
    mtu::MTU_TOO_LARGE,
    mtu::TUNNEL_ADDRESS_MISSING,
    mtu::CROSS_SUBNET_ONE_SUBNET,
    POOL_OVERLAPS_NODES,
    POOL_OUTSIDE_POD_SUBNET,
    DUPLICATE_IPV4,
    IPV4_NOT_INTERNAL_IP,
    CALICO_NODE_NOT_READY,
    NETWORK_UNAVAILABLE,
    NETWORK_UNAVAILABLE_STALE,
    KUBE_CONTROLLERS_UNAVAILABLE,
    current::CALICO_APISERVER_UNAVAILABLE,
    current::CALICO_END_OF_LIFE,
    current::CALICO_UNTESTED_KUBERNETES,
    current::KUBE_PROXY_WITH_EBPF,
    current::KUBE_PROXY_NFTABLES,
    current::KUBE_PROXY_IPVS,
];

mod bgp;
mod coverage;
pub use bgp::{BGP_PEER_DOWN, ROUTE_REFLECTOR_SINGLE};
mod current;
mod ipam;
mod mtu;
pub use coverage::CNI_NODE_NOT_COVERED;
pub use current::{
    CALICO_APISERVER_UNAVAILABLE, CALICO_END_OF_LIFE, CALICO_UNTESTED_KUBERNETES, KUBE_PROXY_IPVS,
    KUBE_PROXY_NFTABLES, KUBE_PROXY_WITH_EBPF, TIGERA_DEGRADED,
};
pub use ipam::{
    DATASTORE_NOT_READY, IPAM_BORROWED, IPAM_LEAKED, IPAM_ORPHAN_BLOCKS, LEAK_THRESHOLD, POOL_FULL,
    POOL_NEARLY_FULL,
};
pub use mtu::{CROSS_SUBNET_ONE_SUBNET, MTU_TOO_LARGE, TUNNEL_ADDRESS_MISSING};

pub const API_UNREACHABLE: &str = "apiserver.unreachable";
pub const NO_CNI: &str = "cni.none";
pub const TWO_CNIS: &str = "cni.several";
pub const POOL_OVERLAPS_NODES: &str = "calico.pool-overlaps-nodes";
pub const POOL_OUTSIDE_POD_SUBNET: &str = "calico.pool-outside-pod-subnet";
pub const DUPLICATE_IPV4: &str = "calico.duplicate-ipv4";
pub const IPV4_NOT_INTERNAL_IP: &str = "calico.ipv4-not-internal-ip";
pub const CALICO_NODE_NOT_READY: &str = "calico.node-not-ready";
pub const NETWORK_UNAVAILABLE: &str = "node.network-unavailable";
pub const NETWORK_UNAVAILABLE_STALE: &str = "node.network-unavailable-stale";
pub const KUBE_CONTROLLERS_UNAVAILABLE: &str = "calico.kube-controllers-unavailable";

/// A detected CNI plugin: (kind, version, `namespace/name` of its DaemonSet).
pub fn detect_cnis(stores: &Stores) -> Vec<(String, Option<String>, String)> {
    let mut out = Vec::new();
    for ds in stores.daemonsets.values() {
        let find = |needle: &str| ds.image_with(needle);
        let (kind, image) = if let Some(i) = ds.image_of("calico/node") {
            ("Calico", Some(i))
        } else if let Some(i) = find("flannel/flannel:").or_else(|| find("/flannel:")) {
            ("Flannel", Some(i))
        } else if let Some(i) = find("cilium/cilium") {
            ("Cilium", Some(i))
        } else if let Some(i) = find("weave-kube") {
            ("Weave Net", Some(i))
        } else {
            continue;
        };
        // `repo/name:tag@sha256:digest`: the tag is after the last `:` before any digest.
        let version = image
            .map(|i| i.split('@').next().unwrap_or(i))
            .and_then(|i| i.rsplit_once(':'))
            .filter(|(repo, _)| !repo.is_empty())
            .map(|(_, tag)| tag.to_owned())
            .filter(|tag| !tag.contains('/'));
        out.push((kind.to_owned(), version, ds.key()));
    }
    out.sort();
    out
}

fn ev(object: impl Into<String>, field: impl Into<String>, value: impl Into<String>) -> Evidence {
    Evidence {
        object: object.into(),
        field: field.into(),
        value: value.into(),
    }
}

fn p(k: &str, v: impl Into<String>) -> (String, String) {
    (k.to_owned(), v.into())
}

fn node_obj(n: &NodeInfo) -> String {
    format!("Node/{}", n.name)
}

/// How long a NetworkUnavailable=True may coexist with a Ready calico-node before it is called
/// stale (calico-node sets it False within seconds of starting).
pub const STALE_AFTER_SECONDS: i64 = 120;

/// Runs every rule. Findings come out sorted by severity, then rule order.
pub fn diagnose(stores: &Stores, link: &Link, now: UnixSeconds) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(since) = &link.unreachable_since {
        out.push(Finding {
            rule: API_UNREACHABLE.into(),
            severity: Severity::Critical,
            nodes: vec![],
            evidence: vec![ev(
                "kube-apiserver",
                "watch",
                link.error.clone().unwrap_or_default(),
            )],
            params: vec![p("since", since.to_string())],
        });
    }
    cni_rules(stores, &mut out);
    pool_rules(stores, &mut out);
    address_rules(stores, &mut out);
    calico_pod_rules(stores, now, &mut out);
    let month = fmt_time(now);
    current::rules(stores, month.get(..7).unwrap_or_default(), &mut out);
    ipam::rules(stores, &mut out);
    coverage::rules(stores, &mut out);
    bgp::rules(stores, &mut out);
    mtu::rules(stores, &mut out);
    out.sort_by_key(|f| {
        (
            f.severity,
            RULES
                .iter()
                .position(|r| *r == f.rule)
                .unwrap_or(usize::MAX),
        )
    });
    out
}

fn cni_rules(stores: &Stores, out: &mut Vec<Finding>) {
    let cnis = detect_cnis(stores);
    if cnis.len() > 1 {
        out.push(Finding {
            rule: TWO_CNIS.into(),
            severity: Severity::Critical,
            nodes: vec![],
            evidence: cnis
                .iter()
                .map(|(kind, version, ds)| {
                    ev(
                        format!("DaemonSet/{ds}"),
                        "spec.template.spec.containers[].image",
                        format!("{kind} {}", version.as_deref().unwrap_or("?")),
                    )
                })
                .collect(),
            params: vec![p(
                "cnis",
                cnis.iter()
                    .map(|c| c.0.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            )],
        });
    }
    if cnis.is_empty() {
        let not_ready: Vec<&NodeInfo> = stores.nodes.values().filter(|n| !n.is_ready()).collect();
        if !not_ready.is_empty() {
            out.push(Finding {
                rule: NO_CNI.into(),
                severity: Severity::Critical,
                nodes: not_ready.iter().map(|n| n.name.clone()).collect(),
                evidence: not_ready
                    .iter()
                    .take(5)
                    .map(|n| {
                        ev(
                            node_obj(n),
                            "status.conditions[Ready].message",
                            n.condition("Ready")
                                .map(|c| c.message.clone())
                                .unwrap_or_default(),
                        )
                    })
                    .collect(),
                params: vec![p("count", not_ready.len().to_string())],
            });
        }
    }
}

fn pool_rules(stores: &Stores, out: &mut Vec<Finding>) {
    let pod_subnet = stores.kubeadm.as_ref().and_then(|k| k.pod_subnet.clone());
    for pool in stores.ippools.values().filter(|p| !p.disabled) {
        let Ok(cidr) = pool.cidr.parse::<Cidr>() else {
            continue;
        };
        let pool_obj = format!("IPPool/{}", pool.name);
        let covered: Vec<(&NodeInfo, &str)> = stores
            .nodes
            .values()
            .filter_map(|n| {
                let ip = n.internal_ip()?;
                let addr = address_part(ip)?;
                cidr.contains(addr).then_some((n, ip))
            })
            .collect();
        if !covered.is_empty() {
            let mut evidence = vec![ev(&pool_obj, "spec.cidr", &pool.cidr)];
            evidence.extend(
                covered
                    .iter()
                    .take(5)
                    .map(|(n, ip)| ev(node_obj(n), "status.addresses[InternalIP]", ip.to_string())),
            );
            out.push(Finding {
                rule: POOL_OVERLAPS_NODES.into(),
                severity: Severity::Critical,
                nodes: covered.iter().map(|(n, _)| n.name.clone()).collect(),
                evidence,
                params: vec![
                    p("pool", &pool.cidr),
                    p("count", covered.len().to_string()),
                    p("pod_subnet", pod_subnet.clone().unwrap_or_default()),
                ],
            });
        }
        if let Some(subnet) = &pod_subnet
            && let Ok(subnet_cidr) = subnet.parse::<Cidr>()
            && !cidr.within(&subnet_cidr)
        {
            out.push(Finding {
                rule: POOL_OUTSIDE_POD_SUBNET.into(),
                severity: Severity::Warning,
                nodes: vec![],
                evidence: vec![
                    ev(&pool_obj, "spec.cidr", &pool.cidr),
                    ev(
                        "ConfigMap/kube-system/kubeadm-config",
                        "ClusterConfiguration.networking.podSubnet",
                        subnet,
                    ),
                ],
                params: vec![p("pool", &pool.cidr), p("pod_subnet", subnet)],
            });
        }
    }
}

fn address_rules(stores: &Stores, out: &mut Vec<Finding>) {
    const FIELD: &str = "metadata.annotations[projectcalico.org/IPv4Address]";
    let mut by_ip: BTreeMap<std::net::IpAddr, Vec<&NodeInfo>> = BTreeMap::new();
    for n in stores.nodes.values() {
        let Some(annotated) = n.calico_ipv4.as_deref() else {
            continue;
        };
        let Some(addr) = address_part(annotated) else {
            continue;
        };
        by_ip.entry(addr).or_default().push(n);
        if let Some(internal) = n.internal_ip()
            && address_part(internal) != Some(addr)
        {
            out.push(Finding {
                rule: IPV4_NOT_INTERNAL_IP.into(),
                severity: Severity::Warning,
                nodes: vec![n.name.clone()],
                evidence: vec![
                    ev(node_obj(n), FIELD, annotated),
                    ev(node_obj(n), "status.addresses[InternalIP]", internal),
                ],
                params: vec![
                    p("node", &n.name),
                    p("ipv4", annotated),
                    p("internal_ip", internal),
                ],
            });
        }
    }
    for (addr, nodes) in by_ip.into_iter().filter(|(_, n)| n.len() > 1) {
        out.push(Finding {
            rule: DUPLICATE_IPV4.into(),
            severity: Severity::Critical,
            nodes: nodes.iter().map(|n| n.name.clone()).collect(),
            evidence: nodes
                .iter()
                .map(|n| {
                    ev(
                        node_obj(n),
                        FIELD,
                        n.calico_ipv4.clone().unwrap_or_default(),
                    )
                })
                .collect(),
            params: vec![
                p("ip", addr.to_string()),
                p(
                    "nodes",
                    nodes
                        .iter()
                        .map(|n| n.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
            ],
        });
    }
}

fn calico_pod_rules(stores: &Stores, now: UnixSeconds, out: &mut Vec<Finding>) {
    let calico_installed = stores.calico_node_daemonset().is_some();
    for n in stores.nodes.values() {
        let pod = stores.calico_node_pod(&n.name);
        if let Some(pod) = pod
            && !pod.ready
            && !pod.deleting
        {
            let obj = format!("Pod/{}/{}", pod.namespace, pod.name);
            let mut evidence = vec![ev(&obj, "status.conditions[Ready]", "False")];
            let state = pod
                .waiting_reason
                .clone()
                .unwrap_or_else(|| pod.phase.clone());
            evidence.push(ev(&obj, "status.containerStatuses[].state", &state));
            if let Some((reason, message)) = &pod.last_termination {
                evidence.push(ev(
                    &obj,
                    "status.containerStatuses[].lastState.terminated",
                    format!("{reason}: {message}"),
                ));
            }
            let probe = stores
                .events_for("Pod", &pod.namespace, &pod.name)
                .into_iter()
                .find(|e| e.reason == "Unhealthy" || e.message.starts_with("Readiness probe"));
            if let Some(e) = probe {
                evidence.push(ev(&obj, format!("event {}", e.reason), &e.message));
            }
            let detail = pod
                .last_termination
                .as_ref()
                .map(|(_, m)| m.clone())
                .filter(|m| !m.is_empty())
                .or_else(|| probe.map(|e| e.message.clone()))
                .unwrap_or_default();
            out.push(Finding {
                rule: CALICO_NODE_NOT_READY.into(),
                severity: Severity::Critical,
                nodes: vec![n.name.clone()],
                evidence,
                params: vec![
                    p("node", &n.name),
                    p("pod", &pod.name),
                    p("state", state),
                    p("detail", detail),
                ],
            });
        }
        if let Some(c) = n.condition("NetworkUnavailable")
            && c.status == "True"
        {
            let calico_ready = pod.is_some_and(|p| p.ready);
            let stale = calico_ready && now - c.last_transition > STALE_AFTER_SECONDS;
            let rule = if stale {
                NETWORK_UNAVAILABLE_STALE
            } else {
                NETWORK_UNAVAILABLE
            };
            let mut evidence = vec![ev(
                node_obj(n),
                "status.conditions[NetworkUnavailable]",
                format!(
                    "True, reason {}, since {}",
                    c.reason,
                    fmt_time(c.last_transition)
                ),
            )];
            if let Some(pod) = pod {
                evidence.push(ev(
                    format!("Pod/{}/{}", pod.namespace, pod.name),
                    "status.conditions[Ready]",
                    if pod.ready { "True" } else { "False" },
                ));
            }
            out.push(Finding {
                rule: rule.into(),
                severity: if stale {
                    Severity::Warning
                } else {
                    Severity::Critical
                },
                nodes: vec![n.name.clone()],
                evidence,
                params: vec![
                    p("node", &n.name),
                    p("reason", &c.reason),
                    p("since", fmt_time(c.last_transition)),
                    p("cni_installed", if calico_installed { "yes" } else { "no" }),
                ],
            });
        }
    }
    if let Some(kc) = stores.calico_kube_controllers()
        && kc.rollout.available < 1
    {
        out.push(Finding {
            rule: KUBE_CONTROLLERS_UNAVAILABLE.into(),
            severity: Severity::Warning,
            nodes: vec![],
            evidence: vec![ev(
                format!("Deployment/{}", kc.key()),
                "status.availableReplicas",
                kc.rollout.available.to_string(),
            )],
            params: vec![],
        });
    }
}

#[cfg(test)]
mod tests;
