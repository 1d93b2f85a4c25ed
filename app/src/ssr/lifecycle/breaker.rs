//! A circuit breaker per customer account, around the deployer. After `failures` transient
//! failures in a row in one account (throttling, 5xx, no answer, after the SDK's own retries),
//! calls into that account are refused at once for `cool_down` — as a transient error, so the
//! engine backs off as it would for AWS's — instead of adding to a storm; then one call goes
//! through (half-open): its success closes the circuit, its failure opens it again. Other
//! accounts' circuits are their own: one customer's failing account never slows the others.
//! Every process keeps its own circuits (a replica learns an account is failing by itself).

use std::{collections::HashMap, sync::Mutex, time::Duration};

use async_trait::async_trait;

use super::deployer::{
    ChangeSetInfo, ChangeSetRequest, DeployError, Deployer, DriftReport, StackInfo, Target,
};
use crate::{
    domain::{stacks::StackEvent, time::Timestamp},
    ssr::clock,
};

/// `NEXUS_BREAKER_FAILURES` (5) and `NEXUS_BREAKER_COOL_DOWN_SECONDS` (30).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerConfig {
    pub failures: u32,
    pub cool_down: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig { failures: 5, cool_down: Duration::from_secs(30) }
    }
}

/// One account's circuit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Circuit {
    /// Calls go through; this many transient failures in a row so far.
    Closed(u32),
    /// Calls are refused until then.
    Open(i64),
    /// One call (started then) is finding out whether the account answers again.
    Probing(i64),
}

/// The circuits of every account this process calls into (pure rules over a clock in ms).
#[derive(Debug)]
pub struct Circuits {
    config: BreakerConfig,
    by_account: Mutex<HashMap<String, Circuit>>,
}

impl Circuits {
    pub fn new(config: BreakerConfig) -> Self {
        Circuits { config, by_account: Mutex::new(HashMap::new()) }
    }

    fn cool_down_ms(&self) -> i64 {
        self.config.cool_down.as_millis() as i64
    }

    /// Whether a call into `account` may go now; `Err(until)` while its circuit is open (or
    /// another call is probing it).
    pub fn admit(&self, account: &str, now_ms: i64) -> Result<(), i64> {
        let mut all = self.by_account.lock().unwrap_or_else(|p| p.into_inner());
        let circuit = all.entry(account.to_string()).or_insert(Circuit::Closed(0));
        match *circuit {
            Circuit::Closed(_) => Ok(()),
            Circuit::Open(until) | Circuit::Probing(until) if now_ms < until => Err(until),
            // Cooled down (or a probe that never reported back): this call is the probe.
            Circuit::Open(_) | Circuit::Probing(_) => {
                *circuit = Circuit::Probing(now_ms + self.cool_down_ms());
                Ok(())
            }
        }
    }

    /// The outcome of a call that was admitted: `true` for a transient failure. Anything else
    /// (success, or a refusal that is no outage: access denied, a bad template) means the
    /// account answers. `true` when this failure opened the circuit.
    pub fn record(&self, account: &str, transient_failure: bool, now_ms: i64) -> bool {
        let mut all = self.by_account.lock().unwrap_or_else(|p| p.into_inner());
        let circuit = all.entry(account.to_string()).or_insert(Circuit::Closed(0));
        let (next, opened) = match (*circuit, transient_failure) {
            (_, false) => (Circuit::Closed(0), false),
            (Circuit::Closed(n), true) if n + 1 < self.config.failures => (Circuit::Closed(n + 1), false),
            (Circuit::Closed(_) | Circuit::Probing(_), true) => {
                (Circuit::Open(now_ms + self.cool_down_ms()), true)
            }
            // A call admitted before the circuit opened, failing late: it stays open.
            (open @ Circuit::Open(_), true) => (open, false),
        };
        *circuit = next;
        opened
    }
}

/// The deployer behind a circuit per account.
pub struct BreakerDeployer {
    inner: std::sync::Arc<dyn Deployer>,
    circuits: Circuits,
}

impl BreakerDeployer {
    pub fn new(inner: std::sync::Arc<dyn Deployer>, config: BreakerConfig) -> Self {
        BreakerDeployer { inner, circuits: Circuits::new(config) }
    }

    fn admit(&self, target: &Target) -> Result<(), DeployError> {
        self.circuits.admit(&target.account_id, clock::now().millis()).map_err(|until| {
            let until = Timestamp::from_millis(until);
            DeployError::Paused {
                message: format!(
                    "calls into account {} are paused after repeated failures, until {until}",
                    target.account_id
                ),
                until,
            }
        })
    }

    fn record<T>(&self, target: &Target, result: &Result<T, DeployError>) {
        let failed = matches!(result, Err(e) if e.is_transient());
        if self.circuits.record(&target.account_id, failed, clock::now().millis()) {
            tracing::warn!(account = %target.account_id, "calls into the account paused after repeated failures");
        }
    }
}

