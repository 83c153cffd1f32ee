//! Grappe's user interface: the HTML shell, the routes, the pages and the server functions they
//! call. Compiled twice: with `ssr` into the server (pages rendered to HTML, server functions
//! run) and with `hydrate` into the browser's wasm (pages made interactive).
//!
//! Pages are readable without JavaScript: every route renders in `SsrMode::Async`, so the HTML
//! that arrives already holds the data.
// The CNI plan view nests deep enough for the hydrate build to need more than the default.
#![recursion_limit = "512"]

pub mod api;
pub mod error;
pub mod findings;
pub mod i18n;
mod live;
mod pages;
pub mod picture;
pub mod progress;
pub mod timeline;
pub mod when;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{SsrMode, path};

use crate::i18n::{Msg, t};

/// A per-response CSP nonce, put in the request by the server's security middleware and used by
/// the hydration scripts.
#[derive(Debug, Clone)]
pub struct CspNonce(pub String);

/// The HTML document around the app.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    provide_request_nonce();
    // One clock for the whole response: the page's relative times and the one hydration reads.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    provide_context(when::ServerNow(now));
    view! {
        <!DOCTYPE html>
        // No `lang` here: the login page and the layout set it to the reader's language
        // (leptos_meta writes it into this element before the first byte is sent).
        <html>
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name=when::NOW_META content=now.to_string()/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[cfg(feature = "ssr")]
fn provide_request_nonce() {
    let nonce = use_context::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<CspNonce>().cloned());
    if let Some(CspNonce(value)) = nonce {
        provide_context(leptos::nonce::Nonce::from_value(value));
    }
}

/// The application: routes and the authenticated layout.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    when::provide_clock();
    view! {
        <Stylesheet id="grappe" href="/pkg/grappe.css"/>
        <Title text="Grappe"/>
        <Router>
            <Routes fallback=pages::not_found::NotFound>
                <Route path=path!("/login") view=pages::login::LoginPage ssr=SsrMode::Async/>
                <ParentRoute path=path!("") view=pages::layout::Layout ssr=SsrMode::Async>
                    <Route path=path!("") view=pages::home::HomePage ssr=SsrMode::Async/>
                    <Route
                        path=path!("/c/:cluster/overview")
                        view=pages::overview::OverviewPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/c/:cluster/nodes")
                        view=pages::nodes::NodesPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/c/:cluster/nodes/:node")
                        view=pages::node::NodePage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/c/:cluster/bgp")
                        view=pages::bgp::BgpPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/c/:cluster/mtu")
                        view=pages::mtu::MtuPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/c/:cluster/ipam")
                        view=pages::ipam::IpamPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/c/:cluster/cni")
                        view=pages::cni::CniPage
                        ssr=SsrMode::Async
                    />
                    <Route path=path!("/runs/:id") view=pages::run::RunPage ssr=SsrMode::Async/>
                    <Route path=path!("/history") view=pages::history::HistoryPage ssr=SsrMode::Async/>
                    <Route
                        path=path!("/settings")
                        view=pages::settings::SettingsPage
                        ssr=SsrMode::Async
                    />
                </ParentRoute>
            </Routes>
        </Router>
    }
}

/// A heading and a one-line explanation, the top of most pages.
#[component]
fn PageHeader(title: String, #[prop(optional, into)] subtitle: Option<String>) -> impl IntoView {
    view! {
        <header class="page-header">
            <h1>{title}</h1>
            {subtitle.map(|s| view! { <p class="muted">{s}</p> })}
        </header>
    }
}

/// Shows an error from a server function in the reader's language.
#[component]
fn ErrorBox(error: error::AppError) -> impl IntoView {
    let text = error.describe(i18n::use_lang());
    view! {
        <div class="alert alert-error" role="alert">
            <strong>{t(Msg::Error)} ": "</strong>
            {text}
        </div>
    }
}
