//! DNS rebinding refusal: a request must name, in its `Host` header, a host Grappe answers for.
//!
//! A rebinding page on `http://evil.example:8080` whose name later resolves to Grappe's address
//! sends `Host: evil.example:8080` and `Origin: http://evil.example:8080`, which agree with each
//! other, so the cross-site check alone would let it post. Rebinding needs a DNS name: an address
//! literal (`127.0.0.1:8080`, `[::1]:8080`) and `localhost` are always accepted; any other name
//! must be the host of `public_url`, of an `allowed_origins` entry, or be in `allowed_hosts`.
//! `/healthz` is exempt (probes name the pod's address or a service name).

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

/// The host names (lower case, without port) a request may name besides address literals and
/// `localhost`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPolicy {
    names: Vec<String>,
}

impl HostPolicy {
    /// The names of `urls` (origins or URLs: `https://grappe.example.org[:port][/...]`) and of
    /// `hosts` (bare names, a port is ignored).
    pub fn new<'a>(
        urls: impl IntoIterator<Item = &'a str>,
        hosts: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let from_urls = urls.into_iter().filter_map(|u| {
            let rest = u.split_once("://").map_or(u, |(_, rest)| rest);
            rest.split(['/', '?', '#']).next()
        });
        let mut names: Vec<String> = from_urls
            .chain(hosts)
            .filter_map(host_name)
            .filter(|name| !is_always_allowed(name))
            .collect();
        names.sort();
        names.dedup();
        Self { names }
    }

    /// Whether a request naming `authority` (`host[:port]`) is for Grappe.
    pub fn allows(&self, authority: &str) -> bool {
        match host_name(authority) {
            Some(name) => is_always_allowed(&name) || self.names.contains(&name),
            None => false,
        }
    }
}

/// The host of `host[:port]` in lower case, brackets of an IPv6 literal removed; `None` when it
/// is not an authority.
fn host_name(authority: &str) -> Option<String> {
    let authority: http::uri::Authority = authority.trim().parse().ok()?;
    if authority.as_str().contains('@') {
        return None;
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let host = host.strip_suffix('.').unwrap_or(host);
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

fn is_always_allowed(name: &str) -> bool {
    name == "localhost" || name.parse::<IpAddr>().is_ok()
}

/// Refuses, with 421 Misdirected Request, a request for a host Grappe does not answer for.
pub async fn refuse_foreign_host(
    State(policy): State<Arc<HostPolicy>>,
    req: Request,
    next: Next,
) -> Response<Body> {
    if req.uri().path() == "/healthz" {
        return next.run(req).await;
    }
    let authority = req
        .headers()
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()));
    match authority {
        Some(a) if policy.allows(&a) => next.run(req).await,
        other => {
            let shown = other
                .as_deref()
                .map(|a| grappe_engine::names::sanitize_for_display(a, 128));
            tracing::warn!(host = ?shown, path = req.uri().path(), "request for a foreign host refused");
            (
                StatusCode::MISDIRECTED_REQUEST,
                "this host name is not one Grappe answers for (see public_url)",
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_literals_and_localhost_are_always_allowed() {
        let p = HostPolicy::default();
        for ok in [
            "127.0.0.1:8080",
            "10.0.0.5",
            "[::1]:8080",
            "localhost:8080",
            "LOCALHOST",
        ] {
            assert!(p.allows(ok), "{ok}");
        }
    }

    #[test]
    fn a_name_must_be_configured() {
        let p = HostPolicy::new(
            [
                "https://Grappe.example.org",
                "http://ops.example.org:8443/x",
            ],
            ["grappe.internal:443"],
        );
        for ok in [
            "grappe.example.org",
            "grappe.example.org:443",
            "GRAPPE.example.org.",
            "ops.example.org:8443",
            "grappe.internal",
        ] {
            assert!(p.allows(ok), "{ok}");
        }
        for refused in [
            "evil.example:8080",
            "grappe.example.org.evil.example",
            "127.0.0.1.nip.io:8080",
            "user@grappe.example.org",
            "",
            "a b",
        ] {
            assert!(!p.allows(refused), "{refused}");
        }
    }
}
