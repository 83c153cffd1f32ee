//! Node actions on the node page (cordon, uncordon, drain with its options, preview and
//! confirmation), the drain preview that plans and runs show, and the uncordon buttons on a
//! finished drain run.

use leptos::prelude::*;

use super::plan::PlanAnswer;
use crate::ErrorBox;
use crate::api::Role;
use crate::api::nodes::{CordonNode, PlanNodeDrain};
use crate::api::session::Me;
use crate::i18n::{Msg, t, use_lang};

/// The actions card of a node page: cordon or uncordon, and a link to the drain section.
#[component]
pub fn NodeActions(cluster: String, node: String, unschedulable: bool) -> impl IntoView {
    let role = use_context::<Me>().map(|m| m.role);
    if role < Some(Role::Operator) {
        return view! { <p class="muted small">{t(Msg::OperatorOnly)}</p> }.into_any();
    }
    view! {
        <p class="muted small">{t(Msg::CordonHelp)}</p>
        <CordonButton cluster=cluster node=node cordon=!unschedulable/>
        <p><a href="#drain">{t(Msg::Drain)} " ↓"</a></p>
    }
    .into_any()
}

/// The drain section of a node page (operator): options, preview, confirmation.
#[component]
pub fn DrainSection(cluster: String, node: String) -> impl IntoView {
    let role = use_context::<Me>().map(|m| m.role);
    (role >= Some(Role::Operator)).then(|| {
        let is_admin = role == Some(Role::Admin);
        view! {
            <section class="card" id="drain">
                <DrainForm cluster=cluster node=node is_admin=is_admin/>
            </section>
        }
    })
}

/// One cordon or uncordon button with its result.
#[component]
pub fn CordonButton(cluster: String, node: String, cordon: bool) -> impl IntoView {
    let action = ServerAction::<CordonNode>::new();
    let (what, label) = if cordon {
        ("cordon", Msg::Cordon)
    } else {
        ("uncordon", Msg::Uncordon)
    };
    view! {
        <ActionForm action=action attr:class="inline-form">
            <input type="hidden" name="cluster" value=cluster/>
            <input type="hidden" name="node" value=node.clone()/>
            <input type="hidden" name="what" value=what/>
            <button type="submit" class="btn" data-testid=format!("{what}-{node}")>{t(label)}" "{node.clone()}</button>
        </ActionForm>
        {move || action.value().get().map(|r| match r {
            Ok(true) => view! { <span class="muted small" data-testid="cordon-result">{t(Msg::NodeChanged)}</span> }.into_any(),
            Ok(false) => view! { <span class="muted small" data-testid="cordon-result">{t(Msg::NodeUnchanged)}</span> }.into_any(),
            Err(e) => view! { <ErrorBox error=e/> }.into_any(),
        })}
    }
}

#[component]
fn DrainForm(cluster: String, node: String, is_admin: bool) -> impl IntoView {
    let plan = ServerAction::<PlanNodeDrain>::new();
    let lang = use_lang();
    view! {
        <details class="drain" data-testid="drain">
            <summary><strong>{Msg::Drain.text(lang)}</strong></summary>
            <ActionForm action=plan attr:class="stack-form" attr:data-testid="drain-form">
                <input type="hidden" name="cluster" value=cluster/>
                <label>{Msg::DrainNodes.text(lang)} <input type="text" name="nodes" value=node required autocomplete="off" data-testid="drain-nodes"/></label>
                <label class="tick"><input type="checkbox" name="delete_emptydir_data" checked/> {Msg::DeleteEmptyDir.text(lang)}</label>
                <label class="tick"><input type="checkbox" name="ignore_daemonsets" checked/> {Msg::IgnoreDaemonSets.text(lang)}</label>
                <label class="tick"><input type="checkbox" name="force" checked data-testid="drain-force"/> {Msg::ForceUnmanaged.text(lang)}</label>
                <label>{Msg::GracePeriod.text(lang)} <input type="number" name="grace_period" min="0" placeholder="-1"/></label>
                <label>{Msg::DrainTimeout.text(lang)} <input type="number" name="timeout" min="1" max="86400" value="600" data-testid="drain-timeout"/></label>
                <label>{Msg::PodSelector.text(lang)} <input type="text" name="pod_selector" placeholder="app=web" autocomplete="off"/></label>
                <label>{Msg::SkipWait.text(lang)} <input type="number" name="skip_wait" min="0" value="0"/></label>
                <label>{Msg::Concurrency.text(lang)} <input type="number" name="concurrency" min="1" max="256" value="32"/></label>
                {is_admin.then(|| view! {
                    <label class="tick"><input type="checkbox" name="disable_eviction"/> {Msg::DisableEviction.text(lang)}</label>
                    <p class="alert alert-warn small">{Msg::DisableEvictionWarn.text(lang)}</p>
                })}
                <button type="submit" class="btn btn-primary" data-testid="plan-drain">{Msg::PreviewDrain.text(lang)}</button>
            </ActionForm>
            <PlanAnswer answer=plan.value() planning=plan.pending() testid="confirm-drain-form"/>
        </details>
    }
}

/// Uncordon buttons for the nodes of a finished drain run.
#[component]
pub fn UncordonAfterDrain(cluster: String, nodes: Vec<String>) -> impl IntoView {
    let role = use_context::<Me>().map(|m| m.role);
    (role >= Some(Role::Operator)).then(|| {
        view! {
            <section class="card" data-testid="uncordon-after-drain">
                <p class="muted">{t(Msg::UncordonAfter)}</p>
                {nodes.into_iter().map(|n| view! {
                    <CordonButton cluster=cluster.clone() node=n cordon=false/>
                }).collect_view()}
            </section>
        }
    })
}
