//! The in-memory tables of one cluster, fed by the watches, with the indexes the views need
//! (pods by node, the calico-node pod of each node). Reads never go to the API server.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::model::{
    ApiServiceInfo, BgpConfigInfo, BgpPeerInfo, BlockAffinityInfo, CalicoApi, CalicoVethMtu,
    ClusterInfo, EventInfo, FelixInfo, HostFacts, InstallationInfo, IpPoolInfo, IpamBlockInfo,
    IpamHandleInfo, KubeProxyMode, KubeadmNetworking, NodeInfo, PdbInfo, PodInfo, TigeraStatusInfo,
    WorkloadInfo,
};

/// How many Warning events are kept per cluster (the newest).
pub const MAX_EVENTS: usize = 5_000;
/// Events kept per cluster, in bytes of text: messages are bounded on arrival, but 5,000 of
/// them at their bound would still be 10 MiB a cluster.
pub const MAX_EVENT_BYTES: usize = 4 << 20;

/// The bytes an event keeps (its texts, and a little for the rest).
fn event_bytes(e: &EventInfo) -> usize {
    [
        &e.uid,
        &e.kind,
        &e.namespace,
        &e.name,
        &e.reason,
        &e.message,
    ]
    .iter()
    .map(|t| t.len())
    .sum::<usize>()
        + 32
}

/// A change coming from a watch, already reduced to slim records.
#[derive(Debug)]
pub enum Change<T> {
    /// The complete list after a (re)list: replaces the table.
    Reset(Vec<T>),
    Upsert(T),
    Remove(T),
}

/// Every table of one cluster.
#[derive(Debug, Default)]
pub struct Stores {
    pub nodes: BTreeMap<String, NodeInfo>,
    pods: HashMap<String, PodInfo>,
    pods_by_node: HashMap<String, BTreeSet<String>>,
    calico_node_by_node: HashMap<String, String>,
    pub daemonsets: BTreeMap<String, WorkloadInfo>,
    pub deployments: BTreeMap<String, WorkloadInfo>,
    pub pdbs: BTreeMap<String, PdbInfo>,
    events: HashMap<String, EventInfo>,
    pub kubeadm: Option<KubeadmNetworking>,
    pub ippools: BTreeMap<String, IpPoolInfo>,
    pub ipamblocks: BTreeMap<String, IpamBlockInfo>,
    pub ipamhandles: BTreeMap<String, IpamHandleInfo>,
    pub bgp_configs: BTreeMap<String, BgpConfigInfo>,
    pub bgp_peers: BTreeMap<String, BgpPeerInfo>,
    pub affinities: BTreeMap<String, BlockAffinityInfo>,
    pub felixconfigs: BTreeMap<String, FelixInfo>,
    pub cluster_info: Option<ClusterInfo>,
    /// Which API serves Calico's resources (none without Calico's CRDs).
    pub calico_api: Option<CalicoApi>,
    /// The Tigera operator's reports, by component.
    pub tigera_status: BTreeMap<String, TigeraStatusInfo>,
    /// The operator's `Installation` (`default`).
    pub installation: Option<InstallationInfo>,
    pub kube_proxy_mode: Option<KubeProxyMode>,
    /// The Calico API server's `APIService`, when registered.
    pub calico_apiserver: Option<ApiServiceInfo>,
    /// `calico-config`'s `veth_mtu` (a manifest install).
    pub calico_veth_mtu: Option<i64>,
    /// What the hosts said over SSH (link MTUs, probes); no watch touches it.
    pub host_facts: HostFacts,
    /// Resources whose watch started and has not finished its first list: their table is
    /// partial (at 35,000 pods the first list takes tens of seconds), so what is told from an
    /// absence (a leaked address: "no pod has it") must wait.
    pub reading: BTreeSet<String>,
}

/// Applies `change`; returns whether the table now differs (an update that leaves the slim
/// record as it was, e.g. a kubelet heartbeat, is not a change).
fn apply_map<T: PartialEq>(
    map: &mut BTreeMap<String, T>,
    change: Change<T>,
    key: impl Fn(&T) -> String,
) -> bool {
    match change {
        Change::Reset(items) => {
            *map = items.into_iter().map(|i| (key(&i), i)).collect();
            true
        }
        Change::Upsert(item) => {
            let k = key(&item);
            if map.get(&k) == Some(&item) {
                return false;
            }
            map.insert(k, item);
            true
        }
        Change::Remove(item) => map.remove(&key(&item)).is_some(),
    }
}

