//! The drain's exact API calls against a mocked API server (tower-test): the eviction carries
//! the judged pod's UID as its precondition, a 429 is a refusal that names the budget, and
//! eviction disabled is a DELETE with the same precondition.

use http::StatusCode;
use serde_json::{Value, json};

use super::*;
use crate::runs::mock::{answer, client};

fn removal() -> Removal {
    Removal {
        key: "demo/web-1".into(),
        namespace: "demo".into(),
        name: "web-1".into(),
        uid: "uid-of-web-1".into(),
        seq: None,
        budgets: vec!["demo/web".into()],
    }
}

fn too_many_requests() -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 429,
        "reason": "TooManyRequests",
        "message": "Cannot evict pod as it would violate the pod's disruption budget.",
        "details": { "causes": [{
            "reason": "DisruptionBudget",
            "message": "The disruption budget web needs 2 healthy pods and has 2 currently"
        }] }
    })
}

#[tokio::test]
async fn an_eviction_is_preconditioned_on_the_judged_pods_uid() {
    let (client, mut handle) = client();
    let api: Api<Pod> = Api::namespaced(client, "demo");
    let opts = DrainOptions {
        grace_period_seconds: Some(7),
        ..DrainOptions::default()
    };
    let server = tokio::spawn(async move {
        answer(
            &mut handle,
            StatusCode::CREATED,
            json!({"kind": "Status", "status": "Success"}),
        )
        .await
    });
    evict_or_delete(&api, &removal(), &opts)
        .await
        .expect("evicted");
    let (method, path, body) = server.await.expect("server");
    assert_eq!(method, "POST");
    assert_eq!(path, "/api/v1/namespaces/demo/pods/web-1/eviction");
    assert_eq!(body["metadata"]["name"], "web-1");
    assert_eq!(
        body["deleteOptions"]["preconditions"]["uid"],
        "uid-of-web-1"
    );
    assert_eq!(body["deleteOptions"]["gracePeriodSeconds"], 7);
}

#[tokio::test]
async fn a_refused_eviction_is_a_429_that_names_the_budget_and_its_cause() {
    let (client, mut handle) = client();
    let api: Api<Pod> = Api::namespaced(client, "demo");
    let server = tokio::spawn(async move {
        answer(
            &mut handle,
            StatusCode::TOO_MANY_REQUESTS,
            too_many_requests(),
        )
        .await
    });
    let err = evict_or_delete(&api, &removal(), &DrainOptions::default())
        .await
        .expect_err("refused");
    server.await.expect("server");
    let kube::Error::Api(status) = err else {
        panic!("not an API error: {err}");
    };
    assert_eq!(status.code, 429);
    assert_eq!(
        blocked(&removal(), 12, &status),
        "blocked by PodDisruptionBudget demo/web for 12 s: The disruption budget web needs 2 healthy pods and has 2 currently"
    );
}

#[tokio::test]
async fn without_eviction_the_pod_is_deleted_with_the_same_precondition() {
    let (client, mut handle) = client();
    let api: Api<Pod> = Api::namespaced(client, "demo");
    let opts = DrainOptions {
        disable_eviction: true,
        ..DrainOptions::default()
    };
    let server = tokio::spawn(async move {
        answer(
            &mut handle,
            StatusCode::OK,
            json!({"kind": "Status", "status": "Success"}),
        )
        .await
    });
    evict_or_delete(&api, &removal(), &opts)
        .await
        .expect("deleted");
    let (method, path, body) = server.await.expect("server");
    assert_eq!(method, "DELETE");
    assert_eq!(path, "/api/v1/namespaces/demo/pods/web-1");
    assert_eq!(body["preconditions"]["uid"], "uid-of-web-1");
}
