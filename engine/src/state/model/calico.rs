//! Calico's records: its resources (pools, blocks, affinities, Felix configuration, cluster
//! information) read from either API group, kube-proxy's mode and calico-config's MTU (the
//! operator's records are in `operator.rs`). Every string field is a cluster's text: bounded
//! and neutralised.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::DynamicObject;
use serde::Serialize;
use serde_json::Value;

use super::SHORT_TEXT;
use crate::names::untrusted_text;

/// A Calico IPPool: kept as the page shows it.
pub type IpPoolInfo = grappe_views::PoolView;

/// A Calico IPAMBlock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpamBlockInfo {
    pub name: String,
    pub cidr: String,
    pub in_use: usize,
    pub size: usize,
    /// The node of its `host:NODE` affinity (none for a block without affinity).
    pub node: Option<String>,
    /// Each allocated address: its ordinal in the block and who holds it.
    pub allocations: Vec<Allocation>,
}

/// One allocated address of a block, as Calico's IPAM records it (its attribute).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Allocation {
    pub ordinal: u32,
    /// The IPAM handle (`k8s-pod-network.<container id>`, `ipip-tunnel-addr-<node>`).
    pub handle: String,
    /// The pod it was given to (`secondary.namespace` and `secondary.pod`).
    pub pod: Option<(String, String)>,
    /// The node it was allocated on (`secondary.node`).
    pub node: Option<String>,
    /// What it is for when not a pod (`secondary.type`: `ipipTunnelAddress`, ...).
    pub kind: Option<String>,
    /// When it was allocated (`secondary.timestamp`, Go's time format), unix seconds.
    pub at: Option<i64>,
}

/// Go's `time.Time` text as Calico's CNI writes it in an allocation's attribute
/// (`2026-12-05 16:45:45.123456789 +0000 UTC`), as unix seconds.
#[must_use]
pub fn go_time(text: &str) -> Option<i64> {
    let mut parts = text.split_whitespace();
    let (date, clock, offset) = (parts.next()?, parts.next()?, parts.next()?);
    let mut d = date.splitn(3, '-').map(str::parse::<i32>);
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut c = clock
        .split('.')
        .next()?
        .splitn(3, ':')
        .map(str::parse::<u8>);
    let (h, min, sec) = (c.next()?.ok()?, c.next()?.ok()?, c.next()?.ok()?);
    let sign: i8 = if offset.starts_with('-') { -1 } else { 1 };
    let digits = offset.trim_start_matches(['+', '-']);
    let (oh, om) = (
        digits.get(..2)?.parse::<i8>().ok()?,
        digits.get(2..4)?.parse::<i8>().ok()?,
    );
    let date = time::Date::from_calendar_date(
        y,
        time::Month::try_from(u8::try_from(m).ok()?).ok()?,
        u8::try_from(day).ok()?,
    )
    .ok()?;
    let at = date.with_hms(h, min, sec).ok()?;
    let offset = time::UtcOffset::from_hms(sign * oh, sign * om, 0).ok()?;
    Some(at.assume_offset(offset).unix_timestamp())
}

/// A Calico IPAMHandle: the allocations of one pod or tunnel, by handle id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpamHandleInfo {
    pub name: String,
    pub handle: String,
}

impl IpamHandleInfo {
    pub fn from_dynamic(o: &DynamicObject) -> Option<Self> {
        Some(Self {
            name: o.metadata.name.clone()?,
            handle: text(&spec(o)["handleID"]),
        })
    }
}

/// The most allocations kept per block: a /20 block (the smallest block size Calico allows)
/// has 4096 addresses.
const MAX_BLOCK_ADDRESSES: usize = 4096;

/// A Calico BlockAffinity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockAffinityInfo {
    pub name: String,
    pub node: String,
    pub cidr: String,
    pub state: String,
}

/// A BGPConfiguration: the mesh and the AS number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BgpConfigInfo {
    pub name: String,
    /// `nodeToNodeMeshEnabled` (true when unset, as Calico reads it).
    pub node_to_node_mesh: bool,
    pub as_number: Option<u32>,
}

