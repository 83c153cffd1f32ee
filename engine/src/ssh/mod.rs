//! SSH to the node hosts of a cluster: inventory, pinned host keys and fixed command scripts.
//!
//! A node is reached at its InternalIP (from the live state), port 22, as the cluster's
//! configured user with the configured key, unless the cluster's inventory overrides that node.
//! Host keys are pinned in the database: an unknown or changed key is refused and its
//! fingerprint named, and only an admin's explicit trust (audited `ssh.trust`, re-checked
//! against the key the host presents at that moment) pins one. Every remote command is a
//! [`commands::Script`], a fixed template: nothing a user types reaches a shell. Output is
//! streamed to a callback, bounded, and the exit code and a timeout are checked. The key's
//! content never leaves this module (its path is all that is logged).

mod bird;
pub mod checks;
pub mod commands;
mod probe;
mod read;
mod session;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client;
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKey};
use serde::{Deserialize, Serialize};

use crate::audit::{Action, AuditEntry, AuditError, AuditLog, Caller, Outcome, Target};
use crate::names::{ClusterName, NodeName};
use crate::store::{Store, StoreError};

pub use commands::Script;
use session::Checker;
pub use session::{MAX_OUTPUT, Output, Session};

/// How Grappe reaches a cluster's node hosts (the cluster's `[clusters.ssh]` settings).
#[derive(Clone, PartialEq, Eq)]
pub struct SshSpec {
    /// Remote user; commands run through `sudo -n` unless it is root.
    pub user: String,
    /// Private key file (OpenSSH format, no passphrase).
    pub key: PathBuf,
    pub port: u16,
    pub connect_timeout: Duration,
    /// Longest a single command may run (kubeadm reset included).
    pub command_timeout: Duration,
    /// Per-node overrides, by node name.
    pub hosts: BTreeMap<String, HostOverride>,
    /// Two-person rule: a node reset waits for a second admin's approval.
    pub two_person_reset: bool,
}

impl std::fmt::Debug for SshSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshSpec")
            .field("user", &self.user)
            .field("key", &self.key)
            .field("port", &self.port)
            .field("hosts", &self.hosts.len())
            .finish_non_exhaustive()
    }
}

/// One node's entry in the inventory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostOverride {
    pub address: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
}

/// Where and as whom one node is reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub cluster: ClusterName,
    pub node: NodeName,
    pub address: String,
    pub port: u16,
    pub user: String,
}

impl Endpoint {
    /// `user@address:port`, for messages and previews.
    pub fn display(&self) -> String {
        format!("{}@{}:{}", self.user, self.address, self.port)
    }

    /// The address in a [`Endpoint::display`] text (a preview's), if it is one.
    pub fn address_in(display: &str) -> Option<&str> {
        display
            .rsplit_once('@')
            .and_then(|(_, host_port)| host_port.rsplit_once(':'))
            .map(|(address, _)| address)
    }
}

/// A host key as presented or pinned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostKey {
    /// e.g. `ssh-ed25519`.
    pub algorithm: String,
    /// `SHA256:...`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    /// The key in OpenSSH's one-line form (no comment).
    pub openssh: String,
}

impl HostKey {
    fn of(key: &PublicKey) -> Self {
        let mut bare = key.clone();
        bare.set_comment("");
        Self {
            algorithm: key.algorithm().as_str().to_owned(),
            fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
            openssh: bare.to_openssh().unwrap_or_default(),
        }
    }
}

