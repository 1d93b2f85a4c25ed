//! A deployment: version, parameters (NoEcho masked by the server), outputs, health, drift,
//! cost tags and the operations timeline. While an operation runs its stack events stream in
//! live (server-sent events); a change-set preview is shown with an explicit confirm.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::components::json_codec::json_resource;
use crate::components::outbox::new_key;
use crate::components::{
    change_set::ChangeSetTable,
    chips::{DriftChip, HealthChip, OperationChip, StatusChip},
    connectivity::{OfflineBanner, offline_reason, use_online},
    last_known::{fetch_or_recall, remember},
    session::{Loading, show, use_session},
    step_up::{StepUpPrompt, asks_for_factor},
};
use crate::domain::{
    lifecycle::{DeploymentStatus, OperationState},
    model::{EnvironmentName, Operation, Role},
    permissions,
    stacks::StackEvent,
};
use crate::server_fns::{
    AppError,
    deployments::{
        ActOnOperation, ChangeDeployment, DeploymentChange, DeploymentPage, OperationAction, get_deployment,
        get_operation_events,
    },
};

#[component]
pub fn DeploymentPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    // Bumped when an operation ends or an action succeeds: the page reloads its data.
    let reloads = RwSignal::new(0u32);
    let data = json_resource(
        move || (id(), reloads.get()),
        |(id, _)| fetch_or_recall(format!("deployment.{id}"), get_deployment(id.clone())),
    );
    Effect::new(move |_| {
        if let Some(Ok(page)) = data.get() {
            remember(&format!("deployment.{}", page.detail.view.deployment.id), &page);
        }
    });
    let as_of = Signal::derive(move || data.get().and_then(|r| r.ok()).map(|d| d.as_of));
    view! {
        <OfflineBanner as_of />
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                show(data.await, move |page| view! { <DeploymentView page reloads /> })
            })}
        </Transition>
    }
}

#[component]
fn DeploymentView(page: DeploymentPage, reloads: RwSignal<u32>) -> impl IntoView {
    let d = page.detail.view.deployment.clone();
    let operations = page.detail.operations.clone();
    let latest = operations.first().cloned();
    let tags = [
        ("nexus:customer", page.customer.slug.clone()),
        ("nexus:capability", d.capability.clone()),
        ("nexus:environment", d.environment.as_str().to_string()),
        ("CostCenter", page.customer.cost_center.clone()),
    ];
    view! {
        <section class="panel" aria-labelledby="deployment-heading">
            <p class="crumbs">
                <a href=format!("/customers/{}", page.customer.id)>{page.customer.name.clone()}</a>
                " › " {d.environment.as_str()}
            </p>
            <h1 id="deployment-heading">{d.capability.clone()} " " <span class="muted">"v" {d.version.to_string()}</span></h1>
            <div class="chips" data-testid="deployment-status">
                <StatusChip status=d.status />
                <HealthChip health=d.health />
                <DriftChip drift=d.drift />
                {page.detail.view.version_deprecated.then(|| view! { <span class="chip">"deprecated version"</span> })}
                {d.active_color.map(|c| view! { <span class="chip">{format!("active colour: {}", c.as_str())}</span> })}
            </div>
            <dl class="facts">
                <dt>"Stack"</dt>
                <dd class="mono">{d.stack_name.clone()}</dd>
                <dt>"Last checked"</dt>
                <dd>{d.last_synced_at.map(|t| t.to_string()).unwrap_or_else(|| "never".into())}</dd>
            </dl>
        </section>
        <ChangePanel page=page.clone() reloads />
        {latest.map(|op| view! { <CurrentOperation op reloads /> })}
        <section class="panel" aria-labelledby="params-heading">
            <h2 id="params-heading">"Parameters"</h2>
            <KeyValues values=d.parameters.clone().into_iter().collect() empty="No parameters." testid="parameters" />
            <h2>"Outputs"</h2>
            <KeyValues values=d.outputs.clone().into_iter().collect() empty="No outputs yet." testid="outputs" />
            <h2>"Cost tags"</h2>
            <KeyValues values=tags.iter().map(|(k, v)| (k.to_string(), v.clone())).collect() empty="" testid="tags" />
        </section>
        <section class="panel" aria-labelledby="history-heading">
            <h2 id="history-heading">"Operations"</h2>
            <ol class="timeline" data-testid="operations">
                {operations
                    .into_iter()
                    .map(|op| {
                        view! {
                            <li>
                                <strong>{op.kind.label()}</strong>
                                {op.target_version.map(|v| format!(" to v{v}"))}
                                " "
                                <OperationChip state=op.state />
                                <span class="muted">" " {op.created_at.to_string()}</span>
                                {op.failure.map(|f| view! {
                                    <p class="error">
                                        {f.logical_id.map(|l| format!("{l}: ")).unwrap_or_default()}
                                        {f.reason}
                                    </p>
                                })}
                                {op.error.map(|e| view! { <p class="error">{e}</p> })}
                            </li>
                        }
                    })
                    .collect_view()}
            </ol>
        </section>
    }
}

