//! The check from fixtures as the API returns them (reduced by the watches' own conversions):
//! a pool with two nodes' blocks, a pod, a deleted pod's leftover, a tunnel address, a
//! borrowed address, a handle without allocation, an allocation without handle, a block of a
//! deleted node and a pod address no block allocates.

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::DynamicObject;
use serde_json::{Value, json};

use super::*;
use crate::state::model::{IpPoolInfo, IpamHandleInfo, NodeInfo, PodInfo, ip_pool};
use crate::state::store::Change;

fn node(name: &str, tunnel: &str) -> NodeInfo {
    let n: Node = serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": {"projectcalico.org/IPv4IPIPTunnelAddr": tunnel}},
        "status": {"addresses": [{"type": "InternalIP", "address": "10.13.0.10"}]}
    }))
    .expect("node");
    NodeInfo::from_node(n).expect("node info")
}

fn pod(ns: &str, name: &str, node: &str, ip: &str) -> PodInfo {
    let p: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx"}]},
        "status": {"phase": "Running", "podIP": ip}
    }))
    .expect("pod");
    PodInfo::from_pod(p).expect("pod info")
}

fn dynamic(kind: &str, name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "crd.projectcalico.org/v1", "kind": kind,
        "metadata": {"name": name}, "spec": spec
    }))
    .expect("custom resource")
}

/// A /29 block of `node` with `owners` at ordinals 0.. (`None`: free).
fn block(cidr: &str, node: &str, owners: &[Option<Value>]) -> IpamBlockInfo {
    let mut attributes = Vec::new();
    let allocations: Vec<Value> = owners
        .iter()
        .map(|o| match o {
            Some(attr) => {
                attributes.push(attr.clone());
                json!(attributes.len() - 1)
            }
            None => Value::Null,
        })
        .chain(std::iter::repeat_n(Value::Null, 8 - owners.len()))
        .collect();
    let name = cidr.replace(['.', '/'], "-");
    IpamBlockInfo::from_dynamic(&dynamic(
        "IPAMBlock",
        &name,
        json!({"cidr": cidr, "affinity": format!("host:{node}"),
               "allocations": allocations, "attributes": attributes}),
    ))
    .expect("block")
}

fn pod_attr(handle: &str, ns: &str, name: &str, node: &str) -> Option<Value> {
    Some(json!({"handle_id": handle, "secondary": {"namespace": ns, "pod": name, "node": node}}))
}

fn handle(id: &str) -> IpamHandleInfo {
    IpamHandleInfo::from_dynamic(&dynamic(
        "IPAMHandle",
        &id.to_lowercase(),
        json!({"handleID": id, "block": {}}),
    ))
    .expect("handle")
}

/// 192.168.0.0/24 in /29 blocks.
fn pool() -> IpPoolInfo {
    ip_pool(&dynamic(
        "IPPool",
        "default-ipv4-ippool",
        json!({"cidr": "192.168.0.0/24", "blockSize": 29}),
    ))
    .expect("pool")
}

fn stores() -> Stores {
    let mut s = Stores::default();
    s.apply_ippools(Change::Reset(vec![pool()]));
    s.apply_nodes(Change::Reset(vec![
        node("rigel", "192.168.0.0"),
        node("saiph", "192.168.0.8"),
    ]));
    s.apply_pods(Change::Reset(vec![
        pod("demo", "web-1", "rigel", "192.168.0.1"),
        // Uses an address of saiph's block: borrowed.
        pod("demo", "web-2", "rigel", "192.168.0.9"),
        // Allocated by no block.
        pod("demo", "web-3", "saiph", "192.168.0.40"),
        // hostNetwork: the node's own address, outside every pool.
        pod("kube-system", "kube-proxy-x", "rigel", "10.13.0.10"),
    ]));
    let tunnel = |node: &str| {
        Some(json!({"handle_id": format!("ipip-tunnel-addr-{node}"),
                    "secondary": {"node": node, "type": "ipipTunnelAddress"}}))
    };
    s.apply_ipamblocks(Change::Reset(vec![
        block(
            "192.168.0.0/29",
            "rigel",
            &[
                tunnel("rigel"),
                pod_attr("k8s-pod-network.aaa", "demo", "web-1", "rigel"),
                // A crashed CNI DEL: the pod is gone, its address and handle stay.
                pod_attr("k8s-pod-network.bbb", "demo", "gone-1", "rigel"),
            ],
        ),
        block(
            "192.168.0.8/29",
            "saiph",
            &[
                tunnel("saiph"),
                pod_attr("k8s-pod-network.ccc", "demo", "web-2", "rigel"),
            ],
        ),
        block(
            "192.168.0.16/29",
            "alnitak",
            &[pod_attr("k8s-pod-network.ddd", "demo", "old", "alnitak")],
        ),
    ]));
    s.apply_ipamhandles(Change::Reset(vec![
        handle("ipip-tunnel-addr-rigel"),
        handle("ipip-tunnel-addr-saiph"),
        handle("k8s-pod-network.aaa"),
        handle("k8s-pod-network.bbb"),
        handle("k8s-pod-network.ddd"),
        handle("k8s-pod-network.zzz"),
    ]));
    s
}

