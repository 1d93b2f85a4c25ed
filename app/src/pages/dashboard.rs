//! The fleet dashboard, scoped by role: capability x environment counts with problems first,
//! then the user's customers a page at a time (`?after=<cursor>`). Counts come from counters, so
//! it stays quick at 15,000 deployments; details are one click away.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::api::fleet::{Dashboard, get_dashboard};
use crate::components::json_codec::json_resource;
use crate::components::{
    chips::StatusChip,
    connectivity::OfflineBanner,
    last_known::fetch_or_recall,
    session::{Loading, show},
};
use crate::domain::views::FleetRow;

#[component]
pub fn DashboardPage() -> impl IntoView {
    let query = use_query_map();
    let after = move || query.with(|q| q.get("after"));
    // Only the first page is kept as the last-known state (it is what opens offline).
    let data = json_resource(after, |after| async move {
        match after {
            None => fetch_or_recall("dashboard".into(), get_dashboard(None)).await,
            Some(a) => get_dashboard(Some(a)).await,
        }
    });
    remember_on_client(data, after);
    let as_of = Signal::derive(move || data.get().and_then(|r| r.ok()).map(|d| d.as_of));
    view! {
        <OfflineBanner as_of />
        <Suspense fallback=Loading>
            {move || Suspend::new(async move { show(data.await, |d| view! { <DashboardView d /> }) })}
        </Suspense>
    }
}

/// A page that hydrates from the server's HTML never runs its fetcher in the browser: keep its
/// data as the last-known state from here.
fn remember_on_client(
    data: Resource<Result<Dashboard, crate::api::AppError>, crate::components::json_codec::JsonBytes>,
    after: impl Fn() -> Option<String> + 'static,
) {
    Effect::new(move |_| {
        if let Some(Ok(d)) = data.get()
            && after().is_none()
        {
            crate::components::last_known::remember("dashboard", &d);
        }
    });
}

#[component]
fn DashboardView(d: Dashboard) -> impl IntoView {
    let filter = RwSignal::new(String::new());
    let problems_only = RwSignal::new(false);
    // "" is every environment.
    let environment = RwSignal::new(String::new());
    let problem_class = if d.summary.problems > 0 { "text-bad" } else { "" };
    let (no_rows, no_customers) = (d.summary.rows.is_empty(), d.customers.is_empty());
    let next = d.next_customers.clone().map(|c| format!("/?after={}", crate::url::encode(&c)));
    let rows = d.summary.rows.clone();
    let customers = d.customers.clone();
    let visible_rows = move || {
        let f = filter.get().to_lowercase();
        rows.iter()
            .filter(|r| !problems_only.get() || r.problem)
            .filter(|r| environment.with(|e| e.is_empty() || e == r.environment.as_str()))
            .filter(|r| f.is_empty() || r.capability.contains(&f))
            .cloned()
            .collect::<Vec<FleetRow>>()
    };
    let visible_customers = move || {
        let f = filter.get().to_lowercase();
        customers
            .iter()
            .filter(|c| f.is_empty() || c.name.to_lowercase().contains(&f))
            .cloned()
            .collect::<Vec<_>>()
    };
    view! {
        <section class="panel" aria-labelledby="fleet-heading">
            <h1 id="fleet-heading">"Fleet"</h1>
            <p data-testid="fleet-totals">
                <strong>{d.summary.total}</strong>
                " deployments, "
                <strong class=problem_class>{d.summary.problems}</strong>
                " need attention"
            </p>
            <div class="toolbar">
                <label for="fleet-search">"Search"</label>
                <input
                    id="fleet-search"
                    type="search"
                    placeholder="capability or customer"
                    on:input=move |ev| filter.set(event_target_value(&ev))
                />
                <label for="fleet-environment">"Environment"</label>
                <select id="fleet-environment" on:change=move |ev| environment.set(event_target_value(&ev))>
                    <option value="">"All"</option>
                    {crate::domain::model::EnvironmentName::ALL
                        .into_iter()
                        .map(|e| view! { <option value=e.as_str()>{e.as_str()}</option> })
                        .collect_view()}
                </select>
                <label class="check">
                    <input type="checkbox" on:change=move |ev| problems_only.set(event_target_checked(&ev)) />
                    "Problems only"
                </label>
            </div>
            <div class="table-wrap">
                <table class="grid" data-testid="fleet-grid">
                    <caption class="sr-only">"Deployments by capability, environment and status"</caption>
                    <thead>
                        <tr>
                            <th scope="col">"Capability"</th>
                            <th scope="col">"Environment"</th>
                            <th scope="col">"Status"</th>
                            <th scope="col" class="num">"Count"</th>
                        </tr>
                    </thead>
                    <tbody>
                        <For each=visible_rows key=|r| (r.capability.clone(), r.environment, r.status) let:row>
                            <tr class=if row.problem { "problem" } else { "" }>
                                // Drill down: which customers run which version of it.
                                <td>
                                    <a href=format!("/catalog?usage={0}#capability-{0}", row.capability)>
                                        {row.capability.clone()}
                                    </a>
                                </td>
                                <td>{row.environment.as_str()}</td>
                                <td><StatusChip status=row.status /></td>
                                <td class="num">{row.count}</td>
                            </tr>
                        </For>
                    </tbody>
                </table>
            </div>
            <Show when=move || no_rows>
                <p class="muted">"No deployments yet."</p>
            </Show>
        </section>
        <section class="panel" aria-labelledby="customers-heading">
            <h2 id="customers-heading">"Customers"</h2>
            <ul class="list" data-testid="customer-list">
                <For each=visible_customers key=|c| c.id.clone() let:c>
                    <li>
                        <a href=format!("/customers/{}", c.id)>{c.name.clone()}</a>
                        <span class="muted">" · " {c.cost_center.clone()}</span>
                    </li>
                </For>
            </ul>
            <Show when=move || no_customers>
                <p class="muted">"No customers to show."</p>
            </Show>
            {next.map(|href| view! { <p><a href=href data-testid="more-customers">"More customers"</a></p> })}
        </section>
    }
}
