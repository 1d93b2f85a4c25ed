//! The dashboard's data: the fleet summary (counters, never a walk over deployments) and the
//! first page of the user's customers.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use super::AppError;
use crate::domain::{model::Customer, time::Timestamp, views::FleetSummary};

/// How many customers the dashboard lists before "more".
pub const DASHBOARD_CUSTOMERS: usize = 200;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dashboard {
    pub summary: FleetSummary,
    pub customers: Vec<Customer>,
    /// More customers than listed exist.
    pub more_customers: bool,
    pub as_of: Timestamp,
}

#[server(input = GetUrl, prefix = "/sfn", endpoint = "dashboard")]
pub async fn get_dashboard() -> Result<Dashboard, AppError> {
    use crate::ssr::{clock, http::server_fns};
    let (state, actor) = (server_fns::state(), server_fns::actor()?);
    let summary = state.fleet.summary(&actor).await.map_err(server_fns::fail)?;
    let page = state.customers.list(&actor, DASHBOARD_CUSTOMERS, None).await.map_err(server_fns::fail)?;
    let mut customers = page.items;
    customers.sort_by_key(|c| c.name.to_lowercase());
    Ok(Dashboard { summary, customers, more_customers: page.next_cursor.is_some(), as_of: clock::now() })
}
