//! The hydrate entry: the browser side of Grappe. Kept to a few lines on purpose; everything
//! else lives in the `app` crate.
//!
//! A panic while the page hydrates (the server's HTML and the browser's view disagree) leaves a
//! page that looks right but whose links and buttons do nothing, which on a recovery page is the
//! worst outcome: the page is then loaded again, once per address and 30 seconds, so a page that
//! always fails is not reloaded in a loop. `data-hydrated` is set on `<body>` only once the
//! hydration has gone through (the browser tests wait for it before they click).

use std::sync::atomic::{AtomicBool, Ordering};

/// Set once `hydrate_body` has returned: a later panic is not a hydration failure.
static HYDRATED: AtomicBool = AtomicBool::new(false);
/// Session storage key of the last reload after a failed hydration: "<ms since epoch> <url>".
const RELOADED: &str = "grappe-hydration-reload";
/// A page is reloaded at most once within this many milliseconds.
const RELOAD_EVERY_MS: f64 = 30_000.0;

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        if !HYDRATED.load(Ordering::Relaxed) {
            reload_once();
        }
    }));
    leptos::mount::hydrate_body(app::App);
    HYDRATED.store(true, Ordering::Relaxed);
    if let Some(body) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.body())
    {
        let _ = body.set_attribute("data-hydrated", "true");
    }
}

/// Loads the page again unless this address was reloaded for the same reason less than
/// [`RELOAD_EVERY_MS`] ago.
fn reload_once() {
    let Some(window) = web_sys::window() else {
        return;
    };
    let Ok(Some(storage)) = window.session_storage() else {
        return;
    };
    let here = window.location().href().unwrap_or_default();
    let now = js_sys::Date::now();
    if let Ok(Some(last)) = storage.get_item(RELOADED)
        && let Some((at, url)) = last.split_once(' ')
        && url == here
        && at.parse::<f64>().is_ok_and(|at| now - at < RELOAD_EVERY_MS)
    {
        return;
    }
    let _ = storage.set_item(RELOADED, &format!("{now} {here}"));
    let _ = window.location().reload();
}
