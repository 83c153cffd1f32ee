//! The hydrate entry: the browser side of Grappe. Kept to a few lines on purpose; everything
//! else lives in the `app` crate.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
