//! The history page: the audit log, filtered by actor, action, cluster and date range, paginated,
//! exportable. Filters live in the URL (a GET form), so a filtered view can be shared as a link.

use leptos::prelude::*;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;

use super::or_dash;
use crate::api::history::{AuditRow, HistoryPage as Page, HistoryQuery, audit_history};
use crate::i18n::{Msg, t, use_lang};
use crate::when::When;
use crate::{ErrorBox, PageHeader};

fn query_from_url(get: impl Fn(&str) -> Option<String>) -> HistoryQuery {
    HistoryQuery {
        actor: get("actor"),
        action: get("action"),
        cluster: get("cluster"),
        from: get("from"),
        to: get("to"),
        page: get("page").and_then(|p| p.parse().ok()),
    }
}

#[component]
pub fn HistoryPage() -> impl IntoView {
    let params = use_query_map();
    let query = Memo::new(move |_| {
        let p = params.read();
        query_from_url(|k| p.get(k).filter(|v| !v.is_empty()))
    });
    let page = Resource::new(move || query.get(), audit_history);
    view! {
        <PageHeader title=t(Msg::HistoryTitle).to_owned() subtitle=t(Msg::HistoryIntro)/>
        <section class="card" data-testid="history-runs">
            <h2>{t(Msg::Runs)}</h2>
            <p>
                <a class="btn btn-small" href="/history/runs/export?format=csv" rel="external" download>{t(Msg::ExportCsv)}</a>
                " "
                <a class="btn btn-small" href="/history/runs/export?format=json" rel="external" download>{t(Msg::ExportJson)}</a>
            </p>
            <crate::pages::cni::RunsTable cluster=Signal::derive(move || query.get().cluster.unwrap_or_default())/>
        </section>
        <Transition fallback=|| view! { <p class="muted">{t(Msg::Loading)}</p> }>
            {move || Suspend::new(async move {
                let q = query.get_untracked();
                match page.await {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(p) => view! { <History query=q page=p/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn History(query: HistoryQuery, page: Page) -> impl IntoView {
    let lang = use_lang();
    let export = |format: &str| {
        let qs = query.to_query_string(false);
        if qs.is_empty() {
            format!("/history/export?format={format}")
        } else {
            format!("/history/export?format={format}&{qs}")
        }
    };
    let pages = ((page.total + page.per_page - 1) / page.per_page).max(1);
    let link_to = |n: i64| {
        let q = HistoryQuery {
            page: Some(n),
            ..query.clone()
        };
        let qs = q.to_query_string(true);
        if qs.is_empty() {
            "/history".to_owned()
        } else {
            format!("/history?{qs}")
        }
    };
    let prev_href = (page.page > 1).then(|| link_to(page.page - 1));
    let next_href = (page.page < pages).then(|| link_to(page.page + 1));
    let csv_href = export("csv");
    let json_href = export("json");
    view! {
        <Form method="GET" action="/history" attr:class="filters" attr:data-testid="history-filters">
            <Select name="actor" label=Msg::Actor options=page.actors.clone() selected=query.actor.clone()/>
            <Select name="action" label=Msg::Action options=page.actions.clone() selected=query.action.clone()/>
            <Select name="cluster" label=Msg::Cluster options=page.clusters.clone() selected=query.cluster.clone()/>
            <label>
                <span>{Msg::From.text(lang)}</span>
                <input type="date" name="from" value=query.from.clone().unwrap_or_default()/>
            </label>
            <label>
                <span>{Msg::To.text(lang)}</span>
                <input type="date" name="to" value=query.to.clone().unwrap_or_default()/>
            </label>
            <button type="submit" class="btn btn-primary">{Msg::Filter.text(lang)}</button>
            <a class="btn" href="/history">{Msg::Reset.text(lang)}</a>
            <span class="spacer"></span>
            <a class="btn" href=csv_href data-testid="export-csv" rel="external">{Msg::ExportCsv.text(lang)}</a>
            <a class="btn" href=json_href data-testid="export-json" rel="external">{Msg::ExportJson.text(lang)}</a>
        </Form>
        <p class="muted small">
            {page.total} " " {Msg::Records.text(lang)} " · " {Msg::Page.text(lang)} " " {page.page} " "
            {Msg::Of.text(lang)} " " {pages}
        </p>
        {if page.rows.is_empty() {
            view! { <p class="alert alert-info">{Msg::NoRecords.text(lang)}</p> }.into_any()
        } else {
            view! {
                <table tabindex="0" class="table dense" data-testid="history-table">
                    <thead>
                        <tr>
                            <th>"#"</th>
                            <th>{Msg::When.text(lang)}</th>
                            <th>{Msg::Actor.text(lang)}</th>
                            <th>{Msg::Action.text(lang)}</th>
                            <th>{Msg::Target.text(lang)}</th>
                            <th>{Msg::Outcome.text(lang)}</th>
                            <th>{Msg::Source.text(lang)}</th>
                            <th>{Msg::Details.text(lang)}</th>
                        </tr>
                    </thead>
                    <tbody>{page.rows.into_iter().map(|r| view! { <Row row=r/> }).collect_view()}</tbody>
                </table>
            }
                .into_any()
        }}
        <nav class="pager">
            {prev_href.map(|href| view! { <a class="btn" href=href>{Msg::Previous.text(lang)}</a> })}
            {next_href.map(|href| view! { <a class="btn" href=href>{Msg::Next.text(lang)}</a> })}
        </nav>
    }
}

#[component]
fn Select(
    name: &'static str,
    label: Msg,
    options: Vec<String>,
    selected: Option<String>,
) -> impl IntoView {
    let lang = use_lang();
    view! {
        <label>
            <span>{label.text(lang)}</span>
            <select name=name>
                <option value="">{Msg::Any.text(lang)}</option>
                {options
                    .into_iter()
                    .map(|o| {
                        let is_selected = selected.as_deref() == Some(o.as_str());
                        view! { <option value=o.clone() selected=is_selected>{o.clone()}</option> }
                    })
                    .collect_view()}
            </select>
        </label>
    }
}

#[component]
fn Row(row: AuditRow) -> impl IntoView {
    let lang = use_lang();
    let outcome_label = match row.outcome.as_str() {
        "attempted" => Msg::OutcomeAttempted.text(lang),
        "success" => Msg::OutcomeSuccess.text(lang),
        "failure" => Msg::OutcomeFailure.text(lang),
        "denied" => Msg::OutcomeDenied.text(lang),
        _ => "?",
    };
    let details = fields(&row.details);
    view! {
        <tr data-action=row.action.clone()>
            <td class="num">{row.id}</td>
            <td class="nowrap"><When at=row.at.clone()/></td>
            <td>{row.actor.clone()}</td>
            <td class="mono">{row.action.clone()}</td>
            <td>{row.target.clone()}</td>
            <td><span class=format!("badge outcome-{}", row.outcome)>{outcome_label}</span></td>
            <td class="mono small" title=row.user_agent.clone().unwrap_or_default()>
                {or_dash(row.source.clone())}
            </td>
            <td class="small details" title=row.details.clone()>{details}</td>
        </tr>
    }
}

/// A record's details as labelled fields (`role: admin`), by name; a value that
/// is itself a list or an object is shown compact. The recorded JSON stays in the cell's title
/// and in the exports. Details that are not a JSON object are shown as they are.
fn fields(details: &str) -> AnyView {
    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(details) {
        Ok(map) => map
            .into_iter()
            .map(|(k, v)| {
                let value = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                // One text per field: a recorded value alone ("admin") would read as a UI word
                // (the French check takes it for one).
                let text = format!("{k}: {value}");
                view! { <span class="field mono" data-field=k>{text}</span> " " }
            })
            .collect_view()
            .into_any(),
        Err(_) => view! { <span class="mono">{details.to_owned()}</span> }.into_any(),
    }
}
