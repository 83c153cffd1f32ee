//! The authenticated layout: top bar with the cluster switcher, navigation and user menu, around
//! the current page. It loads the logged-in user first and provides their language to every
//! page below it.

use leptos::prelude::*;
use leptos_router::components::{Outlet, Redirect};
use leptos_router::hooks::use_location;

use crate::api::clusters::{ClusterView, list_clusters};
use crate::api::session::{Me, whoami};
use crate::i18n::{Msg, Net, t};

#[component]
pub fn Layout() -> impl IntoView {
    let me = Resource::new_blocking(|| (), |_| whoami());
    let clusters = Resource::new(|| (), |_| list_clusters());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match me.await {
                    Ok(me) => {
                        provide_context(me.lang);
                        provide_context(me.clone());
                        view! {
                            <leptos_meta::Html attr:lang=me.lang.code()/>
                            <div class="app">
                                <TopBar me=me clusters=clusters/>
                                <main class="content">
                                    <Outlet/>
                                </main>
                            </div>
                        }
                            .into_any()
                    }
                    Err(_) => view! { <Redirect path="/login?error=session"/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The cluster named in the current path (`/c/<name>/...`), if any.
pub fn current_cluster() -> Memo<Option<String>> {
    let location = use_location();
    Memo::new(move |_| {
        let path = location.pathname.get();
        let mut parts = path.trim_start_matches('/').split('/');
        match (parts.next(), parts.next()) {
            (Some("c"), Some(name)) if !name.is_empty() => Some(name.to_owned()),
            _ => None,
        }
    })
}

#[component]
fn TopBar(
    me: Me,
    clusters: Resource<Result<Vec<ClusterView>, crate::error::AppError>>,
) -> impl IntoView {
    let current = current_cluster();
    let location = use_location();
    // Nav targets follow the selected cluster, else the first configured one.
    let cluster_for_nav = move || {
        current.get().or_else(|| {
            clusters
                .get()
                .and_then(|r| r.ok())
                .and_then(|list| list.first().map(|c| c.name.clone()))
        })
    };
    let nav_link = move |suffix: &'static str, label: &'static str| {
        let href = move || match cluster_for_nav() {
            Some(c) => format!("/c/{c}/{suffix}"),
            None => "/".to_owned(),
        };
        let active = move || location.pathname.get().ends_with(&format!("/{suffix}"));
        view! {
            <a href=href class:active=active>
                {label}
            </a>
        }
    };
    let is_active = move |path: &'static str| move || location.pathname.get() == path;
    let role_label = crate::api::role_label(me.role, me.lang);
    view! {
        <header class="topbar">
            <a class="brand" href="/" title=t(Msg::AppTagline)>
                "Grappe"
            </a>
            <ClusterSwitcher clusters=clusters/>
            <nav class="mainnav" aria-label="main">
                {nav_link("overview", t(Msg::NavOverview))}
                {nav_link("nodes", t(Msg::NavNodes))}
                {nav_link("ipam", t(Msg::NavIpam))}
                {nav_link("bgp", t(Msg::NavBgp))}
                {nav_link("mtu", t(Net::NavMtu))}
                {nav_link("cni", t(Msg::NavCni))}
                <a href="/history" class:active=is_active("/history")>
                    {t(Msg::NavHistory)}
                </a>
                <a href="/settings" class:active=is_active("/settings")>
                    {t(Msg::NavSettings)}
                </a>
            </nav>
            <details class="usermenu">
                <summary data-testid="user-menu">
                    <span class="user-name">{me.name.clone()}</span>
                    <span class="badge">{role_label}</span>
                </summary>
                <div class="menu">
                    <p class="muted">{t(Msg::SignedInAs)} " " <strong>{me.name.clone()}</strong></p>
                    <a href="/settings">{t(Msg::Language)} " / " {t(Msg::NavSettings)}</a>
                    <form method="post" action="/auth/logout">
                        <button type="submit" class="btn btn-link" data-testid="logout">
                            {t(Msg::LogOut)}
                        </button>
                    </form>
                </div>
            </details>
        </header>
    }
}

#[component]
fn ClusterSwitcher(
    clusters: Resource<Result<Vec<ClusterView>, crate::error::AppError>>,
) -> impl IntoView {
    let current = current_cluster();
    view! {
        <Transition fallback=|| view! { <span class="switcher muted">{t(Msg::Loading)}</span> }>
            {move || Suspend::new(async move {
                let list = clusters.await.unwrap_or_default();
                let selected = current
                    .get_untracked()
                    .or_else(|| list.first().map(|c| c.name.clone()));
                let selected_view = list.iter().find(|c| Some(&c.name) == selected.as_ref()).cloned();
                let summary = match &selected_view {
                    Some(c) => view! {
                        <span class=dot_class(c.reachable)></span>
                        <span>{c.name.clone()}</span>
                    }
                        .into_any(),
                    None => view! { <span class="muted">{t(Msg::Clusters)}</span> }.into_any(),
                };
                view! {
                    <details class="switcher" data-testid="cluster-switcher">
                        <summary>{summary}</summary>
                        <ul class="menu">
                            {if list.is_empty() {
                                view! { <li class="muted">{t(Msg::NoClusters)}</li> }.into_any()
                            } else {
                                list.into_iter()
                                    .map(|c| view! { <li><ClusterEntry cluster=c/></li> })
                                    .collect_view()
                                    .into_any()
                            }}
                        </ul>
                    </details>
                }
            })}
        </Transition>
    }
}

#[component]
fn ClusterEntry(cluster: ClusterView) -> impl IntoView {
    let href = format!("/c/{}/overview", cluster.name);
    let state = if cluster.reachable {
        format!(
            "{} · {}",
            t(Msg::Reachable),
            cluster.version.clone().unwrap_or_default()
        )
    } else {
        t(Msg::Unreachable).to_owned()
    };
    view! {
        <a href=href title=cluster.error.clone().unwrap_or_default()>
            <span class=dot_class(cluster.reachable)></span>
            <span class="cluster-name">{cluster.name.clone()}</span>
            <span class="muted small">{state}</span>
        </a>
    }
}

pub fn dot_class(reachable: bool) -> &'static str {
    if reachable {
        "dot dot-ok"
    } else {
        "dot dot-bad"
    }
}
