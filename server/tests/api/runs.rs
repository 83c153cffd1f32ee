//! Workflow runs through HTTP: only admins plan and start them, a cross-site start is refused,
//! and a real `grappe serve` killed with SIGKILL during a Calico rollout finds the run
//! "interrupted" when it starts again, and resumes it to success (against a lab of its own);
//! the same for a drain held by a PodDisruptionBudget, resumed by an operator.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use grappe_engine::users::Role;
use http::StatusCode;
use serde_json::Value;

use crate::helpers::{Http, location, settings_for, spawn_app, spawn_with};
use crate::process::{
    LabGuard, add_user, json, lab, repo, run_until, serve, start_form, step_status, wait_up,
};

#[tokio::test]
async fn only_admins_plan_and_start_runs() {
    let app = spawn_app().await;
    let viewer = app.add_user("vera", Role::Viewer).await;
    let operator = app.add_user("otto", Role::Operator).await;
    let admin = app.add_user("ada", Role::Admin).await;
    for (name, password) in [("vera", &viewer), ("otto", &operator)] {
        let cookie = app.login(name, password).await;
        for (path, form) in [
            (
                "/api/plan_cni_install",
                vec![("cluster", "lab"), ("source", "calico-v3.25.1")],
            ),
            (
                "/api/start_run",
                vec![
                    ("workflow", "cni.install"),
                    ("cluster", "lab"),
                    ("request", r#"{"manifest_sha256":"x"}"#),
                    ("plan_hash", "x"),
                    ("confirm", "lab"),
                ],
            ),
            (
                "/api/plan_cni_remove",
                vec![("cluster", "lab"), ("source", "calico-v3.25.1")],
            ),
            (
                "/api/start_run",
                vec![
                    ("workflow", "cni.remove"),
                    ("cluster", "lab"),
                    ("request", r#"{"manifest_sha256":"x"}"#),
                    ("plan_hash", "x"),
                    ("confirm", "lab"),
                ],
            ),
            ("/api/plan_run_rollback", vec![("run", "1")]),
            (
                "/api/start_run",
                vec![
                    ("workflow", "cni.rollback"),
                    ("cluster", "lab"),
                    ("request", r#"{"run":1}"#),
                    ("plan_hash", "x"),
                    ("confirm", "lab"),
                ],
            ),
            (
                "/api/start_run",
                vec![
                    ("workflow", "apiserver.recover"),
                    ("cluster", "lab"),
                    ("request", "{}"),
                    ("plan_hash", "x"),
                    ("confirm", "lab"),
                ],
            ),
            ("/api/control_run", vec![("run", "1"), ("what", "cancel")]),
        ] {
            let res = app.call(path, Some(&cookie), &form).await;
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{name} calling {path}");
        }
        // Reading runs is for everyone.
        let res = app.call("/api/list_runs", Some(&cookie), &[]).await;
        assert_eq!(res.status(), StatusCode::OK, "{name} listing runs");
    }
    // An admin's start from another site is refused before reaching the function.
    let cookie = app.login("ada", &admin).await;
    let res = app
        .client
        .post(format!("{}/api/start_run", app.base))
        .header("origin", "https://evil.example")
        .header("cookie", format!("grappe_session={cookie}"))
        .form(&[
            ("workflow", "cni.install"),
            ("cluster", "lab"),
            ("request", r#"{"manifest_sha256":"x"}"#),
            ("plan_hash", "x"),
            ("confirm", "lab"),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_no_runs(&app).await;
}

/// An app whose every start is "long after the login" (`session.reauth_after` at zero), with
/// admin ada logged in: her password and session cookie.
async fn old_login() -> (tempfile::TempDir, crate::helpers::TestApp, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = settings_for(dir.path().join("grappe.db"));
    settings.session.reauth_after = Duration::ZERO;
    let app = spawn_with(settings).await;
    let password = app.add_user("ada", Role::Admin).await;
    let cookie = app.login("ada", &password).await;
    (dir, app, password, cookie)
}

/// Strangers guessing the admin's password at the login form throttle the login, not the
/// logged-in admin's re-authentication before a start (during an outage, the recovery).
#[tokio::test]
async fn an_anonymous_burst_does_not_lock_the_admin_out_of_a_start() {
    let (_dir, app, password, cookie) = old_login().await;
    for i in 0..6 {
        app.post_login("ada", &format!("a-guess-{i}"), None).await;
    }
    let res = app.post_login("ada", &password, None).await;
    assert!(
        location(&res).contains("error=throttled"),
        "{}",
        location(&res)
    );

    let form = [
        ("workflow", "cni.install"),
        ("cluster", "lab"),
        ("request", r#"{"manifest_sha256":"x"}"#),
        ("plan_hash", "x"),
        ("confirm", "lab"),
        ("password", password.as_str()),
    ];
    let res = app.call("/api/start_run", Some(&cookie), &form).await;
    let body = res.text().await.expect("body");
    // The password was accepted: the start fails further on (no such manifest), not at it.
    assert!(!body.contains("wrong password"), "{body}");
    assert!(!body.contains("too many"), "{body}");
}

/// With `session.reauth_after` at zero every start is "long after the login": it needs the
/// password, a wrong one is refused (and counted as a failed login), the right one gets past.
#[tokio::test]
async fn an_old_login_gives_its_password_again_to_start_a_run() {
    let (_dir, app, password, cookie) = old_login().await;
    let start = |typed: &'static str, password: String| {
        let app = &app;
        let cookie = cookie.clone();
        async move {
            let form = [
                ("workflow", "cni.install"),
                ("cluster", "lab"),
                ("request", r#"{"manifest_sha256":"x"}"#),
                ("plan_hash", "x"),
                ("confirm", typed),
                ("password", password.as_str()),
            ];
            let res = app.call("/api/start_run", Some(&cookie), &form).await;
            (res.status(), res.text().await.expect("body"))
        }
    };

    let (status, body) = start("lab", String::new()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("enter your password again"), "{body}");

    let (status, body) = start("lab", "not-the-password".into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("wrong password"), "{body}");
    let failures = app
        .engine
        .audit
        .page(
            &grappe_engine::audit::AuditFilter {
                actor: Some("ada".into()),
                ..Default::default()
            },
            1,
            50,
        )
        .await
        .expect("audit")
        .records
        .into_iter()
        .filter(|r| r.outcome == grappe_engine::audit::Outcome::Failure)
        .count();
    assert_eq!(
        failures, 1,
        "the wrong password is a failed login in the history"
    );

    // The right password passes; what stops this start is the next guard (no such cluster).
    let (status, body) = start("lab", password.clone()).await;
    assert!(status.is_client_error(), "{status} {body}");
    assert!(!body.contains("password"), "{body}");
    assert_no_runs(&app).await;
}

/// A pasted manifest over 5 MiB is refused by the engine with the reason (400); a request body
/// over 16 MiB does not reach the server function (413). Nothing is stored.
#[tokio::test]
async fn oversized_manifests_are_refused() {
    let app = spawn_app().await;
    let password = app.add_user("ada", Role::Admin).await;
    let cookie = app.login("ada", &password).await;
    for (bytes, status, says) in [
        (5 * 1024 * 1024 + 1, StatusCode::BAD_REQUEST, "larger than"),
        (17 * 1024 * 1024, StatusCode::PAYLOAD_TOO_LARGE, ""),
    ] {
        let text = "#".repeat(bytes);
        let form = [
            ("cluster", "lab"),
            ("source", "paste"),
            ("text", text.as_str()),
        ];
        let res = app
            .call("/api/plan_cni_install", Some(&cookie), &form)
            .await;
        assert_eq!(res.status(), status, "{bytes} bytes");
        let body = res.text().await.expect("body");
        assert!(body.contains(says), "{bytes} bytes: {body}");
    }
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM manifests")
        .fetch_one(app.engine.store.pool())
        .await
        .expect("count");
    assert_eq!(stored, 0);
}

async fn assert_no_runs(app: &crate::helpers::TestApp) {
    let runs = app.engine.runs.list(None, None, 10).await.expect("runs");
    assert!(runs.is_empty(), "{runs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_during_the_rollout_is_interrupted_then_resumed() {
    let work = tempfile::tempdir().expect("tempdir");
    let lab_dir = work.path().join("lab");
    let _lab = LabGuard(lab_dir.clone());
    lab(&lab_dir, &["up", "--nodes", "2", "--port-base", "17500"]);
    // rigel's kubelet stops reporting: the rollout waits for every node Ready, so the kill
    // lands while the run waits, whatever the machine's speed.
    lab(&lab_dir, &["break", "node-notready", "rigel"]);
    let start = Instant::now();
    loop {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(lab_dir.join("kubeconfig"))
            .args([
                "get",
                "node",
                "rigel",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ])
            .output()
            .expect("kubectl is required (the machine's kubectl)");
        if String::from_utf8_lossy(&out.stdout).trim() != "True" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "rigel never became NotReady"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    let config = work.path().join("grappe.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:18190\"\ndatabase = \"{}\"\nsite_root = \"{}\"\n\n[[clusters]]\nname = \"lab\"\nkubeconfig = \"{}\"\n",
            work.path().join("grappe.db").display(),
            repo().join("target/site").display(),
            lab_dir.join("kubeconfig").display(),
        ),
    )
    .expect("config");
    add_user(&config, "ada", "admin", "a-long-test-password-42");

    let http = Http::new("http://127.0.0.1:18190".into());
    let mut server = serve(&config, &work.path().join("server-1.log"));
    wait_up(&http).await;
    let cookie = http.login("ada", "a-long-test-password-42").await;

    // Plan and start an install of Calico from a pasted (unverified) copy of the manifest.
    let manifests = std::env::var("GRAPPE_MANIFESTS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join("../shared/manifests"));
    let text = std::fs::read_to_string(manifests.join("calico-v3.25.1.yaml"))
        .expect("GRAPPE_MANIFESTS must hold calico-v3.25.1.yaml");
    let start = Instant::now();
    let plan = loop {
        let res = http
            .call(
                "/api/plan_cni_install",
                Some(&cookie),
                &[("cluster", "lab"), ("source", "paste"), ("text", &text)],
            )
            .await;
        let status = res.status();
        let body = res.text().await.expect("body");
        // The live state needs a moment after startup before a plan can check it.
        if status == StatusCode::OK && !body.contains("has not been read yet") {
            break serde_json::from_str::<Value>(&body).expect("plan");
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "plan: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    // A pasted copy of a catalog manifest is that manifest: its checksum says so.
    assert_eq!(plan["verified"], true);
    assert_eq!(plan["title"], "Calico v3.25.1");
    let id = json(&http, &cookie, "/api/start_run", &start_form(&plan, "lab")).await;
    let id = id.as_i64().expect("run id").to_string();
    run_until(&http, &cookie, &id, "rollout running", |v| {
        step_status(v, "rollout") == "running"
    })
    .await;

    // kill -9.
    server.0.kill().expect("SIGKILL");
    server.0.wait().expect("reaped");
    drop(server);

    let mut server = serve(&config, &work.path().join("server-2.log"));
    wait_up(&http).await;
    let cookie = http.login("ada", "a-long-test-password-42").await;
    let view = json(&http, &cookie, "/api/get_run", &[("run", &id)]).await;
    assert_eq!(view["summary"]["status"], "interrupted", "{view:#}");
    assert_eq!(step_status(&view, "rollout"), "interrupted");
    assert_eq!(step_status(&view, "apply workloads"), "done");
    // The cluster stays held: another start is refused while the run is interrupted.
    let res = http
        .call("/api/start_run", Some(&cookie), &start_form(&plan, "lab"))
        .await;
    let body = res.text().await.expect("body");
    assert!(body.contains("busy") || body.contains("changed"), "{body}");

    lab(&lab_dir, &["heal"]);
    // A CNI run's resume asks for the password again: refused without it, or with a wrong one.
    for form in [
        vec![("run", id.as_str()), ("what", "resume")],
        vec![
            ("run", id.as_str()),
            ("what", "resume"),
            ("password", "not-hers-at-all"),
        ],
    ] {
        let res = http.call("/api/control_run", Some(&cookie), &form).await;
        let body = res.text().await.expect("body");
        assert!(
            body.contains("run.password_needed") || body.contains("wrong password"),
            "{body}"
        );
    }
    let view = json(&http, &cookie, "/api/get_run", &[("run", &id)]).await;
    assert_eq!(
        view["summary"]["status"], "interrupted",
        "nothing resumed: {view:#}"
    );
    assert_eq!(view["may"]["resume_password"], true);
    json(
        &http,
        &cookie,
        "/api/control_run",
        &[
            ("run", &id),
            ("what", "resume"),
            ("password", "a-long-test-password-42"),
        ],
    )
    .await;
    let view = run_until(&http, &cookie, &id, "success", |v| {
        v["summary"]["status"] != "running"
    })
    .await;
    assert_eq!(view["summary"]["status"], "succeeded", "{view:#}");
    assert!(
        view["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .all(|s| s["status"] == "done"),
        "{view:#}"
    );
    // A drain killed while the demo/web budget (maxUnavailable 0) holds it: interrupted at the
    // next start, resumed by an operator once the budget allows it.
    let kubectl = |args: &[&str]| {
        crate::process::kubectl(&lab_dir, args);
    };
    kubectl(&[
        "-n",
        "demo",
        "wait",
        "--for=condition=Ready",
        "pod",
        "-l",
        "app=web",
        "--timeout=120s",
    ]);
    add_user(&config, "otto", "operator", "another-test-password-42");
    let otto = http.login("otto", "another-test-password-42").await;
    let options = [
        ("cluster", "lab"),
        ("nodes", "rigel"),
        ("delete_emptydir_data", "on"),
        ("ignore_daemonsets", "on"),
        ("force", "on"),
    ];
    let plan = json(&http, &otto, "/api/plan_node_drain", &options).await;
    let drain = json(&http, &otto, "/api/start_run", &start_form(&plan, "rigel")).await;
    let drain = drain.as_i64().expect("run id").to_string();
    run_until(&http, &otto, &drain, "drain held by demo/web", |v| {
        v["objects"].as_array().is_some_and(|o| {
            o.iter().any(|o| {
                o["done"]
                    .as_str()
                    .is_some_and(|d| d.contains("blocked by PodDisruptionBudget demo/web"))
            })
        })
    })
    .await;
    server.0.kill().expect("SIGKILL");
    server.0.wait().expect("reaped");
    drop(server);
    let _server = serve(&config, &work.path().join("server-3.log"));
    wait_up(&http).await;
    let otto = http.login("otto", "another-test-password-42").await;
    let view = json(&http, &otto, "/api/get_run", &[("run", &drain)]).await;
    assert_eq!(view["summary"]["status"], "interrupted", "{view:#}");
    // The engine's policy says what this operator may do to the drain: resume or abandon it.
    assert_eq!(view["may"]["resume"], true, "{:#}", view["may"]);
    assert_eq!(
        view["may"]["resume_password"], false,
        "an operator's drain resumes without it"
    );
    assert_eq!(view["may"]["abandon"], true);
    assert_eq!(view["may"]["cancel"], false);
    assert_eq!(step_status(&view, "cordon rigel"), "done");
    assert_eq!(step_status(&view, "drain rigel"), "interrupted");
    crate::process::relax_demo_budget(&lab_dir);
    json(
        &http,
        &otto,
        "/api/control_run",
        &[("run", &drain), ("what", "resume")],
    )
    .await;
    let view = run_until(&http, &otto, &drain, "drain resumed to its end", |v| {
        v["summary"]["status"] != "running"
    })
    .await;
    assert_eq!(view["summary"]["status"], "succeeded", "{view:#}");
}
