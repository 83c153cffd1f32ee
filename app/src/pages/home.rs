//! The landing page: every configured cluster with its reachability.

use leptos::prelude::*;

use super::layout::dot_class;
use super::or_dash;
use crate::api::clusters::list_clusters;
use crate::i18n::{Msg, t};
use crate::{ErrorBox, PageHeader};

#[component]
pub fn HomePage() -> impl IntoView {
    let clusters = Resource::new(|| (), |_| list_clusters());
    view! {
        <PageHeader title=t(Msg::Clusters).to_owned() subtitle=t(Msg::AppTagline)/>
        <Suspense fallback=|| view! { <p class="muted">{t(Msg::Loading)}</p> }>
            {move || Suspend::new(async move {
                match clusters.await {
                    Err(e) => view! { <ErrorBox error=e/> }.into_any(),
                    Ok(list) if list.is_empty() => {
                        view! { <p class="alert alert-info">{t(Msg::NoClusters)}</p> }.into_any()
                    }
                    Ok(list) => view! {
                        <table tabindex="0" class="table" data-testid="clusters-table">
                            <thead>
                                <tr>
                                    <th>{t(Msg::Cluster)}</th>
                                    <th>{t(Msg::ApiServer)}</th>
                                    <th>{t(Msg::KubernetesVersion)}</th>
                                    <th>{t(Msg::Latency)}</th>
                                </tr>
                            </thead>
                            <tbody>
                                {list
                                    .into_iter()
                                    .map(|c| {
                                        let state = if c.reachable {
                                            t(Msg::Reachable).to_owned()
                                        } else {
                                            format!("{}: {}", t(Msg::Unreachable), c.error.clone().unwrap_or_default())
                                        };
                                        view! {
                                            <tr>
                                                <td>
                                                    <a href=format!("/c/{}/overview", c.name)>{c.name.clone()}</a>
                                                </td>
                                                <td><span class=dot_class(c.reachable)></span> {state}</td>
                                                <td>{or_dash(c.version.clone())}</td>
                                                <td>{or_dash(c.latency_ms.map(|ms| format!("{ms} ms")))}</td>
                                            </tr>
                                        }
                                    })
                                    .collect_view()}
                            </tbody>
                        </table>
                    }
                        .into_any(),
                }
            })}
        </Suspense>
    }
}
