//! The compatibility gate of every CNI plan: the cluster's Kubernetes version against the
//! versions the target is tested on, the target's end of life, and how Calico is installed now
//! against how the plan would install it (a manifest install beside an operator's, or the other
//! way round, would run two calico-node). Failures block the start; warnings are shown and
//! recorded with the run (they are checks of its plan).

use grappe_views::runs::CheckView;
use grappe_views::vocab::Level;

use crate::manifests::{CatalogEntry, Support, calico_line, kubernetes_minor};
use crate::runs::check;

/// How Calico is (or would be) installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `calico.yaml`: everything in kube-system.
    Manifest,
    /// The Tigera operator: calico-node in calico-system, from an `Installation`.
    Operator,
}

impl Method {
    /// The method of an installed CNI DaemonSet (`namespace/name`).
    #[must_use]
    pub fn of_daemonset(key: &str) -> Self {
        if key.starts_with("calico-system/") {
            Self::Operator
        } else {
            Self::Manifest
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Manifest => "from a manifest (kube-system)",
            Self::Operator => "by the Tigera operator (calico-system)",
        }
    }
}

/// What the gate knows of the cluster.
pub struct Cluster<'a> {
    /// Its Kubernetes version (`v1.35.8`), when known.
    pub kubernetes: Option<&'a str>,
    /// The Calico installed now: its version and its DaemonSet (`namespace/name`).
    pub calico: Option<(Option<&'a str>, &'a str)>,
    /// kube-proxy's mode (its ConfigMap), when known.
    pub kube_proxy: Option<&'a str>,
    /// This month, `YYYY-MM`.
    pub month: &'a str,
}

/// The gate's checks for installing `entry` (a catalog entry; none for a custom manifest) by
/// `method`.
#[must_use]
pub fn gate(cluster: &Cluster<'_>, entry: Option<&CatalogEntry>, method: Method) -> Vec<CheckView> {
    let mut checks = Vec::new();
    let Some(entry) = entry.filter(|e| e.cni == "Calico") else {
        return checks;
    };
    let target = format!("Calico {}", entry.version);
    if let Some(support) = entry.support {
        checks.push(kubernetes_check(cluster, &target, &support));
        if let Some(end) = support
            .end_of_life
            .filter(|_| support.ended_by(cluster.month))
        {
            checks.push(check(
                "compat-eol",
                Level::Warn,
                format!("{target} reached its end of life in {end}: its line gets no more fixes, security fixes included; prefer a maintained line (v3.32.1)"),
            ));
        } else {
            checks.push(check(
                "compat-eol",
                Level::Pass,
                format!("{target} is a maintained release line"),
            ));
        }
    }
    if let Some(check) = kube_proxy_check(cluster) {
        checks.push(check);
    }
    if let Some((version, daemonset)) = cluster.calico {
        let installed = Method::of_daemonset(daemonset);
        if installed != method {
            checks.push(check(
                "compat-method",
                Level::Fail,
                format!(
                    "Calico {} is installed {} ({daemonset}); installing {target} {} beside it would run two calico-node: {}",
                    version.unwrap_or("?"),
                    installed.describe(),
                    method.describe(),
                    match installed {
                        Method::Manifest => "move to the operator with the migration (upstream's path), not a second install",
                        Method::Operator => "change the operator's Installation instead",
                    }
                ),
            ));
        } else {
            checks.push(check(
                "compat-method",
                Level::Pass,
                format!(
                    "Calico is installed {}, as this plan would",
                    installed.describe()
                ),
            ));
        }
        if let Some(line) = version
            .and_then(calico_line)
            .filter(|l| l.ended_by(cluster.month))
        {
            checks.push(check(
                "compat-installed-eol",
                Level::Warn,
                format!(
                    "the installed Calico {} reached its end of life in {}",
                    version.unwrap_or("?"),
                    line.end_of_life.unwrap_or("?")
                ),
            ));
        }
    }
    checks
}

/// The install method check of a migration to `entry`: a manifest install of Calico to hand
/// over, at most the target's version (the operator does not downgrade; a lower one is
/// upgraded on the way).
#[must_use]
pub fn migration_check(cluster: &Cluster<'_>, entry: Option<&CatalogEntry>) -> CheckView {
    let fail = |text: String| check("compat-method", Level::Fail, text);
    let Some(entry) = entry.filter(|e| e.operator()) else {
        return fail("a migration's target is a catalog entry of the Tigera operator".into());
    };
    let Some((version, daemonset)) = cluster.calico else {
        return fail(format!(
            "no Calico is installed: there is nothing to migrate; install Calico {} with the operator instead",
            entry.version
        ));
    };
    if Method::of_daemonset(daemonset) == Method::Operator {
        return fail(format!(
            "Calico is already installed {} ({daemonset})",
            Method::Operator.describe()
        ));
    }
    let installed = version.unwrap_or("?");
    let target = entry.version;
    match (release(installed), release(target)) {
        (Some(from), Some(to)) if from > to => fail(format!(
            "Calico {installed} ({daemonset}) is newer than {target}: the operator would downgrade it; migrate to an operator entry of {installed} or later"
        )),
        (Some(from), Some(to)) if from < to => check(
            "compat-method",
            Level::Warn,
            format!(
                "Calico {installed} is installed {} ({daemonset}): the operator takes it over and upgrades it to {target} on the way, node by node",
                Method::Manifest.describe()
            ),
        ),
        (Some(_), Some(_)) => check(
            "compat-method",
            Level::Pass,
            format!(
                "Calico {installed} is installed {} ({daemonset}): the operator takes it over, node by node",
                Method::Manifest.describe()
            ),
        ),
        _ => fail(format!(
            "the installed Calico's version ({installed}, {daemonset}) is not known: the migration cannot tell an upgrade from a downgrade"
        )),
    }
}