#[component]
fn KeyValues(values: Vec<(String, String)>, empty: &'static str, testid: &'static str) -> impl IntoView {
    if values.is_empty() {
        return view! { <p class="muted">{empty}</p> }.into_any();
    }
    view! {
        <dl class="facts" data-testid=testid>
            {values
                .into_iter()
                .map(|(k, v)| view! { <dt>{k}</dt> <dd class="mono">{v}</dd> })
                .collect_view()}
        </dl>
    }
    .into_any()
}

/// What the signed-in user may do with the operation right now (the server checks again).
fn actions_for(op: &Operation, role: Option<Role>, user: Option<&str>) -> Vec<OperationAction> {
    let own = user.is_some_and(|u| op.requested_by.as_str() == u);
    match op.state {
        OperationState::AwaitingApproval if own => vec![OperationAction::Cancel],
        OperationState::AwaitingApproval
            if role
                .is_some_and(|r| permissions::may_approve_visible(r, op.environment, op.approver, own)) =>
        {
            vec![OperationAction::Approve, OperationAction::Reject]
        }
        OperationState::PreviewReady => vec![OperationAction::Execute, OperationAction::Cancel],
        _ => vec![],
    }
}

fn action_label(a: OperationAction) -> &'static str {
    match a {
        OperationAction::Execute => "Confirm and run",
        OperationAction::Approve => "Approve",
        OperationAction::Reject => "Reject",
        OperationAction::Cancel => "Cancel",
    }
}

