//! Progress as a bar people read at a glance: an SVG drawn on the server (no script, no inline
//! style, which the Content-Security-Policy forbids), with the counts in words beside it and the
//! values for screen readers (`role="progressbar"`).

use grappe_views::runs::{ProgressUnit, StepProgress};
use leptos::prelude::*;

use crate::i18n::{Ui, use_lang};
use crate::when::{duration, parse};

/// The filled share of a bar, 0..=100, for `done` of `total` (an empty total is complete).
pub fn percent(done: u64, total: u64) -> f64 {
    if total == 0 {
        return 100.0;
    }
    #[allow(clippy::cast_precision_loss)]
    let share = done.min(total) as f64 / total as f64;
    (share * 1000.0).round() / 10.0
}

/// A progress bar: `done` of `total`, `label` naming what is counted ("steps done"), `failed`
/// drawing it in the failure's colour (the words say it too).
#[component]
pub fn ProgressBar(
    done: u64,
    total: u64,
    #[prop(into)] label: String,
    #[prop(optional)] failed: bool,
    #[prop(optional, into)] testid: Option<String>,
) -> impl IntoView {
    let pct = percent(done, total);
    let words = format!("{done} / {total} {label}");
    let class = if failed {
        "bar-fill bar-failed"
    } else if done >= total {
        "bar-fill bar-done"
    } else {
        "bar-fill"
    };
    view! {
        <div class="progress" data-testid=testid data-done=done data-total=total>
            <svg
                class="bar"
                viewBox="0 0 100 6"
                preserveAspectRatio="none"
                role="progressbar"
                aria-valuemin="0"
                aria-valuemax=total
                aria-valuenow=done
                aria-label=words.clone()
            >
                <rect class="bar-track" width="100" height="6" rx="1"/>
                <rect class=class width=pct.to_string() height="6" rx="1"/>
            </svg>
            <span class="small">{words}</span>
        </div>
    }
    .into_any()
}

/// The time left at the pace so far: `done` of `total` in `elapsed` seconds (none before the
/// first is done, or once all are).
pub fn estimate(done: u64, total: u64, elapsed: f64) -> Option<f64> {
    if done == 0 || done >= total || elapsed <= 0.0 {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    let left = (total - done) as f64 * elapsed / done as f64;
    Some(left)
}

/// A step's bar: what it counts, what holds it, and, while it runs, the time left at its pace.
#[component]
pub fn StepBar(
    progress: StepProgress,
    started: Option<String>,
    running: bool,
    failed: bool,
) -> impl IntoView {
    let lang = use_lang();
    let unit = match progress.unit {
        ProgressUnit::NodesReady => Ui::NodesReady,
        ProgressUnit::PodsGone => Ui::PodsGone,
        ProgressUnit::NodesMoved => Ui::NodesMoved,
    };
    let clock = use_context::<crate::when::Clock>();
    let start = started.as_deref().and_then(parse);
    let (done, total) = (progress.done, progress.total);
    let left = move || {
        let (clock, start) = (clock?, start?);
        let elapsed = (clock.now() - start.unix_timestamp()) as f64;
        running
            .then(|| estimate(done, total, elapsed))
            .flatten()
            .map(|s| {
                format!(
                    "{} {} {}",
                    Ui::About.text(lang),
                    duration(s, lang),
                    Ui::Left.text(lang)
                )
            })
    };
    let updated = progress.updated.map(|u| {
        view! {
            <ProgressBar done=u.done total=u.total label=Ui::PodsUpdated.text(lang) failed=failed testid="pods-updated"/>
        }
    });
    view! {
        <div class="step-progress" data-unit=progress.unit.as_str()>
            <ProgressBar done=done total=total label=unit.text(lang) failed=failed/>
            {updated}
            <span class="small muted" data-testid="estimate">{left}</span>
            {progress.note.map(|n| view! {
                <span class="small held" data-testid="held-by">{Ui::HeldBy.text(lang)} " " {n}</span>
            })}
        </div>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::{estimate, percent};

    #[test]
    fn the_estimate_follows_the_pace_so_far() {
        assert_eq!(estimate(0, 10, 30.0), None);
        assert_eq!(estimate(10, 10, 30.0), None);
        assert_eq!(estimate(5, 10, 30.0), Some(30.0));
        assert_eq!(estimate(1, 4, 12.0), Some(36.0));
    }

    #[test]
    fn shares_are_bounded_and_rounded() {
        assert!((percent(1, 3) - 33.3).abs() < 1e-9);
        assert!((percent(5, 3) - 100.0).abs() < 1e-9);
        assert!((percent(0, 0) - 100.0).abs() < 1e-9);
        assert!(percent(0, 7).abs() < 1e-9);
    }
}
