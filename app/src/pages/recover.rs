//! The recovery section of a cluster's overview (admin): a lost kube-apiserver brought back over
//! SSH, with a preview (the control-plane hosts and their pinned keys, the checks, and the most
//! recent CNI install, whose rollback follows the restart in the same run unless unticked) and
//! the confirmation by the cluster's name. The stale banner's link opens it (`?recover`): from
//! the banner, a recovery takes three clicks (the link, the preview, execute).

use grappe_views::runs::PlanView;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::plan::ConfirmPlan;
use crate::ErrorBox;
use crate::api::Role;
use crate::api::runs::PlanRecovery;
use crate::api::session::Me;
use crate::i18n::{Msg, t, use_lang};

#[component]
pub fn RecoverySection(cluster: String) -> impl IntoView {
    let role = use_context::<Me>().map(|m| m.role);
    (role == Some(Role::Admin)).then(|| {
        let plan = ServerAction::<PlanRecovery>::new();
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
                        Some(Ok(p)) => view! { <ConfirmRecovery plan=p/> }.into_any(),
                    }}
                </details>
            </section>
        }
    })
}

/// The control-plane hosts, the plan, and the offer of the rollback (ticked).
#[component]
fn ConfirmRecovery(plan: PlanView) -> impl IntoView {
    let hosts = plan.recovery().map(|r| r.hosts.clone()).unwrap_or_default();
    let offer = plan.recovery().and_then(|r| {
        r.rollback_run
            .map(|id| (id, r.rollback_title.clone().unwrap_or_default()))
    });
    view! {
        <ul class="small" data-testid="recovery-hosts">
            {hosts.into_iter().map(|h| view! {
                <li><strong>{h.node}</strong> " " <code>{h.endpoint}</code> " " <code class="muted">{h.host_key}</code></li>
            }).collect_view()}
        </ul>
        <ConfirmPlan plan=plan testid="confirm-recovery-form">
            {offer.map(|(id, title)| view! {
                <label class="tick" data-testid="recovery-rollback">
                    <input type="checkbox" name="offer" value="true" checked/>
                    " " {t(Msg::ThenRollBack)} " run " {id} " (" {title} ")"
                </label>
            })}
        </ConfirmPlan>
    }
}
