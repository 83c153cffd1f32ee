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

fn kubectl(args: &[&str]) -> String {
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

async fn spawn_with_lab() -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = settings_for(dir.path().join("grappe.db"));
    settings.clusters = vec![ClusterSettings {
        name: ClusterName::parse("lab").expect("name"),
        kubeconfig: lab_kubeconfig(),
        context: None,
    }];
    (spawn_with(settings).await, dir)
}

/// Reads server-sent events until `want` of them arrived or the deadline passed.
async fn read_events(res: &mut reqwest::Response, want: usize, deadline: Duration) -> Vec<String> {
    let start = Instant::now();
    let mut buffer = String::new();
    while start.elapsed() < deadline {
        let left = deadline.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, res.chunk()).await {
            Ok(Ok(Some(bytes))) => buffer.push_str(&String::from_utf8_lossy(&bytes)),
            _ => break,
        }
        let events: Vec<String> = buffer
            .split("\n\n")
            .filter(|e| e.contains("event: changed"))
            .map(str::to_owned)
            .collect();
        if events.len() >= want {
            return events;
        }
    }
    buffer
        .split("\n\n")
        .filter(|e| e.contains("event: changed"))
        .map(str::to_owned)
        .collect()
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
    let mut stream = app
        .client
        .get(format!("{}/live/lab", app.base))
        .header(COOKIE, format!("{SESSION_COOKIE}={cookie}"))
        .send()
        .await
        .expect("live");
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(
        stream
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let first = read_events(&mut stream, 1, Duration::from_secs(5)).await;
    assert_eq!(first.len(), 1, "no event at connect");
    // A change the pages show (a role); an annotation alone would not be one.
    let role = format!("node-role.kubernetes.io/grappe-test-{}", std::process::id());
    kubectl(&["label", "node", names[0], &format!("{role}=")]);
    let more = read_events(&mut stream, 1, Duration::from_secs(5)).await;
    kubectl(&["label", "node", names[0], &format!("{role}-")]);
    assert!(!more.is_empty(), "no event after a change in the cluster");

    // Unknown cluster.
    let res = app.get("/live/nope", Some(&cookie)).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

/// Every rule the engine can raise has its words in the UI, in both languages.
#[test]
fn every_diagnostic_rule_has_its_words() {
    use app::findings::describe;
    use app::i18n::Lang;
    use grappe_views::{Finding, Severity};
    for rule in grappe_engine::diagnostics::RULES {
        let finding = Finding {
            rule: rule.to_owned(),
            severity: Severity::Warning,
            nodes: vec![],
            evidence: vec![],
            params: vec![],
        };
        for lang in Lang::ALL {
            let (title, explanation, fix) = describe(&finding, lang);
            assert_ne!(title, rule, "{rule} has no {lang:?} title");
            assert!(
                !explanation.is_empty() && !fix.is_empty(),
                "{rule} {lang:?}"
            );
        }
    }
}