fn replace_single<T: PartialEq>(slot: &mut Option<T>, change: Change<T>) -> bool {
    let new = match change {
        Change::Reset(mut items) => items.pop(),
        Change::Upsert(item) => Some(item),
        Change::Remove(_) => None,
    };
    let changed = *slot != new;
    *slot = new;
    changed
}

impl Stores {
    pub fn apply_nodes(&mut self, change: Change<NodeInfo>) -> bool {
        apply_map(&mut self.nodes, change, |n| n.name.clone())
    }

    pub fn apply_daemonsets(&mut self, change: Change<WorkloadInfo>) -> bool {
        apply_map(&mut self.daemonsets, change, WorkloadInfo::key)
    }

    pub fn apply_deployments(&mut self, change: Change<WorkloadInfo>) -> bool {
        apply_map(&mut self.deployments, change, WorkloadInfo::key)
    }

    pub fn apply_pdbs(&mut self, change: Change<PdbInfo>) -> bool {
        apply_map(&mut self.pdbs, change, PdbInfo::key)
    }

    pub fn apply_ippools(&mut self, change: Change<IpPoolInfo>) -> bool {
        apply_map(&mut self.ippools, change, |p| p.name.clone())
    }

    pub fn apply_ipamblocks(&mut self, change: Change<IpamBlockInfo>) -> bool {
        apply_map(&mut self.ipamblocks, change, |b| b.name.clone())
    }

    pub fn apply_ipamhandles(&mut self, change: Change<IpamHandleInfo>) -> bool {
        apply_map(&mut self.ipamhandles, change, |h| h.name.clone())
    }

    pub fn apply_bgp_configs(&mut self, change: Change<BgpConfigInfo>) -> bool {
        apply_map(&mut self.bgp_configs, change, |c| c.name.clone())
    }

    pub fn apply_bgp_peers(&mut self, change: Change<BgpPeerInfo>) -> bool {
        apply_map(&mut self.bgp_peers, change, |p| p.name.clone())
    }

    pub fn apply_affinities(&mut self, change: Change<BlockAffinityInfo>) -> bool {
        apply_map(&mut self.affinities, change, |a| a.name.clone())
    }

    pub fn apply_felixconfigs(&mut self, change: Change<FelixInfo>) -> bool {
        apply_map(&mut self.felixconfigs, change, |f| f.name.clone())
    }

    pub fn apply_cluster_info(&mut self, change: Change<ClusterInfo>) -> bool {
        replace_single(&mut self.cluster_info, change)
    }

    pub fn apply_kubeadm(&mut self, change: Change<KubeadmNetworking>) -> bool {
        replace_single(&mut self.kubeadm, change)
    }

    pub fn apply_tigera_status(&mut self, change: Change<TigeraStatusInfo>) -> bool {
        apply_map(&mut self.tigera_status, change, |t| t.name.clone())
    }

    pub fn apply_installation(&mut self, change: Change<InstallationInfo>) -> bool {
        replace_single(&mut self.installation, change)
    }

    pub fn apply_kube_proxy(&mut self, change: Change<KubeProxyMode>) -> bool {
        replace_single(&mut self.kube_proxy_mode, change)
    }

    pub fn apply_calico_veth_mtu(&mut self, change: Change<CalicoVethMtu>) -> bool {
        let mut single = self.calico_veth_mtu.map(CalicoVethMtu);
        let changed = replace_single(&mut single, change);
        self.calico_veth_mtu = single.map(|m| m.0);
        changed
    }

    pub fn apply_calico_apiserver(&mut self, change: Change<ApiServiceInfo>) -> bool {
        replace_single(&mut self.calico_apiserver, change)
    }

    /// Records which API serves Calico's resources; returns whether it changed.
    pub fn set_calico_api(&mut self, api: Option<CalicoApi>) -> bool {
        std::mem::replace(&mut self.calico_api, api) != api
    }

    /// Forgets a custom resource's table whose CRD went away (or moved to another API);
    /// returns whether it held anything.
    pub fn clear_custom(&mut self, plural: &str) -> bool {
        use std::mem::take;
        self.reading.remove(plural);
        match plural {
            "tigerastatuses" => !take(&mut self.tigera_status).is_empty(),
            "installations" => take(&mut self.installation).is_some(),
            "ippools" => !take(&mut self.ippools).is_empty(),
            "ipamblocks" => !take(&mut self.ipamblocks).is_empty(),
            "ipamhandles" => !take(&mut self.ipamhandles).is_empty(),
            "bgpconfigurations" => !take(&mut self.bgp_configs).is_empty(),
            "bgppeers" => !take(&mut self.bgp_peers).is_empty(),
            "blockaffinities" => !take(&mut self.affinities).is_empty(),
            "felixconfigurations" => !take(&mut self.felixconfigs).is_empty(),
            "clusterinformations" => take(&mut self.cluster_info).is_some(),
            _ => false,
        }
    }

