//! A cluster's nodes: what `kubectl get nodes -o wide` shows plus the networking columns, with
//! search, filters, sort and server-side pages (usable at 5,000 nodes). The query lives in the
//! URL (a GET form and links), so views can be shared and work without JavaScript. Live.

use grappe_views::{NodeRow, NodesPageView, NodesQuery};
use leptos::prelude::*;
use leptos_router::components::Form;
use leptos_router::hooks::{use_params_map, use_query_map};

use super::or_dash;
use super::overview::{LiveBadge, StaleBanner};
use crate::api::history::encode_component;
use crate::api::state::list_nodes;
use crate::i18n::{Lang, Msg, t, use_lang};
use crate::live::use_live;
use crate::{ErrorBox, PageHeader};

fn query_from_url(get: impl Fn(&str) -> Option<String>) -> NodesQuery {
    let d = NodesQuery::default();
    NodesQuery {
        q: get("q").unwrap_or_default(),
        status: get("status").unwrap_or_default(),
        role: get("role").unwrap_or_default(),
        sort: get("sort").unwrap_or(d.sort),
        desc: get("desc").is_some_and(|v| v == "1" || v == "true"),
        page: get("page").and_then(|p| p.parse().ok()).unwrap_or(1),
        per_page: get("per_page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(d.per_page),
    }
}

/// The page's URL for `q` (defaults left out, so the plain page is `/c/<cluster>/nodes`).
fn href(cluster: &str, q: &NodesQuery) -> String {
    let d = NodesQuery::default();
    let mut parts = Vec::new();
    for (key, value, default) in [
        ("q", &q.q, &d.q),
        ("status", &q.status, &d.status),
        ("role", &q.role, &d.role),
        ("sort", &q.sort, &d.sort),
    ] {
        if value != default {
            parts.push(format!("{key}={}", encode_component(value)));
        }
    }
    if q.desc {
        parts.push("desc=1".to_owned());
    }
    for (key, value, default) in [("page", q.page, 1), ("per_page", q.per_page, d.per_page)] {
        if value != default {
            parts.push(format!("{key}={value}"));
        }
    }
    if parts.is_empty() {
        format!("/c/{cluster}/nodes")
    } else {
        format!("/c/{cluster}/nodes?{}", parts.join("&"))
    }
}

#[component]
pub fn NodesPage() -> impl IntoView {
    let params = use_params_map();
    let query_map = use_query_map();
    let cluster = Signal::derive(move || params.read().get("cluster").unwrap_or_default());
    let query = Memo::new(move |_| {
        let q = query_map.read();
        query_from_url(|k| q.get(k).filter(|v| !v.is_empty()))
    });
    let (tick, live) = use_live(cluster);
    let page = Resource::new(
        move || (cluster.get(), query.get(), tick.get()),
        |(c, q, _)| list_nodes(c, q),
    );
    view! {
        <PageHeader title=format!("{} · {}", cluster.get_untracked(), t(Msg::NavNodes))/>
        <LiveBadge status=live/>
        <Transition fallback=|| view! { <p class="muted">{t(Msg::Loading)}</p> }>
            {move || Suspend::new(async move {
                let q = query.get_untracked();
                match page.await {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(p) => view! { <Nodes query=q page=p/> }.into_any(),
                }
            })}
        </Transition>
    }
}

fn status_options(lang: Lang) -> [(&'static str, &'static str); 6] {
    [
        ("", Msg::AllStatuses.text(lang)),
        ("ready", "Ready"),
        ("notready", "NotReady"),
        ("unknown", "Unknown"),
        ("cordoned", "SchedulingDisabled"),
        ("issues", Msg::WithFindings.text(lang)),
    ]
}

#[component]
fn Nodes(query: NodesQuery, page: NodesPageView) -> impl IntoView {
    let lang = use_lang();
    let cluster = page.cluster.clone();
    let action = format!("/c/{cluster}/nodes");
    let sort_link = {
        let cluster = cluster.clone();
        let query = query.clone();
        move |key: &str| {
            let desc = query.sort == key && !query.desc;
            let q = NodesQuery {
                sort: key.to_owned(),
                desc,
                page: 1,
                ..query.clone()
            };
            href(&cluster, &q)
        }
    };
    let arrow = {
        let query = query.clone();
        move |key: &str| {
            if query.sort == key {
                if query.desc { " ▼" } else { " ▲" }
            } else {
                ""
            }
        }
    };
    let header = |key: &'static str, label: String| {
        view! { <th><a href=sort_link(key) data-sort=key>{label}{arrow(key)}</a></th> }
    };
    let page_link = |n: usize| {
        href(
            &cluster,
            &NodesQuery {
                page: n,
                ..query.clone()
            },
        )
    };
    let prev = (page.page > 1).then(|| page_link(page.page - 1));
    let next = (page.page < page.pages).then(|| page_link(page.page + 1));
    let roles = page.roles.clone();
    view! {
        <StaleBanner link=page.link.clone()/>
        <Form method="GET" action=action.clone() attr:class="filters" attr:data-testid="nodes-filters">
            <label>
                <span>{Msg::Search.text(lang)}</span>
                <input type="search" name="q" value=query.q.clone() placeholder=Msg::SearchNodesHint.text(lang)/>
            </label>
            <label>
                <span>{Msg::Status.text(lang)}</span>
                <select name="status">
                    {status_options(lang).into_iter().map(|(v, label)| {
                        view! { <option value=v selected=query.status == v>{label}</option> }
                    }).collect_view()}
                </select>
            </label>
            <label>
                <span>{Msg::Role.text(lang)}</span>
                <select name="role">
                    <option value="" selected=query.role.is_empty()>{Msg::AllRoles.text(lang)}</option>
                    {roles.into_iter().map(|r| {
                        let selected = query.role == r;
                        view! { <option value=r.clone() selected=selected>{r.clone()}</option> }
                    }).collect_view()}
                    <option value="none" selected=query.role == "none">{Msg::NoRole.text(lang)}</option>
                </select>
            </label>
            <input type="hidden" name="sort" value=query.sort.clone()/>
            {query.desc.then(|| view! { <input type="hidden" name="desc" value="1"/> })}
            <button type="submit" class="btn btn-primary">{Msg::Filter.text(lang)}</button>
            <a class="btn" href=action.clone()>{Msg::Reset.text(lang)}</a>
        </Form>
        <p class="muted small" data-testid="nodes-count">
            {page.matched} " / " {page.total} " " {Msg::NodesWord.text(lang)} " · "
            {Msg::Page.text(lang)} " " {page.page} " " {Msg::Of.text(lang)} " " {page.pages}
        </p>
        <div class="table-wrap">
            <table tabindex="0" class="table dense" data-testid="nodes-table">
                <thead>
                    <tr>
                        {header("name", Msg::Name.text(lang).to_owned())}
                        {header("status", Msg::Status.text(lang).to_owned())}
                        {header("roles", Msg::Roles.text(lang).to_owned())}
                        {header("age", Msg::Age.text(lang).to_owned())}
                        {header("version", Msg::Version.text(lang).to_owned())}
                        {header("ip", "INTERNAL-IP".to_owned())}
                        <th>"OS-IMAGE"</th>
                        <th>"CONTAINER-RUNTIME"</th>
                        <th>"Pod CIDR"</th>
                        <th>"Calico IPv4"</th>
                        <th>{Msg::Tunnel.text(lang)}</th>
                        <th>"NetworkUnavailable"</th>
                        <th>"calico-node"</th>
                        {header("pods", Msg::Pods.text(lang).to_owned())}
                        <th>{Msg::Diagnostics.text(lang)}</th>
                    </tr>
                </thead>
                <tbody>
                    {page.rows.into_iter().map(|r| view! { <Row cluster=cluster.clone() r=r/> }).collect_view()}
                </tbody>
            </table>
        </div>
        <nav class="pager">
            {prev.map(|h| view! { <a class="btn" href=h rel="prev">{Msg::Previous.text(lang)}</a> })}
            {next.map(|h| view! { <a class="btn" href=h rel="next">{Msg::Next.text(lang)}</a> })}
        </nav>
    }
}

