//! What the steps of every workflow share: the run they belong to, their output lines, the
//! run's warnings, the cancel signal, and one way to wait ([`StepCx::waiter`]) for every wait a
//! step makes (a rollout, CRDs established, an object gone, `/readyz`, an approval, evicted
//! pods): progress lines, timeout, cancel, woken by the live state.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use grappe_views::runs::StepProgress;

use super::k8s::KubeError;
use super::{RunError, Runs};
use crate::model::RunRow;

/// A run's step context: held by each workflow's executor.
pub(crate) struct StepCx {
    pub runs: Runs,
    pub run: RunRow,
    /// Turns true when the run is asked to stop.
    pub cancel: watch::Receiver<bool>,
}

/// How a step waits: how often it looks, for how long, what it says meanwhile, and what wakes
/// it earlier.
pub(crate) struct Wait {
    /// Named in the progress lines: `waiting for <what> (12 s): ...`.
    what: String,
    timeout: Option<Duration>,
    every: Duration,
    report: Report,
    wake: Option<watch::Receiver<u64>>,
}

enum Report {
    Never,
    /// `waiting for <what> (N s): <line>` every period.
    Every(Duration),
    /// `[   N s] <line>` whenever the line changes.
    Changes,
}

/// What a waiting step does after a look that found it not done yet.
pub(crate) enum Next {
    /// Look again (the wait slept its period, or was woken).
    Again,
    /// The timeout passed; the last progress line.
    TimedOut(String),
}

/// A wait under way ([`StepCx::waiter`]): the step looks, and calls [`Waiter::not_yet`] with
/// what is missing each time it is not done.
pub(crate) struct Waiter<'a> {
    cx: &'a StepCx,
    idx: i64,
    wait: Wait,
    started: Instant,
    said: String,
    next_report: Option<Instant>,
    cancel: watch::Receiver<bool>,
    /// The progress last recorded (recorded again only when it changes).
    counted: Option<StepProgress>,
    /// Looks so far: the first ones come sooner (see [`Waiter::pause`]).
    looks: u32,
}

/// The first pause of a wait; each next one doubles, up to the wait's period.
const FIRST_PAUSE: Duration = Duration::from_millis(50);

impl Wait {
    /// Looks every `every`, without a timeout, saying nothing.
    pub(crate) fn new(what: impl Into<String>, every: Duration) -> Self {
        Self {
            what: what.into(),
            timeout: None,
            every,
            report: Report::Never,
            wake: None,
        }
    }

    pub(crate) fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Says the last progress line every `period`.
    pub(crate) fn report_every(mut self, period: Duration) -> Self {
        self.report = Report::Every(period);
        self
    }

    /// Says the progress line whenever it changes (the first one too).
    pub(crate) fn report_changes(mut self) -> Self {
        self.report = Report::Changes;
        self
    }

    /// Looks again, 100 ms later (a burst makes one look), when `changes` moves: the
    /// cluster's live state, or the runs' own changes.
    pub(crate) fn woken_by(mut self, changes: Option<watch::Receiver<u64>>) -> Self {
        self.wake = changes;
        self
    }
}

impl StepCx {
    pub(crate) fn new(runs: &Runs, run: &RunRow, cancel: watch::Receiver<bool>) -> Self {
        Self {
            runs: runs.clone(),
            run: run.clone(),
            cancel,
        }
    }

    /// Appends a line to step `idx`'s output and tells the live pages.
    pub(crate) async fn say(&self, idx: i64, line: &str) -> Result<(), RunError> {
        self.runs.say(self.run.id, idx, line).await
    }

    /// Adds a warning to the run: a succeeded run with warnings is "completed with warnings".
    pub(crate) async fn warn(&self, text: &str) -> Result<(), RunError> {
        self.runs
            .inner()
            .store
            .add_run_warning(self.run.id, text)
            .await?;
        Ok(())
    }

    /// Whether the run was asked to stop.
    pub(crate) fn cancelled(&self) -> bool {
        *self.cancel.borrow()
    }

    /// Starts waiting, in step `idx`, as `wait` says.
    pub(crate) fn waiter(&self, idx: i64, wait: Wait) -> Waiter<'_> {
        let started = Instant::now();
        Waiter {
            next_report: match wait.report {
                Report::Every(period) => Some(started + period),
                _ => None,
            },
            cx: self,
            idx,
            wait,
            started,
            said: String::new(),
            cancel: self.cancel.clone(),
            counted: None,
            looks: 0,
        }
    }
}

