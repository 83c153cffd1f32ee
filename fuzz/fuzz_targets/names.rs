//! Names and addresses parsed at the edge: cluster, node and user names, CIDRs, the public
//! URL's origin, durations, the post-login target. Nothing may panic; what is accepted reads
//! back as itself, and a post-login target stays a path of this site.
#![no_main]

use grappe_engine::names::{ClusterName, NodeName, UserName};
use grappe_engine::net::Cidr;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(n) = ClusterName::parse(text) {
        assert_eq!(n.as_str(), text);
    }
    if let Ok(n) = NodeName::parse(text) {
        assert_eq!(n.as_str(), text);
    }
    if let Ok(n) = UserName::parse(text) {
        assert_eq!(n.as_str(), text);
    }
    if let Ok(c) = text.parse::<Cidr>() {
        assert_eq!(c.to_string().parse::<Cidr>().ok(), Some(c), "{text}");
    }
    let _ = grappe_server::config::public_origin(text);
    let _ = grappe_server::config::parse_duration(text);
    let next = grappe_server::http::safe_next(Some(text));
    assert!(next.starts_with('/'), "{next}");
    assert!(!next.starts_with("//") && !next.starts_with("/\\"), "{next}");
    assert!(!next.chars().any(char::is_control), "{next:?}");
});
