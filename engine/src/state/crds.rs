//! The watches that exist while their CustomResourceDefinition does: Calico's resources, read
//! from whichever API serves them (`crd.projectcalico.org/v1`, or native `projectcalico.org/v3`
//! when its CRDs are installed instead), and the Tigera operator's `Installation` and
//! `TigeraStatus`. A CRD watch starts and stops them, so installing, removing or migrating
//! Calico needs no restart; the mode in use is kept with the state.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::watcher::{self, Event as WatchEvent};
use kube::runtime::{WatchStreamExt, watcher as make_watcher};
use kube::{Api, Client};

use super::ClusterState;
use super::feed::{Task, spawn_typed};
use super::model::{
    self, BgpConfigInfo, BgpPeerInfo, BlockAffinityInfo, CalicoApi, ClusterInfo, FelixInfo,
    InstallationInfo, IpamBlockInfo, IpamHandleInfo, TigeraStatusInfo,
};
use super::store::Stores;
use crate::audit::error_chain;

/// The Calico resources Grappe reads: (plural, kind).
pub const CALICO_RESOURCES: [(&str, &str); 8] = [
    ("ippools", "IPPool"),
    ("ipamblocks", "IPAMBlock"),
    ("ipamhandles", "IPAMHandle"),
    ("bgpconfigurations", "BGPConfiguration"),
    ("bgppeers", "BGPPeer"),
    ("blockaffinities", "BlockAffinity"),
    ("felixconfigurations", "FelixConfiguration"),
    ("clusterinformations", "ClusterInformation"),
];

/// The Tigera operator's resources Grappe reads: (plural, kind), group `operator.tigera.io/v1`.
pub const OPERATOR_RESOURCES: [(&str, &str); 2] = [
    ("installations", "Installation"),
    ("tigerastatuses", "TigeraStatus"),
];

const OPERATOR_GROUP: &str = "operator.tigera.io";

/// How long one watch request of a CRD-defined resource lasts (the server ends it then).
const CRD_WATCH_SECONDS: u32 = 60;

/// Which API serves Calico's `plural`, given the CRDs present: native v3 when its CRD exists.
fn calico_api(present: &HashSet<String>, plural: &str) -> Option<CalicoApi> {
    [CalicoApi::NativeV3, CalicoApi::Crd]
        .into_iter()
        .find(|api| present.contains(&format!("{plural}.{}", api.group())))
}