impl Waiter<'_> {
    /// Records how far the step is, when it changed since the last time, and tells the live
    /// pages (the run page draws it as a bar; a reload reads it from the database).
    ///
    /// # Errors
    /// The store.
    pub(crate) async fn count(&mut self, progress: StepProgress) -> Result<(), RunError> {
        if self.counted.as_ref() == Some(&progress) {
            return Ok(());
        }
        let runs = &self.cx.runs;
        runs.inner()
            .store
            .set_step_progress(self.cx.run.id, self.idx, &progress)
            .await?;
        runs.bump();
        self.counted = Some(progress);
        Ok(())
    }

    /// How long the wait has lasted.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// After the look that found the step done: says its last line when the wait reports
    /// changes and it changed.
    ///
    /// # Errors
    /// The store.
    pub(crate) async fn done(&mut self, line: &str) -> Result<(), RunError> {
        if matches!(self.wait.report, Report::Changes) && line != self.said {
            let text = format!("[{:>4} s] {line}", self.started.elapsed().as_secs());
            self.cx.say(self.idx, &text).await?;
        }
        Ok(())
    }

    /// After a look that found the step not done (`line` says what is missing): says the line
    /// as the wait reports, fails if the run was cancelled ([`KubeError::Cancelled`]), tells
    /// when the timeout passed, and otherwise sleeps the wait's period or until what wakes it
    /// changes.
    ///
    /// # Errors
    /// [`KubeError::Cancelled`], the store.
    pub(crate) async fn not_yet(&mut self, line: String) -> Result<Next, RunError> {
        let elapsed = self.started.elapsed();
        if matches!(self.wait.report, Report::Changes) && line != self.said {
            let text = format!("[{:>4} s] {line}", elapsed.as_secs());
            self.cx.say(self.idx, &text).await?;
            self.said.clone_from(&line);
        }
        if let (Report::Every(period), Some(at)) = (&self.wait.report, self.next_report)
            && Instant::now() >= at
        {
            self.next_report = Some(Instant::now() + *period);
            let text = format!(
                "waiting for {} ({} s): {line}",
                self.wait.what,
                elapsed.as_secs()
            );
            self.cx.say(self.idx, &text).await?;
        }
        if self.cx.cancelled() {
            return Err(KubeError::Cancelled.into());
        }
        if self.wait.timeout.is_some_and(|t| elapsed >= t) {
            return Ok(Next::TimedOut(line));
        }
        tokio::select! {
            () = tokio::time::sleep(self.pause()) => {}
            () = changed(self.wait.wake.as_mut()) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ = self.cancel.changed() => {}
        }
        Ok(Next::Again)
    }

    /// How long to sleep before the next look: 50 ms, then twice as long each time, up to the
    /// wait's period. Most deletions and CRD establishments take a few hundred milliseconds: a
    /// fixed half-second period made each of them take at least that (32 CRDs deleted one after
    /// the other in a rollback).
    fn pause(&mut self) -> Duration {
        let pause = pause_after(self.looks, self.wait.every);
        self.looks = self.looks.saturating_add(1);
        pause
    }
}

/// The pause after `looks` looks of a wait whose period is `every` ([`Waiter::pause`]).
fn pause_after(looks: u32, every: Duration) -> Duration {
    FIRST_PAUSE.saturating_mul(1 << looks.min(16)).min(every)
}

/// Resolves when `changes` moves; never without it (or once its sender is gone).
async fn changed(changes: Option<&mut watch::Receiver<u64>>) {
    match changes {
        Some(rx) => {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_looks_again_sooner_at_first_then_at_its_period() {
        let every = Duration::from_millis(500);
        let pauses: Vec<u128> = (0..6).map(|n| pause_after(n, every).as_millis()).collect();
        assert_eq!(pauses, [50, 100, 200, 400, 500, 500]);
        assert_eq!(pause_after(u32::MAX, every), every);
        // A period shorter than the first pause is kept.
        assert_eq!(
            pause_after(0, Duration::from_millis(20)),
            Duration::from_millis(20)
        );
    }
}
