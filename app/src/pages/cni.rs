//! A cluster's CNI page. The plugin view and install history come with the CNI workflow; this
//! page says so instead of showing nothing.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::PageHeader;
use crate::i18n::{Msg, t};

#[component]
pub fn CniPage() -> impl IntoView {
    let params = use_params_map();
    let title = move || {
        format!(
            "{} · {}",
            params.read().get("cluster").unwrap_or_default(),
            t(Msg::NavCni)
        )
    };
    view! {
        <PageHeader title=title()/>
        <p class="alert alert-info">{t(Msg::CniComing)}</p>
    }
}
