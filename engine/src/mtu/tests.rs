//! The MTU budget from fixtures as the API returns them: pools of each encapsulation, the
//! configured MTU's sources in Calico's order, host links and probes narrowing the path,
//! nodes without their tunnel address, and CrossSubnet pools in one subnet.

use grappe_views::mtu::{HostMtuView, MtuVerdict, ProbeView};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::DynamicObject;
use serde_json::{Value, json};

use super::*;
use crate::state::model::{InstallationInfo, NodeInfo, PodInfo, ip_pool};
use crate::state::store::Change;

fn node(name: &str, ip: &str, annotations: Value) -> NodeInfo {
    let n: Node = serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": annotations},
        "status": {"addresses": [{"type": "InternalIP", "address": ip}]}
    }))
    .expect("node");
    NodeInfo::from_node(n).expect("node info")
}

fn calico_node(on: &str) -> PodInfo {
    let p: Pod = serde_json::from_value(json!({
        "metadata": {"name": format!("calico-node-{on}"), "namespace": "kube-system",
                     "labels": {"k8s-app": "calico-node"}},
        "spec": {"nodeName": on, "containers": [{"name": "calico-node", "image": "calico/node:v3.31.7"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    }))
    .expect("pod");
    PodInfo::from_pod(p).expect("pod info")
}

fn pool(name: &str, cidr: &str, ipip: &str, vxlan: &str) -> IpPoolInfo {
    let o: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "crd.projectcalico.org/v1", "kind": "IPPool",
        "metadata": {"name": name},
        "spec": {"cidr": cidr, "ipipMode": ipip, "vxlanMode": vxlan}
    }))
    .expect("pool");
    ip_pool(&o).expect("pool info")
}

fn link(node: &str, mtu: u32) -> HostMtuView {
    HostMtuView {
        node: node.into(),
        iface: "eth0".into(),
        mtu,
        calico_links: vec![],
        at: String::new(),
    }
}

/// Two nodes of 10.13.0.0/24 with Calico ready on both, an IPIP pool.
fn stores(ipip: &str) -> Stores {
    let mut s = Stores::default();
    let ann = |ip: &str| {
        json!({"projectcalico.org/IPv4Address": format!("{ip}/24"),
               "projectcalico.org/IPv4IPIPTunnelAddr": "192.168.0.1"})
    };
    s.apply_nodes(Change::Reset(vec![
        node("rigel", "10.13.0.2", ann("10.13.0.2")),
        node("saiph", "10.13.0.3", ann("10.13.0.3")),
    ]));
    s.apply_pods(Change::Reset(vec![
        calico_node("rigel"),
        calico_node("saiph"),
    ]));
    s.apply_ippools(Change::Reset(vec![pool(
        "default-ipv4-ippool",
        "192.168.0.0/16",
        ipip,
        "Never",
    )]));
    s
}

#[test]
fn each_encapsulation_costs_its_bytes() {
    let enc = |ipip, vxlan, cidr| encapsulation(&pool("p", cidr, ipip, vxlan), false);
    assert_eq!(
        enc("Always", "Never", "192.168.0.0/16"),
        ("IPIP".into(), 20)
    );
    assert_eq!(
        enc("CrossSubnet", "Never", "192.168.0.0/16"),
        ("IPIP CrossSubnet".into(), 20)
    );
    assert_eq!(
        enc("Never", "Always", "192.168.0.0/16"),
        ("VXLAN".into(), 50)
    );
    assert_eq!(enc("Never", "Always", "fd00::/48"), ("VXLAN".into(), 70));
    assert_eq!(enc("Never", "Never", "192.168.0.0/16"), ("none".into(), 0));
    let wg = encapsulation(&pool("p", "192.168.0.0/16", "Always", "Never"), true);
    assert_eq!(wg, ("WireGuard".into(), 60));
}

#[test]
fn without_facts_1500_is_assumed_and_auto_detection_fits() {
    let v = view(&stores("Always"));
    let p = &v.pools[0];
    assert_eq!((p.path_mtu, p.path_source.as_str()), (1500, ""));
    assert_eq!(
        (p.expected, p.pod_mtu, p.pod_source.as_str()),
        (1480, 1480, "auto")
    );
    assert_eq!(p.verdict, MtuVerdict::Fits);
    assert!(v.missing_tunnels.is_empty());
}

#[test]
fn a_smaller_uplink_makes_auto_detected_pods_too_large() {
    let mut s = stores("Always");
    s.host_facts.record_links(link("rigel", 1500));
    s.host_facts.record_links(link("saiph", 1400));
    let p = &view(&s).pools[0];
    assert_eq!(
        (p.path_mtu, p.path_source.as_str()),
        (1400, "Node/saiph eth0")
    );
    // rigel's pods get 1480 (1500 - 20): 1500-byte packets that saiph's link drops.
    assert_eq!((p.expected, p.pod_mtu), (1380, 1480));
    assert_eq!(p.verdict, MtuVerdict::TooLarge);
}

#[test]
fn the_installation_wins_over_calico_config_and_a_probe_narrows_the_path() {
    let mut s = stores("Never");
    s.calico_veth_mtu = Some(1440);
    let p = &view(&s).pools[0];
    assert_eq!(
        (p.pod_mtu, p.pod_source.as_str()),
        (1440, "calico-config veth_mtu")
    );
    assert_eq!(p.verdict, MtuVerdict::Smaller);
    s.apply_installation(Change::Reset(vec![InstallationInfo {
        mtu: Some(1500),
        ..InstallationInfo::default()
    }]));
    s.host_facts.record_probe(ProbeView {
        from: "rigel".into(),
        to: "saiph".into(),
        to_ip: "10.13.0.3".into(),
        largest: Some(1450),
        steps: vec![],
        actor: "admin".into(),
        at: String::new(),
        duration_ms: 0,
    });
    let p = &view(&s).pools[0];
    assert_eq!(
        (p.pod_mtu, p.pod_source.as_str()),
        (1500, "Installation spec.calicoNetwork.mtu")
    );
    assert_eq!(p.path_source, "probe rigel -> saiph (10.13.0.3)");
    assert_eq!(p.verdict, MtuVerdict::TooLarge);
}

#[test]
fn a_node_without_its_tunnel_address_is_named() {
    let mut s = stores("Always");
    s.apply_nodes(Change::Upsert(node(
        "saiph",
        "10.13.0.3",
        json!({"projectcalico.org/IPv4Address": "10.13.0.3/24"}),
    )));
    let missing = view(&s).missing_tunnels;
    assert_eq!(missing.len(), 1);
    assert_eq!(
        (missing[0].node.as_str(), missing[0].encapsulation.as_str()),
        ("saiph", "IPIP")
    );
    // A VXLAN pool asks for the VXLAN address, which neither node has.
    s.apply_ippools(Change::Reset(vec![pool(
        "v",
        "192.168.0.0/16",
        "Never",
        "Always",
    )]));
    assert_eq!(view(&s).missing_tunnels.len(), 2);
}

#[test]
fn cross_subnet_in_one_subnet_is_named_and_not_across_two() {
    let mut s = stores("CrossSubnet");
    assert_eq!(
        view(&s).cross_subnet_one_subnet,
        [("default-ipv4-ippool".to_owned(), "10.13.0.0/24".to_owned())]
    );
    s.apply_nodes(Change::Upsert(node(
        "saiph",
        "10.14.0.3",
        json!({"projectcalico.org/IPv4Address": "10.14.0.3/24"}),
    )));
    assert!(view(&s).cross_subnet_one_subnet.is_empty());
}
