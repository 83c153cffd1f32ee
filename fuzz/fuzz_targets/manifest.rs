//! A manifest as a user pastes it (any text, at most the engine's 5 MiB): parsed into objects,
//! the install's options applied to them. Nothing may panic; each object keeps a kind and a
//! name.
#![no_main]

use grappe_engine::manifests::parse::{CalicoOptions, apply_calico_options, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut objects) = parse(text) else {
        return;
    };
    for o in &objects {
        assert!(!o.kind.is_empty() && !o.name.is_empty(), "{o:?}");
    }
    let options = CalicoOptions {
        ipv4pool_cidr: "10.244.0.0/16".parse().ok(),
        ip_autodetection_method: Some("interface=eth0".into()),
    };
    let _ = apply_calico_options(&mut objects, &options);
});