/// Errors of SSH access.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("SSH is not configured for cluster {0}")]
    NotConfigured(String),
    #[error(
        "node {0} has no InternalIP in the cluster's state and no address in the SSH inventory"
    )]
    NoAddress(String),
    #[error("cannot read the SSH key {path}")]
    Key {
        path: PathBuf,
        #[source]
        source: russh::keys::Error,
    },
    #[error("cannot connect to {endpoint}")]
    Connect {
        endpoint: String,
        #[source]
        source: russh::Error,
    },
    #[error("no SSH answer from {endpoint} within {seconds} s")]
    ConnectTimeout { endpoint: String, seconds: u64 },
    #[error(
        "the host key of {node} ({endpoint}) is not trusted yet: {} {}; an admin can trust it after checking it on the host (ssh-keygen -lf /etc/ssh/ssh_host_{}_key.pub)",
        key.algorithm, key.fingerprint, key.algorithm.trim_start_matches("ssh-")
    )]
    UnknownHostKey {
        node: String,
        endpoint: String,
        key: Box<HostKey>,
    },
    #[error(
        "the host key of {node} ({endpoint}) has CHANGED: pinned {}, presented {} {}; refused (a reinstalled host, or someone in the middle)",
        pinned.fingerprint, presented.algorithm, presented.fingerprint
    )]
    ChangedHostKey {
        node: String,
        endpoint: String,
        pinned: Box<HostKey>,
        presented: Box<HostKey>,
    },
    #[error("{0} refused the key")]
    AuthRefused(String),
    #[error("SSH failed with {endpoint}")]
    Protocol {
        endpoint: String,
        #[source]
        source: russh::Error,
    },
    #[error("`{command}` on {node} did not finish within {seconds} s")]
    CommandTimeout {
        node: String,
        command: String,
        seconds: u64,
    },
    #[error(
        "{node} presents {presented}, not the key {confirmed} that was confirmed: nothing pinned"
    )]
    TrustMismatch {
        node: String,
        confirmed: String,
        presented: String,
    },
    #[error(
        "the pinned host key of {node} is no longer {planned}, the one the plan showed: nothing run"
    )]
    PinChanged { node: String, planned: String },
    #[error("{endpoint} answered: {message}")]
    Probe { endpoint: String, message: String },
    #[error("the audit log cannot be written, so nothing was pinned")]
    Audit(#[source] AuditError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SshError {
    /// The host key a trust decision is about (unknown or changed), if any.
    pub fn presented_key(&self) -> Option<&HostKey> {
        match self {
            Self::UnknownHostKey { key, .. } => Some(key),
            Self::ChangedHostKey { presented, .. } => Some(presented),
            _ => None,
        }
    }
}

/// SSH access for every configured cluster.
#[derive(Clone)]
pub struct Ssh {
    inner: Arc<Inner>,
}

struct Inner {
    specs: BTreeMap<String, SshSpec>,
    store: Store,
    audit: AuditLog,
}

