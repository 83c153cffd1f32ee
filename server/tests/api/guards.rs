//! What every request goes through: the session guard (enumerated over every route and server
//! function), roles, cross-site refusal and security headers.

use reqwest::StatusCode;
use reqwest::header::COOKIE;

use crate::helpers::{SESSION_COOKIE, location, settings_for, spawn_app, spawn_with};
use grappe_engine::users::Role;
use grappe_server::startup::EXTRA_ROUTES;

/// The only paths reachable without a session.
const PUBLIC: &[&str] = &["/login", "/auth/login", "/auth/logout", "/healthz"];

fn concrete(path: &str) -> String {
    path.replace("{cluster}", "lab")
        .replace(":cluster", "lab")
        .replace(":node", "rigel")
}

#[tokio::test]
async fn every_page_and_route_needs_a_session() {
    let app = spawn_app().await;
    assert!(app.page_paths.len() >= 7, "routes: {:?}", app.page_paths);
    let mut checked = 0;
    for path in &app.page_paths {
        let path = concrete(path);
        if PUBLIC.contains(&path.as_str()) {
            continue;
        }
        let res = app.get(&path, None).await;
        assert_eq!(
            res.status(),
            StatusCode::SEE_OTHER,
            "GET {path} without a session"
        );
        assert!(
            location(&res).starts_with("/login?next="),
            "GET {path} → {}",
            location(&res)
        );
        checked += 1;
    }
    for (method, path) in EXTRA_ROUTES {
        if PUBLIC.contains(path) {
            continue;
        }
        let res = if *method == "GET" {
            app.get(path, None).await
        } else {
            app.call(path, None, &[]).await
        };
        assert!(
            matches!(
                res.status(),
                StatusCode::SEE_OTHER | StatusCode::UNAUTHORIZED
            ),
            "{method} {path} without a session answered {}",
            res.status()
        );
        checked += 1;
    }
    // Unknown paths do not reveal anything either.
    let res = app.get("/no/such/page", None).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(checked >= 7);
}

#[tokio::test]
async fn every_server_function_needs_a_session() {
    let app = spawn_app().await;
    let fns: Vec<_> = server_fn::axum::server_fn_paths().collect();
    assert!(fns.len() >= 8, "server functions: {fns:?}");
    for (path, method) in fns {
        assert_eq!(
            method,
            http::Method::POST,
            "{path}: state must not change through GET"
        );
        let res = app.call(path, None, &[]).await;
        assert_eq!(
            res.status(),
            StatusCode::UNAUTHORIZED,
            "POST {path} without a session"
        );
        let body = res.text().await.expect("body");
        assert_eq!(body, "\"Unauthenticated\"", "{path}");
    }
}

