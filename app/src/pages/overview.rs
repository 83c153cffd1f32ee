//! A cluster's overview: API server, nodes, the CNI and its health, Calico's IP pools, kubeadm's
//! subnets and the open diagnostics. Live: it reloads when the cluster changes.

use grappe_views::{LinkView, OverviewView, WorkloadView};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::layout::dot_class;
use super::or_dash;
use crate::api::clusters::cluster_status;
use crate::api::state::cluster_overview;
use crate::findings::Findings;
use crate::i18n::{Lang, Msg, t, use_lang};
use crate::live::{LiveStatus, use_live};
use crate::picture::{Part, StackedBar};
use crate::when::{Rel, When};
use crate::{ErrorBox, PageHeader};

#[component]
pub fn OverviewPage() -> impl IntoView {
    let params = use_params_map();
    let name = Signal::derive(move || params.read().get("cluster").unwrap_or_default());
    let (tick, live) = use_live(name);
    let overview = Resource::new(
        move || (name.get(), tick.get()),
        |(n, _)| cluster_overview(n),
    );
    let probe = Resource::new(move || (name.get(), tick.get()), |(n, _)| cluster_status(n));
    view! {
        <PageHeader title=format!("{} · {}", name.get_untracked(), t(Msg::NavOverview))/>
        <LiveBadge status=live/>
        <super::active::ActiveRunCard cluster=name/>
        <Transition fallback=|| view! { <p class="muted">{t(Msg::Loading)}</p> }>
            {move || Suspend::new(async move {
                match (overview.await, probe.await) {
                    (Err(e), _) | (_, Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
                    (Ok(o), Ok(p)) => view! { <Overview o=o probe=p/> }.into_any(),
                }
            })}
        </Transition>
        // Outside the live part: a live update must not close the form or drop its preview.
        {move || view! { <super::recover::RecoverySection cluster=name.get()/> }}
    }
}

/// "live" / "reconnecting" next to a page title.
#[component]
pub fn LiveBadge(status: ReadSignal<LiveStatus>) -> impl IntoView {
    let lang = use_lang();
    view! {
        <p class="live-badge" data-testid="live-badge" data-status=move || format!("{:?}", status.get()).to_lowercase()>
            {move || match status.get() {
                LiveStatus::Live => Msg::Live.text(lang),
                LiveStatus::Connecting => Msg::LiveConnecting.text(lang),
                LiveStatus::Reconnecting => Msg::LiveReconnecting.text(lang),
            }}
        </p>
    }
}

/// How fresh the data below is: stale while the API server cannot be watched, not there yet
/// before the first node list, partial while some resource's watch fails (RBAC, most often).
#[component]
pub fn StaleBanner(link: LinkView) -> impl IntoView {
    let lang = use_lang();
    let unreachable = link.unreachable_since.clone().map(|since| {
        view! {
            <div class="alert alert-error" role="alert" data-testid="stale-banner">
                <strong>{Msg::ApiUnreachableSince.text(lang)} " " <When at=since rel=Rel::For/> ". "</strong>
                {Msg::StaleState.text(lang)}
                {link.error.clone().map(|e| view! { <pre class="error-text">{e}</pre> })}
                <p><a href="?recover=1#recover" data-testid="go-recover">{Msg::GoRecover.text(lang)} " ↓"</a></p>
            </div>
        }
    });
    let loading = (!link.synced && link.unreachable_since.is_none())
        .then(|| view! { <p class="alert alert-info">{Msg::NotSyncedYet.text(lang)}</p> });
    let partial = (!link.resource_errors.is_empty()).then(|| {
        view! {
            <div class="alert alert-info" data-testid="watch-errors">
                <strong>{Msg::WatchErrors.text(lang)}</strong>
                <ul>
                    {link.resource_errors_by_cause().into_iter().map(|(resources, error)| {
                        let count = resources.len();
                        let last = count.saturating_sub(1);
                        view! {
                            <li data-count=count>
                                {resources.into_iter().enumerate().map(|(i, r)| view! {
                                    <code>{r.to_owned()}</code>{(i < last).then_some(", ")}
                                }).collect_view()}
                                ": " {error.to_owned()}
                            </li>
                        }
                    }).collect_view()}
                </ul>
            </div>
        }
    });
    view! { {unreachable} {loading} {partial} }
}

fn workload_line(w: &WorkloadView, lang: Lang) -> String {
    format!(
        "{}/{} {} · {} {} · {} {}",
        w.ready,
        w.desired,
        Msg::ReadyWord.text(lang),
        w.unavailable,
        Msg::UnavailableWord.text(lang),
        w.updated,
        Msg::UpdatedWord.text(lang)
    )
}

#[component]
fn Overview(o: OverviewView, probe: crate::api::clusters::ClusterView) -> impl IntoView {
    let lang = use_lang();
    let cluster = o.cluster.clone();
    let nodes_href = format!("/c/{cluster}/nodes");
    let n = o.nodes.clone();
    let cni_text = if o.cnis.is_empty() {
        Msg::NoCni.text(lang).to_owned()
    } else {
        o.cnis
            .iter()
            .map(|c| format!("{} {}", c.kind, c.version.clone().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(" + ")
    };
    view! {
        <StaleBanner link=o.link.clone()/>
        <section class="cards">
            <div class="card" data-testid="apiserver-card">
                <h2>{Msg::ApiServer.text(lang)}</h2>
                <p>
                    <span class=dot_class(probe.reachable)></span>
                    {if probe.reachable { Msg::Reachable.text(lang) } else { Msg::Unreachable.text(lang) }}
                </p>
                {probe.error.clone().map(|e| view! { <pre class="error-text">{e}</pre> })}
                <dl>
                    <dt>{Msg::KubernetesVersion.text(lang)}</dt>
                    <dd>{or_dash(probe.version.clone().or(o.kubernetes_version.clone()))}</dd>
                    <dt>{Msg::Latency.text(lang)}</dt>
                    <dd>{or_dash(probe.latency_ms.map(|ms| format!("{ms} ms")))}</dd>
                    <dt>{Msg::CheckedAt.text(lang)}</dt>
                    <dd><When at=probe.checked_at.clone()/></dd>
                </dl>
            </div>
            <div class="card" data-testid="nodes-card">
                <h2><a href=nodes_href>{Msg::NavNodes.text(lang)}</a></h2>
                <p class="big">{n.total}</p>
                <NodesByState cluster=cluster.clone() ready=n.ready not_ready=n.not_ready unknown=n.unknown/>
                <dl>
                    <dt>"Ready"</dt><dd data-testid="count-ready">{n.ready}</dd>
                    <dt>"NotReady"</dt><dd data-testid="count-notready">{n.not_ready}</dd>
                    <dt>"Unknown"</dt><dd>{n.unknown}</dd>
                    <dt>"SchedulingDisabled"</dt><dd data-testid="count-cordoned">{n.scheduling_disabled}</dd>
                    <dt>{Msg::Pods.text(lang)}</dt><dd>{o.pods}</dd>
                </dl>
            </div>
            <div class="card" data-testid="cni-card">
                <h2>{Msg::CniPlugin.text(lang)}</h2>
                <p class="big" data-testid="cni-detected">{cni_text}</p>
                <dl>
                    {o.calico_node.clone().map(|w| view! {
                        <dt>"calico-node"</dt>
                        <dd data-testid="calico-node-health">{workload_line(&w, lang)}</dd>
                    })}
                    {o.kube_controllers.clone().map(|w| view! {
                        <dt>"calico-kube-controllers"</dt>
                        <dd>{format!("{}/{} {}", w.available, w.desired, Msg::AvailableWord.text(lang))}</dd>
                    })}
                    {o.calico_version.clone().map(|v| view! { <dt>"ClusterInformation"</dt><dd>{v}</dd> })}
                    {(!o.felix_configurations.is_empty()).then(|| view! {
                        <dt>"FelixConfiguration"</dt><dd>{o.felix_configurations.join(", ")}</dd>
                    })}
                    {o.calico.clone().map(|c| view! { <CalicoFacts calico=c/> })}
                    {o.kube_proxy_mode.clone().map(|m| view! { <dt>"kube-proxy"</dt><dd data-testid="kube-proxy-mode">{m}</dd> })}
                </dl>
                {(o.calico_node_unready_total > 0).then(|| view! {
                    <p class="small">
                        {Msg::CalicoNotReadyOn.text(lang)} " (" {o.calico_node_unready_total} "): "
                        {o.calico_node_unready.iter().map(|n| {
                            let href = format!("/c/{cluster}/nodes/{n}");
                            view! { <a href=href>{n.clone()}</a> " " }
                        }).collect_view()}
                    </p>
                })}
            </div>
            <div class="card" data-testid="subnets-card">
                <h2>{Msg::Subnets.text(lang)}</h2>
                <dl>
                    <dt>"podSubnet"</dt><dd>{or_dash(o.pod_subnet.clone())}</dd>
                    <dt>"serviceSubnet"</dt><dd>{or_dash(o.service_subnet.clone())}</dd>
                    <dt>{Msg::IpamBlocks.text(lang)}</dt><dd>{o.blocks} " (" {o.block_addresses_in_use} " " {Msg::AddressesInUse.text(lang)} ")"</dd>
                </dl>
            </div>
        </section>
        {o.calico.clone().filter(|c| !c.components.is_empty()).map(|c| view! {
            <section>
                <h2>{Msg::OperatorComponents.text(lang)}</h2>
                <TigeraComponents calico=c/>
            </section>
        })}
        <section>
            <h2>{Msg::IpPools.text(lang)}</h2>
            {if o.pools.is_empty() {
                view! { <p class="muted">{Msg::NoPools.text(lang)}</p> }.into_any()
            } else {
                view! {
                    <table tabindex="0" class="table dense" data-testid="pools">
                        <thead><tr>
                            <th>{Msg::Name.text(lang)}</th><th>"CIDR"</th><th>"blockSize"</th>
                            <th>"ipipMode"</th><th>"vxlanMode"</th><th>"natOutgoing"</th><th>"disabled"</th>
                        </tr></thead>
                        <tbody>
                            {o.pools.iter().map(|p| view! {
                                <tr>
                                    <td>{p.name.clone()}</td><td>{p.cidr.clone()}</td><td>{p.block_size}</td>
                                    <td>{p.ipip_mode.clone()}</td><td>{p.vxlan_mode.clone()}</td>
                                    <td>{p.nat_outgoing.to_string()}</td><td>{p.disabled.to_string()}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
        <section>
            <h2>{Msg::Diagnostics.text(lang)} " (" {o.findings.len()} ")"</h2>
            <Findings findings=o.findings.clone() cluster=cluster.clone()/>
        </section>
    }
}

/// How Calico is installed and served: the method, its version, the API of its resources, its
/// API server, and the operator's Installation settings.
#[component]
fn CalicoFacts(calico: grappe_views::CalicoView) -> impl IntoView {
    let lang = use_lang();
    let method = if calico.method == "operator" {
        Msg::InstalledByOperator.text(lang)
    } else {
        Msg::InstalledFromManifest.text(lang)
    };
    view! {
        <dt>{Msg::InstallMethod.text(lang)}</dt><dd data-testid="calico-method">{method}</dd>
        {calico.version.clone().map(|v| view! { <dt>"Calico"</dt><dd data-testid="calico-version">{v}</dd> })}
        {calico.api.clone().map(|a| view! { <dt>"API"</dt><dd class="mono small" data-testid="calico-api">{a}</dd> })}
        {calico.apiserver.clone().map(|(ok, message)| view! {
            <dt>"v3.projectcalico.org"</dt>
            <dd class=if ok { "ok" } else { "bad" } data-testid="calico-apiserver" title=message>
                {if ok { Msg::AvailableWord.text(lang) } else { Msg::UnavailableWord.text(lang) }}
            </dd>
        })}
        {(!calico.pools.is_empty()).then(|| view! { <dt>"Installation"</dt><dd class="mono small">{calico.pools.join(", ")}</dd> })}
        {calico.dataplane.clone().map(|d| view! { <dt>{Msg::Dataplane.text(lang)}</dt><dd>{d}{calico.mtu.map(|m| format!(", MTU {m}")).unwrap_or_default()}</dd> })}
    }
}

/// The operator's report per component (`kubectl get tigerastatus`).
#[component]
fn TigeraComponents(calico: grappe_views::CalicoView) -> impl IntoView {
    let lang = use_lang();
    view! {
        <table tabindex="0" class="table dense" data-testid="tigera-status">
            <thead><tr><th>"TigeraStatus"</th><th>{Msg::Status.text(lang)}</th><th>{Msg::Reason.text(lang)}</th><th>{Msg::Message.text(lang)}</th><th>{Msg::Since.text(lang)}</th></tr></thead>
            <tbody>
                {calico.components.into_iter().map(|t| {
                    let class = match t.state.as_str() { "Available" => "ok", "Degraded" => "bad", _ => "" };
                    let (component, state) = (t.name.clone(), t.state.clone());
                    view! {
                        <tr data-component=component data-state=state>
                            <td>{t.name}</td>
                            <td class=class>{t.state}</td>
                            <td>{t.reason}</td>
                            <td class="small">{t.message}</td>
                            <td class="muted"><When at=t.since rel=Rel::For/></td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// The nodes by state as one bar; each part leads to the nodes page filtered on it.
#[component]
fn NodesByState(cluster: String, ready: usize, not_ready: usize, unknown: usize) -> impl IntoView {
    let lang = use_lang();
    let href = |status: &str| Some(format!("/c/{cluster}/nodes?status={status}"));
    let parts = vec![
        Part {
            label: "Ready".to_owned(),
            count: ready as u64,
            class: "part-ok",
            href: href("ready"),
        },
        Part {
            label: "NotReady".to_owned(),
            count: not_ready as u64,
            class: "part-bad",
            href: href("notready"),
        },
        Part {
            label: "Unknown".to_owned(),
            count: unknown as u64,
            class: "part-warn",
            href: href("unknown"),
        },
    ];
    view! { <StackedBar parts=parts title=Msg::NavNodes.text(lang) testid="nodes-by-state"/> }
}
