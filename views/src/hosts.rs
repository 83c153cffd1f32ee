//! A node's host as seen over SSH: the read-only check (kubelet, CNI files, iptables, IPVS) and
//! the SSH state of the node (where it is reached, its pinned host key, a key awaiting trust).

use serde::{Deserialize, Serialize};

/// The kubelet as `systemctl status kubelet` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeletView {
    pub active: bool,
    /// The `Active:` line, e.g. `active (running) since ...`.
    pub state: String,
    /// The status text (first lines).
    pub status: String,
    /// Recent journal lines that mention calico (the seed's check after an install).
    pub calico_lines: Vec<String>,
}

/// One entry of a directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    /// `file`, `dir`, `link` or `other`.
    pub kind: String,
    pub size: u64,
    /// Modification time, RFC 3339 UTC.
    pub modified: String,
}

/// One of the CNI directories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirView {
    pub path: String,
    pub present: bool,
    /// The first entries by name (at most 200).
    pub entries: Vec<FileEntry>,
    /// How many entries the directory has.
    #[serde(default)]
    pub total: usize,
}

/// A CNI configuration file and its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfFileView {
    pub path: String,
    pub content: String,
}

/// Rule and chain counts of one iptables table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableView {
    pub table: String,
    pub rules: u64,
    pub chains: u64,
    pub error: Option<String>,
}

/// The IPVS tables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpvsView {
    /// ipvsadm is installed.
    pub installed: bool,
    pub services: u64,
    pub destinations: u64,
    pub error: Option<String>,
}

/// One read-only check of a node's host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostCheckView {
    pub id: i64,
    pub node: String,
    /// `user@address:port`.
    pub endpoint: String,
    pub actor: String,
    /// RFC 3339 UTC.
    pub at: String,
    pub duration_ms: u64,
    pub kubelet: KubeletView,
    pub dirs: Vec<DirView>,
    /// The first CNI configuration files in the order the kubelet reads them (at most 10).
    pub conf_files: Vec<ConfFileView>,
    /// How many there are.
    #[serde(default)]
    pub conf_files_total: usize,
    pub iptables: Vec<TableView>,
    pub ipvs: IpvsView,
    /// The interface of the default route (checks made before Grappe read it have none).
    #[serde(default)]
    pub uplink: Option<String>,
    /// The host's links and their MTUs: the uplink, Calico's tunnels and the first
    /// workload links (`cali*`).
    #[serde(default)]
    pub links: Vec<(String, u32)>,
}

impl HostCheckView {
    /// Whether any CNI configuration is on the host.
    pub fn has_cni_config(&self) -> bool {
        self.dirs
            .iter()
            .any(|d| d.path == "/etc/cni/net.d" && d.entries.iter().any(|e| e.kind == "file"))
    }

    pub fn iptables_rules(&self) -> u64 {
        self.iptables.iter().map(|t| t.rules).sum()
    }
}

/// A host key, as presented or pinned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostKeyView {
    pub algorithm: String,
    /// `SHA256:...`.
    pub fingerprint: String,
}

/// The SSH side of a node's page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostView {
    /// SSH is configured for the cluster.
    pub configured: bool,
    /// `user@address:port`, when the node can be reached.
    pub endpoint: Option<String>,
    pub pinned: Option<HostKeyView>,
    /// The last checks, newest first.
    pub checks: Vec<HostCheckView>,
}