#[tokio::test]
async fn a_viewer_cannot_call_admin_server_functions() {
    let app = spawn_app().await;
    let viewer = app.add_user("vera", Role::Viewer).await;
    let admin = app.add_user("ada", Role::Admin).await;
    let viewer_cookie = app.login("vera", &viewer).await;
    let admin_cookie = app.login("ada", &admin).await;

    for (path, form) in [
        ("/api/list_users", vec![]),
        ("/api/add_user", vec![("name", "eve"), ("role", "admin")]),
        (
            "/api/set_user_role",
            vec![("name", "vera"), ("role", "admin")],
        ),
        (
            "/api/set_user_disabled",
            vec![("name", "ada"), ("disabled", "true")],
        ),
    ] {
        let res = app.call(path, Some(&viewer_cookie), &form).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "viewer calling {path}");
    }
    // Nothing changed: vera is still a viewer, eve does not exist, ada is enabled.
    let users = app.engine.users.list().await.expect("users");
    assert_eq!(users.len(), 2);
    assert!(users.iter().all(|u| !u.disabled));
    assert!(
        users
            .iter()
            .any(|u| u.name.as_str() == "vera" && u.role == Role::Viewer)
    );

    // An admin can.
    let res = app.call("/api/list_users", Some(&admin_cookie), &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.text().await.expect("body");
    assert!(body.contains("\"vera\""), "{body}");
    let res = app
        .call(
            "/api/set_user_role",
            Some(&admin_cookie),
            &[("name", "vera"), ("role", "operator")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let vera = app
        .engine
        .users
        .by_name(&grappe_engine::names::UserName::parse("vera").expect("name"))
        .await
        .expect("get")
        .expect("vera");
    assert_eq!(vera.role, Role::Operator);
}

#[tokio::test]
async fn cross_site_requests_are_refused() {
    let app = spawn_app().await;
    let password = app.add_user("alice", Role::Admin).await;
    let cookie = app.login("alice", &password).await;

    // A form posted from another site (Origin), even with a valid session cookie.
    let res = app
        .client
        .post(format!("{}/api/set_user_disabled", app.base))
        .header("origin", "https://evil.example")
        .header("cookie", format!("grappe_session={cookie}"))
        .form(&[("name", "alice"), ("disabled", "true")])
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // Fetch metadata says cross-site.
    let res = app
        .client
        .post(format!("{}/auth/login", app.base))
        .header("origin", app.origin())
        .header("sec-fetch-site", "cross-site")
        .form(&[("username", "alice"), ("password", password.as_str())])
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // Neither header: refused as well.
    let res = app
        .client
        .post(format!("{}/auth/login", app.base))
        .form(&[("username", "alice"), ("password", password.as_str())])
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // Nothing happened.
    assert!(
        app.engine
            .users
            .list()
            .await
            .expect("users")
            .iter()
            .all(|u| !u.disabled)
    );
}

/// DNS rebinding: a page of `evil.example` whose name now resolves to Grappe's address sends
/// `Host` and `Origin` that agree with each other; the request is refused for its host name.
#[tokio::test]
async fn a_request_for_a_foreign_host_name_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = settings_for(dir.path().join("grappe.db"));
    settings.public_url = Some("https://grappe.example.org".to_owned());
    let app = spawn_with(settings).await;
    let password = app.add_user("alice", Role::Admin).await;
    app.add_user("bob", Role::Viewer).await;
    let cookie = app.login("alice", &password).await;
    let port = app.base.rsplit(':').next().expect("port").to_owned();

    let post_as = |host: String| {
        app.client
            .post(format!("{}/api/set_user_disabled", app.base))
            .header("host", host.clone())
            .header("origin", format!("http://{host}"))
            .header("sec-fetch-site", "same-origin")
            .header("cookie", format!("grappe_session={cookie}"))
            .form(&[("name", "bob"), ("disabled", "true")])
            .send()
    };
    let res = post_as(format!("evil.example:{port}"))
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::MISDIRECTED_REQUEST);
    let res = app
        .client
        .get(format!("{}/login", app.base))
        .header("host", format!("evil.example:{port}"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::MISDIRECTED_REQUEST);
    assert!(
        app.engine
            .users
            .list()
            .await
            .expect("users")
            .iter()
            .all(|u| !u.disabled),
        "nothing happened"
    );
    // Health probes name whatever they like.
    let res = app
        .client
        .get(format!("{}/healthz", app.base))
        .header("host", "grappe.svc.cluster.local")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::OK);
    // The public name is answered, and its origin may post.
    let res = app
        .client
        .get(format!("{}/login", app.base))
        .header("host", "grappe.example.org")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .client
        .post(format!("{}/api/set_user_disabled", app.base))
        .header("host", format!("127.0.0.1:{port}"))
        .header("origin", "https://grappe.example.org")
        .header("cookie", format!("grappe_session={cookie}"))
        .form(&[("name", "bob"), ("disabled", "true")])
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::OK, "the public origin may post");
    assert!(
        app.engine
            .users
            .list()
            .await
            .expect("users")
            .iter()
            .any(|u| u.disabled),
        "bob is disabled through the public origin"
    );
}

