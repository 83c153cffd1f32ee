//! A node's page: status, conditions, taints, addresses, its calico-node pod, the IPAM blocks
//! affine to it, its pods, recent warning events and the diagnostics that concern it. Live.
//! Its actions: cordon, uncordon and drain (operator); its host over SSH (check: operator).

use grappe_views::NodeDetailView;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::or_dash;
use super::overview::{LiveBadge, StaleBanner};
use crate::api::state::node_detail;
use crate::findings::Findings;
use crate::i18n::{Msg, t, use_lang};
use crate::live::use_live;
use crate::{ErrorBox, PageHeader};

#[component]
pub fn NodePage() -> impl IntoView {
    let params = use_params_map();
    let cluster = Signal::derive(move || params.read().get("cluster").unwrap_or_default());
    let node = Signal::derive(move || params.read().get("node").unwrap_or_default());
    let (tick, live) = use_live(cluster);
    let detail = Resource::new(
        move || (cluster.get(), node.get(), tick.get()),
        |(c, n, _)| node_detail(c, n),
    );
    view! {
        <PageHeader title=format!("{} · {}", cluster.get_untracked(), node.get_untracked())/>
        <LiveBadge status=live/>
        <super::active::ActiveRunCard cluster=cluster/>
        <Transition fallback=|| view! { <p class="muted">{t(Msg::Loading)}</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(d) => view! { <NodeTop d=d/> }.into_any(),
                }
            })}
        </Transition>
        // Outside the live part: a live update must not close the form or drop its preview.
        {move || view! { <super::drain::DrainSection cluster=cluster.get() node=node.get()/> }}
        {move || view! { <super::host::HostSection cluster=cluster.get() node=node.get()/> }}
        {move || view! { <super::reset::ResetSection cluster=cluster.get() node=node.get()/> }}
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                detail.await.ok().map(|d| view! { <NodeRest d=d/> })
            })}
        </Transition>
    }
}

/// The node's summary cards (status, network, calico-node, actions).
#[component]
fn NodeTop(d: NodeDetailView) -> impl IntoView {
    let lang = use_lang();
    let r = d.row.clone();
    let back = format!("/c/{}/nodes", d.cluster);
    view! {
        <StaleBanner link=d.link.clone()/>
        <p><a href=back>{"← "}{Msg::NavNodes.text(lang)}</a></p>
        <section class="cards">
            <div class="card" data-testid="node-summary">
                <h2>{Msg::Status.text(lang)}</h2>
                <p class="big" data-testid="node-status">{r.status.clone()}</p>
                <dl>
                    <dt>{Msg::Roles.text(lang)}</dt><dd>{if r.roles.is_empty() { Msg::NoRole.text(lang).to_owned() } else { r.roles.join(",") }}</dd>
                    <dt>{Msg::Version.text(lang)}</dt><dd>{r.version.clone()}</dd>
                    <dt>{Msg::Age.text(lang)}</dt><dd>{r.age.clone()}</dd>
                    <dt>"OS"</dt><dd>{r.os_image.clone()}</dd>
                    <dt>"Kernel"</dt><dd>{r.kernel.clone()}</dd>
                    <dt>"Runtime"</dt><dd>{r.runtime.clone()}</dd>
                    <dt>"Pod CIDR"</dt><dd>{r.pod_cidrs.join(", ")}</dd>
                </dl>
            </div>
            <div class="card" data-testid="node-network">
                <h2>{Msg::Network.text(lang)}</h2>
                <dl>
                    {d.addresses.iter().map(|(k, a)| view! { <dt>{k.clone()}</dt><dd>{a.clone()}</dd> }).collect_view()}
                    <dt>"projectcalico.org/IPv4Address"</dt><dd>{or_dash(r.calico_ipv4.clone())}</dd>
                    <dt>{Msg::Tunnel.text(lang)}</dt><dd>{or_dash(r.calico_tunnel.clone())}</dd>
                </dl>
            </div>
            <div class="card" data-testid="node-calico">
                <h2>"calico-node"</h2>
                {match d.calico_pod.clone() {
                    None => view! { <p class="muted">{Msg::NoCalicoPod.text(lang)}</p> }.into_any(),
                    Some(p) => view! {
                        <dl>
                            <dt>{Msg::Name.text(lang)}</dt><dd>{p.name.clone()}</dd>
                            <dt>{Msg::Status.text(lang)}</dt><dd class=if p.ready { "ok" } else { "bad" }>{p.state.clone()}</dd>
                            <dt>{Msg::Restarts.text(lang)}</dt><dd>{p.restarts}</dd>
                            <dt>{Msg::LastTermination.text(lang)}</dt><dd>{or_dash(p.last_termination.clone())}</dd>
                        </dl>
                    }.into_any(),
                }}
            </div>
            <div class="card" data-testid="node-actions">
                <h2>{Msg::Actions.text(lang)}</h2>
                <super::drain::NodeActions cluster=d.cluster.clone() node=r.name.clone() unschedulable=r.status.contains("SchedulingDisabled")/>
            </div>
        </section>
    }
}

