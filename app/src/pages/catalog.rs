//! The catalog: capabilities, their versions (deprecated ones marked) and changelogs.

use leptos::prelude::*;

use crate::api::catalog::get_catalog;
use crate::components::json_codec::json_resource;
use crate::components::session::{Loading, show};
use crate::domain::views::CapabilityDetail;

#[component]
pub fn CatalogPage() -> impl IntoView {
    let data = json_resource(|| (), |_| get_catalog());
    view! {
        <section class="panel" aria-labelledby="catalog-heading">
            <h1 id="catalog-heading">"Catalog"</h1>
            <Suspense fallback=Loading>
                {move || Suspend::new(async move {
                    show(data.await, |caps: Vec<CapabilityDetail>| view! {
                        <ul class="cards" data-testid="catalog">
                            {caps.into_iter().map(|c| view! {
                                <li class="card">
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
                                </li>
                            }).collect_view()}
                        </ul>
                    })
                })}
            </Suspense>
        </section>
    }
}
