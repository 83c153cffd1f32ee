//! The host section of a node page: where the node is reached over SSH and its pinned host
//! key, the read-only check (operator) with its result and the earlier ones, and the trust of a
//! host key that is unknown or changed (admin).

use grappe_views::hosts::{HostCheckView, HostKeyView, HostView};
use leptos::prelude::*;

use crate::ErrorBox;
use crate::api::Role;
use crate::api::hosts::{CheckHost, CheckOutcome, TrustHostKey, get_host};
use crate::api::session::Me;
use crate::i18n::{Msg, t, use_lang};
use crate::when::When;

/// The host section (outside the live part of the page: a check's result must stay).
#[component]
pub fn HostSection(cluster: String, node: String) -> impl IntoView {
    let role = use_context::<Me>().map(|m| m.role);
    let check = ServerAction::<CheckHost>::new();
    let trust = ServerAction::<TrustHostKey>::new();
    let (c, n) = (cluster.clone(), node.clone());
    let (form_cluster, form_node) = (cluster.clone(), node.clone());
    let host = Resource::new(
        move || (check.version().get(), trust.version().get()),
        move |_| get_host(c.clone(), n.clone()),
    );
    view! {
        <section class="card" id="host" data-testid="host">
            <h2>{t(Msg::Host)}</h2>
            <Transition fallback=|| view! { <p class="muted">{t(Msg::Loading)}</p> }>
                {move || Suspend::new(async move {
                    match host.await {
                        Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                        Ok(h) if !h.configured => view! { <p class="muted small">{t(Msg::HostNotConfigured)}</p> }.into_any(),
                        Ok(h) => view! { <HostSummary h=h/> }.into_any(),
                    }
                })}
            </Transition>
            {(role >= Some(Role::Operator)).then(|| view! {
                <p class="muted small">{t(Msg::CheckHostHelp)}</p>
                <ActionForm action=check attr:class="inline-form">
                    <input type="hidden" name="cluster" value=form_cluster.clone()/>
                    <input type="hidden" name="node" value=form_node.clone()/>
                    <button type="submit" class="btn" data-testid="check-host">{t(Msg::CheckHost)}</button>
                </ActionForm>
            })}
            {move || check.pending().get().then(|| view! { <p class="muted">{t(Msg::Loading)}</p> })}
            {move || check.value().get().map(|r| match r {
                Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                // The stored check above shows it (the section reloads after each check).
                Ok(CheckOutcome::Done(_)) => ().into_any(),
                Ok(CheckOutcome::UntrustedKey { presented, pinned, message }) => view! {
                    <UntrustedKey cluster=cluster.clone() node=node.clone() presented=presented pinned=pinned message=message trust=trust is_admin=role == Some(Role::Admin)/>
                }.into_any(),
            })}
            {move || trust.value().get().map(|r| match r {
                Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                Ok(k) => view! { <p class="alert alert-ok small" data-testid="trusted">{t(Msg::HostKeyPinned)}": "{k.algorithm}" "{k.fingerprint}</p> }.into_any(),
            })}
        </section>
    }
    .into_any()
}

#[component]
fn HostSummary(h: HostView) -> impl IntoView {
    let lang = use_lang();
    let latest = h.checks.first().cloned();
    let earlier: Vec<HostCheckView> = h.checks.iter().skip(1).cloned().collect();
    view! {
        <dl>
            <dt>{Msg::HostReachedAt.text(lang)}</dt>
            <dd><code data-testid="host-endpoint">{h.endpoint.clone().unwrap_or_else(|| "-".into())}</code></dd>
            <dt>{Msg::HostKeyPinned.text(lang)}</dt>
            <dd data-testid="host-key">{match h.pinned {
                Some(k) => view! { <code>{k.algorithm}" "{k.fingerprint}</code> }.into_any(),
                None => view! { <span class="muted">{Msg::HostKeyNone.text(lang)}</span> }.into_any(),
            }}</dd>
        </dl>
        {latest.map(|v| view! { <CheckResult v=v/> })}
        {(!earlier.is_empty()).then(|| view! {
            <details>
                <summary>{Msg::PastChecks.text(lang)}</summary>
                <ul class="small">
                    {earlier.into_iter().map(|c| view! {
                        <li><When at=c.at.clone()/>" · "{c.actor.clone()}" · kubelet "{c.kubelet.state.clone()}
                            " · iptables "{c.iptables_rules()}</li>
                    }).collect_view()}
                </ul>
            </details>
        })}
    }
    .into_any()
}

/// One check's result.
#[component]
fn CheckResult(v: HostCheckView) -> impl IntoView {
    let lang = use_lang();
    let kubelet_class = if v.kubelet.active { "ok" } else { "bad" };
    let files = view! { <CheckFiles v=v.clone()/> }.into_any();
    let network = view! { <CheckNetwork v=v.clone()/> }.into_any();
    view! {
        <div class="host-check" data-testid="host-check">
            <p class="muted small"><When at=v.at.clone()/>" · "{Msg::CheckedBy.text(lang)}" "{v.actor.clone()}" · "{v.endpoint.clone()}" · "{v.duration_ms}" ms"</p>
            <h3>{Msg::Kubelet.text(lang)}</h3>
            <p><span class=format!("pill {kubelet_class}") data-testid="kubelet-state">{v.kubelet.state.clone()}</span>" "
                {if v.kubelet.calico_lines.is_empty() {
                    view! { <span class="muted" data-testid="calico-journal">{Msg::NoCalicoInJournal.text(lang)}</span> }.into_any()
                } else {
                    view! { <span data-testid="calico-journal">{Msg::CalicoInJournal.text(lang)}</span> }.into_any()
                }}
            </p>
            {(!v.kubelet.calico_lines.is_empty()).then(|| view! {
                <pre class="output small">{v.kubelet.calico_lines.join("\n")}</pre>
            })}
            <details><summary>"systemctl status kubelet"</summary><pre class="output small">{v.kubelet.status.clone()}</pre></details>
            {files}
            {network}
        </div>
    }
    .into_any()
}

