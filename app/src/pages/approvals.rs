//! The approvals inbox: requests the user may decide, and their own that wait on someone else.

use leptos::prelude::*;

use crate::components::json_codec::json_resource;
use crate::components::{
    change_set::ChangeSetTable,
    connectivity::{offline_reason, use_online},
    session::{Loading, show},
    step_up::{StepUpPrompt, asks_for_factor},
};
use crate::domain::views::InboxItem;
use crate::server_fns::{
    AppError,
    approvals::get_approvals,
    deployments::{ActOnOperation, OperationAction},
};

#[component]
pub fn ApprovalsPage() -> impl IntoView {
    let act = ServerAction::<ActOnOperation>::new();
    let data = json_resource(move || act.version().get(), |_| get_approvals());
    let error = move || match act.value().get() {
        Some(Err(AppError::Offline)) => Some("No connection: nothing was sent.".to_string()),
        Some(Err(AppError::MfaRequired)) => None,
        Some(Err(e)) => Some(e.to_string()),
        _ => None,
    };
    // A prod approval may ask for a fresh second factor: asked here, then the same decision again.
    let last = RwSignal::new(None::<ActOnOperation>);
    let retry = move || {
        if let Some(input) = last.get_untracked() {
            act.dispatch(input);
        }
    };
    view! {
        <section class="panel" aria-labelledby="approvals-heading">
            <h1 id="approvals-heading">"Approvals"</h1>
            <p class="error" role="alert">{error}</p>
            <Show when=move || asks_for_factor(&act.value().get())>
                <StepUpPrompt retry=retry />
            </Show>
            <Transition fallback=Loading>
                {move || Suspend::new(async move {
                    show(data.await, move |items: Vec<InboxItem>| {
                        if items.is_empty() {
                            return view! { <p class="muted" data-testid="approvals-empty">"Nothing waits for a decision."</p> }.into_any();
                        }
                        view! {
                            <ul class="cards" data-testid="approvals">
                                {items.into_iter().map(|item| view! { <InboxCard item act last /> }).collect_view()}
                            </ul>
                        }
                            .into_any()
                    })
                })}
            </Transition>
        </section>
    }
}

#[component]
fn InboxCard(
    item: InboxItem,
    act: ServerAction<ActOnOperation>,
    /// The decision last sent, sent again after a step-up.
    last: RwSignal<Option<ActOnOperation>>,
) -> impl IntoView {
    let online = use_online();
    let op = item.operation;
    let id = op.id.to_string();
    let note_id = format!("note-{id}");
    let note = RwSignal::new(String::new());
    let decide = move |action: OperationAction, id: String| {
        let input = ActOnOperation { id, action, note: Some(note.get_untracked()) };
        last.set(Some(input.clone()));
        act.dispatch(input);
    };
    let (id1, id2) = (id.clone(), id.clone());
    let has_change_set = op.change_set_id.is_some();
    let approve_label =
        if has_change_set || !op.kind.uses_change_set() { "Approve" } else { "Prepare preview" };
    view! {
        <li class="card" data-testid="approval">
            <p>
                <strong>{op.kind.label()}</strong>
                " " {op.capability.clone()}
                {op.target_version.map(|v| format!(" v{v}"))}
                " for " <strong>{item.customer_name}</strong> " " {op.environment.as_str()}
            </p>
            {(!op.parameters.is_empty()).then(|| view! {
                <details>
                    <summary>"Parameters"</summary>
                    <dl class="facts">
                        {op.parameters.clone().into_iter().map(|(k, v)| view! { <dt>{k}</dt> <dd class="mono">{v}</dd> }).collect_view()}
                    </dl>
                </details>
            })}
            <p class="muted">"Requested " {op.created_at.to_string()} " · " <a href=format!("/deployments/{}", op.deployment_id)>"deployment"</a></p>
            {if has_change_set {
                view! {
                    <h3 class="small">"What approving runs (its change set)"</h3>
                    <ChangeSetTable changes=op.changes.clone() testid="approval-changes" />
                }.into_any()
            } else if op.kind.uses_change_set() {
                view! {
                    <p class="muted" data-testid="approval-no-preview">
                        "No preview yet: \u{201c}Prepare preview\u{201d} makes its change set (nothing runs), and the request comes back here to be approved."
                    </p>
                }.into_any()
            } else {
                ().into_any()
            }}
            {if item.may_decide {
                view! {
                    <label for=note_id.clone()>"Note (optional)"</label>
                    <input id=note_id type="text" maxlength="500" on:input=move |ev| note.set(event_target_value(&ev)) />
                    <div class="actions">
                        <button type="button" class="button" data-testid="approve"
                            disabled=move || act.pending().get() || !online.get()
                            title=move || offline_reason(online.get()).unwrap_or_default()
                            on:click=move |_| decide(OperationAction::Approve, id1.clone())>{approve_label}</button>
                        <button type="button" class="button button-quiet" data-testid="reject"
                            disabled=move || act.pending().get() || !online.get()
                            on:click=move |_| decide(OperationAction::Reject, id2.clone())>"Reject"</button>
                    </div>
                }.into_any()
            } else {
                view! { <p class="chip">"Waiting for approval"</p> }.into_any()
            }}
        </li>
    }
}
