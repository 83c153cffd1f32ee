//! A cluster's CNI page: the installed plugin, install / upgrade and removal (admin: plan
//! first, then confirm), and the history of CNI runs on this cluster. Plans and run tables are
//! shared with the run page.

use grappe_views::runs::RunSummaryView;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::or_dash;
use super::plan::PlanAnswer;

use crate::api::Role;
use crate::api::runs::{PlanCniInstall, PlanCniRemove, cni_catalog, list_runs};
use crate::api::session::Me;
use crate::api::state::cluster_overview;
use crate::i18n::{Msg, t, use_lang};
use crate::live::{runs_tick, use_live};
use crate::when::{When, duration};
use crate::{ErrorBox, PageHeader};

#[component]
pub fn CniPage() -> impl IntoView {
    let params = use_params_map();
    let name = Signal::derive(move || params.read().get("cluster").unwrap_or_default());
    let is_admin = use_context::<Me>().is_some_and(|m| m.role == Role::Admin);
    // One stream for the page: the cluster's state and its runs.
    let (tick, _) = use_live(name);
    view! {
        <PageHeader title=format!("{} · {}", name.get_untracked(), t(Msg::NavCni))/>
        <super::active::ActiveRunCard cluster=name/>
        <Installed cluster=name tick=tick/>
        {if is_admin {
            view! {
                <InstallCard cluster=name/>
                <RemoveCard cluster=name/>
            }
                .into_any()
        } else {
            view! { <p class="muted">{t(Msg::AdminOnly)}</p> }.into_any()
        }}
        <section class="card">
            <h2>{t(Msg::CniHistory)}</h2>
            <RunsTable cluster=name/>
        </section>
    }
}