/// The latest operation: its preview, its live stack events and what can be done with it.
#[component]
fn CurrentOperation(op: Operation, reloads: RwSignal<u32>) -> impl IntoView {
    let session = use_session();
    let online = use_online();
    let act = ServerAction::<ActOnOperation>::new();
    Effect::new(move |_| {
        if let Some(Ok(_)) = act.value().get() {
            reloads.update(|n| *n += 1);
        }
    });
    let op_id = op.id.to_string();
    let state = RwSignal::new(op.state);
    let events = RwSignal::new(Vec::<StackEvent>::new());
    let stored = json_resource(
        {
            let id = op_id.clone();
            move || id.clone()
        },
        get_operation_events,
    );
    live_events(op_id.clone(), op.state, state, events, reloads);
    let actions = {
        let op = op.clone();
        move || {
            let info = session.get().and_then(|s| s.ok()).flatten();
            actions_for(&op, info.as_ref().map(|i| i.user.role), info.as_ref().map(|i| i.user.id.as_str()))
        }
    };
    let changes = op.changes.clone();
    // What the approver (or the one who rejected it) wrote.
    let decision = op
        .decision_note
        .clone()
        .map(|n| (if op.rejected_by.is_some() { "Rejection note:" } else { "Approval note:" }, n));
    let requested: Vec<(String, String)> = op.parameters.clone().into_iter().collect();
    let error = move || match act.value().get() {
        Some(Err(AppError::Offline)) => Some("No connection: nothing was sent.".to_string()),
        Some(Err(AppError::MfaRequired)) => None,
        Some(Err(e)) => Some(e.to_string()),
        _ => None,
    };
    // Approving or running a prod change may ask for a fresh second factor: asked in place, then
    // the same action again.
    let last = RwSignal::new(None::<ActOnOperation>);
    let retry = move || {
        if let Some(input) = last.get_untracked() {
            act.dispatch(input);
        }
    };
    view! {
        <section class="panel" aria-labelledby="current-op-heading" data-testid="current-operation">
            <h2 id="current-op-heading">
                "Latest operation: " {op.kind.label()} " " {move || view! { <OperationChip state=state.get() /> }}
            </h2>
            {op.target_version.clone().map(|v| view! { <p>"To version " <strong>{format!("v{v}")}</strong></p> })}
            {(!requested.is_empty()).then(|| view! {
                <h3>"Parameters requested"</h3>
                <KeyValues values=requested empty="" testid="operation-parameters" />
            })}
            {(!changes.is_empty()).then(|| view! {
                <h3>"Change-set preview"</h3>
                <ChangeSetTable changes testid="preview" />
            })}
            {decision.map(|(label, note)| view! {
                <p data-testid="decision-note"><strong>{label}</strong> " " {note}</p>
            })}
            <div class="actions">
                {move || {
                    let id = op_id.clone();
                    actions()
                        .into_iter()
                        .map(|a| {
                            let id = id.clone();
                            view! {
                                <button
                                    type="button"
                                    class=if a == OperationAction::Reject || a == OperationAction::Cancel { "button button-quiet" } else { "button" }
                                    data-testid=format!("op-{}", action_label(a).to_lowercase().replace(' ', "-"))
                                    disabled=move || act.pending().get() || !online.get()
                                    title=move || offline_reason(online.get()).unwrap_or_default()
                                    on:click=move |_| {
                                        let input = ActOnOperation { id: id.clone(), action: a, note: None };
                                        last.set(Some(input.clone()));
                                        act.dispatch(input);
                                    }
                                >
                                    {action_label(a)}
                                </button>
                            }
                        })
                        .collect_view()
                }}
            </div>
            <p class="error" role="alert">{error}</p>
            <Show when=move || asks_for_factor(&act.value().get())>
                <StepUpPrompt retry=retry />
            </Show>
            <h3>"Stack events"</h3>
            <Suspense fallback=Loading>
                {move || Suspend::new(async move {
                    let stored = stored.await.unwrap_or_default();
                    let live = move || {
                        let live = events.get();
                        let mut all = stored.clone();
                        all.extend(live.into_iter().filter(|e| !stored.iter().any(|s| s.event_id == e.event_id)));
                        all
                    };
                    view! {
                        <ol class="events" data-testid="stack-events" aria-live="polite">
                            <For each=live key=|e| e.event_id.clone() let:e>
                                <li class=if e.status.ends_with("FAILED") { "error" } else { "" }>
                                    <span class="mono">{e.logical_id.clone()}</span>
                                    " " {e.status.clone()}
                                    {e.reason.clone().map(|r| format!(" — {r}"))}
                                </li>
                            </For>
                        </ol>
                    }
                })}
            </Suspense>
        </section>
    }
}

/// Follows a running operation over server-sent events (browser only): stack events as they
/// come, the operation's state, and a reload of the page's data when it ends.
#[allow(unused_variables)]
fn live_events(
    op_id: String,
    initial: OperationState,
    state: RwSignal<OperationState>,
    events: RwSignal<Vec<StackEvent>>,
    reloads: RwSignal<u32>,
) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::{JsCast, closure::Closure};
        if initial.is_terminal() {
            return;
        }
        let Ok(source) = web_sys::EventSource::new(&format!("/api/v1/operations/{op_id}/events/stream"))
        else {
            return;
        };
        let on_event = Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |m: web_sys::MessageEvent| {
            if let Some(e) = m
                .data()
                .as_string()
                .and_then(|s| crate::components::json_codec::decode::<StackEvent>(&s).ok())
            {
                events.update(|all| all.push(e));
            }
        });
        let closer = source.clone();
        let on_operation = Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |m: web_sys::MessageEvent| {
            if let Some(op) =
                m.data().as_string().and_then(|s| crate::components::json_codec::decode::<Operation>(&s).ok())
            {
                let changed = state.get_untracked() != op.state;
                state.set(op.state);
                // A preview is ready or the operation ended: show the page's new state.
                if changed && (op.state.is_terminal() || op.state == OperationState::PreviewReady) {
                    reloads.update(|n| *n += 1);
                }
                if op.state.is_terminal() {
                    closer.close();
                }
            }
        });
        // The server ends a stream when the operation ends, the session no longer stands, or
        // the stream is old: only then does the browser reconnect (resuming after the last
        // event it saw, through `Last-Event-ID`).
        let ender = source.clone();
        let on_end = Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |m: web_sys::MessageEvent| {
            let old = m.data().as_string().is_some_and(|s| s.contains("\"lifetime\""));
            if !old {
                ender.close();
            }
        });
        let _ = source.add_event_listener_with_callback("stack-event", on_event.as_ref().unchecked_ref());
        let _ = source.add_event_listener_with_callback("operation", on_operation.as_ref().unchecked_ref());
        let _ = source.add_event_listener_with_callback("end", on_end.as_ref().unchecked_ref());
        on_event.forget();
        on_operation.forget();
        on_end.forget();
        let source = send_wrapper::SendWrapper::new(source);
        on_cleanup(move || source.close());
    }
}

