//! The key layout of every entity in the single table: every key and index value is made here,
//! and nowhere else, so the table below is the whole truth.
//!
//! | entity | pk | sk | gsi1 (pk / sk) | gsi2 | gsi3 | gsi4 | gsi5 |
//! |---|---|---|---|---|---|---|---|
//! | schema version | `META` | `SCHEMA` | | | | |
//! | user | `USER#<id>` | `USER` | `USERS` / `<email>` | `TEAM#<manager id>` / `<email>` (reps) | | |
//! | email → user | `EMAIL#<email>` | `EMAIL` | | | | |
//! | customer | `CUST#<id>` | `CUST` | `CUSTOMERS` / `<name>#<id>` | `OWNER#<owner id>` / `<name>#<id>` | | |
//! | environment | `CUST#<customer id>` | `ENV#<dev/staging/prod>` | `ENV#<id>` / `ENV` | `ACCOUNT#<account id>` / `<customer id>#<env>` | | |
//! | deployment | `DEP#<id>` | `DEP` | `CUST#<customer id>` / `<env>#<capability>#<id>` | `CAP#<capability>` / `<env>#<status>#<id>` | `STATUS#<status>` / `<env>#<capability>#<id>` | `OWNER#<owner id>` / `<env>#<capability>#<id>` | `DEPS` / `<env>#<capability>#<id>` |
//! | operation | `DEP#<deployment id>` | `OP#<id>` (ULIDs: time order) | `OP#<id>` / `OP` | `OPS#WORK` / `<id>` while a worker has to move it, `OPS#WAIT` / `<id>` while it waits for a user | | |
//! | deployment lock (while an operation is active) | `DEP#<deployment id>` | `LOCK` (data: operation id) | | | | |
//! | one deployment per environment and capability | `ENVCAP#<environment id>#<capability>` | `ENVCAP` (data: deployment id) | | | | |
//! | idempotency key | `IDEM#<user id>#<key>` | `IDEM` (data: operation id) | | | | |
//! | idempotency key of a rollout | `IDEM#<user id>#ROLLOUT#<key>` | `IDEM` (data: rollout id) | | | | |
//! | stack event of an operation | `OPEV#<operation id>` | `<millis, 13 digits>#<event id>` | | | | |
//! | customer slug -> customer | `CUSTSLUG#<slug>` | `CUSTSLUG` (data: customer id) | | | | |
//! | Cognito subject -> user | `COGNITO#<sub>` | `LINK` (data: user id) | | | | |
//! | published catalog version | `CATALOG` | `<slug>#<version>` | | | | |
//! | fleet counters | `SUMMARY#ALL` or `SUMMARY#OWNER#<owner id>` | `<capability>#<env>#<status>` (counter `n`) | | | | |
//! | failed sign-ins per submitted email | `LOGIN#<email>` | `LOGIN` | `LOCKS` / `<lock end, millis, 13 digits>#<email>` while a lock is set | | | |
//! | notice about a user's own account (a sign-in lock) | `NOTICE#<user id>` | `<millis, 13 digits>#<kind>` | | | | |
//! | session | `SESSION#<id>` | `SESSION` | | | | |
//! | a user's second factors | `MFA#<user id>` | `MFA` | | | | |
//! | passkey user handle → user | `WEBAUTHN#<handle>` | `WEBAUTHN` | | | | |
//! | a finished passkey ceremony (so it works once) | `CEREMONY#<id>` | `USED` | | | | |
//! | notification (operation state change) | `NOTE#OWNER#<owner id>` and `NOTE#ALL` | `<millis, 13 digits>#<operation id>#<state>` | | | | |
//! | an operation event the bus did not take yet (the outbox) | `OUTBOX` | `<millis, 13 digits>#<operation id>#<state>` | | | | |
//! | a rollout event the bus did not take yet | `OUTBOX` | `<millis, 13 digits>#<rollout id>#rollout-<state>` | | | | |
//! | rollout | `ROLLOUT#<id>` | `ROLLOUT` | `ROLLOUTS` / `<id>` (ULIDs: time order) | `ROLLOUTS#ACTIVE` / `<id>` while active | | |
//! | a deployment of a rollout | `ROLLOUT#<id>` | `ITEM#<wave, 4 digits>#<deployment id>` | | | | |
//! | a rollout's progress counters | `ROLLOUT#<id>` | `COUNT#<wave, 4 digits>#<item state>` (counter `n`) | | | | |
//! | the active rollout holding a deployment | `ROLLOUTDEP#<deployment id>` | `HOLD` (data: rollout id) | | | | |
//! | audit event | `AUDIT` | `<seq, 20 digits>` | | | | |
//! | audit chain head; where keying starts | `AUDIT` | `HEAD`; `KEYED` | | | | |
//! | a record found past the head, moved aside | `AUDIT` | `PLANTED#<seq, 20 digits>#<id>` | | | | |
//!
//! Index 0..4 in code are `gsi1`..`gsi5` on DynamoDB. `DEPS` (every deployment, for an
//! Executive's unfiltered or environment-filtered list) is one partition: fine at the fleet sizes
//! the product targets (15,000 deployments); beyond that it would be sharded by environment.