/// Keeps the CRD-driven watches in line with the CRDs present, until the task is aborted.
pub async fn run(client: Client, state: Arc<ClusterState>) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut stream = make_watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    // Names of the CRDs that exist (kept whole during a re-list, swapped in at its end).
    let mut present: HashSet<String> = HashSet::new();
    let mut listing: HashSet<String> = HashSet::new();
    let mut calico: HashMap<&'static str, (CalicoApi, Task)> = HashMap::new();
    let mut operator: HashMap<&'static str, Task> = HashMap::new();
    loop {
        // A CRD that changed while it exists (its names accepted, established, its spec
        // updated): the API server rebuilds its storage then.
        let mut changed = None;
        match stream.try_next().await {
            Ok(Some(WatchEvent::Init)) => listing.clear(),
            Ok(Some(WatchEvent::InitApply(crd))) => listing.extend(crd.metadata.name),
            Ok(Some(WatchEvent::InitDone)) => present = std::mem::take(&mut listing),
            Ok(Some(WatchEvent::Apply(crd))) => {
                if let Some(name) = crd.metadata.name {
                    if crd.metadata.deletion_timestamp.is_none() {
                        if !present.insert(name.clone()) {
                            changed = Some(name);
                        }
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
        follow_calico(&client, &state, &present, &mut calico);
        follow_operator(&client, &state, &present, &mut operator);
        if let Some(crd) = changed {
            restart_calico(&client, &state, &crd, &mut calico);
        }
        let mode = calico.get("ippools").map(|(api, _)| *api);
        state.update(|s| s.set_calico_api(mode));
    }
}

/// Starts, moves or stops each Calico resource's watch to the API that serves it now.
fn follow_calico(
    client: &Client,
    state: &Arc<ClusterState>,
    present: &HashSet<String>,
    running: &mut HashMap<&'static str, (CalicoApi, Task)>,
) {
    for (plural, kind) in CALICO_RESOURCES {
        let wanted = calico_api(present, plural);
        let now = running.get(plural).map(|(api, _)| *api);
        if wanted == now {
            continue;
        }
        if running.remove(plural).is_some() {
            // Aborts its watch; the objects it read are forgotten (they are read again from
            // the API that serves them now, if any).
            tracing::info!(cluster = %state.name, plural, "Calico resource no longer served there: forgetting its objects");
            state.update(|s| s.clear_custom(plural));
            state.watch_ok(plural, false);
        }
        if let Some(api) = wanted {
            tracing::info!(cluster = %state.name, plural, api = api.api_version(), "Calico resource served: watching");
            let task = spawn_dynamic(client, state, api.group(), api.version(), plural, kind);
            running.insert(plural, (api, task));
        }
    }
}

/// Starts the watch of the Calico resource `crd` defines again, if it runs. A watch opened
/// while the API server (re)builds a CRD's storage can miss that resource's later changes
/// without ending (seen on the lab: a freshly installed Calico's IPAM blocks released and
/// deleted while the page kept them for minutes; kubernetes/kubernetes#116172 fixed one such
/// race); the storage is rebuilt when the CRD changes, so a watch opened after the change
/// reads from the new one. CRDs change seldom once installed: a few lists at install time.
fn restart_calico(
    client: &Client,
    state: &Arc<ClusterState>,
    crd: &str,
    running: &mut HashMap<&'static str, (CalicoApi, Task)>,
) {
    for (plural, kind) in CALICO_RESOURCES {
        let Some((api, _)) = running.get(plural) else {
            continue;
        };
        let api = *api;
        if crd == format!("{plural}.{}", api.group()) {
            tracing::debug!(cluster = %state.name, plural, "its CRD changed: watching again");
            let task = spawn_dynamic(client, state, api.group(), api.version(), plural, kind);
            running.insert(plural, (api, task));
        }
    }
}

/// Starts or stops each operator resource's watch as its CRD appears or goes.
fn follow_operator(
    client: &Client,
    state: &Arc<ClusterState>,
    present: &HashSet<String>,
    running: &mut HashMap<&'static str, Task>,
) {
    for (plural, kind) in OPERATOR_RESOURCES {
        let crd = format!("{plural}.{OPERATOR_GROUP}");
        match (present.contains(&crd), running.contains_key(plural)) {
            (true, false) => {
                tracing::info!(cluster = %state.name, crd, "operator CRD present: watching");
                let task = spawn_dynamic(client, state, OPERATOR_GROUP, "v1", plural, kind);
                running.insert(plural, task);
            }
            (false, true) => {
                tracing::info!(cluster = %state.name, crd, "operator CRD gone: forgetting its objects");
                running.remove(plural);
                state.update(|s| s.clear_custom(plural));
                state.watch_ok(plural, false);
            }
            _ => {}
        }
    }
}

fn spawn_dynamic(
    client: &Client,
    state: &Arc<ClusterState>,
    group: &str,
    version: &str,
    plural: &'static str,
    kind: &str,
) -> Task {
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let api: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(&gvk, plural),
    );
    // Each watch request ends after a minute and goes on from where it was (no new list
    // unless the server forgot that point): a watch the server left stranded after rebuilding a
    // CRD's storage is renewed within a minute instead of the default five.
    let config = watcher::Config::default().timeout(CRD_WATCH_SECONDS);
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
        "ipamhandles" => spawn_typed(
            state,
            api,
            plural,
            config,
            |o| IpamHandleInfo::from_dynamic(&o),
            Stores::apply_ipamhandles,
        ),
        "bgpconfigurations" => spawn_typed(
            state,
            api,
            plural,
            config,
            |o| BgpConfigInfo::from_dynamic(&o),
            Stores::apply_bgp_configs,
        ),
        "bgppeers" => spawn_typed(
            state,
            api,
            plural,
            config,
            |o| BgpPeerInfo::from_dynamic(&o),
            Stores::apply_bgp_peers,
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
            |o| FelixInfo::from_dynamic(&o),
            Stores::apply_felixconfigs,
        ),
        "installations" => spawn_typed(
            state,
            api,
            plural,
            config,
            |o| InstallationInfo::from_dynamic(&o),
            Stores::apply_installation,
        ),
        "tigerastatuses" => spawn_typed(
            state,
            api,
            plural,
            config,
            |o| TigeraStatusInfo::from_dynamic(&o),
            Stores::apply_tigera_status,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_v3_is_read_where_its_crds_are_installed() {
        let crds = |names: &[&str]| {
            names
                .iter()
                .map(|n| (*n).to_owned())
                .collect::<HashSet<_>>()
        };
        let v1 = crds(&["ippools.crd.projectcalico.org"]);
        assert_eq!(calico_api(&v1, "ippools"), Some(CalicoApi::Crd));
        let v3 = crds(&["ippools.projectcalico.org"]);
        assert_eq!(calico_api(&v3, "ippools"), Some(CalicoApi::NativeV3));
        assert_eq!(calico_api(&v3, "ipamblocks"), None);
    }
}
