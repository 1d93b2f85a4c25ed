//! Checking an environment's connection: the customer role assumed with its external id, the
//! account behind it, and the role's version. An operation whose environment was not checked
//! lately (the engine) and a user's "check connection" (the customer service) both come here.

use super::deployer::{DeployError, Deployer, Target};
use crate::{
    domain::{
        model::{CUSTOMER_ROLE_VERSION_PARAMETER, ConnectionStatus, Environment},
        stacks,
    },
    ssr::clock,
};

/// Checks an environment's connection: AssumeRole with its external id, the account behind
/// it, and the customer role's version. Answers the environment as it is to be stored after
/// the check (status, time, an error that names no toolkit ARN), and the outcome. A user's
/// connect and an operation's stale-connection check both go through here.
pub async fn check(
    deployer: &dyn Deployer,
    env: &Environment,
    target: &Target,
) -> (Environment, Result<(), DeployError>) {
    let outcome = deployer.verify_account(target).await;
    let mut checked = env.clone();
    checked.connection_checked_at = Some(clock::now());
    match &outcome {
        Ok(()) => {
            checked.connection = ConnectionStatus::Connected;
            checked.connection_error = None;
            // Roles before version 2 neither have the parameter nor may read it.
            checked.role_version = match deployer.parameter(target, CUSTOMER_ROLE_VERSION_PARAMETER).await {
                Ok(Some(v)) => Some(v.trim().parse().unwrap_or(1)),
                Ok(None) | Err(DeployError::Access(_)) => Some(1),
                Err(e) => {
                    tracing::warn!(error = %e, "the customer role's version could not be read");
                    env.role_version
                }
            };
        }
        Err(e) => {
            checked.connection = ConnectionStatus::Failed;
            checked.connection_error = Some(stacks::without_foreign_arns(&e.to_string(), &env.role_arn));
        }
    }
    (checked, outcome)
}