impl std::fmt::Debug for Ssh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ssh")
            .field("clusters", &self.inner.specs.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Ssh {
    pub fn new(specs: BTreeMap<String, SshSpec>, store: Store, audit: AuditLog) -> Self {
        Self {
            inner: Arc::new(Inner {
                specs,
                store,
                audit,
            }),
        }
    }

    /// Whether node resets of `cluster` need a second admin's approval.
    pub fn two_person_reset(&self, cluster: &ClusterName) -> bool {
        self.inner
            .specs
            .get(cluster.as_str())
            .is_some_and(|s| s.two_person_reset)
    }

    /// Whether SSH is configured for `cluster`.
    pub fn configured(&self, cluster: &str) -> bool {
        self.inner.specs.contains_key(cluster)
    }

    /// Where `node` is reached: the inventory's override, else `internal_ip`.
    ///
    /// # Errors
    /// [`SshError::NotConfigured`], [`SshError::NoAddress`].
    pub fn endpoint(
        &self,
        cluster: &ClusterName,
        node: &NodeName,
        internal_ip: Option<&str>,
    ) -> Result<Endpoint, SshError> {
        let spec = self
            .inner
            .specs
            .get(cluster.as_str())
            .ok_or_else(|| SshError::NotConfigured(cluster.to_string()))?;
        let over = spec.hosts.get(node.as_str()).cloned().unwrap_or_default();
        let address = over
            .address
            .or_else(|| internal_ip.map(str::to_owned))
            .ok_or_else(|| SshError::NoAddress(node.to_string()))?;
        Ok(Endpoint {
            cluster: cluster.clone(),
            node: node.clone(),
            address,
            port: over.port.unwrap_or(spec.port),
            user: over.user.unwrap_or_else(|| spec.user.clone()),
        })
    }

    fn spec(&self, cluster: &ClusterName) -> Result<&SshSpec, SshError> {
        self.inner
            .specs
            .get(cluster.as_str())
            .ok_or_else(|| SshError::NotConfigured(cluster.to_string()))
    }

    /// The pinned host key of a node, if any.
    ///
    /// # Errors
    /// [`SshError::Store`].
    pub async fn pinned(&self, endpoint: &Endpoint) -> Result<Option<HostKey>, SshError> {
        let row = self
            .inner
            .store
            .host_key(endpoint.cluster.as_str(), endpoint.node.as_str())
            .await?;
        Ok(row.and_then(|openssh| {
            PublicKey::from_openssh(&openssh)
                .ok()
                .map(|k| HostKey::of(&k))
        }))
    }

    /// Opens a session, refusing an unknown or changed host key.
    ///
    /// # Errors
    /// [`SshError`]: the host key errors carry the presented key for a trust decision.
    pub async fn connect(&self, endpoint: &Endpoint) -> Result<Session, SshError> {
        let spec = self.spec(&endpoint.cluster)?;
        let pinned_text = self
            .inner
            .store
            .host_key(endpoint.cluster.as_str(), endpoint.node.as_str())
            .await?;
        let pinned = pinned_text.and_then(|t| PublicKey::from_openssh(&t).ok());
        let (handle, _) = self.handshake(spec, endpoint, pinned.clone()).await?;
        let mut handle = handle;
        let key =
            russh::keys::load_secret_key(&spec.key, None).map_err(|source| SshError::Key {
                path: spec.key.clone(),
                source,
            })?;
        let hash = handle
            .best_supported_rsa_hash()
            .await
            .map_err(|source| SshError::Protocol {
                endpoint: endpoint.display(),
                source,
            })?
            .flatten();
        let auth = handle
            .authenticate_publickey(
                endpoint.user.clone(),
                PrivateKeyWithHashAlg::new(Arc::new(key), hash),
            )
            .await
            .map_err(|source| SshError::Protocol {
                endpoint: endpoint.display(),
                source,
            })?;
        if !auth.success() {
            return Err(SshError::AuthRefused(endpoint.display()));
        }
        Ok(Session {
            handle,
            endpoint: endpoint.clone(),
            sudo: endpoint.user != "root",
            command_timeout: spec.command_timeout,
        })
    }

    /// Opens a session only while the pinned key is still `fingerprint`, the one a run's plan
    /// showed (a key trusted again since then must be confirmed by a new plan).
    ///
    /// # Errors
    /// [`SshError::PinChanged`], and as [`Ssh::connect`].
    pub async fn connect_planned(
        &self,
        endpoint: &Endpoint,
        fingerprint: &str,
    ) -> Result<Session, SshError> {
        let pinned = self.pinned(endpoint).await?;
        if pinned.as_ref().map(|k| k.fingerprint.as_str()) != Some(fingerprint) {
            return Err(SshError::PinChanged {
                node: endpoint.node.to_string(),
                planned: fingerprint.to_owned(),
            });
        }
        self.connect(endpoint).await
    }

    /// Connects far enough to see the host key; `pinned` decides whether it is accepted.
    async fn handshake(
        &self,
        spec: &SshSpec,
        endpoint: &Endpoint,
        pinned: Option<PublicKey>,
    ) -> Result<(client::Handle<Checker>, HostKey), SshError> {
        let presented = Arc::new(Mutex::new(None));
        let checker = Checker {
            pinned: pinned.clone(),
            presented: presented.clone(),
        };
        let config = Arc::new(client::Config {
            inactivity_timeout: Some(spec.command_timeout + Duration::from_secs(30)),
            ..client::Config::default()
        });
        let addr = (endpoint.address.as_str(), endpoint.port);
        let result =
            tokio::time::timeout(spec.connect_timeout, client::connect(config, addr, checker))
                .await;
        let seen = presented.lock().ok().and_then(|s| s.clone());
        match result {
            Err(_) => Err(SshError::ConnectTimeout {
                endpoint: endpoint.display(),
                seconds: spec.connect_timeout.as_secs(),
            }),
            Ok(Ok(handle)) => {
                let key = seen
                    .as_ref()
                    .map(HostKey::of)
                    .ok_or_else(|| SshError::Protocol {
                        endpoint: endpoint.display(),
                        source: russh::Error::UnknownKey,
                    })?;
                Ok((handle, key))
            }
            Ok(Err(source)) => match (seen, pinned) {
                (Some(presented), None) => Err(SshError::UnknownHostKey {
                    node: endpoint.node.to_string(),
                    endpoint: endpoint.display(),
                    key: Box::new(HostKey::of(&presented)),
                }),
                (Some(presented), Some(pinned)) if presented.key_data() != pinned.key_data() => {
                    Err(SshError::ChangedHostKey {
                        node: endpoint.node.to_string(),
                        endpoint: endpoint.display(),
                        pinned: Box::new(HostKey::of(&pinned)),
                        presented: Box::new(HostKey::of(&presented)),
                    })
                }
                _ => Err(SshError::Connect {
                    endpoint: endpoint.display(),
                    source,
                }),
            },
        }
    }

    /// Pins the key `endpoint` presents now, if its fingerprint is `confirmed` (what the admin
    /// saw and checked). Audited `ssh.trust` first; a replaced pin is named in the record.
    ///
    /// # Errors
    /// [`SshError::TrustMismatch`] when the host now presents another key; connection errors.
    pub async fn trust(
        &self,
        caller: &Caller,
        endpoint: &Endpoint,
        confirmed: &str,
    ) -> Result<HostKey, SshError> {
        let spec = self.spec(&endpoint.cluster)?;
        let presented = match self.handshake(spec, endpoint, None).await {
            Err(SshError::UnknownHostKey { key, .. }) => *key,
            Err(e) => return Err(e),
            Ok((_, key)) => key,
        };
        if presented.fingerprint != confirmed {
            return Err(SshError::TrustMismatch {
                node: endpoint.node.to_string(),
                confirmed: confirmed.to_owned(),
                presented: presented.fingerprint,
            });
        }
        let previous = self.pinned(endpoint).await?;
        let mut entry = AuditEntry::new(
            caller,
            Action::SshTrust,
            Target {
                cluster: Some(endpoint.cluster.to_string()),
                node: Some(endpoint.node.to_string()),
                object: Some(format!("host-key/{}", endpoint.address)),
            },
            Outcome::Success,
        )
        .detail("fingerprint", presented.fingerprint.clone())
        .detail("algorithm", presented.algorithm.clone())
        .detail("endpoint", endpoint.display());
        if let Some(p) = &previous {
            entry = entry.detail("replaces", p.fingerprint.clone());
        }
        let store = self.inner.store.clone();
        let key = presented.clone();
        let (cluster, node, address, actor) = (
            endpoint.cluster.to_string(),
            endpoint.node.to_string(),
            endpoint.address.clone(),
            caller.actor.clone(),
        );
        self.inner
            .audit
            .guarded(entry, async move {
                store
                    .pin_host_key(
                        &cluster,
                        &node,
                        &address,
                        &key.openssh,
                        &key.fingerprint,
                        &actor,
                    )
                    .await
            })
            .await
            .map_err(|e| match e {
                crate::audit::GuardedError::AuditUnavailable(a) => SshError::Audit(a),
                crate::audit::GuardedError::Action(s) => SshError::Store(s),
            })?;
        Ok(presented)
    }
}
