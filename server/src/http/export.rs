//! `GET /history/export?format=csv|json&...filters`: the filtered audit log as a download.

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use grappe_engine::auth::Principal;
use http::StatusCode;
use http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use serde::Deserialize;

use crate::startup::AppState;
use app::api::history::{HistoryQuery, to_filter};

/// At most this many records per export.
const EXPORT_LIMIT: i64 = 100_000;

#[derive(Deserialize)]
pub struct ExportParams {
    format: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    cluster: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

pub async fn export(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Query(params): Query<ExportParams>,
) -> Response {
    let query = HistoryQuery {
        actor: params.actor,
        action: params.action,
        cluster: params.cluster,
        from: params.from,
        to: params.to,
        page: None,
    };
    let filter = match to_filter(&query) {
        Ok(f) => f,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let records = match state.engine.audit.export(&filter, EXPORT_LIMIT).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %grappe_engine::audit::error_chain(&e), "audit export failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "export failed").into_response();
        }
    };
    tracing::info!(user = %principal.user.name, records = records.len(), "audit export");
    let stamp = grappe_engine::time::now()
        .to_string()
        .replace([':', '.'], "-");
    match params.format.as_deref().unwrap_or("csv") {
        "json" => match serde_json::to_vec_pretty(&records) {
            Ok(body) => (
                [
                    (CONTENT_TYPE, "application/json".to_owned()),
                    (
                        CONTENT_DISPOSITION,
                        format!("attachment; filename=\"grappe-audit-{stamp}.json\""),
                    ),
                ],
                body,
            )
                .into_response(),
            Err(e) => {
                tracing::error!(error = %e, "audit export encoding failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "export failed").into_response()
            }
        },
        "csv" => {
            let mut body = Vec::new();
            match grappe_engine::audit::write_csv(&records, &mut body) {
                Ok(()) => (
                    [
                        (CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                        (
                            CONTENT_DISPOSITION,
                            format!("attachment; filename=\"grappe-audit-{stamp}.csv\""),
                        ),
                    ],
                    body,
                )
                    .into_response(),
                Err(e) => {
                    tracing::error!(error = %e, "audit export encoding failed");
                    (StatusCode::INTERNAL_SERVER_ERROR, "export failed").into_response()
                }
            }
        }
        other => (
            StatusCode::BAD_REQUEST,
            format!(
                "unknown format {:?}: use csv or json",
                grappe_engine::names::sanitize_for_display(other, 16)
            ),
        )
            .into_response(),
    }
}
