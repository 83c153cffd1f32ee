//! What an unverified (custom) manifest asks for beyond a CNI's usual objects, shown as warning
//! checks of its plan: the plan otherwise shows a created object's kind and name only, and a
//! manifest pasted from somewhere can hold anything. A CNI's node agent is privileged and on the
//! host's network by nature, so these warn, never block: they say what to read before applying.

use std::collections::BTreeSet;

use grappe_views::runs::CheckView;
use grappe_views::vocab::Level;
use serde_json::Value;

use crate::manifests::parse::ManifestObject;
use crate::runs::check;

/// Names shown per check (the count says how many more).
const SHOWN: usize = 5;

/// The warnings of an unverified manifest's objects.
pub(super) fn risky_objects(objects: &[ManifestObject]) -> Vec<CheckView> {
    let own: BTreeSet<&str> = objects
        .iter()
        .filter(|o| o.kind == "Namespace")
        .map(|o| o.name.as_str())
        .chain(["kube-system"])
        .collect();
    let findings: [(&str, &str, Vec<String>); 5] = [
        (
            "risk-admin",
            "grants cluster-admin or wildcard rules",
            found(objects, grants_everything),
        ),
        (
            "risk-webhook",
            "intercepts API requests (admission webhooks, API services)",
            found(objects, |o| {
                matches!(
                    o.kind.as_str(),
                    "MutatingWebhookConfiguration"
                        | "ValidatingWebhookConfiguration"
                        | "ValidatingAdmissionPolicy"
                        | "APIService"
                )
            }),
        ),
        (
            "risk-host",
            "runs pods with host access (privileged, host PID or IPC, host paths)",
            found(objects, host_access),
        ),
        (
            "risk-namespace",
            "places objects outside its own namespaces and kube-system",
            found(objects, |o| {
                o.namespace.as_deref().is_some_and(|ns| !own.contains(ns))
            }),
        ),
        (
            "risk-unknown-kind",
            "creates kinds a CNI manifest rarely holds",
            found(objects, |o| {
                matches!(
                    o.kind.as_str(),
                    "Secret" | "CronJob" | "Job" | "StatefulSet" | "Service"
                ) && o.namespace.as_deref() != Some("kube-system")
            }),
        ),
    ];
    findings
        .into_iter()
        .filter(|(_, _, keys)| !keys.is_empty())
        .map(|(id, what, keys)| {
            let more = keys.len().saturating_sub(SHOWN);
            let mut names = keys.into_iter().take(SHOWN).collect::<Vec<_>>().join(", ");
            if more > 0 {
                names.push_str(&format!(" and {more} more"));
            }
            check(
                id,
                Level::Warn,
                format!("this unverified manifest {what}: {names}; read them before applying"),
            )
        })
        .collect()
}

fn found(objects: &[ManifestObject], test: impl Fn(&ManifestObject) -> bool) -> Vec<String> {
    objects
        .iter()
        .filter(|o| test(o))
        .map(ManifestObject::key)
        .collect()
}

fn grants_everything(o: &ManifestObject) -> bool {
    match o.kind.as_str() {
        "ClusterRoleBinding" | "RoleBinding" => {
            o.value.pointer("/roleRef/name").and_then(Value::as_str) == Some("cluster-admin")
        }
        "ClusterRole" | "Role" => {
            o.value
                .get("rules")
                .and_then(Value::as_array)
                .is_some_and(|rules| {
                    rules.iter().any(|rule| {
                        ["verbs", "resources", "apiGroups"].iter().all(|field| {
                            rule.get(*field)
                                .and_then(Value::as_array)
                                .is_some_and(|v| v.iter().any(|x| x == "*"))
                        })
                    })
                })
        }
        _ => false,
    }
}

/// The pod spec of a workload (a Pod, a template, a CronJob's job template).
fn pod_spec(o: &ManifestObject) -> Option<&Value> {
    match o.kind.as_str() {
        "Pod" => o.value.get("spec"),
        "CronJob" => o.value.pointer("/spec/jobTemplate/spec/template/spec"),
        "DaemonSet" | "Deployment" | "StatefulSet" | "ReplicaSet" | "Job" => {
            o.value.pointer("/spec/template/spec")
        }
        _ => None,
    }
}

fn host_access(o: &ManifestObject) -> bool {
    let Some(spec) = pod_spec(o) else {
        return false;
    };
    let flag = |name: &str| spec.get(name).and_then(Value::as_bool) == Some(true);
    let host_path = spec
        .get("volumes")
        .and_then(Value::as_array)
        .is_some_and(|v| v.iter().any(|vol| vol.get("hostPath").is_some()));
    let privileged = ["containers", "initContainers"].iter().any(|list| {
        spec.get(*list).and_then(Value::as_array).is_some_and(|cs| {
            cs.iter().any(|c| {
                c.pointer("/securityContext/privileged")
                    .and_then(Value::as_bool)
                    == Some(true)
            })
        })
    });
    flag("hostPID") || flag("hostIPC") || host_path || privileged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifests::parse::parse;

    #[test]
    fn a_custom_manifest_says_what_it_grants_and_where_it_reaches() {
        let text = r#"
apiVersion: v1
kind: Namespace
metadata: {name: my-cni}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: take-over}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: ServiceAccount, name: agent, namespace: my-cni}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: everything}
rules: [{apiGroups: ["*"], resources: ["*"], verbs: ["*"]}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: inject}
webhooks: []
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: my-cni}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      hostPID: true
      containers: [{name: a, image: a}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: sneaky, namespace: default}
data: {}
"#;
        let objects = parse(text).expect("parse");
        let checks = risky_objects(&objects);
        let by_id = |id: &str| {
            checks
                .iter()
                .find(|c| c.id == id)
                .map(|c| c.message.clone())
        };
        let admin = by_id("risk-admin").expect("admin");
        assert!(
            admin.contains("take-over") && admin.contains("everything"),
            "{admin}"
        );
        assert!(by_id("risk-webhook").expect("webhook").contains("inject"));
        assert!(
            by_id("risk-host")
                .expect("host")
                .contains("DaemonSet/my-cni/agent")
        );
        let ns = by_id("risk-namespace").expect("namespace");
        assert!(
            ns.contains("ConfigMap/default/sneaky") && !ns.contains("agent"),
            "{ns}"
        );
        assert!(checks.iter().all(|c| c.level == Level::Warn));
    }

    #[test]
    fn flannel_from_the_seed_warns_only_of_its_host_access() {
        let dir = std::env::var("GRAPPE_MANIFESTS").map_or_else(
            |_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/manifests"),
            std::path::PathBuf::from,
        );
        let text = std::fs::read_to_string(dir.join("kube-flannel-v0.28.9.yml"))
            .unwrap_or_else(|e| panic!("the seed's Flannel manifest in {}: {e}", dir.display()));
        let checks = risky_objects(&parse(&text).expect("parse"));
        let ids: Vec<&str> = checks.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["risk-host"], "{checks:#?}");
    }
}
