//! The key layout of every entity in the single table.
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
//! | operation lock, idempotency keys, stack events | see `repo::operations` | | | | | |
//! | fleet counters | `SUMMARY#ALL` or `SUMMARY#OWNER#<owner id>` | `<capability>#<env>#<status>` (counter `n`) | | | | |
//! | failed sign-ins per submitted email | `LOGIN#<email>` | `LOGIN` | `LOCKS` / `<lock end, millis, 13 digits>#<email>` while a lock is set | | | |
//! | notice about a user's own account (a sign-in lock) | `NOTICE#<user id>` | `<millis, 13 digits>#<kind>` | | | | |
//! | session | `SESSION#<id>` | `SESSION` | | | | |
//! | a user's second factors | `MFA#<user id>` | `MFA` | | | | |
//! | passkey user handle → user | `WEBAUTHN#<handle>` | `WEBAUTHN` | | | | |
//! | a finished passkey ceremony (so it works once) | `CEREMONY#<id>` | `USED` | | | | |
//! | notification (operation state change) | `NOTE#OWNER#<owner id>` and `NOTE#ALL` | `<millis, 13 digits>#<operation id>#<state>` | | | | |
//! | audit event | `AUDIT` | `<seq, 20 digits>` | | | | |
//! | audit chain head | `AUDIT` | `HEAD` | | | | |
//!
//! Index 0..4 in code are `gsi1`..`gsi5` on DynamoDB. `DEPS` (every deployment, for an
//! Executive's unfiltered or environment-filtered list) is one partition: fine at the fleet sizes
//! the product targets (15,000 deployments); beyond that it would be sharded by environment.

pub const META: &str = "META";
pub const SCHEMA: &str = "SCHEMA";
/// The workers' queue and the users' (approvals, previews).
pub const OPS_WORK: &str = "OPS#WORK";
pub const OPS_WAIT: &str = "OPS#WAIT";

pub const GSI1: usize = 0;
pub const GSI2: usize = 1;
pub const GSI3: usize = 2;
pub const GSI4: usize = 3;
pub const GSI5: usize = 4;

/// A customer owner's notification feed, or everyone's.
pub fn notifications(owner: Option<&crate::domain::ids::Id>) -> String {
    match owner {
        Some(o) => format!("NOTE#OWNER#{o}"),
        None => "NOTE#ALL".to_string(),
    }
}

pub fn user(id: &str) -> String {
    format!("USER#{id}")
}
pub fn email(email: &str) -> String {
    format!("EMAIL#{}", email.to_ascii_lowercase())
}
pub fn customer(id: &str) -> String {
    format!("CUST#{id}")
}
pub fn deployment(id: &str) -> String {
    format!("DEP#{id}")
}
/// Environments by the AWS account they point at.
pub fn account(account_id: &str) -> String {
    format!("ACCOUNT#{account_id}")
}
pub fn owner(id: &str) -> String {
    format!("OWNER#{id}")
}
pub fn summary_all() -> String {
    "SUMMARY#ALL".to_string()
}
pub fn summary_owner(id: &str) -> String {
    format!("SUMMARY#OWNER#{id}")
}
/// The index partition of locked sign-ins.
pub const LOCKS: &str = "LOCKS";

pub fn account_notices(user: &crate::domain::ids::Id) -> String {
    format!("NOTICE#{user}")
}

pub fn mfa(user: &crate::domain::ids::Id) -> String {
    format!("MFA#{user}")
}

pub fn webauthn_handle(handle: &str) -> String {
    format!("WEBAUTHN#{handle}")
}

pub fn ceremony(id: &str) -> String {
    format!("CEREMONY#{id}")
}

pub fn login(email: &str) -> String {
    format!("LOGIN#{}", email.to_ascii_lowercase())
}
pub fn session(id: &str) -> String {
    format!("SESSION#{id}")
}
