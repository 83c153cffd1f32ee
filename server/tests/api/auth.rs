//! Login, logout, session lifetime and throttling.

use std::time::Duration;

use grappe_engine::Caller;
use grappe_engine::names::UserName;
use grappe_engine::users::Role;
use reqwest::StatusCode;

use crate::helpers::{
    location, session_cookie, set_cookie_header, settings_for, spawn_app, spawn_with,
};

#[tokio::test]
async fn login_succeeds_with_a_hardened_session_cookie() {
    let app = spawn_app().await;
    let password = app.add_user("alice", Role::Admin).await;

    let res = app.post_login("alice", &password, None).await;

    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/history");
    let cookie = set_cookie_header(res.headers()).expect("Set-Cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    let session = session_cookie(res.headers()).expect("value");
    assert!(
        session.len() >= 22,
        "session ids carry at least 128 bits: {session}"
    );
    assert_eq!(
        app.get("/history", Some(&session)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_session_id_changes_at_login() {
    let app = spawn_app().await;
    let password = app.add_user("alice", Role::Viewer).await;
    let first = app.login("alice", &password).await;

    // Logging in again while presenting the old id yields a new id, and the old one dies.
    let res = app.post_login("alice", &password, Some(&first)).await;
    let second = session_cookie(res.headers()).expect("new cookie");
    assert_ne!(first, second);
    assert_eq!(
        app.get("/history", Some(&second)).await.status(),
        StatusCode::OK
    );
    let old = app.get("/history", Some(&first)).await;
    assert_eq!(old.status(), StatusCode::SEE_OTHER);

    // A planted id never becomes authenticated either.
    let planted = "AAAAAAAAAAAAAAAAAAAAAA";
    let res = app.post_login("alice", &password, Some(planted)).await;
    assert_ne!(session_cookie(res.headers()).as_deref(), Some(planted));
}

/// A copy of the database holds no cookie that would sign in: sessions are stored under a
/// digest of their id.
#[tokio::test]
async fn the_database_holds_no_session_id() {
    let app = spawn_app().await;
    let password = app.add_user("alice", Role::Viewer).await;
    let cookie = app.login("alice", &password).await;
    let pool = app.engine.store.pool();
    let stored: Vec<String> = sqlx::query_scalar("SELECT id FROM sessions")
        .fetch_all(pool)
        .await
        .expect("sessions");
    let linked: Vec<String> = sqlx::query_scalar("SELECT session_id FROM user_sessions")
        .fetch_all(pool)
        .await
        .expect("user_sessions");
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored, linked, "the link names the stored key");
    assert_ne!(stored[0], cookie, "the cookie is not stored");
    // The stored key presented as a cookie signs nobody in.
    assert_eq!(
        app.get("/history", Some(&stored[0])).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        app.get("/history", Some(&cookie)).await.status(),
        StatusCode::OK
    );
}

/// Whoever knew the old password is signed out when it changes (`grappe user passwd`).
#[tokio::test]
async fn a_password_change_ends_the_users_sessions() {
    let app = spawn_app().await;
    let password = app.add_user("alice", Role::Viewer).await;
    let bob = app.add_user("bob", Role::Viewer).await;
    let laptop = app.login("alice", &password).await;
    let phone = app.login("alice", &password).await;
    let other = app.login("bob", &bob).await;
    let caller = Caller::cli("ops");
    let ended = app
        .engine
        .users
        .set_password(
            &caller,
            &UserName::parse("alice").expect("name"),
            &grappe_engine::auth::Password::new("a brand new passphrase".to_owned()),
        )
        .await
        .expect("passwd");
    assert_eq!(ended, 2);
    for cookie in [&laptop, &phone] {
        assert_eq!(
            app.get("/history", Some(cookie)).await.status(),
            StatusCode::SEE_OTHER
        );
    }
    assert_eq!(
        app.get("/history", Some(&other)).await.status(),
        StatusCode::OK
    );
    app.login("alice", "a brand new passphrase").await;
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let app = spawn_app().await;
    app.add_user("alice", Role::Viewer).await;

    let wrong = app.post_login("alice", "not-the-password", None).await;
    let unknown = app.post_login("nobody", "not-the-password", None).await;

    for res in [&wrong, &unknown] {
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert!(
            location(res).starts_with("/login?error=invalid"),
            "{}",
            location(res)
        );
        assert!(
            session_cookie(res.headers()).is_none(),
            "no session on failure"
        );
    }
    let records = app.audit_records("auth.login").await;
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.outcome.as_str() == "failure"));
    assert!(records.iter().any(|r| r.details.contains("unknown_user")));
    assert!(records.iter().any(|r| r.details.contains("wrong_password")));
}

#[tokio::test]
async fn repeated_failures_throttle_the_account_even_across_a_restart() {
    let app = spawn_app().await;
    let password = app.add_user("alice", Role::Viewer).await;
    for _ in 0..5 {
        let res = app.post_login("alice", "guess", None).await;
        assert!(location(&res).starts_with("/login?error=invalid"));
    }

    // The right password is refused while throttled.
    let res = app.post_login("alice", &password, None).await;
    assert!(
        location(&res).starts_with("/login?error=throttled&retry="),
        "{}",
        location(&res)
    );
    assert!(session_cookie(res.headers()).is_none());

    // Throttling is persisted: a restarted server still refuses.
    let app = app.restart().await;
    let res = app.post_login("alice", &password, None).await;
    assert!(
        location(&res).starts_with("/login?error=throttled"),
        "{}",
        location(&res)
    );

    // The source address is throttled too: bob, from the same address, waits as well. A forged
    // X-Forwarded-For does not help (it is only trusted behind a configured proxy).
    let bob = app.add_user("bob", Role::Viewer).await;
    let res = app
        .client
        .post(format!("{}/auth/login", app.base))
        .header("origin", app.origin())
        .header("x-forwarded-for", "192.0.2.50")
        .form(&[("username", "bob"), ("password", bob.as_str())])
        .send()
        .await
        .expect("login");
    assert!(
        location(&res).starts_with("/login?error=throttled"),
        "{}",
        location(&res)
    );
}

/// OWASP's device cookies: strangers guessing alice's password lock strangers out, not the
/// browser alice signed in with before (before them, her right password answered
/// `retry=898` during the whole incident).
#[tokio::test]
async fn a_browser_that_signed_in_before_is_not_locked_out_by_strangers() {
    let app = spawn_app().await;
    let password = app.add_user("alice", Role::Admin).await;
    let res = app.post_login("alice", &password, None).await;
    let device = res
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("grappe_device="))
        .expect("a device cookie at login")
        .to_owned();
    assert!(
        device.contains("HttpOnly") && device.contains("SameSite=Strict"),
        "{device}"
    );
    let device = device
        .split(';')
        .next()
        .and_then(|p| p.split_once('='))
        .map(|(_, v)| v.to_owned())
        .expect("value");
    let with_device = |password: String, device: String| {
        app.client
            .post(format!("{}/auth/login", app.base))
            .header("origin", app.origin())
            .header("sec-fetch-site", "same-origin")
            .header("cookie", format!("grappe_device={device}"))
            .form(&[("username", "alice".to_owned()), ("password", password)])
            .send()
    };

    // A stranger's burst (same address: the tests all come from 127.0.0.1).
    for _ in 0..8 {
        app.post_login("alice", "guess-guess-guess", None).await;
    }
    let res = app.post_login("alice", &password, None).await;
    assert!(
        location(&res).starts_with("/login?error=throttled"),
        "strangers stay throttled: {}",
        location(&res)
    );
    // Alice's browser signs in all the same.
    let res = with_device(password.clone(), device.clone())
        .await
        .expect("login");
    assert_eq!(location(&res), "/", "{}", location(&res));
    assert!(session_cookie(res.headers()).is_some());

    // A device cookie is worth its own failures only: guessing with it is throttled too.
    for _ in 0..5 {
        with_device("guess-guess-guess".into(), device.clone())
            .await
            .expect("login");
    }
    let res = with_device(password.clone(), device.clone())
        .await
        .expect("login");
    assert!(
        location(&res).starts_with("/login?error=throttled"),
        "{}",
        location(&res)
    );
    // A made-up device cookie is a stranger's.
    let res = with_device(password, "made-up".into())
        .await
        .expect("login");
    assert!(location(&res).starts_with("/login?error=throttled"));
}

