//! [`Deployer`] on the AWS SDK: STS AssumeRole into the customer's role (with its external id,
//! the session named after the operation), then CloudFormation and SSM with those credentials
//! in the environment's region. Throttling and 5xx are retried by the SDK (standard mode:
//! backoff with jitter); what is still failing comes back as [`DeployError::Transient`] for
//! the engine to retry later.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_cloudformation::{
    Client as CfnClient,
    config::{Credentials, Region},
    error::{DisplayErrorContext, ProvideErrorMetadata, SdkError},
    types::{Capability, ChangeSetType, Parameter, Tag},
};

use super::deployer::{
    ChangeSetInfo, ChangeSetRequest, ChangeSetStatus, DeployError, Deployer, DriftReport, StackInfo, Target,
    TemplateSource,
};
use crate::{
    domain::{
        model::{ResourceChange, ResourceDrift},
        stacks::StackEvent,
        time::Timestamp,
    },
    ssr::metrics::Metrics,
};

/// How long a change set or a drift detection may take to compute before giving up.
const COMPUTE_TIMEOUT: Duration = Duration::from_secs(300);

struct CachedCredentials {
    credentials: Credentials,
    fresh_until: Instant,
}

pub struct CloudFormationDeployer {
    sdk: SdkConfig,
    metrics: Arc<Metrics>,
    credentials: Mutex<HashMap<(String, String, String), CachedCredentials>>,
}

/// What an SDK error means for the engine; the details go to the log, not to users.
fn classify<E, R>(
    metrics: &Metrics,
    service: &'static str,
    op: &'static str,
    e: SdkError<E, R>,
) -> DeployError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let (code, message) = match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            (UNREACHABLE.to_string(), "no answer".to_string())
        }
        SdkError::ServiceError(ctx) => {
            (ctx.err().code().unwrap_or("Unknown").to_string(), ctx.err().message().unwrap_or("").to_string())
        }
        _ => ("Unknown".to_string(), String::new()),
    };
    metrics.aws_error(service, op, &code);
    tracing::warn!(service, operation = op, code, error = %DisplayErrorContext(&e), "AWS call failed");
    classify_code(service, op, &code, &message)
}

/// The code [`classify`] gives a call that got no answer (timeout, connection refused).
pub const UNREACHABLE: &str = "Unreachable";

/// What an AWS error code (after the SDK's own retries) means for the engine: throttling, 5xx
/// and no answer are transient (the engine backs off and tries again), the rest end the step.
/// Public so that tests which inject a chosen AWS error get exactly this classification.
pub fn classify_code(service: &'static str, op: &'static str, code: &str, message: &str) -> DeployError {
    let transient = matches!(
        code,
        UNREACHABLE
            | "Throttling"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "TooManyRequestsException"
            | "ServiceUnavailable"
            | "InternalFailure"
            | "InternalError"
    );
    let text = if message.is_empty() { code.to_string() } else { format!("{code}: {message}") };
    if transient {
        DeployError::Transient(format!("{service} {op}: {text}"))
    } else if service == "sts" {
        DeployError::Access(format!("the toolkit cannot assume the environment's role ({text})"))
    } else if message.contains("does not exist") {
        DeployError::NoStack
    } else {
        DeployError::Rejected(format!("{op}: {text}"))
    }
}

fn timestamp(t: Option<&aws_sdk_cloudformation::primitives::DateTime>) -> Timestamp {
    Timestamp::from_millis(t.and_then(|t| t.to_millis().ok()).unwrap_or(0))
}

impl CloudFormationDeployer {
    pub fn new(sdk: &SdkConfig, metrics: Arc<Metrics>) -> Self {
        CloudFormationDeployer { sdk: sdk.clone(), metrics, credentials: Mutex::new(HashMap::new()) }
    }

