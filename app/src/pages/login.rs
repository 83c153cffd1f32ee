//! The login page: a plain HTML form posted to `/auth/login` (works without JavaScript). The
//! result comes back as a redirect, with `?error=` on failure.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::i18n::{Lang, Msg};

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let lang = move || {
        query
            .read()
            .get("lang")
            .and_then(|l| Lang::from_code(&l))
            .unwrap_or_default()
    };
    let message = move || {
        let q = query.read();
        let lang = lang();
        let (class, text) = match q.get("error").as_deref() {
            Some("invalid") => (
                "alert alert-error",
                Msg::InvalidCredentials.text(lang).to_owned(),
            ),
            Some("throttled") => {
                let retry = q
                    .get("retry")
                    .and_then(|r| r.parse::<u64>().ok())
                    .unwrap_or(0);
                (
                    "alert alert-error",
                    format!(
                        "{} {} {retry}",
                        Msg::Throttled.text(lang),
                        Msg::RetryIn.text(lang)
                    ),
                )
            }
            Some("busy") => ("alert alert-error", Msg::LoginBusy.text(lang).to_owned()),
            Some("session") => ("alert alert-info", Msg::SessionEnded.text(lang).to_owned()),
            Some("unavailable") => (
                "alert alert-error",
                Msg::LoginUnavailable.text(lang).to_owned(),
            ),
            Some("loggedout") => ("alert alert-info", Msg::LoggedOut.text(lang).to_owned()),
            _ => return None,
        };
        Some(view! { <div class=class role="alert" data-testid="login-message">{text}</div> })
    };
    let next = move || query.read().get("next").unwrap_or_default();
    let other_langs = move || {
        let current = lang();
        Lang::ALL
            .into_iter()
            .filter(move |l| *l != current)
            .map(|l| view! { <a href=format!("/login?lang={}", l.code())>{l.native_name()}</a> })
            .collect_view()
    };
    view! {
        <leptos_meta::Html attr:lang=move || lang().code()/>
        <main class="login">
            <form class="card login-card" method="post" action="/auth/login">
                <h1>"Grappe"</h1>
                <p class="muted">{move || Msg::AppTagline.text(lang())}</p>
                {message}
                <label>
                    <span>{move || Msg::Username.text(lang())}</span>
                    <input
                        type="text"
                        name="username"
                        autocomplete="username"
                        autocapitalize="none"
                        required
                        autofocus
                    />
                </label>
                <label>
                    <span>{move || Msg::Password.text(lang())}</span>
                    <input type="password" name="password" autocomplete="current-password" required/>
                </label>
                <input type="hidden" name="next" value=next/>
                <input type="hidden" name="lang" value=move || lang().code()/>
                <button type="submit" class="btn btn-primary" data-testid="login-submit">
                    {move || Msg::LogIn.text(lang())}
                </button>
                <p class="small">{other_langs}</p>
            </form>
        </main>
    }
}
