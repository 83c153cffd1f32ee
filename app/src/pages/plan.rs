//! What every workflow's pages share: a plan as it is shown (its checks, objects, a drain's
//! pods) with the one form that starts any confirmed plan, the confirmation fields, and the
//! move to the run page once a start answered. A leaf: it imports no page, and each
//! workflow's page imports it.

use grappe_views::runs::{
    DrainPreviewView, PlanDetail, PlanView, Planned, PlannedObjectView, Workflow,
};
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use super::or_dash;
use crate::ErrorBox;
use crate::api::runs::{PlanObjectYaml, StartRun};
use crate::i18n::{Msg, t, use_lang};

/// Opens the run page once a start answered with a run id.
pub fn go_to_run(value: impl Fn() -> Option<Result<i64, crate::error::AppError>> + 'static) {
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(id)) = value() {
            navigate(&format!("/runs/{id}"), Default::default());
        }
    });
}

/// What a plan form answered, below it: "loading" while a plan is made, its error, or the plan
/// with its confirmation. The start's action lives here rather than in the confirmation: a plan
/// made again replaces the confirmation, and a start already sent must still lead to its run
/// (owned by the replaced confirmation, its answer was dropped: the run started and the page
/// stayed). While a new plan is made the old one is not shown, so it cannot be started.
#[component]
pub fn PlanAnswer(
    /// The plan action's answer.
    #[prop(into)]
    answer: Signal<Option<Result<PlanView, crate::error::AppError>>>,
    /// Whether a plan is being made.
    #[prop(into)]
    planning: Signal<bool>,
    /// The confirmation form's test id.
    testid: &'static str,
) -> impl IntoView {
    let start = ServerAction::<StartRun>::new();
    go_to_run(move || start.value().get());
    // A start's refusal belongs to the plan it was sent with.
    Effect::new(move |_| {
        if planning.get() {
            start.value().set(None);
        }
    });
    move || {
        if planning.get() {
            return view! { <p class="muted">{t(Msg::Loading)}</p> }.into_any();
        }
        match answer.get() {
            None => ().into_any(),
            Some(Err(e)) => view! { <ErrorBox error=e/> }.into_any(),
            Some(Ok(p)) => view! { <ConfirmPlan plan=p testid=testid start=start/> }.into_any(),
        }
    }
}

/// A plan and the form that starts it, for every workflow: the plan shown, then its workflow,
/// cluster, request and hash sent back with the words typed and the password; the run page
/// once it started. `children`: what a workflow's start adds (the recovery's offer).
#[component]
pub fn ConfirmPlan(
    plan: PlanView,
    /// The form's test id.
    #[prop(default = "confirm-form")]
    testid: &'static str,
    /// The start's action when it must outlive this form ([`PlanAnswer`]); else its own.
    #[prop(optional)]
    start: Option<ServerAction<StartRun>>,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    let start = start.unwrap_or_else(|| {
        let own = ServerAction::<StartRun>::new();
        go_to_run(move || own.value().get());
        own
    });
    let label = match &plan.detail {
        PlanDetail::Drain(_) => Msg::TypeNodeNames,
        PlanDetail::Reset(_) => Msg::TypeResetWord,
        PlanDetail::Objects | PlanDetail::Recovery(_) => Msg::TypeClusterName,
    };
    let (workflow, cluster, request, hash, runnable) = (
        plan.workflow.as_str(),
        plan.cluster.clone(),
        plan.request.clone(),
        plan.hash.clone(),
        plan.runnable(),
    );
    view! {
        <PlanBox plan=plan/>
        <ActionForm action=start attr:class="stack-form" attr:data-testid=testid>
            <input type="hidden" name="workflow" value=workflow/>
            <input type="hidden" name="cluster" value=cluster/>
            <input type="hidden" name="request" value=request/>
            <input type="hidden" name="plan_hash" value=hash/>
            {children.map(|c| c())}
            <ConfirmFields runnable=runnable label=label/>
        </ActionForm>
        {move || start.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBox error=e/> })}
    }
}

