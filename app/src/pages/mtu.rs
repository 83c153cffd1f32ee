//! A cluster's MTU and encapsulation: per pool, the pod MTU against what the smallest known
//! path carries once the encapsulation's bytes are added (with a word as well as a colour), the
//! nodes without the tunnel address their pool needs, the hosts' link MTUs from their checks,
//! and the path-MTU probe between two nodes (operators), with the latest probes. Live.

use grappe_views::mtu::{MtuPoolView, MtuVerdict, MtuView, ProbeView};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::overview::LiveBadge;
use crate::api::Role;
use crate::api::hosts::ProbeMtu;
use crate::api::session::Me;
use crate::api::state::cluster_mtu;
use crate::i18n::{Lang, Msg, Net, t, use_lang};
use crate::live::use_live;
use crate::when::When;
use crate::{ErrorBox, PageHeader};

#[component]
pub fn MtuPage() -> impl IntoView {
    let params = use_params_map();
    let name = Signal::derive(move || params.read().get("cluster").unwrap_or_default());
    let (tick, live) = use_live(name);
    let probe = ServerAction::<ProbeMtu>::new();
    let mtu = Resource::new(
        move || (name.get(), tick.get(), probe.version().get()),
        |(n, _, _)| cluster_mtu(n),
    );
    let operator = use_context::<Me>().is_some_and(|m| m.role >= Role::Operator);
    view! {
        <PageHeader title=format!("{} · MTU", name.get_untracked())/>
        <LiveBadge status=live/>
        <Transition fallback=|| view! { <p class="muted">{t(Msg::Loading)}</p> }>
            {move || Suspend::new(async move {
                match mtu.await {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(v) => {
                        let lang = use_lang();
                        view! {
                            {pools(&v, lang)}
                            {tunnels(&v, lang)}
                            {hosts(&v, lang)}
                            {operator.then(|| probe_form(&v, name, probe, lang))}
                            {probes(&v, lang)}
                        }
                        .into_any()
                    }
                }
            })}
        </Transition>
        {move || probe.pending().get().then(|| view! { <p class="muted" data-testid="probe-running">{t(Net::MtuProbing)}</p> })}
        {move || probe.value().get().and_then(Result::err).map(|e| view! { <ErrorBox error=e/> })}
    }
}

fn verdict(p: &MtuPoolView, lang: Lang) -> AnyView {
    let (class, word) = match p.verdict {
        MtuVerdict::Fits => ("badge badge-ok", Net::MtuFits),
        MtuVerdict::Smaller => ("badge badge-warn", Net::MtuSmaller),
        MtuVerdict::TooLarge => ("badge badge-bad", Net::MtuTooLarge),
    };
    view! { <span class=class data-testid="mtu-verdict">{word.text(lang)}</span> }.into_any()
}

fn pools(v: &MtuView, lang: Lang) -> AnyView {
    if !v.calico {
        return view! { <p class="muted" data-testid="mtu-none">{Net::MtuNoCalico.text(lang)}</p> }
            .into_any();
    }
    let rows: Vec<AnyView> = v
        .pools
        .iter()
        .map(|p| {
            let path = if p.path_source.is_empty() {
                Net::MtuAssumed.text(lang).to_owned()
            } else {
                p.path_source.clone()
            };
            view! {
                <tr data-pool=p.name.clone() data-verdict=format!("{:?}", p.verdict)>
                    <td>{p.name.clone()}<br/><span class="mono small">{p.cidr.clone()}</span></td>
                    <td>{p.encapsulation.clone()}" (−"{p.overhead}")"</td>
                    <td data-testid="path-mtu">{p.path_mtu}<br/><span class="small muted">{path}</span></td>
                    <td data-testid="expected-mtu">{p.expected}</td>
                    <td data-testid="pod-mtu">{p.pod_mtu}<br/><span class="small muted">{p.pod_source.clone()}</span></td>
                    <td>{verdict(p, lang)}</td>
                </tr>
            }
            .into_any()
        })
        .collect();
    view! {
        <section class="card">
            <h2>{Net::MtuPools.text(lang)}</h2>
            <p class="muted small">{Net::MtuPoolsHelp.text(lang)}</p>
            <div class="table-wrap">
                <table tabindex="0" class="table dense" data-testid="mtu-pools">
                    <thead><tr>
                        <th>"IPPool"</th><th>{Net::MtuEncapsulation.text(lang)}</th>
                        <th>{Net::MtuPath.text(lang)}</th><th>{Net::MtuExpected.text(lang)}</th>
                        <th>{Net::MtuPod.text(lang)}</th><th></th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
            {v.cross_subnet_one_subnet.first().map(|(pool, subnet)| view! {
                <p class="alert alert-info small" data-testid="cross-subnet">
                    {Net::MtuCrossSubnet.text(lang).replace("{pool}", pool).replace("{subnet}", subnet)}
                </p>
            })}
        </section>
    }
    .into_any()
}

