//! Configuration: built-in defaults, then an optional `grappe.toml`, then `GRAPPE_*` environment
//! variables. Every setting has a working default, so Grappe starts with no file at all.
//!
//! The configuration holds paths (database, kubeconfigs), never secrets; what it prints in logs
//! is those paths.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use grappe_engine::clusters::ClusterSpec;
use grappe_engine::names::ClusterName;
use grappe_engine::net::Cidr;
use serde::{Deserialize, Deserializer};

/// Errors while loading the configuration. Each names the file or variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid configuration file {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("invalid value for {var}: {reason}")]
    Env { var: String, reason: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Session lifetimes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSettings {
    /// A session unused for this long ends (e.g. "30m").
    #[serde(deserialize_with = "de_duration")]
    pub idle_timeout: Duration,
    /// A session ends this long after login, used or not (e.g. "12h").
    #[serde(deserialize_with = "de_duration")]
    pub absolute_lifetime: Duration,
    /// Starting a workflow run asks for the password again when the login is older than this
    /// (e.g. "5m"; "0s" asks every time).
    #[serde(deserialize_with = "de_duration")]
    pub reauth_after: Duration,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_lifetime: Duration::from_secs(12 * 3600),
            reauth_after: Duration::from_secs(5 * 60),
        }
    }
}

/// One cluster Grappe looks after.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSettings {
    pub name: ClusterName,
    pub kubeconfig: PathBuf,
    #[serde(default)]
    pub context: Option<String>,
    /// How the cluster's node hosts are reached over SSH (none: no host checks, resets or
    /// recovery).
    #[serde(default)]
    pub ssh: Option<SshSettings>,
}

/// A cluster's `[clusters.ssh]` table: the SSH inventory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshSettings {
    /// Remote user (commands run through `sudo -n` unless it is root).
    #[serde(default = "default_ssh_user")]
    pub user: String,
    /// Private key file (OpenSSH format, without passphrase), relative to the configuration file.
    pub key: PathBuf,
    #[serde(default = "default_ssh_port")]
    pub port: u16,
    #[serde(default = "default_connect_timeout", deserialize_with = "de_duration")]
    pub connect_timeout: Duration,
    #[serde(default = "default_command_timeout", deserialize_with = "de_duration")]
    pub command_timeout: Duration,
    /// Per-node overrides: `[clusters.ssh.hosts.<node>]` with `address`, `port`, `user`.
    #[serde(default)]
    pub hosts: std::collections::BTreeMap<String, grappe_engine::ssh::HostOverride>,
    /// Two-person rule: a node reset waits until a second admin approves it.
    #[serde(default)]
    pub reset_needs_second_admin: bool,
}

fn default_ssh_user() -> String {
    "root".to_owned()
}
fn default_ssh_port() -> u16 {
    22
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_command_timeout() -> Duration {
    Duration::from_secs(300)
}

/// A user name a remote shell accepts as it is.
fn valid_unix_user(user: &str) -> bool {
    let mut chars = user.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && user.len() <= 32
}

/// All settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// The SQLite database file (created if missing).
    pub database: PathBuf,
    /// Where the compiled site (wasm, JS, CSS) is served from.
    pub site_root: PathBuf,
    /// Set when Grappe is served over TLS (directly or behind a TLS proxy): cookies get `Secure`
    /// and the `__Host-` prefix.
    pub secure_cookies: bool,
    /// Origins allowed to send state-changing requests besides the request's own host, e.g.
    /// `https://grappe.example.org` behind a reverse proxy.
    pub allowed_origins: Vec<String>,
    /// The URL people open Grappe at (`https://grappe.example.org`): its origin may post and its
    /// host is answered for. Requests naming another host name are refused (DNS rebinding);
    /// address literals and `localhost` are always answered.
    pub public_url: Option<String>,
    /// More host names answered for (e.g. an internal name beside the public one).
    pub allowed_hosts: Vec<String>,
    /// The reverse proxies in front of Grappe (CIDRs). A request from one of them has its
    /// client address taken from `X-Forwarded-For`: the right-most address not in this list
    /// (what the client wrote itself comes first and is never believed). Empty: the header is
    /// never read.
    #[serde(deserialize_with = "de_cidrs")]
    pub trusted_proxies: Vec<Cidr>,
    pub log_format: LogFormat,
    pub session: SessionSettings,
    pub clusters: Vec<ClusterSettings>,
    /// Base URL serving the catalog's CNI manifests by file name (e.g.
    /// `https://mirror.example.org/cni` with `calico-v3.25.1.yaml` under it), for sites without
    /// access to GitHub. Checksums are verified all the same.
    pub manifest_mirror: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database: PathBuf::from("data/grappe.db"),
            site_root: PathBuf::from("target/site"),
            secure_cookies: false,
            allowed_origins: Vec::new(),
            public_url: None,
            allowed_hosts: Vec::new(),
            trusted_proxies: Vec::new(),
            log_format: LogFormat::default(),
            session: SessionSettings::default(),
            clusters: Vec::new(),
            manifest_mirror: None,
        }
    }
}

