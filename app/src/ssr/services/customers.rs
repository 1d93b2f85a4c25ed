//! Customers and their environments: reads within the actor's scope, and an Executive's
//! creates and updates, validated field by field, with optimistic versioning (a stale `rev`
//! answers 409) and an audit event with before and after.

use std::sync::Arc;

use crate::domain::{
    ids::Id,
    model::{ConnectionStatus, Customer, Environment, EnvironmentName, Page, Role},
    parameters::FieldError,
    permissions::{Action, Decision, sees_external_ids},
    validation,
    views::{CustomerChanges, CustomerDetail, EnvironmentChanges, NewCustomer, NewEnvironment, parse_owner},
};

use super::super::{
    audit::{AuditLog, ChangeError, NewEvent},
    auth::Actor,
    clock,
    error::ServiceError,
    ids::{new_external_id, new_id},
    lifecycle::{
        connection,
        deployer::{Deployer, Target},
    },
    repo::{Repo, RepoError},
};
use super::deployments::DeploymentService;

#[derive(Clone)]
pub struct CustomerService {
    repo: Repo,
    audit: Arc<AuditLog>,
    deployments: DeploymentService,
    /// Checks environments' connections (AssumeRole into the customer's account).
    deployer: Arc<dyn Deployer>,
}

fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).expect("domain records serialize")
}

/// An environment as `role` may read it: the external id only for those who manage
/// environments (Executives).
pub fn shown(mut env: Environment, role: Role) -> Environment {
    if !sees_external_ids(role) {
        env.external_id = String::new();
    }
    env
}

/// An environment as the audit log keeps it: never the external id.
fn audited(env: &Environment) -> serde_json::Value {
    let mut env = env.clone();
    env.external_id = String::new();
    json(&env)
}

impl CustomerService {
    pub fn new(
        repo: Repo,
        audit: Arc<AuditLog>,
        deployments: DeploymentService,
        deployer: Arc<dyn Deployer>,
    ) -> Self {
        CustomerService { repo, audit, deployments, deployer }
    }

    /// A customer the actor may see (404 otherwise, whether it exists or not).
    async fn visible(&self, actor: &Actor, id: &Id, action: Action) -> Result<Customer, ServiceError> {
        let c = match self.repo.customer(id).await {
            Err(RepoError::NotFound) => return Err(ServiceError::NotFound("customer")),
            other => other?,
        };
        actor.check_customer(action, &c.owner_id, "customer")?;
        Ok(c)
    }

    /// The customers the actor sees, a page at a time; with `search`, only those with every
    /// word of it in their name, slug or cost centre (read through, so a match on the last page
    /// of 1,000 customers is found).
    pub async fn list(
        &self,
        actor: &Actor,
        limit: usize,
        cursor: Option<&str>,
        search: Option<&str>,
    ) -> Result<Page<Customer>, ServiceError> {
        actor.require(Action::ViewCustomers)?;
        let keep = |c: &Customer| {
            search
                .is_none_or(|q| crate::domain::search::every_word_in(q, &[&c.name, &c.slug, &c.cost_center]))
        };
        let owners = actor.visible_owners();
        Ok(self.repo.customers_matching(owners.as_deref(), keep, limit, cursor).await?)
    }

    pub async fn get(&self, actor: &Actor, id: &Id) -> Result<CustomerDetail, ServiceError> {
        let customer = self.visible(actor, id, Action::ViewCustomers).await?;
        let environments =
            self.repo.environments(id).await?.into_iter().map(|e| shown(e, actor.role())).collect();
        // One customer has at most 3 environments x the catalog's capabilities.
        let deployments = self.repo.deployments_by_customer(id, None, 500, None).await?;
        Ok(CustomerDetail {
            customer,
            environments,
            deployments: deployments.items.into_iter().map(|r| self.deployments.view(r)).collect(),
        })
    }

