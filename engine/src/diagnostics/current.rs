//! Rules about Calico as clusters run it in 2026: a component the Tigera operator reports
//! Degraded, a Calico past its end of life or not tested on the cluster's Kubernetes version,
//! the Calico API server unavailable (it breaks `kubectl` discovery for its group), and
//! kube-proxy's mode against Calico's data plane.

use grappe_views::{Finding, Severity};

use super::{detect_cnis, ev, p};
use crate::manifests::calico_line;
use crate::manifests::kubernetes_minor;
use crate::state::store::Stores;
use crate::time::fmt_unix_seconds as fmt_time;

pub const TIGERA_DEGRADED: &str = "calico.tigerastatus-degraded";
pub const CALICO_END_OF_LIFE: &str = "calico.end-of-life";
pub const CALICO_UNTESTED_KUBERNETES: &str = "calico.untested-kubernetes";
pub const CALICO_APISERVER_UNAVAILABLE: &str = "calico.apiserver-unavailable";
pub const KUBE_PROXY_IPVS: &str = "kube-proxy.ipvs-deprecated";
pub const KUBE_PROXY_WITH_EBPF: &str = "kube-proxy.beside-ebpf";
pub const KUBE_PROXY_NFTABLES: &str = "kube-proxy.nftables-with-iptables";

/// The Calico version a cluster runs: what the operator reports, else its image tag, else
/// ClusterInformation's.
fn calico_version(stores: &Stores) -> Option<String> {
    stores
        .installation
        .as_ref()
        .and_then(|i| i.calico_version.clone())
        .or_else(|| {
            detect_cnis(stores)
                .into_iter()
                .find(|(kind, _, _)| kind == "Calico")
                .and_then(|(_, v, _)| v)
        })
        .or_else(|| {
            stores
                .cluster_info
                .as_ref()
                .map(|c| c.calico_version.clone())
        })
        .filter(|v| !v.is_empty())
}

pub(super) fn rules(stores: &Stores, month: &str, out: &mut Vec<Finding>) {
    for t in stores.tigera_status.values().filter(|t| t.degraded) {
        out.push(Finding {
            rule: TIGERA_DEGRADED.into(),
            severity: Severity::Critical,
            nodes: vec![],
            evidence: vec![ev(
                format!("TigeraStatus/{}", t.name),
                "status.conditions[Degraded]",
                format!("{}: {}", t.reason, t.message),
            )],
            params: vec![
                p("component", t.name.clone()),
                p("reason", t.reason.clone()),
                p("since", fmt_time(t.since)),
            ],
        });
    }
    if let Some(version) = calico_version(stores)
        && let Some(line) = calico_line(&version)
    {
        if let Some(end) = line.end_of_life.filter(|_| line.ended_by(month)) {
            out.push(Finding {
                rule: CALICO_END_OF_LIFE.into(),
                severity: Severity::Warning,
                nodes: vec![],
                evidence: vec![ev("Calico", "version", version.clone())],
                params: vec![p("version", version.clone()), p("end", end)],
            });
        }
        let kubernetes = stores
            .kubeadm
            .as_ref()
            .and_then(|k| k.kubernetes_version.clone());
        if let Some(k) =
            kubernetes.filter(|k| kubernetes_minor(k).is_some_and(|m| !line.tested_on(m)))
        {
            out.push(Finding {
                rule: CALICO_UNTESTED_KUBERNETES.into(),
                severity: Severity::Warning,
                nodes: vec![],
                evidence: vec![
                    ev("Calico", "version", version.clone()),
                    ev(
                        "ConfigMap/kube-system/kubeadm-config",
                        "kubernetesVersion",
                        k.clone(),
                    ),
                ],
                params: vec![
                    p("version", version.clone()),
                    p("kubernetes", k),
                    p("tested", line.tested_range()),
                ],
            });
        }
    }
    if let Some(api) = stores.calico_apiserver.as_ref().filter(|a| !a.available) {
        out.push(Finding {
            rule: CALICO_APISERVER_UNAVAILABLE.into(),
            severity: Severity::Warning,
            nodes: vec![],
            evidence: vec![ev(
                "APIService/v3.projectcalico.org",
                "status.conditions[Available].message",
                api.message.clone(),
            )],
            params: vec![p("message", api.message.clone())],
        });
    }
    kube_proxy_rule(stores, out);
}

