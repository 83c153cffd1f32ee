//! Calico IPAM as `calicoctl ipam check` sees it, from the watched state alone: each allocation
//! of every block against the addresses pods and nodes (tunnels) use, the handles against the
//! allocations, each pool's use, each node's blocks, borrowed addresses and blocks of deleted
//! nodes. Computed on demand (the page, the diagnostics): no copy of the state is kept.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use grappe_views::ipam::{
    AddressView, BlockUseView, IpamView, Listed, NODE_BLOCKS_SHOWN, NodeIpamView, NodeShareView,
    POOL_NODES_SHOWN, PoolUsageView,
};

use crate::net::{Cidr, address_part};
use crate::state::model::{Allocation, IpamBlockInfo, PodInfo};
use crate::state::store::Stores;

/// How many entries of each list the page shows (the counts are of all).
pub const SHOWN: usize = 200;

/// Who uses an address: a pod (`namespace/name`) or a node's tunnel, and on which node.
struct User {
    who: String,
    node: Option<String>,
}

/// A list bounded to [`SHOWN`] entries, counting all.
struct Bounded<T>(Listed<T>);

impl<T> Bounded<T> {
    fn new() -> Self {
        Self(Listed {
            items: Vec::new(),
            total: 0,
        })
    }

    fn push(&mut self, item: impl FnOnce() -> T) {
        self.0.total += 1;
        if self.0.items.len() < SHOWN {
            self.0.items.push(item());
        }
    }
}

/// The addresses pods and nodes use now: pod IPs (hostNetwork pods use their node's address,
/// outside every pool, and so never match an allocation) and nodes' tunnel addresses.
fn users(stores: &Stores) -> HashMap<IpAddr, User> {
    let mut used = HashMap::new();
    for n in stores.nodes.values() {
        if let Some(ip) = n.calico_tunnel.as_deref().and_then(address_part) {
            used.insert(
                ip,
                User {
                    who: format!("node {} (tunnel)", n.name),
                    node: Some(n.name.clone()),
                },
            );
        }
    }
    // A pod that finished (Succeeded or Failed) keeps its address in its status, but its
    // sandbox is gone and the CNI released the address (calicoctl counts it as not in use).
    for p in stores.pods().filter(|p| !p.finished()) {
        if let Some(ip) = p.ip.as_deref().and_then(|i| i.parse::<IpAddr>().ok()) {
            used.entry(ip).or_insert_with(|| User {
                who: format!("{}/{}", p.namespace, p.name),
                node: p.node.clone(),
            });
        }
    }
    used
}

/// Why an allocated address that nobody uses is listed, from what its attribute says.
fn leak_reason(a: &Allocation, pods: &HashMap<(&str, &str), &PodInfo>) -> String {
    match (&a.pod, a.kind.as_deref()) {
        (Some((ns, name)), _) => match pods.get(&(ns.as_str(), name.as_str())) {
            None => format!("pod {ns}/{name} no longer exists"),
            Some(p) if p.finished() => format!("pod {ns}/{name} has finished ({})", p.phase),
            Some(p) => match p.ip.as_deref() {
                Some(ip) => format!("pod {ns}/{name} now has {ip}"),
                None => format!("pod {ns}/{name} has no address"),
            },
        },
        (None, Some(kind)) if kind.ends_with("TunnelAddress") => format!(
            "{kind} of node {}: the node has another or none",
            a.node.as_deref().unwrap_or("?")
        ),
        _ => "used by no pod and no node".into(),
    }
}

/// An allocated address nobody uses, as the leak release needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    pub ip: String,
    /// The IPAMBlock's name and the address's ordinal in it.
    pub block: String,
    pub ordinal: u32,
    pub handle: String,
    pub pod: Option<String>,
    pub node: Option<String>,
    pub why: String,
    /// When it was allocated (unix seconds), if the attribute says.
    pub at: Option<i64>,
}

/// What the walk over the blocks gathers.
struct Walk<'a> {
    /// Every leak in full (for the release), not only the page's first ones.
    all_leaks: Option<Vec<Leak>>,
    stores: &'a Stores,
    used: HashMap<IpAddr, User>,
    pods: HashMap<(&'a str, &'a str), &'a PodInfo>,
    handles: HashSet<&'a str>,
    pools: Vec<(Option<Cidr>, PoolUsageView)>,
    /// Per pool (same order): allocated addresses per affine node.
    pool_nodes: Vec<HashMap<&'a str, u64>>,
    nodes: BTreeMap<String, NodeIpamView>,
    allocated: HashSet<IpAddr>,
    mentioned: HashSet<&'a str>,
    view: IpamView,
    leaked: Bounded<AddressView>,
    missing: Bounded<AddressView>,
    borrowed: Bounded<AddressView>,
    orphans: Bounded<String>,
}

