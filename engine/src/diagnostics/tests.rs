//! Each rule from fixtures: Kubernetes objects as the API returns them, reduced by the same
//! conversions the watches use, then diagnosed.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::DynamicObject;
use serde_json::{Value, json};

use super::*;
use crate::state::model::{EventInfo, KubeadmNetworking, NodeInfo, PodInfo, WorkloadInfo, ip_pool};
use crate::state::store::Change;
use crate::time::Timestamp;

const NOW: i64 = 1_795_000_000;

fn rfc(t: i64) -> String {
    fmt_time(t)
}

fn node(name: &str, ip: &str, calico_ip: Option<&str>, ready: bool) -> Node {
    let mut annotations = serde_json::Map::new();
    if let Some(a) = calico_ip {
        annotations.insert("projectcalico.org/IPv4Address".into(), json!(a));
        // calico-node sets the IPIP tunnel up with the address (the pools here are IPIP).
        annotations.insert(
            "projectcalico.org/IPv4IPIPTunnelAddr".into(),
            json!("192.168.0.1"),
        );
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": annotations},
        "status": {
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                            "message": if ready { "kubelet is posting ready status" } else {
                                "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized" }}]
        }
    }))
    .expect("node fixture")
}

fn with_condition(mut n: Node, kind: &str, status: &str, reason: &str, since: i64) -> Node {
    let cond = serde_json::from_value(json!({
        "type": kind, "status": status, "reason": reason, "lastTransitionTime": rfc(since)
    }))
    .expect("condition");
    n.status
        .get_or_insert_with(Default::default)
        .conditions
        .get_or_insert_with(Vec::new)
        .push(cond);
    n
}

fn calico_pod(node: &str, ready: bool, status: Value) -> Pod {
    let mut status = status;
    status["conditions"] =
        json!([{"type": "Ready", "status": if ready { "True" } else { "False" }}]);
    if status.get("phase").is_none() {
        status["phase"] = json!("Running");
    }
    serde_json::from_value(json!({
        "metadata": {"name": format!("calico-node-{node}"), "namespace": "kube-system",
                     "labels": {"k8s-app": "calico-node"}},
        "spec": {"nodeName": node, "containers": [{"name": "calico-node", "image": "docker.io/calico/node:v3.32.1"}]},
        "status": status
    }))
    .expect("pod fixture")
}

fn daemonset(ns: &str, name: &str, image: &str) -> DaemonSet {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c", "image": image}]}}},
        "status": {"desiredNumberScheduled": 3, "numberReady": 3, "currentNumberScheduled": 3, "numberMisscheduled": 0}
    }))
    .expect("daemonset fixture")
}

fn pool(cidr: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "crd.projectcalico.org/v1", "kind": "IPPool",
        "metadata": {"name": "default-ipv4-ippool"},
        "spec": {"cidr": cidr, "blockSize": 26, "ipipMode": "Always", "natOutgoing": true}
    }))
    .expect("pool fixture")
}

/// A healthy Calico cluster of three nodes; `edit` changes the fixtures before they load.
struct Fixture {
    nodes: Vec<Node>,
    pods: Vec<Pod>,
    daemonsets: Vec<DaemonSet>,
    pools: Vec<DynamicObject>,
    events: Vec<Event>,
    deployments: Vec<Deployment>,
    link: Link,
}

impl Fixture {
    fn healthy() -> Self {
        let names = [
            ("betelgeuse", "10.13.0.1"),
            ("rigel", "10.13.0.2"),
            ("saiph", "10.13.0.3"),
        ];
        Self {
            nodes: names
                .iter()
                .map(|(n, ip)| {
                    with_condition(
                        node(n, ip, Some(&format!("{ip}/16")), true),
                        "NetworkUnavailable",
                        "False",
                        "CalicoIsUp",
                        NOW - 3_600,
                    )
                })
                .collect(),
            pods: names
                .iter()
                .map(|(n, _)| calico_pod(n, true, json!({})))
                .collect(),
            daemonsets: vec![
                daemonset(
                    "kube-system",
                    "calico-node",
                    "docker.io/calico/node:v3.32.1",
                ),
                daemonset(
                    "kube-system",
                    "kube-proxy",
                    "registry.k8s.io/kube-proxy:v1.35.8",
                ),
            ],
            pools: vec![pool("192.168.0.0/16")],
            events: vec![],
            deployments: vec![],
            link: Link::default(),
        }
    }

