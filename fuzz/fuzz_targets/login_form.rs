//! The login form as a browser (or anyone) posts it, decoded the way the server's handler
//! receives it (axum's `Form`), then checked as the handler checks it. Nothing may panic.
#![no_main]

use axum::extract::{Form, FromRequest};
use libfuzzer_sys::fuzz_target;
use grappe_server::http::auth::LoginForm;

fuzz_target!(|data: &[u8]| {
    let request = http::Request::builder()
        .method("POST")
        .uri("/auth/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(data.to_vec()))
        .expect("a request");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    if let Ok(Form(form)) = runtime.block_on(Form::<LoginForm>::from_request(request, &())) {
        let _ = form.checked();
    }
});
