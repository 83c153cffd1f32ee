//! The steps that undo a run: restore what it changed, delete what it created (waiting until
//! gone), and verify that every object equals its snapshot from before.

use std::time::Duration;

use grappe_views::runs::Planned;

use super::*;
use crate::manifests::parse::Phase;
use crate::runs::k8s::{self, KubeError};
use crate::runs::step::{Next, Wait};
use crate::runs::{Failure, RunError};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams};

impl StepContext {
    /// Puts back, in apply order, what the target run changed or deleted.
    pub(super) async fn restore(&mut self, idx: i64) -> Result<(), RunError> {
        let mut order: Vec<usize> = (0..self.rows.len()).collect();
        order.sort_by_key(|&i| Phase::of(&self.rows[i].kind));
        for i in order {
            let row = self.rows[i].clone();
            if row.done.is_some() || !matches!(row.planned, Planned::Restore | Planned::Unchanged) {
                continue;
            }
            let Some(before) = self.target_before[i].clone() else {
                continue;
            };
            if self.cx.cancelled() {
                return Err(KubeError::Cancelled.into());
            }
            let r = row_ref(&row);
            let api = self.resolver.api(&r).await?;
            let current = k8s::get(&api, &r).await?;
            let what = match current {
                Some(c) if k8s::diff(&c, &before).1 == 0 => "unchanged",
                // An IPAM block is shared with every pod of its node: its released addresses
                // are put back where still free, what others allocated since is kept.
                Some(c) if super::leaks::is_ipam_block(&r.kind) => {
                    let (merged, done) = super::leaks::merge_back(&c, &before);
                    k8s::restore(&api, &r, &merged).await?;
                    if !done.taken.is_empty() {
                        self.cx
                            .say(
                                idx,
                                &format!(
                                    "{}: ordinals {:?} are another pod's now: left to it",
                                    r.key(),
                                    done.taken
                                ),
                            )
                            .await?;
                    }
                    "restored"
                }
                _ => k8s::restore(&api, &r, &before).await?,
            };
            self.done(row.seq, what).await?;
            self.cx.say(idx, &format!("{what} {}", r.key())).await?;
        }
        Ok(())
    }