/// The detected CNI and calico-node's counts, live.
#[component]
fn Installed(cluster: Signal<String>, tick: ReadSignal<u64>) -> impl IntoView {
    let overview = Resource::new(
        move || (cluster.get(), tick.get()),
        |(c, _)| cluster_overview(c),
    );
    let lang = use_lang();
    view! {
        <section class="card" data-testid="cni-installed">
            <h2>{t(Msg::CniInstalled)}</h2>
            <Transition fallback=|| view! { <p class="muted">{t(Msg::Loading)}</p> }>
                {move || Suspend::new(async move {
                    match overview.await {
                        Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                        Ok(o) if o.cnis.is_empty() => view! { <p data-testid="cni-none">{Msg::NoCni.text(lang)}</p> }.into_any(),
                        Ok(o) => view! {
                            <ul>
                                {o.cnis.iter().map(|c| view! {
                                    <li data-testid="cni-item">
                                        <strong>{c.kind.clone()}</strong> " " {or_dash(c.version.clone())}
                                        " " <span class="muted mono">{c.daemonset.clone()}</span>
                                    </li>
                                }).collect_view()}
                            </ul>
                            {o.calico_node.map(|w| view! {
                                <p class="muted">"calico-node: " {w.ready} "/" {w.desired} " Ready"</p>
                            })}
                        }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn InstallCard(cluster: Signal<String>) -> impl IntoView {
    let catalog = Resource::new(|| (), |()| cni_catalog());
    let plan = ServerAction::<PlanCniInstall>::new();
    let source = NodeRef::<leptos::html::Select>::new();
    let (text, set_text) = signal(String::new());
    let (file_name, set_file_name) = signal(String::new());
    let (file_error, set_file_error) = signal(None::<&'static str>);
    let picked = ManifestFile {
        text: set_text,
        name: set_file_name,
        error: set_file_error,
        source,
        too_large: t(Msg::FileTooLarge),
        unreadable: t(Msg::FileUnreadable),
    };
    let on_file = move |ev: leptos::ev::Event| picked.read(&ev);
    // The ids of the operator's entries, and whether one is picked (its options open).
    let (operator_ids, set_operator_ids) = signal(Vec::<String>::new());
    let (operator_picked, set_operator_picked) = signal(false);
    let on_source = move |ev: leptos::ev::Event| {
        let id = event_target_value(&ev);
        set_operator_picked.set(operator_ids.read().contains(&id));
    };
    view! {
        <section class="card" data-testid="cni-install">
            <h2>{t(Msg::CniInstall)}</h2>
            <ActionForm action=plan attr:class="stack-form" attr:data-testid="plan-install-form">
                <input type="hidden" name="cluster" value=cluster/>
                <label>
                    {t(Msg::Manifest)}
                    <Transition fallback=|| ()>
                        {move || Suspend::new(async move {
                            let items = catalog.await.unwrap_or_default();
                            set_operator_ids.set(items.iter().filter(|i| i.operator).map(|i| i.id.clone()).collect());
                            view! {
                                <select name="source" data-testid="manifest-source" node_ref=source on:change=on_source>
                                    {items.into_iter().map(|i| view! {
                                        <option value=i.id.clone() title=format!("{} sha256:{}", i.url, i.sha256)>{i.label}</option>
                                    }).collect_view()}
                                    <option value="url">{t(Msg::ManifestUrl)}</option>
                                    <option value="paste">{t(Msg::ManifestPaste)}</option>
                                </select>
                            }
                        })}
                    </Transition>
                </label>
                <label>{t(Msg::ManifestUrl)} <input type="url" name="url" placeholder="https://…"/></label>
                <label>{t(Msg::ManifestText)}
                    <textarea name="text" rows="3" maxlength="5242880" data-testid="manifest-text"
                        prop:value=move || text.get()
                        on:input=move |ev| set_text.set(event_target_value(&ev))></textarea>
                </label>
                <label>{t(Msg::ManifestFile)}
                    <input type="file" accept=".yaml,.yml,.json" data-testid="manifest-file" on:change=on_file/>
                </label>
                <input type="hidden" name="file_name" prop:value=move || file_name.get()/>
                {move || file_error.get().map(|e| view! { <p class="alert alert-error" role="alert" data-testid="manifest-file-error">{e}</p> })}
                <label>{t(Msg::PoolCidr)} <input type="text" name="calico[ipv4pool_cidr]" placeholder="192.168.0.0/16" data-testid="pool-cidr"/></label>
                <label>{t(Msg::Autodetection)} <input type="text" name="calico[ip_autodetection_method]" placeholder="kubernetes-internal-ip"/></label>
                <OperatorOptions open=operator_picked/>
                <button type="submit" class="btn btn-primary" data-testid="plan-install">{t(Msg::MakePlan)}</button>
            </ActionForm>
            <PlanAnswer answer=plan.value() planning=plan.pending() testid="confirm-install-form"/>
        </section>
    }
}

/// The Tigera operator's options (its entries only): the pool's block size and encapsulation,
/// the MTU, and the optional components of upstream's custom-resources.yaml. Open when an
/// operator entry is picked; without JavaScript, opened by hand.
#[component]
fn OperatorOptions(open: ReadSignal<bool>) -> impl IntoView {
    view! {
        <details class="options" prop:open=move || open.get() data-testid="operator-options">
            <summary>{t(Msg::OperatorOptions)}</summary>
            <label class="tick">
                <input type="checkbox" name="calico[migrate]" value="on" data-testid="operator-migrate"/>
                " " {t(Msg::MigrateToOperator)}
            </label>
            <label>{t(Msg::BlockSize)}
                <input type="number" name="calico[block_size]" min="20" max="32" placeholder="26" data-testid="block-size"/>
            </label>
            <label>{t(Msg::Encapsulation)}
                <select name="calico[encapsulation]" data-testid="encapsulation">
                    <option value="">"VXLANCrossSubnet"</option>
                    {["IPIP", "IPIPCrossSubnet", "VXLAN", "None"].into_iter().map(|e| view! { <option value=e>{e}</option> }).collect_view()}
                </select>
            </label>
            <label>"MTU" <input type="number" name="calico[mtu]" min="576" max="9216" placeholder="auto" data-testid="mtu"/></label>
            <fieldset>
                <legend>{t(Msg::OptionalComponents)}</legend>
                <label class="tick"><input type="checkbox" name="calico[apiserver]" value="on" data-testid="component-apiserver"/> {t(Msg::ComponentApiServer)}</label>
                <label class="tick"><input type="checkbox" name="calico[goldmane]" value="on"/> {t(Msg::ComponentGoldmane)}</label>
                <label class="tick"><input type="checkbox" name="calico[whisker]" value="on"/> {t(Msg::ComponentWhisker)}</label>
            </fieldset>
        </details>
    }
}

/// Where a manifest file picked in the browser goes: its text into the form (the source switches
/// to "paste"), its name beside it; or an error when it is too large or not text.
#[derive(Clone, Copy)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))] // read in the browser only
struct ManifestFile {
    text: WriteSignal<String>,
    name: WriteSignal<String>,
    error: WriteSignal<Option<&'static str>>,
    source: NodeRef<leptos::html::Select>,
    too_large: &'static str,
    unreadable: &'static str,
}

impl ManifestFile {
    /// The engine refuses larger manifests as well; this spares the upload.
    #[cfg(feature = "hydrate")]
    const MAX_BYTES: f64 = 5.0 * 1024.0 * 1024.0;

    fn read(self, ev: &leptos::ev::Event) {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let Some(input) = ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
            else {
                return;
            };
            let Some(file) = input.files().and_then(|files| files.get(0)) else {
                return;
            };
            if file.size() > Self::MAX_BYTES {
                self.error.set(Some(self.too_large));
                input.set_value("");
                return;
            }
            leptos::task::spawn_local(async move {
                let text = wasm_bindgen_futures::JsFuture::from(file.text()).await;
                match text.ok().and_then(|v| v.as_string()) {
                    Some(text) => {
                        self.text.set(text);
                        self.name.set(file.name());
                        self.error.set(None);
                        if let Some(select) = self.source.get_untracked() {
                            select.set_value("paste");
                        }
                    }
                    None => self.error.set(Some(self.unreadable)),
                }
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (self, ev);
    }
}

#[component]
fn RemoveCard(cluster: Signal<String>) -> impl IntoView {
    let catalog = Resource::new(|| (), |()| cni_catalog());
    let plan = ServerAction::<PlanCniRemove>::new();
    view! {
        <section class="card" data-testid="cni-remove">
            <h2>{t(Msg::CniRemove)}</h2>
            <p class="muted">{t(Msg::CniRemoveHint)}</p>
            <ActionForm action=plan attr:class="inline-form">
                <input type="hidden" name="cluster" value=cluster/>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        let items = catalog.await.unwrap_or_default();
                        view! {
                            <select name="source" data-testid="remove-source" aria-label=t(Msg::Manifest)>
                                {items.into_iter().map(|i| view! { <option value=i.id>{i.label}</option> }).collect_view()}
                            </select>
                        }
                    })}
                </Transition>
                " "
                <button type="submit" class="btn" data-testid="plan-remove">{t(Msg::MakePlan)}</button>
            </ActionForm>
            <PlanAnswer answer=plan.value() planning=plan.pending() testid="confirm-remove-form"/>
        </section>
    }
}

/// Runs, newest first (of one cluster, or all when `cluster` is empty), live.
#[component]
pub fn RunsTable(#[prop(into)] cluster: Signal<String>) -> impl IntoView {
    let tick = runs_tick();
    let runs = Resource::new(move || (cluster.get(), tick.get()), |(c, _)| list_runs(c));
    let lang = use_lang();
    view! {
        <Transition fallback=|| view! { <p class="muted">{t(Msg::Loading)}</p> }>
            {move || Suspend::new(async move {
                match runs.await {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <p class="muted">{Msg::NoRuns.text(lang)}</p> }.into_any(),
                    Ok(list) => view! {
                        <crate::timeline::RunTimeline runs=list.clone()/>
                        <table tabindex="0" class="table dense" data-testid="runs-table">
                            <thead><tr>
                                <th>"#"</th><th>{Msg::Cluster.text(lang)}</th><th>{Msg::Workflow.text(lang)}</th>
                                <th>{Msg::Actor.text(lang)}</th><th>{Msg::Started.text(lang)}</th><th>{Msg::Duration.text(lang)}</th>
                                <th>{Msg::Outcome.text(lang)}</th><th>{Msg::Manifest.text(lang)}</th>
                            </tr></thead>
                            <tbody>{list.into_iter().map(|r| view! { <RunLine r=r/> }).collect_view()}</tbody>
                        </table>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn RunLine(r: RunSummaryView) -> impl IntoView {
    let lang = use_lang();
    let sha = r
        .manifest_sha256
        .clone()
        .map(|s| s.chars().take(12).collect::<String>());
    view! {
        <tr data-run=r.id data-status=r.status.as_str()>
            <td><a href=format!("/runs/{}", r.id)>{r.id}</a></td>
            <td>{r.cluster.clone()}</td>
            <td>{r.workflow.as_str()} " · " {r.title.clone()}</td>
            <td>{r.actor.clone()}</td>
            <td class="small"><When at=r.started_at.clone()/></td>
            <td class="nowrap">{r.duration_seconds.map(|d| duration(f64::from(i32::try_from(d).unwrap_or(i32::MAX)), lang))}</td>
            <td><span class=format!("status status-{}", r.status)>{r.status.as_str()}</span></td>
            <td class="mono small" title=r.manifest_sha256.clone().unwrap_or_default()>
                {or_dash(r.manifest_source.clone())} " " {sha}
            </td>
        </tr>
    }
}