use crate::domain::{
    ids::Id,
    lifecycle::{DeploymentStatus, OperationState},
    model::EnvironmentName,
    time::Timestamp,
};

pub const META: &str = "META";
pub const SCHEMA: &str = "SCHEMA";

pub const GSI1: usize = 0;
pub const GSI2: usize = 1;
pub const GSI3: usize = 2;
pub const GSI4: usize = 3;
pub const GSI5: usize = 4;

/// The sort keys of records that are alone in their partition (or one of a few fixed ones).
pub mod sk {
    pub const USER: &str = "USER";
    pub const EMAIL: &str = "EMAIL";
    pub const CUSTOMER: &str = "CUST";
    pub const SLUG: &str = "CUSTSLUG";
    pub const DEPLOYMENT: &str = "DEP";
    pub const LOCK: &str = "LOCK";
    pub const ENVCAP: &str = "ENVCAP";
    pub const IDEMPOTENCY: &str = "IDEM";
    pub const LOGIN: &str = "LOGIN";
    pub const SESSION: &str = "SESSION";
    pub const COGNITO_LINK: &str = "LINK";
    pub const MFA: &str = "MFA";
    pub const WEBAUTHN: &str = "WEBAUTHN";
    pub const CEREMONY_USED: &str = "USED";
    pub const ROLLOUT_HOLD: &str = "HOLD";
    /// An environment's and an operation's entry in gsi1 (found by id).
    pub const ENVIRONMENT_BY_ID: &str = "ENV";
    pub const OPERATION_BY_ID: &str = "OP";
}

// --- users ---

pub fn user(id: &str) -> String {
    format!("USER#{id}")
}
pub fn email(email: &str) -> String {
    format!("EMAIL#{}", email.to_ascii_lowercase())
}
/// The index partition of every user (sorted by email).
pub const USERS: &str = "USERS";
/// A user's place in email order (gsi1 under [`USERS`], gsi2 under their [`team`]).
pub fn email_order(email: &str) -> String {
    email.to_ascii_lowercase()
}
/// The index partition of a Sales Manager's Reps.
pub fn team(manager: &Id) -> String {
    format!("TEAM#{manager}")
}

// --- customers and environments ---

pub fn customer(id: &str) -> String {
    format!("CUST#{id}")
}
/// The index partition of every customer (sorted by name).
pub const CUSTOMERS: &str = "CUSTOMERS";
/// A customer's place in name order.
pub fn customer_order(name: &str, id: &Id) -> String {
    format!("{}#{id}", name.to_lowercase())
}
pub fn customer_slug(slug: &str) -> String {
    format!("CUSTSLUG#{slug}")
}
pub fn owner(id: &str) -> String {
    format!("OWNER#{id}")
}
/// An environment's sort key under its customer; [`ENVIRONMENT_PREFIX`] reads them all.
pub fn environment(name: EnvironmentName) -> String {
    format!("ENV#{}", name.as_str())
}
pub const ENVIRONMENT_PREFIX: &str = "ENV#";
/// An environment's gsi1 partition (found by id).
pub fn environment_id(id: &Id) -> String {
    format!("ENV#{id}")
}
/// Environments by the AWS account they point at.
pub fn account(account_id: &str) -> String {
    format!("ACCOUNT#{account_id}")
}
/// An environment's place under its account.
pub fn account_order(customer: &Id, name: EnvironmentName) -> String {
    format!("{customer}#{}", name.as_str())
}

// --- deployments and the fleet counters ---

