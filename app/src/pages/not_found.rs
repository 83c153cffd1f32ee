//! The 404 page.

use leptos::prelude::*;

use crate::i18n::{Msg, t};

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <leptos_meta::Html attr:lang=crate::i18n::use_lang().code()/>
        <main class="content">
            <h1>"404"</h1>
            <p>{t(Msg::NotFound)}</p>
            <p><a href="/">"Grappe"</a></p>
        </main>
    }
}
