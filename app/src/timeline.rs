//! A cluster's runs as a timeline: one lane per workflow (install, rollback, drain, reset,
//! recovery...), each run a bar from its start to its end (or now), its outcome by colour and,
//! beside the lane, counted by mark (✓, ✗ failed or cancelled, ⚠ warnings, … running); its
//! number, kind, outcome and duration in its tooltip. Drawn on the server as SVG like the other
//! pictures; the runs table under it says the same in words and links.

use grappe_views::runs::RunSummaryView;
use grappe_views::vocab::{RunStatus, Workflow};
use leptos::prelude::*;

use crate::i18n::{Lang, Ui, use_lang};
use crate::when::{Clock, duration, parse, reading_now};

/// The drawing's width in SVG units (it stretches to the card's width).
const WIDTH: f64 = 1000.0;
/// The narrowest bar, so that a run of a second is still seen (in SVG units).
const MIN_BAR: f64 = 6.0;

/// One run placed on the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub id: i64,
    pub x: f64,
    pub width: f64,
    /// The CSS class of its outcome (`part-ok`, `part-warn`, `part-bad`, `part-run`).
    pub class: &'static str,
    /// The outcome's mark for those who do not tell the colours apart.
    pub sign: &'static str,
    pub status: String,
    pub tip: String,
}

/// The runs of one workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct Lane {
    pub workflow: Workflow,
    pub marks: Vec<Mark>,
}

/// Places `runs` on lanes (in the workflows' own order) between the first start and `now` or
/// the last end, whichever is later; runs whose start cannot be read are left out.
pub fn lanes(runs: &[RunSummaryView], now: i64, lang: Lang) -> (Vec<Lane>, Option<(i64, i64)>) {
    let spans: Vec<(&RunSummaryView, i64, i64)> = runs
        .iter()
        .filter_map(|r| {
            let start = parse(&r.started_at)?.unix_timestamp();
            let end = r
                .finished_at
                .as_deref()
                .and_then(parse)
                .map_or(now, |t| t.unix_timestamp());
            Some((r, start, end.max(start)))
        })
        .collect();
    let (Some(first), Some(last)) = (
        spans.iter().map(|s| s.1).min(),
        spans.iter().map(|s| s.2).max(),
    ) else {
        return (Vec::new(), None);
    };
    let last = last.max(first + 1);
    #[allow(clippy::cast_precision_loss)]
    let scale = WIDTH / (last - first) as f64;
    let lanes = Workflow::ALL
        .iter()
        .filter_map(|&workflow| {
            let marks: Vec<Mark> = spans
                .iter()
                .filter(|(r, _, _)| r.workflow == workflow)
                .map(|&(r, start, end)| {
                    #[allow(clippy::cast_precision_loss)]
                    let x = (start - first) as f64 * scale;
                    #[allow(clippy::cast_precision_loss)]
                    let width = ((end - start) as f64 * scale).max(MIN_BAR);
                    // A run that starts last still shows its narrowest bar.
                    let x = x.min(WIDTH - MIN_BAR);
                    mark(r, x, width.min(WIDTH - x), end - start, lang)
                })
                .collect();
            (!marks.is_empty()).then_some(Lane { workflow, marks })
        })
        .collect();
    (lanes, Some((first, last)))
}

fn mark(r: &RunSummaryView, x: f64, width: f64, seconds: i64, lang: Lang) -> Mark {
    let (class, sign) = match r.status {
        RunStatus::Succeeded if r.warnings.is_empty() => ("part-ok", ""),
        RunStatus::Succeeded => ("part-warn", "⚠"),
        RunStatus::Running => ("part-run", "…"),
        RunStatus::Interrupted => ("part-warn", "!"),
        RunStatus::Failed | RunStatus::Cancelled | RunStatus::Abandoned => ("part-bad", "✗"),
    };
    let status = r.shown_status();
    let took = duration(f64::from(i32::try_from(seconds).unwrap_or(i32::MAX)), lang);
    Mark {
        id: r.id,
        x,
        width,
        class,
        sign,
        status: status.to_owned(),
        tip: format!(
            "#{} {} · {} · {} {} · {}",
            r.id,
            r.workflow.as_str(),
            r.title,
            Ui::Took.text(lang),
            took,
            status
        ),
    }
}

/// The runs of a cluster (or of all) on lanes, live with the runs table it sits above.
#[component]
pub fn RunTimeline(runs: Vec<RunSummaryView>) -> impl IntoView {
    let lang = use_lang();
    let clock = use_context::<Clock>();
    move || {
        let now = reading_now(clock);
        let (lanes, span) = lanes(&runs, now, lang);
        let span = span?;
        let rows = lanes.into_iter().map(lane_view).collect_view();
        let took = duration(
            f64::from(i32::try_from(span.1 - span.0).unwrap_or(i32::MAX)),
            lang,
        );
        Some(view! {
            <figure class="timeline" data-testid="run-timeline" aria-label=Ui::Timeline.text(lang)>
                <ul>{rows}</ul>
                <figcaption class="muted small">{Ui::TimelineSpan.text(lang).replace("{span}", &took)}</figcaption>
            </figure>
        })
    }
}

