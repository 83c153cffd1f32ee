//! The configured clusters: a kube client per cluster and a reachability probe
//! (`GET /version` with a short timeout), cached briefly so that every page render does not hit
//! the API servers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde::Serialize;
use tokio::sync::Mutex;

use crate::audit::error_chain;
use crate::names::ClusterName;
use crate::time::{Timestamp, now};

/// How to reach one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    pub name: ClusterName,
    /// Path of the kubeconfig file (its content is never logged).
    pub kubeconfig: PathBuf,
    /// Context inside the kubeconfig; the file's current context when `None`.
    pub context: Option<String>,
}

/// Errors of cluster access.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("no cluster named {0} is configured")]
    Unknown(String),
    #[error("cannot load kubeconfig {path}")]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("cannot build a Kubernetes client")]
    Client(#[source] kube::Error),
}

/// Whether a cluster's API server answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Reachability {
    Reachable {
        /// `gitVersion` from `/version`.
        version: String,
        latency_ms: u64,
    },
    Unreachable {
        /// The error with its causes; safe to show (no credentials in it).
        error: String,
    },
}

/// A cluster's last probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterStatus {
    pub name: ClusterName,
    pub reachability: Reachability,
    pub checked_at: Timestamp,
}

/// How long a probe may take, and how long its answer is reused.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
const PROBE_FRESH_FOR: Duration = Duration::from_secs(5);

struct Entry {
    spec: ClusterSpec,
    client: Mutex<Option<Client>>,
    watch_client: Mutex<Option<Client>>,
    last: Mutex<Option<(Instant, ClusterStatus)>>,
}

/// The configured clusters. Cheap to clone.
#[derive(Clone)]
pub struct Clusters {
    entries: Arc<BTreeMap<ClusterName, Entry>>,
    order: Arc<Vec<ClusterName>>,
}

impl std::fmt::Debug for Clusters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.order.iter()).finish()
    }
}

impl Clusters {
    pub fn new(specs: Vec<ClusterSpec>) -> Self {
        let order = specs.iter().map(|s| s.name.clone()).collect();
        let entries = specs
            .into_iter()
            .map(|spec| {
                (
                    spec.name.clone(),
                    Entry {
                        spec,
                        client: Mutex::new(None),
                        watch_client: Mutex::new(None),
                        last: Mutex::new(None),
                    },
                )
            })
            .collect();
        Self {
            entries: Arc::new(entries),
            order: Arc::new(order),
        }
    }

    /// Names in configuration order.
    pub fn names(&self) -> &[ClusterName] {
        &self.order
    }

    pub fn spec(&self, name: &ClusterName) -> Option<&ClusterSpec> {
        self.entries.get(name).map(|e| &e.spec)
    }

    /// A client for `name`, built from its kubeconfig on first use.
    ///
    /// # Errors
    /// [`ClusterError::Unknown`], or the kubeconfig / client errors.
    pub async fn client(&self, name: &ClusterName) -> Result<Client, ClusterError> {
        self.cached(name, |e| &e.client, REQUEST_READ_TIMEOUT).await
    }

    /// A client for long-lived watches of `name`: its read timeout outlasts the server-side
    /// watch timeout (290 s), so a quiet watch is not mistaken for a dead server.
    ///
    /// # Errors
    /// As [`Clusters::client`].
    pub async fn watch_client(&self, name: &ClusterName) -> Result<Client, ClusterError> {
        self.cached(name, |e| &e.watch_client, WATCH_READ_TIMEOUT)
            .await
    }

    async fn cached(
        &self,
        name: &ClusterName,
        slot: impl Fn(&Entry) -> &Mutex<Option<Client>>,
        read_timeout: Duration,
    ) -> Result<Client, ClusterError> {
        let entry = self
            .entries
            .get(name)
            .ok_or_else(|| ClusterError::Unknown(name.to_string()))?;
        let mut cached = slot(entry).lock().await;
        if let Some(client) = cached.as_ref() {
            return Ok(client.clone());
        }
        let client = build_client(&entry.spec, read_timeout).await?;
        *cached = Some(client.clone());
        Ok(client)
    }

    /// The status of every cluster, probing those whose last answer is older than a few seconds
    /// (concurrently, each bounded by a short timeout).
    pub async fn statuses(&self) -> Vec<ClusterStatus> {
        let probes = self.order.iter().map(|name| self.status(name));
        futures::future::join_all(probes)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// The status of one cluster (cached for a few seconds).
    pub async fn status(&self, name: &ClusterName) -> Option<ClusterStatus> {
        let entry = self.entries.get(name)?;
        let mut last = entry.last.lock().await;
        if let Some((at, status)) = last.as_ref()
            && at.elapsed() < PROBE_FRESH_FOR
        {
            return Some(status.clone());
        }
        let status = self.probe(name).await;
        *last = Some((Instant::now(), status.clone()));
        Some(status)
    }

    /// Probes the cluster now (no cached answer), and caches the result.
    pub async fn status_now(&self, name: &ClusterName) -> Option<ClusterStatus> {
        let entry = self.entries.get(name)?;
        let status = self.probe(name).await;
        *entry.last.lock().await = Some((Instant::now(), status.clone()));
        Some(status)
    }

    async fn probe(&self, name: &ClusterName) -> ClusterStatus {
        let started = Instant::now();
        let reachability = match self.client(name).await {
            Err(e) => Reachability::Unreachable {
                error: error_chain(&e),
            },
            Ok(client) => {
                match tokio::time::timeout(PROBE_TIMEOUT, client.apiserver_version()).await {
                    Ok(Ok(info)) => Reachability::Reachable {
                        version: info.git_version,
                        latency_ms: u64::try_from(started.elapsed().as_millis())
                            .unwrap_or(u64::MAX),
                    },
                    Ok(Err(e)) => Reachability::Unreachable {
                        error: error_chain(&e),
                    },
                    Err(_) => Reachability::Unreachable {
                        error: format!(
                            "no answer from the API server within {} s",
                            PROBE_TIMEOUT.as_secs()
                        ),
                    },
                }
            }
        };
        if let Reachability::Unreachable { error } = &reachability {
            tracing::debug!(cluster = %name, %error, "cluster unreachable");
        }
        ClusterStatus {
            name: name.clone(),
            reachability,
            checked_at: now(),
        }
    }
}

/// How long a request may wait for bytes from the API server.
const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The same for watches, which stay quiet while nothing changes.
const WATCH_READ_TIMEOUT: Duration = Duration::from_secs(300);

async fn build_client(spec: &ClusterSpec, read_timeout: Duration) -> Result<Client, ClusterError> {
    let kubeconfig_err = |source| ClusterError::Kubeconfig {
        path: spec.kubeconfig.clone(),
        source,
    };
    let kubeconfig = Kubeconfig::read_from(&spec.kubeconfig).map_err(kubeconfig_err)?;
    let options = KubeConfigOptions {
        context: spec.context.clone(),
        ..KubeConfigOptions::default()
    };
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(kubeconfig_err)?;
    config.connect_timeout = Some(Duration::from_secs(2));
    config.read_timeout = Some(read_timeout);
    // kube retries 429/503/504 itself, up to 15 times with delays growing to 1000 s: a drain's
    // eviction refused by a PodDisruptionBudget (429) would hang silently, as kubectl's does.
    // Grappe's callers retry on their own terms and say why.
    config.default_retry = false;
    Client::try_from(config).map_err(ClusterError::Client)
}
