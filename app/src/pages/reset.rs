//! The reset section of a node page (admin): the options, the preview (where the host is
//! reached and with which key, a drain first or not, the steps' checks) and the confirmation by
//! the node's name and the password.

use grappe_views::runs::PlanView;
use leptos::prelude::*;

use super::plan::ConfirmPlan;
use crate::ErrorBox;
use crate::api::Role;
use crate::api::nodes::PlanNodeReset;
use crate::api::session::Me;
use crate::i18n::{Msg, t, use_lang};

/// The reset section (admins only; outside the live part of the page).
#[component]
pub fn ResetSection(cluster: String, node: String) -> impl IntoView {
    let role = use_context::<Me>().map(|m| m.role);
    (role == Some(Role::Admin)).then(|| {
        let plan = ServerAction::<PlanNodeReset>::new();
        let lang = use_lang();
        view! {
            <section class="card" id="reset">
                <details class="reset" data-testid="reset">
                    <summary><strong>{Msg::ResetNode.text(lang)}</strong></summary>
                    <p class="muted small">{Msg::ResetHelp.text(lang)}</p>
                    <ActionForm action=plan attr:class="stack-form" attr:data-testid="reset-form">
                        <input type="hidden" name="cluster" value=cluster/>
                        <input type="hidden" name="node" value=node/>
                        <label class="tick"><input type="checkbox" name="remove_kubeconfig" data-testid="reset-kubeconfig"/> {Msg::RemoveKubeconfig.text(lang)}</label>
                        <label class="tick"><input type="checkbox" name="remove_cni_state" data-testid="reset-cni-state"/> {Msg::RemoveCniState.text(lang)}</label>
                        <label class="tick"><input type="checkbox" name="delete_node"/> {Msg::DeleteNodeObject.text(lang)}</label>
                        <label class="tick"><input type="checkbox" name="reset_cluster" data-testid="reset-cluster"/> {Msg::ResetCluster.text(lang)}</label>
                        <p class="alert alert-warn small">{Msg::ResetClusterWarn.text(lang)}</p>
                        <button type="submit" class="btn btn-primary" data-testid="plan-reset">{Msg::PreviewReset.text(lang)}</button>
                    </ActionForm>
                    {move || plan.pending().get().then(|| view! { <p class="muted">{t(Msg::Loading)}</p> })}
                    {move || match plan.value().get() {
                        None => ().into_any(),
                        Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
                        Some(Ok(p)) => view! { <ConfirmReset plan=p/> }.into_any(),
                    }}
                </details>
            </section>
        }
    })
}

/// Where the host is reached and with which key, whether a drain comes first, then the plan.
#[component]
fn ConfirmReset(plan: PlanView) -> impl IntoView {
    let lang = use_lang();
    view! {
        {plan.reset().cloned().map(|r| view! {
            <dl class="facts" data-testid="reset-preview">
                <dt>"SSH"</dt><dd class="mono">{r.endpoint}</dd>
                <dt>{Msg::HostKeyPinned.text(lang)}</dt><dd class="mono small">{r.host_key}</dd>
                <dt>{Msg::Status.text(lang)}</dt><dd>{r.node_status}</dd>
                <dt>{Msg::Drain.text(lang)}</dt><dd data-testid="reset-drain-first">{if r.drain_first { "yes" } else { "no" }}</dd>
            </dl>
        })}
        <ConfirmPlan plan=plan testid="confirm-reset-form"/>
    }
}
