//! A cluster's run in progress as the pages it is started from show it.

use serde::{Deserialize, Serialize};

use super::{RunSummaryView, StepStatus, StepView};

/// A cluster's run in progress (running or interrupted) as the pages a run is started from
/// show it: its summary, its steps done of all, and the step it is at with that step's bar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveRunView {
    pub summary: RunSummaryView,
    pub steps_done: u64,
    pub steps_total: u64,
    pub step: Option<StepView>,
}

impl ActiveRunView {
    /// From a run's steps in order: the step it is at is the running one, else the first not
    /// done (an interrupted run's).
    #[must_use]
    pub fn new(summary: RunSummaryView, steps: Vec<StepView>) -> Self {
        let steps_total = steps.len() as u64;
        let steps_done = steps
            .iter()
            .filter(|s| s.status == StepStatus::Done)
            .count() as u64;
        let running = steps.iter().position(|s| s.status == StepStatus::Running);
        let at = running.or_else(|| steps.iter().position(|s| s.status != StepStatus::Done));
        Self {
            summary,
            steps_done,
            steps_total,
            step: at.and_then(|i| steps.into_iter().nth(i)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runs::Workflow;

    fn step(name: &str, status: StepStatus) -> StepView {
        StepView {
            name: name.into(),
            status,
            started_at: None,
            finished_at: None,
            output: String::new(),
            progress: None,
        }
    }

    fn summary() -> RunSummaryView {
        RunSummaryView::started(
            8,
            "lab",
            Workflow::NodeDrain,
            "drain rigel",
            "admin",
            "2026-12-06T07:00:00Z",
        )
    }

    #[test]
    fn an_active_run_is_at_its_running_step_else_at_its_first_not_done() {
        use StepStatus::{Done, Interrupted, Pending, Running};
        let running = ActiveRunView::new(
            summary(),
            vec![
                step("cordon", Done),
                step("drain", Running),
                step("uncordon", Pending),
            ],
        );
        assert_eq!((running.steps_done, running.steps_total), (1, 3));
        assert_eq!(running.step.map(|s| s.name), Some("drain".into()));
        let interrupted = ActiveRunView::new(
            summary(),
            vec![
                step("a", Done),
                step("b", Done),
                step("c", Interrupted),
                step("d", Pending),
            ],
        );
        assert_eq!(interrupted.step.map(|s| s.name), Some("c".into()));
        let all_done = ActiveRunView::new(summary(), vec![step("a", Done)]);
        assert_eq!((all_done.steps_done, all_done.step), (1, None));
    }
}
