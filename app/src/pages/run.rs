//! A workflow run's page: its summary, steps with their output, the objects it touched, the
//! plan and the confirmation it ran with; cancel (running), resume or abandon (interrupted),
//! and a rollback (finished). Live: it reloads whenever a run changes.

use grappe_views::runs::{RunStatus, RunView, StepStatus, Workflow};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::overview::LiveBadge;
use super::plan::{PlanAnswer, PlanBox};
use crate::api::runs::{ControlRun, PlanRunRollback, get_run};
use crate::i18n::{Msg, Ui, t, use_lang};
use crate::live::use_live_runs;
use crate::progress::{ProgressBar, StepBar};
use crate::when::{When, duration, parse};
use crate::{ErrorBox, PageHeader};

#[component]
pub fn RunPage() -> impl IntoView {
    let params = use_params_map();
    let id = Signal::derive(move || {
        params
            .read()
            .get("id")
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0)
    });
    let (tick, live) = use_live_runs();
    let control = ServerAction::<ControlRun>::new();
    // Held by the page, not by what a reload of the run redraws: a live change (another run's
    // step) must not wipe a rollback plan being read.
    let rollback = ServerAction::<PlanRunRollback>::new();
    Effect::new(move |_| {
        id.track();
        rollback.value().set(None);
    });
    let run = Resource::new(
        move || (id.get(), tick.get(), control.version().get()),
        |(id, _, _)| get_run(id),
    );
    view! {
        // The same component shows the next run after a start (client-side navigation).
        {move || view! { <PageHeader title=format!("{} {}", t(Msg::Run), id.get())/> }}
        <LiveBadge status=live/>
        {move || control.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBox error=e/> })}
        <Transition fallback=|| view! { <p class="muted">{t(Msg::Loading)}</p> }>
            {move || Suspend::new(async move {
                match run.await {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(r) => view! { <Run r=r control=control rollback_plan=rollback/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Run(
    r: RunView,
    control: ServerAction<ControlRun>,
    rollback_plan: ServerAction<PlanRunRollback>,
) -> impl IntoView {
    let lang = use_lang();
    let may = r.may;
    let s = r.summary.clone();
    let drain = r
        .plan
        .drain()
        .map(|d| d.nodes.iter().map(|n| n.node.clone()).collect::<Vec<_>>());
    let id = s.id;
    let button = move |what: &'static str, label: Msg| {
        // A resume goes on changing the cluster: the workflow may ask the password again.
        let password = (what == "resume" && may.resume_password).then(|| {
            view! {
                <label class="inline-label">{Msg::Password.text(lang)} " "
                    <input type="password" name="password" required autocomplete="current-password"
                        data-testid="resume-password"/>
                </label> " "
            }
        });
        view! {
            <ActionForm action=control attr:class="inline-form">
                <input type="hidden" name="run" value=id/>
                <input type="hidden" name="what" value=what/>
                {password}
                <button type="submit" class="btn" data-testid=format!("run-{what}")>{label.text(lang)}</button>
            </ActionForm>
        }
    };
    // What the engine's policy lets this reader do (operators control drains).
    let controls = view! {
        {may.cancel.then(|| button("cancel", Msg::CancelRun))}
        {(may.resume || may.abandon).then(|| view! { <p class="alert alert-warn">{Msg::InterruptedHelp.text(lang)}</p> })}
        {may.resume.then(|| button("resume", Msg::ResumeRun))} " "
        {may.abandon.then(|| button("abandon", Msg::AbandonRun))}
    };
    let leftovers = matches!(s.workflow, Workflow::CniRemove | Workflow::CniRollback)
        .then(|| view! { <p class="muted">{Msg::NodeLeftovers.text(lang)}</p> });
    let reset_node = r.plan.reset().map(|p| p.node.clone());
    let cluster_link = match (drain.as_deref(), &reset_node) {
        (_, Some(node)) | (Some([node]), _) => format!("/c/{}/nodes/{node}", s.cluster),
        (Some(_), None) => format!("/c/{}/nodes", s.cluster),
        (None, None) if r.plan.recovery().is_some() => format!("/c/{}/overview", s.cluster),
        (None, None) => format!("/c/{}/cni", s.cluster),
    };
    // Two-person rule: another admin approves a reset waiting at its approval step.
    let approval = may.awaiting_approval.then(|| {
        if may.approve {
            view! { <ApproveButton run=id/> }.into_any()
        } else {
            view! { <p class="alert alert-warn" data-testid="awaiting-approval">{Msg::AwaitingApproval.text(lang)}</p> }.into_any()
        }
    });
    // A recovery that brought the API server back offers the rollback of the CNI install.
    let rollback = r
        .plan
        .recovery()
        .filter(|p| s.status == RunStatus::Succeeded && !p.rollback_included)
        .and_then(|p| p.rollback_run.map(|id| (id, p.rollback_title.clone().unwrap_or_default())))
        .map(|(id, title)| view! {
            <p class="alert alert-warn" data-testid="offer-rollback">
                <a class="btn btn-danger" href=format!("/runs/{id}#rollback") data-testid="go-rollback">
                    {Msg::RollBackInstall.text(lang)} " (run " {id} ": " {title} ")"
                </a>
            </p>
        });
    let warnings = (!s.warnings.is_empty()).then(|| view! {
        <div class="alert alert-warn" data-testid="run-warnings">
            <strong>{Msg::Warnings.text(lang)}</strong>
            <ul class="small">{s.warnings.iter().map(|w| view! { <li>{w.clone()}</li> }).collect_view()}</ul>
        </div>
    });
    let finished = s.status.finished();
    let is_drain = drain.is_some();
    let uncordon = drain.clone().filter(|_| finished).map(|nodes| {
        view! { <super::drain::UncordonAfterDrain cluster=s.cluster.clone() nodes=nodes/> }
    });
    view! {
        <section class="card" data-testid="run-summary" data-run=s.id data-status=s.status.as_str()>
            <dl class="facts">
                <dt>{Msg::Workflow.text(lang)}</dt><dd>{s.workflow.as_str()} " · " {s.title.clone()}</dd>
                <dt>{Msg::Cluster.text(lang)}</dt><dd><a href=cluster_link>{s.cluster.clone()}</a></dd>
                <dt>{Msg::Actor.text(lang)}</dt><dd>{s.actor.clone()}</dd>
                <dt>{Msg::Status.text(lang)}</dt><dd><span class=format!("status status-{}", s.status) data-testid="run-status" data-shown=s.shown_status().to_owned()>{s.shown_status().to_owned()}</span></dd>
                <dt>{Msg::Started.text(lang)}</dt><dd><When at=s.started_at.clone()/></dd>
                <dt>{Msg::Duration.text(lang)}</dt><dd>{s.duration_seconds.map(|d| duration(d as f64, lang))}</dd>
                <dt>{Msg::Confirmation.text(lang)}</dt><dd><ConfirmationFields raw=r.confirmation.clone()/></dd>
                {r.digest.clone().map(|d| view! { <dt>{Msg::Sealed.text(lang)}</dt><dd class="mono small">{d}</dd> })}
            </dl>
            {s.error.clone().map(|e| {
                // In the reader's language when the engine gave the failure a code.
                let shown = match &s.error_code {
                    Some(code) => crate::i18n::coded(code, &s.error_params, &e, lang),
                    None => e,
                };
                view! { <p class="alert alert-error" data-testid="run-error">{shown}</p> }
            })}
            {warnings}
            {rollback}
            {approval}
            {controls}
            {leftovers}
        </section>
        {uncordon}
        <section class="card">
            <h2>{Msg::Steps.text(lang)}</h2>
            <ProgressBar
                done=r.steps.iter().filter(|st| st.status == StepStatus::Done).count() as u64
                total=r.steps.len() as u64
                label=Ui::StepsDone.text(lang)
                failed=s.status == RunStatus::Failed
                testid="run-progress"
            />
            <ol class="steps" data-testid="run-steps">
                {r.steps.iter().map(|st| view! {
                    <li class=format!("step step-{}", st.status) data-step=st.name.clone() data-status=st.status.as_str()>
                        <strong>{st.name.clone()}</strong> " " <span class=format!("status status-{}", st.status)>{st.status.as_str()}</span>
                        " " <span class="muted small"><StepTimes started=st.started_at.clone() finished=st.finished_at.clone()/></span>
                        {st.progress.clone().map(|p| view! {
                            <StepBar
                                progress=p
                                started=st.started_at.clone()
                                running=st.status == StepStatus::Running
                                failed=st.status == StepStatus::Failed
                            />
                        })}
                        {(!st.output.is_empty()).then(|| view! { <pre class="output">{st.output.clone()}</pre> })}
                    </li>
                }).collect_view()}
            </ol>
        </section>
        <section class="card">
            <h2>{Msg::Objects.text(lang)}</h2>
            <table tabindex="0" class="table dense" data-testid="run-objects">
                <thead><tr><th>"Kind"</th><th>{Msg::Name.text(lang)}</th><th>{Msg::Plan.text(lang)}</th><th class:hidden=is_drain>{Msg::Existed.text(lang)}</th><th>{Msg::Done.text(lang)}</th></tr></thead>
                <tbody>
                    {r.objects.iter().map(|o| view! {
                        <tr>
                            <td>{o.kind.clone()}</td>
                            <td class="mono">{o.namespace.clone().map(|n| format!("{n}/")).unwrap_or_default()}{o.name.clone()}</td>
                            <td>{o.planned.as_str()}</td>
                            <td class:hidden=is_drain>{o.existed.map(|e| if e { "yes" } else { "no" })}</td>
                            <td>{o.done.clone()}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
        {may.roll_back.then(|| view! { <Rollback run=id plan=rollback_plan/> })}
        <section class="card">
            <details>
                <summary>{Msg::Plan.text(lang)}</summary>
                <PlanBox plan=r.plan.clone()/>
            </details>
        </section>
    }
}

#[component]
fn Rollback(run: i64, plan: ServerAction<PlanRunRollback>) -> impl IntoView {
    view! {
        <section class="card" id="rollback" data-testid="rollback">
            <ActionForm action=plan attr:class="inline-form">
                <input type="hidden" name="run" value=run/>
                <button type="submit" class="btn" data-testid="plan-rollback">{t(Msg::RollBack)}</button>
            </ActionForm>
            <PlanAnswer answer=plan.value() planning=plan.pending() testid="confirm-rollback-form"/>
        </section>
    }
}

/// A second admin's approval of a run waiting for it.
#[component]
fn ApproveButton(run: i64) -> impl IntoView {
    let approve = ServerAction::<crate::api::runs::ApproveRun>::new();
    view! {
        <div class="alert alert-warn">
            <p>{t(Msg::AwaitingApproval)}</p>
            <ActionForm action=approve attr:class="inline-form">
                <input type="hidden" name="run" value=run/>
                <super::plan::ReauthField/>
                <button type="submit" class="btn btn-danger" data-testid="approve-run">{t(Msg::Approve)}</button>
            </ActionForm>
            {move || approve.value().get().and_then(|r| r.err()).map(|e| view! { <crate::ErrorBox error=e/> })}
        </div>
    }
}

/// When a step started and how long it took (or "running").
#[component]
fn StepTimes(started: Option<String>, finished: Option<String>) -> impl IntoView {
    let lang = use_lang();
    let took = match (
        started.as_deref().and_then(parse),
        finished.as_deref().and_then(parse),
    ) {
        (Some(a), Some(b)) => {
            let d = (b - a).as_seconds_f64();
            Some(format!(" · {} {}", Ui::Took.text(lang), duration(d, lang)))
        }
        (Some(_), None) => Some(format!(" · {}", Ui::Running.text(lang))),
        _ => None,
    };
    started.map(|at| view! { <When at=at/> {took} }.into_any())
}

/// The confirmation a run started with, as labelled fields; the recorded form behind a toggle.
#[component]
fn ConfirmationFields(raw: String) -> impl IntoView {
    let lang = use_lang();
    let fields: Option<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_str(&raw).ok();
    let yes_no = |v: &serde_json::Value| match v {
        serde_json::Value::Bool(true) => Ui::Yes.text(lang).to_owned(),
        serde_json::Value::Bool(false) => Ui::No.text(lang).to_owned(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let shown = fields.map(|f| {
        f.iter()
            .map(|(k, v)| {
                let label = match k.as_str() {
                    "typed" => Ui::TypedName.text(lang).to_owned(),
                    "reauthenticated" => Ui::PasswordAsked.text(lang).to_owned(),
                    other => other.to_owned(),
                };
                view! { <span class="field" data-field=k.clone()>{label} ": " <strong>{yes_no(v)}</strong></span> " " }
            })
            .collect_view()
    });
    view! {
        <span data-testid="run-confirmation">{shown}</span>
        <details class="raw">
            <summary class="small">{Ui::Raw.text(lang)}</summary>
            <pre class="mono small">{raw}</pre>
        </details>
    }
    .into_any()
}