    pub fn apply_pods(&mut self, change: Change<PodInfo>) -> bool {
        match change {
            Change::Reset(items) => {
                self.pods.clear();
                self.pods_by_node.clear();
                self.calico_node_by_node.clear();
                for pod in items {
                    self.insert_pod(pod);
                }
                true
            }
            Change::Upsert(pod) => {
                let key = pod.key();
                if self.pods.get(&key) == Some(&pod) {
                    return false;
                }
                self.remove_pod(&key);
                self.insert_pod(pod);
                true
            }
            Change::Remove(pod) => self.remove_pod(&pod.key()),
        }
    }

    fn insert_pod(&mut self, pod: PodInfo) {
        let key = pod.key();
        if let Some(node) = &pod.node {
            self.pods_by_node
                .entry(node.clone())
                .or_default()
                .insert(key.clone());
            if pod.app.as_deref() == Some("calico-node") {
                self.calico_node_by_node.insert(node.clone(), key.clone());
            }
        }
        self.pods.insert(key, pod);
    }

    fn remove_pod(&mut self, key: &str) -> bool {
        let Some(old) = self.pods.remove(key) else {
            return false;
        };
        if let Some(node) = &old.node {
            if let Some(set) = self.pods_by_node.get_mut(node) {
                set.remove(key);
                if set.is_empty() {
                    self.pods_by_node.remove(node);
                }
            }
            if self.calico_node_by_node.get(node).map(String::as_str) == Some(key) {
                self.calico_node_by_node.remove(node);
            }
        }
        true
    }

    pub fn apply_events(&mut self, change: Change<EventInfo>) -> bool {
        match change {
            Change::Reset(items) => {
                self.events = items.into_iter().map(|e| (e.uid.clone(), e)).collect();
                self.trim_events();
                true
            }
            Change::Upsert(e) => {
                if self.events.get(&e.uid) == Some(&e) {
                    return false;
                }
                self.events.insert(e.uid.clone(), e);
                self.trim_events();
                true
            }
            Change::Remove(e) => self.events.remove(&e.uid).is_some(),
        }
    }

    fn trim_events(&mut self) {
        let mut bytes: usize = self.events.values().map(event_bytes).sum();
        if self.events.len() <= MAX_EVENTS && bytes <= MAX_EVENT_BYTES {
            return;
        }
        let mut by_age: Vec<(i64, String)> = self
            .events
            .values()
            .map(|e| (e.last_seen, e.uid.clone()))
            .collect();
        by_age.sort();
        // Drop a tenth more at once so that trimming is rare.
        let (count, size) = (MAX_EVENTS - MAX_EVENTS / 10, MAX_EVENT_BYTES / 10 * 9);
        for (_, uid) in by_age {
            if self.events.len() <= count && bytes <= size {
                break;
            }
            if let Some(e) = self.events.remove(&uid) {
                bytes -= event_bytes(&e);
            }
        }
    }

    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    pub fn pods(&self) -> impl Iterator<Item = &PodInfo> {
        self.pods.values()
    }

    /// Pods bound to `node`, in namespace/name order.
    pub fn pods_on(&self, node: &str) -> impl Iterator<Item = &PodInfo> {
        self.pods_by_node
            .get(node)
            .into_iter()
            .flatten()
            .filter_map(|k| self.pods.get(k))
    }

    /// The DaemonSet that runs Calico's node agent (whatever its name or namespace).
    pub fn calico_node_daemonset(&self) -> Option<&WorkloadInfo> {
        self.daemonsets
            .values()
            .find(|d| d.image_of("calico/node").is_some())
    }

    /// calico-kube-controllers, by its Deployment's name.
    pub fn calico_kube_controllers(&self) -> Option<&WorkloadInfo> {
        self.deployments
            .values()
            .find(|d| d.rollout.name == "calico-kube-controllers")
    }

    pub fn pods_on_count(&self, node: &str) -> usize {
        self.pods_by_node.get(node).map_or(0, BTreeSet::len)
    }

    pub fn calico_node_pod(&self, node: &str) -> Option<&PodInfo> {
        self.calico_node_by_node
            .get(node)
            .and_then(|k| self.pods.get(k))
    }

