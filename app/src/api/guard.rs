//! Server-side checks shared by every server function: a valid session (the middleware put a
//! [`Principal`] in the request) and a role that allows the call.

use grappe_engine::Engine;
use grappe_engine::auth::Principal;
use grappe_engine::names::{ClusterName, NodeName};
use grappe_engine::users::Role;
use leptos::prelude::*;

use crate::error::AppError;

/// Returns the engine and the caller if the request has a session whose role allows `needed`.
///
/// # Errors
/// [`AppError::Unauthenticated`] without a session, [`AppError::Forbidden`] when the role is too
/// low (the HTTP status is set to 401 / 403 accordingly).
pub async fn require(needed: Role) -> Result<(Engine, Principal), AppError> {
    let engine = use_context::<Engine>()
        .ok_or_else(|| AppError::internal(&std::io::Error::other("engine missing from context")))?;
    let principal = use_context::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Principal>().cloned());
    let principal = match principal {
        Some(p) => p,
        None => {
            set_status(http::StatusCode::UNAUTHORIZED);
            return Err(AppError::Unauthenticated);
        }
    };
    if !principal.user.role.allows(needed) {
        tracing::warn!(
            user = %principal.user.name,
            role = principal.user.role.as_str(),
            needed = needed.as_str(),
            "server function refused: role too low"
        );
        set_status(http::StatusCode::FORBIDDEN);
        return Err(AppError::Forbidden);
    }
    Ok((engine, principal))
}

/// A cluster's name as a request gives it: one that is no name is no cluster either.
///
/// # Errors
/// [`AppError::NotFound`] when `name` is not a cluster name.
pub fn cluster(name: &str) -> Result<ClusterName, AppError> {
    ClusterName::parse(name).map_err(|_| AppError::NotFound(format!("cluster {name:?}")))
}

/// A node's name as a request gives it.
///
/// # Errors
/// [`AppError::Invalid`] naming what is wrong with it.
pub fn node(name: &str) -> Result<NodeName, AppError> {
    NodeName::parse(name.trim()).map_err(|e| AppError::Invalid(e.to_string()))
}

pub(crate) fn set_status(status: http::StatusCode) {
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(status);
    }
}

/// Checks the password given again when `always`, or when the login is older than the
/// re-authentication window (as run starts do); returns whether it was checked.
///
/// # Errors
/// [`AppError::Invalid`] when it is needed and missing, wrong or throttled.
pub async fn reauthenticated(
    engine: &Engine,
    p: &Principal,
    password: &str,
    always: bool,
) -> Result<bool, AppError> {
    if !(always || p.reauth_due) {
        return Ok(false);
    }
    if password.is_empty() {
        return Err(AppError::Invalid(
            "your login is not recent: enter your password again".into(),
        ));
    }
    check_password(engine, p, password).await?;
    Ok(true)
}

/// Checks the password the caller gave again (in its own throttle bucket).
///
/// # Errors
/// [`AppError::Invalid`] when it is wrong or throttled.
pub async fn check_password(
    engine: &Engine,
    p: &Principal,
    password: &str,
) -> Result<(), AppError> {
    use grappe_engine::auth::{LoginOutcome, Password};
    let outcome = engine
        .auth
        .reauthenticate(&p.caller, p.user.name.as_str(), &Password::new(password))
        .await
        .map_err(|e| AppError::internal(&e))?;
    match outcome {
        LoginOutcome::Success(_) => Ok(()),
        LoginOutcome::Busy | LoginOutcome::Throttled { .. } => Err(AppError::Invalid(
            "too many password checks right now: wait a moment and try again".into(),
        )),
        LoginOutcome::Invalid => Err(AppError::Invalid("wrong password: nothing was done".into())),
    }
}
