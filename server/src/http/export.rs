//! `GET /history/export?format=csv|json&...filters`: the filtered audit log as a download, and
//! `GET /history/runs/export?format=csv|json&cluster=`: the workflow runs.

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use grappe_engine::auth::Principal;
use http::StatusCode;
use http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use serde::Deserialize;

use crate::state::AppState;
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
            Ok(body) => attachment(
                "application/json",
                &format!("grappe-audit-{stamp}.json"),
                body,
            ),
            Err(e) => {
                tracing::error!(error = %e, "audit export encoding failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "export failed").into_response()
            }
        },
        "csv" => {
            let mut body = Vec::new();
            match grappe_engine::audit::write_csv(&records, &mut body) {
                Ok(()) => attachment(
                    "text/csv; charset=utf-8",
                    &format!("grappe-audit-{stamp}.csv"),
                    body,
                ),
                Err(e) => {
                    tracing::error!(error = %e, "audit export encoding failed");
                    (StatusCode::INTERNAL_SERVER_ERROR, "export failed").into_response()
                }
            }
        }
        other => unknown_format(other),
    }
}

fn unknown_format(format: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        format!(
            "unknown format {:?}: use csv or json",
            grappe_engine::names::sanitize_for_display(format, 16)
        ),
    )
        .into_response()
}

fn attachment(content_type: &str, filename: &str, body: Vec<u8>) -> Response {
    (
        [
            (CONTENT_TYPE, content_type.to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct RunsExportParams {
    format: Option<String>,
    cluster: Option<String>,
}

pub async fn export_runs(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Query(params): Query<RunsExportParams>,
) -> Response {
    let cluster = params.cluster.filter(|c| !c.is_empty());
    let runs = match state
        .engine
        .runs
        .list(cluster.as_deref(), None, EXPORT_LIMIT)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %grappe_engine::audit::error_chain(&e), "runs export failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "export failed").into_response();
        }
    };
    tracing::info!(user = %principal.user.name, runs = runs.len(), "runs export");
    let stamp = grappe_engine::time::now()
        .to_string()
        .replace([':', '.'], "-");
    let encoded = match params.format.as_deref().unwrap_or("csv") {
        "json" => serde_json::to_vec_pretty(&runs)
            .map(|b| ("application/json", format!("grappe-runs-{stamp}.json"), b))
            .map_err(|e| e.to_string()),
        "csv" => {
            let mut body = Vec::new();
            grappe_engine::runs::write_csv(&runs, &mut body)
                .map(|()| {
                    (
                        "text/csv; charset=utf-8",
                        format!("grappe-runs-{stamp}.csv"),
                        body,
                    )
                })
                .map_err(|e| e.to_string())
        }
        other => return unknown_format(other),
    };
    match encoded {
        Ok((content_type, name, body)) => attachment(content_type, &name, body),
        Err(e) => {
            tracing::error!(error = %e, "runs export encoding failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "export failed").into_response()
        }
    }
}