    fn run(self) -> Vec<Finding> {
        let mut s = Stores::default();
        s.apply_nodes(Change::Reset(
            self.nodes
                .into_iter()
                .filter_map(NodeInfo::from_node)
                .collect(),
        ));
        s.apply_pods(Change::Reset(
            self.pods
                .into_iter()
                .filter_map(PodInfo::from_pod)
                .collect(),
        ));
        s.apply_daemonsets(Change::Reset(
            self.daemonsets
                .into_iter()
                .filter_map(WorkloadInfo::from_daemonset)
                .collect(),
        ));
        s.apply_deployments(Change::Reset(
            self.deployments
                .into_iter()
                .filter_map(WorkloadInfo::from_deployment)
                .collect(),
        ));
        s.apply_ippools(Change::Reset(
            self.pools.iter().filter_map(ip_pool).collect(),
        ));
        s.apply_events(Change::Reset(
            self.events
                .into_iter()
                .filter_map(EventInfo::from_event)
                .collect(),
        ));
        s.apply_kubeadm(Change::Upsert(KubeadmNetworking::parse(
            "networking:\n  podSubnet: 192.168.0.0/16\n  serviceSubnet: 10.96.0.0/12\n",
        )));
        diagnose(&s, &self.link, NOW)
    }
}

fn rules(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.rule.as_str()).collect()
}

#[test]
fn a_healthy_cluster_has_no_findings() {
    assert_eq!(rules(&Fixture::healthy().run()), Vec::<&str>::new());
}

#[test]
fn pool_overlapping_node_addresses() {
    let mut f = Fixture::healthy();
    f.pools = vec![pool("10.13.0.0/16")];
    let out = f.run();
    let overlap = out
        .iter()
        .find(|x| x.rule == POOL_OVERLAPS_NODES)
        .expect("overlap found");
    assert_eq!(overlap.severity, Severity::Critical);
    assert_eq!(overlap.nodes.len(), 3);
    assert_eq!(overlap.param("pool"), "10.13.0.0/16");
    assert!(overlap.evidence.iter().any(|e| e.value == "10.13.0.2"));
    // The same pool also lies outside kubeadm's podSubnet.
    assert!(rules(&out).contains(&POOL_OUTSIDE_POD_SUBNET));
}

#[test]
fn pool_outside_the_kubeadm_pod_subnet() {
    let mut f = Fixture::healthy();
    f.pools = vec![pool("172.16.0.0/16")];
    let out = f.run();
    assert_eq!(rules(&out), vec![POOL_OUTSIDE_POD_SUBNET]);
    assert_eq!(out[0].param("pod_subnet"), "192.168.0.0/16");
}

#[test]
fn duplicate_calico_addresses() {
    let mut f = Fixture::healthy();
    f.nodes[2] = node("saiph", "10.13.0.3", Some("10.13.0.2/16"), true);
    let out = f.run();
    let dup = out
        .iter()
        .find(|x| x.rule == DUPLICATE_IPV4)
        .expect("duplicate found");
    assert_eq!(dup.nodes, vec!["rigel", "saiph"]);
    assert_eq!(dup.param("ip"), "10.13.0.2");
    // saiph's annotation also differs from its InternalIP.
    let wrong = out
        .iter()
        .find(|x| x.rule == IPV4_NOT_INTERNAL_IP)
        .expect("mismatch");
    assert_eq!(wrong.nodes, vec!["saiph"]);
}

#[test]
fn autodetected_address_differs_from_internal_ip() {
    let mut f = Fixture::healthy();
    f.nodes[1] = node("rigel", "10.13.0.2", Some("10.0.2.15/24"), true);
    let out = f.run();
    assert_eq!(rules(&out), vec![IPV4_NOT_INTERNAL_IP]);
    assert_eq!(out[0].param("ipv4"), "10.0.2.15/24");
    assert_eq!(out[0].param("internal_ip"), "10.13.0.2");
}

#[test]
fn calico_node_crashlooping_with_its_termination_message() {
    let mut f = Fixture::healthy();
    f.pods[1] = calico_pod(
        "rigel",
        false,
        json!({"containerStatuses": [{"name": "calico-node", "image": "i", "imageID": "", "ready": false,
            "restartCount": 5, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                "message": "Calico node 'saiph' is already using the IPv4 address 10.13.0.3."}}}]}),
    );
    let out = f.run();
    assert_eq!(rules(&out), vec![CALICO_NODE_NOT_READY]);
    assert_eq!(out[0].param("state"), "CrashLoopBackOff");
    assert!(
        out[0]
            .param("detail")
            .contains("already using the IPv4 address")
    );
}