/// The typed cluster name, the password, and the button of a confirmation form.
#[component]
pub fn ConfirmFields(
    runnable: bool,
    /// What to type (the cluster's name unless said otherwise).
    #[prop(default = Msg::TypeClusterName)]
    label: Msg,
) -> impl IntoView {
    if !runnable {
        return view! { <p class="alert alert-error">{t(Msg::NotRunnable)}</p> }.into_any();
    }
    view! {
        <label>{t(label)} <input type="text" name="confirm" required autocomplete="off" data-testid="confirm-cluster"/></label>
        <label>{t(Msg::PasswordAgain)} <input type="password" name="password" autocomplete="current-password" data-testid="confirm-password"/></label>
        <button type="submit" class="btn btn-danger" data-testid="execute">{t(Msg::Execute)}</button>
    }
    .into_any()
}

/// The password, asked again when the login is not recent, in a form that changes who may do
/// what (a user, a host key, an approval).
#[component]
pub fn ReauthField() -> impl IntoView {
    view! {
        <input type="password" name="password" autocomplete="current-password" class="input-small"
            placeholder=t(Msg::Password) title=t(Msg::PasswordAgain) aria-label=t(Msg::PasswordAgain)
            data-testid="reauth-password"/>
    }
}

/// A plan: what it is for, the manifest, the checks, and each object's action.
#[component]
pub fn PlanBox(plan: PlanView) -> impl IntoView {
    let lang = use_lang();
    let counts: Vec<String> = match plan.drain() {
        // A drain counts pods by verdict.
        Some(d) => {
            use grappe_views::runs::Verdict;
            [
                Verdict::Evict,
                Verdict::Delete,
                Verdict::Skip,
                Verdict::Blocked,
            ]
            .into_iter()
            .filter(|v| d.count(*v) > 0)
            .map(|v| format!("{} {}", d.count(v), v.as_str()))
            .collect()
        }
        None => Planned::ALL
            .iter()
            .copied()
            .filter(|a| plan.count(*a) > 0)
            .map(|a| format!("{} {}", plan.count(a), a.as_str()))
            .collect(),
    };
    let manifest_plan = plan.manifest_sha256.is_some()
        && matches!(
            plan.workflow,
            Workflow::CniInstall | Workflow::CniMigrate | Workflow::CniRemove
        );
    view! {
        <div class="plan" data-testid="plan" data-hash=plan.hash.clone()>
            <h3>{Msg::Plan.text(lang)} ": " {plan.title.clone()}</h3>
            <p class="muted" data-testid="plan-counts">{counts.join(" · ")}</p>
            {plan.manifest_source.clone().map(|src| view! {
                <p>
                    {Msg::Manifest.text(lang)} ": " <span class="mono">{src}</span> " "
                    <span class="mono small">"sha256:" {plan.manifest_sha256.clone().unwrap_or_default()}</span> " "
                    {if plan.verified {
                        view! { <span class="badge badge-ok">{Msg::Verified.text(lang)}</span> }.into_any()
                    } else {
                        view! { <span class="badge badge-warn">{Msg::Unverified.text(lang)}</span> }.into_any()
                    }}
                </p>
            })}
            {(!plan.options.is_empty()).then(|| view! {
                <p class="mono small">{plan.options.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("  ")}</p>
            })}
            <h4>{Msg::Checks.text(lang)}</h4>
            <ul class="checks" data-testid="plan-checks">
                {plan.checks.iter().map(|c| view! {
                    <li class=format!("check check-{}", c.level) data-check=c.id.clone() data-level=c.level.as_str()>
                        <strong>{c.level.as_str()}</strong> " " {c.message.clone()}
                    </li>
                }).collect_view()}
            </ul>
            {plan.drain().cloned().map(|d| view! { <DrainPreview preview=d/> })}
            <h4 class:hidden=plan.drain().is_some()>{Msg::Objects.text(lang)}</h4>
            <table tabindex="0" class="table dense" data-testid="plan-objects" class:hidden=plan.drain().is_some()>
                <thead><tr><th>"Kind"</th><th>{Msg::Name.text(lang)}</th><th>{Msg::Action.text(lang)}</th><th>{Msg::Changes.text(lang)}</th></tr></thead>
                <tbody>
                    {plan.objects.iter().map(|o| {
                        let name = match &o.namespace { Some(ns) => format!("{ns}/{}", o.name), None => o.name.clone() };
                        // A manifest's object can be read whole (an unverified one above all).
                        // (Not what a migration leaves to the operator: no manifest has it.)
                        let own = !matches!(o.action, Planned::Move | Planned::Handover);
                        let yaml = (manifest_plan && own).then(|| view! { <ObjectYaml request=plan.request.clone() object=o.clone()/> });
                        view! {
                            <tr data-action=o.action.as_str()>
                                <td>{o.kind.clone()}</td>
                                <td class="mono">{name} " " {yaml}</td>
                                <td><span class=format!("action action-{}", o.action.as_str())>{o.action.as_str()}</span></td>
                                <td>
                                    {(o.changes_total > 0).then(|| view! {
                                        <details>
                                            <summary>{o.changes_total} " " {Msg::Changes.text(lang).to_lowercase()}</summary>
                                            <ul class="mono small">
                                                {o.changes.iter().map(|c| view! {
                                                    <li>{c.path.clone()} ": " {c.before.clone().unwrap_or_else(|| "∅".into())} " → " {c.after.clone().unwrap_or_else(|| "∅".into())}</li>
                                                }).collect_view()}
                                            </ul>
                                        </details>
                                    })}
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
            <p class="mono small muted">{Msg::PlanHash.text(lang)} ": " {plan.hash.clone()}</p>
        </div>
    }
    .into_any()
}

/// A manifest object's YAML as it would be applied, read on demand.
#[component]
fn ObjectYaml(request: String, object: PlannedObjectView) -> impl IntoView {
    let load = ServerAction::<PlanObjectYaml>::new();
    view! {
        <ActionForm action=load attr:class="inline-form">
            <input type="hidden" name="request" value=request/>
            <input type="hidden" name="api_version" value=object.api_version.clone()/>
            <input type="hidden" name="kind" value=object.kind.clone()/>
            <input type="hidden" name="namespace" value=object.namespace.clone().unwrap_or_default()/>
            <input type="hidden" name="name" value=object.name.clone()/>
            <button type="submit" class="btn btn-small" data-testid="object-yaml">"YAML"</button>
        </ActionForm>
        {move || load.value().get().map(|r| match r {
            Ok(yaml) => view! { <pre class="output small" data-testid="object-yaml-text">{yaml}</pre> }.into_any(),
            Err(e) => view! { <ErrorBox error=e/> }.into_any(),
        })}
    }
}

/// Every pod of a drain with its verdict, and the budgets at zero.
#[component]
pub fn DrainPreview(preview: DrainPreviewView) -> impl IntoView {
    let lang = use_lang();
    view! {
        {(!preview.pdbs_at_zero.is_empty()).then(|| view! {
            <div class="alert alert-warn" data-testid="pdbs-at-zero">
                <strong>{Msg::BudgetsAtZero.text(lang)}</strong>
                <p class="small">{Msg::BudgetsAtZeroHelp.text(lang)}</p>
                <table tabindex="0" class="table dense">
                    <thead><tr><th>"PodDisruptionBudget"</th><th>{Msg::HealthyNeeded.text(lang)}</th><th>{Msg::CoveredPods.text(lang)}</th></tr></thead>
                    <tbody>
                        {preview.pdbs_at_zero.iter().map(|p| view! {
                            <tr data-pdb=format!("{}/{}", p.namespace, p.name)>
                                <td class="mono">{p.namespace.clone()} "/" {p.name.clone()}</td>
                                <td>{p.current_healthy} " / " {p.desired_healthy}</td>
                                <td class="mono small">{p.pods.join(", ")}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        })}
        {preview.nodes.iter().map(|n| view! {
            <h4>{n.node.clone()} " " <span class="muted small">{n.status.clone()}</span></h4>
            <table tabindex="0" class="table dense" data-testid="drain-preview" data-node=n.node.clone()>
                <thead><tr>
                    <th>{Msg::Name.text(lang)}</th><th>{Msg::Owner.text(lang)}</th><th>{Msg::Status.text(lang)}</th>
                    <th>{Msg::Verdict.text(lang)}</th><th>{Msg::Reason.text(lang)}</th>
                </tr></thead>
                <tbody>
                    {n.pods.iter().map(|p| view! {
                        <tr data-pod=p.key() data-verdict=p.verdict.as_str()>
                            <td class="mono">{p.key()}</td>
                            <td class="mono small">{or_dash(Some(p.owner.clone()))}</td>
                            <td>{p.phase.clone()}</td>
                            <td><span class=format!("verdict verdict-{}", p.verdict.as_str())>{p.verdict.as_str()}</span></td>
                            <td class="small">
                                {p.reason.clone()}
                                {(!p.blocking_pdbs.is_empty()).then(|| view! {
                                    <span class="badge badge-warn">"PDB " {p.blocking_pdbs.join(", ")}</span>
                                })}
                            </td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        }).collect_view()}
    }
}
