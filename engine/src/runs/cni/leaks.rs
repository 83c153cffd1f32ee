//! The guarded release of leaked IPAM addresses (`ipam.release`, admins): allocations whose
//! pod is gone, as the IPAM page lists them. The plan names every address and handle with its
//! evidence, refuses while Calico's datastore is not ready and leaves out allocations younger
//! than a grace period (calico-kube-controllers' own garbage collection may still be at work);
//! the run snapshots the blocks and handles, releases each address only if its handle still
//! holds it, writing each block with its resourceVersion (a concurrent writer makes it read
//! and try again), then deletes the handles. Its rollback puts the addresses back where they
//! are still free (`restore` of an IPAMBlock merges: see [`crate::ipam::block`]).

use std::collections::{BTreeMap, BTreeSet};

use grappe_views::runs::{FieldChange, Planned, PlannedObjectView};
use grappe_views::vocab::Level;
use kube::api::{DeleteParams, DynamicObject, PostParams, Preconditions};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::*;
use crate::ipam::block;
use crate::model::Plan;
use crate::runs::k8s::{self, KubeError, ObjectRef, Resolver};
use crate::runs::{Launch, RunError, Runs, check, sealed};

/// The grace period by default: calico-kube-controllers' leak grace period is 15 minutes.
pub const DEFAULT_GRACE_SECONDS: u64 = 900;
/// The steps of a release.
const STEPS: [&str; 3] = ["snapshot", "release", "verify"];
/// Attempts at writing one block when others write it meanwhile.
const ATTEMPTS: usize = 5;

/// What a release is planned from: the addresses (all leaked ones when empty) and the grace
/// period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRequest {
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default)]
    pub grace_seconds: Option<u64>,
}

