//! The HTTP layer: the middleware every request passes through (security headers, cross-site
//! refusal, session guard, server-function error statuses) and the few routes that are not
//! Leptos pages (login, logout, export, health, live updates).

pub mod api_status;
pub mod auth;
pub mod csrf;
pub mod export;
pub mod health;
pub mod host;
pub mod live;
pub mod security;
pub mod session;
pub mod session_store;

use grappe_engine::net::Cidr;
use std::net::IpAddr;
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

/// The client's address: the TCP peer; when the peer is one of the `trusted` proxies, the
/// right-most `X-Forwarded-For` address that is not a trusted proxy (each proxy appends the
/// address it saw; what comes before the first trusted hop was written by the client).
fn client_address(
    headers: &HeaderMap,
    extensions: &http::Extensions,
    trusted: &[Cidr],
) -> Option<String> {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())?;
    Some(forwarded_client(peer, headers, trusted).to_string())
}

fn forwarded_client(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|hop| hop.trim().parse::<IpAddr>())
        .collect::<Result<_, _>>()
        // A hop that is not an address: nothing in the header can be believed.
        .unwrap_or_default();
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        client = hop;
        if !is_trusted(hop) {
            break;
        }
    }
    client
}

/// The audit identity of a request made by `actor`.
pub fn caller_from_request<B>(req: &Request<B>, actor: &str, trusted_proxies: &[Cidr]) -> Caller {
    Caller {
        actor: actor.to_owned(),
        source: client_address(req.headers(), req.extensions(), trusted_proxies),
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

    fn forwarded(peer: &str, xff: &[&str], trusted: &[&str]) -> String {
        let mut headers = HeaderMap::new();
        for v in xff {
            headers.append("x-forwarded-for", v.parse().expect("header"));
        }
        let trusted: Vec<Cidr> = trusted.iter().map(|c| c.parse().expect("cidr")).collect();
        forwarded_client(peer.parse().expect("ip"), &headers, &trusted).to_string()
    }

    #[test]
    fn the_client_is_the_right_most_address_that_is_not_a_trusted_proxy() {
        let proxies = ["10.0.0.0/8"];
        // The client wrote 6.6.6.6 itself; the proxy appended what it saw.
        assert_eq!(
            forwarded("10.0.0.2", &["6.6.6.6, 203.0.113.7"], &proxies),
            "203.0.113.7"
        );
        // Two proxies in a row.
        assert_eq!(
            forwarded("10.0.0.2", &["6.6.6.6, 203.0.113.7, 10.1.1.1"], &proxies),
            "203.0.113.7"
        );
        assert_eq!(
            forwarded("10.0.0.2", &["6.6.6.6", "203.0.113.7"], &proxies),
            "203.0.113.7"
        );
        // A request straight from a client: its header is never read.
        assert_eq!(
            forwarded("198.51.100.9", &["6.6.6.6"], &proxies),
            "198.51.100.9"
        );
        // No trusted proxy configured: never read either.
        assert_eq!(forwarded("10.0.0.2", &["6.6.6.6"], &[]), "10.0.0.2");
        // A garbled header from behind the proxy: the proxy is the client.
        assert_eq!(
            forwarded("10.0.0.2", &["6.6.6.6, bogus"], &proxies),
            "10.0.0.2"
        );
    }

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
