//! A change set's resources, as the preview and the approval both show them: what is added,
//! modified or removed, and whether a resource is replaced (the line an approver looks for).

use leptos::prelude::*;

use crate::domain::model::ResourceChange;

#[component]
pub fn ChangeSetTable(changes: Vec<ResourceChange>, testid: &'static str) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="grid" data-testid=testid>
                <thead>
                    <tr><th scope="col">"Action"</th><th scope="col">"Resource"</th><th scope="col">"Type"</th><th scope="col">"Replacement"</th></tr>
                </thead>
                <tbody>
                    {changes.into_iter().map(|c| {
                        let replaced = c.replacement.as_deref().is_some_and(|r| r != "False");
                        view! {
                            <tr class:problem=replaced>
                                <td>{c.action}</td>
                                <td class="mono">{c.logical_id}</td>
                                <td class="mono">{c.resource_type}</td>
                                <td>{c.replacement.unwrap_or_else(|| "—".into())}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}
