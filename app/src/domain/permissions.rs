//! The permission table of PRODUCT.md §3, once, for the server (which enforces it on every
//! call) and the browser (which only hides what a role cannot do).

use serde::{Deserialize, Serialize};

use super::model::{Approver, DataClassification, EnvironmentName, Role};

/// Something a user may try to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    ViewCatalog,
    /// See customers, their deployments and history (within the role's scope).
    ViewCustomers,
    /// Ask for a deployment or upgrade (runs once someone allowed approves it).
    RequestChange,
    /// Deploy, upgrade, roll back, switch or delete in the given environment.
    Operate(EnvironmentName),
    /// Approve or reject someone else's request in the given environment.
    Approve(EnvironmentName),
    ManageUsers,
    ManageCustomers,
    ManageEnvironments,
    ManageCatalog,
    /// Create and steer rollouts (their prod waves still wait for an Executive's approval).
    ManageRollouts,
    ReadAudit,
}

impl Action {
    /// Every action, for table-driven tests and the UI's capability matrix.
    pub fn all() -> Vec<Action> {
        let mut all = vec![Action::ViewCatalog, Action::ViewCustomers, Action::RequestChange];
        for env in EnvironmentName::ALL {
            all.push(Action::Operate(env));
            all.push(Action::Approve(env));
        }
        all.extend([
            Action::ManageUsers,
            Action::ManageCustomers,
            Action::ManageEnvironments,
            Action::ManageCatalog,
            Action::ManageRollouts,
            Action::ReadAudit,
        ]);
        all
    }
}

/// What a role may do with an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Grant {
    Yes,
    /// Only once an Executive approves (a Sales Manager's prod changes).
    WithApproval,
    No,
}

/// Whose records a role sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Customers the user owns.
    Own,
    /// Customers the user or their team's Reps own.
    Team,
    All,
}

/// How a customer relates to the user looking at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    /// The user owns it.
    Own,
    /// A Rep of the user's team owns it.
    Team,
    /// Anyone else.
    Other,
}

impl Scope {
    pub fn includes(self, relation: Relation) -> bool {
        match self {
            Scope::All => true,
            Scope::Team => relation != Relation::Other,
            Scope::Own => relation == Relation::Own,
        }
    }
}

/// The role's grant for an action (before scoping to customers).
pub fn grant(role: Role, action: Action) -> Grant {
    use Action::*;
    use EnvironmentName::*;
    match (role, action) {
        (_, ViewCatalog | ViewCustomers | RequestChange) => Grant::Yes,
        (Role::Executive, _) => Grant::Yes,
        (Role::SalesManager, Operate(Dev | Staging)) => Grant::Yes,
        (Role::SalesManager, Operate(Prod)) => Grant::WithApproval,
        (Role::SalesManager, Approve(Dev | Staging)) => Grant::Yes,
        (Role::SalesManager, ReadAudit | ManageRollouts) => Grant::Yes,
        (
            Role::SalesManager,
            Approve(Prod) | ManageUsers | ManageCustomers | ManageEnvironments | ManageCatalog,
        ) => Grant::No,
        (Role::Rep, _) => Grant::No,
    }
}

/// Whose customers, deployments and history the role sees.
pub fn data_scope(role: Role) -> Scope {
    match role {
        Role::Executive => Scope::All,
        Role::SalesManager => Scope::Team,
        Role::Rep => Scope::Own,
    }
}

/// Whose audit events the role reads (Reps none: see [`grant`] for `ReadAudit`).
pub fn audit_scope(role: Role) -> Scope {
    data_scope(role)
}

/// Who reads an environment's external id: the secret half of the customer role's trust, so
/// only those who manage environments (Executives); everyone else reads environments without it.
pub fn sees_external_ids(role: Role) -> bool {
    grant(role, Action::ManageEnvironments) == Grant::Yes
}

/// Restricted capabilities are deployed only by an Executive.
pub fn may_deploy_classification(role: Role, classification: DataClassification) -> bool {
    classification != DataClassification::Restricted || role == Role::Executive
}

/// The outcome of a check against one customer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Allowed once an Executive approves.
    NeedsApproval,
    /// The customer is visible but the role may not do this: 403.
    Forbidden,
    /// The customer is outside the role's scope: 404, so ids cannot be probed.
    Hidden,
}

