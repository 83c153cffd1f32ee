//! `GET /live/{cluster}`: server-sent events telling a browser that a cluster's state changed,
//! and `GET /live-runs`, the same for workflow runs (steps, output, objects),
//! so that the page reloads what it shows. Each event carries the state's version only (a few
//! bytes); at most one per [`MIN_INTERVAL`], the first at once; a comment every 15 s keeps
//! proxies from closing an idle stream. A reconnecting browser gets an event at once and
//! reloads current state.
//!
//! A stream lives no longer than its session: every [`RECHECK`] it asks whether the session
//! still signs its user in (a logout, a password change, a disabled user or the idle timeout
//! end it), and it ends at the session's absolute lifetime. A session holds at most
//! [`MAX_PER_SESSION`](crate::streams::MAX_PER_SESSION) streams at once (429 beyond).

use std::convert::Infallible;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use grappe_engine::auth::Principal;
use grappe_engine::names::ClusterName;
use grappe_engine::time::now;
use http::StatusCode;
use tokio::sync::watch;
use tokio::time::Instant;
use tower_sessions::Session;

use super::session_store::stored_key;
use crate::state::AppState;
use crate::streams::Slot;

/// The shortest time between two events to one browser: changes within it are coalesced.
pub const MIN_INTERVAL: Duration = Duration::from_millis(700);
/// How often an open stream asks whether its session still signs its user in.
pub const RECHECK: Duration = Duration::from_secs(5);

/// What a stream checks its session against.
struct Guard {
    state: AppState,
    slot: Slot,
    user: grappe_engine::users::UserId,
    /// The session's absolute lifetime ends then.
    deadline: Instant,
}

impl Guard {
    /// The guard of a new stream for `principal`'s session, or why it is refused.
    fn new(
        state: &AppState,
        session: &Session,
        principal: &Principal,
    ) -> Result<Self, (StatusCode, &'static str)> {
        let Some(id) = session.id() else {
            return Err((StatusCode::UNAUTHORIZED, "no session"));
        };
        let key = stored_key(id).to_string();
        let Some(slot) = state.live_streams.take(&key) else {
            tracing::warn!(user = %principal.user.name, "live stream refused: too many open for one session");
            return Err((StatusCode::TOO_MANY_REQUESTS, "too many live streams"));
        };
        let age = u64::try_from(now().unix_micros() - principal.login_at.unix_micros())
            .map(Duration::from_micros)
            .unwrap_or_default();
        let left = state.settings.session.absolute_lifetime.saturating_sub(age);
        Ok(Self {
            state: state.clone(),
            slot,
            user: principal.user.id,
            deadline: Instant::now() + left,
        })
    }

    /// Whether the session still signs its user in (a failing store ends the stream too).
    async fn alive(&self) -> bool {
        if Instant::now() >= self.deadline {
            return false;
        }
        match self
            .state
            .engine
            .auth
            .session_alive(&self.slot.key, self.user)
            .await
        {
            Ok(alive) => alive,
            Err(e) => {
                tracing::warn!(error = %grappe_engine::audit::error_chain(&e), "live stream ended: session check failed");
                false
            }
        }
    }
}

pub async fn live(
    State(state): State<AppState>,
    session: Session,
    Extension(principal): Extension<Principal>,
    Path(cluster): Path<String>,
) -> Response {
    let Some(cluster_state) = ClusterName::parse(&cluster)
        .ok()
        .and_then(|name| state.engine.states.get(&name))
    else {
        return (StatusCode::NOT_FOUND, "no such cluster").into_response();
    };
    match Guard::new(&state, &session, &principal) {
        // Runs too, on the same stream: the page shows the cluster's run in progress, and a
        // browser holds few connections to one server (six over HTTP/1.1).
        Ok(guard) => stream(
            cluster_state.subscribe(),
            Some(state.engine.runs.subscribe()),
            guard,
        ),
        Err(refused) => refused.into_response(),
    }
}

pub async fn live_runs(
    State(state): State<AppState>,
    session: Session,
    Extension(principal): Extension<Principal>,
) -> Response {
    match Guard::new(&state, &session, &principal) {
        Ok(guard) => stream(state.engine.runs.subscribe(), None, guard),
        Err(refused) => refused.into_response(),
    }
}

fn stream(rx: watch::Receiver<u64>, runs: Option<watch::Receiver<u64>>, guard: Guard) -> Response {
    Sse::new(versions(rx, runs, guard))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// The version now (so a (re)connected browser reloads), then the version after each change,
/// waiting [`MIN_INTERVAL`] between two events so that a burst of changes makes one: a
/// `changed` event for `rx`, a `runs` event for `runs` (a cluster's stream tells its page of
/// the runs too). The stream ends when the state goes away or the session no longer signs its
/// user in; axum drops it when the client does.
fn versions(
    rx: watch::Receiver<u64>,
    runs: Option<watch::Receiver<u64>>,
    guard: Guard,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let recheck = tokio::time::interval_at(Instant::now() + RECHECK, RECHECK);
    futures::stream::unfold(
        (rx, runs, true, guard, recheck),
        |(mut rx, mut runs, first, guard, mut recheck)| async move {
            let mut name = "changed";
            if !first {
                tokio::time::sleep(MIN_INTERVAL).await;
                name = loop {
                    // A change already seen by neither wait (both changed in one interval).
                    if rx.has_changed().ok()? {
                        break "changed";
                    }
                    if runs
                        .as_ref()
                        .is_some_and(|r| r.has_changed().unwrap_or(false))
                    {
                        break "runs";
                    }
                    // (A wait that returns has marked its version seen.)
                    tokio::select! {
                        changed = rx.changed() => {
                            changed.ok()?;
                            break "changed";
                        }
                        changed = async {
                            match runs.as_mut() {
                                Some(r) => r.changed().await,
                                None => std::future::pending().await,
                            }
                        } => {
                            changed.ok()?;
                            break "runs";
                        }
                        _ = recheck.tick() => {
                            if !guard.alive().await {
                                return None;
                            }
                        }
                    }
                };
            }
            // The first event goes at once: the session guard has just checked the session.
            if !first && !guard.alive().await {
                return None;
            }
            let version = match (name, runs.as_mut()) {
                ("runs", Some(r)) => *r.borrow_and_update(),
                _ => *rx.borrow_and_update(),
            };
            let event = Event::default().event(name).data(version.to_string());
            Some((Ok(event), (rx, runs, false, guard, recheck)))
        },
    )
}
