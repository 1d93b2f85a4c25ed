//! What the API and the pages exchange beyond the bare entities: detail views, the fleet
//! summary, and the admin forms' inputs.

use serde::{Deserialize, Serialize};

use super::{
    ids::Id,
    lifecycle::{DeploymentStatus, OperationKind, OperationState},
    model::{Capability, CapabilityVersion, Customer, Deployment, Environment, EnvironmentName, Operation},
    time::Timestamp,
};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CapabilityDetail {
    #[serde(flatten)]
    pub capability: Capability,
    /// Every version, newest first, with its parameter schema and changelog.
    pub releases: Vec<CapabilityVersion>,
}

/// Deployments one usage answer reads at most (a capability at the 15,000-deployment scale
/// has about 3,000).
pub const USAGE_LIMIT: usize = 5_000;

/// Who runs which version of a capability (within what the asker may see).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CapabilityUsage {
    pub capability: String,
    /// Versions in use, newest first.
    pub versions: Vec<VersionUsage>,
    /// More deployments than one answer reads: the counts are of the first ones only.
    pub truncated: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct VersionUsage {
    pub version: crate::domain::semver::Version,
    pub deprecated: bool,
    pub deployments: usize,
    /// By name.
    pub customers: Vec<UsageCustomer>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UsageCustomer {
    pub id: Id,
    pub name: String,
    /// The environments running this version, dev first.
    pub environments: Vec<EnvironmentName>,
}

/// A deployment as lists show it: `NoEcho` parameters masked, deprecated versions flagged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DeploymentView {
    #[serde(flatten)]
    pub deployment: Deployment,
    /// The running version was deprecated: plan an upgrade.
    pub version_deprecated: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DeploymentDetail {
    #[serde(flatten)]
    pub view: DeploymentView,
    /// Newest first (the most recent 50).
    pub operations: Vec<Operation>,
    pub operations_next_cursor: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CustomerDetail {
    #[serde(flatten)]
    pub customer: Customer,
    pub environments: Vec<Environment>,
    pub deployments: Vec<DeploymentView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct FleetRow {
    pub capability: String,
    pub environment: EnvironmentName,
    pub status: DeploymentStatus,
    pub count: i64,
    pub problem: bool,
}

/// Deployment counts by capability x environment x status, problems first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct FleetSummary {
    pub total: i64,
    pub problems: i64,
    pub rows: Vec<FleetRow>,
}

/// `POST /api/v1/customers`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    pub name: String,
    /// Lower-case letters, digits and dashes; derived from the name when left out. Fixed once
    /// created (it is part of stack names).
    #[serde(default)]
    pub slug: Option<String>,
    /// The Rep or Sales Manager who owns the customer.
    pub owner_id: String,
    pub cost_center: String,
}

/// `PATCH /api/v1/customers/{id}`: only the given fields change; `rev` is the revision read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CustomerChanges {
    pub rev: u64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub owner_id: Option<String>,
    #[serde(default)]
    pub cost_center: Option<String>,
    /// An IANA time zone (`Europe/Berlin`); empty clears it (and needs no windows).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Weekly prod windows (`["Tue 02:00-04:00"]`) in the customer's time zone; `[]` clears them.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<Vec<String>>))]
    pub windows: Option<Vec<crate::domain::maintenance::WeeklyWindow>>,
}

/// `POST /api/v1/customers/{id}/environments`. The external id is the server's to make (an
/// `external_id` field is refused as unknown).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewEnvironment {
    /// `dev`, `staging` or `prod`.
    pub name: String,
    pub account_id: String,
    pub region: String,
    pub role_arn: String,
}

/// `PATCH /api/v1/customers/{id}/environments/{name}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EnvironmentChanges {
    pub rev: u64,
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub role_arn: Option<String>,
}

/// Who a customer belongs to, for forms: the id must name a Rep or Sales Manager.
pub fn parse_owner(s: &str) -> Option<Id> {
    Id::parse(s.trim()).ok()
}

/// `POST /deployments`: one capability version into one environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    pub environment_id: String,
    pub capability: String,
    pub version: String,
    #[serde(default)]
    pub parameters: std::collections::BTreeMap<String, String>,
    /// Execute as soon as the change set is ready, without a preview.
    #[serde(default)]
    pub auto_execute: bool,
}

