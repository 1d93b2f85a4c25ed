//! The dashboard's data: the fleet summary (counters, never a walk over deployments) and one
//! page of the user's customers (summary first, details on demand: an Executive's 1,000
//! customers are never rendered at once).

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use super::AppError;
use crate::domain::{model::Customer, time::Timestamp, views::FleetSummary};

/// How many customers one dashboard page lists.
pub const DASHBOARD_CUSTOMERS: usize = 24;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dashboard {
    pub summary: FleetSummary,
    pub customers: Vec<Customer>,
    /// The cursor of the next page of customers, if there is one.
    pub next_customers: Option<String>,
    pub as_of: Timestamp,
}

/// The summary and the page of customers after `after` (the first page without it); with `q`,
/// only the customers with every word of it in their name, slug or cost centre, from all pages.
#[server(input = GetUrl, prefix = "/sfn", endpoint = "dashboard")]
pub async fn get_dashboard(after: Option<String>, q: Option<String>) -> Result<Dashboard, AppError> {
    use crate::ssr::{clock, http::sfn};
    let (state, actor) = (sfn::state(), sfn::actor()?);
    let summary = state.fleet.summary(&actor).await.map_err(sfn::fail)?;
    let page = state
        .customers
        .list(&actor, DASHBOARD_CUSTOMERS, after.as_deref(), crate::domain::search::query(q.as_deref()))
        .await
        .map_err(sfn::fail)?;
    let mut customers = page.items;
    customers.sort_by_key(|c| c.name.to_lowercase());
    Ok(Dashboard { summary, customers, next_customers: page.next_cursor, as_of: clock::now() })
}
