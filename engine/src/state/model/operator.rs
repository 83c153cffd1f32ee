//! The Tigera operator's records (`TigeraStatus`, the `Installation`) and the Calico API
//! server's `APIService`. Every string field is a cluster's text: bounded and neutralised.

use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::api::DynamicObject;
use serde::Serialize;

use super::SHORT_TEXT;
use crate::names::untrusted_text;

/// A `TigeraStatus`: the operator's report of one component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TigeraStatusInfo {
    pub name: String,
    pub available: bool,
    pub progressing: bool,
    pub degraded: bool,
    /// The reason and message of the condition that tells most (Degraded, else Progressing,
    /// else Available).
    pub reason: String,
    pub message: String,
    /// When that condition last changed (Unix seconds).
    pub since: i64,
}

impl TigeraStatusInfo {
    pub fn from_dynamic(o: &DynamicObject) -> Option<Self> {
        let conditions = o.data["status"]["conditions"].as_array();
        let find = |kind: &str| {
            conditions.and_then(|c| {
                c.iter()
                    .find(|c| c["type"] == kind && c["status"] == "True")
            })
        };
        let (available, progressing, degraded) =
            (find("Available"), find("Progressing"), find("Degraded"));
        let telling = degraded.or(progressing).or(available);
        let field = |k: &str| {
            untrusted_text(
                telling.and_then(|c| c[k].as_str()).unwrap_or_default(),
                1024,
            )
        };
        Some(Self {
            name: o.metadata.name.clone()?,
            available: available.is_some(),
            progressing: progressing.is_some(),
            degraded: degraded.is_some(),
            reason: field("reason"),
            message: field("message"),
            since: telling
                .and_then(|c| c["lastTransitionTime"].as_str())
                .and_then(|t| crate::time::Timestamp::parse(t).ok())
                .map_or(0, |t| {
                    t.unix_seconds().min(crate::time::now().unix_seconds())
                }),
        })
    }

    /// `Available`, `Progressing`, `Degraded` or `Unknown`, as `kubectl get tigerastatus` reads.
    #[must_use]
    pub fn state(&self) -> &'static str {
        if self.degraded {
            "Degraded"
        } else if self.available {
            // The operator keeps Progressing true for a while after a component is Available
            // (a rollout still settling); `kubectl wait --for=condition=Available` passes then.
            "Available"
        } else if self.progressing {
            "Progressing"
        } else {
            "Unknown"
        }
    }
}

/// The operator's `Installation` (`default`): the settings people look for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InstallationInfo {
    /// Each pool: CIDR, block size, encapsulation.
    pub pools: Vec<(String, i64, String)>,
    pub mtu: Option<i64>,
    /// `Iptables`, `Nftables`, `BPF`, `VPP` (the spec's, `Iptables` when unset).
    pub dataplane: String,
    /// The Calico version the operator reports it runs.
    pub calico_version: Option<String>,
}

impl InstallationInfo {
    pub fn from_dynamic(o: &DynamicObject) -> Option<Self> {
        let net = &o.data["spec"]["calicoNetwork"];
        let pools = net["ipPools"]
            .as_array()
            .map(|pools| {
                pools
                    .iter()
                    .map(|p| {
                        (
                            untrusted_text(p["cidr"].as_str().unwrap_or_default(), SHORT_TEXT),
                            p["blockSize"].as_i64().unwrap_or(26),
                            untrusted_text(
                                p["encapsulation"].as_str().unwrap_or("IPIP"),
                                SHORT_TEXT,
                            ),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let status = &o.data["status"];
        Some(Self {
            pools,
            mtu: net["mtu"].as_i64().or_else(|| status["mtu"].as_i64()),
            dataplane: untrusted_text(
                net["linuxDataplane"].as_str().unwrap_or("Iptables"),
                SHORT_TEXT,
            ),
            calico_version: status["calicoVersion"]
                .as_str()
                .map(|v| untrusted_text(v, SHORT_TEXT)),
        })
        .filter(|_| o.metadata.name.as_deref() == Some("default"))
    }
}

/// The Calico API server's `APIService` (`v3.projectcalico.org`): whether it is Available.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiServiceInfo {
    pub available: bool,
    pub message: String,
}

impl ApiServiceInfo {
    pub fn from_apiservice(a: APIService) -> Option<Self> {
        let conditions = a.status.and_then(|s| s.conditions).unwrap_or_default();
        let available = conditions.iter().find(|c| c.type_ == "Available");
        Some(Self {
            available: available.is_some_and(|c| c.status == "True"),
            message: untrusted_text(
                available
                    .and_then(|c| c.message.as_deref())
                    .unwrap_or("no Available condition"),
                1024,
            ),
        })
    }
}