/// `POST /deployments/{id}/upgrade`: parameters not given keep their current values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpgradeRequest {
    pub version: String,
    #[serde(default)]
    pub parameters: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub auto_execute: bool,
}

/// Rollback, switch, drift check: nothing to choose but whether to skip the preview.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChangeRequest {
    #[serde(default)]
    pub auto_execute: bool,
}

/// `DELETE /deployments/{id}`: a prod deployment needs its stack name typed as confirmation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeleteRequest {
    #[serde(default)]
    pub confirm: Option<String>,
}

/// Approve or reject, with an optional note.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    #[serde(default)]
    pub note: Option<String>,
}

/// One request in the approvals inbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct InboxItem {
    pub operation: Operation,
    pub customer_name: String,
    /// The user may approve or reject it (otherwise it is their own, waiting on someone else).
    pub may_decide: bool,
}

/// One operation state change in a user's notification feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Notification {
    pub operation_id: Id,
    pub deployment_id: Id,
    pub customer_id: Id,
    pub customer_name: String,
    pub environment: EnvironmentName,
    pub capability: String,
    pub kind: OperationKind,
    pub state: OperationState,
    pub target_version: Option<String>,
    pub requested_by: Id,
    pub error: Option<String>,
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub at: Timestamp,
}

/// What a notice about one's own account says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AccountNoticeKind {
    /// Too many failed sign-ins locked the account's password sign-in for a while.
    Locked,
}

impl AccountNoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountNoticeKind::Locked => "locked",
        }
    }
}

/// A notice to a user about their own account, shown at the top of their notifications.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AccountNotice {
    pub kind: AccountNoticeKind,
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub at: Timestamp,
    /// Until when password sign-in stays locked (single sign-on still works).
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>, format = DateTime))]
    pub until: Option<Timestamp>,
    /// Failed sign-ins that caused it.
    pub failures: u32,
    /// Where the last failed attempt came from.
    pub source_ip: Option<String>,
}

/// An email whose password sign-in is locked now (the Executives' list).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LockedAccount {
    pub email: String,
    /// The user with that email; `None` when nobody has it (someone guessed at it).
    pub user_id: Option<Id>,
    pub name: Option<String>,
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub locked_until: Timestamp,
}

/// The signed-in user's second factors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MfaStatus {
    /// An authenticator app (TOTP) is set up.
    pub totp: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: usize,
    /// Passkeys, in the order they were added.
    #[serde(default)]
    pub passkeys: Vec<PasskeyInfo>,
    /// Whether this server offers passkeys (they need `NEXUS_PUBLIC_URL` with a host name).
    #[serde(default)]
    pub passkeys_available: bool,
}

/// One of the user's passkeys (the public key itself is never shown).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PasskeyInfo {
    /// The credential's id (base64url), to remove it by.
    pub id: String,
    pub name: String,
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub added_at: Timestamp,
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>, format = DateTime))]
    pub last_used_at: Option<Timestamp>,
}

/// The first half of a passkey ceremony: the options for the browser's
/// `navigator.credentials.create()` / `.get()` (WebAuthn's JSON form) and a token that carries
/// the ceremony to its second half (sealed; valid five minutes, once).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PasskeyChallenge {
    pub token: String,
    /// `PublicKeyCredentialCreationOptionsJSON` or `…RequestOptionsJSON`, as text.
    pub options: String,
}

/// An authenticator app being set up: shown once, confirmed by one of its codes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TotpEnrolment {
    /// The secret in base32, for typing into the app by hand.
    pub secret: String,
    pub otpauth_url: String,
    /// The URL as a QR code (an SVG document).
    pub qr_svg: String,
}

/// Recovery codes, shown this once (each signs in once in place of the app's code).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RecoveryCodes {
    pub codes: Vec<String>,
}

/// A second-factor code: from the authenticator app, or a recovery code.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    pub code: String,
}

/// One dependency check as reported by `/health` and the status panel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    pub name: String,
    pub ok: bool,
    /// Why the check failed (user-safe), `None` when it passed.
    pub error: Option<String>,
}

/// What the platform status panel shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformStatus {
    pub version: String,
    /// `embedded` or `dynamodb`.
    pub store: String,
    pub checks: Vec<CheckReport>,
    /// When the server answered, RFC 3339 in UTC.
    pub checked_at: String,
}

impl PlatformStatus {
    pub fn healthy(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}
