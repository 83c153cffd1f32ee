//! The watch tasks of one cluster. Each resource has its own kube-runtime watcher (list, then
//! watch, re-list on expiry, exponential backoff on errors); events are reduced to slim records
//! and applied to the cluster's tables. Calico's CRDs are watched through the dynamic API while
//! their CustomResourceDefinition exists: a CRD watch starts and stops them, so installing or
//! removing Calico needs no restart.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Event, Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::watcher::{self, Event as WatchEvent};
use kube::runtime::{WatchStreamExt, watcher as make_watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;

use super::ClusterState;
use super::model::{
    self, BlockAffinityInfo, ClusterInfo, EventInfo, IpamBlockInfo, KubeadmNetworking, NodeInfo,
    PdbInfo, PodInfo, WorkloadInfo,
};
use super::store::{Change, Stores};
use crate::audit::error_chain;
use crate::clusters::Clusters;

/// Calico's API group, served by its CRDs in a manifest install.
pub const CALICO_GROUP: &str = "crd.projectcalico.org";

/// The Calico resources Grappe reads: (plural, kind).
pub const CALICO_RESOURCES: [(&str, &str); 5] = [
    ("ippools", "IPPool"),
    ("ipamblocks", "IPAMBlock"),
    ("blockaffinities", "BlockAffinity"),
    ("felixconfigurations", "FelixConfiguration"),
    ("clusterinformations", "ClusterInformation"),
];

/// Runs every watch of `state`'s cluster. Waits (with backoff) until a client can be built.
pub async fn run(clusters: Clusters, state: Arc<ClusterState>) {
    let mut delay = Duration::from_secs(1);
    let client = loop {
        match clusters.watch_client(&state.name).await {
            Ok(c) => break c,
            Err(e) => {
                let error = error_chain(&e);
                tracing::warn!(cluster = %state.name, %error, "cannot build a client; retrying");
                state.watch_failed("nodes", error);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    };
    let tasks = vec![
        spawn_typed::<Node, _>(
            &state,
            Api::all(client.clone()),
            "nodes",
            watcher::Config::default(),
            NodeInfo::from_node,
            Stores::apply_nodes,
        ),
        spawn_typed::<Pod, _>(
            &state,
            Api::all(client.clone()),
            "pods",
            watcher::Config::default(),
            PodInfo::from_pod,
            Stores::apply_pods,
        ),
        spawn_typed::<DaemonSet, _>(
            &state,
            Api::all(client.clone()),
            "daemonsets",
            watcher::Config::default(),
            WorkloadInfo::from_daemonset,
            Stores::apply_daemonsets,
        ),
        spawn_typed::<Deployment, _>(
            &state,
            Api::all(client.clone()),
            "deployments",
            watcher::Config::default(),
            WorkloadInfo::from_deployment,
            Stores::apply_deployments,
        ),
        spawn_typed::<PodDisruptionBudget, _>(
            &state,
            Api::all(client.clone()),
            "poddisruptionbudgets",
            watcher::Config::default(),
            PdbInfo::from_pdb,
            Stores::apply_pdbs,
        ),
        spawn_typed::<Event, _>(
            &state,
            Api::all(client.clone()),
            "events",
            watcher::Config::default().fields("type=Warning"),
            EventInfo::from_event,
            Stores::apply_events,
        ),
        spawn_typed::<ConfigMap, _>(
            &state,
            Api::namespaced(client.clone(), "kube-system"),
            "kubeadm-config",
            watcher::Config::default().fields("metadata.name=kubeadm-config"),
            |cm| Some(KubeadmNetworking::from_configmap(cm)),
            Stores::apply_kubeadm,
        ),
    ];
    calico_crds(client, state).await;
    drop(tasks);
}

/// A watch task, aborted when dropped (a cluster's watches end together).
struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn spawn_typed<K, T>(
    state: &Arc<ClusterState>,
    api: Api<K>,
    resource: &'static str,
    config: watcher::Config,
    slim: fn(K) -> Option<T>,
    apply: fn(&mut Stores, Change<T>) -> bool,
) -> Task
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    T: Send + 'static,
{
    let state = Arc::clone(state);
    Task(tokio::spawn(async move {
        watch_loop(&state, api, resource, config, slim, apply).await;
    }))
}

/// Feeds one resource's watch into the tables until the task is aborted.
async fn watch_loop<K, T>(
    state: &ClusterState,
    api: Api<K>,
    resource: &str,
    config: watcher::Config,
    slim: impl Fn(K) -> Option<T>,
    apply: fn(&mut Stores, Change<T>) -> bool,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    // Pages of 500 during the initial list keep memory flat at 150,000 pods.
    let config = config.page_size(500);
    let mut stream = make_watcher(api, config).default_backoff().boxed();
    let mut buffer: Vec<T> = Vec::new();
    loop {
        match stream.try_next().await {
            Ok(Some(event)) => match event {
                WatchEvent::Init => buffer.clear(),
                WatchEvent::InitApply(obj) => buffer.extend(slim(obj)),
                WatchEvent::InitDone => {
                    let items = std::mem::take(&mut buffer);
                    state.update(|s| apply(s, Change::Reset(items)));
                    state.watch_ok(resource, true);
                }
                WatchEvent::Apply(obj) => {
                    if let Some(item) = slim(obj) {
                        state.update(|s| apply(s, Change::Upsert(item)));
                    }
                    state.watch_ok(resource, false);
                }
                WatchEvent::Delete(obj) => {
                    if let Some(item) = slim(obj) {
                        state.update(|s| apply(s, Change::Remove(item)));
                    }
                }
            },
            Ok(None) => return,
            Err(e) => {
                let error = error_chain(&e);
                tracing::debug!(cluster = %state.name, resource, %error, "watch failed; backing off");
                state.watch_failed(resource, error);
            }
        }
    }
}

/// Watches CustomResourceDefinitions and keeps one dynamic watch per Calico resource whose CRD
/// exists: started when the CRD appears, stopped (and its objects forgotten) when it goes.
async fn calico_crds(client: Client, state: Arc<ClusterState>) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut stream = make_watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    // Names of the CRDs that exist (kept whole during a re-list, swapped in at its end).
    let mut present: HashSet<String> = HashSet::new();
    let mut listing: HashSet<String> = HashSet::new();
    let mut running: HashMap<&'static str, Task> = HashMap::new();
    loop {
        match stream.try_next().await {
            Ok(Some(WatchEvent::Init)) => listing.clear(),
            Ok(Some(WatchEvent::InitApply(crd))) => listing.extend(crd.metadata.name),
            Ok(Some(WatchEvent::InitDone)) => present = std::mem::take(&mut listing),
            Ok(Some(WatchEvent::Apply(crd))) => {
                if let Some(name) = crd.metadata.name {
                    if crd.metadata.deletion_timestamp.is_none() {
                        present.insert(name);
                    } else {
                        present.remove(&name);
                    }
                }
            }
            Ok(Some(WatchEvent::Delete(crd))) => {
                if let Some(name) = crd.metadata.name {
                    present.remove(&name);
                }
            }
            Ok(None) => return,
            Err(e) => {
                state.watch_failed("customresourcedefinitions", error_chain(&e));
                continue;
            }
        }
        state.watch_ok("customresourcedefinitions", false);
        for (plural, kind) in CALICO_RESOURCES {
            let crd_name = format!("{plural}.{CALICO_GROUP}");
            match (present.contains(&crd_name), running.contains_key(plural)) {
                (true, false) => {
                    tracing::info!(cluster = %state.name, crd = %crd_name, "Calico CRD present: watching");
                    running.insert(plural, spawn_calico(&client, &state, plural, kind));
                }
                (false, true) => {
                    tracing::info!(cluster = %state.name, crd = %crd_name, "Calico CRD gone: forgetting its objects");
                    running.remove(plural); // aborts its watch
                    state.update(|s| s.clear_calico(plural));
                    state.watch_ok(plural, false);
                }
                _ => {}
            }
        }
    }
}

fn spawn_calico(
    client: &Client,
    state: &Arc<ClusterState>,
    plural: &'static str,
    kind: &str,
) -> Task {
    let gvk = GroupVersionKind::gvk(CALICO_GROUP, "v1", kind);
    let api: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(&gvk, plural),
    );
    let config = watcher::Config::default();
    match plural {
        "ippools" => spawn_typed(
            state,
            api,
            plural,
            config,
            |o| model::ip_pool(&o),
            Stores::apply_ippools,
        ),
        "ipamblocks" => spawn_typed(
            state,
            api,
            plural,
            config,
            |o| IpamBlockInfo::from_dynamic(&o),
            Stores::apply_ipamblocks,
        ),
        "blockaffinities" => spawn_typed(
            state,
            api,
            plural,
            config,
            |o| BlockAffinityInfo::from_dynamic(&o),
            Stores::apply_affinities,
        ),
        "felixconfigurations" => spawn_typed(
            state,
            api,
            plural,
            config,
            |o| o.metadata.name,
            Stores::apply_felixconfigs,
        ),
        _ => spawn_typed(
            state,
            api,
            plural,
            config,
            |o| ClusterInfo::from_dynamic(&o),
            Stores::apply_cluster_info,
        ),
    }
}
