//! A custom manifest's URL, fetched as an admin typed it: the server fetching it is inside the
//! network, so the URL must not make it a probe of that network (SSRF).
//!
//! - Credentials in the URL (`user:token@`) are refused; its query and fragment (`?token=`) are
//!   used for the download but never stored or shown (the recorded source has neither).
//! - Every address the host resolves to must be public: loopback, private, link-local (cloud
//!   metadata at 169.254.169.254), shared, unique-local, multicast and reserved ranges are
//!   refused, except on the host of the configured manifest mirror. The connection goes to the
//!   address that was checked (pinned), so the name cannot resolve elsewhere in between.
//! - Redirects are followed by hand, at most 5, each target checked the same way.
//! - A transport failure answers one generic message; its cause chain goes to the log only (a
//!   port scanner learns nothing from the difference between refused and timed out).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use reqwest::Url;

use super::{MAX_MANIFEST_BYTES, ManifestError};

const MAX_REDIRECTS: usize = 5;

/// What a custom URL is checked against.
#[derive(Debug, Clone, Default)]
pub(super) struct Guard {
    /// `host:port` of the manifest mirror, where private addresses are allowed.
    pub mirror: Option<(String, u16)>,
}

/// The URL as it may be recorded and shown: no credentials, no query, no fragment.
pub(super) fn shown(url: &Url) -> String {
    let mut clean = url.clone();
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    clean.set_query(None);
    clean.set_fragment(None);
    clean.to_string()
}

/// Parses a typed URL, refusing what is not an http(s) URL without credentials.
pub(super) fn parse(text: &str) -> Result<Url, ManifestError> {
    let url = Url::parse(text.trim()).map_err(|_| ManifestError::BadUrl(short(text)))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ManifestError::BadUrl(shown(&url)));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ManifestError::Credentials(shown(&url)));
    }
    Ok(url)
}

/// What an unreadable URL is shown as: its host at most, never what could be credentials.
fn short(text: &str) -> String {
    let rest = text.trim().split_once("://").map_or("", |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    crate::names::sanitize_for_display(host, 120)
}

/// Whether `ip` is an address of the public Internet.
pub(super) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0)
                || (a == 198 && (18..20).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0xdb8
                || first == 0x64 && v6.segments()[1] == 0xff9b)
        }
    }
}

impl Guard {
    /// The address to connect to for `url`, once every address its host has is allowed.
    async fn address(&self, url: &Url) -> Result<SocketAddr, ManifestError> {
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(80);
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port))
                .await
                .map_err(|e| {
                    tracing::warn!(url = %shown(url), error = %e, "custom manifest host does not resolve");
                    ManifestError::Unreachable(shown(url))
                })?
                .collect(),
        };
        let mirror = self
            .mirror
            .as_ref()
            .is_some_and(|(h, p)| h.eq_ignore_ascii_case(bare) && *p == port);
        match addrs.first() {
            None => Err(ManifestError::Unreachable(shown(url))),
            Some(_) if !mirror && addrs.iter().any(|a| !is_public(a.ip())) => {
                tracing::warn!(url = %shown(url), ?addrs, "custom manifest URL names a private address");
                Err(ManifestError::PrivateAddress(shown(url)))
            }
            Some(first) => Ok(*first),
        }
    }

    /// Downloads `url`, following redirects by hand.
    pub(super) async fn download(&self, url: Url) -> Result<Vec<u8>, ManifestError> {
        let mut url = url;
        for _ in 0..=MAX_REDIRECTS {
            let addr = self.address(&url).await?;
            let unreachable = |e: reqwest::Error| {
                tracing::warn!(url = %shown(&url), error = %crate::audit::error_chain(&e), "custom manifest download failed");
                ManifestError::Unreachable(shown(&url))
            };
            let client = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .timeout(Duration::from_secs(60))
                .user_agent(concat!("grappe/", env!("CARGO_PKG_VERSION")))
                .redirect(reqwest::redirect::Policy::none())
                .resolve(url.host_str().unwrap_or_default(), addr)
                .build()
                .map_err(unreachable)?;
            let mut resp = client.get(url.clone()).send().await.map_err(unreachable)?;
            if resp.status().is_redirection() {
                let next = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| url.join(l).ok())
                    .ok_or_else(|| ManifestError::Unreachable(shown(&url)))?;
                url = parse(next.as_str())?;
                continue;
            }
            if !resp.status().is_success() {
                return Err(ManifestError::HttpStatus {
                    url: shown(&url),
                    status: resp.status().as_u16(),
                });
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
                if body.len() + chunk.len() > MAX_MANIFEST_BYTES {
                    return Err(ManifestError::TooLarge {
                        limit: MAX_MANIFEST_BYTES,
                    });
                }
                body.extend_from_slice(&chunk);
            }
            return Ok(body);
        }
        Err(ManifestError::Unreachable(shown(&url)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_reserved_addresses_are_not_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(!is_public(private.parse().expect("ip")), "{private}");
        }
        for public in ["1.1.1.1", "140.82.112.3", "2606:4700::1111"] {
            assert!(is_public(public.parse().expect("ip")), "{public}");
        }
    }

    #[test]
    fn credentials_are_refused_and_queries_never_shown() {
        assert!(matches!(
            parse("https://user:token@github.com/x.yaml"),
            Err(ManifestError::Credentials(shown)) if !shown.contains("token")
        ));
        let url = parse("https://example.org/calico.yaml?token=s3cr3t#f").expect("url");
        assert_eq!(shown(&url), "https://example.org/calico.yaml");
        assert!(matches!(
            parse("file:///etc/passwd"),
            Err(ManifestError::BadUrl(_))
        ));
        assert!(matches!(parse("gopher://x"), Err(ManifestError::BadUrl(_))));
    }
}
