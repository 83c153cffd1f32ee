//! One resource's watch fed into the cluster's tables: a task per watch, aborted when dropped,
//! that resets a table after each (re)list and applies changes as they come, with kube-runtime's
//! backoff on errors. Shared by the typed watches (`watch.rs`) and the dynamic ones of the
//! CRD-defined resources (`crds.rs`).

use std::fmt::Debug;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use kube::runtime::watcher::{self, Event as WatchEvent};
use kube::runtime::{WatchStreamExt, watcher as make_watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;

use super::ClusterState;
use super::store::{Change, Stores};
use crate::audit::error_chain;

/// A watch task, aborted when dropped (a cluster's watches end together).
pub(super) struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(super) fn spawn_typed<K, T>(
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
    state.update(|s| {
        s.reading.insert(resource.to_owned());
        false
    });
    loop {
        match stream.try_next().await {
            Ok(Some(event)) => match event {
                WatchEvent::Init => buffer.clear(),
                WatchEvent::InitApply(obj) => buffer.extend(slim(obj)),
                WatchEvent::InitDone => {
                    let items = std::mem::take(&mut buffer);
                    state.update(|s| {
                        let changed = apply(s, Change::Reset(items));
                        s.reading.remove(resource) || changed
                    });
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