pub fn deployment(id: &str) -> String {
    format!("DEP#{id}")
}
/// Every deployment (an Executive's unfiltered list).
pub const DEPLOYMENTS: &str = "DEPS";
pub fn capability(capability: &str) -> String {
    format!("CAP#{capability}")
}
pub fn status(status: DeploymentStatus) -> String {
    format!("STATUS#{}", status.as_str())
}
/// A deployment's place in most indexes: environment, then capability. [`environment_prefix`]
/// and [`environment_capability_prefix`] read a part of it.
pub fn deployment_order(env: EnvironmentName, capability: &str, id: &Id) -> String {
    format!("{}#{capability}#{id}", env.as_str())
}
/// A deployment's place under its capability: environment, then status.
pub fn deployment_status_order(env: EnvironmentName, status: DeploymentStatus, id: &Id) -> String {
    format!("{}#{}#{id}", env.as_str(), status.as_str())
}
/// The part of [`deployment_order`] (and [`deployment_status_order`]) one environment shares;
/// none: every environment.
pub fn environment_prefix(env: Option<EnvironmentName>) -> String {
    env.map(|e| format!("{}#", e.as_str())).unwrap_or_default()
}
/// The part of [`deployment_order`] an environment and a capability share (either may be
/// missing: then only what comes before it).
pub fn environment_capability_prefix(env: Option<EnvironmentName>, capability: Option<&str>) -> String {
    match (env, capability) {
        (Some(e), Some(c)) => format!("{}#{c}#", e.as_str()),
        (Some(e), None) => format!("{}#", e.as_str()),
        (None, _) => String::new(),
    }
}
/// The record that keeps one deployment per environment and capability.
pub fn envcap(environment: &Id, capability: &str) -> String {
    format!("ENVCAP#{environment}#{capability}")
}
pub fn summary_all() -> String {
    "SUMMARY#ALL".to_string()
}
pub fn summary_owner(id: &str) -> String {
    format!("SUMMARY#OWNER#{id}")
}
/// A fleet counter's sort key: one per capability, environment and status.
pub fn fleet_counter(capability: &str, env: EnvironmentName, status: DeploymentStatus) -> String {
    format!("{capability}#{}#{}", env.as_str(), status.as_str())
}
/// What a [`fleet_counter`] key counts (capabilities may hold `#`).
pub fn parse_fleet_counter(sk: &str) -> Option<(&str, EnvironmentName, DeploymentStatus)> {
    let mut parts = sk.rsplitn(3, '#');
    let (status, env, capability) = (parts.next()?, parts.next()?, parts.next()?);
    let status = DeploymentStatus::ALL.into_iter().find(|s| s.as_str() == status)?;
    Some((capability, EnvironmentName::parse(env)?, status))
}

// --- operations ---

/// An operation's sort key under its deployment (ULIDs: time order) and its gsi1 partition;
/// [`OPERATION_PREFIX`] reads a deployment's operations.
pub fn operation(id: &Id) -> String {
    format!("OP#{id}")
}
pub const OPERATION_PREFIX: &str = "OP#";
/// The workers' queue and the users' (approvals, previews).
pub const OPS_WORK: &str = "OPS#WORK";
pub const OPS_WAIT: &str = "OPS#WAIT";
/// The one queue of layouts before version 3 (read by the migration only).
pub const OPS_ACTIVE_BEFORE_V3: &str = "OPS#ACTIVE";
pub fn idempotency(user: &Id, key: &str) -> String {
    format!("IDEM#{user}#{key}")
}
pub fn stack_events(operation: &Id) -> String {
    format!("OPEV#{operation}")
}
pub fn stack_event(at: Timestamp, event_id: &str) -> String {
    format!("{}#{event_id}", millis(at))
}

/// A customer owner's notification feed, or everyone's.
pub fn notifications(owner: Option<&Id>) -> String {
    match owner {
        Some(o) => format!("NOTE#OWNER#{o}"),
        None => "NOTE#ALL".to_string(),
    }
}
pub fn notification(at: Timestamp, operation: &Id, state: OperationState) -> String {
    format!("{}#{operation}#{}", millis(at), state.as_str())
}

/// The outbox: events for the bus that it refused, oldest first.
pub const OUTBOX: &str = "OUTBOX";
pub fn outbox_entry(at: Timestamp, operation: &Id, state: OperationState) -> String {
    format!("{}#{operation}#{}", millis(at), state.as_str())
}
/// A rollout's event in the outbox, in the same time order as operations' events.
pub fn outbox_rollout_entry(at: Timestamp, rollout: &Id, state: &str) -> String {
    format!("{}#{rollout}#rollout-{state}", millis(at))
}

// --- rollouts ---

pub fn rollout(id: &Id) -> String {
    format!("ROLLOUT#{id}")
}
/// The header's sort key in its partition.
pub const ROLLOUT_HEADER: &str = "ROLLOUT";
/// The index partition of every rollout (ids: time order), and of the active ones.
pub const ROLLOUTS: &str = "ROLLOUTS";
pub const ROLLOUTS_ACTIVE: &str = "ROLLOUTS#ACTIVE";
pub const ROLLOUT_ITEM_PREFIX: &str = "ITEM#";
pub fn rollout_item(wave: u32, deployment: &Id) -> String {
    format!("ITEM#{wave:04}#{deployment}")
}
pub const ROLLOUT_COUNT_PREFIX: &str = "COUNT#";
pub fn rollout_count(wave: u32, state: &str) -> String {
    format!("COUNT#{wave:04}#{state}")
}
/// The wave and state a [`rollout_count`] key names.
pub fn parse_rollout_count(sk: &str) -> Option<(u32, &str)> {
    let (wave, state) = sk.strip_prefix(ROLLOUT_COUNT_PREFIX)?.split_once('#')?;
    Some((wave.parse().ok()?, state))
}
/// An idempotency key of a rollout's creation (beside operations' keys, apart from them).
pub fn rollout_idempotency(user: &Id, key: &str) -> String {
    idempotency(user, &format!("ROLLOUT#{key}"))
}
pub fn rollout_holder(deployment: &Id) -> String {
    format!("ROLLOUTDEP#{deployment}")
}

