//! Dependency checks behind `GET /health` and the status panel.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use futures::future::join_all;

use super::store::{DynamoStore, Store, StoreError};
use crate::domain::views::{CheckReport, PlatformStatus};

/// One dependency the server needs to serve requests.
#[async_trait]
pub trait HealthCheck: Send + Sync {
    fn name(&self) -> &'static str;
    /// `Err` carries a user-safe reason; details go to the logs.
    async fn check(&self) -> Result<(), String>;
}

/// Runs every check concurrently, each bounded by a timeout; a result may be reused for a
/// short while so that frequent probes do not each touch every dependency.
pub struct HealthService {
    store: &'static str,
    checks: Vec<Arc<dyn HealthCheck>>,
    timeout: Duration,
    reuse: Duration,
    /// The last result and when its checks started. An async lock: callers arriving while the
    /// checks run wait for that result instead of starting their own.
    last: tokio::sync::Mutex<Option<(Instant, Vec<CheckReport>)>>,
}

impl HealthService {
    pub fn new(store: &'static str, checks: Vec<Arc<dyn HealthCheck>>, timeout: Duration) -> Self {
        Self { store, checks, timeout, reuse: Duration::ZERO, last: tokio::sync::Mutex::new(None) }
    }

    /// Reuses a result for `reuse` after its checks started (zero: never).
    pub fn reusing_for(mut self, reuse: Duration) -> Self {
        self.reuse = reuse;
        self
    }

    pub async fn run(&self) -> Vec<CheckReport> {
        if self.reuse.is_zero() {
            return self.run_checks().await;
        }
        let mut last = self.last.lock().await;
        if let Some((at, reports)) = last.as_ref()
            && at.elapsed() < self.reuse
        {
            return reports.clone();
        }
        let started = Instant::now();
        let reports = self.run_checks().await;
        *last = Some((started, reports.clone()));
        reports
    }

    async fn run_checks(&self) -> Vec<CheckReport> {
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Counts its runs; fails when told to.
    struct Counting {
        runs: AtomicUsize,
        fail: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl HealthCheck for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }

        async fn check(&self) -> Result<(), String> {
            self.runs.fetch_add(1, Ordering::SeqCst);
            if self.fail.load(Ordering::SeqCst) { Err("down".into()) } else { Ok(()) }
        }
    }

    fn counted(reuse: Duration) -> (Arc<Counting>, HealthService) {
        let check = Arc::new(Counting { runs: AtomicUsize::new(0), fail: false.into() });
        let service =
            HealthService::new("embedded", vec![check.clone()], Duration::from_secs(1)).reusing_for(reuse);
        (check, service)
    }

    #[tokio::test]
    async fn a_result_is_reused_within_its_window_and_only_then() {
        let (check, service) = counted(Duration::from_secs(3600));
        assert!(service.run().await[0].ok);
        check.fail.store(true, Ordering::SeqCst);
        // Within the window: the stored answer, no second probe.
        assert!(service.run().await[0].ok);
        assert_eq!(check.runs.load(Ordering::SeqCst), 1);

        let (check, service) = counted(Duration::from_millis(1));
        assert!(service.run().await[0].ok);
        check.fail.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await;
        let report = &service.run().await[0];
        assert_eq!((report.ok, report.error.as_deref()), (false, Some("down")));
        assert_eq!(check.runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn without_a_window_every_call_runs_the_checks() {
        let (check, service) = counted(Duration::ZERO);
        for _ in 0..3 {
            service.run().await;
        }
        assert_eq!(check.runs.load(Ordering::SeqCst), 3);
    }
}
