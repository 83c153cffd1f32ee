//! The Tigera operator's custom resources made from a plan's options: the `Installation`
//! named default (its IP pool, block size, encapsulation, MTU and node address
//! autodetection) and the optional `APIServer`, `Goldmane` and `Whisker` that upstream's
//! `custom-resources.yaml` adds. Field names and allowed values follow the operator's API
//! reference (docs.tigera.io/calico/latest/reference/installation/api).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::parse::ManifestObject;
use crate::net::Cidr;

/// The encapsulations an IP pool of the `Installation` accepts.
pub const ENCAPSULATIONS: [&str; 5] = [
    "IPIP",
    "IPIPCrossSubnet",
    "VXLAN",
    "VXLANCrossSubnet",
    "None",
];

/// What upstream's custom-resources.yaml sets when the plan says nothing.
const DEFAULT_BLOCK_SIZE: u8 = 26;
const DEFAULT_ENCAPSULATION: &str = "VXLANCrossSubnet";

/// The options of an operator install besides the pool and the autodetection, which are the
/// install's own (`ipv4pool_cidr`, `ip_autodetection_method`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorOptions {
    /// The pool's block size (IPv4: 20 to 32; 26 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size: Option<u8>,
    /// One of [`ENCAPSULATIONS`] (VXLANCrossSubnet by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encapsulation: Option<String>,
    /// The pods' MTU (the operator picks one when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// The Calico API server (`APIServer`): serves `projectcalico.org/v3` through the API.
    #[serde(default)]
    pub apiserver: bool,
    /// Goldmane, the flow aggregator.
    #[serde(default)]
    pub goldmane: bool,
    /// Whisker, the flow UI (reads Goldmane).
    #[serde(default)]
    pub whisker: bool,
}

/// An option the operator would refuse, said before anything is applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    #[error("block size {0}: an IPv4 pool's block size is 20 to 32")]
    BlockSize(u8),
    #[error("block size /{block} is larger than the pool {pool}")]
    BlockLargerThanPool { block: u8, pool: String },
    #[error("encapsulation {0:?}: one of IPIP, IPIPCrossSubnet, VXLAN, VXLANCrossSubnet, None")]
    Encapsulation(String),
    #[error("MTU {0}: 576 to 9216")]
    Mtu(u32),
    #[error(
        "node address autodetection {0:?}: first-found, kubernetes-internal-ip, can-reach=DEST, interface=REGEX, skip-interface=REGEX or cidr=CIDR[,CIDR]"
    )]
    Autodetection(String),
    #[error("Whisker shows Goldmane's flows: enable Goldmane too")]
    WhiskerWithoutGoldmane,
}