impl Settings {
    /// Loads the file (if any) then applies the process environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file or variable that is wrong.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("GRAPPE_"))
            .collect();
        Self::load_with_env(file, &env)
    }

    /// Like [`Settings::load`], with the environment given (for tests).
    ///
    /// # Errors
    /// [`ConfigError`] naming the file or variable that is wrong.
    pub fn load_with_env(
        file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let mut settings = match file {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        settings.apply_env(env)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Settings from a configuration file's text and the `GRAPPE_*` variables `env`, validated
    /// (what `load` does once it has read the file; relative paths stay relative).
    ///
    /// # Errors
    /// [`ConfigError`] naming what is wrong.
    pub fn parse(text: &str, env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut settings: Self = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: "(text)".into(),
            source: Box::new(source),
        })?;
        settings.apply_env(env)?;
        settings.validate()?;
        Ok(settings)
    }

    fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut settings: Self = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        // Relative kubeconfig paths are relative to the configuration file.
        if let Some(dir) = path.parent() {
            for c in &mut settings.clusters {
                if c.kubeconfig.is_relative() {
                    c.kubeconfig = dir.join(&c.kubeconfig);
                }
                if let Some(ssh) = &mut c.ssh
                    && ssh.key.is_relative()
                {
                    ssh.key = dir.join(&ssh.key);
                }
            }
        }
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.public_url {
            public_origin(url).map_err(ConfigError::Invalid)?;
        }
        if self.session.idle_timeout.is_zero() || self.session.absolute_lifetime.is_zero() {
            return Err(ConfigError::Invalid(
                "session timeouts must be greater than zero".to_owned(),
            ));
        }
        if self.session.idle_timeout > self.session.absolute_lifetime {
            return Err(ConfigError::Invalid(
                "session.idle_timeout is longer than session.absolute_lifetime".to_owned(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for c in &self.clusters {
            if !seen.insert(&c.name) {
                return Err(ConfigError::Invalid(format!(
                    "cluster {} is configured twice",
                    c.name
                )));
            }
            if let Some(ssh) = &c.ssh {
                let bad = |what: String| {
                    ConfigError::Invalid(format!("clusters.ssh of {}: {what}", c.name))
                };
                let users = std::iter::once(&ssh.user)
                    .chain(ssh.hosts.values().filter_map(|h| h.user.as_ref()));
                for user in users {
                    if !valid_unix_user(user) {
                        return Err(bad(format!("user {user:?} is not a valid user name")));
                    }
                }
                for (node, host) in &ssh.hosts {
                    grappe_engine::names::NodeName::parse(node)
                        .map_err(|e| bad(format!("hosts.{node}: {e}")))?;
                    if let Some(address) = &host.address
                        && (address.is_empty()
                            || address.starts_with('-')
                            || address.chars().any(|ch| ch.is_whitespace()))
                    {
                        return Err(bad(format!(
                            "hosts.{node}.address {address:?} is not an address"
                        )));
                    }
                }
                if let Err(e) = std::fs::metadata(&ssh.key) {
                    return Err(bad(format!(
                        "key {} cannot be read: {e}",
                        ssh.key.display()
                    )));
                }
            }
        }
        Ok(())
    }

    /// The origins allowed to post besides the request's own host: `allowed_origins` and the
    /// origin of `public_url`.
    pub fn post_origins(&self) -> Vec<String> {
        let mut origins = self.allowed_origins.clone();
        origins.extend(
            self.public_url
                .as_deref()
                .and_then(|u| public_origin(u).ok()),
        );
        origins
    }

    /// The host names answered for: those of `public_url`, `allowed_origins` and
    /// `allowed_hosts` (address literals and `localhost` always are).
    pub fn host_policy(&self) -> crate::http::host::HostPolicy {
        let urls = self.public_url.iter().chain(&self.allowed_origins);
        crate::http::host::HostPolicy::new(
            urls.map(String::as_str),
            self.allowed_hosts.iter().map(String::as_str),
        )
    }

    /// The SSH inventories as the engine wants them, by cluster name.
    pub fn ssh_specs(&self) -> std::collections::BTreeMap<String, grappe_engine::ssh::SshSpec> {
        self.clusters
            .iter()
            .filter_map(|c| {
                let s = c.ssh.as_ref()?;
                Some((
                    c.name.to_string(),
                    grappe_engine::ssh::SshSpec {
                        user: s.user.clone(),
                        key: s.key.clone(),
                        port: s.port,
                        connect_timeout: s.connect_timeout,
                        command_timeout: s.command_timeout,
                        hosts: s.hosts.clone(),
                        two_person_reset: s.reset_needs_second_admin,
                    },
                ))
            })
            .collect()
    }

    /// The clusters as the engine wants them.
    pub fn cluster_specs(&self) -> Vec<ClusterSpec> {
        self.clusters
            .iter()
            .map(|c| ClusterSpec {
                name: c.name.clone(),
                kubeconfig: c.kubeconfig.clone(),
                context: c.context.clone(),
            })
            .collect()
    }
}

fn parse_cidrs<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<Vec<Cidr>, String> {
    values
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<Cidr>().map_err(|e| e.to_string()))
        .collect()
}

fn de_cidrs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Cidr>, D::Error> {
    let texts = Vec::<String>::deserialize(d)?;
    parse_cidrs(texts.iter().map(String::as_str)).map_err(serde::de::Error::custom)
}

fn comma_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The origin (`scheme://host[:port]`) of a `public_url`, or why it is not one.
pub fn public_origin(url: &str) -> Result<String, String> {
    let bad =
        |why: &str| format!("public_url {url:?} {why} (expected e.g. https://grappe.example.org)");
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("has no scheme"))?;
    if scheme != "http" && scheme != "https" {
        return Err(bad("is not http or https"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let parsed: http::uri::Authority = authority.parse().map_err(|_| bad("has no host"))?;
    if authority.is_empty() || authority.contains('@') {
        return Err(bad("must name a host and no credentials"));
    }
    Ok(format!(
        "{scheme}://{}",
        parsed.as_str().to_ascii_lowercase()
    ))
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(format!("{other:?} is not a boolean (true/false)")),
    }
}

/// Parses `90s`, `30m`, `12h`, `1d` or a bare number of seconds.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{value:?} is not a duration (e.g. 90s, 30m, 12h)"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(format!("{value:?}: unit must be s, m, h or d")),
    };
    Ok(Duration::from_secs(secs))
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

/// Parses `name=path[#context],name2=path2`.
fn parse_clusters(value: &str) -> Result<Vec<ClusterSettings>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let (name, rest) = item
                .split_once('=')
                .ok_or_else(|| format!("{item:?} is not name=kubeconfig[#context]"))?;
            let name = ClusterName::parse(name.trim()).map_err(|e| e.to_string())?;
            let (path, context) = match rest.split_once('#') {
                Some((p, c)) => (p, Some(c.to_owned())),
                None => (rest, None),
            };
            if path.is_empty() {
                return Err(format!("{item:?}: the kubeconfig path is empty"));
            }
            Ok(ClusterSettings {
                name,
                kubeconfig: PathBuf::from(path),
                context,
                ssh: None,
            })
        })
        .collect()
}

mod env;
#[cfg(test)]
mod tests;
