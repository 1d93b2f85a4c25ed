//! Dependency checks behind `GET /health` and the status panel.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use futures::future::join_all;

use super::store::{DynamoStore, Store, StoreError};
use crate::api::{CheckReport, PlatformStatus};

/// One dependency the server needs to serve requests.
#[async_trait]
pub trait HealthCheck: Send + Sync {
    fn name(&self) -> &'static str;
    /// `Err` carries a user-safe reason; details go to the logs.
    async fn check(&self) -> Result<(), String>;
}

/// Runs every check concurrently, each bounded by a timeout.
pub struct HealthService {
    store: &'static str,
    checks: Vec<Arc<dyn HealthCheck>>,
    timeout: Duration,
}

impl HealthService {
    pub fn new(store: &'static str, checks: Vec<Arc<dyn HealthCheck>>, timeout: Duration) -> Self {
        Self { store, checks, timeout }
    }

    pub async fn run(&self) -> Vec<CheckReport> {
        join_all(self.checks.iter().map(|check| async move {
            let result = match tokio::time::timeout(self.timeout, check.check()).await {
                Ok(result) => result,
                Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
            };
            if let Err(error) = &result {
                tracing::warn!(check = check.name(), %error, "health check failed");
            }
            CheckReport { name: check.name().to_string(), ok: result.is_ok(), error: result.err() }
        }))
        .await
    }

    pub async fn platform_status(&self) -> PlatformStatus {
        let checks = self.run().await;
        PlatformStatus {
            version: crate::VERSION.to_string(),
            store: self.store.to_string(),
            checks,
            checked_at: super::clock::now().to_string(),
        }
    }
}

/// The embedded store's directory exists and takes writes.
pub struct DataDirCheck {
    pub dir: std::path::PathBuf,
}

#[async_trait]
impl HealthCheck for DataDirCheck {
    fn name(&self) -> &'static str {
        "data_dir"
    }

    async fn check(&self) -> Result<(), String> {
        let probe = self.dir.join(".health-probe");
        tokio::fs::write(&probe, b"ok").await.map_err(|e| {
            tracing::warn!(dir = %self.dir.display(), error = %e, "data directory not writable");
            "the data directory is not writable".to_string()
        })?;
        let _ = tokio::fs::remove_file(&probe).await;
        Ok(())
    }
}

/// The store answers (`Store::ping`: a read on the embedded store, DescribeTable on DynamoDB).
pub struct StoreCheck(pub Arc<dyn Store>);

impl StoreCheck {
    /// A DynamoDB check answers now or reports failure: no retries behind it.
    pub fn dynamodb(conf: aws_sdk_dynamodb::config::Builder, table: impl Into<String>) -> Self {
        let conf = conf.retry_config(aws_config::retry::RetryConfig::disabled());
        StoreCheck(Arc::new(DynamoStore::from_conf(conf, table)))
    }
}

#[async_trait]
impl HealthCheck for StoreCheck {
    fn name(&self) -> &'static str {
        "store"
    }

    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|e| match e {
            // Already user-safe; the stores log the details.
            StoreError::Unavailable(message) => message,
            other => other.to_string(),
        })
    }
}
