//! The audit history: a filtered, paginated view of the audit log. Exports (CSV, JSON) are plain
//! GET routes on the server (`/history/export`) taking the same query.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Rows per history page.
pub const PER_PAGE: i64 = 50;

/// The history filters, as they appear in the page URL (all optional; empty means any).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub cluster: Option<String>,
    /// A UTC date (`YYYY-MM-DD`, from its start) or an RFC 3339 time.
    pub from: Option<String>,
    /// A UTC date (`YYYY-MM-DD`, through its end) or an RFC 3339 time.
    pub to: Option<String>,
    pub page: Option<i64>,
}

impl HistoryQuery {
    /// The URL query string for these filters (without `page` when `with_page` is false).
    pub fn to_query_string(&self, with_page: bool) -> String {
        let mut parts = Vec::new();
        for (key, value) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("cluster", &self.cluster),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                parts.push(format!("{key}={}", encode_component(v)));
            }
        }
        if with_page && let Some(page) = self.page.filter(|p| *p > 1) {
            parts.push(format!("page={page}"));
        }
        parts.join("&")
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
pub fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One audit record, as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub source: Option<String>,
    pub user_agent: Option<String>,
    pub action: String,
    pub target: String,
    pub details: String,
    pub outcome: String,
}

/// A page of history with what the filter menus offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPage {
    pub rows: Vec<AuditRow>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
    pub actors: Vec<String>,
    pub actions: Vec<String>,
    pub clusters: Vec<String>,
}

#[server(endpoint = "audit_history")]
pub async fn audit_history(
    #[server(default)] query: HistoryQuery,
) -> Result<HistoryPage, AppError> {
    let (engine, _) = guard::require(Role::Viewer).await?;
    let filter = to_filter(&query)?;
    let page = engine
        .audit
        .page(&filter, query.page.unwrap_or(1), PER_PAGE)
        .await
        .map_err(|e| AppError::internal(&e))?;
    let values = engine
        .audit
        .filter_values()
        .await
        .map_err(|e| AppError::internal(&e))?;
    Ok(HistoryPage {
        rows: page.records.into_iter().map(to_row).collect(),
        total: page.total,
        page: page.page,
        per_page: page.per_page,
        actors: values.actors,
        actions: values.actions,
        clusters: values.clusters,
    })
}

#[cfg(feature = "ssr")]
use {super::guard, grappe_engine::users::Role};

/// Turns the URL filters into the engine's filter.
///
/// # Errors
/// [`AppError::Invalid`] when a date cannot be read.
#[cfg(feature = "ssr")]
pub fn to_filter(q: &HistoryQuery) -> Result<grappe_engine::audit::AuditFilter, AppError> {
    use grappe_engine::time::Timestamp;
    let non_empty = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    let bound = |v: &Option<String>, end: bool| -> Result<Option<Timestamp>, AppError> {
        let Some(text) = non_empty(v) else {
            return Ok(None);
        };
        let text = text.trim();
        let parsed = if text.len() == 10 {
            Timestamp::parse(&format!("{text}T00:00:00.000000Z")).map(|t| {
                if end {
                    Timestamp::from_datetime(t.as_datetime() + ::time::Duration::days(1))
                } else {
                    t
                }
            })
        } else {
            Timestamp::parse(text)
        };
        parsed
            .map(Some)
            .map_err(|_| AppError::Invalid(format!("{text:?} is not a date (YYYY-MM-DD)")))
    };
    Ok(grappe_engine::audit::AuditFilter {
        actor: non_empty(&q.actor),
        action: non_empty(&q.action),
        cluster: non_empty(&q.cluster),
        from: bound(&q.from, false)?,
        to: bound(&q.to, true)?,
    })
}

#[cfg(feature = "ssr")]
fn to_row(r: grappe_engine::audit::AuditRecord) -> AuditRow {
    let target = [r.cluster.as_deref(), r.node.as_deref(), r.object.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" / ");
    AuditRow {
        id: r.id.0,
        at: r.at.to_string(),
        actor: r.actor,
        source: r.source,
        user_agent: r.user_agent,
        action: r.action,
        target,
        details: r.details,
        outcome: r.outcome.as_str().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_skip_empty_filters_and_encode_values() {
        let q = HistoryQuery {
            actor: Some("jean dupont".into()),
            action: Some(String::new()),
            page: Some(3),
            ..HistoryQuery::default()
        };
        assert_eq!(q.to_query_string(true), "actor=jean%20dupont&page=3");
        assert_eq!(q.to_query_string(false), "actor=jean%20dupont");
    }
}