/// Each pool with its parsed prefix, nothing allocated yet.
fn pools(stores: &Stores) -> Vec<(Option<Cidr>, PoolUsageView)> {
    stores
        .ippools
        .values()
        .map(|p| {
            let cidr = p.cidr.parse::<Cidr>().ok();
            let size = cidr.map_or(0, |c| u64::try_from(c.size()).unwrap_or(u64::MAX));
            let host_bits = u32::try_from(32 - p.block_size.clamp(0, 32)).unwrap_or(0);
            let block = 1u64.checked_shl(host_bits).unwrap_or(1);
            let usage = PoolUsageView {
                name: p.name.clone(),
                cidr: p.cidr.clone(),
                block_size: p.block_size,
                disabled: p.disabled,
                size,
                allocated: 0,
                blocks: 0,
                blocks_total: size / block.max(1),
                by_node: Vec::new(),
            };
            (cidr, usage)
        })
        .collect()
}

impl<'a> Walk<'a> {
    fn new(stores: &'a Stores) -> Self {
        let handles: HashSet<&str> = stores
            .ipamhandles
            .values()
            .map(|h| h.handle.as_str())
            .collect();
        Self {
            all_leaks: None,
            used: users(stores),
            pods: stores
                .pods()
                .map(|p| ((p.namespace.as_str(), p.name.as_str()), p))
                .collect(),
            view: IpamView {
                datastore_ready: stores.cluster_info.as_ref().map(|c| c.datastore_ready),
                blocks: stores.ipamblocks.len(),
                handles: handles.len(),
                ..IpamView::default()
            },
            handles,
            pools: pools(stores),
            pool_nodes: vec![HashMap::new(); stores.ippools.len()],
            nodes: BTreeMap::new(),
            allocated: HashSet::new(),
            mentioned: HashSet::new(),
            leaked: Bounded::new(),
            missing: Bounded::new(),
            borrowed: Bounded::new(),
            orphans: Bounded::new(),
            stores,
        }
    }

    /// The node's row, created on first sight.
    fn node(&mut self, name: &str) -> &mut NodeIpamView {
        let exists = self.stores.nodes.contains_key(name);
        self.nodes
            .entry(name.to_owned())
            .or_insert_with(|| NodeIpamView {
                node: name.to_owned(),
                exists,
                blocks: 0,
                allocations: 0,
                borrowed: 0,
                block_use: Vec::new(),
            })
    }

    fn block(&mut self, b: &'a IpamBlockInfo, cidr: Cidr) {
        if let Some(i) = self
            .pools
            .iter()
            .position(|(c, _)| c.is_some_and(|c| cidr.within(&c)))
        {
            let pool = &mut self.pools[i].1;
            pool.blocks += 1;
            pool.allocated += b.allocations.len() as u64;
            if let (Some(node), Some(shares)) = (&b.node, self.pool_nodes.get_mut(i)) {
                *shares.entry(node.as_str()).or_default() += b.allocations.len() as u64;
            }
        }
        if let Some(node) = &b.node {
            let row = self.node(node);
            row.blocks += 1;
            row.allocations += b.allocations.len();
            if row.block_use.len() < NODE_BLOCKS_SHOWN {
                row.block_use.push(BlockUseView {
                    cidr: b.cidr.clone(),
                    used: b.allocations.len(),
                    size: b.size,
                });
            }
            if !row.exists {
                self.orphans
                    .push(|| format!("{} ({}, node {node})", b.name, b.cidr));
            }
        }
        for a in &b.allocations {
            if let Some(ip) = cidr.nth(u128::from(a.ordinal)) {
                self.allocation(b, a, ip);
            }
        }
    }

    fn allocation(&mut self, b: &'a IpamBlockInfo, a: &'a Allocation, ip: IpAddr) {
        self.view.allocations += 1;
        self.allocated.insert(ip);
        self.mentioned.insert(a.handle.as_str());
        if a.kind
            .as_deref()
            .is_some_and(|k| k.ends_with("TunnelAddress"))
        {
            self.view.tunnel_addresses += 1;
        }
        let user = self.used.get(&ip);
        let address = |why: String| AddressView {
            ip: ip.to_string(),
            block: Some(b.cidr.clone()),
            handle: Some(a.handle.clone()).filter(|h| !h.is_empty()),
            pod: user
                .map(|u| u.who.clone())
                .or_else(|| a.pod.as_ref().map(|(ns, n)| format!("{ns}/{n}"))),
            node: user.and_then(|u| u.node.clone()).or_else(|| a.node.clone()),
            why,
        };
        if !a.handle.is_empty() && !self.handles.contains(a.handle.as_str()) {
            self.missing
                .push(|| address("its handle does not exist".into()));
        }
        let Some(u) = user else {
            let why = leak_reason(a, &self.pods);
            if let Some(all) = &mut self.all_leaks {
                all.push(Leak {
                    ip: ip.to_string(),
                    block: b.name.clone(),
                    ordinal: a.ordinal,
                    handle: a.handle.clone(),
                    pod: a.pod.as_ref().map(|(ns, n)| format!("{ns}/{n}")),
                    node: a.node.clone(),
                    why: why.clone(),
                    at: a.at,
                });
            }
            self.leaked.push(|| address(why));
            return;
        };
        let on = u.node.as_deref().or(a.node.as_deref());
        if let (Some(on), Some(owner)) = (on, b.node.as_deref())
            && on != owner
        {
            self.borrowed
                .push(|| address(format!("{on} uses an address of {owner}'s block")));
            let on = on.to_owned();
            self.node(&on).borrowed += 1;
        }
    }

