//! The views of a cluster's state: overview, a page of the nodes table, a node's detail. Each
//! is computed from the in-memory tables under a short read lock (a pass over 5,000 nodes),
//! never by asking the API server.

mod calico;

use std::collections::{BTreeSet, HashMap};

use grappe_views::{
    BlockView, CalicoPodView, CniView, ConditionView, EventView, Finding, LinkView, MAX_PER_PAGE,
    NodeCounts, NodeDetailView, NodeRow, NodesPageView, NodesQuery, OverviewView, PodRow,
};

use super::model::{NodeInfo, PodInfo, UnixSeconds};
use super::store::Stores;
use super::{ClusterState, Link};
use crate::diagnostics;
use crate::time::fmt_unix_seconds as fmt_time;

fn now_secs() -> UnixSeconds {
    crate::time::now().unix_seconds()
}

fn link_view(link: &Link) -> LinkView {
    LinkView {
        synced: link.synced,
        unreachable_since: link.unreachable_since.map(|t| t.to_string()),
        error: link.error.clone(),
        resource_errors: link
            .resource_errors
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// `kubectl`'s age format: `45s`, `12m`, `5h`, `3d`.
pub fn age(created: UnixSeconds, now: UnixSeconds) -> String {
    if created == 0 {
        return "-".to_owned();
    }
    let s = (now - created).max(0);
    match s {
        0..120 => format!("{s}s"),
        120..7_200 => format!("{}m", s / 60),
        7_200..172_800 => format!("{}h", s / 3_600),
        _ => format!("{}d", s / 86_400),
    }
}

fn pod_state(p: &PodInfo) -> String {
    if p.deleting {
        return "Terminating".to_owned();
    }
    p.waiting_reason.clone().unwrap_or_else(|| p.phase.clone())
}

fn calico_state(p: &PodInfo) -> String {
    let state = pod_state(p);
    if state == "Running" && !p.ready {
        "Running (not ready)".to_owned()
    } else {
        state
    }
}

fn row(
    stores: &Stores,
    n: &NodeInfo,
    findings: &HashMap<&str, usize>,
    now: UnixSeconds,
) -> NodeRow {
    let calico = stores.calico_node_pod(&n.name);
    NodeRow {
        name: n.name.clone(),
        status: n.status_text(),
        ready: n.is_ready(),
        roles: n.roles.clone(),
        age: age(n.created, now),
        version: n.kubelet_version.clone(),
        internal_ip: n.internal_ip().map(str::to_owned),
        os_image: n.os_image.clone(),
        kernel: n.kernel_version.clone(),
        runtime: n.container_runtime.clone(),
        pod_cidrs: n.pod_cidrs.clone(),
        calico_ipv4: n.calico_ipv4.clone(),
        calico_tunnel: n.calico_tunnel.clone(),
        network_unavailable: n
            .condition("NetworkUnavailable")
            .map(|c| (c.status.clone(), c.reason.clone())),
        calico_node: calico.map(calico_state),
        calico_node_ready: calico.is_some_and(|p| p.ready),
        pods: stores.pods_on_count(&n.name),
        findings: findings.get(n.name.as_str()).copied().unwrap_or(0),
    }
}

/// How many affected nodes a finding carries to a page (the rest are counted in its
/// `nodes_total` parameter): a "no CNI" finding on 5,000 nodes must not weigh 100 KB.
const NODES_PER_FINDING: usize = 20;

/// The same for evidence (counted in `evidence_total`): a rule that holds on 5,000 nodes has
/// 5,000 pieces of evidence, which made a 10 MB overview.
const EVIDENCE_PER_FINDING: usize = 40;

/// Findings of one rule shown on the overview; the node pages show every one.
const FINDINGS_PER_RULE: usize = 5;

fn for_page(f: &Finding) -> Finding {
    let mut f = f.clone();
    if f.nodes.len() > NODES_PER_FINDING {
        f.params
            .push(("nodes_total".to_owned(), f.nodes.len().to_string()));
        f.nodes.truncate(NODES_PER_FINDING);
    }
    if f.evidence.len() > EVIDENCE_PER_FINDING {
        f.params
            .push(("evidence_total".to_owned(), f.evidence.len().to_string()));
        f.evidence.truncate(EVIDENCE_PER_FINDING);
    }
    f
}

/// The findings of the overview: each cut for a page ([`for_page`]), and at most
/// [`FINDINGS_PER_RULE`] of one rule (a rule such as `calico.node-not-ready` makes one finding
/// per node); the last one shown of a rule counts the others (`rule_more`).
fn for_overview(findings: &[Finding]) -> Vec<Finding> {
    let mut per_rule: HashMap<&str, usize> = HashMap::new();
    let mut shown: Vec<Finding> = Vec::new();
    for f in findings {
        let n = per_rule.entry(f.rule.as_str()).or_insert(0);
        *n += 1;
        if *n <= FINDINGS_PER_RULE {
            shown.push(for_page(f));
        }
    }
    for (rule, n) in per_rule {
        if n > FINDINGS_PER_RULE
            && let Some(last) = shown.iter_mut().rev().find(|s| s.rule == rule)
        {
            let more = n - FINDINGS_PER_RULE;
            last.params.push(("rule_more".to_owned(), more.to_string()));
        }
    }
    shown
}

fn findings_per_node(findings: &[Finding]) -> HashMap<&str, usize> {
    let mut out = HashMap::new();
    for f in findings {
        for n in &f.nodes {
            *out.entry(n.as_str()).or_insert(0) += 1;
        }
    }
    out
}

impl ClusterState {
    /// The diagnostics now.
    pub fn findings(&self) -> Vec<Finding> {
        let link = self.link();
        self.findings_for(&self.read(), &link).as_ref().clone()
    }

    /// The overview.
    pub fn overview(&self) -> OverviewView {
        let link = self.link();
        let stores = self.read();
        let findings = for_overview(&self.findings_for(&stores, &link));
        let mut nodes = NodeCounts::default();
        for n in stores.nodes.values() {
            nodes.total += 1;
            match n.condition("Ready").map(|c| c.status.as_str()) {
                Some("True") => nodes.ready += 1,
                Some("False") => nodes.not_ready += 1,
                _ => nodes.unknown += 1,
            }
            nodes.scheduling_disabled += usize::from(n.unschedulable);
        }
        let cnis: Vec<CniView> = diagnostics::detect_cnis(&stores)
            .into_iter()
            .map(|(kind, version, daemonset)| CniView {
                kind,
                version,
                daemonset,
            })
            .collect();
        let calico_ds = stores.calico_node_daemonset();
        let unready: Vec<String> = if calico_ds.is_some() {
            stores
                .nodes
                .keys()
                .filter(|n| !stores.calico_node_pod(n).is_some_and(|p| p.ready))
                .cloned()
                .collect()
        } else {
            vec![]
        };
        let kubernetes_version = stores
            .kubeadm
            .as_ref()
            .and_then(|k| k.kubernetes_version.clone())
            .or_else(|| {
                stores
                    .nodes
                    .values()
                    .find(|n| n.roles.iter().any(|r| r == "control-plane"))
                    .map(|n| n.kubelet_version.clone())
            });
        OverviewView {
            cluster: self.name.to_string(),
            link: link_view(&link),
            kubernetes_version,
            nodes,
            pods: stores.pod_count(),
            cnis,
            calico_node: calico_ds.map(|w| w.rollout.clone()),
            calico_node_unready_total: unready.len(),
            calico_node_unready: unready.into_iter().take(20).collect(),
            kube_controllers: stores.calico_kube_controllers().map(|w| w.rollout.clone()),
            calico_version: stores
                .cluster_info
                .as_ref()
                .map(|c| c.calico_version.clone()),
            felix_configurations: stores.felixconfigs.keys().cloned().collect(),
            pools: stores.ippools.values().cloned().collect(),
            blocks: stores.ipamblocks.len(),
            block_addresses_in_use: stores.ipamblocks.values().map(|b| b.in_use).sum(),
            pod_subnet: stores.kubeadm.as_ref().and_then(|k| k.pod_subnet.clone()),
            service_subnet: stores
                .kubeadm
                .as_ref()
                .and_then(|k| k.service_subnet.clone()),
            calico: calico::calico_view(&stores),
            kube_proxy_mode: stores.kube_proxy_mode.as_ref().map(|m| m.0.clone()),
            findings,
        }
    }

    /// One page of the nodes table.
    pub fn nodes_page(&self, query: &NodesQuery) -> NodesPageView {
        let link = self.link();
        let stores = self.read();
        let now = now_secs();
        let findings = self.findings_for(&stores, &link);
        let per_node = findings_per_node(&findings);
        let needle = query.q.trim().to_lowercase();
        let mut roles: BTreeSet<String> = BTreeSet::new();
        let mut matched: Vec<&NodeInfo> = Vec::new();
        for n in stores.nodes.values() {
            roles.extend(n.roles.iter().cloned());
            let status_ok = match query.status.as_str() {
                "ready" => n.is_ready(),
                "notready" => n.condition("Ready").is_some_and(|c| c.status == "False"),
                "unknown" => n.condition("Ready").is_none_or(|c| c.status == "Unknown"),
                "cordoned" => n.unschedulable,
                "issues" => per_node.contains_key(n.name.as_str()),
                _ => true,
            };
            let role_ok = match query.role.as_str() {
                "" => true,
                "none" => n.roles.is_empty(),
                r => n.roles.iter().any(|x| x == r),
            };
            let text_ok = needle.is_empty()
                || n.name.to_lowercase().contains(&needle)
                || n.addresses.iter().any(|(_, a)| a.contains(&needle))
                || n.pod_cidrs.iter().any(|c| c.contains(&needle))
                || n.kubelet_version.contains(&needle)
                || n.calico_ipv4
                    .as_deref()
                    .is_some_and(|a| a.contains(&needle));
            if status_ok && role_ok && text_ok {
                matched.push(n);
            }
        }
        // Keys computed once per node (status and roles build strings): O(n) allocations,
        // not O(n log n), at 5,000 nodes.
        match query.sort.as_str() {
            "status" => matched.sort_by_cached_key(|n| (n.status_text(), n.name.clone())),
            "roles" => matched.sort_by_cached_key(|n| (n.roles.join(","), n.name.clone())),
            "age" => matched.sort_by_cached_key(|n| (std::cmp::Reverse(n.created), n.name.clone())),
            "version" => {
                matched.sort_by_cached_key(|n| (n.kubelet_version.clone(), n.name.clone()))
            }
            "ip" => matched.sort_by_cached_key(|n| {
                (
                    n.internal_ip().and_then(crate::net::address_part),
                    n.name.clone(),
                )
            }),
            "pods" => {
                matched.sort_by_cached_key(|n| (stores.pods_on_count(&n.name), n.name.clone()))
            }
            _ => {} // by name: the table's own order
        }
        if query.desc {
            matched.reverse();
        }
        let per_page = query.per_page.clamp(1, MAX_PER_PAGE);
        let pages = matched.len().div_ceil(per_page).max(1);
        let page = query.page.clamp(1, pages);
        let rows = matched
            .iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .map(|n| row(&stores, n, &per_node, now))
            .collect();
        NodesPageView {
            cluster: self.name.to_string(),
            link: link_view(&link),
            rows,
            total: stores.nodes.len(),
            matched: matched.len(),
            page,
            pages,
            per_page,
            roles: roles.into_iter().collect(),
        }
    }

    /// A node's page, or `None` when no such node is known.
    pub fn node_detail(&self, name: &str) -> Option<NodeDetailView> {
        let link = self.link();
        let stores = self.read();
        let now = now_secs();
        let n = stores.nodes.get(name)?;
        let findings: Vec<Finding> = self
            .findings_for(&stores, &link)
            .iter()
            .filter(|f| f.nodes.iter().any(|x| x == name))
            .map(for_page)
            .collect();
        // Every finding here concerns this node (its name may be past the page's cut).
        let per_node = HashMap::from([(name, findings.len())]);
        let calico = stores.calico_node_pod(name);
        let mut events: Vec<EventView> = stores
            .events_for("Node", "", name)
            .into_iter()
            .chain(
                calico
                    .map(|p| stores.events_for("Pod", &p.namespace, &p.name))
                    .unwrap_or_default(),
            )
            .map(|e| EventView {
                object: if e.namespace.is_empty() {
                    format!("{}/{}", e.kind, e.name)
                } else {
                    format!("{}/{}/{}", e.kind, e.namespace, e.name)
                },
                reason: e.reason.clone(),
                message: e.message.clone(),
                count: e.count,
                last_seen: fmt_time(e.last_seen),
            })
            .collect();
        events.sort_by(|a, b| b.last_seen.cmp(&a.last_seen));
        events.truncate(50);
        // Affinity is Calico's BlockAffinity; usage is in the IPAMBlock of the same CIDR.
        let mut blocks: Vec<BlockView> = stores
            .affinities
            .values()
            .filter(|a| a.node == name)
            .map(|a| {
                let block = stores.ipamblocks.values().find(|b| b.cidr == a.cidr);
                BlockView {
                    cidr: a.cidr.clone(),
                    state: a.state.clone(),
                    in_use: block.map_or(0, |b| b.in_use),
                    size: block.map_or(0, |b| b.size),
                }
            })
            .collect();
        blocks.sort_by(|a, b| a.cidr.cmp(&b.cidr));
        Some(NodeDetailView {
            cluster: self.name.to_string(),
            link: link_view(&link),
            row: row(&stores, n, &per_node, now),
            conditions: n
                .conditions
                .iter()
                .map(|c| ConditionView {
                    kind: c.kind.clone(),
                    status: c.status.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                    last_transition: fmt_time(c.last_transition),
                })
                .collect(),
            taints: n
                .taints
                .iter()
                .map(|t| {
                    if t.value.is_empty() {
                        format!("{}:{}", t.key, t.effect)
                    } else {
                        format!("{}={}:{}", t.key, t.value, t.effect)
                    }
                })
                .collect(),
            addresses: n.addresses.clone(),
            pods: stores
                .pods_on(name)
                .map(|p| PodRow {
                    namespace: p.namespace.clone(),
                    name: p.name.clone(),
                    ip: p.ip.clone(),
                    owner: p
                        .owner
                        .as_ref()
                        .map(|o| format!("{}/{}", o.kind, o.name))
                        .unwrap_or_default(),
                    phase: pod_state(p),
                    ready: p.ready,
                    restarts: p.restarts,
                    age: age(p.created, now),
                })
                .collect(),
            blocks,
            calico_pod: calico.map(|p| CalicoPodView {
                name: p.name.clone(),
                ready: p.ready,
                state: calico_state(p),
                restarts: p.restarts,
                last_termination: p
                    .last_termination
                    .as_ref()
                    .map(|(r, m)| format!("{r}: {m}")),
            }),
            events,
            findings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{
        EVIDENCE_PER_FINDING, FINDINGS_PER_RULE, NODES_PER_FINDING, age, for_overview, for_page,
    };
    use grappe_views::{Evidence, Finding, Severity};

    #[test]
    fn a_finding_on_every_node_stays_small_on_a_page() {
        let nodes: Vec<String> = (0..5_000).map(|i| format!("orion-w{i:04}")).collect();
        let f = Finding {
            rule: "cni.none".into(),
            severity: Severity::Critical,
            evidence: nodes
                .iter()
                .map(|n| Evidence {
                    object: format!("Node/{n}"),
                    field: "status.conditions[Ready]".into(),
                    value: "False".into(),
                })
                .collect(),
            nodes,
            params: Vec::new(),
        };
        let page = for_page(&f);
        assert_eq!(page.nodes.len(), NODES_PER_FINDING);
        assert_eq!(page.evidence.len(), EVIDENCE_PER_FINDING);
        assert_eq!(page.param("nodes_total"), "5000");
        assert_eq!(page.param("evidence_total"), "5000");
        let small = for_page(&Finding {
            nodes: vec!["rigel".into()],
            evidence: Vec::new(),
            ..f
        });
        assert_eq!(small.params, Vec::<(String, String)>::new());
    }

    #[test]
    fn the_overview_shows_a_few_findings_of_each_rule_and_counts_the_rest() {
        let finding = |rule: &str, node: &str| Finding {
            rule: rule.into(),
            severity: Severity::Critical,
            nodes: vec![node.into()],
            evidence: Vec::new(),
            params: Vec::new(),
        };
        let mut all: Vec<Finding> = (0..1_612)
            .map(|i| finding("calico.node-not-ready", &format!("orion-w{i:04}")))
            .collect();
        all.push(finding("calico.duplicate-ipv4", "rigel"));
        let shown = for_overview(&all);
        assert_eq!(shown.len(), FINDINGS_PER_RULE + 1);
        let unready: Vec<&Finding> = shown
            .iter()
            .filter(|f| f.rule == "calico.node-not-ready")
            .collect();
        assert_eq!(unready.len(), FINDINGS_PER_RULE);
        assert_eq!(unready[FINDINGS_PER_RULE - 1].param("rule_more"), "1607");
        assert_eq!(unready[0].param("rule_more"), "");
        let duplicate = shown.iter().find(|f| f.rule == "calico.duplicate-ipv4");
        assert_eq!(duplicate.map(|f| f.param("rule_more")), Some(""));
    }

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(age(1_000, 1_045), "45s");
        assert_eq!(age(1_000, 1_000 + 12 * 60), "12m");
        assert_eq!(age(1_000, 1_000 + 5 * 3_600), "5h");
        assert_eq!(age(1_000, 1_000 + 3 * 86_400), "3d");
        assert_eq!(age(0, 5), "-");
    }
}
