//! The deploy wizard: what can be deployed where, and the request itself.

use leptos::prelude::*;
use leptos::server_fn::codec::{GetUrl, Json};
use serde::{Deserialize, Serialize};

use super::AppError;
use crate::domain::{
    model::{Customer, Environment, Operation},
    views::{CapabilityDetail, DeployRequest},
};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeployOptions {
    pub customer: Customer,
    pub environments: Vec<Environment>,
    pub capabilities: Vec<CapabilityDetail>,
}

#[server(input = GetUrl, prefix = "/sfn", endpoint = "deploy-options")]
pub async fn get_deploy_options(customer: String) -> Result<DeployOptions, AppError> {
    use crate::{
        domain::ids::Id,
        ssr::{error::ServiceError, http::sfn},
    };
    let (state, actor) = (sfn::state(), sfn::actor()?);
    let id = Id::parse(&customer).map_err(|_| sfn::fail(ServiceError::NotFound("customer")))?;
    let detail = state.customers.get(&actor, &id).await.map_err(sfn::fail)?;
    let capabilities = state.capabilities.details(&actor).map_err(sfn::fail)?;
    Ok(DeployOptions { customer: detail.customer, environments: detail.environments, capabilities })
}

/// Requests a deployment. `key` is generated in the browser once per request, so sending it
/// again (a retry, a request queued while offline) never makes a second operation.
#[server(input = Json, prefix = "/sfn", endpoint = "request-deployment")]
pub async fn request_deployment(request: DeployRequest, key: String) -> Result<Operation, AppError> {
    use crate::ssr::http::sfn;
    let (state, actor) = (sfn::state(), sfn::actor()?);
    let key = sfn::idempotency_key(&key)?;
    state.operations.deploy(&actor, request, Some(key)).await.map_err(sfn::fail)
}