#[tokio::test]
async fn a_disabled_users_session_is_refused() {
    let app = spawn_app().await;
    let password = app.add_user("bob", Role::Operator).await;
    let cookie = app.login("bob", &password).await;
    assert_eq!(
        app.get("/history", Some(&cookie)).await.status(),
        StatusCode::OK
    );

    app.engine
        .users
        .disable(&Caller::cli("test"), &UserName::parse("bob").expect("name"))
        .await
        .expect("disable");

    let res = app.get("/history", Some(&cookie)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(location(&res).starts_with("/login"));
    // And bob cannot log in again.
    let res = app.post_login("bob", &password, None).await;
    assert!(location(&res).starts_with("/login?error=invalid"));
}

#[tokio::test]
async fn logout_ends_the_session_and_is_audited() {
    let app = spawn_app().await;
    let password = app.add_user("alice", Role::Viewer).await;
    let cookie = app.login("alice", &password).await;

    let res = app
        .client
        .post(format!("{}/auth/logout", app.base))
        .header("origin", app.origin())
        .header("cookie", format!("grappe_session={cookie}"))
        .send()
        .await
        .expect("logout");
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/login?error=loggedout");
    assert_eq!(
        app.get("/history", Some(&cookie)).await.status(),
        StatusCode::SEE_OTHER
    );
    let logouts = app.audit_records("auth.logout").await;
    assert_eq!(logouts.len(), 1);
    assert_eq!(logouts[0].actor, "alice");
}

#[tokio::test]
async fn sessions_end_after_the_absolute_lifetime() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = settings_for(dir.path().join("grappe.db"));
    settings.session.absolute_lifetime = Duration::from_secs(2);
    settings.session.idle_timeout = Duration::from_secs(2);
    let app = spawn_with(settings).await;
    let password = app.add_user("alice", Role::Viewer).await;
    let cookie = app.login("alice", &password).await;
    assert_eq!(
        app.get("/history", Some(&cookie)).await.status(),
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        app.get("/history", Some(&cookie)).await.status(),
        StatusCode::SEE_OTHER
    );
    drop(dir);
}