#[test]
fn calico_node_not_ready_with_the_readiness_probe_message() {
    let mut f = Fixture::healthy();
    f.pods[2] = calico_pod("saiph", false, json!({}));
    f.events = vec![serde_json::from_value(json!({
        "metadata": {"name": "e1", "namespace": "kube-system", "uid": "e1"},
        "involvedObject": {"kind": "Pod", "namespace": "kube-system", "name": "calico-node-saiph"},
        "reason": "Unhealthy", "type": "Warning", "count": 3, "lastTimestamp": rfc(NOW - 10),
        "message": "Readiness probe failed: calico/node is not ready: BIRD is not ready: BGP not established with 10.13.0.1"
    }))
    .expect("event")];
    let out = f.run();
    // The same probe names the BGP session down: its own rule says which.
    assert_eq!(rules(&out), vec![CALICO_NODE_NOT_READY, BGP_PEER_DOWN]);
    assert!(out[0].param("detail").contains("BGP not established"));
    assert!(out[0].evidence.iter().any(|e| e.field == "event Unhealthy"));
    assert_eq!(out[1].param("sessions"), "saiph -> 10.13.0.1 (betelgeuse)");
}

#[test]
fn network_unavailable_current_and_stale() {
    let mut f = Fixture::healthy();
    // rigel: True and calico-node not ready there: the network is really down.
    f.nodes[1] = with_condition(
        node("rigel", "10.13.0.2", Some("10.13.0.2/16"), true),
        "NetworkUnavailable",
        "True",
        "CalicoIsDown",
        NOW - 30,
    );
    f.pods[1] = calico_pod("rigel", false, json!({}));
    // saiph: True for two hours while its calico-node is Ready: a leftover.
    f.nodes[2] = with_condition(
        node("saiph", "10.13.0.3", Some("10.13.0.3/16"), true),
        "NetworkUnavailable",
        "True",
        "CalicoIsDown",
        NOW - 7_200,
    );
    let out = f.run();
    let current = out
        .iter()
        .find(|x| x.rule == NETWORK_UNAVAILABLE)
        .expect("current");
    assert_eq!(current.nodes, vec!["rigel"]);
    let stale = out
        .iter()
        .find(|x| x.rule == NETWORK_UNAVAILABLE_STALE)
        .expect("stale");
    assert_eq!(stale.nodes, vec!["saiph"]);
    assert_eq!(stale.severity, Severity::Warning);
}

#[test]
fn two_cnis_installed() {
    let mut f = Fixture::healthy();
    f.daemonsets.push(daemonset(
        "kube-flannel",
        "kube-flannel-ds",
        "ghcr.io/flannel-io/flannel:v0.28.9",
    ));
    let out = f.run();
    assert_eq!(rules(&out), vec![TWO_CNIS]);
    assert_eq!(out[0].param("cnis"), "Calico, Flannel");
}

#[test]
fn no_cni_while_nodes_are_not_ready() {
    let mut f = Fixture::healthy();
    f.daemonsets
        .retain(|d| d.metadata.name.as_deref() == Some("kube-proxy"));
    f.pods.clear();
    f.pools.clear();
    f.nodes = vec![
        node("betelgeuse", "10.13.0.1", None, false),
        node("rigel", "10.13.0.2", None, false),
    ];
    let out = f.run();
    assert_eq!(rules(&out), vec![NO_CNI]);
    assert!(
        out[0].evidence[0]
            .value
            .contains("cni plugin not initialized")
    );
    assert_eq!(out[0].param("count"), "2");
}

#[test]
fn api_server_unreachable_comes_first() {
    let mut f = Fixture::healthy();
    f.link.unreachable_since = Some(Timestamp::parse("2026-11-28T09:00:00Z").expect("time"));
    f.link.error = Some("error trying to connect: tcp connect error: Connection refused".into());
    f.pools = vec![pool("172.16.0.0/16")];
    let out = f.run();
    assert_eq!(rules(&out), vec![API_UNREACHABLE, POOL_OUTSIDE_POD_SUBNET]);
    assert!(out[0].evidence[0].value.contains("Connection refused"));
}

#[test]
fn kube_controllers_unavailable() {
    let mut f = Fixture::healthy();
    f.deployments = vec![
        serde_json::from_value(json!({
            "metadata": {"name": "calico-kube-controllers", "namespace": "kube-system"},
            "spec": {"replicas": 1, "selector": {}, "template": {}},
            "status": {"availableReplicas": 0}
        }))
        .expect("deployment"),
    ];
    assert_eq!(rules(&f.run()), vec![KUBE_CONTROLLERS_UNAVAILABLE]);
}

