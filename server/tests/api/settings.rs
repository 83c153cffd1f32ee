//! The reader's preferences: the time zone exact times are shown in.

use grappe_engine::users::Role;
use reqwest::StatusCode;

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_time_zone_is_kept_when_it_is_one_and_refused_otherwise() {
    let app = spawn_app().await;
    let password = app.add_user("tokyo", Role::Viewer).await;
    let cookie = app.login("tokyo", &password).await;
    let whoami = || async {
        let res = app.call("/api/whoami", Some(&cookie), &[]).await;
        assert_eq!(res.status(), StatusCode::OK);
        res.text().await.expect("body")
    };
    let set = |zone: &'static str| {
        let cookie = cookie.clone();
        let app = &app;
        async move {
            let res = app
                .call("/api/set_time_zone", Some(&cookie), &[("zone", zone)])
                .await;
            (res.status(), res.text().await.expect("body"))
        }
    };
    assert!(
        whoami().await.contains(r#""time_zone":null"#),
        "{}",
        whoami().await
    );

    for bad in ["../etc/passwd", "Asia/Tokyo<script>", "+09:00"] {
        let (status, body) = set(bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body.contains("invalid time zone"), "{body}");
    }
    assert!(
        whoami().await.contains(r#""time_zone":null"#),
        "a refused zone changed nothing"
    );

    let (status, body) = set("Asia/Tokyo").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        whoami().await.contains(r#""time_zone":"Asia/Tokyo""#),
        "{}",
        whoami().await
    );
    let (status, _) = set("").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        whoami().await.contains(r#""time_zone":null"#),
        "empty: the browser's again"
    );
}