/// Changing who may do what (users, host keys, approvals) asks for the password again when the
/// login is not recent, as run starts do (`reauth_after = 0s`: every time).
#[tokio::test]
async fn user_changes_ask_for_the_password_again_when_the_login_is_not_recent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = settings_for(dir.path().join("grappe.db"));
    settings.session.reauth_after = std::time::Duration::ZERO;
    let app = spawn_with(settings).await;
    let password = app.add_user("alice", Role::Admin).await;
    app.add_user("bob", Role::Viewer).await;
    let cookie = app.login("alice", &password).await;
    let bob_disabled = async || {
        app.engine
            .users
            .list()
            .await
            .expect("users")
            .iter()
            .any(|u| u.name.as_str() == "bob" && u.disabled)
    };
    for form in [
        vec![("name", "bob"), ("disabled", "true")],
        vec![
            ("name", "bob"),
            ("disabled", "true"),
            ("password", "wrong-wrong-wrong"),
        ],
    ] {
        let res = app
            .call("/api/set_user_disabled", Some(&cookie), &form)
            .await;
        let body = res.text().await.expect("body");
        assert!(body.contains("password"), "{body}");
        assert!(!bob_disabled().await, "bob disabled without the password");
    }
    let res = app
        .call(
            "/api/add_user",
            Some(&cookie),
            &[("name", "eve"), ("role", "admin")],
        )
        .await;
    assert_ne!(
        res.status(),
        StatusCode::OK,
        "an admin added without the password"
    );
    let res = app
        .call(
            "/api/set_user_disabled",
            Some(&cookie),
            &[
                ("name", "bob"),
                ("disabled", "true"),
                ("password", &password),
            ],
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap_or_default()
    );
    assert!(bob_disabled().await);
}

#[tokio::test]
async fn security_headers_are_on_every_response() {
    let app = spawn_app().await;
    let password = app.add_user("alice", Role::Viewer).await;
    let cookie = app.login("alice", &password).await;
    for (path, cookie) in [
        ("/login", None),
        ("/healthz", None),
        ("/history", Some(cookie.as_str())),
        ("/no/such/page", Some(cookie.as_str())),
        ("/history", None),
    ] {
        let res = app.get(path, cookie).await;
        let h = res.headers();
        let csp = h
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{path}: no CSP"));
        for directive in [
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "script-src 'self' 'nonce-",
        ] {
            assert!(
                csp.contains(directive),
                "{path}: CSP {csp} lacks {directive}"
            );
        }
        assert_eq!(
            h.get("x-content-type-options").map(|v| v.as_bytes()),
            Some(&b"nosniff"[..]),
            "{path}"
        );
        assert!(
            h.get("referrer-policy").is_some(),
            "{path}: Referrer-Policy"
        );
    }
}

/// A release build's precompressed copy of an asset (`build_release`: `.br` and `.gz` beside it)
/// is sent as it is, not compressed a second time; without one the asset is compressed per
/// request.
#[tokio::test]
async fn precompressed_assets_are_sent_as_they_are() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pkg = dir.path().join("site/pkg");
    std::fs::create_dir_all(&pkg).expect("pkg");
    let script = "console.log('grappe');\n".repeat(200);
    std::fs::write(pkg.join("grappe.js"), &script).expect("script");
    std::fs::write(pkg.join("grappe.js.br"), b"the build's brotli copy").expect("copy");
    let mut settings = settings_for(dir.path().join("grappe.db"));
    settings.site_root = dir.path().join("site");
    let app = spawn_with(settings).await;
    let fetch = async |encoding: &str| {
        let res = app
            .client
            .get(format!("{}/pkg/grappe.js", app.base))
            .header("accept-encoding", encoding)
            .send()
            .await
            .expect("asset");
        assert_eq!(res.status(), StatusCode::OK, "{encoding}");
        let header = res
            .headers()
            .get("content-encoding")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (header, res.bytes().await.expect("body").to_vec())
    };
    let (encoding, body) = fetch("br").await;
    assert_eq!(encoding.as_deref(), Some("br"));
    assert_eq!(body, b"the build's brotli copy");
    // No gzip copy: compressed per request.
    let (encoding, body) = fetch("gzip").await;
    assert_eq!(encoding.as_deref(), Some("gzip"));
    assert!(body.len() * 4 < script.len(), "{} bytes", body.len());
    let (encoding, body) = fetch("identity").await;
    assert_eq!(encoding, None);
    assert_eq!(body, script.as_bytes());
}