#[component]
fn CheckFiles(v: HostCheckView) -> impl IntoView {
    let lang = use_lang();
    view! {
            <h3>{Msg::CniFiles.text(lang)}</h3>
            {v.dirs.iter().map(|d| view! {
                <p><code>{d.path.clone()}</code>" "
                    {if !d.present {
                        view! { <span class="muted" data-testid="dir-missing">{Msg::Missing.text(lang)}</span> }.into_any()
                    } else if d.entries.is_empty() {
                        view! { <span class="muted">{Msg::Empty.text(lang)}</span> }.into_any()
                    } else if d.total > d.entries.len() {
                        let shown = Msg::FirstOf.text(lang)
                            .replace("{shown}", &d.entries.len().to_string())
                            .replace("{total}", &d.total.to_string());
                        view! { <span class="badge badge-warn" data-testid="dir-truncated">{shown}</span> }.into_any()
                    } else { ().into_any() }}
                </p>
                {(!d.entries.is_empty()).then(|| view! {
                    <table class="small" data-testid=format!("dir-{}", d.path.replace('/', "-"))>
                        <thead><tr><th>{Msg::Name.text(lang)}</th><th>{Msg::Size.text(lang)}</th><th>{Msg::Modified.text(lang)}</th></tr></thead>
                        <tbody>{d.entries.iter().map(|e| view! {
                            <tr><td><code>{e.name.clone()}</code>{(e.kind != "file").then(|| format!(" ({})", e.kind))}</td><td>{e.size}</td><td>{e.modified.clone()}</td></tr>
                        }).collect_view()}</tbody>
                    </table>
                })}
            }.into_any()).collect_view()}
            {v.conf_files.iter().map(|f| view! {
                <details><summary><code>{f.path.clone()}</code></summary><pre class="output small">{f.content.clone()}</pre></details>
            }.into_any()).collect_view()}
            {(v.conf_files_total > v.conf_files.len()).then(|| view! {
                <p class="muted small" data-testid="conf-files-truncated">{
                    Msg::FirstOf.text(lang)
                        .replace("{shown}", &v.conf_files.len().to_string())
                        .replace("{total}", &v.conf_files_total.to_string())
                }</p>
            })}
    }
    .into_any()
}

#[component]
fn CheckNetwork(v: HostCheckView) -> impl IntoView {
    let lang = use_lang();
    view! {
            <h3>{Msg::IptablesRules.text(lang)}</h3>
            <table class="small" data-testid="iptables">
                <thead><tr><th>{Msg::Table.text(lang)}</th><th>{Msg::Rules.text(lang)}</th><th>{Msg::Chains.text(lang)}</th></tr></thead>
                <tbody>{v.iptables.iter().map(|tb| view! {
                    <tr><td>{tb.table.clone()}</td>
                        {match &tb.error {
                            Some(e) => view! { <td colspan="2" class="muted">{e.clone()}</td> }.into_any(),
                            None => view! { <td>{tb.rules}</td><td>{tb.chains}</td> }.into_any(),
                        }}
                    </tr>
                }).collect_view()}</tbody>
            </table>
            <p><strong>{Msg::Ipvs.text(lang)}</strong>": "
                <span data-testid="ipvs">{match (&v.ipvs.error, v.ipvs.installed) {
                    (_, false) => Msg::IpvsAbsent.text(lang).to_owned(),
                    (Some(e), _) => e.clone(),
                    (None, true) => format!("{} services, {} destinations", v.ipvs.services, v.ipvs.destinations),
                }}</span>
            </p>
    }
    .into_any()
}

#[component]
fn UntrustedKey(
    cluster: String,
    node: String,
    presented: HostKeyView,
    pinned: Option<HostKeyView>,
    message: String,
    trust: ServerAction<TrustHostKey>,
    is_admin: bool,
) -> impl IntoView {
    let lang = use_lang();
    let changed = pinned.is_some();
    view! {
        <div class=if changed { "alert alert-bad" } else { "alert alert-warn" } data-testid="untrusted-key">
            <p>{if changed { Msg::HostKeyChanged.text(lang) } else { Msg::HostKeyUntrusted.text(lang) }}</p>
            <p class="small">{message}</p>
            <p><code data-testid="presented-fingerprint">{presented.algorithm.clone()}" "{presented.fingerprint.clone()}</code></p>
            {if is_admin {
                view! {
                    <ActionForm action=trust attr:class="inline-form">
                        <input type="hidden" name="cluster" value=cluster/>
                        <input type="hidden" name="node" value=node/>
                        <input type="hidden" name="fingerprint" value=presented.fingerprint/>
                        <super::plan::ReauthField/>
                        <button type="submit" class=if changed { "btn btn-danger" } else { "btn" } data-testid="trust-key">{Msg::TrustKey.text(lang)}</button>
                    </ActionForm>
                }.into_any()
            } else {
                view! { <p class="muted small">{Msg::AdminTrustsKeys.text(lang)}</p> }.into_any()
            }}
        </div>
    }
    .into_any()
}
