//! A cluster's IPAM: each pool's use drawn as a bar, what `calicoctl ipam check` reports
//! (leaked addresses, addresses in use and not allocated, handles without addresses), borrowed
//! addresses, blocks of deleted nodes and each node's blocks. Live: it reloads when the cluster
//! changes. Readable without JavaScript (the bars are SVG drawn on the server).

use grappe_views::ipam::{AddressView, IpamView, Listed, PoolUsageView};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::overview::LiveBadge;
use crate::api::state::cluster_ipam;
use crate::i18n::{Lang, Msg, t, use_lang};
use crate::live::use_live;
use crate::{ErrorBox, PageHeader};

#[component]
pub fn IpamPage() -> impl IntoView {
    let params = use_params_map();
    let name = Signal::derive(move || params.read().get("cluster").unwrap_or_default());
    let (tick, live) = use_live(name);
    let ipam = Resource::new(move || (name.get(), tick.get()), |(n, _)| cluster_ipam(n));
    view! {
        <PageHeader title=format!("{} · {}", name.get_untracked(), t(Msg::NavIpam))/>
        <LiveBadge status=live/>
        <Transition fallback=|| view! { <p class="muted">{t(Msg::Loading)}</p> }>
            {move || Suspend::new(async move {
                match ipam.await {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(v) => view! { <Ipam v=v/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Ipam(v: IpamView) -> impl IntoView {
    let lang = use_lang();
    let datastore = match v.datastore_ready {
        Some(true) => {
            view! { <span class="badge badge-ok">"✓ " {Msg::IpamReady.text(lang)}</span> }
                .into_any()
        }
        Some(false) => {
            view! { <span class="badge badge-bad">"✗ " {Msg::IpamNotReady.text(lang)}</span> }
                .into_any()
        }
        None => view! { <span class="muted">"?"</span> }.into_any(),
    };
    let problems = v.problems();
    view! {
        <section class="card" data-testid="ipam-summary" data-problems=problems>
            <dl class="facts">
                <dt>{Msg::IpamDatastore.text(lang)}</dt><dd data-testid="ipam-datastore">{datastore}</dd>
                <dt>{Msg::IpamBlocks.text(lang)}</dt><dd>{v.blocks}</dd>
                <dt>{Msg::IpamAllocations.text(lang)}</dt><dd data-testid="ipam-allocations">{v.allocations}</dd>
                <dt>{Msg::IpamHandles.text(lang)}</dt><dd>{v.handles}</dd>
                <dt>{Msg::IpamTunnels.text(lang)}</dt><dd>{v.tunnel_addresses}</dd>
                <dt>{Msg::IpamProblems.text(lang)}</dt>
                <dd data-testid="ipam-problems">
                    {if problems == 0 {
                        view! { <span class="badge badge-ok">"✓ 0"</span> }.into_any()
                    } else {
                        view! { <span class="badge badge-warn">"⚠ " {problems}</span> }.into_any()
                    }}
                </dd>
            </dl>
        </section>
        <section class="card">
            <h2>{Msg::IpPools.text(lang)}</h2>
            <Pools pools=v.pools.clone() lang=lang/>
        </section>
        <section class="card" data-testid="ipam-problems-lists">
            <Addresses title=Msg::IpamLeaked list=v.leaked.clone() testid="ipam-leaked" lang=lang/>
            <Addresses title=Msg::IpamUnallocated list=v.unallocated.clone() testid="ipam-unallocated" lang=lang/>
            <Names title=Msg::IpamHandlesWithout list=v.handles_without_allocations.clone() testid="ipam-handles-without" lang=lang/>
            <Addresses title=Msg::IpamMissingHandles list=v.missing_handles.clone() testid="ipam-missing-handles" lang=lang/>
            <Addresses title=Msg::IpamBorrowed list=v.borrowed.clone() testid="ipam-borrowed" lang=lang/>
            <Names title=Msg::IpamOrphans list=v.orphan_blocks.clone() testid="ipam-orphans" lang=lang/>
        </section>
        <section class="card">
            <h2>{Msg::NavNodes.text(lang)}</h2>
            <div class="table-wrap">
                <table class="table dense" data-testid="ipam-nodes">
                    <thead><tr>
                        <th>{Msg::Name.text(lang)}</th><th>{Msg::IpamBlocks.text(lang)}</th>
                        <th>{Msg::IpamAllocations.text(lang)}</th><th>{Msg::IpamBorrowedCount.text(lang)}</th>
                    </tr></thead>
                    <tbody>
                        {v.nodes.into_iter().map(|n| view! {
                            <tr data-node=n.node.clone()>
                                <td>
                                    {n.node.clone()}
                                    {(!n.exists).then(|| view! { " " <span class="badge badge-warn">{Msg::IpamNodeGone.text(lang)}</span> })}
                                </td>
                                <td>{n.blocks}</td><td>{n.allocations}</td><td>{n.borrowed}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
}

/// Each pool with an allocation bar (used / free) and its block count.
#[component]
fn Pools(pools: Vec<PoolUsageView>, lang: Lang) -> impl IntoView {
    if pools.is_empty() {
        return view! { <p class="muted">{Msg::NoPools.text(lang)}</p> }.into_any();
    }
    view! {
        <div class="table-wrap">
            <table class="table dense" data-testid="ipam-pools">
                <thead><tr>
                    <th>{Msg::Name.text(lang)}</th><th>"CIDR"</th><th>"blockSize"</th>
                    <th>{Msg::IpamUse.text(lang)}</th><th>{Msg::IpamFree.text(lang)}</th>
                    <th>{Msg::IpamBlocks.text(lang)}</th>
                </tr></thead>
                <tbody>
                    {pools.into_iter().map(|p| {
                        let permille = p.permille();
                        let percent = format!("{}.{} %", permille / 10, permille % 10);
                        let level = if permille >= 900 { "bad" } else if permille >= 750 { "warn" } else { "ok" };
                        view! {
                            <tr data-pool=p.name.clone() data-permille=permille>
                                <td>{p.name.clone()} {p.disabled.then_some(" (disabled)")}</td>
                                <td class="mono">{p.cidr.clone()}</td>
                                <td>"/" {p.block_size}</td>
                                <td>
                                    <UsageBar permille=permille level=level label=format!("{} / {} ({percent})", p.allocated, p.size)/>
                                    " " <span class="small">{p.allocated} " / " {p.size} " (" {percent.clone()} ")"</span>
                                </td>
                                <td>{p.free()}</td>
                                <td>{p.blocks} " / " {p.blocks_total}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

/// A horizontal bar: the used part coloured by `level`, the rest grey; its text says the same
/// for those who do not see colours.
#[component]
fn UsageBar(permille: u64, level: &'static str, label: String) -> impl IntoView {
    let used = permille.min(1000) as f64 / 10.0;
    let title = label.clone();
    view! {
        <svg class="usage-bar" viewBox="0 0 100 8" width="120" height="10" role="img" aria-label=label>
            <title>{title}</title>
            <rect x="0" y="0" width="100" height="8" class="usage-free"/>
            <rect x="0" y="0" width=format!("{used:.1}") height="8" class=format!("usage-used usage-{level}")/>
        </svg>
    }
}

/// A list of addresses, open when it has any.
#[component]
fn Addresses(
    title: Msg,
    list: Listed<AddressView>,
    testid: &'static str,
    lang: Lang,
) -> impl IntoView {
    let shown = list.items.len();
    view! {
        <details data-testid=testid data-total=list.total prop:open=list.total > 0>
            <summary><strong>{title.text(lang)}</strong> ": " {list.total}</summary>
            {(shown < list.total).then(|| view! { <p class="muted small">{Msg::FirstOf.text(lang).replace("{shown}", &shown.to_string()).replace("{total}", &list.total.to_string())}</p> })}
            {(shown > 0).then(|| view! {
                <div class="table-wrap">
                    <table class="table dense">
                        <thead><tr>
                            <th>"IP"</th><th>{Msg::IpamBlock.text(lang)}</th><th>{Msg::IpamHandle.text(lang)}</th>
                            <th>"Pod"</th><th>{Msg::IpamNode.text(lang)}</th><th>{Msg::IpamWhy.text(lang)}</th>
                        </tr></thead>
                        <tbody>
                            {list.items.into_iter().map(|a| view! {
                                <tr data-ip=a.ip.clone()>
                                    <td class="mono">{a.ip.clone()}</td>
                                    <td class="mono small">{a.block.unwrap_or_default()}</td>
                                    <td class="mono small">{a.handle.unwrap_or_default()}</td>
                                    <td>{a.pod.unwrap_or_default()}</td>
                                    <td>{a.node.unwrap_or_default()}</td>
                                    <td>{a.why}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            })}
        </details>
    }
}

/// A list of names (handles, blocks), open when it has any.
#[component]
fn Names(title: Msg, list: Listed<String>, testid: &'static str, lang: Lang) -> impl IntoView {
    view! {
        <details data-testid=testid data-total=list.total prop:open=list.total > 0>
            <summary><strong>{title.text(lang)}</strong> ": " {list.total}</summary>
            <ul class="mono small">
                {list.items.into_iter().map(|n| view! { <li>{n}</li> }).collect_view()}
            </ul>
        </details>
    }
}
