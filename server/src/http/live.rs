//! `GET /live/{cluster}`: server-sent events telling a browser that a cluster's state changed,
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

use crate::startup::AppState;

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

fn versions(
    mut rx: tokio::sync::watch::Receiver<u64>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    async_stream(move |tx| async move {
        // The current version first: the browser reloads after a (re)connect.
        let mut current = *rx.borrow_and_update();
        loop {
            if tx
                .send(Event::default().event("changed").data(current.to_string()))
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(MIN_INTERVAL).await;
            if rx.changed().await.is_err() {
                return;
            }
            current = *rx.borrow_and_update();
        }
    })
}

/// A stream fed by a task through a small channel; the task ends when the client goes.
fn async_stream<F, Fut>(f: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(f(tx));
    futures::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
    )
}