/// The whole check for an action on a customer.
pub fn decide(role: Role, action: Action, relation: Relation) -> Decision {
    if !data_scope(role).includes(relation) {
        return Decision::Hidden;
    }
    match grant(role, action) {
        Grant::Yes => Decision::Allow,
        Grant::WithApproval => Decision::NeedsApproval,
        Grant::No => Decision::Forbidden,
    }
}

/// The approval a change requested by `role` in `env` on a capability of `classification` needs:
/// a Rep's requests wait for their Sales Manager (non-prod) or an Executive (prod); a Sales
/// Manager's prod changes wait for an Executive; Restricted capabilities are deployed only by
/// an Executive, so anyone else's request waits for one.
///
/// With `prod_four_eyes` (`NEXUS_PROD_FOUR_EYES`, on by default) an Executive's own prod change
/// waits for a second Executive too; off, for a one-person organisation, it runs at once.
pub fn required_approver(
    role: Role,
    env: EnvironmentName,
    classification: DataClassification,
    prod_four_eyes: bool,
) -> Approver {
    if role == Role::Executive {
        return if prod_four_eyes && env == EnvironmentName::Prod {
            Approver::Executive
        } else {
            Approver::None
        };
    }
    if !may_deploy_classification(role, classification) {
        return Approver::Executive;
    }
    match grant(role, Action::Operate(env)) {
        Grant::Yes => Approver::None,
        Grant::WithApproval => Approver::Executive,
        // Only an Executive approves prod.
        Grant::No if env == EnvironmentName::Prod => Approver::Executive,
        Grant::No => Approver::SalesManager,
    }
}

/// Whether someone of `role`, related to the customer by `relation`, may approve a request that
/// needs `needed`. Nobody approves their own request (`own_request`).
pub fn may_approve(
    role: Role,
    relation: Relation,
    env: EnvironmentName,
    needed: Approver,
    own_request: bool,
) -> bool {
    if own_request || needed == Approver::None {
        return false;
    }
    if needed == Approver::Executive && role != Role::Executive {
        return false;
    }
    decide(role, Action::Approve(env), relation) == Decision::Allow
}

/// [`may_approve`] for a request on a customer the user already sees (a page the server showed):
/// within the scope the relation changes nothing but visibility, so the answer is the rule's.
pub fn may_approve_visible(role: Role, env: EnvironmentName, needed: Approver, own_request: bool) -> bool {
    may_approve(role, Relation::Own, env, needed, own_request)
}

#[cfg(test)]
mod tests {

    #[test]
    fn only_executives_see_external_ids() {
        assert!(sees_external_ids(Role::Executive));
        assert!(!sees_external_ids(Role::SalesManager));
        assert!(!sees_external_ids(Role::Rep));
    }

    use super::*;

    const ROLES: [Role; 3] = [Role::Executive, Role::SalesManager, Role::Rep];

    /// The §3 table, written out row by row so a change to `grant` shows here.
    fn expected(role: Role, action: Action) -> Grant {
        use Grant::*;
        let (rep, mgr, exec) = match action {
            Action::ViewCatalog | Action::ViewCustomers | Action::RequestChange => (Yes, Yes, Yes),
            Action::Operate(EnvironmentName::Prod) => (No, WithApproval, Yes),
            Action::Operate(_) => (No, Yes, Yes),
            Action::Approve(EnvironmentName::Prod) => (No, No, Yes),
            Action::Approve(_) => (No, Yes, Yes),
            Action::ManageUsers
            | Action::ManageCustomers
            | Action::ManageEnvironments
            | Action::ManageCatalog => (No, No, Yes),
            Action::ReadAudit | Action::ManageRollouts => (No, Yes, Yes),
        };
        match role {
            Role::Rep => rep,
            Role::SalesManager => mgr,
            Role::Executive => exec,
        }
    }

    #[test]
    fn every_role_and_action_matches_the_product_table() {
        for role in ROLES {
            for action in Action::all() {
                assert_eq!(grant(role, action), expected(role, action), "{role:?} {action:?}");
            }
        }
    }

    #[test]
    fn out_of_scope_customers_are_hidden_for_every_action() {
        for action in Action::all() {
            assert_eq!(decide(Role::Rep, action, Relation::Team), Decision::Hidden);
            assert_eq!(decide(Role::Rep, action, Relation::Other), Decision::Hidden);
            assert_eq!(decide(Role::SalesManager, action, Relation::Other), Decision::Hidden);
            assert_ne!(decide(Role::SalesManager, action, Relation::Team), Decision::Hidden);
            assert_ne!(decide(Role::Executive, action, Relation::Other), Decision::Hidden);
        }
    }

