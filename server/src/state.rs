//! What the axum handlers and middleware share: the engine, the settings, Leptos' options. A
//! leaf of the server crate: the HTTP layer and the startup both import it.

use std::sync::Arc;

use grappe_engine::Engine;
use leptos::config::LeptosOptions;

use crate::config::Settings;

/// State shared by the axum handlers and middleware.
#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub settings: Arc<Settings>,
    pub leptos_options: LeptosOptions,
    /// The live event streams open per session.
    pub live_streams: crate::streams::Streams,
}

impl axum::extract::FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
