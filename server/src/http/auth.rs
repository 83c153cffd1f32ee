//! `POST /auth/login` and `POST /auth/logout`: plain form posts that answer with redirects, so
//! they work without JavaScript. The engine decides and audits; this module handles the session
//! (new id at login, flushed at logout) and the redirects.

use axum::Form;
use axum::extract::{FromRequest, Request, State};
use axum::response::{IntoResponse, Redirect, Response};
use grappe_engine::auth::{LoginOutcome, Password, Principal};
use grappe_engine::time::now;
use serde::Deserialize;
use tower_sessions::Session;

use super::session_store::stored_key;
use super::{caller_from_request, keys, safe_next};
use crate::state::AppState;
use app::api::history::encode_component;

/// The login form as posted.
#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
    lang: Option<String>,
}

impl LoginForm {
    /// What the handler takes from a form before it asks the engine: the name as a user name
    /// (if it is one) and where to go after the login (a path of this site).
    pub fn checked(&self) -> (Option<grappe_engine::names::UserName>, String) {
        (
            grappe_engine::names::UserName::parse(&self.username).ok(),
            safe_next(self.next.as_deref()),
        )
    }
}

fn login_page(error: &str, form_next: Option<&str>, lang: Option<&str>, extra: &str) -> Redirect {
    let mut url = format!("/login?error={error}{extra}");
    if let Some(next) = form_next.filter(|n| !n.is_empty()) {
        url.push_str(&format!("&next={}", encode_component(next)));
    }
    if let Some(lang) = lang.filter(|l| matches!(*l, "en" | "fr")) {
        url.push_str(&format!("&lang={lang}"));
    }
    Redirect::to(&url)
}

/// The device cookie's name: a browser that signed in is remembered, and its later logins are
/// throttled on its own failures only (see `Authenticator::login`).
fn device_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-grappe_device"
    } else {
        "grappe_device"
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// The `Set-Cookie` value remembering this browser (90 days, sent only to this site).
fn device_cookie(secure: bool, token: &str) -> Option<http::HeaderValue> {
    let max_age = grappe_engine::auth::DEVICE_LIFETIME.as_secs();
    let name = device_cookie_name(secure);
    let flag = if secure { "; Secure" } else { "" };
    http::HeaderValue::from_str(&format!(
        "{name}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{flag}"
    ))
    .ok()
}

#[tracing::instrument(name = "POST /auth/login", skip_all)]
pub async fn login(State(state): State<AppState>, session: Session, req: Request) -> Response {
    let caller = caller_from_request(&req, "anonymous", &state.settings.trusted_proxies);
    let secure = state.settings.secure_cookies;
    let device = cookie(req.headers(), device_cookie_name(secure)).map(str::to_owned);
    let Ok(Form(form)) = Form::<LoginForm>::from_request(req, &()).await else {
        return login_page("invalid", None, None, "").into_response();
    };
    let password = Password::new(form.password);
    let lang = form.lang.as_deref();
    let outcome = state
        .engine
        .auth
        .login(&caller, &form.username, &password, device.as_deref())
        .await;
    match outcome {
        Ok(LoginOutcome::Success(user)) => {
            // A new session id at login: a planted id never becomes an authenticated one.
            let started = async {
                session.cycle_id().await?;
                session.insert(keys::USER_ID, user.id.0).await?;
                session.insert(keys::LOGIN_AT, now().to_string()).await?;
                session.save().await?;
                Ok::<_, tower_sessions::session::Error>(session.id())
            };
            match started.await {
                Ok(Some(id)) => {
                    if let Err(e) = state
                        .engine
                        .auth
                        .link_session(&stored_key(id).to_string(), &user)
                        .await
                    {
                        tracing::error!(error = %grappe_engine::audit::error_chain(&e), "cannot link session to user");
                        let _ = session.flush().await;
                        return login_page("unavailable", form.next.as_deref(), lang, "")
                            .into_response();
                    }
                    let mut res = Redirect::to(&safe_next(form.next.as_deref())).into_response();
                    match state.engine.auth.remember_device(user.id).await {
                        Ok(token) => {
                            if let Some(value) = device_cookie(secure, &token) {
                                res.headers_mut().append(http::header::SET_COOKIE, value);
                            }
                        }
                        // Signing in matters more than being remembered.
                        Err(e) => {
                            tracing::warn!(error = %grappe_engine::audit::error_chain(&e), "cannot remember the browser");
                        }
                    }
                    res
                }
                Ok(None) | Err(_) => {
                    tracing::error!("cannot start a session");
                    login_page("unavailable", form.next.as_deref(), lang, "").into_response()
                }
            }
        }
        Ok(LoginOutcome::Invalid) => {
            login_page("invalid", form.next.as_deref(), lang, "").into_response()
        }
        Ok(LoginOutcome::Busy) => {
            let mut res = login_page("busy", form.next.as_deref(), lang, "").into_response();
            *res.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
            res.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("1"),
            );
            res
        }
        Ok(LoginOutcome::Throttled { retry_after }) => login_page(
            "throttled",
            form.next.as_deref(),
            lang,
            &format!("&retry={}", retry_after.as_secs().max(1)),
        )
        .into_response(),
        Err(e) => {
            tracing::error!(error = %grappe_engine::audit::error_chain(&e), "login failed");
            login_page("unavailable", form.next.as_deref(), lang, "").into_response()
        }
    }
}

#[tracing::instrument(name = "POST /auth/logout", skip_all)]
pub async fn logout(State(state): State<AppState>, session: Session, req: Request) -> Response {
    if let Some(principal) = req.extensions().get::<Principal>() {
        let id = session.id().map(|i| stored_key(i).to_string());
        if let Err(e) = state
            .engine
            .auth
            .logout(&principal.caller, id.as_deref())
            .await
        {
            // Ending the session matters more than recording it; say so in the log.
            tracing::error!(error = %grappe_engine::audit::error_chain(&e), "logout not recorded");
        }
    }
    if let Err(e) = session.flush().await {
        tracing::error!(error = %e, "cannot end the session");
    }
    Redirect::to("/login?error=loggedout").into_response()
}
