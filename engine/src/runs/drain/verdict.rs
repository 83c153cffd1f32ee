//! kubectl drain's pod filters, in its order: which pods a drain removes, skips or stops on,
//! and which PodDisruptionBudgets cover a pod. Pure functions, unit-tested.

use std::collections::BTreeMap;

use grappe_views::runs::Verdict;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::*;

/// kubectl's reasons, word for word where kubectl has them.
const DAEMONSET_FATAL: &str = "DaemonSet-managed Pods (use --ignore-daemonsets to ignore)";
const DAEMONSET_SKIP: &str = "ignoring DaemonSet-managed Pods";
const LOCAL_STORAGE_FATAL: &str =
    "Pods with local storage (use --delete-emptydir-data to override)";
const LOCAL_STORAGE_WARNING: &str = "deleting Pods with local storage";
const UNMANAGED_FATAL: &str = "Pods declare no controller (use --force to override)";
const UNMANAGED_WARNING: &str = "deleting Pods that declare no controller";
const MIRROR_SKIP: &str = "mirror pod (static pod of the kubelet)";
const ORPHAN_WARNING: &str = "deleting orphaned DaemonSet pod";

/// What is known about a DaemonSet that controls a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaemonSetLookup {
    Exists,
    NotFound,
    /// Another error, in kubectl's words.
    Error(String),
}

/// A pod's verdict and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodVerdict {
    pub verdict: Verdict,
    /// kubectl's reason (blocked, skipped) or warning (removed), empty for a plain removal.
    pub reason: String,
}

pub(super) fn finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

pub(super) fn controller(pod: &Pod) -> Option<(&str, &str)> {
    pod.metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))
        .map(|o| (o.kind.as_str(), o.name.as_str()))
}

/// The verdict of one pod, by kubectl's filters in kubectl's order (the first that does not
/// remove the pod decides): terminating past the skip timeout, DaemonSet, mirror pod, local
/// storage, no controller. `ds` tells whether a pod's DaemonSet exists; `now` is in Unix
/// seconds.
pub fn verdict(
    pod: &Pod,
    opts: &DrainOptions,
    now: i64,
    ds: &dyn Fn(&str, &str) -> DaemonSetLookup,
) -> PodVerdict {
    let blocked = |reason: &str| PodVerdict {
        verdict: Verdict::Blocked,
        reason: reason.to_owned(),
    };
    let skip = |reason: &str| PodVerdict {
        verdict: Verdict::Skip,
        reason: reason.to_owned(),
    };
    let remove = if opts.disable_eviction {
        Verdict::Delete
    } else {
        Verdict::Evict
    };
    let mut warning = String::new();
    // 1. Terminating for longer than --skip-wait-for-delete-timeout.
    if opts.skip_wait_for_delete_timeout_seconds > 0
        && let Some(deleted) = &pod.metadata.deletion_timestamp
    {
        let for_seconds = now - deleted.0.as_second();
        if for_seconds > i64::try_from(opts.skip_wait_for_delete_timeout_seconds).unwrap_or(0) {
            return skip(&format!("terminating for {for_seconds} s"));
        }
    }
    let done = finished(pod);
    // 2. DaemonSet-managed pods: never removed, unless orphaned and forced.
    if let Some(("DaemonSet", name)) = controller(pod)
        && !done
    {
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        match ds(ns, name) {
            DaemonSetLookup::NotFound if opts.force => warning = ORPHAN_WARNING.to_owned(),
            DaemonSetLookup::NotFound => {
                return blocked(&format!("daemonsets.apps {name:?} not found"));
            }
            DaemonSetLookup::Error(e) => return blocked(&e),
            DaemonSetLookup::Exists if !opts.ignore_daemonsets => return blocked(DAEMONSET_FATAL),
            DaemonSetLookup::Exists => return skip(DAEMONSET_SKIP),
        }
    }
    // 3. Mirror pods: the kubelet owns them.
    if pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"))
    {
        return skip(MIRROR_SKIP);
    }
    // 4. Local storage (emptyDir).
    let empty_dir = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .is_some_and(|v| v.iter().any(|v| v.empty_dir.is_some()));
    if empty_dir && !done {
        if !opts.delete_emptydir_data {
            return blocked(LOCAL_STORAGE_FATAL);
        }
        warning = LOCAL_STORAGE_WARNING.to_owned();
    }
    // 5. No controller.
    if !done && controller(pod).is_none() {
        if !opts.force {
            return blocked(UNMANAGED_FATAL);
        }
        warning = UNMANAGED_WARNING.to_owned();
    }
    PodVerdict {
        verdict: remove,
        reason: warning,
    }
}

