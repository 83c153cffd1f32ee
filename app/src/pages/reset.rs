//! The reset section of a node page (admin): the options, the preview (where the host is
//! reached and with which key, a drain first or not, the steps' checks) and the confirmation by
//! the node's name and the password.

use grappe_views::runs::PlanView;
use leptos::prelude::*;

use super::plan::{ConfirmFields, PlanBox, go_to_run};
use crate::ErrorBox;
use crate::api::RoleView;
use crate::api::nodes::{PlanNodeReset, StartNodeReset};
use crate::api::session::Me;
use crate::i18n::{Msg, t, use_lang};

/// The reset section (admins only; outside the live part of the page).
#[component]
pub fn ResetSection(cluster: String, node: String) -> impl IntoView {
    let role = use_context::<Me>().map(|m| m.role);
    (role == Some(RoleView::Admin)).then(|| {
        let plan = ServerAction::<PlanNodeReset>::new();
        let start = ServerAction::<StartNodeReset>::new();
        go_to_run(move || start.value().get());
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
                        Some(Ok(p)) => view! { <ConfirmReset plan=p start=start/> }.into_any(),
                    }}
                </details>
            </section>
        }
    })
}

#[component]
fn ConfirmReset(plan: PlanView, start: ServerAction<StartNodeReset>) -> impl IntoView {
    let reset = plan.reset.clone();
    let options = reset
        .as_ref()
        .and_then(|r| serde_json::to_string(&r.options).ok())
        .unwrap_or_default();
    let node = reset.as_ref().map(|r| r.node.clone()).unwrap_or_default();
    let (cluster, hash, runnable) = (plan.cluster.clone(), plan.hash.clone(), plan.runnable());
    let lang = use_lang();
    view! {
        {reset.map(|r| view! {
            <dl class="facts" data-testid="reset-preview">
                <dt>"SSH"</dt><dd class="mono">{r.endpoint}</dd>
                <dt>{Msg::HostKeyPinned.text(lang)}</dt><dd class="mono small">{r.host_key}</dd>
                <dt>{Msg::Status.text(lang)}</dt><dd>{r.node_status}</dd>
                <dt>{Msg::Drain.text(lang)}</dt><dd data-testid="reset-drain-first">{if r.drain_first { "yes" } else { "no" }}</dd>
            </dl>
        })}
        <PlanBox plan=plan/>
        <ActionForm action=start attr:class="stack-form" attr:data-testid="confirm-reset-form">
            <input type="hidden" name="cluster" value=cluster/>
            <input type="hidden" name="node" value=node/>
            <input type="hidden" name="options" value=options/>
            <input type="hidden" name="plan_hash" value=hash/>
            <ConfirmFields runnable=runnable label=Msg::TypeResetWord/>
        </ActionForm>
        {move || start.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBox error=e/> })}
    }
}
