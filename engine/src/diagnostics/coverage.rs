//! Nodes the CNI never reached: a node with no pod of the CNI's DaemonSet (Calico's from a
//! manifest or the operator, Flannel's) because the DaemonSet does not select it (its
//! nodeSelector, its required node affinity) or does not tolerate one of its taints. Such a
//! node stays NotReady with "cni plugin not initialized" and its pods ContainerCreating while
//! the CNI runs everywhere else.

use grappe_views::{Finding, Severity};

use super::{detect_cnis, ev, p};
use crate::state::store::Stores;

pub const CNI_NODE_NOT_COVERED: &str = "cni.node-not-covered";

/// How many nodes a finding names.
const NAMED: usize = 20;

pub(super) fn rules(stores: &Stores, out: &mut Vec<Finding>) {
    for (kind, _, key) in detect_cnis(stores) {
        let Some(ds) = stores.daemonsets.get(&key) else {
            continue;
        };
        let (namespace, name) = (&ds.rollout.namespace, &ds.rollout.name);
        let mut missed = Vec::new();
        for node in stores.nodes.values() {
            let has_pod = stores.pods_on(&node.name).any(|p| {
                &p.namespace == namespace
                    && p.owner
                        .as_ref()
                        .is_some_and(|o| o.kind == "DaemonSet" && &o.name == name)
            });
            if has_pod {
                continue;
            }
            let why = ds.placement.misses(node);
            if !why.is_empty() {
                missed.push((node, why));
            }
        }
        if missed.is_empty() {
            continue;
        }
        let not_ready = missed.iter().any(|(n, _)| !n.is_ready());
        let nodes: Vec<String> = missed
            .iter()
            .take(NAMED)
            .map(|(n, _)| n.name.clone())
            .collect();
        let key = key.as_str();
        let evidence = missed
            .iter()
            .take(5)
            .flat_map(|(n, why)| {
                why.iter().map(move |m| {
                    ev(
                        format!("DaemonSet/{key} on Node/{}", n.name),
                        m.field,
                        m.why.clone(),
                    )
                })
            })
            .collect();
        let (first, why) = &missed[0];
        out.push(Finding {
            rule: CNI_NODE_NOT_COVERED.into(),
            severity: if not_ready {
                Severity::Critical
            } else {
                Severity::Warning
            },
            evidence,
            params: vec![
                p("cni", kind.clone()),
                p("daemonset", key),
                p("count", missed.len().to_string()),
                p("nodes", nodes.join(", ")),
                p("node", first.name.clone()),
                p("why", why[0].why.clone()),
            ],
            nodes,
        });
    }
}
