//! Unit tests of the parent module.
use super::*;
use serde_json::json;

#[test]
fn diff_names_changed_fields_and_ignores_server_fields() {
    let before = json!({
        "metadata": {"name": "calico-node", "resourceVersion": "1", "generation": 1,
                     "annotations": {"deprecated.daemonset.template.generation": "1"}},
        "spec": {"template": {"spec": {"containers": [{"name": "calico-node", "image": "calico/node:v3.25.1"}]}}},
        "status": {"numberReady": 3}
    });
    let after = json!({
        "metadata": {"name": "calico-node", "resourceVersion": "9", "generation": 2,
                     "annotations": {"deprecated.daemonset.template.generation": "2"}},
        "spec": {"template": {"spec": {"containers": [{"name": "calico-node", "image": "calico/node:v3.26.5"}]}},
                 "minReadySeconds": 5},
        "status": {"numberReady": 0}
    });
    let (changes, total) = diff(&before, &after);
    assert_eq!(total, 2);
    assert_eq!(changes[0].path, "/spec/minReadySeconds");
    assert_eq!(changes[0].before, None);
    assert_eq!(changes[0].after.as_deref(), Some("5"));
    assert_eq!(changes[1].path, "/spec/template/spec/containers/0/image");
    assert_eq!(diff(&before, &before).1, 0);
    assert_eq!(normalize(&before).get("status"), None);
}

#[test]
fn holding_names_finalizers_and_a_crd_terminating_condition() {
    let crd: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "ipamblocks.crd.projectcalico.org",
                     "finalizers": ["customresourcecleanup.apiextensions.k8s.io"]},
        "status": {"conditions": [
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
            {"type": "Terminating", "status": "True", "reason": "InstanceDeletionCheck",
             "message": "could not confirm zero CustomResources remaining: timed out waiting for the condition"}]}
    }))
    .unwrap();
    assert_eq!(
        holding(&crd),
        "finalizers customresourcecleanup.apiextensions.k8s.io; Terminating InstanceDeletionCheck: \
         could not confirm zero CustomResources remaining: timed out waiting for the condition"
    );
    let pod: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "status": {"phase": "Running"}
    }))
    .unwrap();
    assert_eq!(holding(&pod), "no finalizers");
}

#[test]
fn a_secrets_values_are_never_shown() {
    let before = json!({"kind": "Secret", "metadata": {"name": "s", "labels": {"a": "1"}},
                        "data": {"token": "c2VjcmV0LW9uZQ=="}, "type": "Opaque"});
    let after = json!({"kind": "Secret", "metadata": {"name": "s", "labels": {"a": "2"}},
                       "data": {"token": "c2VjcmV0LXR3bw==", "new": "eA=="},
                       "stringData": {"password": "hunter2-hunter2"}, "type": "Opaque"});
    let (changes, total) = diff(&before, &after);
    assert_eq!(total, 4);
    let text = format!("{changes:?}");
    // kubectl apply's copy of the whole object in an annotation: its values too.
    let applied = |v: &str| {
        json!({"kind": "Secret", "metadata": {"name": "s", "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration":
                format!("{{\"data\":{{\"token\":\"{v}\"}}}}")}}})
    };
    let (annotated, _) = diff(&applied("c2VjcmV0LW9uZQ=="), &applied("c2VjcmV0LXR3bw=="));
    let shown = format!("{annotated:?}");
    assert!(!shown.contains("c2VjcmV0"), "{shown}");
    let yaml = without_secret_values(&applied("c2VjcmV0LW9uZQ=="));
    assert!(!yaml.to_string().contains("c2VjcmV0"), "{yaml}");
    for secret in ["c2VjcmV0", "eA==", "hunter2"] {
        assert!(!text.contains(secret), "{secret} shown: {text}");
    }
    let token = changes
        .iter()
        .find(|c| c.path == "/data/token")
        .expect("token");
    assert!(
        token
            .before
            .as_deref()
            .unwrap()
            .starts_with("secret value, sha256 ")
    );
    assert_ne!(token.before, token.after, "the digests tell a change");
    let label = changes
        .iter()
        .find(|c| c.path == "/metadata/labels/a")
        .expect("label");
    assert_eq!(label.after.as_deref(), Some("2"), "other fields are shown");
    // A ConfigMap's data is not a secret.
    let (changes, _) = diff(
        &json!({"kind": "ConfigMap", "data": {"k": "v1"}}),
        &json!({"kind": "ConfigMap", "data": {"k": "v2"}}),
    );
    assert_eq!(changes[0].after.as_deref(), Some("v2"));
}

#[test]
fn long_values_are_shortened_and_paths_escaped() {
    let (changes, _) = diff(&json!({"a/b": "x".repeat(500)}), &json!({"a/b": "y"}));
    assert_eq!(changes[0].path, "/a~1b");
    assert!(changes[0].before.as_ref().unwrap().ends_with('…'));
    let many_a: serde_json::Map<String, Value> =
        (0..80).map(|i| (format!("k{i}"), json!(i))).collect();
    let (changes, total) = diff(&Value::Object(many_a), &json!({}));
    assert_eq!((changes.len(), total), (MAX_CHANGES_SHOWN, 80));
}
