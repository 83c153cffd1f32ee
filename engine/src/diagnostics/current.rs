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
        .or_else(|| stores.cluster_info.as_ref().map(|c| c.calico_version.clone()))
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
        if let Some(k) = kubernetes.filter(|k| kubernetes_minor(k).is_some_and(|m| !line.tested_on(m))) {
            out.push(Finding {
                rule: CALICO_UNTESTED_KUBERNETES.into(),
                severity: Severity::Warning,
                nodes: vec![],
                evidence: vec![
                    ev("Calico", "version", version.clone()),
                    ev("ConfigMap/kube-system/kubeadm-config", "kubernetesVersion", k.clone()),
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

/// kube-proxy's mode against the data plane: IPVS is deprecated since Kubernetes 1.35; eBPF
/// replaces kube-proxy, which must not run beside it; nftables kube-proxy goes with Calico's
/// nftables data plane.
fn kube_proxy_rule(stores: &Stores, out: &mut Vec<Finding>) {
    let Some(mode) = stores.kube_proxy_mode.as_ref().map(|m| m.0.as_str()) else {
        return;
    };
    let dataplane = stores
        .installation
        .as_ref()
        .map_or("Iptables", |i| i.dataplane.as_str());
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
            ev("Installation/default", "spec.calicoNetwork.linuxDataplane", dataplane),
        ],
        params: vec![p("mode", mode), p("dataplane", dataplane)],
    });
}
