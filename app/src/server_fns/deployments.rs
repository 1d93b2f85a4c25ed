//! A deployment's page and the actions on its operations.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use super::AppError;
use crate::domain::{
    model::{Customer, Operation},
    semver::Version,
    stacks::StackEvent,
    time::Timestamp,
    views::DeploymentDetail,
};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentPage {
    pub detail: DeploymentDetail,
    pub customer: Customer,
    /// Versions newer than the running one that take new deployments, newest first.
    pub upgrades: Vec<Version>,
    pub as_of: Timestamp,
}

#[server(input = GetUrl, prefix = "/sfn", endpoint = "deployment")]
pub async fn get_deployment(id: String) -> Result<DeploymentPage, AppError> {
    use crate::{
        domain::ids::Id,
        ssr::{clock, error::ServiceError, http::sfn},
    };
    let (state, actor) = (sfn::state(), sfn::actor()?);
    let id = Id::parse(&id).map_err(|_| sfn::fail(ServiceError::NotFound("deployment")))?;
    let detail = state.deployments.get(&actor, &id).await.map_err(sfn::fail)?;
    let customer =
        state.customers.get(&actor, &detail.view.deployment.customer_id).await.map_err(sfn::fail)?.customer;
    let running = detail.view.deployment.version.clone();
    let upgrades = state
        .capabilities
        .get(&actor, &detail.view.deployment.capability)
        .map(|c| {
            c.releases
                .into_iter()
                .filter(|r| !r.deprecated && r.version > running)
                .map(|r| r.version)
                .collect()
        })
        .unwrap_or_default();
    Ok(DeploymentPage { detail, customer, upgrades, as_of: clock::now() })
}

/// The stack events an operation caused, oldest first.
#[server(input = GetUrl, prefix = "/sfn", endpoint = "operation-events")]
pub async fn get_operation_events(id: String) -> Result<Vec<StackEvent>, AppError> {
    use crate::{
        domain::ids::Id,
        ssr::{error::ServiceError, http::sfn},
    };
    let (state, actor) = (sfn::state(), sfn::actor()?);
    let id = Id::parse(&id).map_err(|_| sfn::fail(ServiceError::NotFound("operation")))?;
    state.operations.events(&actor, &id).await.map_err(sfn::fail)
}

/// What a user does with an operation from its page or the approvals inbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationAction {
    /// Run a previewed change set.
    Execute,
    Approve,
    Reject,
    Cancel,
}

#[server(prefix = "/sfn", endpoint = "operation-action")]
pub async fn act_on_operation(
    id: String,
    action: OperationAction,
    note: Option<String>,
) -> Result<Operation, AppError> {
    use crate::{
        domain::{ids::Id, views::DecisionRequest},
        ssr::{error::ServiceError, http::sfn},
    };
    let (state, actor) = (sfn::state(), sfn::actor()?);
    let id = Id::parse(&id).map_err(|_| sfn::fail(ServiceError::NotFound("operation")))?;
    let ops = &state.operations;
    let note = note.filter(|n| !n.trim().is_empty());
    match action {
        OperationAction::Execute => ops.execute(&actor, &id).await,
        OperationAction::Approve => ops.approve(&actor, &id, DecisionRequest { note }).await,
        OperationAction::Reject => ops.reject(&actor, &id, DecisionRequest { note }).await,
        OperationAction::Cancel => ops.cancel(&actor, &id).await,
    }
    .map_err(sfn::fail)
}

/// A change to a deployment, started from its page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeploymentChange {
    /// Parameters keep their values.
    Upgrade {
        version: String,
    },
    Rollback,
    /// Blue-green: make the other colour active.
    Switch,
    DriftCheck,
    /// A prod deployment needs its stack name typed as confirmation.
    Delete {
        confirm: Option<String>,
    },
}

/// Starts a change; `key` (made in the browser once per click) makes a repeated click harmless.
#[server(input = leptos::server_fn::codec::Json, prefix = "/sfn", endpoint = "change-deployment")]
pub async fn change_deployment(
    id: String,
    change: DeploymentChange,
    key: String,
) -> Result<Operation, AppError> {
    use crate::{
        domain::{
            ids::Id,
            views::{ChangeRequest, DeleteRequest, UpgradeRequest},
        },
        ssr::{error::ServiceError, http::sfn},
    };
    let (state, actor) = (sfn::state(), sfn::actor()?);
    let id = Id::parse(&id).map_err(|_| sfn::fail(ServiceError::NotFound("deployment")))?;
    let key = sfn::idempotency_key(&key)?;
    let ops = &state.operations;
    match change {
        DeploymentChange::Upgrade { version } => {
            let req = UpgradeRequest { version, parameters: Default::default(), auto_execute: false };
            ops.upgrade(&actor, &id, req, Some(key)).await
        }
        DeploymentChange::Rollback => ops.rollback(&actor, &id, ChangeRequest::default(), Some(key)).await,
        DeploymentChange::Switch => ops.switch(&actor, &id, ChangeRequest::default(), Some(key)).await,
        DeploymentChange::DriftCheck => ops.drift_check(&actor, &id).await,
        DeploymentChange::Delete { confirm } => {
            ops.delete(&actor, &id, DeleteRequest { confirm }, Some(key)).await
        }
    }
    .map_err(sfn::fail)
}
