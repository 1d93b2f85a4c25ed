//! The capability catalog as users read it.

use std::sync::Arc;

use crate::domain::{model::Capability, permissions::Action, views::CapabilityDetail};

use super::super::{auth::Actor, catalog::Catalog, error::ServiceError};

#[derive(Clone)]
pub struct CapabilityService {
    catalog: Arc<Catalog>,
}

impl CapabilityService {
    pub fn new(catalog: Arc<Catalog>) -> Self {
        CapabilityService { catalog }
    }

    pub fn list(&self, actor: &Actor) -> Result<Vec<Capability>, ServiceError> {
        actor.require(Action::ViewCatalog)?;
        Ok(self.catalog.capabilities().cloned().collect())
    }

    pub fn get(&self, actor: &Actor, slug: &str) -> Result<CapabilityDetail, ServiceError> {
        actor.require(Action::ViewCatalog)?;
        let entry = self.catalog.get(slug).ok_or(ServiceError::NotFound("capability"))?;
        Ok(CapabilityDetail {
            capability: entry.capability.clone(),
            releases: entry.versions.iter().map(|v| v.meta.clone()).collect(),
        })
    }
}
