//! The HTTP layer: the middleware every request passes through (security headers, cross-site
//! refusal, session guard, server-function error statuses) and the few routes that are not
//! Leptos pages (login, logout, export, health, live updates).

pub mod api_status;
pub mod auth;
pub mod csrf;
pub mod export;
pub mod health;
pub mod live;
pub mod security;
pub mod session;

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use http::{HeaderMap, Request};

use grappe_engine::Caller;

/// Session keys (one place, so that login and the guard agree).
pub mod keys {
    pub const USER_ID: &str = "uid";
    pub const LOGIN_AT: &str = "login_at";
    /// When the session was last used, to the granularity that moves its idle deadline.
    pub const TOUCHED_AT: &str = "touched_at";
}

/// Paths reachable without a session: the login page and its form target, logout, health, and
/// static assets. Everything else needs a session.
pub fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/login" | "/auth/login" | "/auth/logout" | "/healthz" | "/favicon.svg"
    ) || path.starts_with("/pkg/")
}

/// The client's address: the TCP peer, or the first `X-Forwarded-For` hop when configured to
/// trust a proxy.
fn client_address(
    headers: &HeaderMap,
    extensions: &http::Extensions,
    trust_forwarded_for: bool,
) -> Option<String> {
    if trust_forwarded_for
        && let Some(first) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| v.parse::<std::net::IpAddr>().is_ok())
    {
        return Some(first.to_owned());
    }
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())
}

/// The audit identity of a request made by `actor`.
pub fn caller_from_request<B>(req: &Request<B>, actor: &str, trust_forwarded_for: bool) -> Caller {
    Caller {
        actor: actor.to_owned(),
        source: client_address(req.headers(), req.extensions(), trust_forwarded_for),
        user_agent: user_agent(req.headers()),
    }
}

/// The User-Agent header, cleaned for storage (control characters replaced, 256 chars max).
pub fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(http::header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .map(|ua| grappe_engine::names::sanitize_for_display(&ua, 256))
}

/// Accepts only a local path (`/x`, not `//host` or `https://...`) as a post-login target.
/// Control characters are refused anywhere: browsers drop tabs and line breaks from a URL, so
/// `/<TAB>/evil.example` would become `//evil.example`, another site.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control)
                && n.len() <= 2048 =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(safe_next(Some("/history?page=2")), "/history?page=2");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        // Browsers drop tabs and line breaks: these would be //evil.example.
        assert_eq!(safe_next(Some("/\t/evil.example")), "/");
        assert_eq!(safe_next(Some("/\n/evil.example")), "/");
        assert_eq!(safe_next(Some("/\r\n/evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn public_paths_are_the_documented_few() {
        for p in ["/login", "/auth/login", "/healthz", "/pkg/grappe.wasm"] {
            assert!(is_public(p), "{p}");
        }
        for p in [
            "/",
            "/history",
            "/api/whoami",
            "/login/x",
            "/pkgx",
            "/c/lab/overview",
        ] {
            assert!(!is_public(p), "{p}");
        }
    }
}
