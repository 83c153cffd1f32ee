//! The live cluster pages and their event stream against the test lab (scripts/test starts it
//! and exports GRAPPE_TEST_KUBECONFIG): the nodes page lists what kubectl lists, and a change in
//! the cluster reaches an open event stream.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use grappe_engine::names::ClusterName;
use grappe_engine::users::Role;
use grappe_server::config::ClusterSettings;
use reqwest::StatusCode;
use reqwest::header::COOKIE;

use crate::helpers::{SESSION_COOKIE, TestApp, settings_for, spawn_with};

fn lab_kubeconfig() -> PathBuf {
    let path = std::env::var("GRAPPE_TEST_KUBECONFIG").unwrap_or_else(|_| {
        panic!(
            "GRAPPE_TEST_KUBECONFIG is not set: these tests need the lab. Run scripts/test, or \
             `lab/lab up` and export GRAPPE_TEST_KUBECONFIG=$(lab/lab kubeconfig)"
        )
    });
    PathBuf::from(path)
}

pub(crate) fn kubectl(args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(lab_kubeconfig())
        .args(args)
        .output()
        .expect("kubectl (the machine's) is required");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) async fn spawn_with_lab() -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = settings_for(dir.path().join("grappe.db"));
    settings.clusters = vec![ClusterSettings {
        name: ClusterName::parse("lab").expect("name"),
        kubeconfig: lab_kubeconfig(),
        context: None,
        ssh: None,
    }];
    (spawn_with(settings).await, dir)
}

/// Reads the event stream until `want` events named `name` arrived or `deadline` passed;
/// returns how many arrived.
async fn read_events(
    res: &mut reqwest::Response,
    name: &str,
    want: usize,
    deadline: Duration,
) -> usize {
    let start = Instant::now();
    let mut text = String::new();
    let line = format!("event: {name}\n");
    let count = |t: &str| t.matches(&line).count();
    while count(&text) < want {
        let left = deadline.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, res.chunk()).await {
            Ok(Ok(Some(bytes))) => text.push_str(&String::from_utf8_lossy(&bytes)),
            _ => break,
        }
    }
    count(&text)
}