/// Whether a label selector selects `labels` (matchLabels and matchExpressions; an empty
/// selector selects everything, as for a PodDisruptionBudget in policy/v1).
pub fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = selector
        .match_labels
        .as_ref()
        .is_none_or(|m| m.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let by_expressions = selector.match_expressions.as_ref().is_none_or(|exprs| {
        exprs.iter().all(|e| {
            let value = labels.get(&e.key);
            let values = e.values.as_deref().unwrap_or_default();
            match e.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
    });
    by_labels && by_expressions
}

/// The PodDisruptionBudgets that cover a pod (same namespace, selector matches).
pub(super) fn covering<'a>(
    pdbs: &'a [PodDisruptionBudget],
    pod: &Pod,
) -> Vec<&'a PodDisruptionBudget> {
    let empty = BTreeMap::new();
    let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
    pdbs.iter()
        .filter(|p| p.metadata.namespace == pod.metadata.namespace)
        .filter(|p| {
            p.spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .is_some_and(|s| selects(s, labels))
        })
        .collect()
}

pub(super) fn allowed(pdb: &PodDisruptionBudget) -> i32 {
    pdb.status.as_ref().map_or(0, |s| s.disruptions_allowed)
}

pub(super) fn pdb_key(pdb: &PodDisruptionBudget) -> String {
    format!(
        "{}/{}",
        pdb.metadata.namespace.as_deref().unwrap_or_default(),
        pdb.metadata.name.as_deref().unwrap_or_default()
    )
}