    /// Pod addresses inside an active pool that no block allocates.
    fn unallocated(&self) -> Listed<AddressView> {
        let active: Vec<Cidr> = self
            .pools
            .iter()
            .filter(|(_, p)| !p.disabled)
            .filter_map(|(c, _)| *c)
            .collect();
        let mut found: Vec<(&IpAddr, &User)> = self
            .used
            .iter()
            .filter(|(ip, _)| !self.allocated.contains(*ip))
            .filter(|(ip, _)| active.iter().any(|c| c.contains(**ip)))
            .collect();
        found.sort_by_key(|(ip, _)| **ip);
        let mut list = Bounded::new();
        for (ip, u) in found {
            list.push(|| AddressView {
                ip: ip.to_string(),
                block: None,
                handle: None,
                pod: Some(u.who.clone()),
                node: u.node.clone(),
                why: "in use in an active pool, allocated by no block".into(),
            });
        }
        list.0
    }

    /// Handles that no allocation mentions.
    fn handles_without_allocations(&self) -> Listed<String> {
        let mut found: Vec<&str> = self
            .handles
            .iter()
            .filter(|h| !self.mentioned.contains(*h))
            .copied()
            .collect();
        found.sort_unstable();
        let mut list = Bounded::new();
        for h in found {
            list.push(|| h.to_owned());
        }
        list.0
    }

    fn finish(self) -> IpamView {
        let unallocated = self.unallocated();
        let handles_without_allocations = self.handles_without_allocations();
        IpamView {
            pools: self
                .pools
                .into_iter()
                .zip(self.pool_nodes)
                .map(|((_, p), shares)| PoolUsageView {
                    by_node: top_shares(shares),
                    ..p
                })
                .collect(),
            nodes_total: self.nodes.len(),
            nodes: self.nodes.into_values().collect(),
            leaked: self.leaked.0,
            missing_handles: self.missing.0,
            borrowed: self.borrowed.0,
            orphan_blocks: self.orphans.0,
            unallocated,
            handles_without_allocations,
            ..self.view
        }
    }
}

/// A pool's largest node shares, most first (ties by name), at most [`POOL_NODES_SHOWN`].
fn top_shares(shares: HashMap<&str, u64>) -> Vec<NodeShareView> {
    let mut all: Vec<(&str, u64)> = shares.into_iter().filter(|(_, n)| *n > 0).collect();
    all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    all.into_iter()
        .take(POOL_NODES_SHOWN)
        .map(|(node, allocated)| NodeShareView {
            node: node.to_owned(),
            allocated,
        })
        .collect()
}

/// Every leaked address, with its block and ordinal (what a release needs), and the page's
/// view.
#[must_use]
pub fn leaks(stores: &Stores) -> (Vec<Leak>, IpamView) {
    if !unread(stores).is_empty() {
        return (Vec::new(), check(stores));
    }
    let mut walk = Walk::new(stores);
    walk.all_leaks = Some(Vec::new());
    for b in stores.ipamblocks.values() {
        if let Ok(cidr) = b.cidr.parse::<Cidr>() {
            walk.block(b, cidr);
        }
    }
    let all = walk.all_leaks.take().unwrap_or_default();
    (all, walk.finish())
}

/// The IPAM page of the cluster whose tables `stores` holds.
#[must_use]
pub fn check(stores: &Stores) -> IpamView {
    let mut walk = Walk::new(stores);
    for b in stores.ipamblocks.values() {
        if let Ok(cidr) = b.cidr.parse::<Cidr>() {
            walk.block(b, cidr);
        }
    }
    let mut view = walk.finish();
    view.unread = unread(stores);
    if !view.unread.is_empty() {
        // Told from an absence in a table still partial: not known yet.
        view.leaked = Listed::default();
        view.unallocated = Listed::default();
        view.handles_without_allocations = Listed::default();
        view.missing_handles = Listed::default();
    }
    view
}

/// The tables the check reads whole: pods, blocks and handles.
const READ_WHOLE: [&str; 3] = ["pods", "ipamblocks", "ipamhandles"];

/// Which of [`READ_WHOLE`] are still being read for the first time.
fn unread(stores: &Stores) -> Vec<String> {
    READ_WHOLE
        .iter()
        .filter(|r| stores.reading.contains(**r))
        .map(|r| (*r).to_owned())
        .collect()
}

pub mod block;
pub mod trend;

#[cfg(test)]
mod tests;
