//! Where a DaemonSet may run: its pod template's nodeSelector, required node affinity and
//! tolerations, and why a given node is not one of those places (in words, with the field
//! that says so). What the DaemonSet controller decides, reduced to what explains a node
//! that a CNI never reached.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, PodSpec};
use serde::Serialize;

use super::{NodeInfo, SHORT_TEXT};
use crate::names::untrusted_text;

/// One requirement of a node selector term (`key operator values`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Requirement {
    pub key: String,
    pub operator: String,
    pub values: Vec<String>,
}

/// A toleration of the pod template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Toleration {
    pub key: Option<String>,
    pub operator: String,
    pub value: Option<String>,
    pub effect: Option<String>,
}

/// A DaemonSet's placement rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Placement {
    pub node_selector: BTreeMap<String, String>,
    /// Required node affinity: any term, each with all its requirements (and `metadata.name`
    /// field requirements, as `metadata.name`).
    pub affinity: Vec<Vec<Requirement>>,
    pub tolerations: Vec<Toleration>,
}

/// Why a node is not a place for a DaemonSet: the field, and the words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Miss {
    pub field: &'static str,
    pub why: String,
}

/// The taints the DaemonSet controller tolerates on every DaemonSet's pods.
const DAEMONSET_TOLERATED: [&str; 7] = [
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
    "node.kubernetes.io/disk-pressure",
    "node.kubernetes.io/memory-pressure",
    "node.kubernetes.io/pid-pressure",
    "node.kubernetes.io/unschedulable",
    "node.kubernetes.io/network-unavailable",
];

fn text(s: &str) -> String {
    untrusted_text(s, SHORT_TEXT)
}

fn requirement(r: NodeSelectorRequirement) -> Requirement {
    Requirement {
        key: text(&r.key),
        operator: text(&r.operator),
        values: r
            .values
            .unwrap_or_default()
            .iter()
            .map(|v| text(v))
            .collect(),
    }
}

impl Placement {
    /// The placement of a pod template (`None` without one).
    pub fn of(spec: Option<&PodSpec>) -> Self {
        let Some(spec) = spec else {
            return Self::default();
        };
        let node_selector = spec
            .node_selector
            .iter()
            .flatten()
            .map(|(k, v)| (text(k), text(v)))
            .collect();
        let affinity = spec
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|s| {
                s.node_selector_terms
                    .iter()
                    .map(|t| {
                        let fields = t.match_fields.clone().unwrap_or_default();
                        let exprs = t.match_expressions.clone().unwrap_or_default();
                        exprs.into_iter().chain(fields).map(requirement).collect()
                    })
                    .collect()
            })
            .unwrap_or_default();
        let tolerations = spec
            .tolerations
            .iter()
            .flatten()
            .map(|t| Toleration {
                key: t.key.as_deref().map(text),
                operator: t.operator.as_deref().map_or_else(|| "Equal".into(), text),
                value: t.value.as_deref().map(text),
                effect: t.effect.as_deref().map(text),
            })
            .collect();
        Self {
            node_selector,
            affinity,
            tolerations,
        }
    }

    /// Why `node` is not a place for these pods; empty when it is one.
    pub fn misses(&self, node: &NodeInfo) -> Vec<Miss> {
        let mut out = Vec::new();
        for (k, v) in &self.node_selector {
            if node.labels.get(k) != Some(v) {
                let has = node.labels.get(k).map_or_else(
                    || "has no such label".to_owned(),
                    |h| format!("has {k}={h}"),
                );
                out.push(Miss {
                    field: "spec.template.spec.nodeSelector",
                    why: format!("selects {k}={v}; the node {has}"),
                });
            }
        }
        if !self.affinity.is_empty()
            && !self
                .affinity
                .iter()
                .any(|term| term.iter().all(|r| matches(r, node)))
        {
            let wanted: Vec<String> = self
                .affinity
                .iter()
                .map(|t| {
                    t.iter()
                        .map(|r| format!("{} {} {}", r.key, r.operator, r.values.join(",")))
                        .collect::<Vec<_>>()
                        .join(" and ")
                })
                .collect();
            out.push(Miss {
                field: "spec.template.spec.affinity.nodeAffinity",
                why: format!("requires {}; the node matches no term", wanted.join(" or ")),
            });
        }
        for t in &node.taints {
            let blocking = matches!(t.effect.as_str(), "NoSchedule" | "NoExecute");
            if blocking
                && !DAEMONSET_TOLERATED.contains(&t.key.as_str())
                && !self.tolerations.iter().any(|tol| tolerates(tol, t))
            {
                out.push(Miss {
                    field: "spec.template.spec.tolerations",
                    why: format!(
                        "no toleration for the node's taint {}={}:{}",
                        t.key, t.value, t.effect
                    ),
                });
            }
        }
        out
    }
}

fn matches(r: &Requirement, node: &NodeInfo) -> bool {
    let value = if r.key == "metadata.name" {
        Some(&node.name)
    } else {
        node.labels.get(&r.key)
    };
    let number = |s: &str| s.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| r.values.contains(v)),
        "NotIn" => value.is_none_or(|v| !r.values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(have), Some(bound)) = (
                value.and_then(|v| number(v)),
                r.values.first().and_then(|v| number(v)),
            ) else {
                return false;
            };
            if r.operator == "Gt" {
                have > bound
            } else {
                have < bound
            }
        }
        _ => false,
    }
}

fn tolerates(tol: &Toleration, taint: &super::Taint) -> bool {
    if tol
        .effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    match tol.operator.as_str() {
        "Exists" => tol
            .key
            .as_deref()
            .is_none_or(|k| k.is_empty() || k == taint.key),
        _ => {
            tol.key.as_deref() == Some(taint.key.as_str())
                && tol.value.as_deref().unwrap_or("") == taint.value
        }
    }
}
