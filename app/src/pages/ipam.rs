//! A cluster's IPAM: each pool's use drawn as a bar, what `calicoctl ipam check` reports
//! (leaked addresses, addresses in use and not allocated, handles without addresses), borrowed
//! addresses, blocks of deleted nodes and each node's blocks. Live: it reloads when the cluster
//! changes. Readable without JavaScript (the bars are SVG drawn on the server).

use grappe_views::ipam::{AddressView, IpamView, Listed, PoolTrendView, PoolUsageView, Trend};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::or_dash;
use super::overview::LiveBadge;
use super::plan::PlanAnswer;
use crate::api::Role;
use crate::api::runs::PlanIpamRelease;
use crate::api::session::Me;
use crate::api::state::cluster_ipam;
use crate::i18n::{Lang, Msg, Net, Ui, t, use_lang};
use crate::live::use_live;
use crate::picture::{Part, layout};
use crate::{ErrorBox, PageHeader};

#[component]
pub fn IpamPage() -> impl IntoView {
    let params = use_params_map();
    let name = Signal::derive(move || params.read().get("cluster").unwrap_or_default());
    let (tick, live) = use_live(name);
    let ipam = Resource::new(move || (name.get(), tick.get()), |(n, _)| cluster_ipam(n));
    let is_admin = use_context::<Me>().is_some_and(|m| m.role == Role::Admin);
    view! {
        <PageHeader title=format!("{} · {}", name.get_untracked(), t(Msg::NavIpam))/>
        <LiveBadge status=live/>
        <super::active::ActiveRunCard cluster=name/>
        <Transition fallback=|| view! { <p class="muted">{t(Msg::Loading)}</p> }>
            {move || Suspend::new(async move {
                match ipam.await {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(v) => view! { <Ipam v=v/> }.into_any(),
                }
            })}
        </Transition>
        // Outside the live part: a live update must not drop the plan being confirmed.
        {is_admin.then(|| view! { <ReleaseCard cluster=name/> })}
    }
}

/// The release of leaked addresses (admins): plan with a grace period, then confirm.
#[component]
fn ReleaseCard(cluster: Signal<String>) -> impl IntoView {
    let plan = ServerAction::<PlanIpamRelease>::new();
    view! {
        <section class="card" data-testid="ipam-release">
            <h2>{t(Msg::IpamRelease)}</h2>
            <p class="muted">{t(Msg::IpamReleaseHint)}</p>
            <ActionForm action=plan attr:class="inline-form">
                <input type="hidden" name="cluster" value=cluster/>
                <label>{t(Msg::IpamGrace)} " "
                    <input type="number" name="grace_seconds" min="0" placeholder="900" data-testid="ipam-grace"/>
                </label>
                " "
                <button type="submit" class="btn" data-testid="plan-release">{t(Msg::MakePlan)}</button>
            </ActionForm>
            <PlanAnswer answer=plan.value() planning=plan.pending() testid="confirm-release-form"/>
        </section>
    }
}

/// The page's sections, each type-erased (one view of them all is too deep a type).
#[component]
fn Ipam(v: IpamView) -> impl IntoView {
    let lang = use_lang();
    let pools = v.pools.clone();
    let trends = v.trends.clone();
    let unread = (!v.unread.is_empty()).then(|| {
        view! {
            <p class="alert alert-info" role="status" data-testid="ipam-unread">
                {Net::IpamUnread.text(lang)} " (" {v.unread.join(", ")} ")"
            </p>
        }
    });
    view! {
        {unread}
        {summary(&v, lang)}
        <section class="card">
            <h2>{Msg::IpPools.text(lang)}</h2>
            <Pools pools=pools trends=trends lang=lang/>
        </section>
        {problems(&v, lang)}
        {nodes(v, lang)}
    }
}

fn summary(v: &IpamView, lang: Lang) -> AnyView {
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
    let count = if problems == 0 {
        view! { <span class="badge badge-ok">"✓ " <span data-testid="count">"0"</span></span> }
            .into_any()
    } else {
        view! { <span class="badge badge-warn">"⚠ " <span data-testid="count">{problems}</span></span> }.into_any()
    };
    view! {
        <section class="card" data-testid="ipam-summary" data-problems=problems>
            <dl class="facts">
                <dt>{Msg::IpamDatastore.text(lang)}</dt><dd data-testid="ipam-datastore">{datastore}</dd>
                <dt>{Msg::IpamBlocks.text(lang)}</dt><dd>{v.blocks}</dd>
                <dt>{Msg::IpamAllocations.text(lang)}</dt><dd data-testid="ipam-allocations">{v.allocations}</dd>
                <dt>{Msg::IpamHandles.text(lang)}</dt><dd>{v.handles}</dd>
                <dt>{Msg::IpamTunnels.text(lang)}</dt><dd>{v.tunnel_addresses}</dd>
                <dt>{Msg::IpamProblems.text(lang)}</dt><dd data-testid="ipam-problems">{count}</dd>
            </dl>
        </section>
    }
    .into_any()
}

