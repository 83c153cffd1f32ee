//! The session guard: every request to a non-public path needs a live session of an enabled
//! user, no older than the absolute lifetime. The guard puts a [`Principal`] in the request for
//! the handlers and server functions; without one, pages redirect to the login page and other
//! requests get 401.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use grappe_engine::auth::Principal;
use grappe_engine::time::{Timestamp, now};
use grappe_engine::users::UserId;
use http::{Method, StatusCode};
use tower_sessions::Session;

use super::{caller_from_request, is_public, keys};
use crate::state::AppState;

pub async fn require_session(
    State(state): State<AppState>,
    session: Session,
    req: Request,
    next: Next,
) -> Response<Body> {
    let path = req.uri().path().to_owned();
    // Computed before any await: a request body is not Sync, so `&req` cannot cross one.
    let caller = caller_from_request(&req, "", &state.settings.trusted_proxies);
    match load_principal(&state, &session, caller).await {
        Ok(Some(principal)) => {
            let mut req = req;
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Ok(None) if is_public(&path) => next.run(req).await,
        Ok(None) => unauthenticated(&req),
        Err(e) => {
            tracing::error!(error = %grappe_engine::audit::error_chain(&*e), "session check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "session store unavailable").into_response()
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The session's principal, or `None` when there is no valid session (an invalid one is
/// flushed on the way).
async fn load_principal(
    state: &AppState,
    session: &Session,
    mut caller: grappe_engine::Caller,
) -> Result<Option<Principal>, BoxError> {
    let Some(uid) = session.get::<i64>(keys::USER_ID).await? else {
        return Ok(None);
    };
    let login_at = session
        .get::<String>(keys::LOGIN_AT)
        .await?
        .and_then(|t| Timestamp::parse(&t).ok());
    let Some(login_at) = login_at else {
        session.flush().await?;
        return Ok(None);
    };
    let age = now().unix_micros() - login_at.unix_micros();
    let max =
        i64::try_from(state.settings.session.absolute_lifetime.as_micros()).unwrap_or(i64::MAX);
    if age > max {
        tracing::info!(user_id = uid, "session reached its absolute lifetime");
        session.flush().await?;
        return Ok(None);
    }
    let user = state.engine.users.get(UserId(uid)).await?;
    let Some(user) = user.filter(|u| !u.disabled) else {
        tracing::info!(
            user_id = uid,
            "session of a disabled or deleted user refused"
        );
        session.flush().await?;
        return Ok(None);
    };
    // Activity moves the idle deadline, but the session row is rewritten (a durable SQLite
    // write) at most every minute (or a quarter of the idle timeout), not on every request.
    let idle = state.settings.session.idle_timeout.as_secs();
    let every = i64::try_from((idle / 4).clamp(1, 60)).unwrap_or(60);
    let now_s = now().unix_seconds();
    let touched = session.get::<i64>(keys::TOUCHED_AT).await?.unwrap_or(0);
    if now_s - touched >= every {
        session.insert(keys::TOUCHED_AT, now_s).await?;
    }
    caller.actor = user.name.to_string();
    let reauth_after =
        i64::try_from(state.settings.session.reauth_after.as_micros()).unwrap_or(i64::MAX);
    Ok(Some(Principal {
        user,
        caller,
        login_at,
        reauth_due: age >= reauth_after,
    }))
}

fn unauthenticated(req: &Request) -> Response<Body> {
    let path = req.uri().path();
    let wants_page = req.method() == Method::GET && !path.starts_with("/api/");
    if wants_page {
        let target = req
            .uri()
            .path_and_query()
            .map(|pq| pq.as_str().to_owned())
            .unwrap_or_else(|| "/".to_owned());
        let login = format!(
            "/login?next={}",
            app::api::history::encode_component(&target)
        );
        Redirect::to(&login).into_response()
    } else {
        // Server functions decode this body as `AppError::Unauthenticated`.
        (
            StatusCode::UNAUTHORIZED,
            [(http::header::CONTENT_TYPE, "application/json")],
            "\"Unauthenticated\"",
        )
            .into_response()
    }
}
