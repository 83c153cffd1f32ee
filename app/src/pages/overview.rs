//! A cluster's overview. For now: whether its API server answers, its version and latency.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::layout::dot_class;
use crate::api::clusters::cluster_status;
use crate::i18n::{Msg, t};
use crate::{ErrorBox, PageHeader};

#[component]
pub fn OverviewPage() -> impl IntoView {
    let params = use_params_map();
    let name = move || params.read().get("cluster").unwrap_or_default();
    let status = Resource::new(name, cluster_status);
    view! {
        <Suspense fallback=|| view! { <p class="muted">{t(Msg::Loading)}</p> }>
            {move || Suspend::new(async move {
                match status.await {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(c) => view! {
                        <PageHeader title=format!("{} · {}", c.name, t(Msg::NavOverview))/>
                        <section class="cards">
                            <div class="card" data-testid="apiserver-card">
                                <h2>{t(Msg::ApiServer)}</h2>
                                <p>
                                    <span class=dot_class(c.reachable)></span>
                                    {if c.reachable { t(Msg::Reachable) } else { t(Msg::Unreachable) }}
                                </p>
                                {c.error.clone().map(|e| view! { <pre class="error-text">{e}</pre> })}
                                <dl>
                                    <dt>{t(Msg::KubernetesVersion)}</dt>
                                    <dd>{c.version.clone().unwrap_or_else(|| "—".to_owned())}</dd>
                                    <dt>{t(Msg::Latency)}</dt>
                                    <dd>{c.latency_ms.map(|ms| format!("{ms} ms")).unwrap_or_else(|| "—".to_owned())}</dd>
                                    <dt>{t(Msg::CheckedAt)}</dt>
                                    <dd>{c.checked_at.clone()}</dd>
                                </dl>
                            </div>
                        </section>
                    }
                        .into_any(),
                }
            })}
        </Suspense>
    }
}