fn tunnels(v: &MtuView, lang: Lang) -> AnyView {
    if v.missing_tunnels.is_empty() {
        return ().into_any();
    }
    view! {
        <section class="card">
            <h2>{Net::MtuMissingTunnels.text(lang)}</h2>
            <table tabindex="0" class="table dense" data-testid="missing-tunnels">
                <thead><tr><th>{Msg::IpamNode.text(lang)}</th><th>{Net::MtuEncapsulation.text(lang)}</th><th>"Annotation"</th></tr></thead>
                <tbody>{v.missing_tunnels.iter().map(|m| view! {
                    <tr data-node=m.node.clone()><td>{m.node.clone()}</td><td>{m.encapsulation.clone()}</td><td class="mono small">{m.annotation.clone()}</td></tr>
                }).collect_view()}</tbody>
            </table>
        </section>
    }
    .into_any()
}

fn hosts(v: &MtuView, lang: Lang) -> AnyView {
    view! {
        <section class="card">
            <h2>{Net::MtuHosts.text(lang)}</h2>
            {if v.hosts.is_empty() {
                view! { <p class="muted small" data-testid="mtu-no-hosts">{Net::MtuNoHosts.text(lang)}</p> }.into_any()
            } else {
                view! {
                    <table tabindex="0" class="table dense" data-testid="mtu-hosts">
                        <thead><tr><th>{Msg::IpamNode.text(lang)}</th><th>{Net::MtuUplink.text(lang)}</th><th>"Calico"</th><th>{Net::MtuChecked.text(lang)}</th></tr></thead>
                        <tbody>{v.hosts.iter().map(|h| view! {
                            <tr data-node=h.node.clone()>
                                <td><a href=format!("nodes/{}#host", h.node)>{h.node.clone()}</a></td>
                                <td data-testid="uplink-mtu">{h.iface.clone()}" "{h.mtu}</td>
                                <td class="small mono">{h.calico_links.iter().map(|(n, m)| format!("{n} {m}")).collect::<Vec<_>>().join(", ")}</td>
                                <td class="small"><When at=h.at.clone()/></td>
                            </tr>
                        }).collect_view()}</tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
    .into_any()
}

fn probe_form(
    v: &MtuView,
    cluster: Signal<String>,
    probe: ServerAction<ProbeMtu>,
    lang: Lang,
) -> AnyView {
    let options = |skip: usize| {
        v.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                view! { <option value=n.clone() selected=i == skip>{n.clone()}</option> }.into_any()
            })
            .collect::<Vec<_>>()
    };
    let (from, to) = (options(0), options(1));
    view! {
        <section class="card" data-testid="mtu-probe">
            <h2>{Net::MtuProbe.text(lang)}</h2>
            <p class="muted small">{Net::MtuProbeHelp.text(lang)}</p>
            <ActionForm action=probe attr:class="inline-form">
                <input type="hidden" name="cluster" value=cluster/>
                <label>{Net::MtuFrom.text(lang)}" "<select name="from" data-testid="probe-from">{from}</select></label>
                " "
                <label>{Net::MtuTo.text(lang)}" "<select name="to" data-testid="probe-to">{to}</select></label>
                " "
                <button type="submit" class="btn" data-testid="probe-run">{Net::MtuProbeRun.text(lang)}</button>
            </ActionForm>
        </section>
    }
    .into_any()
}

fn probes(v: &MtuView, lang: Lang) -> AnyView {
    if v.probes.is_empty() {
        return ().into_any();
    }
    // What pods send at most: the largest pod MTU plus its encapsulation.
    let sent = v.pools.iter().map(|p| p.pod_mtu + p.overhead).max();
    let row = |p: &ProbeView| {
        let short = match (p.largest, sent) {
            (Some(l), Some(s)) => l < s,
            (None, _) => true,
            _ => false,
        };
        let largest = p.largest.map_or_else(
            || Net::MtuNothingPassed.text(lang).to_owned(),
            |l| l.to_string(),
        );
        let steps = p
            .steps
            .iter()
            .map(|s| format!("{}{}", s.size, if s.passed { "✓" } else { "✗" }))
            .collect::<Vec<_>>()
            .join(" ");
        view! {
            <tr data-from=p.from.clone() data-to=p.to.clone()>
                <td>{p.from.clone()}" → "{p.to.clone()}<br/><span class="mono small">{p.to_ip.clone()}</span></td>
                <td data-testid="probe-largest" class=if short { "cell-bad" } else { "cell-ok" }>
                    {largest}" "{if short { "✗" } else { "✓" }}
                </td>
                <td class="small mono">{steps}</td>
                <td class="small"><When at=p.at.clone()/>" · "{p.actor.clone()}" · "{p.duration_ms}" ms"</td>
            </tr>
        }
        .into_any()
    };
    view! {
        <section class="card">
            <h2>{Net::MtuProbes.text(lang)}</h2>
            {sent.map(|s| view! { <p class="small">{Net::MtuPodsSend.text(lang).replace("{size}", &s.to_string())}</p> })}
            <div class="table-wrap">
                <table tabindex="0" class="table dense" data-testid="mtu-probes">
                    <thead><tr><th>{Net::MtuPathCol.text(lang)}</th><th>{Net::MtuLargest.text(lang)}</th><th>{Net::MtuSteps.text(lang)}</th><th></th></tr></thead>
                    <tbody>{v.probes.iter().map(row).collect_view()}</tbody>
                </table>
            </div>
        </section>
    }
    .into_any()
}