/// Each call: admitted by the account's circuit, passed on, its outcome recorded.
macro_rules! guarded {
    ($self:ident, $target:ident, $call:expr) => {{
        $self.admit($target)?;
        let result = $call.await;
        $self.record($target, &result);
        result
    }};
}

#[async_trait]
impl Deployer for BreakerDeployer {
    async fn verify_account(&self, target: &Target) -> Result<(), DeployError> {
        guarded!(self, target, self.inner.verify_account(target))
    }

    async fn create_change_set(
        &self,
        target: &Target,
        req: &ChangeSetRequest,
    ) -> Result<ChangeSetInfo, DeployError> {
        guarded!(self, target, self.inner.create_change_set(target, req))
    }

    async fn change_set(
        &self,
        target: &Target,
        stack: &str,
        name: &str,
    ) -> Result<ChangeSetInfo, DeployError> {
        guarded!(self, target, self.inner.change_set(target, stack, name))
    }

    async fn execute_change_set(
        &self,
        target: &Target,
        stack: &str,
        name: &str,
        token: &str,
    ) -> Result<(), DeployError> {
        guarded!(self, target, self.inner.execute_change_set(target, stack, name, token))
    }

    async fn delete_change_set(&self, target: &Target, stack: &str, name: &str) -> Result<(), DeployError> {
        guarded!(self, target, self.inner.delete_change_set(target, stack, name))
    }

    async fn stack(&self, target: &Target, stack: &str) -> Result<Option<StackInfo>, DeployError> {
        guarded!(self, target, self.inner.stack(target, stack))
    }

    async fn stack_events(&self, target: &Target, stack: &str) -> Result<Vec<StackEvent>, DeployError> {
        guarded!(self, target, self.inner.stack_events(target, stack))
    }

    async fn validation_failures(
        &self,
        target: &Target,
        stack: &str,
    ) -> Result<Vec<StackEvent>, DeployError> {
        guarded!(self, target, self.inner.validation_failures(target, stack))
    }

    async fn delete_stack(&self, target: &Target, stack: &str, token: &str) -> Result<(), DeployError> {
        guarded!(self, target, self.inner.delete_stack(target, stack, token))
    }

    async fn detect_drift(&self, target: &Target, stack: &str) -> Result<DriftReport, DeployError> {
        guarded!(self, target, self.inner.detect_drift(target, stack))
    }

    async fn parameter(&self, target: &Target, name: &str) -> Result<Option<String>, DeployError> {
        guarded!(self, target, self.inner.parameter(target, name))
    }

    async fn put_parameter(&self, target: &Target, name: &str, value: &str) -> Result<(), DeployError> {
        guarded!(self, target, self.inner.put_parameter(target, name, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn circuits() -> Circuits {
        Circuits::new(BreakerConfig { failures: 3, cool_down: Duration::from_secs(10) })
    }

    #[test]
    fn repeated_failures_open_the_circuit_and_a_success_in_between_resets_the_count() {
        let c = circuits();
        assert!(!c.record("a", true, 0) && !c.record("a", true, 1));
        assert!(!c.record("a", false, 2), "a success: the count starts again");
        assert!(!c.record("a", true, 3) && !c.record("a", true, 4));
        assert_eq!(c.admit("a", 5), Ok(()));
        assert!(c.record("a", true, 5), "the third in a row opens it");
        assert_eq!(c.admit("a", 6), Err(10_005));
        assert_eq!(c.admit("b", 6), Ok(()), "another account is not affected");
    }

    #[test]
    fn after_the_cool_down_one_call_probes_and_decides() {
        let c = circuits();
        for t in 0..3 {
            c.record("a", true, t);
        }
        assert_eq!(c.admit("a", 10_001), Err(10_002));
        assert_eq!(c.admit("a", 10_002), Ok(()), "cooled down: this one probes");
        assert_eq!(c.admit("a", 10_003), Err(20_002), "one probe at a time");
        assert!(c.record("a", true, 10_004), "the probe failed: open again");
        assert_eq!(c.admit("a", 15_000), Err(20_004));
        assert_eq!(c.admit("a", 20_004), Ok(()));
        assert!(!c.record("a", false, 20_005), "the probe succeeded: closed");
        assert_eq!(c.admit("a", 20_006), Ok(()));
        assert!(!c.record("a", true, 20_007), "closed again: counting from zero");
    }

    #[test]
    fn a_probe_that_never_reports_back_does_not_hold_the_circuit_for_ever() {
        let c = circuits();
        for t in 0..3 {
            c.record("a", true, t);
        }
        assert_eq!(c.admit("a", 10_002), Ok(()));
        assert_eq!(c.admit("a", 20_002), Ok(()), "a new probe after another cool-down");
    }

    #[test]
    fn a_late_failure_of_a_call_admitted_before_the_opening_keeps_it_open() {
        let c = circuits();
        for t in 0..3 {
            c.record("a", true, t);
        }
        assert!(!c.record("a", true, 50), "already open: not opened again");
        assert_eq!(c.admit("a", 60), Err(10_002), "the cool-down is not extended");
    }
}