    /// Credentials in the customer's account (cached per role, external id and session).
    async fn assume(&self, t: &Target) -> Result<Credentials, DeployError> {
        let key = (t.role_arn.clone(), t.external_id.clone(), t.session_name.clone());
        if let Some(c) = self.credentials.lock().unwrap_or_else(|p| p.into_inner()).get(&key)
            && c.fresh_until > Instant::now()
        {
            return Ok(c.credentials.clone());
        }
        let sts = aws_sdk_sts::Client::new(&self.sdk);
        let started = Instant::now();
        let out = sts
            .assume_role()
            .role_arn(&t.role_arn)
            .external_id(&t.external_id)
            .role_session_name(&t.session_name)
            .duration_seconds(3600)
            .send()
            .await;
        self.metrics.aws_call("sts", "AssumeRole", started.elapsed());
        let out = out.map_err(|e| classify(&self.metrics, "sts", "AssumeRole", e))?;
        let c = out
            .credentials()
            .ok_or_else(|| DeployError::Access("AssumeRole returned no credentials".into()))?;
        let credentials = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            None,
            "nexus-assume-role",
        );
        self.credentials.lock().unwrap_or_else(|p| p.into_inner()).insert(
            key,
            CachedCredentials {
                credentials: credentials.clone(),
                fresh_until: Instant::now() + Duration::from_secs(3000),
            },
        );
        Ok(credentials)
    }

    fn config_for(&self, t: &Target, credentials: Credentials) -> SdkConfig {
        self.sdk
            .to_builder()
            .region(Region::new(t.region.clone()))
            .credentials_provider(aws_sdk_cloudformation::config::SharedCredentialsProvider::new(credentials))
            .build()
    }

    async fn cfn(&self, t: &Target) -> Result<CfnClient, DeployError> {
        let creds = self.assume(t).await?;
        Ok(CfnClient::new(&self.config_for(t, creds)))
    }

    fn done(&self, op: &'static str, started: Instant) {
        self.metrics.aws_call("cloudformation", op, started.elapsed());
    }
}

fn parse_change_set(
    out: &aws_sdk_cloudformation::operation::describe_change_set::DescribeChangeSetOutput,
) -> ChangeSetInfo {
    let status = out.status().map(|s| s.as_str().to_string()).unwrap_or_default();
    let reason = out.status_reason().unwrap_or_default().to_string();
    let status = match status.as_str() {
        "CREATE_COMPLETE" => ChangeSetStatus::Ready,
        "FAILED"
            if reason.contains("didn't contain changes")
                || reason.contains("No updates are to be performed")
                || reason.contains("does not contain changes") =>
        {
            ChangeSetStatus::Empty
        }
        "FAILED" | "DELETE_COMPLETE" | "DELETE_FAILED" => {
            ChangeSetStatus::Failed(if reason.is_empty() { status } else { reason })
        }
        _ => ChangeSetStatus::Pending,
    };
    ChangeSetInfo {
        id: out.change_set_id().unwrap_or_default().to_string(),
        stack_id: out.stack_id().map(str::to_string),
        status,
        execution_status: out.execution_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
        changes: out
            .changes()
            .iter()
            .filter_map(|c| c.resource_change())
            .map(|r| ResourceChange {
                action: r.action().map(|a| a.as_str().to_string()).unwrap_or_default(),
                logical_id: r.logical_resource_id().unwrap_or_default().to_string(),
                resource_type: r.resource_type().unwrap_or_default().to_string(),
                replacement: r.replacement().map(|x| x.as_str().to_string()),
            })
            .collect(),
    }
}

#[async_trait]
impl Deployer for CloudFormationDeployer {
    async fn verify_account(&self, t: &Target) -> Result<(), DeployError> {
        let creds = self.assume(t).await?;
        let sts = aws_sdk_sts::Client::new(&self.config_for(t, creds));
        let started = Instant::now();
        let out = sts.get_caller_identity().send().await;
        self.metrics.aws_call("sts", "GetCallerIdentity", started.elapsed());
        let out = out.map_err(|e| classify(&self.metrics, "sts", "GetCallerIdentity", e))?;
        match out.account() {
            Some(a) if a == t.account_id => Ok(()),
            Some(a) => Err(DeployError::Access(format!(
                "the role belongs to account {a}, not to the environment's account {}",
                t.account_id
            ))),
            None => Err(DeployError::Access("GetCallerIdentity returned no account".into())),
        }
    }

