//! The fleet dashboard, scoped by role: capability x environment counts with problems first,
//! then the user's customers a page at a time (`?after=<cursor>`). Counts come from counters, so
//! it stays quick at 15,000 deployments; details are one click away.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::components::json_codec::json_resource;
use crate::components::{
    chips::StatusChip,
    connectivity::OfflineBanner,
    last_known::fetch_or_recall,
    session::{Loading, show},
};
use crate::domain::{search::every_word_in, views::FleetRow};
use crate::server_fns::fleet::{Dashboard, get_dashboard};

#[component]
pub fn DashboardPage() -> impl IntoView {
    let query = use_query_map();
    // The page of customers and the customer search, from the URL (a GET form: works without JS).
    let page = move || {
        query.with(|q| (q.get("after"), crate::domain::search::query(q.get_str("q")).map(str::to_string)))
    };
    // Only the first unfiltered page is kept as the last-known state (it is what opens offline).
    let data = json_resource(page, |(after, q)| async move {
        match (after, q) {
            (None, None) => fetch_or_recall("dashboard".into(), get_dashboard(None, None)).await,
            (after, q) => get_dashboard(after, q).await,
        }
    });
    remember_on_client(data, move || page() == (None, None));
    let as_of = Signal::derive(move || data.get().and_then(|r| r.ok()).map(|d| d.as_of));
    view! {
        <OfflineBanner as_of />
        <Suspense fallback=Loading>
            {move || Suspend::new(async move {
                let search = page().1.unwrap_or_default();
                show(data.await, |d| view! { <DashboardView d search /> })
            })}
        </Suspense>
    }
}

/// A page that hydrates from the server's HTML never runs its fetcher in the browser: keep its
/// data as the last-known state from here.
fn remember_on_client(
    data: Resource<Result<Dashboard, crate::server_fns::AppError>, crate::components::json_codec::JsonBytes>,
    first_page: impl Fn() -> bool + 'static,
) {
    Effect::new(move |_| {
        if let Some(Ok(d)) = data.get()
            && first_page()
        {
            crate::components::last_known::remember("dashboard", &d);
        }
    });
}

/// `search`: the customer search the server applied (`?q=`); typing filters what is shown at
/// once, and submitting searches every customer.
#[component]
fn DashboardView(d: Dashboard, search: String) -> impl IntoView {
    let filter = RwSignal::new(search.clone());
    let problems_only = RwSignal::new(false);
    // "" is every environment.
    let environment = RwSignal::new(String::new());
    let problem_class = if d.summary.problems > 0 { "text-bad" } else { "" };
    let (no_rows, no_customers) = (d.summary.rows.is_empty(), d.customers.is_empty());
    let next = d.next_customers.clone().map(|c| {
        let q = if search.is_empty() { String::new() } else { format!("&q={}", crate::url::encode(&search)) };
        format!("/?after={}{q}", crate::url::encode(&c))
    });
    let searched = !search.is_empty();
    let rows = d.summary.rows.clone();
    let customers = d.customers.clone();
    let visible_rows = move || {
        let f = filter.get();
        rows.iter()
            .filter(|r| !problems_only.get() || r.problem)
            .filter(|r| environment.with(|e| e.is_empty() || e == r.environment.as_str()))
            .filter(|r| every_word_in(&f, &[&r.capability]))
            .cloned()
            .collect::<Vec<FleetRow>>()
    };
    let visible_rows_empty = {
        let visible_rows = visible_rows.clone();
        move || visible_rows().is_empty()
    };
    // The same rule as the server's search, so typing and submitting agree.
    let visible_customers = move || {
        let f = filter.get();
        customers
            .iter()
            .filter(|c| every_word_in(&f, &[&c.name, &c.slug, &c.cost_center]))
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
                <form method="get" action="/" class="search-form" role="search">
                    <label for="fleet-search">"Search"</label>
                    <input
                        id="fleet-search"
                        name="q"
                        type="search"
                        placeholder="capability or customer"
                        prop:value=search.clone()
                        on:input=move |ev| filter.set(event_target_value(&ev))
                    />
                    <button type="submit" class="button button-quiet" data-testid="search-all">
                        "Search all customers"
                    </button>
                </form>
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
            // Filtered down to nothing (a customer's name typed, say): say so rather than show an
            // empty grid.
            <Show when=move || !no_rows && visible_rows_empty()>
                <p class="muted" data-testid="fleet-no-match">"No capability matches these filters."</p>
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
                <p class="muted" data-testid="no-customers">
                    {if searched { "No customer matches the search." } else { "No customers to show." }}
                </p>
            </Show>
            {searched.then(|| view! { <p><a href="/" data-testid="clear-search">"All customers"</a></p> })}
            {next.map(|href| view! { <p><a href=href data-testid="more-customers">"More customers"</a></p> })}
        </section>
    }
}
