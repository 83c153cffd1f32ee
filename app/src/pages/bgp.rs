//! A cluster's BGP peering: the node-to-node mesh or route reflectors and BGPPeers, a matrix of
//! the sessions between nodes (down ones marked, with a word as well as a colour) and the list
//! of sessions calico-node reports not established, since when. Live. Operators read one
//! node's real session table (`birdcl show protocols`) over SSH.

use grappe_views::bgp::{BgpView, NodeSessionsView};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::or_dash;
use super::overview::LiveBadge;
use crate::api::Role;
use crate::api::hosts::NodeBgpSessions;
use crate::api::session::Me;
use crate::api::state::cluster_bgp;
use crate::i18n::{Lang, Msg, Net, t, use_lang};
use crate::live::use_live;
use crate::when::{Rel, When};
use crate::{ErrorBox, PageHeader};

#[component]
pub fn BgpPage() -> impl IntoView {
    let params = use_params_map();
    let name = Signal::derive(move || params.read().get("cluster").unwrap_or_default());
    let (tick, live) = use_live(name);
    let bgp = Resource::new(move || (name.get(), tick.get()), |(n, _)| cluster_bgp(n));
    let operator = use_context::<Me>().is_some_and(|m| m.role >= Role::Operator);
    let read = ServerAction::<NodeBgpSessions>::new();
    view! {
        <PageHeader title=format!("{} · BGP", name.get_untracked())/>
        <LiveBadge status=live/>
        <Transition fallback=|| view! { <p class="muted">{t(Msg::Loading)}</p> }>
            {move || Suspend::new(async move {
                match bgp.await {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(v) => {
                        let lang = use_lang();
                        view! {
                            {topology(&v, lang)} {matrix(&v, lang)} {sessions(&v, lang)}
                            {(operator && v.calico).then(|| read_form(&v, name, read, lang))}
                        }
                        .into_any()
                    }
                }
            })}
        </Transition>
        // Outside the live part: a live update must not drop the table just read.
        {move || read.pending().get().then(|| view! { <p class="muted">{t(Msg::Loading)}</p> })}
        {move || read.value().get().map(|r| match r {
            Err(e) => view! { <ErrorBox error=e/> }.into_any(),
            Ok(v) => node_sessions(&v, use_lang()),
        })}
    }
}

/// The form that reads one node's session table over SSH (operators).
fn read_form(
    v: &BgpView,
    cluster: Signal<String>,
    read: ServerAction<NodeBgpSessions>,
    lang: Lang,
) -> AnyView {
    let options = super::node_options(&v.nodes, 0);
    view! {
        <section class="card" data-testid="bgp-read">
            <h2>{Net::BgpTable.text(lang)}</h2>
            <p class="muted small">{Net::BgpTableHelp.text(lang)}</p>
            <ActionForm action=read attr:class="inline-form">
                <input type="hidden" name="cluster" value=cluster/>
                <label>{Msg::IpamNode.text(lang)}" "<select name="node" data-testid="bgp-read-node">{options}</select></label>
                " "
                <button type="submit" class="btn" data-testid="bgp-read-run">{Net::BgpTableRead.text(lang)}</button>
            </ActionForm>
        </section>
    }
    .into_any()
}

/// A node's session table as its BIRD reports it.
fn node_sessions(v: &NodeSessionsView, lang: Lang) -> AnyView {
    let rows: Vec<AnyView> = v
        .sessions
        .iter()
        .map(|s| {
            let (class, mark) = if s.established() { ("cell-ok", "✓") } else { ("cell-bad", "✗") };
            view! {
                <tr data-peer=s.peer_ip.clone().unwrap_or_default() data-established=s.established().to_string()>
                    <td class="mono small">{s.name.clone()}</td>
                    <td class="mono">{or_dash(s.peer_ip.clone())}</td>
                    <td>{or_dash(s.peer_node.clone())}</td>
                    <td class=class>{mark}" "{s.state.clone()}</td>
                    <td class="small"><When at=s.since.clone() rel=Rel::For/></td>
                    <td class="small">{s.info.clone()}</td>
                </tr>
            }
            .into_any()
        })
        .collect();
    view! {
        <section class="card" data-testid="bgp-sessions" data-node=v.node.clone()>
            <h2>{Net::BgpTableOf.text(lang).replace("{node}", &v.node)}</h2>
            <p class="muted small"><When at=v.at.clone()/>" · "{v.actor.clone()}" · "{v.duration_ms}" ms · birdcl show protocols"</p>
            <div class="table-wrap">
                <table tabindex="0" class="table dense">
                    <thead><tr>
                        <th>"BIRD"</th><th>"Peer"</th><th>{Msg::BgpPeerNode.text(lang)}</th>
                        <th>{Net::BgpState.text(lang)}</th><th>{Net::BgpStateSince.text(lang)}</th><th>"Info"</th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </section>
    }
    .into_any()
}

