//! The fleet summary: counts by capability x environment x status, from the counters the
//! repository keeps in the same transactions as the deployments (never by reading deployments).

use crate::domain::{
    permissions::Action,
    views::{FleetRow, FleetSummary},
};

use super::super::{auth::Actor, error::ServiceError, repo::Repo};

#[derive(Clone)]
pub struct FleetService {
    repo: Repo,
}

impl FleetService {
    pub fn new(repo: Repo) -> Self {
        FleetService { repo }
    }

    pub async fn summary(&self, actor: &Actor) -> Result<FleetSummary, ServiceError> {
        actor.require(Action::ViewCustomers)?;
        let owners = actor.visible_owners();
        let counts = self.repo.fleet_counts(owners.as_deref()).await?;
        let mut rows: Vec<FleetRow> = counts
            .into_iter()
            .map(|(capability, environment, status, count)| FleetRow {
                capability,
                environment,
                status,
                count,
                problem: status.is_problem(),
            })
            .collect();
        // Problems first (the biggest first), then by capability, environment and status.
        rows.sort_by(|a, b| {
            b.problem
                .cmp(&a.problem)
                .then_with(|| if a.problem { b.count.cmp(&a.count) } else { std::cmp::Ordering::Equal })
                .then_with(|| a.capability.cmp(&b.capability))
                .then_with(|| a.environment.cmp(&b.environment))
                .then_with(|| a.status.as_str().cmp(b.status.as_str()))
        });
        Ok(FleetSummary {
            total: rows.iter().map(|r| r.count).sum(),
            problems: rows.iter().filter(|r| r.problem).map(|r| r.count).sum(),
            rows,
        })
    }
}