/// The rest of the node's page: diagnostics, conditions, taints, IPAM blocks, pods, events.
#[component]
fn NodeRest(d: NodeDetailView) -> impl IntoView {
    let lang = use_lang();
    view! {
        <section>
            <h2>{Msg::Diagnostics.text(lang)} " (" {d.findings.len()} ")"</h2>
            <Findings findings=d.findings.clone()/>
        </section>
        <section>
            <h2>{Msg::Conditions.text(lang)}</h2>
            <table tabindex="0" class="table dense" data-testid="conditions">
                <thead><tr>
                    <th>{Msg::Type.text(lang)}</th><th>{Msg::Status.text(lang)}</th><th>{Msg::Reason.text(lang)}</th>
                    <th>{Msg::Message.text(lang)}</th><th>{Msg::Since.text(lang)}</th>
                </tr></thead>
                <tbody>
                    {d.conditions.iter().map(|c| view! {
                        <tr data-condition=c.kind.clone()>
                            <td>{c.kind.clone()}</td><td>{c.status.clone()}</td><td>{c.reason.clone()}</td>
                            <td>{c.message.clone()}</td><td>{c.last_transition.clone()}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
            <h3>{Msg::Taints.text(lang)}</h3>
            {if d.taints.is_empty() {
                view! { <p class="muted">"—"</p> }.into_any()
            } else {
                view! { <ul data-testid="taints">{d.taints.iter().map(|t| view! { <li><code>{t.clone()}</code></li> }).collect_view()}</ul> }.into_any()
            }}
        </section>
        <section>
            <h2>{Msg::IpamBlocks.text(lang)} " (" {d.blocks.len()} ")"</h2>
            {if d.blocks.is_empty() {
                view! { <p class="muted">"—"</p> }.into_any()
            } else {
                view! {
                    <table tabindex="0" class="table dense" data-testid="blocks">
                        <thead><tr><th>"CIDR"</th><th>{Msg::AffinityState.text(lang)}</th><th>{Msg::AddressesInUse.text(lang)}</th></tr></thead>
                        <tbody>
                            {d.blocks.iter().map(|b| view! {
                                <tr><td>{b.cidr.clone()}</td><td>{b.state.clone()}</td><td>{b.in_use} " / " {b.size}</td></tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
        <section>
            <h2>{Msg::Pods.text(lang)} " (" {d.pods.len()} ")"</h2>
            <table tabindex="0" class="table dense" data-testid="node-pods">
                <thead><tr>
                    <th>{Msg::Namespace.text(lang)}</th><th>{Msg::Name.text(lang)}</th><th>"IP"</th>
                    <th>{Msg::Owner.text(lang)}</th><th>{Msg::Status.text(lang)}</th><th>{Msg::Restarts.text(lang)}</th><th>{Msg::Age.text(lang)}</th>
                </tr></thead>
                <tbody>
                    {d.pods.iter().map(|p| view! {
                        <tr>
                            <td>{p.namespace.clone()}</td><td>{p.name.clone()}</td>
                            <td>{or_dash(p.ip.clone())}</td>
                            <td>{or_dash(Some(p.owner.clone()))}</td>
                            <td class=if p.ready { "ok" } else { "" }>{p.phase.clone()}</td>
                            <td>{p.restarts}</td><td>{p.age.clone()}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
        <section>
            <h2>{Msg::WarningEvents.text(lang)} " (" {d.events.len()} ")"</h2>
            {if d.events.is_empty() {
                view! { <p class="muted">"—"</p> }.into_any()
            } else {
                view! {
                    <table tabindex="0" class="table dense" data-testid="events">
                        <thead><tr>
                            <th>{Msg::LastSeen.text(lang)}</th><th>{Msg::Object.text(lang)}</th><th>{Msg::Reason.text(lang)}</th>
                            <th>{Msg::Message.text(lang)}</th><th>"×"</th>
                        </tr></thead>
                        <tbody>
                            {d.events.iter().map(|e| view! {
                                <tr>
                                    <td>{e.last_seen.clone()}</td><td>{e.object.clone()}</td><td>{e.reason.clone()}</td>
                                    <td>{e.message.clone()}</td><td>{e.count}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}
