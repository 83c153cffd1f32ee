//! Unit tests of the parent module.

use super::*;
use grappe_views::WorkloadView;

#[test]
fn an_event_is_kept_bounded_neutralised_and_never_in_the_future() {
    let e: Event = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "x.1", "namespace": "demo", "uid": "u1"},
        "involvedObject": {"kind": "Pod", "namespace": "demo", "name": "web-1"},
        "reason": "Fake\u{202E}",
        "message": format!("\u{202E}evil {}", "x".repeat(1_500_000)),
        "lastTimestamp": "2099-01-01T00:00:00Z",
        "count": 3
    }))
    .expect("event");
    let info = EventInfo::from_event(e).expect("kept");
    assert!(
        info.message.len() <= EVENT_MESSAGE_BYTES + 3,
        "{}",
        info.message.len()
    );
    assert!(
        info.message.starts_with("<U+202E>evil "),
        "{}",
        &info.message[..20]
    );
    assert_eq!(info.reason, "Fake<U+202E>");
    assert!(info.last_seen <= crate::time::now().unix_seconds());
}

#[test]
fn kubeadm_cluster_configuration_networking() {
    let text = "apiServer: {}\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n\
                kubernetesVersion: v1.35.8\nnetworking:\n  dnsDomain: cluster.local\n  \
                podSubnet: \"192.168.0.0/16\"\n  serviceSubnet: 10.96.0.0/12\nscheduler: {}\n";
    let n = KubeadmNetworking::parse(text);
    assert_eq!(n.pod_subnet.as_deref(), Some("192.168.0.0/16"));
    assert_eq!(n.service_subnet.as_deref(), Some("10.96.0.0/12"));
    assert_eq!(n.kubernetes_version.as_deref(), Some("v1.35.8"));
    // A podSubnet outside `networking:` is not the cluster's.
    let other = KubeadmNetworking::parse("etcd:\n  podSubnet: 1.2.3.0/24\n");
    assert_eq!(other.pod_subnet, None);
}

#[test]
fn node_status_text_matches_kubectl() {
    let node: Node = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "rigel", "labels": {"node-role.kubernetes.io/control-plane": ""}},
        "spec": {"unschedulable": true, "podCIDR": "192.168.1.0/24"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}],
                   "addresses": [{"type": "InternalIP", "address": "10.13.0.2"}]}
    }))
    .expect("node");
    let n = NodeInfo::from_node(node).expect("named");
    assert_eq!(n.status_text(), "Ready,SchedulingDisabled");
    assert_eq!(n.roles, vec!["control-plane"]);
    assert_eq!(n.pod_cidrs, vec!["192.168.1.0/24"]);
    assert_eq!(n.internal_ip(), Some("10.13.0.2"));
}

#[test]
fn pod_crashloop_and_last_termination() {
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "calico-node-x", "namespace": "kube-system",
                     "labels": {"k8s-app": "calico-node"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet",
                                          "name": "calico-node", "uid": "u"}]},
        "spec": {"nodeName": "rigel", "containers": [{"name": "calico-node", "image": "docker.io/calico/node:v3.25.1"}]},
        "status": {"phase": "Running", "containerStatuses": [{
            "name": "calico-node", "image": "i", "imageID": "", "ready": false, "restartCount": 4,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                         "message": "Calico node 'rigel' is already using the IPv4 address 10.13.0.3"}}}]}
    }))
    .expect("pod");
    let p = PodInfo::from_pod(pod).expect("named");
    assert_eq!(p.waiting_reason.as_deref(), Some("CrashLoopBackOff"));
    assert_eq!(p.restarts, 4);
    assert_eq!(p.app.as_deref(), Some("calico-node"));
    assert_eq!(p.owner.as_ref().map(|o| o.kind.as_str()), Some("DaemonSet"));
    assert!(
        p.last_termination
            .expect("terminated")
            .1
            .contains("already using")
    );
}

#[test]
fn annotations_and_reasons_from_a_cluster_are_bounded_and_neutralised() {
    let node: k8s_openapi::api::core::v1::Node = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "rigel", "annotations": {
            "projectcalico.org/IPv4Address": format!("\u{202E}10.0.0.1/24{}", "9".repeat(10_000)),
        }},
    }))
    .expect("node");
    let info = NodeInfo::from_node(node).expect("kept");
    let shown = info.calico_ipv4.expect("the annotation");
    assert!(shown.starts_with("<U+202E>10.0.0.1/24"), "{}", &shown[..20]);
    assert!(shown.len() <= SHORT_TEXT + 3, "{}", shown.len());
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "p", "namespace": "demo"},
        "status": {"containerStatuses": [{
            "name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 1,
            "state": {"waiting": {"reason": "Crash\u{200B}Loop"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "message": "x".repeat(100_000)}}
        }]}
    }))
    .expect("pod");
    let info = PodInfo::from_pod(pod).expect("kept");
    assert_eq!(info.waiting_reason.as_deref(), Some("Crash<U+200B>Loop"));
    let (_, message) = info.last_termination.expect("terminated");
    assert!(message.len() <= 1024 + 3, "{}", message.len());
}

#[test]
fn an_image_is_found_by_its_repository_not_by_a_prefix_of_it() {
    let workload = |images: &[&str]| WorkloadInfo {
        rollout: WorkloadView {
            namespace: "calico-system".into(),
            name: "csi-node-driver".into(),
            desired: 1,
            ready: 1,
            available: 1,
            unavailable: 0,
            updated: 1,
        },
        images: images.iter().map(|i| (*i).to_owned()).collect(),
        placement: Default::default(),
    };
    // The operator's csi-node-driver is not calico-node.
    let csi = workload(&[
        "quay.io/calico/csi:v3.32.1",
        "quay.io/calico/node-driver-registrar:v3.32.1",
    ]);
    assert_eq!(csi.image_of("calico/node"), None);
    let node = workload(&["quay.io/calico/node:v3.32.1"]);
    assert_eq!(
        node.image_of("calico/node"),
        Some("quay.io/calico/node:v3.32.1")
    );
    let plain = workload(&["calico/node@sha256:0123"]);
    assert_eq!(
        plain.image_of("calico/node"),
        Some("calico/node@sha256:0123")
    );
    let registry_port = workload(&["registry.local:5000/calico/node"]);
    assert!(registry_port.image_of("calico/node").is_some());
    assert_eq!(
        workload(&["example.com/notcalico/node:v1"]).image_of("calico/node"),
        None
    );
}

#[test]
fn go_times_as_calico_writes_them() {
    use super::go_time;
    assert_eq!(
        go_time("2026-12-05 16:45:45.123456789 +0000 UTC"),
        Some(1_796_489_145)
    );
    assert_eq!(
        go_time("2026-12-05 17:45:45 +0100 CET"),
        Some(1_796_489_145)
    );
    assert_eq!(go_time("yesterday"), None);
    assert_eq!(go_time(""), None);
}
