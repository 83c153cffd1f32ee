//! The IPAM page: each pool's use, each node's blocks, and what `calicoctl ipam check` calls
//! problems (addresses allocated and not in use, in use and not allocated, handles without
//! addresses, addresses without handle), with borrowed addresses and blocks of deleted nodes.

use serde::{Deserialize, Serialize};

/// One pool: its size and how much of it is allocated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolUsageView {
    pub name: String,
    pub cidr: String,
    pub block_size: i64,
    pub disabled: bool,
    /// Addresses in the pool.
    pub size: u64,
    /// Addresses allocated in its blocks.
    pub allocated: u64,
    /// Blocks claimed from it, and how many more it holds.
    pub blocks: u64,
    pub blocks_total: u64,
    /// The nodes holding most of its allocated addresses (in their affine blocks), most first,
    /// at most [`POOL_NODES_SHOWN`]; the rest of `allocated` is the other nodes'.
    #[serde(default)]
    pub by_node: Vec<NodeShareView>,
}

/// One node's allocated addresses in a pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeShareView {
    pub node: String,
    pub allocated: u64,
}

/// The most nodes drawn on a pool's bar (the rest drawn as one share).
pub const POOL_NODES_SHOWN: usize = 8;

impl PoolUsageView {
    /// Allocated addresses, in per mille of the pool (0 for an empty pool).
    pub fn permille(&self) -> u64 {
        (self.allocated * 1000).checked_div(self.size).unwrap_or(0)
    }

    /// Free addresses.
    pub fn free(&self) -> u64 {
        self.size.saturating_sub(self.allocated)
    }

    /// Allocated addresses not in the nodes of `by_node` (other nodes, blocks of no node).
    pub fn other_nodes(&self) -> u64 {
        let shown: u64 = self.by_node.iter().map(|n| n.allocated).sum();
        self.allocated.saturating_sub(shown)
    }
}

/// One address with what IPAM records of it and why it is listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressView {
    pub ip: String,
    /// The block holding it (none: in use, no block allocates it).
    pub block: Option<String>,
    pub handle: Option<String>,
    /// The pod IPAM gave it to, or the pod using it (`namespace/name`).
    pub pod: Option<String>,
    pub node: Option<String>,
    /// Why it is listed, in words (`pod gone`, `pod demo/web-1 has 192.168.0.7`, ...).
    pub why: String,
}

/// One node's share of IPAM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeIpamView {
    pub node: String,
    /// Whether the node exists (blocks of a deleted node stay until Calico releases them).
    pub exists: bool,
    pub blocks: usize,
    pub allocations: usize,
    /// Addresses of other nodes' blocks that this node's pods use.
    pub borrowed: usize,
    /// Its blocks, how full each is (the first [`NODE_BLOCKS_SHOWN`]; `blocks` counts all).
    #[serde(default)]
    pub block_use: Vec<BlockUseView>,
}

/// How full one IPAM block is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockUseView {
    pub cidr: String,
    pub used: usize,
    pub size: usize,
}

/// The most blocks drawn for one node (a node holds a few; a 5,000-node page stays small).
pub const NODE_BLOCKS_SHOWN: usize = 32;

/// The most nodes the IPAM page lists (at 5,000 nodes the page would carry them all).
pub const PAGE_NODES: usize = 100;

impl IpamView {
    /// The view as the page shows it: the nodes that need a look first (deleted, borrowing,
    /// then by blocks held), at most [`PAGE_NODES`].
    #[must_use]
    pub fn for_page(&self) -> Self {
        let mut page = self.clone();
        page.nodes.sort_by(|a, b| {
            (
                a.exists,
                a.borrowed == 0,
                std::cmp::Reverse(a.blocks),
                &a.node,
            )
                .cmp(&(
                    b.exists,
                    b.borrowed == 0,
                    std::cmp::Reverse(b.blocks),
                    &b.node,
                ))
        });
        page.nodes.truncate(PAGE_NODES);
        page.nodes_total = self.nodes.len();
        page
    }
}

