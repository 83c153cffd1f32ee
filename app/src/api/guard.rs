//! Server-side checks shared by every server function: a valid session (the middleware put a
//! [`Principal`] in the request) and a role that allows the call.

use grappe_engine::Engine;
use grappe_engine::auth::Principal;
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

pub(crate) fn set_status(status: http::StatusCode) {
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(status);
    }
}