#[tokio::test]
async fn the_nodes_page_lists_the_lab_nodes_and_changes_are_pushed() {
    let (app, _dir) = spawn_with_lab().await;
    let password = app.add_user("vera", Role::Viewer).await;
    let cookie = app.login("vera", &password).await;

    // Wait until the watches have the node list (the page says how many nodes match).
    let names = kubectl(&["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"]);
    let names: Vec<&str> = names.split_whitespace().collect();
    let start = Instant::now();
    let html = loop {
        let res = app.get("/c/lab/nodes", Some(&cookie)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let html = res.text().await.expect("body");
        if names
            .iter()
            .all(|n| html.contains(&format!("data-node=\"{n}\"")))
        {
            break html;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "nodes never listed:\n{html}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Leptos separates adjacent text nodes with empty comments.
    let text = html.replace("<!>", "");
    let count = format!("{} / {}", names.len(), names.len());
    assert!(text.contains(&count), "count line {count:?} missing");

    // A node's page, and an unknown node.
    let res = app
        .get(&format!("/c/lab/nodes/{}", names[0]), Some(&cookie))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.text()
            .await
            .expect("body")
            .contains("data-testid=\"conditions\"")
    );
    let res = app.get("/c/lab/nodes/no-such-node", Some(&cookie)).await;
    assert!(
        res.text()
            .await
            .expect("body")
            .contains("node no-such-node in cluster lab")
    );

    // The event stream: one event at once, another after a change in the cluster.
    let mut stream = open_stream(&app, "/live/lab", &cookie).await;
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(
        stream
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let first = read_events(&mut stream, "changed", 1, Duration::from_secs(5)).await;
    assert_eq!(first, 1, "no event at connect");
    // A change the pages show (a role); an annotation alone would not be one.
    let role = format!("node-role.kubernetes.io/grappe-test-{}", std::process::id());
    kubectl(&["label", "node", names[0], &format!("{role}=")]);
    let more = read_events(&mut stream, "changed", 1, Duration::from_secs(5)).await;
    kubectl(&["label", "node", names[0], &format!("{role}-")]);
    assert_eq!(more, 1, "no event after a change in the cluster");

    // Unknown cluster.
    let res = app.get("/live/nope", Some(&cookie)).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

/// A cluster's stream tells its page of the runs too (one connection for both): a `runs` event
/// when a run starts. The run: a drain whose pod selector matches nothing, which cordons its
/// node and evicts nothing; the node is uncordoned after.
#[tokio::test]
async fn the_cluster_stream_tells_of_runs_too() {
    let (app, _dir) = spawn_with_lab().await;
    let password = app.add_user("oscar", Role::Operator).await;
    let cookie = app.login("oscar", &password).await;
    let names = kubectl(&["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"]);
    let node = names
        .split_whitespace()
        .last()
        .expect("a lab node")
        .to_owned();
    let options = [
        ("cluster", "lab"),
        ("nodes", node.as_str()),
        ("ignore_daemonsets", "on"),
        ("pod_selector", "grappe.dev/test=matches-no-pod"),
    ];
    // Planned once the watches know the node.
    let start = Instant::now();
    let plan: serde_json::Value = loop {
        let res = app
            .call("/api/plan_node_drain", Some(&cookie), &options)
            .await;
        let ok = res.status() == StatusCode::OK;
        let body = res.text().await.expect("body");
        if ok {
            break serde_json::from_str(&body).expect("a plan");
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no drain plan of {node} in 30 s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };

    let mut stream = open_stream(&app, "/live/lab", &cookie).await;
    assert_eq!(stream.status(), StatusCode::OK);
    let first = read_events(&mut stream, "changed", 1, Duration::from_secs(5)).await;
    assert_eq!(first, 1, "no event at connect");

    let res = app
        .call(
            "/api/start_run",
            Some(&cookie),
            &crate::process::start_form(&plan, &node),
        )
        .await;
    let started = res.status();
    let body = res.text().await.expect("body");
    assert_eq!(started, StatusCode::OK, "start_run: {body}");
    let runs = read_events(&mut stream, "runs", 1, Duration::from_secs(10)).await;
    // The run ends (the node cordoned, nothing evicted) before the node is uncordoned.
    let view = crate::process::run_until(&app.http, &cookie, body.trim(), "the drain's end", |v| {
        v["summary"]["status"] != "running"
    })
    .await;
    let status = view["summary"]["status"].as_str().unwrap_or("").to_owned();
    kubectl(&["uncordon", &node]);
    assert_eq!(
        runs, 1,
        "no runs event on the cluster's stream after a start"
    );
    assert_eq!(status, "succeeded", "the drain of {node}");
}

/// Every rule the engine can raise has its words in the UI, in both languages, with the same
/// placeholders in each.
#[test]
fn every_diagnostic_rule_has_its_words() {
    use app::findings::texts;
    use app::i18n::Lang;
    let placeholders = |s: &str| {
        let mut v: Vec<String> = s
            .split('{')
            .skip(1)
            .filter_map(|x| x.split_once('}').map(|(p, _)| p.to_owned()))
            .collect();
        v.sort();
        v
    };
    for rule in grappe_engine::diagnostics::RULES {
        let en = texts(rule, Lang::En).unwrap_or_else(|| panic!("{rule}: no English"));
        let fr = texts(rule, Lang::Fr).unwrap_or_else(|| panic!("{rule}: no French"));
        assert_ne!(en.0, fr.0, "{rule}: not translated");
        assert!(
            [en.1, en.2, fr.1, fr.2].iter().all(|t| !t.is_empty()),
            "{rule}: empty text"
        );
        for (e, f) in [(en.0, fr.0), (en.1, fr.1), (en.2, fr.2)] {
            assert_eq!(
                placeholders(e),
                placeholders(f),
                "{rule}: placeholders differ"
            );
        }
    }
}

/// Opens an event stream (`/live/{cluster}`, `/live-runs`) with `cookie`.
async fn open_stream(app: &TestApp, path: &str, cookie: &str) -> reqwest::Response {
    app.client
        .get(format!("{}{path}", app.base))
        .header(COOKIE, format!("{SESSION_COOKIE}={cookie}"))
        .send()
        .await
        .expect(path)
}

/// Reads a stream until it ends; `false` when it is still open after `deadline`.
async fn ends_within(res: &mut reqwest::Response, deadline: Duration) -> bool {
    let start = Instant::now();
    loop {
        let left = deadline.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, res.chunk()).await {
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None) | Err(_)) => return true,
            Err(_) => return false,
        }
    }
}

/// An open event stream ends when its session does: after a logout, and after the user's
/// password changes (which ends every session of the user), within a few seconds.
#[tokio::test]
async fn a_live_stream_ends_with_its_session() {
    let app = crate::helpers::spawn_app().await;
    let password = app.add_user("vera", Role::Viewer).await;

    let cookie = app.login("vera", &password).await;
    let mut stream = open_stream(&app, "/live-runs", &cookie).await;
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(
        read_events(&mut stream, "changed", 1, Duration::from_secs(5)).await,
        1
    );
    // A valid session's stream stays open past its checks.
    assert!(
        !ends_within(&mut stream, Duration::from_secs(12)).await,
        "the stream of a valid session ended"
    );
    let res = app
        .client
        .post(format!("{}/auth/logout", app.base))
        .header("origin", app.origin())
        .header(COOKIE, format!("{SESSION_COOKIE}={cookie}"))
        .send()
        .await
        .expect("logout");
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        ends_within(&mut stream, Duration::from_secs(15)).await,
        "the stream outlived its logout"
    );

    let cookie = app.login("vera", &password).await;
    let mut stream = open_stream(&app, "/live-runs", &cookie).await;
    assert_eq!(
        read_events(&mut stream, "changed", 1, Duration::from_secs(5)).await,
        1
    );
    let name = grappe_engine::names::UserName::parse("vera").expect("name");
    let cli = grappe_engine::audit::Caller::cli("test");
    app.engine
        .users
        .set_password(
            &cli,
            &name,
            &grappe_engine::auth::Password::new("another-long-password-42"),
        )
        .await
        .expect("password changed");
    assert!(
        ends_within(&mut stream, Duration::from_secs(15)).await,
        "the stream outlived the password change"
    );
}

/// One session holds at most 16 streams at once; a closed one frees its place.
#[tokio::test]
async fn a_session_holds_a_bounded_number_of_streams() {
    let app = crate::helpers::spawn_app().await;
    let password = app.add_user("vera", Role::Viewer).await;
    let cookie = app.login("vera", &password).await;
    let mut open = Vec::new();
    for _ in 0..grappe_server::streams::MAX_PER_SESSION {
        let res = open_stream(&app, "/live-runs", &cookie).await;
        assert_eq!(res.status(), StatusCode::OK);
        open.push(res);
    }
    let refused = open_stream(&app, "/live-runs", &cookie).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another session of the same user is not affected.
    let other = app.login("vera", &password).await;
    assert_eq!(
        open_stream(&app, "/live-runs", &other).await.status(),
        StatusCode::OK
    );
    drop(open.pop());
    let start = Instant::now();
    loop {
        let res = open_stream(&app, "/live-runs", &cookie).await;
        if res.status() == StatusCode::OK {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "a closed stream did not free its place"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