impl OperatorOptions {
    /// The options as the plan shows them (name, value), defaults included.
    #[must_use]
    pub fn shown(&self) -> Vec<(String, String)> {
        let mut out = vec![
            (
                "blockSize".to_owned(),
                self.block_size.unwrap_or(DEFAULT_BLOCK_SIZE).to_string(),
            ),
            (
                "encapsulation".to_owned(),
                self.encapsulation
                    .clone()
                    .unwrap_or_else(|| DEFAULT_ENCAPSULATION.into()),
            ),
        ];
        if let Some(mtu) = self.mtu {
            out.push(("mtu".into(), mtu.to_string()));
        }
        let components: Vec<&str> = [
            (self.apiserver, "APIServer"),
            (self.goldmane, "Goldmane"),
            (self.whisker, "Whisker"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        if !components.is_empty() {
            out.push(("components".into(), components.join(", ")));
        }
        out
    }

    /// The custom resources for a pool `cidr` and an autodetection method (Calico's
    /// `IP_AUTODETECTION_METHOD` syntax), in apply order.
    ///
    /// # Errors
    /// [`OptionError`] for a value the operator would refuse.
    pub fn custom_resources(
        &self,
        cidr: &Cidr,
        autodetection: Option<&str>,
    ) -> Result<Vec<ManifestObject>, OptionError> {
        let block = self.block_size.unwrap_or(DEFAULT_BLOCK_SIZE);
        if !(20..=32).contains(&block) {
            return Err(OptionError::BlockSize(block));
        }
        if block < cidr.prefix_len() {
            return Err(OptionError::BlockLargerThanPool {
                block,
                pool: cidr.to_string(),
            });
        }
        let encapsulation = self
            .encapsulation
            .as_deref()
            .unwrap_or(DEFAULT_ENCAPSULATION);
        if !ENCAPSULATIONS.contains(&encapsulation) {
            return Err(OptionError::Encapsulation(encapsulation.to_owned()));
        }
        if self.whisker && !self.goldmane {
            return Err(OptionError::WhiskerWithoutGoldmane);
        }
        let mut network = json!({
            "ipPools": [{
                "name": "default-ipv4-ippool",
                "blockSize": block,
                "cidr": cidr.to_string(),
                "encapsulation": encapsulation,
                "natOutgoing": "Enabled",
                "nodeSelector": "all()",
            }],
        });
        if let Some(mtu) = self.mtu {
            if !(576..=9216).contains(&mtu) {
                return Err(OptionError::Mtu(mtu));
            }
            network["mtu"] = json!(mtu);
        }
        if let Some(method) = autodetection {
            network["nodeAddressAutodetectionV4"] = autodetection_v4(method)?;
        }
        let mut objects = vec![custom("Installation", json!({ "calicoNetwork": network }))];
        for (on, kind) in [
            (self.apiserver, "APIServer"),
            (self.goldmane, "Goldmane"),
            (self.whisker, "Whisker"),
        ] {
            if on {
                objects.push(custom(kind, json!({})));
            }
        }
        Ok(objects)
    }
}

/// Calico's `IP_AUTODETECTION_METHOD` text as the Installation's `nodeAddressAutodetectionV4`.
fn autodetection_v4(method: &str) -> Result<Value, OptionError> {
    let bad = || OptionError::Autodetection(method.to_owned());
    let (name, arg) = method.split_once('=').unwrap_or((method, ""));
    let arg = arg.trim();
    Ok(match (name.trim(), arg.is_empty()) {
        ("first-found", true) => json!({ "firstFound": true }),
        ("kubernetes-internal-ip", true) => json!({ "kubernetes": "NodeInternalIP" }),
        ("can-reach", false) => json!({ "canReach": arg }),
        ("interface", false) => json!({ "interface": arg }),
        ("skip-interface", false) => json!({ "skipInterface": arg }),
        ("cidr", false) => {
            let cidrs = arg
                .split(',')
                .map(|c| {
                    c.trim()
                        .parse::<Cidr>()
                        .map(|c| c.to_string())
                        .map_err(|_| bad())
                })
                .collect::<Result<Vec<_>, _>>()?;
            json!({ "cidrs": cidrs })
        }
        _ => return Err(bad()),
    })
}

/// The `Installation` of a migration: an empty spec, so that the operator takes the existing
/// install's settings (pools, encapsulation, MTU, autodetection: its `migration/convert`) and
/// moves calico-node from kube-system node by node. Any field set here would override what it
/// reads, and a mismatch would leave the cluster half-moved.
#[must_use]
pub fn migration_installation() -> ManifestObject {
    custom("Installation", json!({}))
}

fn custom(kind: &str, spec: Value) -> ManifestObject {
    let value = json!({
        "apiVersion": "operator.tigera.io/v1",
        "kind": kind,
        "metadata": { "name": "default" },
        "spec": spec,
    });
    // Made here, not read from a file: no document or line.
    ManifestObject {
        doc: 0,
        line: 0,
        api_version: "operator.tigera.io/v1".into(),
        kind: kind.into(),
        namespace: None,
        name: "default".into(),
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> Cidr {
        "10.244.0.0/16".parse().expect("a CIDR")
    }

    #[test]
    fn the_installation_says_what_the_plan_chose() {
        let options = OperatorOptions {
            block_size: Some(24),
            encapsulation: Some("IPIP".into()),
            mtu: Some(1440),
            ..OperatorOptions::default()
        };
        let objects = options
            .custom_resources(&pool(), Some("interface=eth.*"))
            .expect("valid options");
        assert_eq!(objects.len(), 1);
        let spec = &objects[0].value["spec"]["calicoNetwork"];
        assert_eq!(spec["ipPools"][0]["cidr"], "10.244.0.0/16");
        assert_eq!(spec["ipPools"][0]["blockSize"], 24);
        assert_eq!(spec["ipPools"][0]["encapsulation"], "IPIP");
        assert_eq!(spec["mtu"], 1440);
        assert_eq!(spec["nodeAddressAutodetectionV4"]["interface"], "eth.*");
        // Upstream's defaults, and the optional components in custom-resources.yaml's order.
        let all = OperatorOptions {
            apiserver: true,
            goldmane: true,
            whisker: true,
            ..OperatorOptions::default()
        };
        let objects = all.custom_resources(&pool(), None).expect("valid");
        let kinds: Vec<&str> = objects.iter().map(|o| o.kind.as_str()).collect();
        assert_eq!(kinds, ["Installation", "APIServer", "Goldmane", "Whisker"]);
        let pool0 = &objects[0].value["spec"]["calicoNetwork"]["ipPools"][0];
        assert_eq!(pool0["blockSize"], 26);
        assert_eq!(pool0["encapsulation"], "VXLANCrossSubnet");
        assert!(
            objects[0].value["spec"]["calicoNetwork"]
                .get("mtu")
                .is_none()
        );
    }

    #[test]
    fn values_the_operator_would_refuse_are_refused_first() {
        let with = |o: OperatorOptions| o.custom_resources(&pool(), None).map(|_| ());
        assert_eq!(
            with(OperatorOptions {
                block_size: Some(33),
                ..Default::default()
            }),
            Err(OptionError::BlockSize(33))
        );
        assert!(matches!(
            OperatorOptions {
                block_size: Some(20),
                ..Default::default()
            }
            .custom_resources(&"10.0.0.0/24".parse().expect("cidr"), None),
            Err(OptionError::BlockLargerThanPool { .. })
        ));
        assert!(matches!(
            with(OperatorOptions {
                encapsulation: Some("GRE".into()),
                ..Default::default()
            }),
            Err(OptionError::Encapsulation(_))
        ));
        assert_eq!(
            with(OperatorOptions {
                mtu: Some(100),
                ..Default::default()
            }),
            Err(OptionError::Mtu(100))
        );
        assert_eq!(
            with(OperatorOptions {
                whisker: true,
                ..Default::default()
            }),
            Err(OptionError::WhiskerWithoutGoldmane)
        );
        for bad in [
            "nearest",
            "can-reach=",
            "cidr=10.0.0.0/8,banana",
            "interface",
        ] {
            assert!(
                OperatorOptions::default()
                    .custom_resources(&pool(), Some(bad))
                    .is_err(),
                "{bad}"
            );
        }
        let cidrs = OperatorOptions::default()
            .custom_resources(&pool(), Some("cidr=10.13.0.0/16, 10.14.0.0/16"))
            .expect("valid");
        assert_eq!(
            cidrs[0].value["spec"]["calicoNetwork"]["nodeAddressAutodetectionV4"]["cidrs"],
            json!(["10.13.0.0/16", "10.14.0.0/16"])
        );
    }
}