    /// Deletes, workloads first and CRDs last, what is planned for deletion, waiting until
    /// each is gone.
    pub(super) async fn delete(&mut self, idx: i64) -> Result<(), RunError> {
        let mut order: Vec<usize> = (0..self.rows.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(Phase::of(&self.rows[i].kind)));
        for i in order {
            let row = self.rows[i].clone();
            if row.planned != Planned::Delete || row.done.is_some() {
                continue;
            }
            let r = row_ref(&row);
            let api = match self.resolver.api(&r).await {
                Ok(api) => api,
                Err(KubeError::UnknownKind { .. }) => {
                    self.done(row.seq, "absent").await?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if r.kind == "CustomResourceDefinition" {
                self.wait_served(idx, &r.name).await?;
            }
            let propagation = if Phase::of(&r.kind) == Phase::Custom {
                k8s::Propagation::Background
            } else {
                k8s::Propagation::Foreground
            };
            let gone = match k8s::delete(&api, &r, propagation).await? {
                Some(deleting) => {
                    self.wait_gone(idx, &deleting).await?;
                    if propagation == k8s::Propagation::Background {
                        self.wait_owned_namespaces(idx, &deleting).await?;
                    }
                    true
                }
                None => false,
            };
            let what = if gone { "deleted" } else { "absent" };
            self.done(row.seq, what).await?;
            self.cx.say(idx, &format!("{what} {}", r.key())).await?;
        }
        Ok(())
    }

    /// Waits (at most [`SERVED_TIMEOUT`]) until the custom resources of CRD `name` can be
    /// listed. Right after an API server restart (a recovery's rollback) their storage comes
    /// up after `/readyz` says ok; a CRD deleted before that has its cleanup finalizer fail
    /// ("could not confirm zero CustomResources remaining") and back off for minutes.
    async fn wait_served(&self, idx: i64, name: &str) -> Result<(), RunError> {
        let client = self.resolver.client().clone();
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        let crd = crds.get_opt(name).await.map_err(|source| KubeError::Call {
            verb: "get",
            object: format!("CustomResourceDefinition/{name}"),
            source,
        })?;
        let Some(crd) = crd else {
            return Ok(());
        };
        let Some(version) = crd.spec.versions.iter().find(|v| v.served) else {
            return Ok(());
        };
        let (group, plural) = (&crd.spec.group, &crd.spec.names.plural);
        let path = format!("/apis/{group}/{}/{plural}?limit=1", version.name);
        let wait = Wait::new(
            format!("{plural}.{group} to be served"),
            Duration::from_millis(500),
        )
        .timeout(SERVED_TIMEOUT)
        .report_every(WAITING_REPORT);
        let mut waiter = self.cx.waiter(idx, wait);
        loop {
            let request = http::Request::get(path.as_str())
                .body(Vec::new())
                .map_err(|e| RunError::Corrupt(format!("a request to {path}: {e}")))?;
            let Err(e) = client.request_text(request).await else {
                return Ok(());
            };
            // Not served in time: delete all the same, the deletion's own wait reports.
            if let Next::TimedOut(_) = waiter.not_yet(e.to_string()).await? {
                return Ok(());
            }
        }
    }

    /// Waits until a deleted object is gone, checking for cancellation every half second and
    /// saying every [`WAITING_REPORT`] what still holds it ([`k8s::holding`]).
    pub(super) async fn wait_gone(
        &self,
        idx: i64,
        deleting: &k8s::Deleting,
    ) -> Result<(), RunError> {
        let key = deleting.object().key();
        let wait = Wait::new(key.clone(), Duration::from_millis(500))
            .timeout(DELETE_TIMEOUT)
            .report_every(WAITING_REPORT);
        let mut waiter = self.cx.waiter(idx, wait);
        while let Some(current) = deleting.remaining().await? {
            if let Next::TimedOut(holding) = waiter.not_yet(k8s::holding(&current)).await? {
                return Err(KubeError::NotGone {
                    object: key,
                    seconds: DELETE_TIMEOUT.as_secs(),
                    holding,
                }
                .into());
            }
        }
        Ok(())
    }

    /// After a background deletion: waits until the namespaces the object owned are gone (the
    /// operator's calico-system, owned by its Installation). The garbage collector removes them
    /// only while the owner's kind can still be resolved: deleting the operator's CRDs before
    /// that leaves calico-system behind for good.
    async fn wait_owned_namespaces(
        &self,
        idx: i64,
        deleting: &k8s::Deleting,
    ) -> Result<(), RunError> {
        let Some(uid) = deleting.uid() else {
            return Ok(());
        };
        let namespaces: Api<Namespace> = Api::all(self.resolver.client().clone());
        let owned = || async {
            let list = namespaces
                .list(&ListParams::default())
                .await
                .map_err(|source| KubeError::Call {
                    verb: "list",
                    object: "Namespace".into(),
                    source,
                })?;
            Ok::<_, KubeError>(
                list.items
                    .into_iter()
                    .filter(|ns| {
                        ns.metadata
                            .owner_references
                            .iter()
                            .flatten()
                            .any(|o| o.uid == uid)
                    })
                    .filter_map(|ns| ns.metadata.name)
                    .collect::<Vec<_>>(),
            )
        };
        let what = format!("the namespaces {} owned", deleting.object().key());
        let wait = Wait::new(what.clone(), Duration::from_millis(500))
            .timeout(DELETE_TIMEOUT)
            .report_every(WAITING_REPORT);
        let mut waiter = self.cx.waiter(idx, wait);
        loop {
            let left = owned().await?;
            if left.is_empty() {
                return Ok(());
            }
            let line = format!("Namespace {} still there", left.join(", "));
            if let Next::TimedOut(holding) = waiter.not_yet(line).await? {
                return Err(KubeError::NotGone {
                    object: format!("Namespace/{}", left.join(", ")),
                    seconds: DELETE_TIMEOUT.as_secs(),
                    holding,
                }
                .into());
            }
        }
    }

    /// Compares every object with the target run's snapshot: the same, or absent if it did not
    /// exist.
    pub(super) async fn verify(&mut self, idx: i64) -> Result<(), RunError> {
        let mut differ = Vec::new();
        for (i, row) in self.rows.clone().iter().enumerate() {
            let r = row_ref(row);
            let current = match self.resolver.api(&r).await {
                Ok(api) => k8s::get(&api, &r).await?,
                Err(KubeError::UnknownKind { .. }) => None,
                Err(e) => return Err(e.into()),
            };
            match (&self.target_before[i], current) {
                (None, None) => {}
                (Some(b), Some(c)) if super::leaks::is_ipam_block(&r.kind) => {
                    let missing = crate::ipam::block::missing(&c, b);
                    if !missing.is_empty() {
                        differ.push(format!(
                            "{} does not hold ordinals {missing:?} again",
                            r.key()
                        ));
                    }
                }
                (Some(b), Some(c)) => {
                    let (changes, total) = k8s::diff(b, &c);
                    if total > 0 {
                        differ.push(format!(
                            "{} differs at {}",
                            r.key(),
                            changes
                                .iter()
                                .take(3)
                                .map(|c| c.path.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    }
                }
                (None, Some(_)) => differ.push(format!("{} still exists", r.key())),
                (Some(_), None) => differ.push(format!("{} is missing", r.key())),
            }
        }
        if differ.is_empty() {
            self.cx
                .say(
                    idx,
                    &format!(
                        "all {} objects equal their snapshot from before the run",
                        self.rows.len()
                    ),
                )
                .await
        } else {
            Err(Failure::NotAsBefore {
                differ: differ.join("; "),
            }
            .into())
        }
    }
}