fn problems(v: &IpamView, lang: Lang) -> AnyView {
    let addresses = |title: Msg, list: &Listed<AddressView>, testid: &'static str| {
        view! { <Addresses title=title list=list.clone() testid=testid lang=lang/> }.into_any()
    };
    let names = |title: Msg, list: &Listed<String>, testid: &'static str| {
        view! { <Names title=title list=list.clone() testid=testid lang=lang/> }.into_any()
    };
    let lists: Vec<AnyView> = vec![
        addresses(Msg::IpamLeaked, &v.leaked, "ipam-leaked"),
        addresses(Msg::IpamUnallocated, &v.unallocated, "ipam-unallocated"),
        names(
            Msg::IpamHandlesWithout,
            &v.handles_without_allocations,
            "ipam-handles-without",
        ),
        addresses(
            Msg::IpamMissingHandles,
            &v.missing_handles,
            "ipam-missing-handles",
        ),
        addresses(Msg::IpamBorrowed, &v.borrowed, "ipam-borrowed"),
        names(Msg::IpamOrphans, &v.orphan_blocks, "ipam-orphans"),
    ];
    view! { <section class="card" data-testid="ipam-problems-lists">{lists}</section> }.into_any()
}

fn nodes(v: IpamView, lang: Lang) -> AnyView {
    let more = (v.nodes_total > v.nodes.len()).then(|| {
        view! { <p class="muted small" data-testid="ipam-nodes-first">{Msg::FirstOf.text(lang).replace("{shown}", &v.nodes.len().to_string()).replace("{total}", &v.nodes_total.to_string())}</p> }
    });
    let rows: Vec<AnyView> = v
        .nodes
        .into_iter()
        .map(|n| {
            let gone = (!n.exists).then(|| view! { " " <span class="badge badge-warn">{Msg::IpamNodeGone.text(lang)}</span> });
            view! {
                <tr data-node=n.node.clone()>
                    <td>{n.node.clone()} {gone}</td>
                    <td>{n.blocks}</td><td>{n.allocations}</td><td>{n.borrowed}</td>
                    <td><crate::picture::BlockMap blocks=n.block_use.clone()/></td>
                </tr>
            }
            .into_any()
        })
        .collect();
    view! {
        <section class="card">
            <h2>{Msg::NavNodes.text(lang)}</h2>
            {more}
            <div class="table-wrap">
                <table tabindex="0" class="table dense" data-testid="ipam-nodes">
                    <thead><tr>
                        <th>{Msg::Name.text(lang)}</th><th>{Msg::IpamBlocks.text(lang)}</th>
                        <th>{Msg::IpamAllocations.text(lang)}</th><th>{Msg::IpamBorrowedCount.text(lang)}</th>
                        <th>{Ui::BlockMap.text(lang)}</th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </section>
    }
    .into_any()
}