/// `v3.31.7` as (3, 31, 7).
fn release(version: &str) -> Option<(u32, u32, u32)> {
    let mut parts = version.strip_prefix('v').unwrap_or(version).split('.');
    let mut next = || parts.next()?.parse().ok();
    Some((next()?, next()?, next()?))
}

/// kube-proxy's mode against the data plane the catalog's installs use (iptables, upstream's
/// default for both methods): nftables kube-proxy wants Calico's nftables data plane; IPVS is
/// deprecated from Kubernetes 1.35.
fn kube_proxy_check(cluster: &Cluster<'_>) -> Option<CheckView> {
    let mode = cluster.kube_proxy?;
    let minor = cluster.kubernetes.and_then(kubernetes_minor);
    Some(match mode {
        "nftables" => check(
            "compat-kube-proxy",
            Level::Warn,
            "kube-proxy runs in nftables mode; this install's Calico uses the iptables data plane: set Calico's nftables data plane (FelixConfiguration nftablesMode, the Installation's linuxDataplane: Nftables) or kube-proxy's iptables mode",
        ),
        "ipvs" if minor.is_some_and(|m| m >= 35) => check(
            "compat-kube-proxy",
            Level::Warn,
            "kube-proxy runs in IPVS mode, deprecated since Kubernetes 1.35: plan the move to nftables or iptables",
        ),
        other => check(
            "compat-kube-proxy",
            Level::Pass,
            format!(
                "kube-proxy's {} mode goes with Calico's iptables data plane",
                if other.is_empty() {
                    "default (iptables)"
                } else {
                    other
                }
            ),
        ),
    })
}

fn kubernetes_check(cluster: &Cluster<'_>, target: &str, support: &Support) -> CheckView {
    match cluster
        .kubernetes
        .and_then(|v| kubernetes_minor(v).map(|m| (v, m)))
    {
        None => check(
            "compat-kubernetes",
            Level::Warn,
            format!(
                "this cluster's Kubernetes version is not known: {target} is tested on Kubernetes {}",
                support.tested_range()
            ),
        ),
        Some((v, minor)) if support.tested_on(minor) => check(
            "compat-kubernetes",
            Level::Pass,
            format!(
                "{target} is tested on Kubernetes {}: this cluster runs {v}",
                support.tested_range()
            ),
        ),
        Some((v, _)) => check(
            "compat-kubernetes",
            Level::Warn,
            format!(
                "{target} is tested on Kubernetes {}, not on this cluster's {v}: it may work, upstream does not test it",
                support.tested_range()
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifests::catalog_entry;

    fn level(checks: &[CheckView], id: &str) -> Option<Level> {
        checks.iter().find(|c| c.id == id).map(|c| c.level)
    }

    #[test]
    fn the_gate_warns_of_an_untested_or_ended_target_and_refuses_a_second_method() {
        let fresh = Cluster {
            kubernetes: Some("v1.35.8"),
            calico: None,
            kube_proxy: Some("iptables"),
            month: "2026-12",
        };
        let v3321 = catalog_entry("calico-v3.32.1");
        let checks = gate(&fresh, v3321, Method::Manifest);
        assert_eq!(level(&checks, "compat-kubernetes"), Some(Level::Pass));
        assert_eq!(level(&checks, "compat-eol"), Some(Level::Pass));
        let checks = gate(&fresh, catalog_entry("calico-v3.25.1"), Method::Manifest);
        assert_eq!(level(&checks, "compat-kubernetes"), Some(Level::Warn));
        assert_eq!(level(&checks, "compat-eol"), Some(Level::Warn));
        // An operator install over a manifest install is refused, with the reason.
        let manifest = Cluster {
            calico: Some((Some("v3.25.1"), "kube-system/calico-node")),
            ..fresh
        };
        let checks = gate(&manifest, v3321, Method::Operator);
        assert_eq!(level(&checks, "compat-method"), Some(Level::Fail));
        assert!(checks.iter().any(|c| c.message.contains("migration")));
        assert_eq!(level(&checks, "compat-installed-eol"), Some(Level::Warn));
        let checks = gate(&manifest, v3321, Method::Manifest);
        assert_eq!(level(&checks, "compat-method"), Some(Level::Pass));
        // Flannel and custom manifests have no facts to check.
        assert!(gate(&fresh, catalog_entry("flannel-v0.28.9"), Method::Manifest).is_empty());
        assert_eq!(kubernetes_minor("v1.35.8"), Some(35));
        assert_eq!(kubernetes_minor("2.0"), None);
        // kube-proxy's mode against the iptables data plane.
        assert_eq!(
            level(&checks_of(&fresh), "compat-kube-proxy"),
            Some(Level::Pass)
        );
        let nft = Cluster {
            kube_proxy: Some("nftables"),
            ..fresh
        };
        assert_eq!(
            level(&checks_of(&nft), "compat-kube-proxy"),
            Some(Level::Warn)
        );
        let ipvs = Cluster {
            kube_proxy: Some("ipvs"),
            ..fresh
        };
        assert_eq!(
            level(&checks_of(&ipvs), "compat-kube-proxy"),
            Some(Level::Warn)
        );
        let old_ipvs = Cluster {
            kubernetes: Some("v1.34.2"),
            ..ipvs
        };
        assert_eq!(
            level(&checks_of(&old_ipvs), "compat-kube-proxy"),
            Some(Level::Pass)
        );
    }

    fn checks_of(cluster: &Cluster<'_>) -> Vec<CheckView> {
        gate(cluster, catalog_entry("calico-v3.32.1"), Method::Manifest)
    }
}