/// Upgrade, roll back, switch colour, check drift, delete: each starts an operation (previewed
/// before it changes anything; approvals as the role requires).
#[component]
fn ChangePanel(page: DeploymentPage, reloads: RwSignal<u32>) -> impl IntoView {
    let online = use_online();
    let change = ServerAction::<ChangeDeployment>::new();
    Effect::new(move |_| {
        if let Some(Ok(_)) = change.value().get() {
            reloads.update(|n| *n += 1);
        }
    });
    let d = page.detail.view.deployment.clone();
    let busy = page.detail.operations.first().is_some_and(|o| o.state.is_active());
    if d.status == DeploymentStatus::Deleted {
        return ().into_any();
    }
    let id = d.id.to_string();
    let prod = d.environment == EnvironmentName::Prod;
    let stack = d.stack_name.clone();
    let version = RwSignal::new(page.upgrades.first().map(|v| v.to_string()).unwrap_or_default());
    let confirm = RwSignal::new(String::new());
    let start = move |c: DeploymentChange| {
        change.dispatch(ChangeDeployment { id: id.clone(), change: c, key: new_key() });
    };
    let disabled = move || busy || change.pending().get() || !online.get();
    let reason = move || {
        if busy {
            Some("An operation is in progress: wait for it to finish.")
        } else {
            offline_reason(online.get())
        }
    };
    let error = move || match change.value().get() {
        Some(Err(AppError::Offline)) => Some("No connection: nothing was sent.".to_string()),
        Some(Err(e)) => Some(e.to_string()),
        _ => None,
    };
    let upgrades = page.upgrades.clone();
    let has_previous = d.previous_version.is_some();
    let blue_green = d.active_color.is_some();
    let (s1, s2, s3, s4, s5) = (start.clone(), start.clone(), start.clone(), start.clone(), start);
    view! {
        <section class="panel" aria-labelledby="changes-heading" data-testid="changes">
            <h2 id="changes-heading">"Change"</h2>
            <p class="muted" role="status">{reason}</p>
            <div class="actions">
                {(!upgrades.is_empty()).then(|| view! {
                    <label for="upgrade-version" class="sr-only">"Upgrade to version"</label>
                    <select id="upgrade-version" on:change=move |ev| version.set(event_target_value(&ev))>
                        {upgrades.iter().map(|v| view! { <option value=v.to_string()>{format!("v{v}")}</option> }).collect_view()}
                    </select>
                    <button type="button" class="button" data-testid="upgrade" disabled=disabled
                        on:click=move |_| s1(DeploymentChange::Upgrade { version: version.get_untracked() })>"Upgrade"</button>
                })}
                {has_previous.then(|| view! {
                    <button type="button" class="button" data-testid="rollback" disabled=disabled
                        on:click=move |_| s2(DeploymentChange::Rollback)>"Roll back"</button>
                })}
                {blue_green.then(|| view! {
                    <button type="button" class="button" data-testid="switch" disabled=disabled
                        on:click=move |_| s3(DeploymentChange::Switch)>"Switch colour"</button>
                })}
                <button type="button" class="button button-quiet" data-testid="drift-check" disabled=disabled
                    on:click=move |_| s4(DeploymentChange::DriftCheck)>"Check drift"</button>
            </div>
            <details>
                <summary>"Delete this deployment"</summary>
                {prod.then(|| view! {
                    <label for="delete-confirm">"Type the stack name " <span class="mono">{stack.clone()}</span> " to confirm"</label>
                    <input id="delete-confirm" type="text" autocomplete="off" on:input=move |ev| confirm.set(event_target_value(&ev)) />
                })}
                <button type="button" class="button button-quiet" data-testid="delete"
                    disabled=move || disabled() || (prod && confirm.get() != stack)
                    on:click=move |_| s5(DeploymentChange::Delete { confirm: prod.then(|| confirm.get_untracked()) })>
                    "Delete"
                </button>
            </details>
            <p class="error" role="alert" data-testid="change-error">{error}</p>
        </section>
    }
    .into_any()
}