// --- sign-in, sessions and second factors ---

pub fn login(email: &str) -> String {
    format!("LOGIN#{}", email.to_ascii_lowercase())
}
/// The email a [`login`] key was made for.
pub fn login_email(pk: &str) -> &str {
    pk.strip_prefix("LOGIN#").unwrap_or(pk)
}
/// The index partition of locked sign-ins.
pub const LOCKS: &str = "LOCKS";
/// A lock's place: latest end first when read descending.
pub fn lock_order(until: Timestamp, email: &str) -> String {
    format!("{}#{}", millis(until), email.to_ascii_lowercase())
}
pub fn account_notices(user: &Id) -> String {
    format!("NOTICE#{user}")
}
pub fn account_notice(at: Timestamp, kind: &str) -> String {
    format!("{}#{kind}", millis(at))
}
pub fn session(id: &str) -> String {
    format!("SESSION#{id}")
}
pub fn cognito(sub: &str) -> String {
    format!("COGNITO#{sub}")
}
pub fn mfa(user: &Id) -> String {
    format!("MFA#{user}")
}
pub fn webauthn_handle(handle: &str) -> String {
    format!("WEBAUTHN#{handle}")
}
pub fn ceremony(id: &str) -> String {
    format!("CEREMONY#{id}")
}

// --- catalog and audit ---

/// Published catalog versions (and deprecations).
pub const CATALOG: &str = "CATALOG";
pub fn catalog_version(slug: &str, version: &str) -> String {
    format!("{slug}#{version}")
}

pub const AUDIT: &str = "AUDIT";
pub const AUDIT_HEAD: &str = "HEAD";
/// Where keying starts (a signed mark).
pub const AUDIT_KEYED: &str = "KEYED";
/// Records moved aside from past the head: `PLANTED#<seq>#<id>`.
pub const AUDIT_PLANTED: &str = "PLANTED#";
/// An audit event's sort key: its sequence number, 20 digits, so the order is the chain's.
pub fn audit_seq(seq: u64) -> String {
    format!("{seq:020}")
}
pub fn audit_planted(seq: u64, id: &str) -> String {
    format!("{AUDIT_PLANTED}{}#{id}", audit_seq(seq))
}

/// Milliseconds in 13 digits: sort keys that start with a time sort in time order.
fn millis(t: Timestamp) -> String {
    format!("{:013}", t.millis().max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_counters_read_back_even_for_capabilities_with_hashes() {
        let sk = fleet_counter("crm#v2", EnvironmentName::Prod, DeploymentStatus::UpdateFailed);
        assert_eq!(
            parse_fleet_counter(&sk),
            Some(("crm#v2", EnvironmentName::Prod, DeploymentStatus::UpdateFailed))
        );
        assert_eq!(parse_fleet_counter("crm#nowhere#active"), None);
        assert_eq!(parse_fleet_counter("active"), None);
    }

    #[test]
    fn times_in_keys_sort_like_the_times() {
        let (early, late) = (Timestamp::from_millis(999), Timestamp::from_millis(1_000));
        assert!(stack_event(early, "b") < stack_event(late, "a"));
        assert!(lock_order(early, "z@x") < lock_order(late, "a@x"));
        assert_eq!(account_notice(Timestamp::from_millis(-5), "lock"), "0000000000000#lock");
    }

    #[test]
    fn prefixes_are_the_start_of_the_keys_they_read() {
        let id = Id::from_parts(1, 1);
        let order = deployment_order(EnvironmentName::Dev, "crm", &id);
        assert!(order.starts_with(&environment_prefix(Some(EnvironmentName::Dev))));
        assert!(order.starts_with(&environment_capability_prefix(Some(EnvironmentName::Dev), Some("crm"))));
        assert!(
            !order.starts_with(&environment_capability_prefix(Some(EnvironmentName::Dev), Some("cr"))),
            "a capability is matched whole"
        );
        assert!(environment(EnvironmentName::Prod).starts_with(ENVIRONMENT_PREFIX));
        assert!(operation(&id).starts_with(OPERATION_PREFIX));
        assert_eq!(login_email(&login("Rep@Demo.Nexus")), "rep@demo.nexus");
        assert!(audit_planted(7, "x").starts_with(AUDIT_PLANTED));
        assert!(audit_seq(9) < audit_seq(10) && audit_seq(u64::MAX).as_str() < AUDIT_HEAD);
    }
}