impl BgpConfigInfo {
    pub fn from_dynamic(o: &DynamicObject) -> Option<Self> {
        let s = spec(o);
        Some(Self {
            name: o.metadata.name.clone()?,
            node_to_node_mesh: s["nodeToNodeMeshEnabled"].as_bool().unwrap_or(true),
            as_number: s["asNumber"].as_u64().and_then(|n| u32::try_from(n).ok()),
        })
    }
}

/// A BGPPeer: who peers with what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BgpPeerInfo {
    pub name: String,
    pub peer_ip: String,
    pub as_number: Option<u32>,
    pub node: String,
    pub node_selector: String,
    pub peer_selector: String,
}

impl BgpPeerInfo {
    pub fn from_dynamic(o: &DynamicObject) -> Option<Self> {
        let s = spec(o);
        Some(Self {
            name: o.metadata.name.clone()?,
            peer_ip: text(&s["peerIP"]),
            as_number: s["asNumber"].as_u64().and_then(|n| u32::try_from(n).ok()),
            node: text(&s["node"]),
            node_selector: text(&s["nodeSelector"]),
            peer_selector: text(&s["peerSelector"]),
        })
    }

    /// `name: nodes (selector) -> peer (IP or selector), AS n`.
    #[must_use]
    pub fn describe(&self) -> String {
        let from = [self.node.as_str(), self.node_selector.as_str()]
            .into_iter()
            .find(|s| !s.is_empty())
            .unwrap_or("every node");
        let to = [self.peer_ip.as_str(), self.peer_selector.as_str()]
            .into_iter()
            .find(|s| !s.is_empty())
            .unwrap_or("?");
        let asn = self
            .as_number
            .map(|n| format!(", AS {n}"))
            .unwrap_or_default();
        format!("{}: {from} -> {to}{asn}", self.name)
    }
}

/// Calico's ClusterInformation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterInfo {
    pub calico_version: String,
    pub datastore_ready: bool,
}

/// A FelixConfiguration: its name and the data plane it selects (`BPF` when `bpfEnabled`,
/// `Nftables` when `nftablesMode` is Enabled, else `Iptables`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FelixInfo {
    pub name: String,
    pub dataplane: &'static str,
    /// `wireguardEnabled`: node-to-node traffic is encrypted (and costs 60 bytes).
    pub wireguard: bool,
}

impl FelixInfo {
    pub fn from_dynamic(o: &DynamicObject) -> Option<Self> {
        let s = spec(o);
        let dataplane = if s["bpfEnabled"].as_bool() == Some(true) {
            "BPF"
        } else if s["nftablesMode"].as_str() == Some("Enabled") {
            "Nftables"
        } else {
            "Iptables"
        };
        Some(Self {
            name: o.metadata.name.clone()?,
            dataplane,
            wireguard: s["wireguardEnabled"].as_bool() == Some(true),
        })
    }
}

fn spec(o: &DynamicObject) -> &Value {
    &o.data["spec"]
}

/// A string field of a custom resource as it is kept (anyone with access to the resource
/// writes it): bounded and neutralised.
fn text(v: &Value) -> String {
    untrusted_text(v.as_str().unwrap_or_default(), SHORT_TEXT)
}

/// An IPPool from its dynamic object.
pub fn ip_pool(o: &DynamicObject) -> Option<IpPoolInfo> {
    let s = spec(o);
    Some(IpPoolInfo {
        name: o.metadata.name.clone()?,
        cidr: text(&s["cidr"]),
        block_size: s["blockSize"].as_i64().unwrap_or(26),
        ipip_mode: untrusted_text(s["ipipMode"].as_str().unwrap_or("Never"), SHORT_TEXT),
        vxlan_mode: untrusted_text(s["vxlanMode"].as_str().unwrap_or("Never"), SHORT_TEXT),
        nat_outgoing: s["natOutgoing"].as_bool().unwrap_or(false),
        disabled: s["disabled"].as_bool().unwrap_or(false),
    })
}