    /// Warning events about one object, newest first.
    pub fn events_for(&self, kind: &str, namespace: &str, name: &str) -> Vec<&EventInfo> {
        let mut out: Vec<&EventInfo> = self
            .events
            .values()
            .filter(|e| e.kind == kind && e.name == name && e.namespace == namespace)
            .collect();
        out.sort_by_key(|e| std::cmp::Reverse(e.last_seen));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, node: &str, app: Option<&str>) -> PodInfo {
        PodInfo {
            namespace: "kube-system".into(),
            name: name.into(),
            node: Some(node.into()),
            ip: None,
            phase: "Running".into(),
            ready: true,
            restarts: 0,
            owner: None,
            created: 0,
            deleting: false,
            app: app.map(str::to_owned),
            waiting_reason: None,
            last_termination: None,
        }
    }

    #[test]
    fn pod_indexes_follow_moves_and_deletes() {
        let mut s = Stores::default();
        s.apply_pods(Change::Reset(vec![
            pod("a", "rigel", None),
            pod("calico-node-1", "rigel", Some("calico-node")),
        ]));
        assert_eq!(s.pods_on_count("rigel"), 2);
        assert_eq!(
            s.calico_node_pod("rigel").map(|p| p.name.as_str()),
            Some("calico-node-1")
        );
        // The same pod now bound elsewhere (a re-list would show it so).
        s.apply_pods(Change::Upsert(pod("a", "saiph", None)));
        assert_eq!(s.pods_on_count("rigel"), 1);
        assert_eq!(s.pods_on_count("saiph"), 1);
        s.apply_pods(Change::Remove(pod(
            "calico-node-1",
            "rigel",
            Some("calico-node"),
        )));
        assert!(s.calico_node_pod("rigel").is_none());
        assert_eq!(s.pods_on_count("rigel"), 0);
        assert_eq!(s.pod_count(), 1);
    }

    #[test]
    fn a_kubelet_heartbeat_is_not_a_change() {
        let node = |heartbeat: &str, ready: &str| {
            let n: k8s_openapi::api::core::v1::Node = serde_json::from_value(serde_json::json!({
                "metadata": {"name": "rigel"},
                "status": {"conditions": [{"type": "Ready", "status": ready,
                    "lastHeartbeatTime": heartbeat, "lastTransitionTime": "2026-11-28T09:00:00Z"}]}
            }))
            .expect("node");
            NodeInfo::from_node(n).expect("named")
        };
        let mut s = Stores::default();
        assert!(s.apply_nodes(Change::Upsert(node("2026-11-28T10:00:00Z", "True"))));
        assert!(!s.apply_nodes(Change::Upsert(node("2026-11-28T10:00:40Z", "True"))));
        assert!(s.apply_nodes(Change::Upsert(node("2026-11-28T10:01:20Z", "False"))));
        assert!(s.apply_nodes(Change::Remove(node("2026-11-28T10:02:00Z", "False"))));
        assert!(!s.apply_nodes(Change::Remove(node("2026-11-28T10:02:00Z", "False"))));
    }

    #[test]
    fn events_are_capped_keeping_the_newest() {
        let mut s = Stores::default();
        let events = (0..MAX_EVENTS + 1)
            .map(|i| EventInfo {
                uid: format!("u{i}"),
                kind: "Pod".into(),
                namespace: "ns".into(),
                name: "p".into(),
                reason: "BackOff".into(),
                message: String::new(),
                count: 1,
                last_seen: i64::try_from(i).expect("small"),
            })
            .collect();
        s.apply_events(Change::Reset(events));
        assert!(s.events.len() <= MAX_EVENTS);
        let newest = format!("u{MAX_EVENTS}");
        assert!(s.events.contains_key(&newest));
        assert!(!s.events.contains_key("u0"));
    }

    #[test]
    fn events_are_capped_in_bytes_too() {
        let mut s = Stores::default();
        let message = "x".repeat(crate::state::model::EVENT_MESSAGE_BYTES);
        let events: Vec<EventInfo> = (0..4_000)
            .map(|i| EventInfo {
                uid: format!("u{i}"),
                kind: "Pod".into(),
                namespace: "tenant".into(),
                name: "spam".into(),
                reason: "Spam".into(),
                message: message.clone(),
                count: 1,
                last_seen: i64::from(i),
            })
            .collect();
        s.apply_events(Change::Reset(events));
        let bytes: usize = s.events.values().map(event_bytes).sum();
        assert!(bytes <= MAX_EVENT_BYTES, "{bytes} bytes kept");
        assert!(s.events.len() < 4_000 && s.events.contains_key("u3999"));
    }
}
