//! The mock tier's API server (tower-test): a kube client whose requests a test answers one
//! by one, reading each request's method, path and JSON body.

use http::{Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::Value;
use tower_test::mock;

/// The test's side of the mocked API server.
pub(crate) type Handle = mock::Handle<Request<Body>, Response<Body>>;

/// A kube client (namespace `default`) and the handle that answers its requests.
pub(crate) fn client() -> (Client, Handle) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(service, "default"), handle)
}

/// Takes the next request and answers it with `status` and `body`; returns the request's
/// method, path and JSON body (`null` without one).
pub(crate) async fn answer(
    handle: &mut Handle,
    status: StatusCode,
    body: Value,
) -> (String, String, Value) {
    let (request, send) = handle.next_request().await.expect("a request");
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let bytes = request.into_body().collect_bytes().await.expect("body");
    let sent = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let response = Response::builder()
        .status(status)
        .body(Body::from(serde_json::to_vec(&body).expect("json")))
        .expect("response");
    send.send_response(response);
    (method, path, sent)
}
