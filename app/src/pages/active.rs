//! A cluster's run in progress where runs are started and watched from (overview, node, CNI
//! and IPAM pages): its workflow, who started it, its status, the bars of its own page (steps
//! done, the step it is at with that step's count and what holds it) and a link to it. Live
//! through the page's stream (its `runs` events); nothing when the cluster has no such run.

use grappe_views::runs::{ActiveRunView, StepStatus};
use leptos::prelude::*;

use crate::api::runs::active_run;
use crate::i18n::{Msg, Ui, use_lang};
use crate::live::runs_tick;
use crate::progress::{ProgressBar, StepBar};
use crate::when::When;

/// The run in progress of `cluster`, if any.
#[component]
pub fn ActiveRunCard(#[prop(into)] cluster: Signal<String>) -> impl IntoView {
    let tick = runs_tick();
    let active = Resource::new(move || (cluster.get(), tick.get()), |(c, _)| active_run(c));
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                active.await.ok().flatten().map(|a| view! { <ActiveRun a=a/> })
            })}
        </Transition>
    }
}

#[component]
fn ActiveRun(a: ActiveRunView) -> impl IntoView {
    let lang = use_lang();
    let s = a.summary;
    let href = format!("/runs/{}", s.id);
    let step = a.step.map(|st| {
        let running = st.status == StepStatus::Running;
        view! {
            <p class="small" data-testid="active-step">
                {Ui::AtStep.text(lang)} " " <strong>{st.name.clone()}</strong> " "
                <span class=format!("status status-{}", st.status)>{st.status.as_str()}</span>
            </p>
            {st.progress.map(|p| view! {
                <StepBar progress=p started=st.started_at.clone() running=running failed=false/>
            })}
        }
    });
    view! {
        <section class="card active-run" data-testid="active-run" data-run=s.id data-status=s.status.as_str()>
            <p>
                <strong>{Ui::RunInProgress.text(lang)}</strong> " "
                <a href=href data-testid="active-run-link">{Msg::Run.text(lang)} " " {s.id}</a>
                " · " {s.workflow.as_str()} " · " {s.title.clone()} " · "
                <span class=format!("status status-{}", s.status)>{s.shown_status().to_owned()}</span>
                " · " {s.actor.clone()} " · " <When at=s.started_at.clone()/>
            </p>
            <ProgressBar done=a.steps_done total=a.steps_total label=Ui::StepsDone.text(lang) testid="active-run-steps"/>
            {step}
        </section>
    }
}