#[component]
fn Row(cluster: String, r: NodeRow) -> impl IntoView {
    let href = format!("/c/{cluster}/nodes/{}", r.name);
    let status_class = if r.ready { "ok" } else { "bad" };
    let roles = if r.roles.is_empty() {
        t(Msg::NoRole).to_owned()
    } else {
        r.roles.join(",")
    };
    let netun = r
        .network_unavailable
        .clone()
        .map(|(s, reason)| format!("{s} ({reason})"))
        .unwrap_or_else(|| "—".to_owned());
    let netun_class = if r
        .network_unavailable
        .as_ref()
        .is_some_and(|(s, _)| s == "True")
    {
        "bad"
    } else {
        ""
    };
    let calico_class = if r.calico_node_ready { "ok" } else { "bad" };
    view! {
        <tr data-node=r.name.clone()>
            <td><a href=href>{r.name.clone()}</a></td>
            <td class=status_class data-testid="node-status">{r.status.clone()}</td>
            <td>{roles}</td>
            <td>{r.age.clone()}</td>
            <td>{r.version.clone()}</td>
            <td>{r.internal_ip.clone().unwrap_or_else(|| t(Msg::NoRole).to_owned())}</td>
            <td>{r.os_image.clone()}</td>
            <td>{r.runtime.clone()}</td>
            <td>{r.pod_cidrs.join(",")}</td>
            <td>{or_dash(r.calico_ipv4.clone())}</td>
            <td>{or_dash(r.calico_tunnel.clone())}</td>
            <td class=netun_class>{netun}</td>
            <td class=calico_class>{or_dash(r.calico_node.clone())}</td>
            <td>{r.pods}</td>
            <td>{(r.findings > 0).then(|| view! { <span class="badge badge-bad">{r.findings}</span> })}</td>
        </tr>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_round_trip_through_the_url() {
        let q = NodesQuery {
            q: "10.13.0.1 x&y".into(),
            status: "cordoned".into(),
            sort: "age".into(),
            desc: true,
            page: 3,
            ..NodesQuery::default()
        };
        let link = href("lab", &q);
        assert_eq!(
            link,
            "/c/lab/nodes?q=10.13.0.1%20x%26y&status=cordoned&sort=age&desc=1&page=3"
        );
        assert_eq!(href("lab", &NodesQuery::default()), "/c/lab/nodes");
    }
}