/// Each pool with an allocation bar (used / free) and its block count.
#[component]
fn Pools(pools: Vec<PoolUsageView>, trends: Vec<PoolTrendView>, lang: Lang) -> impl IntoView {
    if pools.is_empty() {
        return view! { <p class="muted">{Msg::NoPools.text(lang)}</p> }.into_any();
    }
    view! {
        <div class="table-wrap">
            <table tabindex="0" class="table dense" data-testid="ipam-pools">
                <thead><tr>
                    <th>{Msg::Name.text(lang)}</th><th>"CIDR"</th><th>"blockSize"</th>
                    <th>{Msg::IpamUse.text(lang)}</th><th>{Msg::IpamFree.text(lang)}</th>
                    <th>{Msg::IpamBlocks.text(lang)}</th><th>{Msg::IpamTrend.text(lang)}</th>
                </tr></thead>
                <tbody>
                    {pools.into_iter().map(|p| {
                        let permille = p.permille();
                        let percent = format!("{}.{} %", permille / 10, permille % 10);
                        let level = if permille >= 900 { "bad" } else if permille >= 750 { "warn" } else { "ok" };
                        let trend = trends.iter().find(|t| t.pool == p.name).cloned();
                        view! {
                            <tr data-pool=p.name.clone() data-permille=permille>
                                <td>{p.name.clone()} {p.disabled.then_some(" (disabled)")}</td>
                                <td class="mono">{p.cidr.clone()}</td>
                                <td>"/" {p.block_size}</td>
                                <td>
                                    <UsageBar pool=p.clone() level=level label=format!("{} / {} ({percent})", p.allocated, p.size) lang=lang/>
                                    " " <span class="small">{p.allocated} " / " {p.size} " (" {percent.clone()} ")"</span>
                                </td>
                                <td>{p.free()}</td>
                                <td>{p.blocks} " / " {p.blocks_total}</td>
                                <td data-testid="pool-trend">
                                    <TrendCell t=trend.unwrap_or_else(|| PoolTrendView {
                                        pool: p.name.clone(),
                                        size: p.size,
                                        points: Vec::new(),
                                        trend: Trend::Collecting { samples: 0 },
                                    }) lang=lang/>
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

/// A pool's forecast in words, with its use over the last days drawn as a line.
#[component]
fn TrendCell(t: PoolTrendView, lang: Lang) -> impl IntoView {
    let (words, kind) = match t.trend {
        Trend::Collecting { samples } => (
            Msg::TrendCollecting
                .text(lang)
                .replace("{samples}", &samples.to_string()),
            "collecting",
        ),
        Trend::NotGrowing => (Msg::TrendNotGrowing.text(lang).to_owned(), "flat"),
        Trend::FullIn { days } => (
            Msg::TrendFullIn
                .text(lang)
                .replace("{days}", &days.to_string()),
            "growing",
        ),
        Trend::Full => (Msg::TrendFull.text(lang).to_owned(), "full"),
    };
    view! {
        <span data-trend=kind>{words}</span>
        " " <Sparkline points=t.points size=t.size/>
    }
}

/// A pool's allocated addresses over time (0 at the bottom, the pool's size at the top).
#[component]
fn Sparkline(points: Vec<(i64, u64)>, size: u64) -> impl IntoView {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return ().into_any();
    };
    let span = (last.0 - first.0).max(1) as f64;
    let top = size.max(1) as f64;
    let line: Vec<String> = points
        .iter()
        .map(|(at, n)| {
            let x = (at - first.0) as f64 / span * 100.0;
            let y = 20.0 - (*n as f64 / top).min(1.0) * 20.0;
            format!("{x:.1},{y:.1}")
        })
        .collect();
    view! {
        <svg class="sparkline" viewBox="0 0 100 20" width="100" height="20" aria-hidden="true">
            <polyline points=line.join(" ") fill="none"/>
        </svg>
    }
    .into_any()
}

/// A pool's allocation bar: the used part coloured by `level` and split by node (the largest
/// nodes, then the others), each share named with its count on hover; the rest grey. Its text
/// beside says the same for those who do not see colours.
#[component]
fn UsageBar(pool: PoolUsageView, level: &'static str, label: String, lang: Lang) -> impl IntoView {
    let title = label.clone();
    let mut shares: Vec<(String, u64)> = pool
        .by_node
        .iter()
        .map(|n| (n.node.clone(), n.allocated))
        .collect();
    let others = pool.other_nodes();
    if others > 0 {
        shares.push((Ui::OtherNodes.text(lang).to_owned(), others));
    }
    // The shares, then the free addresses: laid out over the pool's size.
    let parts: Vec<Part> = shares
        .iter()
        .map(|(who, count)| Part {
            label: who.clone(),
            count: *count,
            class: "usage-used",
            href: None,
        })
        .chain(std::iter::once(Part {
            label: String::new(),
            count: pool.free(),
            class: "usage-free",
            href: None,
        }))
        .collect();
    let rects = shares
        .into_iter()
        .zip(layout(&parts))
        .map(|((who, count), (at, w))| {
            let tip = format!("{who}: {count} {}", Ui::AddressesWord.text(lang));
            view! {
                <rect x=format!("{at:.2}") y="0" width=format!("{w:.2}") height="8" data-node=who
                    class=format!("usage-used usage-{level}")><title>{tip}</title></rect>
            }
        })
        .collect_view();
    view! {
        <svg class="usage-bar" viewBox="0 0 100 8" width="120" height="10" role="img" aria-label=label data-testid="pool-bar">
            <title>{title}</title>
            <rect x="0" y="0" width="100" height="8" class="usage-free"/>
            {rects}
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
        <details data-testid=testid data-total=list.total open={list.total > 0}>
            <summary><strong>{title.text(lang)}</strong> ": " <span data-testid="total">{list.total}</span></summary>
            {(shown < list.total).then(|| view! { <p class="muted small">{Msg::FirstOf.text(lang).replace("{shown}", &shown.to_string()).replace("{total}", &list.total.to_string())}</p> })}
            {(shown > 0).then(|| view! {
                <div class="table-wrap">
                    <table tabindex="0" class="table dense">
                        <thead><tr>
                            <th>"IP"</th><th>{Msg::IpamBlock.text(lang)}</th><th>{Msg::IpamHandle.text(lang)}</th>
                            <th>"Pod"</th><th>{Msg::IpamNode.text(lang)}</th><th>{Msg::IpamWhy.text(lang)}</th>
                        </tr></thead>
                        <tbody>
                            {list.items.into_iter().map(|a| view! {
                                <tr data-ip=a.ip.clone()>
                                    <td class="mono">{a.ip.clone()}</td>
                                    <td class="mono small">{or_dash(a.block)}</td>
                                    <td class="mono small cell-ellipsis" title=a.handle.clone().unwrap_or_default()>{or_dash(a.handle.clone())}</td>
                                    <td>{or_dash(a.pod)}</td>
                                    <td>{or_dash(a.node)}</td>
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
        <details data-testid=testid data-total=list.total open={list.total > 0}>
            <summary><strong>{title.text(lang)}</strong> ": " <span data-testid="total">{list.total}</span></summary>
            <ul class="mono small">
                {list.items.into_iter().map(|n| view! { <li>{n}</li> }).collect_view()}
            </ul>
        </details>
    }
}