/// A list shown up to a bound, with the count of all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listed<T> {
    pub items: Vec<T>,
    pub total: usize,
}

impl<T> Default for Listed<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            total: 0,
        }
    }
}

/// The IPAM page of a cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamView {
    /// ClusterInformation's `datastoreReady` (none: not read).
    pub datastore_ready: Option<bool>,
    pub pools: Vec<PoolUsageView>,
    /// Per node (on the page: the first [`PAGE_NODES`], nodes that need a look first).
    pub nodes: Vec<NodeIpamView>,
    /// How many nodes hold blocks or use addresses (all of them, not only those listed).
    #[serde(default)]
    pub nodes_total: usize,
    pub blocks: usize,
    pub allocations: usize,
    pub handles: usize,
    pub tunnel_addresses: usize,
    /// The tables still being read for the first time (`pods`, `ipamblocks`, `ipamhandles`):
    /// while any is, what is told from an absence (leaked, unallocated, handles without
    /// allocations, missing handles) is left empty.
    #[serde(default)]
    pub unread: Vec<String>,
    /// Allocated in IPAM, used by no pod and no node (calicoctl: "leaked").
    pub leaked: Listed<AddressView>,
    /// Used by a pod, inside an active pool, allocated by no block.
    pub unallocated: Listed<AddressView>,
    /// Handles no allocation mentions.
    pub handles_without_allocations: Listed<String>,
    /// Allocations whose handle does not exist.
    pub missing_handles: Listed<AddressView>,
    /// Addresses in a block affine to another node than the one using them.
    pub borrowed: Listed<AddressView>,
    /// Blocks affine to a node that does not exist.
    pub orphan_blocks: Listed<String>,
    /// Each pool's use over the last days and the forecast (from the server's samples).
    #[serde(default)]
    pub trends: Vec<PoolTrendView>,
}

/// Where a pool's use goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trend {
    /// Too few samples yet (the server samples every few minutes).
    Collecting { samples: usize },
    /// Flat or shrinking.
    NotGrowing,
    /// Growing: at this rate, full in about this many days.
    FullIn { days: u32 },
    /// Every address allocated.
    Full,
}

/// One pool's use over the last days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolTrendView {
    pub pool: String,
    pub size: u64,
    /// (unix seconds, allocated), oldest first, thinned to a few hundred points.
    pub points: Vec<(i64, u64)>,
    pub trend: Trend,
}

impl IpamView {
    /// The problems `calicoctl ipam check` counts (it reports handles missing from blocks'
    /// allocations, but does not count them).
    pub fn problems(&self) -> usize {
        self.leaked.total + self.unallocated.total + self.handles_without_allocations.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, exists: bool, borrowed: usize, blocks: usize) -> NodeIpamView {
        NodeIpamView {
            node: name.into(),
            exists,
            blocks,
            allocations: 0,
            borrowed,
            block_use: Vec::new(),
        }
    }

    #[test]
    fn the_page_lists_the_nodes_that_need_a_look_first_and_bounds_them() {
        let mut nodes: Vec<NodeIpamView> = (0..300)
            .map(|i| node(&format!("n{i:03}"), true, 0, 1))
            .collect();
        nodes.push(node("gone", false, 0, 1));
        nodes.push(node("borrower", true, 3, 1));
        nodes.push(node("big", true, 0, 9));
        let v = IpamView {
            nodes,
            ..IpamView::default()
        };
        let page = v.for_page();
        assert_eq!(page.nodes.len(), PAGE_NODES);
        assert_eq!(page.nodes_total, 303);
        let first: Vec<&str> = page.nodes.iter().take(4).map(|n| n.node.as_str()).collect();
        assert_eq!(first, ["gone", "borrower", "big", "n000"]);
    }
}
