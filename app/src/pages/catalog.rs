//! The catalog: capabilities, their versions (deprecated ones marked) and changelogs, and on
//! demand which customers run which version (`?usage=<slug>`: a link, so it works without
//! JavaScript and is read only when asked for).

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::components::json_codec::json_resource;
use crate::components::session::{Loading, show};
use crate::domain::views::{CapabilityDetail, CapabilityUsage};
use crate::server_fns::AppError;
use crate::server_fns::catalog::{get_capability_usage, get_catalog};

#[component]
pub fn CatalogPage() -> impl IntoView {
    let data = json_resource(|| (), |_| get_catalog());
    let query = use_query_map();
    let selected = move || query.with(|q| q.get("usage")).filter(|s| !s.is_empty());
    let usage = json_resource(selected, |slug| async move {
        match slug {
            Some(slug) => get_capability_usage(slug).await.map(Some),
            None => Ok::<_, AppError>(None),
        }
    });
    view! {
        <section class="panel" aria-labelledby="catalog-heading">
            <h1 id="catalog-heading">"Catalog"</h1>
            <Suspense fallback=Loading>
                {move || Suspend::new(async move {
                    show(data.await, move |caps: Vec<CapabilityDetail>| view! {
                        <ul class="cards" data-testid="catalog">
                            {caps.into_iter().map(|c| {
                                let slug = c.capability.slug.clone();
                                let open = {
                                    let slug = slug.clone();
                                    move || selected().as_deref() == Some(slug.as_str())
                                };
                                view! {
                                    <li class="card" id=format!("capability-{slug}") data-testid="capability">
                                        <h2>{c.capability.name.clone()}</h2>
                                        <p class="muted">{c.capability.category.clone()} " · " {format!("{:?}", c.capability.classification).to_lowercase()} " data"</p>
                                        <p>{c.capability.description.clone()}</p>
                                        <details>
                                            <summary>{format!("{} versions", c.releases.len())}</summary>
                                            <ul>
                                                {c.releases.into_iter().map(|r| view! {
                                                    <li>
                                                        <strong>"v" {r.version.to_string()}</strong>
                                                        {r.deprecated.then_some(" (deprecated)")}
                                                        " · " {format!("{:?}", r.strategy).to_lowercase()}
                                                        <p class="small">{r.changelog}</p>
                                                    </li>
                                                }).collect_view()}
                                            </ul>
                                        </details>
                                        <a class="usage-link" data-testid="usage-link" href=format!("/catalog?usage={slug}#capability-{slug}")>
                                            "Who runs which version"
                                        </a>
                                        <Show when=open>
                                            <Suspense fallback=Loading>
                                                {move || Suspend::new(async move {
                                                    show(usage.await, |u: Option<CapabilityUsage>| u.map(usage_view))
                                                })}
                                            </Suspense>
                                        </Show>
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    })
                })}
            </Suspense>
        </section>
    }
}

fn usage_view(u: CapabilityUsage) -> impl IntoView {
    let empty = u.versions.is_empty();
    view! {
        <div class="usage" data-testid="usage">
            <h3>"In use"</h3>
            {empty.then(|| view! { <p class="muted" data-testid="usage-empty">"None of your customers runs it."</p> })}
            <ul>
                {u.versions.into_iter().map(|v| {
                    let customers = v.customers.len();
                    view! {
                        <li data-testid="usage-version">
                            <strong>"v" {v.version.to_string()}</strong>
                            {v.deprecated.then_some(" (deprecated)")}
                            " · " <span data-testid="usage-count">{v.deployments}</span>
                            {if v.deployments == 1 { " deployment at " } else { " deployments at " }}
                            {customers} {if customers == 1 { " customer" } else { " customers" }}
                            <ul class="small">
                                {v.customers.into_iter().map(|c| {
                                    let envs = c.environments.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ");
                                    view! {
                                        <li><a href=format!("/customers/{}", c.id)>{c.name}</a> " (" {envs} ")"</li>
                                    }
                                }).collect_view()}
                            </ul>
                        </li>
                    }
                }).collect_view()}
            </ul>
            {u.truncated.then(|| view! {
                <p class="muted">"Counted over the first " {crate::domain::views::USAGE_LIMIT} " deployments."</p>
            })}
        </div>
    }
}
