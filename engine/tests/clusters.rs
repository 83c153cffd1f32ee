//! Cluster reachability against the real lab (scripts/test starts one and exports
//! GRAPPE_TEST_KUBECONFIG), and against endpoints that cannot answer.

use std::path::PathBuf;

use grappe_engine::clusters::{ClusterSpec, Clusters, Reachability};
use grappe_engine::names::ClusterName;

fn lab_kubeconfig() -> PathBuf {
    let path = std::env::var("GRAPPE_TEST_KUBECONFIG").unwrap_or_else(|_| {
        panic!(
            "GRAPPE_TEST_KUBECONFIG is not set: these tests need the lab. Run scripts/test, or \
             `lab/lab up` and export GRAPPE_TEST_KUBECONFIG=$(lab/lab kubeconfig)"
        )
    });
    let path = PathBuf::from(path);
    assert!(
        path.exists(),
        "GRAPPE_TEST_KUBECONFIG={} does not exist",
        path.display()
    );
    path
}

fn spec(name: &str, kubeconfig: PathBuf) -> ClusterSpec {
    ClusterSpec {
        name: ClusterName::parse(name).expect("name"),
        kubeconfig,
        context: None,
    }
}

#[tokio::test]
async fn the_lab_is_reachable_and_reports_its_version() {
    let clusters = Clusters::new(vec![spec("lab", lab_kubeconfig())]);
    let statuses = clusters.statuses().await;
    assert_eq!(statuses.len(), 1);
    match &statuses[0].reachability {
        Reachability::Reachable { version, .. } => assert_eq!(version, "v1.35.8"),
        other => panic!("lab unreachable: {other:?}"),
    }
}

#[tokio::test]
async fn a_closed_port_is_unreachable_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(lab_kubeconfig()).expect("read");
    // Same credentials, a port nobody listens on.
    let server = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .expect("server line")
        .to_owned();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let path = dir.path().join("kubeconfig");
    std::fs::write(
        &path,
        text.replace(&server, &format!("https://127.0.0.1:{port}")),
    )
    .expect("write");

    let clusters = Clusters::new(vec![spec("gone", path)]);
    let status = clusters
        .status(&ClusterName::parse("gone").expect("name"))
        .await
        .expect("known");
    match status.reachability {
        Reachability::Unreachable { error } => {
            assert!(error.to_lowercase().contains("connect"), "{error}")
        }
        other => panic!("expected unreachable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_kubeconfig_is_reported_not_hidden() {
    let clusters = Clusters::new(vec![spec(
        "ghost",
        PathBuf::from("/nonexistent/kubeconfig"),
    )]);
    let status = clusters
        .status(&ClusterName::parse("ghost").expect("name"))
        .await
        .expect("known");
    match status.reachability {
        Reachability::Unreachable { error } => {
            assert!(
                error.contains("cannot load kubeconfig /nonexistent/kubeconfig"),
                "{error}"
            )
        }
        other => panic!("expected unreachable, got {other:?}"),
    }
}
