//! `GET /live/{cluster}`: server-sent events telling a browser that a cluster's state changed,
//! and `GET /live-runs`, the same for workflow runs (steps, output, objects),
//! so that the page reloads what it shows. Each event carries the state's version only (a few
//! bytes); at most one per [`MIN_INTERVAL`], the first at once; a comment every 15 s keeps
//! proxies from closing an idle stream. A reconnecting browser gets an event at once and
//! reloads current state.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use grappe_engine::names::ClusterName;
use http::StatusCode;

use crate::state::AppState;

/// The shortest time between two events to one browser: changes within it are coalesced.
pub const MIN_INTERVAL: Duration = Duration::from_millis(700);

pub async fn live(State(state): State<AppState>, Path(cluster): Path<String>) -> Response {
    let Some(cluster_state) = ClusterName::parse(&cluster)
        .ok()
        .and_then(|name| state.engine.states.get(&name))
    else {
        return (StatusCode::NOT_FOUND, "no such cluster").into_response();
    };
    let rx = cluster_state.subscribe();
    Sse::new(versions(rx))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

pub async fn live_runs(State(state): State<AppState>) -> Response {
    Sse::new(versions(state.engine.runs.subscribe()))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// The version now (so a (re)connected browser reloads), then the version after each change,
/// waiting [`MIN_INTERVAL`] between two events so that a burst of changes makes one. The stream
/// ends when the cluster's state goes away; axum drops it when the client does.
fn versions(
    rx: tokio::sync::watch::Receiver<u64>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold((rx, true), |(mut rx, first)| async move {
        if !first {
            tokio::time::sleep(MIN_INTERVAL).await;
            rx.changed().await.ok()?;
        }
        let version = *rx.borrow_and_update();
        let event = Event::default().event("changed").data(version.to_string());
        Some((Ok(event), (rx, false)))
    })
}