#[test]
fn the_check_finds_what_calicoctl_ipam_check_reports() {
    let v = check(&stores());
    assert_eq!((v.blocks, v.allocations, v.tunnel_addresses), (3, 6, 2));
    let ips = |l: &Listed<AddressView>| l.items.iter().map(|a| a.ip.clone()).collect::<Vec<_>>();
    assert_eq!(ips(&v.leaked), ["192.168.0.2", "192.168.0.16"]);
    assert_eq!(v.leaked.items[0].why, "pod demo/gone-1 no longer exists");
    assert_eq!(
        v.leaked.items[0].handle.as_deref(),
        Some("k8s-pod-network.bbb")
    );
    assert_eq!(ips(&v.unallocated), ["192.168.0.40"]);
    assert_eq!(v.unallocated.items[0].pod.as_deref(), Some("demo/web-3"));
    assert_eq!(v.handles_without_allocations.items, ["k8s-pod-network.zzz"]);
    assert_eq!(ips(&v.missing_handles), ["192.168.0.9"]);
    assert_eq!(ips(&v.borrowed), ["192.168.0.9"]);
    assert_eq!(v.orphan_blocks.total, 1);
    assert!(v.orphan_blocks.items[0].contains("alnitak"));
    assert_eq!(v.problems(), 2 + 1 + 1);
    let pool = &v.pools[0];
    assert_eq!(
        (pool.size, pool.allocated, pool.blocks, pool.blocks_total),
        (256, 6, 3, 32)
    );
    assert_eq!(pool.permille(), 23);
    // The bar's shares: rigel's block holds 3, saiph's and alnitak's 2 and 1.
    let shares: Vec<(&str, u64)> = pool
        .by_node
        .iter()
        .map(|n| (n.node.as_str(), n.allocated))
        .collect();
    assert_eq!(shares, [("rigel", 3), ("saiph", 2), ("alnitak", 1)]);
    assert_eq!(pool.other_nodes(), 0);
    let rigel = v.nodes.iter().find(|n| n.node == "rigel").expect("rigel");
    assert_eq!((rigel.blocks, rigel.allocations, rigel.borrowed), (1, 3, 1));
    assert!(
        !v.nodes
            .iter()
            .find(|n| n.node == "alnitak")
            .expect("alnitak")
            .exists
    );
}

#[test]
fn a_pool_bar_names_its_largest_nodes_and_counts_the_rest() {
    let mut s = stores();
    // Twelve nodes with one block each, node n holding n + 1 addresses (8 at most: a /29).
    let blocks: Vec<IpamBlockInfo> = (0..12u8)
        .map(|n| {
            let owners: Vec<Option<Value>> = (0..=n.min(7))
                .map(|i| pod_attr(&format!("k8s-pod-network.n{n}i{i}"), "demo", "p", "x"))
                .collect();
            block(
                &format!("192.168.0.{}/29", u16::from(n) * 8),
                &format!("node-{n:02}"),
                &owners,
            )
        })
        .collect();
    s.apply_ipamblocks(Change::Reset(blocks));
    let pool = &check(&s).pools[0];
    assert_eq!(pool.by_node.len(), POOL_NODES_SHOWN);
    // Nodes 07 to 11 hold 8 each, by name among equals; then 06, 05 and 04 (7, 6, 5).
    let names: Vec<&str> = pool.by_node.iter().map(|n| n.node.as_str()).collect();
    assert_eq!(
        names,
        [
            "node-07", "node-08", "node-09", "node-10", "node-11", "node-06", "node-05", "node-04"
        ]
    );
    assert_eq!(pool.allocated, 5 * 8 + 7 + 6 + 5 + 4 + 3 + 2 + 1);
    assert_eq!(pool.other_nodes(), 4 + 3 + 2 + 1);
}

