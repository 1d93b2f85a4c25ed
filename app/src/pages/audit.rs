//! The audit log: newest first, filtered by action, target and days, a page at a time,
//! exported as CSV with the same filters.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::components::json_codec::json_resource;
use crate::components::session::{Loading, show};
use crate::domain::model::{AuditEvent, Page};
use crate::server_fns::audit::{AuditQuery, get_audit};

#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let filters = move || {
        query.with(|q| AuditQuery {
            action: q.get("action"),
            target: q.get("target"),
            q: q.get("q"),
            from: q.get("from"),
            to: q.get("to"),
        })
    };
    let cursor = move || query.with(|q| q.get("cursor"));
    let data = json_resource(move || (filters(), cursor()), |(f, c)| get_audit(f, c));
    let value = move |f: fn(AuditQuery) -> Option<String>| move || f(filters()).unwrap_or_default();
    view! {
        <section class="panel" aria-labelledby="audit-heading">
            <h1 id="audit-heading">"Audit log"</h1>
            // A GET form: the filter is in the URL, so it works without JavaScript and can be shared.
            <form method="get" action="/audit" class="toolbar">
                <label for="audit-action">"Action starts with"</label>
                <input id="audit-action" name="action" type="search" placeholder="auth. or operation." value=value(|f| f.action) />
                <label for="audit-search">"Search"</label>
                <input id="audit-search" name="q" type="search" placeholder="rep@demo.nexus denied" value=value(|f| f.q) />
                <label for="audit-target">"Target"</label>
                <input id="audit-target" name="target" type="search" placeholder="user/rep@demo.nexus" value=value(|f| f.target) />
                <label for="audit-from">"From"</label>
                <input id="audit-from" name="from" type="date" value=value(|f| f.from) />
                <label for="audit-to">"To"</label>
                <input id="audit-to" name="to" type="date" value=value(|f| f.to) />
                <button type="submit" class="button">"Filter"</button>
                <a class="button button-quiet" data-testid="audit-export" href=move || format!("/api/v1/audit/export?{}", filters().export_query())>"Export CSV"</a>
            </form>
            <Transition fallback=Loading>
                {move || Suspend::new(async move {
                    show(data.await, move |page: Page<AuditEvent>| {
                        let next = page.next_cursor.clone().map(|c| {
                            let f = filters();
                            let pairs: Vec<(&str, String)> = [("action", f.action), ("target", f.target), ("q", f.q), ("from", f.from), ("to", f.to)]
                                .into_iter()
                                .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k, v)))
                                .collect();
                            let rest: String = pairs.iter().map(|(k, v)| format!("&{k}={}", crate::url::encode(v))).collect();
                            format!("/audit?cursor={}{rest}", crate::url::encode(&c))
                        });
                        let empty = page.items.is_empty();
                        view! {
                            {empty.then(|| view! { <p class="muted" data-testid="audit-empty">"No events match these filters."</p> })}
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
