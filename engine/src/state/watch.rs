//! The watch tasks of one cluster. Each resource has its own kube-runtime watcher (list, then
//! watch, re-list on expiry, exponential backoff on errors); events are reduced to slim records
//! and applied to the cluster's tables. Calico's and the Tigera operator's resources are watched
//! through the dynamic API while their CustomResourceDefinition exists ([`super::crds`]), so
//! installing or removing Calico needs no restart.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Event, Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::Api;
use kube::runtime::watcher;

use super::ClusterState;
use super::feed::spawn_typed;
use super::model::{
    ApiServiceInfo, CalicoVethMtu, EventInfo, KubeProxyMode, KubeadmNetworking, NodeInfo, PdbInfo,
    PodInfo, WorkloadInfo,
};
use super::store::Stores;
use crate::audit::error_chain;
use crate::clusters::Clusters;

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
        spawn_typed::<ConfigMap, _>(
            &state,
            Api::namespaced(client.clone(), "kube-system"),
            "kube-proxy",
            watcher::Config::default().fields("metadata.name=kube-proxy"),
            KubeProxyMode::from_configmap,
            Stores::apply_kube_proxy,
        ),
        spawn_typed::<ConfigMap, _>(
            &state,
            Api::namespaced(client.clone(), "kube-system"),
            "calico-config",
            watcher::Config::default().fields("metadata.name=calico-config"),
            CalicoVethMtu::from_configmap,
            Stores::apply_calico_veth_mtu,
        ),
        spawn_typed::<APIService, _>(
            &state,
            Api::all(client.clone()),
            "apiservices",
            watcher::Config::default().fields("metadata.name=v3.projectcalico.org"),
            ApiServiceInfo::from_apiservice,
            Stores::apply_calico_apiserver,
        ),
    ];
    super::crds::run(client, state).await;
    drop(tasks);
}
