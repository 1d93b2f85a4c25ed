//! The entities of PRODUCT.md §2, as the API and the pages exchange them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    ids::Id,
    lifecycle::{DeploymentStatus, Drift, Health, OperationKind, OperationState},
    parameters::ParameterSchema,
    semver::Version,
    time::Timestamp,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Executive,
    SalesManager,
    Rep,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Executive => "executive",
            Role::SalesManager => "sales_manager",
            Role::Rep => "rep",
        }
    }

    /// "an Executive", "a Sales Manager", "a Rep": for messages.
    pub fn with_article(self) -> &'static str {
        match self {
            Role::Executive => "an Executive",
            Role::SalesManager => "a Sales Manager",
            Role::Rep => "a Rep",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::Executive => "Executive",
            Role::SalesManager => "Sales Manager",
            Role::Rep => "Rep",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct User {
    pub id: Id,
    pub email: String,
    pub name: String,
    pub role: Role,
    /// A Rep's Sales Manager: the manager's team is the Reps that name them here.
    pub manager_id: Option<Id>,
    pub active: bool,
    pub created_at: Timestamp,
    /// Optimistic-concurrency revision: a write naming an older one is refused.
    pub rev: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DataClassification {
    Public,
    Internal,
    Confidential,
    Restricted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    InPlace,
    BlueGreen,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Capability {
    /// `lead-scoring`: lower-case letters, digits and dashes.
    pub slug: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub classification: DataClassification,
    /// Newest first.
    pub versions: Vec<Version>,
    pub latest: Option<Version>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CapabilityVersion {
    pub capability: String,
    pub version: Version,
    pub changelog: String,
    pub strategy: Strategy,
    pub parameters: ParameterSchema,
    /// sha256 of the template body, hex.
    pub template_sha256: String,
    pub template_bytes: u64,
    /// Deprecated versions take no new deployments; existing ones are flagged.
    pub deprecated: bool,
    /// Data resources are deleted with the stack only when the version says so.
    pub retain_data: bool,
    pub published_at: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EnvironmentName {
    Dev,
    Staging,
    Prod,
}

impl EnvironmentName {
    pub const ALL: [EnvironmentName; 3] =
        [EnvironmentName::Dev, EnvironmentName::Staging, EnvironmentName::Prod];

    pub fn as_str(self) -> &'static str {
        match self {
            EnvironmentName::Dev => "dev",
            EnvironmentName::Staging => "staging",
            EnvironmentName::Prod => "prod",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Customer {
    pub id: Id,
    pub name: String,
    /// Used in stack names: `nexus-<capability>-<customer slug>-<environment>`.
    pub slug: String,
    /// The Rep (or Sales Manager) who owns the customer.
    pub owner_id: Id,
    pub cost_center: String,
    /// The customer's IANA time zone (`Europe/Berlin`): its maintenance windows are in it.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Weekly windows for prod changes (`Tue 02:00-04:00`), in `time_zone`; none: the
    /// organisation's default, if any.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(value_type = Vec<String>, example = json!(["Tue 02:00-04:00"])))]
    pub windows: Vec<super::maintenance::WeeklyWindow>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub rev: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    Unchecked,
    Connected,
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Environment {
    pub id: Id,
    pub customer_id: Id,
    pub name: EnvironmentName,
    /// 12 digits.
    pub account_id: String,
    pub region: String,
    pub role_arn: String,
    /// Generated by the server (random, 40 characters), immutable but for an Executive's
    /// rotation; read only by Executives (`permissions::sees_external_ids`): others get none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub external_id: String,
    pub connection: ConnectionStatus,
    pub connection_checked_at: Option<Timestamp>,
    pub connection_error: Option<String>,
    /// The customer role's version the last successful connect check found in the account
    /// (`infra/customer-role.yaml`; a role before version 2 does not say, and counts as 1).
    /// `None`: never connected since the toolkit started asking.
    #[serde(default)]
    pub role_version: Option<u32>,
    pub rev: u64,
}

/// The customer role version this toolkit expects (`infra/customer-role.yaml`): 2 added the
/// permissions boundary on every role the toolkit creates, and `cloudformation:ListStacks`.
pub const CUSTOMER_ROLE_VERSION: u32 = 2;

/// The SSM parameter in each customer account that names its customer role's version.
pub const CUSTOMER_ROLE_VERSION_PARAMETER: &str = "/nexus-toolkit/customer-role-version";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Color {
    Blue,
    Green,
}

impl Color {
    pub fn as_str(self) -> &'static str {
        match self {
            Color::Blue => "blue",
            Color::Green => "green",
        }
    }

    pub fn other(self) -> Color {
        match self {
            Color::Blue => Color::Green,
            Color::Green => Color::Blue,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Deployment {
    pub id: Id,
    pub customer_id: Id,
    pub environment_id: Id,
    pub environment: EnvironmentName,
    pub capability: String,
    pub version: Version,
    /// `NoEcho` values are stored encrypted and read back as `****`.
    pub parameters: BTreeMap<String, String>,
    pub stack_name: String,
    pub stack_id: Option<String>,
    pub status: DeploymentStatus,
    pub health: Health,
    pub drift: Drift,
    pub outputs: BTreeMap<String, String>,
    /// Blue-green deployments: the colour the routing parameter points at.
    pub active_color: Option<Color>,
    pub last_operation_id: Option<Id>,
    pub last_synced_at: Option<Timestamp>,
    /// What ran before the last successful change: the target of a rollback.
    #[serde(default)]
    pub previous_version: Option<Version>,
    #[serde(default)]
    pub previous_parameters: BTreeMap<String, String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub rev: u64,
}

/// One resource change of a change set (the preview).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ResourceChange {
    /// Add, Modify, Remove, Import, Dynamic.
    pub action: String,
    pub logical_id: String,
    pub resource_type: String,
    /// True, False, Conditional, or none for Add/Remove.
    pub replacement: Option<String>,
}

/// Which resource failed and why, from the stack events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct FailureCause {
    pub logical_id: Option<String>,
    pub resource_type: Option<String>,
    pub reason: String,
    /// The stack's state at the end (ROLLBACK_COMPLETE, UPDATE_ROLLBACK_COMPLETE …).
    pub stack_status: Option<String>,
}

/// Who must approve a change before it runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Approver {
    /// Nobody: the requester may run it.
    #[default]
    None,
    /// The requester's Sales Manager (the customer is in their team) or an Executive.
    SalesManager,
    Executive,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Operation {
    pub id: Id,
    pub deployment_id: Id,
    pub customer_id: Id,
    pub environment: EnvironmentName,
    /// The deployment's capability (its parameter schema says which values are `NoEcho`).
    /// Records from before it was stored read as empty: every parameter is then masked.
    #[serde(default)]
    pub capability: String,
    pub kind: OperationKind,
    pub state: OperationState,
    pub requested_by: Id,
    pub approved_by: Option<Id>,
    pub rejected_by: Option<Id>,
    /// What the approver (or the one who rejected it) wrote with the decision.
    #[serde(default)]
    pub decision_note: Option<String>,
    /// The version the operation moves to (deploy, upgrade, rollback).
    pub target_version: Option<Version>,
    pub parameters: BTreeMap<String, String>,
    pub auto_execute: bool,
    pub change_set_id: Option<String>,
    pub changes: Vec<ResourceChange>,
    pub failure: Option<FailureCause>,
    pub error: Option<String>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub rev: u64,
    /// Who must approve before it runs.
    #[serde(default)]
    pub approver: Approver,
    /// The stack the operation acts on.
    #[serde(default)]
    pub stack_name: String,
    /// The stack's status when the operation last looked.
    #[serde(default)]
    pub stack_status: Option<String>,
    /// The change set was executed (or the stack deletion started): never done twice.
    #[serde(default)]
    pub executed: bool,
    /// The deployment's status when the operation started to change it.
    #[serde(default)]
    pub status_before: Option<DeploymentStatus>,
    /// The worker holding the operation, and until when (a conditional write claims it).
    #[serde(default)]
    pub lease_owner: Option<String>,
    #[serde(default)]
    pub lease_until: Option<Timestamp>,
    /// No worker picks it up before this (backoff after a transient AWS error).
    #[serde(default)]
    pub not_before: Option<Timestamp>,
    #[serde(default)]
    pub attempts: u32,
    /// Past this the operation fails instead of waiting longer.
    #[serde(default)]
    pub deadline: Option<Timestamp>,
    /// Drift detection's per-resource results (drift checks).
    #[serde(default)]
    pub drift: Vec<ResourceDrift>,
    /// Blue-green progress: which colour the operation builds and how far the cut-over got.
    #[serde(default)]
    pub blue_green: Option<BlueGreen>,
    /// The rollout that started it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_id: Option<Id>,
}

/// A blue-green change: the new colour's stack is built, checked healthy, made active (the SSM
/// parameter `/nexus/<deployment>/active`), and the old colour's stack deleted after the bake
/// time. Each step is recorded so a resumed operation never repeats one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BlueGreen {
    pub to: Color,
    /// The colour serving before (none on a first deploy).
    pub from: Option<Color>,
    /// The stack of the old colour, deleted after the bake time.
    pub old_stack: Option<String>,
    #[serde(default)]
    pub healthy: bool,
    #[serde(default)]
    pub switched_at: Option<Timestamp>,
    #[serde(default)]
    pub old_deleted: bool,
    /// The new colour never answered healthy: no switch, and its stack is being removed.
    #[serde(default)]
    pub abandoned: bool,
}

impl Operation {
    /// Someone must still approve it before it runs.
    pub fn awaits_approval(&self) -> bool {
        self.approver != Approver::None && self.approved_by.is_none() && self.rejected_by.is_none()
    }

    /// An operation with nothing set, for `..Operation::blank()` in constructors.
    pub fn blank() -> Self {
        let zero = Id::from_parts(0, 0);
        Operation {
            id: zero.clone(),
            deployment_id: zero.clone(),
            customer_id: zero.clone(),
            environment: EnvironmentName::Dev,
            capability: String::new(),
            kind: OperationKind::Deploy,
            state: OperationState::Queued,
            requested_by: zero,
            approved_by: None,
            rejected_by: None,
            decision_note: None,
            target_version: None,
            parameters: BTreeMap::new(),
            auto_execute: false,
            change_set_id: None,
            changes: Vec::new(),
            failure: None,
            error: None,
            created_at: Timestamp::from_millis(0),
            started_at: None,
            finished_at: None,
            rev: 0,
            approver: Approver::None,
            stack_name: String::new(),
            stack_status: None,
            executed: false,
            status_before: None,
            lease_owner: None,
            lease_until: None,
            not_before: None,
            attempts: 0,
            deadline: None,
            drift: Vec::new(),
            blue_green: None,
            rollout_id: None,
        }
    }
}

/// One resource's drift, from DescribeStackResourceDrifts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ResourceDrift {
    pub logical_id: String,
    pub resource_type: String,
    /// IN_SYNC, MODIFIED, DELETED, NOT_CHECKED.
    pub status: String,
}

/// One entry of the append-only audit log. `hash` covers the record and `prev_hash`, so
/// editing or removing a record breaks the chain at that record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditEvent {
    pub seq: u64,
    pub at: Timestamp,
    pub actor_id: Option<Id>,
    pub actor_email: Option<String>,
    pub actor_role: Option<Role>,
    pub source_ip: Option<String>,
    /// `auth.login`, `customer.update` …
    pub action: String,
    /// What was acted on: `customer/<id>`, `user/<email>` …
    pub target: String,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    /// The owner of the customer the event concerns: a Sales Manager reads their team's events.
    #[serde(default)]
    pub owner_id: Option<Id>,
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// A page of a list and the cursor for the next (`None` on the last page).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}
