//! A customer's page: its environments and deployments.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use super::AppError;
use crate::domain::{time::Timestamp, views::CustomerDetail};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerPage {
    pub detail: CustomerDetail,
    pub as_of: Timestamp,
}

/// 404 for a customer that does not exist or is not the user's to see.
#[server(input = GetUrl, prefix = "/sfn", endpoint = "customer")]
pub async fn get_customer(id: String) -> Result<CustomerPage, AppError> {
    use crate::{
        domain::ids::Id,
        ssr::{clock, error::ServiceError, http::sfn},
    };
    let (state, actor) = (sfn::state(), sfn::actor()?);
    let id = Id::parse(&id).map_err(|_| sfn::fail(ServiceError::NotFound("customer")))?;
    let detail = state.customers.get(&actor, &id).await.map_err(sfn::fail)?;
    Ok(CustomerPage { detail, as_of: clock::now() })
}
