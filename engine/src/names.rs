//! Validated names that cross module boundaries: parsed once at the edge, trusted afterwards.
//!
//! Each type keeps its field private, so a value can only exist after `parse` accepted it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a name was refused. The message is safe to show to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {shown:?}: {reason}")]
pub struct NameError {
    kind: &'static str,
    /// The offending input, truncated and stripped of control characters.
    shown: String,
    reason: &'static str,
}

impl NameError {
    fn new(kind: &'static str, input: &str, reason: &'static str) -> Self {
        Self {
            kind,
            shown: sanitize_for_display(input, 64),
            reason,
        }
    }
}

/// Truncates `input` to `max` characters and replaces control characters, so that user input can
/// be echoed in messages and logs without log injection.
pub fn sanitize_for_display(input: &str, max: usize) -> String {
    input
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// Whether `c` changes how text around it is shown without showing itself: bidirectional
/// embeddings, overrides and isolates, direction marks, zero-width characters, the BOM. An
/// event message holding U+202E then `evil` shows as `live`.
pub fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// Text from a cluster or a node host (an event, a condition, an annotation, SSH output) as it
/// may be kept and shown: at most `max_bytes` (cut at a character boundary, `…` marking the
/// cut), control characters but line breaks and tabs replaced with U+FFFD, and invisible
/// formatting characters shown as their code (`<U+202E>`) so that they change nothing.
pub fn untrusted_text(input: &str, max_bytes: usize) -> String {
    let mut out = String::with_capacity(input.len().min(max_bytes));
    for c in input.chars() {
        let shown: std::borrow::Cow<'_, str> = if is_invisible_format(c) {
            format!("<U+{:04X}>", u32::from(c)).into()
        } else if c.is_control() && c != '\n' && c != '\t' {
            "\u{FFFD}".into()
        } else {
            c.encode_utf8(&mut [0; 4]).to_owned().into()
        };
        if out.len() + shown.len() > max_bytes {
            out.push('…');
            break;
        }
        out.push_str(&shown);
    }
    out
}

fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A name type: a private `String` that only `parse` makes. Deserialization (JSON, a stored
/// parameter) and `TryFrom<String>` (a database row) go through `parse` too, so a stored name
/// is checked again when it is read back.
macro_rules! validated_name {
    ($(#[$m:meta])* $name:ident, $kind:literal, $valid:expr, $reason:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            #[doc = concat!("# Errors\n[`NameError`] unless `input` ", $reason, ".")]
            pub fn parse(input: &str) -> Result<Self, NameError> {
                let valid: fn(&str) -> bool = $valid;
                if valid(input) {
                    Ok(Self(input.to_owned()))
                } else {
                    Err(NameError::new($kind, input, $reason))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;

            fn try_from(s: String) -> Result<Self, NameError> {
                Self::parse(&s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

fn is_user_name(s: &str) -> bool {
    let first_ok = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    first_ok
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

validated_name!(
    /// An IANA time zone as a reader picked it (`Europe/Paris`, `UTC`,
    /// `America/Argentina/Buenos_Aires`). The server checks its shape only: the reader's
    /// browser knows the zones (and falls back to its own for one it does not know).
    TimeZoneName,
    "time zone",
    is_time_zone,
    "is an IANA time zone name (parts of letters, digits, _, - or + separated by /, at most 64 characters)"
);

fn is_time_zone(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.split('/').all(|part| {
            !part.is_empty()
                && part.bytes().any(|c| c.is_ascii_alphabetic())
                && part
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'+'))
        })
}

validated_name!(
    /// A Grappe account name: 1 to 64 characters, lowercase ASCII letters, digits, `.`, `_`,
    /// `-`, starting with a letter or digit.
    UserName,
    "user name",
    is_user_name,
    "must have 1 to 64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"
);

validated_name!(
    /// The name of a configured cluster, as used in URLs and the audit log: a DNS-1123 label.
    ClusterName,
    "cluster name",
    is_dns_label,
    "must be a DNS-1123 label: lowercase letters, digits and '-', at most 63 characters"
);

validated_name!(
    /// A Kubernetes node's name: a DNS-1123 subdomain (labels joined by '.', at most 253
    /// characters). Checked before a name reaches an API path or a host's inventory.
    NodeName,
    "node name",
    is_dns_subdomain,
    "must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', at most 253 characters"
);

#[cfg(test)]
mod tests {

    #[test]
    fn untrusted_text_is_bounded_and_shows_what_would_hide() {
        // U+202E then "evil" shows as "live" in a browser: it is named instead.
        assert_eq!(untrusted_text("pod \u{202E}evil", 100), "pod <U+202E>evil");
        assert_eq!(
            untrusted_text("a\u{200B}b\u{2066}c", 100),
            "a<U+200B>b<U+2066>c"
        );
        assert_eq!(
            untrusted_text("bell\u{7}\nnext\tcol", 100),
            "bell\u{FFFD}\nnext\tcol"
        );
        let long = "é".repeat(2_000);
        let cut = untrusted_text(&long, 101);
        assert!(cut.len() <= 101 + '…'.len_utf8(), "{}", cut.len());
        assert!(cut.ends_with('…'));
        assert_eq!(cut.chars().filter(|c| *c == 'é').count(), 50);
    }

    use super::*;

    #[test]
    fn time_zones_are_iana_shaped_names_and_nothing_else() {
        for ok in [
            "UTC",
            "Europe/Paris",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+9",
            "America/Port-au-Prince",
        ] {
            assert!(TimeZoneName::parse(ok).is_ok(), "{ok}");
        }
        let long = format!("Europe/{}", "a".repeat(60));
        for bad in [
            "",
            "/",
            "Europe/",
            "../etc/passwd",
            "Europe/../x",
            "Asia/Tokyo<script>",
            "+09:00",
            long.as_str(),
        ] {
            assert!(TimeZoneName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn user_names_accept_the_documented_set_only() {
        for ok in ["admin", "jean.dupont", "ops-1", "a_b", "0day"] {
            assert!(UserName::parse(ok).is_ok(), "{ok} should be accepted");
        }
        for bad in ["", "Admin", "-x", "a b", "a;rm -rf", "é", &"x".repeat(65)] {
            assert!(UserName::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn cluster_names_are_dns_labels() {
        assert!(ClusterName::parse("lab").is_ok());
        assert!(ClusterName::parse("prod-eu-1").is_ok());
        for bad in ["", "Lab", "a.b", "-a", "a-", "a/b", &"a".repeat(64)] {
            assert!(
                ClusterName::parse(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn node_names_are_dns_subdomains() {
        for ok in [
            "betelgeuse",
            "worker-1",
            "ip-10-0-0-1.eu-west-1.compute.internal",
        ] {
            assert!(NodeName::parse(ok).is_ok(), "{ok} should be accepted");
        }
        for bad in [
            "",
            "Node1",
            "a..b",
            ".a",
            "a.",
            "a b",
            "a;reboot",
            "$(id)",
            &"a".repeat(254),
        ] {
            assert!(NodeName::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn messages_do_not_carry_control_characters() {
        let err = UserName::parse("bad\nname\x1b[31m")
            .unwrap_err()
            .to_string();
        assert!(!err.chars().any(char::is_control), "{err:?}");
    }
}
