//! What the engine needs from AWS in a customer's account, as one small trait. The adapter is
//! [`CloudFormationDeployer`](super::cloudformation::CloudFormationDeployer) (STS,
//! CloudFormation, SSM); tests run it against the emulator, never a hand-written fake.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::domain::{
    model::{ResourceChange, ResourceDrift},
    stacks::StackEvent,
};

/// The account an operation acts in, and how the toolkit gets there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub account_id: String,
    pub region: String,
    pub role_arn: String,
    pub external_id: String,
    /// The STS session name: names the operation in the customer's CloudTrail.
    pub session_name: String,
}

impl Target {
    /// The account an environment points at, entered through its role and external id.
    pub fn of(env: &crate::domain::model::Environment, session_name: impl Into<String>) -> Self {
        Target {
            account_id: env.account_id.clone(),
            region: env.region.clone(),
            role_arn: env.role_arn.clone(),
            external_id: env.external_id.clone(),
            session_name: session_name.into(),
        }
    }
}

/// Where the template comes from: inline up to 51,200 bytes, by S3 URL beyond.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateSource {
    Body(String),
    Url(String),
}

#[derive(Clone, Debug)]
pub struct ChangeSetRequest {
    pub stack_name: String,
    pub change_set_name: String,
    pub client_token: String,
    /// CREATE for a new stack, UPDATE for an existing one.
    pub create: bool,
    pub template: TemplateSource,
    pub parameters: BTreeMap<String, String>,
    pub tags: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeSetStatus {
    /// Still being computed.
    Pending,
    /// Ready to execute (or executed: see `execution_status`).
    Ready,
    /// Nothing would change.
    Empty,
    Failed(String),
}

#[derive(Clone, Debug)]
pub struct ChangeSetInfo {
    pub id: String,
    pub stack_id: Option<String>,
    pub status: ChangeSetStatus,
    /// AVAILABLE until executed; EXECUTE_IN_PROGRESS / EXECUTE_COMPLETE / EXECUTE_FAILED after.
    pub execution_status: String,
    pub changes: Vec<ResourceChange>,
}

impl ChangeSetInfo {
    /// Whether someone already executed it (so executing again must not happen).
    pub fn executed(&self) -> bool {
        self.execution_status != "AVAILABLE" && self.execution_status != "UNAVAILABLE"
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackInfo {
    pub stack_id: String,
    pub status: String,
    pub reason: Option<String>,
    pub outputs: BTreeMap<String, String>,
    /// The last drift detection's verdict (IN_SYNC, DRIFTED, NOT_CHECKED, UNKNOWN).
    pub drift: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriftReport {
    /// IN_SYNC, DRIFTED, UNKNOWN …
    pub stack_status: String,
    pub resources: Vec<ResourceDrift>,
}

/// What went wrong, classified for retrying: transient errors (throttling, 5xx, timeouts) are
/// retried by the engine with backoff until the operation's deadline; the others end it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeployError {
    /// The role could not be assumed, or the account is not the one configured.
    #[error("{0}")]
    Access(String),
    /// CloudFormation refused the request (a template or parameter problem, a stack state).
    #[error("{0}")]
    Rejected(String),
    #[error("the stack does not exist")]
    NoStack,
    #[error("AWS is unavailable or throttling: {0}")]
    Transient(String),
    /// Not tried: calls into the account are paused by its circuit breaker until `until`
    /// (transient; trying before then is refused the same way).
    #[error("{message}")]
    Paused { message: String, until: crate::domain::time::Timestamp },
}

impl DeployError {
    pub fn is_transient(&self) -> bool {
        matches!(self, DeployError::Transient(_) | DeployError::Paused { .. })
    }
}

#[async_trait]
pub trait Deployer: Send + Sync {
    /// AssumeRole with the external id, then GetCallerIdentity: the account must match.
    async fn verify_account(&self, target: &Target) -> Result<(), DeployError>;
    /// Creates the change set (again: finds the one made before) and waits until it is computed.
    async fn create_change_set(
        &self,
        target: &Target,
        req: &ChangeSetRequest,
    ) -> Result<ChangeSetInfo, DeployError>;
    async fn change_set(
        &self,
        target: &Target,
        stack: &str,
        name: &str,
    ) -> Result<ChangeSetInfo, DeployError>;
    async fn execute_change_set(
        &self,
        target: &Target,
        stack: &str,
        name: &str,
        token: &str,
    ) -> Result<(), DeployError>;
    async fn delete_change_set(&self, target: &Target, stack: &str, name: &str) -> Result<(), DeployError>;
    /// The stack by name or id; `None` when it does not exist (or was deleted, by name).
    async fn stack(&self, target: &Target, stack: &str) -> Result<Option<StackInfo>, DeployError>;
    /// The stack's recent events, newest first.
    async fn stack_events(&self, target: &Target, stack: &str) -> Result<Vec<StackEvent>, DeployError>;
    /// Failed pre-deployment validations (DescribeEvents `VALIDATION_ERROR`), as stack events
    /// naming the resource: CloudFormation then reports only "Validation failed" on the stack.
    async fn validation_failures(&self, target: &Target, stack: &str)
    -> Result<Vec<StackEvent>, DeployError>;
    async fn delete_stack(&self, target: &Target, stack: &str, token: &str) -> Result<(), DeployError>;
    /// Starts drift detection and waits for its result.
    async fn detect_drift(&self, target: &Target, stack: &str) -> Result<DriftReport, DeployError>;
    /// Reads an SSM parameter; `None` when it does not exist.
    async fn parameter(&self, target: &Target, name: &str) -> Result<Option<String>, DeployError>;
    /// Writes an SSM String parameter (blue-green's active colour).
    async fn put_parameter(&self, target: &Target, name: &str, value: &str) -> Result<(), DeployError>;
}