/// Pages (and the wasm, the script, the styles) travel compressed as the browser accepts;
/// event streams do not (a compressor would hold their events back).
#[tokio::test]
async fn responses_are_compressed_as_accepted_and_event_streams_are_not() {
    let app = spawn_app().await;
    let password = app.add_user("alice", Role::Viewer).await;
    let cookie = app.login("alice", &password).await;
    let fetch = |path: &'static str, encoding: &'static str| {
        let req = app
            .client
            .get(format!("{}{path}", app.base))
            .header(COOKIE, format!("{SESSION_COOKIE}={cookie}"))
            .header("accept-encoding", encoding);
        async move { req.send().await.expect(path) }
    };
    let plain = fetch("/history", "identity").await;
    assert_eq!(plain.headers().get("content-encoding"), None);
    let plain = plain.bytes().await.expect("body").len();
    for encoding in ["br", "gzip"] {
        let res = fetch("/history", encoding).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers()
                .get("content-encoding")
                .and_then(|v| v.to_str().ok()),
            Some(encoding)
        );
        let packed = res.bytes().await.expect("body").len();
        assert!(
            packed * 2 < plain,
            "{encoding}: {packed} bytes against {plain}"
        );
    }
    let mut stream = fetch("/live-runs", "br, gzip").await;
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(stream.headers().get("content-encoding"), None);
    // Its first event arrives as it is sent, readable.
    let first = tokio::time::timeout(std::time::Duration::from_secs(5), stream.chunk())
        .await
        .expect("an event at once")
        .expect("chunk")
        .expect("data");
    assert!(
        String::from_utf8_lossy(&first).contains("event: changed"),
        "{first:?}"
    );
}

#[tokio::test]
async fn pages_carry_their_nonce_on_every_inline_script() {
    let app = spawn_app().await;
    let res = app.get("/login", None).await;
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .expect("nonce")
        .to_owned();
    let html = res.text().await.expect("html");
    let scripts = html.matches("<script").count();
    assert!(scripts >= 1, "the hydration script is there");
    assert_eq!(
        html.matches(&format!("nonce=\"{nonce}\"")).count(),
        scripts,
        "every <script> carries this response's nonce"
    );
}

#[tokio::test]
async fn the_health_endpoint_answers_without_a_session() {
    let app = spawn_app().await;
    let res = app.get("/healthz", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["database"], "ok");
}

#[tokio::test]
async fn a_database_that_cannot_be_migrated_stops_startup_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("grappe.db");
    std::fs::write(&path, b"this is not a SQLite database, it is a text file").expect("write");
    let result =
        grappe_server::startup::Application::build(crate::helpers::settings_for(path.clone()))
            .await;
    let err = match result {
        Ok(_) => panic!("startup must fail"),
        Err(e) => grappe_engine::audit::error_chain(&e),
    };
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("database"), "{err}");
}