impl Runs {
    /// Plans the release of `request`'s leaked addresses on `cluster`. Changes nothing.
    ///
    /// # Errors
    /// [`RunError`]: an unknown cluster, no live state, an unreachable API server.
    pub async fn plan_ipam_release(
        &self,
        cluster: &ClusterName,
        request: &ReleaseRequest,
    ) -> Result<Plan, RunError> {
        let state = self
            .inner()
            .states
            .get(cluster)
            .ok_or_else(|| RunError::Invalid(format!("no live state for cluster {cluster}")))?;
        let (leaks, view, api) = {
            let stores = state.read();
            let (leaks, view) = crate::ipam::leaks(&stores);
            (leaks, view, stores.calico_api)
        };
        let api_version = api.map_or("crd.projectcalico.org/v1", |a| a.api_version());
        let grace = request.grace_seconds.unwrap_or(DEFAULT_GRACE_SECONDS);
        let now = crate::time::now().unix_seconds();
        let wanted: BTreeSet<&str> = request.addresses.iter().map(String::as_str).collect();
        let asked = |ip: &str| wanted.is_empty() || wanted.contains(ip);
        let (chosen, young): (Vec<_>, Vec<_>) =
            leaks.into_iter().filter(|l| asked(&l.ip)).partition(|l| {
                l.at.is_none_or(|at| now - at >= i64::try_from(grace).unwrap_or(i64::MAX))
            });
        let mut checks = vec![match view.datastore_ready {
            Some(true) => check("datastore", Level::Pass, "Calico's datastore is ready"),
            Some(false) => check(
                "datastore",
                Level::Fail,
                "Calico's datastore is not ready (ClusterInformation datastoreReady): IPAM must not be changed now",
            ),
            None => check(
                "datastore",
                Level::Fail,
                "Calico's ClusterInformation has not been read (yet): whether its datastore is ready is unknown; try again in a moment",
            ),
        }];
        if !view.unread.is_empty() {
            checks.push(check(
                "read",
                Level::Fail,
                format!(
                    "Grappe is still reading the cluster's {} for the first time: which addresses are leaked is not known yet; try again in a moment",
                    view.unread.join(", ")
                ),
            ));
        }
        checks.push(if young.is_empty() {
            check("grace", Level::Pass, format!("every listed address was allocated {grace} s ago or more"))
        } else {
            check(
                "grace",
                Level::Warn,
                format!(
                    "{} address(es) allocated less than {grace} s ago left out (calico-kube-controllers may still release them): {}",
                    young.len(),
                    young.iter().take(8).map(|l| l.ip.as_str()).collect::<Vec<_>>().join(", ")
                ),
            )
        });
        checks.push(if chosen.is_empty() {
            check("leaks", Level::Fail, "no leaked address to release")
        } else {
            check(
                "leaks",
                Level::Pass,
                format!("{} leaked address(es) to release", chosen.len()),
            )
        });
        if grace < DEFAULT_GRACE_SECONDS {
            checks.push(check(
                "grace-short",
                Level::Warn,
                format!("grace period {grace} s, shorter than calico-kube-controllers' {DEFAULT_GRACE_SECONDS} s"),
            ));
        }
        // Handles are deleted when every address they hold is released.
        let handles_in_use: BTreeSet<String> = {
            let stores = state.read();
            let released: BTreeSet<(&str, u32)> = chosen
                .iter()
                .map(|l| (l.block.as_str(), l.ordinal))
                .collect();
            stores
                .ipamblocks
                .values()
                .flat_map(|b| {
                    b.allocations
                        .iter()
                        .filter(|a| !released.contains(&(b.name.as_str(), a.ordinal)))
                        .map(|a| a.handle.clone())
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        let mut per_block: BTreeMap<&str, Vec<&crate::ipam::Leak>> = BTreeMap::new();
        for l in &chosen {
            per_block.entry(l.block.as_str()).or_default().push(l);
        }
        let mut objects: Vec<PlannedObjectView> = per_block
            .iter()
            .map(|(name, leaks)| PlannedObjectView {
                api_version: api_version.into(),
                kind: "IPAMBlock".into(),
                namespace: None,
                name: (*name).to_owned(),
                action: Planned::Update,
                changes: leaks
                    .iter()
                    .map(|l| FieldChange {
                        path: format!("spec.allocations[{}] ({})", l.ordinal, l.ip),
                        before: Some(format!("{}: {}", l.handle, l.why)),
                        after: None,
                    })
                    .collect(),
                changes_total: leaks.len(),
            })
            .collect();
        let handles: BTreeSet<&str> = chosen
            .iter()
            .map(|l| l.handle.as_str())
            .filter(|h| !h.is_empty() && !handles_in_use.contains(*h))
            .collect();
        objects.extend(handles.iter().map(|h| PlannedObjectView {
            api_version: api_version.into(),
            kind: "IPAMHandle".into(),
            namespace: None,
            name: h.to_lowercase(),
            action: Planned::Delete,
            changes: Vec::new(),
            changes_total: 0,
        }));
        let client = self.client_of(cluster).await?;
        let mut resolver = Resolver::new(client);
        let refs: Vec<ObjectRef> = objects
            .iter()
            .map(|o| ObjectRef {
                api_version: o.api_version.clone(),
                kind: o.kind.clone(),
                namespace: None,
                name: o.name.clone(),
            })
            .collect();
        checks.push(
            self.permissions(&mut resolver, &refs, &["get", "update", "delete"])
                .await?,
        );
        let resolved = ReleaseRequest {
            addresses: chosen.iter().map(|l| l.ip.clone()).collect(),
            grace_seconds: Some(grace),
        };
        let title = format!("release of {} leaked IPAM address(es)", chosen.len());
        Ok(sealed(Plan {
            options: vec![
                ("grace_seconds".into(), grace.to_string()),
                ("addresses".into(), resolved.addresses.join(", ")),
            ],
            objects,
            checks,
            ..Plan::new(cluster, Workflow::IpamRelease, title, to_value(&resolved)?)
        }))
    }

    /// The release a confirmed request starts: planned again from its addresses.
    pub(super) async fn prepare_ipam_release(
        &self,
        cluster: &ClusterName,
        request: &ReleaseRequest,
    ) -> Result<Launch, RunError> {
        let plan = self.plan_ipam_release(cluster, request).await?;
        let params = to_value(request)?;
        Ok(Launch::new(plan, params, STEPS.map(str::to_owned).to_vec()))
    }
}

impl StepContext {
    /// Releases, block by block, the planned ordinals still held by their handle, each block
    /// written with its resourceVersion; then deletes the planned handles.
    pub(super) async fn release_leaks(&mut self, idx: i64) -> Result<(), RunError> {
        for row in self.rows.clone() {
            if row.done.is_some() || row.kind != "IPAMBlock" {
                continue;
            }
            let wanted = self.planned_ordinals(&row.name)?;
            let r = row_ref(&row);
            let api = self.resolver.api(&r).await?;
            let mut released = Vec::new();
            for attempt in 1..=ATTEMPTS {
                let Some(current) = k8s::get(&api, &r).await? else {
                    break;
                };
                let mut edited = current.clone();
                released = block::release(&mut edited, &wanted);
                if released.is_empty() {
                    break;
                }
                let object: DynamicObject =
                    serde_json::from_value(edited).map_err(|e| KubeError::Encode(r.key(), e))?;
                match api.replace(&r.name, &PostParams::default(), &object).await {
                    Ok(_) => break,
                    Err(kube::Error::Api(e)) if e.code == 409 && attempt < ATTEMPTS => {
                        self.cx
                            .say(idx, &format!("{} changed meanwhile: read again", r.key()))
                            .await?;
                    }
                    Err(source) => {
                        return Err(KubeError::Call {
                            verb: "replace",
                            object: r.key(),
                            source,
                        }
                        .into());
                    }
                }
            }
            let what = format!("released {} address(es)", released.len());
            self.done(row.seq, &what).await?;
            self.cx.say(idx, &format!("{what} of {}", r.key())).await?;
        }
        for row in self.rows.clone() {
            if row.done.is_some() || row.kind != "IPAMHandle" {
                continue;
            }
            let r = row_ref(&row);
            let api = self.resolver.api(&r).await?;
            let Some(current) = k8s::get(&api, &r).await? else {
                self.done(row.seq, "absent").await?;
                continue;
            };
            let uid = current["metadata"]["uid"].as_str().map(str::to_owned);
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid,
                    resource_version: current["metadata"]["resourceVersion"]
                        .as_str()
                        .map(str::to_owned),
                }),
                ..DeleteParams::default()
            };
            match api.delete(&r.name, &params).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(source) => {
                    return Err(KubeError::Call {
                        verb: "delete",
                        object: r.key(),
                        source,
                    }
                    .into());
                }
            }
            self.done(row.seq, "deleted").await?;
            self.cx.say(idx, &format!("deleted {}", r.key())).await?;
        }
        Ok(())
    }

    /// The (ordinal, handle) pairs the confirmed plan releases in block `name`: an address
    /// reused by another pod since the plan has another handle, and is left alone.
    fn planned_ordinals(&self, name: &str) -> Result<Vec<(u32, String)>, RunError> {
        let plan: Value = serde_json::from_str(&self.cx.run.plan)
            .map_err(|e| RunError::Corrupt(format!("the run's plan: {e}")))?;
        let object = plan["objects"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|o| o["kind"] == "IPAMBlock" && o["name"] == name)
            .ok_or_else(|| RunError::Corrupt(format!("IPAMBlock/{name} is not in the plan")))?;
        object["changes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                let path = c["path"].as_str().unwrap_or_default();
                let ordinal = path
                    .strip_prefix("spec.allocations[")
                    .and_then(|p| p.split(']').next())
                    .and_then(|o| o.parse::<u32>().ok());
                let handle = c["before"]
                    .as_str()
                    .and_then(|b| b.split(": ").next())
                    .map(str::to_owned);
                ordinal.zip(handle).ok_or_else(|| {
                    RunError::Corrupt(format!("a planned change of IPAMBlock/{name}: {path}"))
                })
            })
            .collect()
    }

    /// Checks that no released address is held by its handle any more and every planned
    /// handle is gone.
    pub(super) async fn verify_release(&mut self, idx: i64) -> Result<(), RunError> {
        let mut still = Vec::new();
        let mut count = 0;
        for row in self.rows.clone() {
            let r = row_ref(&row);
            let api = self.resolver.api(&r).await?;
            let current = k8s::get(&api, &r).await?;
            match (row.kind.as_str(), current) {
                ("IPAMBlock", Some(block)) => {
                    for (ordinal, handle) in self.planned_ordinals(&row.name)? {
                        count += 1;
                        let mut probe = block.clone();
                        if !block::release(&mut probe, &[(ordinal, handle.clone())]).is_empty() {
                            still.push(format!("{} ordinal {ordinal} ({handle})", r.key()));
                        }
                    }
                }
                ("IPAMHandle", Some(_)) => still.push(format!("{} still exists", r.key())),
                _ => {}
            }
        }
        if still.is_empty() {
            self.cx
                .say(
                    idx,
                    &format!("{count} address(es) released, their handles gone"),
                )
                .await
        } else {
            Err(crate::runs::Failure::NotAsBefore {
                differ: format!("still allocated: {}", still.join("; ")),
            }
            .into())
        }
    }
}

/// Whether a row is an IPAM block (its restore merges, its verify checks allocations).
pub(super) fn is_ipam_block(kind: &str) -> bool {
    kind == "IPAMBlock"
}

/// `Value` of a block snapshot, for the rollback's merge.
pub(super) fn merge_back(current: &Value, before: &Value) -> (Value, block::Restored) {
    let mut merged = current.clone();
    let restored = block::restore(&mut merged, before);
    (merged, restored)
}
