//! The history (audit) through HTTP: listing, filtering and exports.

use reqwest::StatusCode;

use crate::helpers::spawn_app;
use grappe_engine::users::Role;

#[tokio::test]
async fn history_lists_logins_and_filters_by_actor_and_action() {
    let app = spawn_app().await;
    let alice = app.add_user("alice", Role::Viewer).await;
    let _ = app.post_login("alice", "wrong-password", None).await;
    let cookie = app.login("alice", &alice).await;

    let res = app.call("/api/audit_history", Some(&cookie), &[]).await;
    let status = res.status();
    let page: serde_json::Value = res.json().await.expect("json");
    assert_eq!(status, StatusCode::OK, "{page}");
    let rows = page["rows"].as_array().expect("rows");
    // user.add (attempted + success), a failed and a successful login, newest first.
    assert_eq!(page["total"], 4, "{page}");
    assert_eq!(rows[0]["action"], "auth.login");
    assert_eq!(rows[0]["outcome"], "success");
    assert_eq!(rows[0]["actor"], "alice");
    assert_eq!(rows[0]["source"], "127.0.0.1");
    assert!(
        page["actions"]
            .as_array()
            .expect("actions")
            .iter()
            .any(|a| a == "user.add")
    );

    let res = app
        .call(
            "/api/audit_history",
            Some(&cookie),
            &[("query[action]", "auth.login"), ("query[actor]", "alice")],
        )
        .await;
    let page: serde_json::Value = res.json().await.expect("json");
    assert_eq!(page["total"], 2, "{page}");

    let res = app
        .call(
            "/api/audit_history",
            Some(&cookie),
            &[("query[from]", "not-a-date")],
        )
        .await;
    assert_ne!(res.status(), StatusCode::OK);
    let body = res.text().await.expect("body");
    assert!(body.contains("is not a date"), "{body}");
}

#[tokio::test]
async fn history_exports_as_csv_and_json() {
    let app = spawn_app().await;
    let alice = app.add_user("alice", Role::Viewer).await;
    let cookie = app.login("alice", &alice).await;

    let res = app
        .get(
            "/history/export?format=csv&action=auth.login",
            Some(&cookie),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/csv")
    );
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .expect("cd")
            .contains("attachment")
    );
    let csv = res.text().await.expect("body");
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .expect("header")
            .starts_with("id,at,actor,source")
    );
    let row = lines.next().expect("one login");
    assert!(row.contains(",alice,127.0.0.1,"), "{row}");
    assert!(lines.next().is_none());

    let res = app.get("/history/export?format=json", Some(&cookie)).await;
    let records: serde_json::Value = res.json().await.expect("json");
    assert_eq!(records.as_array().expect("array").len(), 3);
    assert!(records[0]["hash"].as_str().expect("hash").len() == 64);

    let res = app.get("/history/export?format=xml", Some(&cookie)).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn history_renders_server_side_without_javascript() {
    let app = spawn_app().await;
    let alice = app.add_user("alice", Role::Viewer).await;
    let cookie = app.login("alice", &alice).await;
    let res = app.get("/history?action=auth.login", Some(&cookie)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.expect("html");
    assert!(
        html.contains("data-testid=\"history-table\""),
        "the table is in the HTML"
    );
    assert!(html.contains("auth.login"));
}
