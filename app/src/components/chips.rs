//! Status, health and drift as small labelled chips (colour is never the only signal: the word
//! is always there).

use leptos::prelude::*;

use crate::domain::lifecycle::{DeploymentStatus, Drift, Health, OperationState};

fn tone(problem: bool, ok: bool) -> &'static str {
    if problem {
        "chip chip-bad"
    } else if ok {
        "chip chip-ok"
    } else {
        "chip"
    }
}

#[component]
pub fn StatusChip(status: DeploymentStatus) -> impl IntoView {
    view! {
        <span class=tone(status.is_problem(), status == DeploymentStatus::Active) data-status=status.as_str()>
            {status.label()}
        </span>
    }
}

#[component]
pub fn HealthChip(health: Health) -> impl IntoView {
    view! {
        <span class=tone(health == Health::Degraded, health == Health::Healthy)>
            {format!("health: {}", health.as_str())}
        </span>
    }
}

#[component]
pub fn DriftChip(drift: Drift) -> impl IntoView {
    view! {
        <span class=tone(drift == Drift::Drifted, drift == Drift::InSync)>{format!("drift: {}", drift.as_str())}</span>
    }
}

#[component]
pub fn OperationChip(state: OperationState) -> impl IntoView {
    let bad = matches!(state, OperationState::Failed | OperationState::RolledBack | OperationState::Rejected);
    let ok = matches!(state, OperationState::Succeeded | OperationState::NoChanges);
    view! {
        <span class=tone(bad, ok) data-state=state.as_str()>
            {state.as_str().replace('_', " ")}
        </span>
    }
}