fn topology(v: &BgpView, lang: Lang) -> AnyView {
    if !v.calico {
        return view! { <p class="muted" data-testid="bgp-none">{Msg::BgpNoCalico.text(lang)}</p> }
            .into_any();
    }
    let mode = if v.mesh {
        Msg::BgpMesh
    } else {
        Msg::BgpReflectors
    };
    let list = |items: &[String]| {
        if items.is_empty() {
            "-".to_owned()
        } else {
            items.join(", ")
        }
    };
    view! {
        <section class="card" data-testid="bgp-topology" data-mesh=v.mesh.to_string()>
            <dl class="facts">
                <dt>{Msg::BgpMode.text(lang)}</dt><dd>{mode.text(lang)}</dd>
                <dt>"AS"</dt><dd>{v.as_number.map_or_else(|| "64512 (default)".to_owned(), |n| n.to_string())}</dd>
                <dt>{Msg::BgpReflectorNodes.text(lang)}</dt><dd>{list(&v.route_reflectors)}</dd>
                <dt>"BGPPeer"</dt><dd class="mono small">{list(&v.peers)}</dd>
                <dt>{Msg::BgpDown.text(lang)}</dt>
                <dd data-testid="bgp-down-count">
                    {if v.down.is_empty() {
                        view! { <span class="badge badge-ok">"✓ 0"</span> }.into_any()
                    } else {
                        view! { <span class="badge badge-bad">"✗ " {v.down.len()}</span> }.into_any()
                    }}
                </dd>
            </dl>
        </section>
    }
    .into_any()
}

/// Node by node, in the mesh: ✓ established, ✗ reported down.
fn matrix(v: &BgpView, lang: Lang) -> AnyView {
    if !v.calico || !v.mesh || v.nodes.len() < 2 {
        return ().into_any();
    }
    let head: Vec<AnyView> = v
        .nodes
        .iter()
        .map(|n| view! { <th class="small">{n.clone()}</th> }.into_any())
        .collect();
    let rows: Vec<AnyView> = v
        .nodes
        .iter()
        .map(|row| {
            let cells: Vec<AnyView> = v
                .nodes
                .iter()
                .map(|col| {
                    if row == col {
                        view! { <td class="muted">"·"</td> }.into_any()
                    } else if v.is_down(row, col) {
                        view! { <td class="cell-bad" data-session="down" title=Msg::BgpSessionDown.text(lang)>"✗"</td> }.into_any()
                    } else {
                        view! { <td class="cell-ok" data-session="up" title=Msg::BgpSessionUp.text(lang)>"✓"</td> }.into_any()
                    }
                })
                .collect();
            view! { <tr data-node=row.clone()><th class="small">{row.clone()}</th>{cells}</tr> }.into_any()
        })
        .collect();
    let more = (v.nodes_total > v.nodes.len()).then(|| {
        view! { <p class="muted small">{Msg::FirstOf.text(lang).replace("{shown}", &v.nodes.len().to_string()).replace("{total}", &v.nodes_total.to_string())}</p> }
    });
    view! {
        <section class="card">
            <h2>{Msg::BgpMatrix.text(lang)}</h2>
            {more}
            <div class="table-wrap">
                <table tabindex="0" class="table dense bgp-matrix" data-testid="bgp-matrix">
                    <thead><tr><th></th>{head}</tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </section>
    }
    .into_any()
}

fn sessions(v: &BgpView, lang: Lang) -> AnyView {
    if v.down.is_empty() {
        return ().into_any();
    }
    let rows: Vec<AnyView> = v
        .down
        .iter()
        .map(|d| {
            view! {
                <tr data-node=d.node.clone() data-peer=d.peer_ip.clone()>
                    <td>{d.node.clone()}</td>
                    <td class="mono">{d.peer_ip.clone()}</td>
                    <td>{or_dash(d.peer_node.clone())}</td>
                    <td class="small"><When at=d.since.clone() rel=Rel::For/></td>
                    <td>{d.count}</td>
                </tr>
            }
            .into_any()
        })
        .collect();
    view! {
        <section class="card">
            <h2>{Msg::BgpDown.text(lang)}</h2>
            <div class="table-wrap">
                <table tabindex="0" class="table dense" data-testid="bgp-down">
                    <thead><tr>
                        <th>{Msg::IpamNode.text(lang)}</th><th>"Peer"</th><th>{Msg::BgpPeerNode.text(lang)}</th>
                        <th>{Msg::BgpSince.text(lang)}</th><th>{Msg::BgpTimes.text(lang)}</th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </section>
    }
    .into_any()
}