#[tokio::test]
async fn host_checks_need_an_operator_and_trusts_resets_and_approvals_an_admin() {
    let app = spawn_app().await;
    let viewer = app.add_user("vera", Role::Viewer).await;
    let operator = app.add_user("otto", Role::Operator).await;
    let viewer_cookie = app.login("vera", &viewer).await;
    let operator_cookie = app.login("otto", &operator).await;
    let node = [("cluster", "lab"), ("node", "rigel")];
    let trust = [
        ("cluster", "lab"),
        ("node", "rigel"),
        ("fingerprint", "SHA256:x"),
    ];
    let reset = [
        ("workflow", "node.reset"),
        ("cluster", "lab"),
        ("request", r#"{"node":"rigel","options":{}}"#),
        ("plan_hash", "x"),
        ("confirm", "rigel"),
        ("password", "x"),
    ];
    let res = app
        .call("/api/check_host", Some(&viewer_cookie), &node)
        .await;
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "a viewer checking a host"
    );
    // An operator passes the role check (the cluster is unknown here: 404).
    let res = app
        .call("/api/check_host", Some(&operator_cookie), &node)
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    for (path, form) in [
        ("/api/trust_host_key", &trust[..]),
        ("/api/plan_node_reset", &node[..]),
        ("/api/start_run", &reset[..]),
        ("/api/approve_run", &[("run", "1")][..]),
    ] {
        let res = app.call(path, Some(&operator_cookie), form).await;
        assert_eq!(
            res.status(),
            StatusCode::FORBIDDEN,
            "an operator calling {path}"
        );
    }
    // Names that are not DNS-1123 are refused before anything else.
    let admin = app.add_user("ada", Role::Admin).await;
    let admin_cookie = app.login("ada", &admin).await;
    let bad = [
        ("cluster", "lab"),
        ("node", "rigel;reboot"),
        ("fingerprint", "SHA256:x"),
    ];
    let res = app
        .call("/api/trust_host_key", Some(&admin_cookie), &bad)
        .await;
    assert_ne!(res.status(), StatusCode::OK);
    assert!(app.audit_records("ssh.trust").await.is_empty());
}

#[tokio::test]
async fn node_actions_need_an_operator_and_disabling_eviction_an_admin() {
    let app = spawn_app().await;
    let viewer = app.add_user("vera", Role::Viewer).await;
    let operator = app.add_user("otto", Role::Operator).await;
    let viewer_cookie = app.login("vera", &viewer).await;
    let operator_cookie = app.login("otto", &operator).await;
    let drain = [("cluster", "lab"), ("nodes", "rigel"), ("force", "on")];
    let start = [
        ("workflow", "node.drain"),
        ("cluster", "lab"),
        ("request", r#"{"nodes":["rigel"],"options":{}}"#),
        ("plan_hash", "x"),
        ("confirm", "rigel"),
    ];
    let cordon = [("cluster", "lab"), ("node", "rigel"), ("what", "cordon")];
    for (path, form) in [
        ("/api/cordon_node", &cordon[..]),
        ("/api/plan_node_drain", &drain[..]),
        ("/api/start_run", &start[..]),
    ] {
        let res = app.call(path, Some(&viewer_cookie), form).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "viewer calling {path}");
    }
    // An operator passes the role check (the cluster is unknown here: 404).
    let res = app
        .call("/api/cordon_node", Some(&operator_cookie), &cordon)
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = app
        .call("/api/plan_node_drain", Some(&operator_cookie), &drain)
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // Disabling eviction bypasses PodDisruptionBudgets: admins only.
    let mut bypass = drain.to_vec();
    bypass.push(("disable_eviction", "on"));
    let res = app
        .call("/api/plan_node_drain", Some(&operator_cookie), &bypass)
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // Starting one is refused alike: the engine's policy reads the request's options.
    let bypass_start = [
        ("workflow", "node.drain"),
        ("cluster", "lab"),
        (
            "request",
            r#"{"nodes":["rigel"],"options":{"disable_eviction":true}}"#,
        ),
        ("plan_hash", "x"),
        ("confirm", "rigel"),
    ];
    let res = app
        .call("/api/start_run", Some(&operator_cookie), &bypass_start)
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // Bad input is refused with its reason.
    let mut bad = drain.to_vec();
    bad.push(("timeout", "soon"));
    let res = app
        .call("/api/plan_node_drain", Some(&operator_cookie), &bad)
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.expect("body").contains("timeout"));
    let bad = [("cluster", "lab"), ("node", "rigel"), ("what", "reboot")];
    let res = app
        .call("/api/cordon_node", Some(&operator_cookie), &bad)
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(app.audit_records("node.cordon").await.is_empty());
}
