//! The caller every service call is made as: the signed-in user, their team, their session and
//! its second factor, and where the request came from; with the permission checks the services
//! make through it (the rules themselves are `domain::permissions`).

use std::net::IpAddr;

use crate::{
    domain::{
        ids::Id,
        model::{Role, User},
        permissions::{self, Action, Decision, Grant, Relation, Scope},
        second_factor::FactorState,
    },
    ssr::{audit::NewEvent, error::ServiceError},
};

/// Where a request came from (for the audit log and rate limits).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
}

impl ClientInfo {
    pub fn ip_string(&self) -> Option<String> {
        self.ip.map(|ip| ip.to_string())
    }
}

/// A signed-in user, as every service call sees them.
#[derive(Clone, Debug)]
pub struct Actor {
    pub user: User,
    /// A Sales Manager's Reps (empty for other roles).
    pub team: Vec<Id>,
    pub session_id: Id,
    pub client: ClientInfo,
    /// The session's second factor: whether sensitive actions need a recent one, and when one
    /// was last proved.
    pub factor: FactorState,
}

impl Actor {
    pub fn role(&self) -> Role {
        self.user.role
    }

    /// How a customer owned by `owner` relates to this user.
    pub fn relation(&self, owner: &Id) -> Relation {
        if *owner == self.user.id {
            Relation::Own
        } else if self.team.contains(owner) {
            Relation::Team
        } else {
            Relation::Other
        }
    }

    /// The owners whose customers this user sees: `None` means everyone's.
    pub fn visible_owners(&self) -> Option<Vec<Id>> {
        match permissions::data_scope(self.role()) {
            Scope::All => None,
            Scope::Own => Some(vec![self.user.id.clone()]),
            Scope::Team => {
                Some(std::iter::once(self.user.id.clone()).chain(self.team.iter().cloned()).collect())
            }
        }
    }

    /// A role-level check (no customer involved): 403 when the role may not.
    pub fn require(&self, action: Action) -> Result<(), ServiceError> {
        match permissions::grant(self.role(), action) {
            Grant::Yes => Ok(()),
            Grant::WithApproval | Grant::No => {
                Err(ServiceError::Forbidden(format!("{} may not do this", self.role().with_article())))
            }
        }
    }

    /// A check against one customer: out of scope is "not found" (404), never 403.
    pub fn check_customer(
        &self,
        action: Action,
        owner: &Id,
        what: &'static str,
    ) -> Result<Decision, ServiceError> {
        match permissions::decide(self.role(), action, self.relation(owner)) {
            Decision::Hidden => Err(ServiceError::Hidden(what)),
            Decision::Forbidden => {
                Err(ServiceError::Forbidden(format!("{} may not do this", self.role().with_article())))
            }
            d => Ok(d),
        }
    }

    /// The audit fields that say who did something.
    pub fn audit(&self, action: &str, target: String, outcome: &str) -> NewEvent {
        NewEvent {
            actor_id: Some(self.user.id.clone()),
            actor_email: Some(self.user.email.clone()),
            actor_role: Some(self.role()),
            source_ip: self.client.ip_string(),
            action: action.into(),
            target,
            outcome: outcome.into(),
            ..Default::default()
        }
    }
}