pub(super) fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    fn owned(kind: &str) -> serde_json::Value {
        json!([{"apiVersion": "apps/v1", "kind": kind, "name": "owner", "uid": "u", "controller": true}])
    }

    fn exists(_: &str, _: &str) -> DaemonSetLookup {
        DaemonSetLookup::Exists
    }

    fn seed() -> DrainOptions {
        DrainOptions::default()
    }

    fn none() -> DrainOptions {
        DrainOptions {
            delete_emptydir_data: false,
            ignore_daemonsets: false,
            force: false,
            ..DrainOptions::default()
        }
    }

    fn v(p: &Pod, o: &DrainOptions) -> (Verdict, String) {
        let r = verdict(p, o, 1_000_000, &exists);
        (r.verdict, r.reason)
    }

    #[test]
    fn a_replicaset_pod_is_evicted_or_deleted_without_eviction() {
        let p = pod(
            json!({"metadata": {"name": "web-1", "namespace": "demo", "ownerReferences": owned("ReplicaSet")}}),
        );
        assert_eq!(v(&p, &none()), (Verdict::Evict, String::new()));
        let o = DrainOptions {
            disable_eviction: true,
            ..seed()
        };
        assert_eq!(v(&p, &o).0, Verdict::Delete);
    }

    #[test]
    fn daemonset_pods_block_without_the_flag_and_are_skipped_with_it() {
        let p = pod(
            json!({"metadata": {"name": "calico-node-x", "namespace": "kube-system", "ownerReferences": owned("DaemonSet")}}),
        );
        assert_eq!(
            v(&p, &none()),
            (Verdict::Blocked, DAEMONSET_FATAL.to_owned())
        );
        assert_eq!(v(&p, &seed()), (Verdict::Skip, DAEMONSET_SKIP.to_owned()));
        // Orphaned: blocked without --force, deleted with it (even without --ignore-daemonsets).
        let gone = |_: &str, _: &str| DaemonSetLookup::NotFound;
        let r = verdict(&p, &none(), 0, &gone);
        assert_eq!(r.verdict, Verdict::Blocked);
        assert!(r.reason.contains("not found"), "{}", r.reason);
        let forced = DrainOptions {
            force: true,
            ..none()
        };
        assert_eq!(verdict(&p, &forced, 0, &gone).verdict, Verdict::Evict);
        // A finished DaemonSet pod is removed.
        let done = pod(
            json!({"metadata": {"name": "d", "namespace": "n", "ownerReferences": owned("DaemonSet")}, "status": {"phase": "Failed"}}),
        );
        assert_eq!(v(&done, &none()).0, Verdict::Evict);
    }

    #[test]
    fn mirror_pods_are_skipped_even_without_a_controller() {
        let p = pod(
            json!({"metadata": {"name": "kube-apiserver-betelgeuse", "namespace": "kube-system",
            "annotations": {"kubernetes.io/config.mirror": "abc"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "betelgeuse", "uid": "n", "controller": true}]}}),
        );
        assert_eq!(v(&p, &none()), (Verdict::Skip, MIRROR_SKIP.to_owned()));
    }

    #[test]
    fn empty_dir_blocks_without_the_option_unless_finished() {
        let p = pod(
            json!({"metadata": {"name": "cache-1", "namespace": "demo", "ownerReferences": owned("ReplicaSet")},
            "spec": {"containers": [], "volumes": [{"name": "scratch", "emptyDir": {}}]}}),
        );
        assert_eq!(
            v(&p, &none()),
            (Verdict::Blocked, LOCAL_STORAGE_FATAL.to_owned())
        );
        assert_eq!(
            v(&p, &seed()),
            (Verdict::Evict, LOCAL_STORAGE_WARNING.to_owned())
        );
        let mut done = p.clone();
        done.status = Some(serde_json::from_value(json!({"phase": "Succeeded"})).expect("status"));
        assert_eq!(v(&done, &none()).0, Verdict::Evict);
    }

    #[test]
    fn unmanaged_pods_need_force_and_finished_pods_never_do() {
        let p = pod(json!({"metadata": {"name": "debug-shell", "namespace": "demo"}}));
        assert_eq!(
            v(&p, &none()),
            (Verdict::Blocked, UNMANAGED_FATAL.to_owned())
        );
        assert_eq!(
            v(&p, &seed()),
            (Verdict::Evict, UNMANAGED_WARNING.to_owned())
        );
        let done = pod(
            json!({"metadata": {"name": "job-x", "namespace": "demo"}, "status": {"phase": "Succeeded"}}),
        );
        assert_eq!(v(&done, &none()), (Verdict::Evict, String::new()));
    }

    #[test]
    fn terminating_pods_are_skipped_only_past_the_skip_timeout() {
        // Deleted at t=1000, now t=1000000: terminating for a long time.
        let p = pod(json!({"metadata": {"name": "old", "namespace": "demo",
            "deletionTimestamp": "1970-01-01T00:16:40Z", "ownerReferences": owned("ReplicaSet")}}));
        assert_eq!(v(&p, &seed()).0, Verdict::Evict, "kubectl's default waits");
        let o = DrainOptions {
            skip_wait_for_delete_timeout_seconds: 60,
            ..seed()
        };
        assert_eq!(v(&p, &o).0, Verdict::Skip);
        let young = verdict(&p, &o, 1030, &exists);
        assert_eq!(young.verdict, Verdict::Evict);
    }

    #[test]
    fn the_first_filter_that_refuses_decides() {
        // A DaemonSet pod with emptyDir and no --ignore-daemonsets: the DaemonSet reason wins.
        let p = pod(
            json!({"metadata": {"name": "x", "namespace": "n", "ownerReferences": owned("DaemonSet")},
            "spec": {"containers": [], "volumes": [{"name": "s", "emptyDir": {}}]}}),
        );
        assert_eq!(v(&p, &none()).1, DAEMONSET_FATAL);
        // emptyDir and no controller: local storage is checked first.
        let q = pod(
            json!({"metadata": {"name": "y", "namespace": "n"}, "spec": {"containers": [], "volumes": [{"name": "s", "emptyDir": {}}]}}),
        );
        assert_eq!(v(&q, &none()).1, LOCAL_STORAGE_FATAL);
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        let labels: BTreeMap<String, String> = [("app", "web"), ("tier", "front")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let sel = |labels: &[(&str, &str)], exprs: Vec<(&str, &str, Vec<&str>)>| LabelSelector {
            match_labels: (!labels.is_empty()).then(|| {
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect()
            }),
            match_expressions: (!exprs.is_empty()).then(|| {
                exprs
                    .into_iter()
                    .map(|(k, op, vals)| LabelSelectorRequirement {
                        key: k.to_owned(),
                        operator: op.to_owned(),
                        values: Some(vals.into_iter().map(str::to_owned).collect()),
                    })
                    .collect()
            }),
        };
        assert!(selects(&sel(&[], vec![]), &labels), "empty selects all");
        assert!(selects(&sel(&[("app", "web")], vec![]), &labels));
        assert!(!selects(&sel(&[("app", "db")], vec![]), &labels));
        assert!(selects(
            &sel(&[], vec![("tier", "In", vec!["front", "back"])]),
            &labels
        ));
        assert!(!selects(
            &sel(&[], vec![("tier", "NotIn", vec!["front"])]),
            &labels
        ));
        assert!(selects(&sel(&[], vec![("app", "Exists", vec![])]), &labels));
        assert!(selects(
            &sel(&[], vec![("zone", "DoesNotExist", vec![])]),
            &labels
        ));
        assert!(!selects(&sel(&[], vec![("app", "Bogus", vec![])]), &labels));
    }

    #[test]
    fn options_are_validated() {
        assert!(validate(&DrainOptions::default()).is_ok());
        for bad in [
            DrainOptions {
                concurrency: 0,
                ..seed()
            },
            DrainOptions {
                timeout_seconds: 0,
                ..seed()
            },
            DrainOptions {
                pod_selector: "app=web; rm -rf /".into(),
                ..seed()
            },
        ] {
            assert!(validate(&bad).is_err(), "{bad:?}");
        }
        let ok = DrainOptions {
            pod_selector: "app in (web,db),tier!=front".into(),
            ..seed()
        };
        assert!(validate(&ok).is_ok());
    }

    #[test]
    fn blocked_pods_are_reported_per_reason_as_kubectl_does() {
        let a = pod(json!({"metadata": {"name": "a", "namespace": "demo"}}));
        let b = pod(json!({"metadata": {"name": "b", "namespace": "demo"}}));
        let verdicts = vec![v(&a, &none()), v(&b, &none())]
            .into_iter()
            .map(|(verdict, reason)| PodVerdict { verdict, reason })
            .collect::<Vec<_>>();
        assert_eq!(
            blocked_error(&[a, b], &verdicts).as_deref(),
            Some(
                "cannot delete Pods declare no controller (use --force to override): demo/a, demo/b"
            )
        );
    }
}
