//! The recovery section of a cluster's overview (admin): a lost kube-apiserver brought back over
//! SSH, with a preview (the control-plane hosts and their pinned keys, the checks, and the most
//! recent CNI install, whose rollback follows the restart in the same run unless unticked) and
//! the confirmation by the cluster's name. The stale banner's link opens it (`?recover`): from
//! the banner, a recovery takes three clicks (the link, the preview, execute).

use grappe_views::runs::PlanView;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::plan::{ConfirmFields, PlanBox, go_to_run};
use crate::ErrorBox;
use crate::api::RoleView;
use crate::api::runs::{PlanRecovery, StartRecovery};
use crate::api::session::Me;
use crate::i18n::{Msg, t, use_lang};

#[component]
pub fn RecoverySection(cluster: String) -> impl IntoView {
    let role = use_context::<Me>().map(|m| m.role);
    (role == Some(RoleView::Admin)).then(|| {
        let plan = ServerAction::<PlanRecovery>::new();
        let start = ServerAction::<StartRecovery>::new();
        go_to_run(move || start.value().get());
        let lang = use_lang();
        let query = use_query_map();
        let open = move || query.read().get("recover").is_some();
        view! {
            <section class="card" id="recover">
                <details data-testid="recover" open=open>
                    <summary><strong>{Msg::Recover.text(lang)}</strong></summary>
                    <p class="muted small">{Msg::RecoverHelp.text(lang)}</p>
                    <ActionForm action=plan attr:class="inline-form">
                        <input type="hidden" name="cluster" value=cluster/>
                        <button type="submit" class="btn btn-primary" data-testid="plan-recovery">{Msg::PreviewRecovery.text(lang)}</button>
                    </ActionForm>
                    {move || plan.pending().get().then(|| view! { <p class="muted">{t(Msg::Loading)}</p> })}
                    {move || match plan.value().get() {
                        None => ().into_any(),
                        Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
                        Some(Ok(p)) => view! { <ConfirmRecovery plan=p start=start/> }.into_any(),
                    }}
                </details>
            </section>
        }
    })
}

#[component]
fn ConfirmRecovery(plan: PlanView, start: ServerAction<StartRecovery>) -> impl IntoView {
    let (cluster, hash, runnable) = (plan.cluster.clone(), plan.hash.clone(), plan.runnable());
    let hosts = plan.recovery.clone().map(|r| r.hosts).unwrap_or_default();
    let offer = plan.recovery.as_ref().and_then(|r| {
        r.rollback_run
            .map(|id| (id, r.rollback_title.clone().unwrap_or_default()))
    });
    view! {
        <ul class="small" data-testid="recovery-hosts">
            {hosts.into_iter().map(|h| view! {
                <li><strong>{h.node}</strong> " " <code>{h.endpoint}</code> " " <code class="muted">{h.host_key}</code></li>
            }).collect_view()}
        </ul>
        <PlanBox plan=plan/>
        <ActionForm action=start attr:class="stack-form" attr:data-testid="confirm-recovery-form">
            <input type="hidden" name="cluster" value=cluster/>
            <input type="hidden" name="plan_hash" value=hash/>
            {offer.map(|(id, title)| view! {
                <label class="tick" data-testid="recovery-rollback">
                    <input type="checkbox" name="rollback" value="true" checked/>
                    " " {t(Msg::ThenRollBack)} " run " {id} " (" {title} ")"
                </label>
            })}
            <ConfirmFields runnable=runnable/>
        </ActionForm>
        {move || start.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBox error=e/> })}
    }
}
