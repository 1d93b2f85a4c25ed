//! The audit log: newest first, filtered by action, a page at a time, exported as CSV.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::api::audit::get_audit;
use crate::components::json_codec::json_resource;
use crate::components::session::{Loading, show};
use crate::domain::model::{AuditEvent, Page};

#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let action = move || query.with(|q| q.get("action"));
    let cursor = move || query.with(|q| q.get("cursor"));
    let data = json_resource(move || (action(), cursor()), |(a, c)| get_audit(a, c));
    view! {
        <section class="panel" aria-labelledby="audit-heading">
            <h1 id="audit-heading">"Audit log"</h1>
            // A GET form: the filter is in the URL, so it works without JavaScript and can be shared.
            <form method="get" action="/audit" class="toolbar">
                <label for="audit-action">"Action starts with"</label>
                <input id="audit-action" name="action" type="search" placeholder="auth. or operation." value=action />
                <button type="submit" class="button">"Filter"</button>
                <a class="button button-quiet" href=move || format!("/api/v1/audit/export{}", action().map(|a| format!("?action={}", crate::url::encode(&a))).unwrap_or_default())>"Export CSV"</a>
            </form>
            <Transition fallback=Loading>
                {move || Suspend::new(async move {
                    show(data.await, move |page: Page<AuditEvent>| {
                        let next = page.next_cursor.clone().map(|c| {
                            let a = action().map(|a| format!("&action={}", crate::url::encode(&a))).unwrap_or_default();
                            format!("/audit?cursor={}{a}", crate::url::encode(&c))
                        });
                        view! {
                            <div class="table-wrap">
                                <table class="grid" data-testid="audit">
                                    <thead>
                                        <tr><th scope="col">"When"</th><th scope="col">"Who"</th><th scope="col">"Action"</th><th scope="col">"Target"</th><th scope="col">"Outcome"</th></tr>
                                    </thead>
                                    <tbody>
                                        {page.items.into_iter().map(|e| view! {
                                            <tr>
                                                <td>{e.at.to_string()}</td>
                                                <td>{e.actor_email.unwrap_or_else(|| "system".into())}</td>
                                                <td class="mono">{e.action}</td>
                                                <td class="mono">{e.target}</td>
                                                <td>{e.outcome}</td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                            {next.map(|href| view! { <p><a href=href>"Older events"</a></p> })}
                        }
                    })
                })}
            </Transition>
        </section>
    }
}
