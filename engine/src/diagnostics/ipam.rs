//! Rules about Calico's IPAM, from the same check as the IPAM page ([`crate::ipam::check`]):
//! leaked addresses above a threshold, a pool nearly full or full, nodes that borrow addresses
//! of other nodes' blocks, blocks of deleted nodes, and Calico's datastore not ready.

use grappe_views::ipam::{AddressView, IpamView};
use grappe_views::{Evidence, Finding, Severity};

use super::{ev, p};
use crate::state::store::Stores;

pub const IPAM_LEAKED: &str = "calico.ipam-leaked";
pub const POOL_FULL: &str = "calico.pool-full";
pub const POOL_NEARLY_FULL: &str = "calico.pool-nearly-full";
pub const IPAM_BORROWED: &str = "calico.ipam-borrowed";
pub const IPAM_ORPHAN_BLOCKS: &str = "calico.ipam-orphan-blocks";
pub const DATASTORE_NOT_READY: &str = "calico.datastore-not-ready";

/// Leaked addresses from which the rule speaks: a few come and go while pods are deleted
/// (the CNI's DEL releases them within seconds) and calico-kube-controllers releases older
/// leaks by itself after its grace period.
pub const LEAK_THRESHOLD: usize = 10;

/// Use of a pool, in per mille, from which it is nearly full.
pub const NEARLY_FULL_PERMILLE: u64 = 900;

/// How many addresses a finding shows as evidence.
const EVIDENCE: usize = 5;

fn address_evidence(a: &AddressView) -> Evidence {
    ev(
        format!("IPAMBlock {}", a.block.as_deref().unwrap_or("-")),
        a.ip.clone(),
        format!("{} ({})", a.why, a.handle.as_deref().unwrap_or("no handle")),
    )
}

pub(super) fn rules(stores: &Stores, out: &mut Vec<Finding>) {
    if stores.ipamblocks.is_empty() && stores.cluster_info.is_none() {
        return;
    }
    let view = crate::ipam::check(stores);
    if view.datastore_ready == Some(false) {
        out.push(Finding {
            rule: DATASTORE_NOT_READY.into(),
            severity: Severity::Critical,
            nodes: vec![],
            evidence: vec![ev(
                "ClusterInformation/default",
                "spec.datastoreReady",
                "false",
            )],
            params: vec![],
        });
    }
    leaks(&view, out);
    pools(&view, out);
    if view.borrowed.total > 0 {
        let mut nodes: Vec<String> = view
            .nodes
            .iter()
            .filter(|n| n.borrowed > 0)
            .map(|n| n.node.clone())
            .collect();
        nodes.truncate(20);
        out.push(Finding {
            rule: IPAM_BORROWED.into(),
            severity: Severity::Info,
            evidence: view
                .borrowed
                .items
                .iter()
                .take(EVIDENCE)
                .map(address_evidence)
                .collect(),
            params: vec![
                p("count", view.borrowed.total.to_string()),
                p("nodes", nodes.join(", ")),
            ],
            nodes,
        });
    }
    if view.orphan_blocks.total > 0 {
        out.push(Finding {
            rule: IPAM_ORPHAN_BLOCKS.into(),
            severity: Severity::Warning,
            nodes: vec![],
            evidence: view
                .orphan_blocks
                .items
                .iter()
                .take(EVIDENCE)
                .map(|b| ev("IPAMBlock", "spec.affinity", b.clone()))
                .collect(),
            params: vec![p("count", view.orphan_blocks.total.to_string())],
        });
    }
}

fn leaks(view: &IpamView, out: &mut Vec<Finding>) {
    if view.leaked.total < LEAK_THRESHOLD {
        return;
    }
    let mut nodes: Vec<String> = view
        .leaked
        .items
        .iter()
        .filter_map(|a| a.node.clone())
        .collect();
    nodes.sort();
    nodes.dedup();
    nodes.truncate(20);
    out.push(Finding {
        rule: IPAM_LEAKED.into(),
        severity: Severity::Warning,
        nodes,
        evidence: view
            .leaked
            .items
            .iter()
            .take(EVIDENCE)
            .map(address_evidence)
            .collect(),
        params: vec![
            p("count", view.leaked.total.to_string()),
            p("allocations", view.allocations.to_string()),
        ],
    });
}

fn pools(view: &IpamView, out: &mut Vec<Finding>) {
    for pool in view.pools.iter().filter(|p| !p.disabled && p.size > 0) {
        let permille = pool.permille();
        let (rule, severity) = if pool.free() == 0 {
            (POOL_FULL, Severity::Critical)
        } else if permille >= NEARLY_FULL_PERMILLE {
            (POOL_NEARLY_FULL, Severity::Warning)
        } else {
            continue;
        };
        out.push(Finding {
            rule: rule.into(),
            severity,
            nodes: vec![],
            evidence: vec![
                ev(
                    format!("IPPool/{}", pool.name),
                    "allocated",
                    format!(
                        "{} of {} ({}.{} %)",
                        pool.allocated,
                        pool.size,
                        permille / 10,
                        permille % 10
                    ),
                ),
                ev(
                    format!("IPPool/{}", pool.name),
                    "blocks",
                    format!(
                        "{} of {} claimed (block size /{})",
                        pool.blocks, pool.blocks_total, pool.block_size
                    ),
                ),
            ],
            params: vec![
                p("pool", pool.name.clone()),
                p("cidr", pool.cidr.clone()),
                p("free", pool.free().to_string()),
                p("percent", format!("{}.{}", permille / 10, permille % 10)),
            ],
        });
    }
}
