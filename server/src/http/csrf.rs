//! Cross-site request refusal: a state-changing request (any method but GET, HEAD, OPTIONS) must
//! come from Grappe's own pages. Browsers say where a request comes from in `Sec-Fetch-Site` and
//! `Origin`; a request that is cross-site by either, or that carries neither, is refused with 403.
//! SameSite=Strict cookies are the second line.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode};

use crate::state::AppState;

/// Why a request was refused (logged, not sent).
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    CrossSiteFetch(String),
    ForeignOrigin(String),
    NoProvenance,
}

/// Decides whether a state-changing request is same-origin.
pub fn check(headers: &HeaderMap, allowed_origins: &[String]) -> Result<(), Refusal> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let fetch_site = header("sec-fetch-site");
    if let Some(site) = fetch_site
        && site != "same-origin"
    {
        return Err(Refusal::CrossSiteFetch(site.to_owned()));
    }
    match header("origin") {
        Some(origin) => {
            let host = header("host").unwrap_or_default();
            let own = ["http://", "https://"]
                .iter()
                .any(|scheme| origin == format!("{scheme}{host}"));
            if own || allowed_origins.iter().any(|a| a == origin) {
                Ok(())
            } else {
                Err(Refusal::ForeignOrigin(origin.to_owned()))
            }
        }
        None if fetch_site == Some("same-origin") => Ok(()),
        None => Err(Refusal::NoProvenance),
    }
}

pub async fn refuse_cross_site(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response<Body> {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    match check(req.headers(), &state.settings.post_origins()) {
        Ok(()) => next.run(req).await,
        Err(refusal) => {
            tracing::warn!(?refusal, method = %req.method(), path = req.uri().path(), "cross-site request refused");
            (StatusCode::FORBIDDEN, "cross-site request refused").into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("header"));
        }
        h
    }

    #[test]
    fn same_origin_requests_pass() {
        let h = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert_eq!(check(&h, &[]), Ok(()));
        let h = headers(&[("host", "grappe:443"), ("sec-fetch-site", "same-origin")]);
        assert_eq!(check(&h, &[]), Ok(()));
    }

    #[test]
    fn cross_site_or_unknown_provenance_is_refused() {
        let h = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example"),
        ]);
        assert!(matches!(check(&h, &[]), Err(Refusal::ForeignOrigin(_))));
        let h = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
            ("sec-fetch-site", "same-site"),
        ]);
        assert!(matches!(check(&h, &[]), Err(Refusal::CrossSiteFetch(_))));
        let h = headers(&[("host", "127.0.0.1:8080"), ("origin", "null")]);
        assert!(check(&h, &[]).is_err());
        let h = headers(&[("host", "127.0.0.1:8080")]);
        assert_eq!(check(&h, &[]), Err(Refusal::NoProvenance));
    }

    #[test]
    fn configured_origins_are_allowed() {
        let h = headers(&[
            ("host", "10.0.0.5:8080"),
            ("origin", "https://grappe.example.org"),
        ]);
        assert_eq!(
            check(&h, &["https://grappe.example.org".to_owned()]),
            Ok(())
        );
    }
}