    #[test]
    fn in_scope_denials_are_forbidden_not_hidden() {
        assert_eq!(
            decide(Role::Rep, Action::Operate(EnvironmentName::Dev), Relation::Own),
            Decision::Forbidden
        );
        assert_eq!(
            decide(Role::SalesManager, Action::Operate(EnvironmentName::Prod), Relation::Team),
            Decision::NeedsApproval
        );
        assert_eq!(decide(Role::SalesManager, Action::ManageCustomers, Relation::Own), Decision::Forbidden);
    }

    #[test]
    fn restricted_capabilities_only_by_executives() {
        assert!(may_deploy_classification(Role::Executive, DataClassification::Restricted));
        assert!(!may_deploy_classification(Role::SalesManager, DataClassification::Restricted));
        assert!(!may_deploy_classification(Role::Rep, DataClassification::Restricted));
        assert!(may_deploy_classification(Role::Rep, DataClassification::Confidential));
    }
    #[test]
    fn who_approves_what() {
        use EnvironmentName::*;
        let c = DataClassification::Internal;
        for four_eyes in [true, false] {
            let required = |role, env, class| required_approver(role, env, class, four_eyes);
            assert_eq!(required(Role::Executive, Staging, DataClassification::Restricted), Approver::None);
            assert_eq!(required(Role::Rep, Dev, c), Approver::SalesManager);
            assert_eq!(required(Role::Rep, Prod, c), Approver::Executive);
            assert_eq!(required(Role::SalesManager, Staging, c), Approver::None);
            assert_eq!(required(Role::SalesManager, Prod, c), Approver::Executive);
            assert_eq!(
                required(Role::SalesManager, Dev, DataClassification::Restricted),
                Approver::Executive
            );
            assert_eq!(required(Role::Rep, Dev, DataClassification::Restricted), Approver::Executive);
        }
        // Four eyes on prod: an Executive's own prod change waits for another Executive (who
        // may approve it: nobody approves their own).
        assert_eq!(required_approver(Role::Executive, Prod, c, true), Approver::Executive);
        assert_eq!(
            required_approver(Role::Executive, Prod, DataClassification::Restricted, false),
            Approver::None
        );
        assert!(may_approve(Role::Executive, Relation::Other, Prod, Approver::Executive, false));
        assert!(!may_approve(Role::Executive, Relation::Other, Prod, Approver::Executive, true));
    }

    #[test]
    fn approvals_follow_scope_and_never_self() {
        use EnvironmentName::*;
        let sm = Approver::SalesManager;
        assert!(may_approve(Role::SalesManager, Relation::Team, Dev, sm, false));
        assert!(!may_approve(Role::SalesManager, Relation::Other, Dev, sm, false), "another team");
        assert!(!may_approve(Role::SalesManager, Relation::Team, Prod, Approver::Executive, false));
        assert!(may_approve(Role::Executive, Relation::Other, Prod, Approver::Executive, false));
        assert!(may_approve(Role::Executive, Relation::Other, Dev, sm, false));
        assert!(
            !may_approve(Role::Executive, Relation::Other, Prod, Approver::Executive, true),
            "own request"
        );
        assert!(!may_approve(Role::Rep, Relation::Own, Dev, sm, false));
        assert!(!may_approve(Role::Executive, Relation::Other, Dev, Approver::None, false));
    }

    #[test]
    fn on_a_visible_customer_the_page_asks_the_same_rule() {
        use EnvironmentName::*;
        let sm = Approver::SalesManager;
        assert!(may_approve_visible(Role::SalesManager, Dev, sm, false));
        assert!(
            !may_approve_visible(Role::SalesManager, Prod, Approver::Executive, false),
            "prod is an Executive's"
        );
        assert!(!may_approve_visible(Role::Rep, Dev, sm, false));
        assert!(may_approve_visible(Role::Executive, Prod, Approver::Executive, false));
        assert!(!may_approve_visible(Role::Executive, Prod, Approver::Executive, true), "own request");
        for role in [Role::Executive, Role::SalesManager] {
            for env in [Dev, Staging, Prod] {
                for needed in [Approver::None, sm, Approver::Executive] {
                    let in_scope = if role == Role::Executive { Relation::Other } else { Relation::Team };
                    assert_eq!(
                        may_approve_visible(role, env, needed, false),
                        may_approve(role, in_scope, env, needed, false),
                        "{role:?} {env:?} {needed:?}"
                    );
                }
            }
        }
    }
}
