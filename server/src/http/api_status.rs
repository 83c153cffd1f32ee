//! The HTTP status of a failed server function follows its error: server_fn answers every
//! error with 500 (marked with its `serverfnerror` header), which would make a refused input
//! look like a server fault (to scripts, proxies and the logs). For those answers, whose body is
//! an [`AppError`], this sets 400 (invalid input), 401, 403 or 404; internal errors stay 500.

use axum::body::Body;
use axum::middleware::Next;
use axum::response::Response;
use http::{Request, StatusCode};

use app::error::AppError;
use server_fn::error::SERVER_FN_ERROR_HEADER;

/// Error bodies are a short JSON object; anything larger is not one of ours.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The status an error answer should carry.
pub fn status_of(error: &AppError) -> StatusCode {
    match error {
        AppError::Unauthenticated => StatusCode::UNAUTHORIZED,
        AppError::Forbidden => StatusCode::FORBIDDEN,
        AppError::NotFound(_) => StatusCode::NOT_FOUND,
        AppError::Invalid(_) | AppError::Refused { .. } | AppError::Transport(_) => {
            StatusCode::BAD_REQUEST
        }
        AppError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

pub async fn error_status(req: Request<Body>, next: Next) -> Response {
    let res = next.run(req).await;
    if res.status() != StatusCode::INTERNAL_SERVER_ERROR
        || !res.headers().contains_key(SERVER_FN_ERROR_HEADER)
    {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        tracing::warn!("server function error body unreadable or too large");
        return Response::from_parts(parts, Body::empty());
    };
    if let Ok(error) = serde_json::from_slice::<AppError>(&bytes) {
        parts.status = status_of(&error);
    }
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_client_errors_and_faults_stay_server_errors() {
        assert_eq!(
            status_of(&AppError::Invalid("wrong password".into())),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status_of(&AppError::NotFound("run 7".into())),
            StatusCode::NOT_FOUND
        );
        assert_eq!(status_of(&AppError::Forbidden), StatusCode::FORBIDDEN);
        assert_eq!(
            status_of(&AppError::Internal {
                reference: "0badcafe".into()
            }),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