#[test]
fn cni_versions_come_from_image_tags() {
    let mut s = Stores::default();
    s.apply_daemonsets(Change::Reset(
        [
            daemonset(
                "kube-system",
                "calico-node",
                "docker.io/calico/node:v3.26.5",
            ),
            daemonset(
                "kube-flannel",
                "kube-flannel-ds",
                "ghcr.io/flannel-io/flannel:v0.28.9@sha256:abc",
            ),
        ]
        .into_iter()
        .filter_map(WorkloadInfo::from_daemonset)
        .collect(),
    ));
    let mut cnis = detect_cnis(&s);
    cnis.sort();
    assert_eq!(
        cnis,
        vec![
            (
                "Calico".into(),
                Some("v3.26.5".into()),
                "kube-system/calico-node".into()
            ),
            (
                "Flannel".into(),
                Some("v0.28.9".into()),
                "kube-flannel/kube-flannel-ds".into()
            ),
        ]
    );
}

#[test]
fn a_node_the_cni_daemonset_does_not_select_or_tolerate() {
    let mut f = Fixture::healthy();
    let label = |mut n: Node, labels: Value| {
        n.metadata.labels = Some(serde_json::from_value(labels).expect("labels"));
        n
    };
    let linux = json!({"kubernetes.io/os": "linux"});
    f.nodes = vec![
        label(node("betelgeuse", "10.13.0.1", None, true), linux.clone()),
        label(node("rigel", "10.13.0.2", None, true), linux.clone()),
        // The label removed: calico-node never comes, the kubelet has no CNI.
        label(node("saiph", "10.13.0.3", None, false), json!({})),
        {
            let mut n = label(node("alnitak", "10.13.0.4", None, true), linux);
            n.spec = Some(
                serde_json::from_value(json!({"taints": [
                    {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
                    {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
                ]}))
                .expect("taints"),
            );
            n
        },
    ];
    f.pods = ["betelgeuse", "rigel"]
        .iter()
        .map(|n| {
            let mut p = calico_pod(n, true, json!({}));
            p.metadata.owner_references = Some(vec![
                serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
                    "name": "calico-node", "uid": "u", "controller": true}))
                .expect("owner"),
            ]);
            p
        })
        .collect();
    let mut ds = daemonset(
        "kube-system",
        "calico-node",
        "docker.io/calico/node:v3.32.1",
    );
    ds.spec = Some(
        serde_json::from_value(json!({"selector": {}, "template": {"spec": {
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
            "containers": [{"name": "calico-node", "image": "docker.io/calico/node:v3.32.1"}]
        }}}))
        .expect("spec"),
    );
    f.daemonsets = vec![ds];
    let findings = f.run();
    let finding = findings
        .iter()
        .find(|x| x.rule == CNI_NODE_NOT_COVERED)
        .expect("the rule");
    assert_eq!(finding.severity, Severity::Critical, "saiph is NotReady");
    assert_eq!(finding.nodes, ["alnitak", "saiph"]);
    assert_eq!(finding.param("daemonset"), "kube-system/calico-node");
    let why: Vec<&str> = finding.evidence.iter().map(|e| e.value.as_str()).collect();
    assert_eq!(
        why,
        [
            "no toleration for the node's taint dedicated=gpu:NoSchedule",
            "selects kubernetes.io/os=linux; the node has no such label",
        ]
    );
}

#[test]
fn node_affinity_terms_and_tolerations_as_the_scheduler_reads_them() {
    use crate::state::model::Placement;
    let spec: k8s_openapi::api::core::v1::PodSpec = serde_json::from_value(json!({
        "containers": [],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]},
                                      {"key": "gpu", "operator": "DoesNotExist"}]},
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["rigel"]}]}
            ]}}},
        "tolerations": [{"operator": "Exists", "effect": "NoExecute"}]
    }))
    .expect("spec");
    let placement = Placement::of(Some(&spec));
    let on = |name: &str, labels: Value, taint: Option<&str>| {
        let mut n = node(name, "10.13.0.9", None, true);
        n.metadata.labels = Some(serde_json::from_value(labels).expect("labels"));
        if let Some(effect) = taint {
            n.spec = Some(
                serde_json::from_value(
                    json!({"taints": [{"key": "k", "value": "v", "effect": effect}]}),
                )
                .expect("taint"),
            );
        }
        placement
            .misses(&NodeInfo::from_node(n).expect("node"))
            .len()
    };
    assert_eq!(on("saiph", json!({"zone": "a"}), None), 0);
    assert_eq!(on("saiph", json!({"zone": "a", "gpu": "1"}), None), 1);
    assert_eq!(on("rigel", json!({}), None), 0, "matched by its name");
    assert_eq!(on("saiph", json!({"zone": "c"}), None), 1);
    assert_eq!(on("saiph", json!({"zone": "a"}), Some("NoExecute")), 0);
    assert_eq!(on("saiph", json!({"zone": "a"}), Some("NoSchedule")), 1);
    assert_eq!(
        on("saiph", json!({"zone": "a"}), Some("PreferNoSchedule")),
        0
    );
}