#[test]
fn lists_are_bounded_and_count_everything() {
    let mut s = stores();
    let many: Vec<IpamHandleInfo> = (0..SHOWN + 50)
        .map(|i| handle(&format!("k8s-pod-network.x{i:04}")))
        .collect();
    s.apply_ipamhandles(Change::Reset(many));
    let v = check(&s);
    assert_eq!(v.handles_without_allocations.items.len(), SHOWN);
    assert_eq!(v.handles_without_allocations.total, SHOWN + 50);
    assert_eq!(
        v.missing_handles.total, 6,
        "every allocation's handle is gone"
    );
}

#[test]
fn nothing_is_told_from_an_absence_while_the_pods_are_still_read() {
    let mut s = stores();
    // The pods' first list has begun, not ended: the table is partial.
    s.reading.insert("pods".to_owned());
    let v = check(&s);
    assert_eq!(v.unread, ["pods"]);
    assert_eq!(v.leaked.total, 0, "a leak told from a partial pod table");
    assert_eq!(v.unallocated.total, 0);
    assert_eq!(v.missing_handles.total, 0);
    assert_eq!(v.handles_without_allocations.total, 0);
    // What does not rest on an absence stays.
    assert_eq!(v.borrowed.total, 1);
    assert_eq!(v.pools[0].allocated, 6);
    let (leaks, _) = leaks(&s);
    assert!(
        leaks.is_empty(),
        "the release would plan from a partial table"
    );
    // Once read whole, the same tables give the leaks again.
    s.reading.remove("pods");
    let v = check(&s);
    assert!(v.unread.is_empty());
    assert!(v.leaked.total > 0);
}

/// A pod that finished keeps its address in its status, but its sandbox and network are gone:
/// an allocation still held for it is leaked (as calicoctl counts it), and its address is not
/// one in use without an allocation.
#[test]
fn a_finished_pods_address_is_not_in_use() {
    let finished = |name: &str, phase: &str, ip: &str| {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "demo"},
            "spec": {"nodeName": "rigel", "containers": [{"name": "c", "image": "busybox"}]},
            "status": {"phase": phase, "podIP": ip}
        }))
        .expect("pod");
        PodInfo::from_pod(p).expect("pod info")
    };
    let mut s = Stores::default();
    s.apply_ippools(Change::Reset(vec![pool()]));
    s.apply_nodes(Change::Reset(vec![node("rigel", "192.168.0.0")]));
    s.apply_pods(Change::Reset(vec![
        finished("migrate-1", "Succeeded", "192.168.0.1"),
        finished("migrate-2", "Failed", "192.168.0.50"),
        pod("demo", "web-1", "rigel", "192.168.0.2"),
    ]));
    s.apply_ipamblocks(Change::Reset(vec![block(
        "192.168.0.0/29",
        "rigel",
        &[
            Some(json!({"handle_id": "ipip-tunnel-addr-rigel",
                        "secondary": {"node": "rigel", "type": "ipipTunnelAddress"}})),
            pod_attr("k8s-pod-network.aaa", "demo", "migrate-1", "rigel"),
            pod_attr("k8s-pod-network.bbb", "demo", "web-1", "rigel"),
        ],
    )]));
    s.apply_ipamhandles(Change::Reset(vec![
        handle("ipip-tunnel-addr-rigel"),
        handle("k8s-pod-network.aaa"),
        handle("k8s-pod-network.bbb"),
    ]));
    let v = check(&s);
    let ips = |l: &Listed<AddressView>| l.items.iter().map(|a| a.ip.clone()).collect::<Vec<_>>();
    assert_eq!(ips(&v.leaked), ["192.168.0.1"]);
    assert_eq!(
        v.leaked.items[0].why,
        "pod demo/migrate-1 has finished (Succeeded)"
    );
    assert_eq!(v.unallocated.total, 0, "{:?}", v.unallocated.items);
}
