//! Grappe's configuration: a TOML file, then `GRAPPE_*` variables (the input's lines after a
//! line `---`, as `NAME=VALUE`). Nothing may panic; what loads passes its own validation.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use grappe_server::config::Settings;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (file, env) = text.split_once("\n---\n").unwrap_or((text, ""));
    let env: HashMap<String, String> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let _ = Settings::parse(file, &env);
});