impl IpamBlockInfo {
    pub fn from_dynamic(o: &DynamicObject) -> Option<Self> {
        let s = spec(o);
        let slots = s["allocations"].as_array();
        let attributes = s["attributes"].as_array();
        let attribute = |i: u64| {
            usize::try_from(i)
                .ok()
                .and_then(|i| attributes.and_then(|a| a.get(i)))
        };
        let allocations: Vec<Allocation> = slots
            .into_iter()
            .flatten()
            .take(MAX_BLOCK_ADDRESSES)
            .enumerate()
            .filter_map(|(ordinal, slot)| {
                let attr = attribute(slot.as_u64()?);
                let secondary = attr.map(|a| &a["secondary"]);
                let field = |k: &str| {
                    secondary
                        .and_then(|s| s[k].as_str())
                        .filter(|v| !v.is_empty())
                        .map(|v| untrusted_text(v, SHORT_TEXT))
                };
                Some(Allocation {
                    ordinal: u32::try_from(ordinal).ok()?,
                    handle: attr.map(|a| text(&a["handle_id"])).unwrap_or_default(),
                    pod: field("namespace").zip(field("pod")),
                    node: field("node"),
                    kind: field("type"),
                    at: secondary
                        .and_then(|s| s["timestamp"].as_str())
                        .and_then(go_time),
                })
            })
            .collect();
        let node = s["affinity"]
            .as_str()
            .and_then(|a| a.strip_prefix("host:"))
            .map(|n| untrusted_text(n, SHORT_TEXT));
        Some(Self {
            name: o.metadata.name.clone()?,
            cidr: text(&s["cidr"]),
            in_use: allocations.len(),
            size: slots.map_or(0, Vec::len),
            node,
            allocations,
        })
    }
}

impl BlockAffinityInfo {
    pub fn from_dynamic(o: &DynamicObject) -> Option<Self> {
        let s = spec(o);
        Some(Self {
            name: o.metadata.name.clone()?,
            node: text(&s["node"]),
            cidr: text(&s["cidr"]),
            state: text(&s["state"]),
        })
    }
}

impl ClusterInfo {
    pub fn from_dynamic(o: &DynamicObject) -> Option<Self> {
        let s = spec(o);
        Some(Self {
            calico_version: text(&s["calicoVersion"]),
            datastore_ready: s["datastoreReady"].as_bool().unwrap_or(false),
        })
    }
}

/// Which API serves Calico's resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CalicoApi {
    /// `crd.projectcalico.org/v1` CRDs (manifest installs, the operator's default).
    Crd,
    /// Native `projectcalico.org/v3` CRDs (3.32's tech preview).
    NativeV3,
}

impl CalicoApi {
    /// The API group of this mode.
    #[must_use]
    pub fn group(self) -> &'static str {
        match self {
            Self::Crd => "crd.projectcalico.org",
            Self::NativeV3 => "projectcalico.org",
        }
    }

    /// The version of its resources.
    #[must_use]
    pub fn version(self) -> &'static str {
        match self {
            Self::Crd => "v1",
            Self::NativeV3 => "v3",
        }
    }

    /// The group/version people write.
    #[must_use]
    pub fn api_version(self) -> &'static str {
        match self {
            Self::Crd => "crd.projectcalico.org/v1",
            Self::NativeV3 => "projectcalico.org/v3",
        }
    }
}

/// kube-proxy's configured mode (`kube-system/kube-proxy`'s `config.conf`): `iptables`,
/// `ipvs` or `nftables` (an empty mode is iptables on Linux).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KubeProxyMode(pub String);

impl KubeProxyMode {
    pub fn from_configmap(cm: ConfigMap) -> Option<Self> {
        let conf = cm.data.unwrap_or_default().remove("config.conf")?;
        let mode = conf
            .lines()
            .find_map(|l| {
                let l = l.trim_end();
                (!l.starts_with(' ') && !l.starts_with('\t'))
                    .then(|| l.strip_prefix("mode:"))
                    .flatten()
            })
            .map(|m| m.trim().trim_matches(|c| c == '"' || c == '\''))
            .filter(|m| !m.is_empty())
            .unwrap_or("iptables");
        Some(Self(untrusted_text(mode, 64)))
    }
}

/// The pod MTU of a manifest install: `kube-system/calico-config`'s `veth_mtu` (`0`: Calico
/// detects it on each host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CalicoVethMtu(pub i64);

impl CalicoVethMtu {
    pub fn from_configmap(cm: ConfigMap) -> Option<Self> {
        let text = cm.data.unwrap_or_default().remove("veth_mtu")?;
        text.trim().trim_matches('"').parse().ok().map(Self)
    }
}