/// One lane: the workflow's name, its bars, and its runs counted by outcome mark (the words
/// are in the table below; the marks say it without colour).
fn lane_view(lane: Lane) -> impl IntoView {
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    for m in &lane.marks {
        let sign = if m.sign.is_empty() { "✓" } else { m.sign };
        match counts.iter_mut().find(|(s, _)| *s == sign) {
            Some((_, n)) => *n += 1,
            None => counts.push((sign, 1)),
        }
    }
    let counts = counts
        .into_iter()
        .map(|(sign, n)| format!("{sign} {n}"))
        .collect::<Vec<_>>()
        .join(" · ");
    let marks = lane
        .marks
        .into_iter()
        .map(|m| {
            view! {
                <rect class=m.class data-run=m.id data-status=m.status x=m.x.to_string() y="0" width=m.width.to_string() height="16">
                    <title>{m.tip}</title>
                </rect>
            }
        })
        .collect_view();
    view! {
        <li class="timeline-lane" data-workflow=lane.workflow.as_str()>
            <span class="mono small">{lane.workflow.as_str()}</span>
            <svg viewBox=format!("0 0 {WIDTH} 16") preserveAspectRatio="none" aria-hidden="true">{marks}</svg>
            <span class="small nowrap" data-testid="lane-counts">{counts}</span>
        </li>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        id: i64,
        workflow: Workflow,
        status: RunStatus,
        start: &str,
        end: Option<&str>,
    ) -> RunSummaryView {
        RunSummaryView {
            status,
            finished_at: end.map(Into::into),
            ..RunSummaryView::started(id, "lab", workflow, "t", "a", start)
        }
    }

    #[test]
    fn runs_are_placed_on_their_workflows_lane_between_the_first_start_and_now() {
        let runs = vec![
            run(
                3,
                Workflow::NodeDrain,
                RunStatus::Running,
                "2026-12-06T10:00:50Z",
                None,
            ),
            run(
                2,
                Workflow::CniRollback,
                RunStatus::Failed,
                "2026-12-06T10:00:20Z",
                Some("2026-12-06T10:00:30Z"),
            ),
            run(
                1,
                Workflow::CniInstall,
                RunStatus::Succeeded,
                "2026-12-06T10:00:00Z",
                Some("2026-12-06T10:00:20Z"),
            ),
            run(
                9,
                Workflow::CniInstall,
                RunStatus::Succeeded,
                "not a time",
                None,
            ),
        ];
        let now = parse("2026-12-06T10:01:40Z")
            .map(|t| t.unix_timestamp())
            .unwrap_or_default();
        let (lanes, span) = lanes(&runs, now, Lang::En);
        assert_eq!(span, Some((now - 100, now)));
        let order: Vec<_> = lanes.iter().map(|l| l.workflow).collect();
        assert_eq!(
            order,
            vec![
                Workflow::CniInstall,
                Workflow::CniRollback,
                Workflow::NodeDrain
            ]
        );
        // 100 s over 1000 units: the install from 0 for 20 s, the failed rollback at 20 s.
        let install = &lanes[0].marks;
        assert_eq!(
            install.len(),
            1,
            "the run without a readable start is left out"
        );
        assert_eq!(
            (install[0].x, install[0].width, install[0].class),
            (0.0, 200.0, "part-ok")
        );
        let rollback = &lanes[1].marks[0];
        assert_eq!(
            (rollback.x, rollback.width, rollback.sign),
            (200.0, 100.0, "✗")
        );
        assert!(
            rollback.tip.contains("#2 cni.rollback") && rollback.tip.contains("10 s"),
            "{}",
            rollback.tip
        );
        // The running drain ends at now.
        let drain = &lanes[2].marks[0];
        assert_eq!((drain.x, drain.width, drain.sign), (500.0, 500.0, "…"));
    }

    #[test]
    fn a_run_of_a_second_is_still_seen_and_none_is_nothing() {
        let runs = vec![run(
            1,
            Workflow::NodeReset,
            RunStatus::Succeeded,
            "2026-12-06T10:00:00Z",
            Some("2026-12-06T10:00:00Z"),
        )];
        let now = parse("2026-12-06T10:00:00Z")
            .map(|t| t.unix_timestamp())
            .unwrap_or_default();
        let (lanes, _) = lanes(&runs, now, Lang::En);
        assert!(lanes[0].marks[0].width >= MIN_BAR);
        assert_eq!(super::lanes(&[], now, Lang::En), (Vec::new(), None));
    }
}