/// Calico's data plane and where it is read: the operator's Installation, else the default
/// FelixConfiguration (a manifest install), else Calico's default (iptables).
fn dataplane(stores: &Stores) -> (&str, (&'static str, &'static str)) {
    if let Some(i) = &stores.installation {
        return (
            i.dataplane.as_str(),
            ("Installation/default", "spec.calicoNetwork.linuxDataplane"),
        );
    }
    match stores.felixconfigs.get("default") {
        Some(f) => (
            f.dataplane,
            (
                "FelixConfiguration/default",
                "spec.bpfEnabled, spec.nftablesMode",
            ),
        ),
        None => ("Iptables", ("Calico", "default data plane")),
    }
}

/// kube-proxy's mode against the data plane: IPVS is deprecated since Kubernetes 1.35; eBPF
/// replaces kube-proxy, which must not run beside it; nftables kube-proxy goes with Calico's
/// nftables data plane.
fn kube_proxy_rule(stores: &Stores, out: &mut Vec<Finding>) {
    let Some(mode) = stores.kube_proxy_mode.as_ref().map(|m| m.0.as_str()) else {
        return;
    };
    let (dataplane, source) = dataplane(stores);
    let kube_proxy_runs = stores
        .daemonsets
        .keys()
        .any(|k| k == "kube-system/kube-proxy");
    let minor = stores
        .kubeadm
        .as_ref()
        .and_then(|k| k.kubernetes_version.as_deref())
        .and_then(kubernetes_minor);
    let rule = if dataplane == "BPF" && kube_proxy_runs {
        KUBE_PROXY_WITH_EBPF
    } else if mode == "nftables" && dataplane == "Iptables" {
        KUBE_PROXY_NFTABLES
    } else if mode == "ipvs" && minor.is_some_and(|m| m >= 35) {
        KUBE_PROXY_IPVS
    } else {
        return;
    };
    out.push(Finding {
        rule: rule.into(),
        severity: Severity::Warning,
        nodes: vec![],
        evidence: vec![
            ev("ConfigMap/kube-system/kube-proxy", "config.conf mode", mode),
            ev(source.0, source.1, dataplane),
        ],
        params: vec![p("mode", mode), p("dataplane", dataplane)],
    });
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::state::model::{
        ApiServiceInfo, FelixInfo, KubeProxyMode, KubeadmNetworking, TigeraStatusInfo, WorkloadInfo,
    };
    use crate::state::store::Change;

    const MONTH: &str = "2026-12";

    fn cluster(calico_image: &str, kubernetes: &str) -> Stores {
        let mut s = Stores::default();
        let ds = |ns: &str, name: &str, image: &str| {
            serde_json::from_value(json!({
                "metadata": {"namespace": ns, "name": name},
                "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": name, "image": image}]}}},
            }))
            .expect("daemonset")
        };
        s.apply_daemonsets(Change::Reset(
            [
                ds("kube-system", "calico-node", calico_image),
                ds(
                    "kube-system",
                    "kube-proxy",
                    "registry.k8s.io/kube-proxy:v1.35.8",
                ),
            ]
            .into_iter()
            .filter_map(WorkloadInfo::from_daemonset)
            .collect(),
        ));
        s.apply_kubeadm(Change::Upsert(KubeadmNetworking::parse(&format!(
            "kubernetesVersion: {kubernetes}\nnetworking:\n  podSubnet: 192.168.0.0/16\n"
        ))));
        s
    }

    fn found(s: &Stores) -> Vec<(String, Vec<(String, String)>)> {
        let mut out = vec![];
        rules(s, MONTH, &mut out);
        out.into_iter()
            .map(|f| {
                let params = f.params.into_iter().collect();
                (f.rule, params)
            })
            .collect()
    }

    fn names(s: &Stores) -> Vec<String> {
        found(s).into_iter().map(|(r, _)| r).collect()
    }

    #[test]
    fn a_current_calico_on_a_tested_kubernetes_raises_nothing() {
        assert!(names(&cluster("quay.io/calico/node:v3.32.1", "v1.35.8")).is_empty());
    }

    #[test]
    fn calico_past_its_end_of_life_and_untested_on_this_kubernetes() {
        let f = found(&cluster("docker.io/calico/node:v3.25.1", "v1.35.8"));
        assert_eq!(
            f.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>(),
            vec![CALICO_END_OF_LIFE, CALICO_UNTESTED_KUBERNETES]
        );
        assert!(f[0].1.contains(&("end".into(), "2023-12".into())));
        assert!(f[1].1.contains(&("tested".into(), "1.23 to 1.26".into())));
        // The end of life counts from the month the line ended in.
        let mut out = vec![];
        rules(
            &cluster("quay.io/calico/node:v3.31.7", "v1.33.2"),
            "2026-08",
            &mut out,
        );
        assert!(out.is_empty(), "{out:?}");
        rules(
            &cluster("quay.io/calico/node:v3.31.7", "v1.33.2"),
            "2026-09",
            &mut out,
        );
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn a_degraded_operator_component_names_its_reason() {
        let mut s = cluster("quay.io/calico/node:v3.32.1", "v1.35.8");
        let status = |name: &str, kind: &str| {
            TigeraStatusInfo::from_dynamic(
                &serde_json::from_value(json!({
                    "apiVersion": "operator.tigera.io/v1", "kind": "TigeraStatus",
                    "metadata": {"name": name},
                    "status": {"conditions": [{"type": kind, "status": "True",
                        "reason": "ResourceNotReady", "message": "calico-node \u{202e}not ready",
                        "lastTransitionTime": "2026-11-30T10:00:00Z"}]},
                }))
                .expect("object"),
            )
        };
        s.apply_tigera_status(Change::Reset(
            [status("calico", "Degraded"), status("ippools", "Available")]
                .into_iter()
                .flatten()
                .collect(),
        ));
        let f = found(&s);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].0, TIGERA_DEGRADED);
        assert!(f[0].1.contains(&("component".into(), "calico".into())));
        assert!(
            f[0].1
                .contains(&("reason".into(), "ResourceNotReady".into()))
        );
    }

    #[test]
    fn the_calico_api_server_unavailable() {
        let mut s = cluster("quay.io/calico/node:v3.32.1", "v1.35.8");
        s.apply_calico_apiserver(Change::Upsert(ApiServiceInfo {
            available: false,
            message: "failing or missing response from https://10.96.0.12:443".into(),
        }));
        assert_eq!(names(&s), vec![CALICO_APISERVER_UNAVAILABLE]);
        s.apply_calico_apiserver(Change::Upsert(ApiServiceInfo {
            available: true,
            message: String::new(),
        }));
        assert!(names(&s).is_empty());
    }

    #[test]
    fn kube_proxy_modes_against_the_data_plane() {
        let mut s = cluster("quay.io/calico/node:v3.32.1", "v1.35.8");
        let mode = |s: &mut Stores, m: &str| {
            s.apply_kube_proxy(Change::Upsert(KubeProxyMode(m.into())));
        };
        mode(&mut s, "iptables");
        assert!(names(&s).is_empty());
        mode(&mut s, "ipvs");
        assert_eq!(names(&s), vec![KUBE_PROXY_IPVS]);
        mode(&mut s, "nftables");
        assert_eq!(names(&s), vec![KUBE_PROXY_NFTABLES]);
        s.apply_felixconfigs(Change::Upsert(FelixInfo {
            name: "default".into(),
            dataplane: "Nftables",
            wireguard: false,
        }));
        assert!(names(&s).is_empty());
        s.apply_felixconfigs(Change::Upsert(FelixInfo {
            name: "default".into(),
            dataplane: "BPF",
            wireguard: false,
        }));
        assert_eq!(names(&s), vec![KUBE_PROXY_WITH_EBPF]);
        // IPVS is only deprecated from Kubernetes 1.35.
        let mut old = cluster("quay.io/calico/node:v3.32.1", "v1.34.1");
        mode(&mut old, "ipvs");
        assert!(names(&old).is_empty());
    }
}
