//! Platform status: version, store and dependency checks, fetched through a server function.

use leptos::prelude::*;

use crate::components::json_codec::json_resource;
use crate::domain::views::PlatformStatus;
use crate::server_fns::status::get_platform_status;

#[component]
pub fn StatusPage() -> impl IntoView {
    // Bumped by the refresh button; the resource refetches (over HTTP) whenever it changes.
    let refreshes = RwSignal::new(0u32);
    let status = json_resource(move || refreshes.get(), |_| get_platform_status());

    view! {
        <section class="panel" aria-labelledby="status-heading">
            <div class="panel-head">
                <h1 id="status-heading">"Platform status"</h1>
                <button
                    type="button"
                    class="button"
                    data-testid="refresh-status"
                    on:click=move |_| refreshes.update(|n| *n += 1)
                >
                    "Refresh"
                </button>
            </div>
            <Suspense fallback=|| view! { <p class="muted">"Loading status…"</p> }>
                {move || Suspend::new(async move {
                    match status.await {
                        Ok(status) => view! { <StatusDetails status /> }.into_any(),
                        Err(error) => {
                            view! {
                                <p class="error" role="alert">
                                    "The status could not be loaded: " {error.to_string()}
                                </p>
                            }
                                .into_any()
                        }
                    }
                })}
            </Suspense>
            <p class="muted" data-testid="refresh-count" aria-live="polite">
                {move || match refreshes.get() {
                    0 => String::new(),
                    1 => "Refreshed once.".to_string(),
                    n => format!("Refreshed {n} times."),
                }}
            </p>
        </section>
    }
}

#[component]
fn StatusDetails(status: PlatformStatus) -> impl IntoView {
    let healthy = status.healthy();
    view! {
        <p data-testid="platform-health" class=if healthy { "chip chip-ok" } else { "chip chip-bad" }>
            {if healthy { "All systems operational" } else { "Degraded" }}
        </p>
        <dl class="facts">
            <dt>"Version"</dt>
            <dd data-testid="platform-version">{status.version.clone()}</dd>
            <dt>"Store"</dt>
            <dd data-testid="platform-store">{status.store.clone()}</dd>
            <dt>"Checked at"</dt>
            <dd data-testid="checked-at">{status.checked_at.clone()}</dd>
        </dl>
        <ul class="checks">
            {status
                .checks
                .into_iter()
                .map(|check| {
                    view! {
                        <li>
                            <span class=if check.ok { "dot dot-ok" } else { "dot dot-bad" } aria-hidden="true"></span>
                            <span>{check.name.clone()}</span>
                            <span class="muted">
                                {if check.ok { "ok".to_string() } else { check.error.clone().unwrap_or_default() }}
                            </span>
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
}