    async fn create_change_set(
        &self,
        t: &Target,
        req: &ChangeSetRequest,
    ) -> Result<ChangeSetInfo, DeployError> {
        let cfn = self.cfn(t).await?;
        let mut call = cfn
            .create_change_set()
            .stack_name(&req.stack_name)
            .change_set_name(&req.change_set_name)
            .client_token(&req.client_token)
            .change_set_type(if req.create { ChangeSetType::Create } else { ChangeSetType::Update })
            .capabilities(Capability::CapabilityIam)
            .capabilities(Capability::CapabilityNamedIam)
            .set_parameters(Some(
                req.parameters
                    .iter()
                    .map(|(k, v)| Parameter::builder().parameter_key(k).parameter_value(v).build())
                    .collect(),
            ))
            .set_tags(Some(req.tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()));
        call = match &req.template {
            TemplateSource::Body(b) => call.template_body(b),
            TemplateSource::Url(u) => call.template_url(u),
        };
        let started = Instant::now();
        let out = call.send().await;
        self.done("CreateChangeSet", started);
        match out {
            Ok(_) => self.metrics.aws_change("CreateChangeSet"),
            // A retry after a crash: the change set of this operation exists already.
            Err(SdkError::ServiceError(ctx)) if ctx.err().code() == Some("AlreadyExistsException") => {
                tracing::info!(change_set = %req.change_set_name, "change set exists already: using it");
            }
            Err(e) => return Err(classify(&self.metrics, "cloudformation", "CreateChangeSet", e)),
        }
        let deadline = Instant::now() + COMPUTE_TIMEOUT;
        let mut pause = Duration::from_millis(100);
        loop {
            let info = self.change_set(t, &req.stack_name, &req.change_set_name).await?;
            if info.status != ChangeSetStatus::Pending {
                return Ok(info);
            }
            if Instant::now() > deadline {
                return Err(DeployError::Transient("the change set is still being computed".into()));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(3));
        }
    }

    async fn change_set(&self, t: &Target, stack: &str, name: &str) -> Result<ChangeSetInfo, DeployError> {
        let cfn = self.cfn(t).await?;
        let started = Instant::now();
        let out = cfn.describe_change_set().stack_name(stack).change_set_name(name).send().await;
        self.done("DescribeChangeSet", started);
        let out = out.map_err(|e| classify(&self.metrics, "cloudformation", "DescribeChangeSet", e))?;
        Ok(parse_change_set(&out))
    }

    async fn execute_change_set(
        &self,
        t: &Target,
        stack: &str,
        name: &str,
        token: &str,
    ) -> Result<(), DeployError> {
        let cfn = self.cfn(t).await?;
        let started = Instant::now();
        let out = cfn
            .execute_change_set()
            .stack_name(stack)
            .change_set_name(name)
            .client_request_token(token)
            .send()
            .await;
        self.done("ExecuteChangeSet", started);
        out.map_err(|e| classify(&self.metrics, "cloudformation", "ExecuteChangeSet", e))?;
        self.metrics.aws_change("ExecuteChangeSet");
        Ok(())
    }

    async fn delete_change_set(&self, t: &Target, stack: &str, name: &str) -> Result<(), DeployError> {
        let cfn = self.cfn(t).await?;
        let started = Instant::now();
        let out = cfn.delete_change_set().stack_name(stack).change_set_name(name).send().await;
        self.done("DeleteChangeSet", started);
        out.map_err(|e| classify(&self.metrics, "cloudformation", "DeleteChangeSet", e))?;
        Ok(())
    }