    /// The owner must be an active Rep or Sales Manager.
    async fn check_owner(
        &self,
        owner: &str,
        errors: &mut Vec<FieldError>,
    ) -> Result<Option<Id>, ServiceError> {
        let Some(id) = parse_owner(owner) else {
            errors.push(FieldError::new("owner_id", "invalid_id", "not a valid user id"));
            return Ok(None);
        };
        match self.repo.user(&id).await {
            Ok(r) if r.user.active && matches!(r.user.role, Role::Rep | Role::SalesManager) => Ok(Some(id)),
            Ok(_) | Err(RepoError::NotFound) => {
                errors.push(FieldError::new(
                    "owner_id",
                    "invalid_owner",
                    "the owner must be an active Rep or Sales Manager",
                ));
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn create(&self, actor: &Actor, input: NewCustomer) -> Result<Customer, ServiceError> {
        actor.require(Action::ManageCustomers)?;
        let mut errors = Vec::new();
        validation::customer_name(&input.name, &mut errors);
        let slug = input.slug.clone().unwrap_or_else(|| validation::slug_from_name(&input.name));
        validation::slug(&slug, &mut errors);
        validation::cost_center(&input.cost_center, &mut errors);
        let owner = self.check_owner(&input.owner_id, &mut errors).await?;
        let owner = match owner {
            Some(o) if errors.is_empty() => o,
            _ => return Err(ServiceError::fields(errors)),
        };
        let now = clock::now();
        let customer = Customer {
            id: new_id(),
            name: input.name.trim().to_string(),
            slug,
            owner_id: owner.clone(),
            cost_center: input.cost_center.trim().to_string(),
            time_zone: None,
            windows: Vec::new(),
            created_at: now,
            updated_at: now,
            rev: 0,
        };
        let mut event = actor.audit("customer.create", format!("customer/{}", customer.id), "success");
        event.owner_id = Some(owner);
        // As stored: the first revision.
        event.details = serde_json::json!({ "after": json(&Customer { rev: 1, ..customer.clone() }) });
        // The customer and its audit event in one transaction.
        let created = self.audit.with_change(event, now, |repo| {
            let customer = customer.clone();
            async move { repo.create_customer(customer).await }
        });
        Ok(created.await?)
    }

    /// A new external id for the environment (an Executive's explicit action, e.g. after it
    /// leaked): the customer must put it into their role stack's `ExternalId`, so the
    /// environment is unchecked until connected again.
    pub async fn rotate_external_id(&self, actor: &Actor, id: &Id) -> Result<Environment, ServiceError> {
        actor.require(Action::ManageEnvironments)?;
        let before = match self.repo.environment(id).await {
            Err(RepoError::NotFound) => return Err(ServiceError::NotFound("environment")),
            other => other?,
        };
        let owner = self.visible(actor, &before.customer_id, Action::ManageEnvironments).await?.owner_id;
        let mut after = before.clone();
        after.external_id = new_external_id();
        after.connection = ConnectionStatus::Unchecked;
        after.connection_checked_at = None;
        after.connection_error = None;
        let mut event = actor.audit(
            "environment.rotate_external_id",
            format!("customer/{}/environment/{}", before.customer_id, before.name.as_str()),
            "success",
        );
        event.owner_id = Some(owner);
        event.details = serde_json::json!({ "account": before.account_id, "environment": before.id });
        self.save_environment(event, after).await
    }

    pub async fn update(
        &self,
        actor: &Actor,
        id: &Id,
        changes: CustomerChanges,
    ) -> Result<Customer, ServiceError> {
        actor.require(Action::ManageCustomers)?;
        let before = self.visible(actor, id, Action::ManageCustomers).await?;
        if changes.rev != before.rev {
            return Err(ServiceError::stale("customer", before.rev, changes.rev));
        }
        let mut errors = Vec::new();
        let mut after = before.clone();
        if let Some(name) = &changes.name {
            validation::customer_name(name, &mut errors);
            after.name = name.trim().to_string();
        }
        if let Some(cc) = &changes.cost_center {
            validation::cost_center(cc, &mut errors);
            after.cost_center = cc.trim().to_string();
        }
        if let Some(owner) = &changes.owner_id
            && let Some(owner) = self.check_owner(owner, &mut errors).await?
        {
            after.owner_id = owner;
        }
        if let Some(zone) = &changes.time_zone {
            let zone = zone.trim();
            if zone.is_empty() {
                after.time_zone = None;
            } else if let Err(message) = crate::ssr::maintenance::zone(zone) {
                errors.push(FieldError::new("time_zone", "invalid_time_zone", message));
            } else {
                after.time_zone = Some(zone.to_string());
            }
        }
        if let Some(windows) = &changes.windows {
            after.windows = windows.clone();
        }
        if !after.windows.is_empty() && after.time_zone.is_none() {
            errors.push(FieldError::new(
                "windows",
                "time_zone_needed",
                "maintenance windows are in the customer's time zone: set time_zone too",
            ));
        }
        if !errors.is_empty() {
            return Err(ServiceError::fields(errors));
        }
        let now = clock::now();
        after.updated_at = now;
        let moved = if after.owner_id != before.owner_id {
            let all = self.repo.deployments_by_customer(id, None, 500, None).await?;
            all.items
        } else {
            Vec::new()
        };
        let mut event = actor.audit("customer.update", format!("customer/{id}"), "success");
        event.owner_id = Some(after.owner_id.clone());
        // As stored: the next revision.
        let stored = Customer { rev: before.rev + 1, ..after.clone() };
        event.details = serde_json::json!({ "before": json(&before), "after": json(&stored), "moved_deployments": moved.len() });
        // The change (with the deployments it moves) and its audit event in one transaction.
        let saved = self.audit.with_change(event, now, |repo| {
            let (after, moved) = (after.clone(), &moved);
            async move { repo.update_customer(after, moved).await }
        });
        saved.await.map_err(|e| match e {
            ChangeError::Change(RepoError::Conflict(_)) => ServiceError::Conflict(
                "the customer or one of its deployments changed meanwhile: reload and try again".into(),
            ),
            e => e.into(),
        })
    }

    pub async fn environments(&self, actor: &Actor, customer: &Id) -> Result<Vec<Environment>, ServiceError> {
        self.visible(actor, customer, Action::ViewCustomers).await?;
        Ok(self.repo.environments(customer).await?.into_iter().map(|e| shown(e, actor.role())).collect())
    }

    /// An (account, role) pair belongs to one customer: pointing another customer's environment
    /// at it would let that customer's users deploy into the first one's account.
    async fn check_account_owner(
        &self,
        customer: &Id,
        account: &str,
        role_arn: &str,
    ) -> Result<(), ServiceError> {
        let taken = self
            .repo
            .environments_in_account(account)
            .await?
            .into_iter()
            .any(|e| &e.customer_id != customer && e.role_arn == role_arn);
        if taken {
            return Err(ServiceError::Conflict(format!(
                "account {account} with role {role_arn} already belongs to another customer's environment"
            )));
        }
        Ok(())
    }

    pub async fn create_environment(
        &self,
        actor: &Actor,
        customer: &Id,
        input: NewEnvironment,
    ) -> Result<Environment, ServiceError> {
        actor.require(Action::ManageEnvironments)?;
        let owner = self.visible(actor, customer, Action::ManageEnvironments).await?.owner_id;
        let mut errors = Vec::new();
        let name = validation::environment_name(&input.name, &mut errors);
        validation::account_id(&input.account_id, &mut errors);
        validation::region(&input.region, &mut errors);
        validation::role_arn(&input.role_arn, &input.account_id, &mut errors);
        let name = match name {
            Some(n) if errors.is_empty() => n,
            _ => return Err(ServiceError::fields(errors)),
        };
        self.check_account_owner(customer, &input.account_id, &input.role_arn).await?;
        let env = Environment {
            id: new_id(),
            customer_id: customer.clone(),
            name,
            account_id: input.account_id,
            region: input.region,
            role_arn: input.role_arn,
            external_id: new_external_id(),
            connection: ConnectionStatus::Unchecked,
            connection_checked_at: None,
            connection_error: None,
            role_version: None,
            rev: 0,
        };
        let mut event = actor.audit(
            "environment.create",
            format!("customer/{customer}/environment/{}", name.as_str()),
            "success",
        );
        event.owner_id = Some(owner);
        // As stored: the first revision.
        event.details = serde_json::json!({ "after": audited(&Environment { rev: 1, ..env.clone() }) });
        // The environment and its audit event in one transaction.
        let created = self.audit.with_change(event, clock::now(), |repo| {
            let env = env.clone();
            async move { repo.create_environment(env).await }
        });
        match created.await {
            Err(ChangeError::Change(RepoError::NotFound)) => Err(ServiceError::NotFound("customer")),
            other => Ok(other?),
        }
    }

    pub async fn update_environment(
        &self,
        actor: &Actor,
        customer: &Id,
        name: &str,
        changes: EnvironmentChanges,
    ) -> Result<Environment, ServiceError> {
        actor.require(Action::ManageEnvironments)?;
        let owner = self.visible(actor, customer, Action::ManageEnvironments).await?.owner_id;
        let before = self
            .repo
            .environments(customer)
            .await?
            .into_iter()
            .find(|e| e.name.as_str() == name)
            .ok_or(ServiceError::NotFound("environment"))?;
        if changes.rev != before.rev {
            return Err(ServiceError::stale("environment", before.rev, changes.rev));
        }
        let mut after = before.clone();
        if let Some(v) = changes.account_id {
            after.account_id = v;
        }
        if let Some(v) = changes.region {
            after.region = v;
        }
        if let Some(v) = changes.role_arn {
            after.role_arn = v;
        }
        let mut errors = Vec::new();
        validation::account_id(&after.account_id, &mut errors);
        validation::region(&after.region, &mut errors);
        validation::role_arn(&after.role_arn, &after.account_id, &mut errors);
        if !errors.is_empty() {
            return Err(ServiceError::fields(errors));
        }
        if (&after.account_id, &after.role_arn) != (&before.account_id, &before.role_arn) {
            self.check_account_owner(customer, &after.account_id, &after.role_arn).await?;
        }
        if (&after.account_id, &after.role_arn, &after.region)
            != (&before.account_id, &before.role_arn, &before.region)
        {
            // A different account or role must be connected again before anything deploys.
            after.connection = ConnectionStatus::Unchecked;
            after.connection_checked_at = None;
            after.connection_error = None;
            after.role_version = None;
        }
        let mut event =
            actor.audit("environment.update", format!("customer/{customer}/environment/{name}"), "success");
        event.owner_id = Some(owner);
        // As stored: the next revision.
        let stored = Environment { rev: before.rev + 1, ..after.clone() };
        event.details = serde_json::json!({ "before": audited(&before), "after": audited(&stored) });
        self.save_environment(event, after).await
    }

    /// AssumeRole + GetCallerIdentity into the environment's account; the result is stored on
    /// the environment and audited.
    pub async fn connect(&self, actor: &Actor, id: &Id) -> Result<Environment, ServiceError> {
        let env = match self.repo.environment(id).await {
            Err(RepoError::NotFound) => return Err(ServiceError::NotFound("environment")),
            other => other?,
        };
        let customer = self.repo.customer(&env.customer_id).await?;
        let decision = actor.check_customer(Action::Operate(env.name), &customer.owner_id, "environment")?;
        if !matches!(decision, Decision::Allow | Decision::NeedsApproval) {
            return Err(ServiceError::Forbidden(format!("{} may not do this", actor.role().with_article())));
        }
        // Production's connection (it assumes the prod role) is checked by Executives only.
        if env.name == EnvironmentName::Prod && actor.role() != Role::Executive {
            return Err(ServiceError::Forbidden(
                "only an Executive may check a production connection".into(),
            ));
        }
        let target = Target::of(&env, format!("nexus-connect-{}", new_id()));
        let (updated, outcome) = connection::check(self.deployer.as_ref(), &env, &target).await;
        let mut event = actor.audit(
            "environment.connect",
            format!("environment/{}", env.id),
            if outcome.is_ok() { "success" } else { "failure" },
        );
        event.owner_id = Some(customer.owner_id.clone());
        event.details = serde_json::json!({
            "account": env.account_id, "error": updated.connection_error, "role_version": updated.role_version,
        });
        Ok(shown(self.save_environment(event, updated).await?, actor.role()))
    }

    /// Saves a changed environment (read at `after.rev`) with its audit event, in one
    /// transaction; a change meanwhile answers 409.
    async fn save_environment(
        &self,
        event: NewEvent,
        after: Environment,
    ) -> Result<Environment, ServiceError> {
        let saved = self.audit.with_change(event, clock::now(), |repo| {
            let after = after.clone();
            async move { repo.update_environment(after).await }
        });
        match saved.await {
            Err(ChangeError::Change(RepoError::Conflict(_))) => {
                Err(ServiceError::Conflict("the environment changed meanwhile: try again".into()))
            }
            other => Ok(other?),
        }
    }
}