#[tokio::test]
async fn sessions_end_after_the_idle_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = settings_for(dir.path().join("grappe.db"));
    settings.session.idle_timeout = Duration::from_secs(2);
    let app = spawn_with(settings).await;
    let password = app.add_user("alice", Role::Viewer).await;
    let cookie = app.login("alice", &password).await;
    // Activity keeps it alive...
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        assert_eq!(
            app.get("/history", Some(&cookie)).await.status(),
            StatusCode::OK
        );
    }
    // ...idleness ends it.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        app.get("/history", Some(&cookie)).await.status(),
        StatusCode::SEE_OTHER
    );
    drop(dir);
}

#[tokio::test]
async fn an_oversized_login_is_refused_before_any_password_is_hashed() {
    let app = spawn_app().await;
    let password = app.add_user("alice", Role::Admin).await;

    // A 64 KiB password: the body is over the login's limit and never read.
    let huge = "x".repeat(64 * 1024);
    let res = app.post_login("alice", &huge, None).await;
    assert_ne!(res.status(), StatusCode::OK);
    assert!(
        !location(&res).starts_with("/history"),
        "{}",
        location(&res)
    );
    // A 4 KiB one fits the body but not the password's length: wrong, and not hashed.
    let long = "y".repeat(4 * 1024);
    let res = app.post_login("alice", &long, None).await;
    assert!(
        location(&res).contains("error=invalid"),
        "{}",
        location(&res)
    );
    let logins = app.audit_records("auth.login").await;
    let wrong = logins
        .iter()
        .filter(|r| r.details.contains("wrong_password"))
        .count();
    assert_eq!(
        wrong, 1,
        "the 4 KiB password counts as a failure: {logins:?}"
    );
    // The account still works.
    let res = app.post_login("alice", &password, None).await;
    assert_eq!(location(&res), "/history");
}

#[tokio::test]
async fn a_burst_of_wrong_passwords_is_counted_before_any_is_verified() {
    let app = spawn_app().await;
    app.add_user("alice", Role::Admin).await;

    // 40 wrong passwords at once: each is counted before it is verified, so no more than the
    // threshold (5) reach argon2; the others are throttled or told the server is busy.
    let attempts = (0..40).map(|i| {
        let app = &app;
        async move {
            app.post_login("alice", &format!("wrong-password-{i}"), None)
                .await
        }
    });
    let answers = futures::future::join_all(attempts).await;
    let busy = answers
        .iter()
        .filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS)
        .count();
    let logins = app.audit_records("auth.login").await;
    let verified = logins
        .iter()
        .filter(|r| r.details.contains("wrong_password"))
        .count();
    let throttled = answers
        .iter()
        .filter(|r| location(r).starts_with("/login?error=throttled"))
        .count();
    assert!(verified <= 5, "{verified} wrong passwords were verified");
    assert_eq!(
        verified + throttled + busy,
        40,
        "every attempt answered once"
    );
    // The refused attempts are one record (a minute), not one permanent row each.
    let recorded = logins
        .iter()
        .filter(|r| r.details.contains("throttled"))
        .count();
    assert!(throttled > 1, "{throttled} throttled");
    assert_eq!(
        recorded, 1,
        "{recorded} records of {throttled} throttled attempts"
    );
}