    async fn stack(&self, t: &Target, stack: &str) -> Result<Option<StackInfo>, DeployError> {
        let cfn = self.cfn(t).await?;
        let started = Instant::now();
        let out = cfn.describe_stacks().stack_name(stack).send().await;
        self.done("DescribeStacks", started);
        let out = match out.map_err(|e| classify(&self.metrics, "cloudformation", "DescribeStacks", e)) {
            Ok(o) => o,
            Err(DeployError::NoStack) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(out.stacks().first().map(|s| StackInfo {
            stack_id: s.stack_id().unwrap_or_default().to_string(),
            status: s.stack_status().map(|x| x.as_str().to_string()).unwrap_or_default(),
            reason: s.stack_status_reason().filter(|r| !r.is_empty()).map(str::to_string),
            outputs: s
                .outputs()
                .iter()
                .filter_map(|o| {
                    Some((o.output_key()?.to_string(), o.output_value().unwrap_or_default().to_string()))
                })
                .collect::<BTreeMap<_, _>>(),
            drift: s.drift_information().and_then(|d| d.stack_drift_status()).map(|d| d.as_str().to_string()),
        }))
    }

    async fn stack_events(&self, t: &Target, stack: &str) -> Result<Vec<StackEvent>, DeployError> {
        let cfn = self.cfn(t).await?;
        let started = Instant::now();
        let out = cfn.describe_stack_events().stack_name(stack).send().await;
        self.done("DescribeStackEvents", started);
        let out = out.map_err(|e| classify(&self.metrics, "cloudformation", "DescribeStackEvents", e))?;
        Ok(out
            .stack_events()
            .iter()
            .map(|e| StackEvent {
                event_id: e.event_id().unwrap_or_default().to_string(),
                timestamp: timestamp(e.timestamp()),
                logical_id: e.logical_resource_id().unwrap_or_default().to_string(),
                resource_type: e.resource_type().unwrap_or_default().to_string(),
                status: e.resource_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                reason: e.resource_status_reason().filter(|r| !r.is_empty()).map(str::to_string),
                client_request_token: e.client_request_token().filter(|r| !r.is_empty()).map(str::to_string),
            })
            .collect())
    }

    async fn validation_failures(&self, t: &Target, stack: &str) -> Result<Vec<StackEvent>, DeployError> {
        let cfn = self.cfn(t).await?;
        let started = Instant::now();
        let out = cfn.describe_events().stack_name(stack).send().await;
        self.done("DescribeEvents", started);
        let out = out.map_err(|e| classify(&self.metrics, "cloudformation", "DescribeEvents", e))?;
        Ok(out
            .operation_events()
            .iter()
            .filter(|e| e.event_type().is_some_and(|t| t.as_str() == "VALIDATION_ERROR"))
            .filter(|e| e.validation_status().is_some_and(|s| s.as_str() == "FAILED"))
            .map(|e| StackEvent {
                event_id: e.event_id().unwrap_or_default().to_string(),
                timestamp: timestamp(e.timestamp()),
                logical_id: e.logical_resource_id().unwrap_or_default().to_string(),
                resource_type: e.resource_type().unwrap_or_default().to_string(),
                status: "VALIDATION_FAILED".into(),
                reason: e.validation_status_reason().map(str::to_string),
                client_request_token: e.client_request_token().filter(|r| !r.is_empty()).map(str::to_string),
            })
            .collect())
    }

    async fn delete_stack(&self, t: &Target, stack: &str, token: &str) -> Result<(), DeployError> {
        let cfn = self.cfn(t).await?;
        let started = Instant::now();
        let out = cfn.delete_stack().stack_name(stack).client_request_token(token).send().await;
        self.done("DeleteStack", started);
        out.map_err(|e| classify(&self.metrics, "cloudformation", "DeleteStack", e))?;
        self.metrics.aws_change("DeleteStack");
        Ok(())
    }

    async fn detect_drift(&self, t: &Target, stack: &str) -> Result<DriftReport, DeployError> {
        let cfn = self.cfn(t).await?;
        let started = Instant::now();
        let out = cfn.detect_stack_drift().stack_name(stack).send().await;
        self.done("DetectStackDrift", started);
        let out = out.map_err(|e| classify(&self.metrics, "cloudformation", "DetectStackDrift", e))?;
        let detection = out.stack_drift_detection_id().unwrap_or_default().to_string();
        let deadline = Instant::now() + COMPUTE_TIMEOUT;
        let mut pause = Duration::from_millis(100);
        let stack_status = loop {
            let started = Instant::now();
            let s =
                cfn.describe_stack_drift_detection_status().stack_drift_detection_id(&detection).send().await;
            self.done("DescribeStackDriftDetectionStatus", started);
            let s = s.map_err(|e| {
                classify(&self.metrics, "cloudformation", "DescribeStackDriftDetectionStatus", e)
            })?;
            match s.detection_status().map(|d| d.as_str()).unwrap_or_default() {
                "DETECTION_IN_PROGRESS" if Instant::now() < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(3));
                }
                "DETECTION_FAILED" => {
                    return Err(DeployError::Rejected(format!(
                        "drift detection failed: {}",
                        s.detection_status_reason().unwrap_or("no reason given")
                    )));
                }
                "DETECTION_COMPLETE" => {
                    break s.stack_drift_status().map(|d| d.as_str().to_string()).unwrap_or_default();
                }
                _ => return Err(DeployError::Transient("drift detection did not finish in time".into())),
            }
        };
        let started = Instant::now();
        let r = cfn.describe_stack_resource_drifts().stack_name(stack).send().await;
        self.done("DescribeStackResourceDrifts", started);
        let r = r.map_err(|e| classify(&self.metrics, "cloudformation", "DescribeStackResourceDrifts", e))?;
        Ok(DriftReport {
            stack_status,
            resources: r
                .stack_resource_drifts()
                .iter()
                .map(|d| ResourceDrift {
                    logical_id: d.logical_resource_id().unwrap_or_default().to_string(),
                    resource_type: d.resource_type().unwrap_or_default().to_string(),
                    status: d
                        .stack_resource_drift_status()
                        .map(|x| x.as_str())
                        .unwrap_or_default()
                        .to_string(),
                })
                .collect(),
        })
    }

    async fn parameter(&self, t: &Target, name: &str) -> Result<Option<String>, DeployError> {
        let creds = self.assume(t).await?;
        let ssm = aws_sdk_ssm::Client::new(&self.config_for(t, creds));
        let started = Instant::now();
        let out = ssm.get_parameter().name(name).send().await;
        self.metrics.aws_call("ssm", "GetParameter", started.elapsed());
        match out {
            Ok(o) => Ok(o.parameter().and_then(|p| p.value()).map(str::to_string)),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_parameter_not_found()) => Ok(None),
            Err(e) => Err(classify(&self.metrics, "ssm", "GetParameter", e)),
        }
    }

    async fn put_parameter(&self, t: &Target, name: &str, value: &str) -> Result<(), DeployError> {
        let creds = self.assume(t).await?;
        let ssm = aws_sdk_ssm::Client::new(&self.config_for(t, creds));
        let started = Instant::now();
        let out = ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await;
        self.metrics.aws_call("ssm", "PutParameter", started.elapsed());
        out.map_err(|e| classify(&self.metrics, "ssm", "PutParameter", e))?;
        self.metrics.aws_change("PutParameter");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_5xx_and_silence_are_retried_the_rest_end_the_step() {
        for code in
            ["Throttling", "ThrottlingException", "ServiceUnavailable", "InternalFailure", UNREACHABLE]
        {
            assert!(classify_code("cloudformation", "CreateChangeSet", code, "").is_transient(), "{code}");
        }
        assert_eq!(
            classify_code("sts", "AssumeRole", "AccessDenied", "not allowed"),
            DeployError::Access(
                "the toolkit cannot assume the environment's role (AccessDenied: not allowed)".into()
            )
        );
        assert_eq!(
            classify_code(
                "cloudformation",
                "DescribeStacks",
                "ValidationError",
                "Stack with id x does not exist"
            ),
            DeployError::NoStack
        );
        assert!(matches!(
            classify_code("cloudformation", "CreateChangeSet", "ValidationError", "bad template"),
            DeployError::Rejected(_)
        ));
    }
}
