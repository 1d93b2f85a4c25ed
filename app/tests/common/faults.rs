//! Faults injected around the real adapters, never instead of them: the CloudFormation deployer
//! still talks to the emulator, the store is still the embedded store or DynamoDB, the notifier
//! still publishes, the health checks still GET real URLs. A [`Faults`] plan says which calls
//! fail, with which AWS error, or answer late, for how long; the wrappers count every call and
//! consult the plan before passing it on to the real adapter (a failed call never reaches it,
//! as when AWS refuses it).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use app::{
    domain::stacks::StackEvent,
    ssr::{
        health::StoreCheck,
        http_client::StatusProbe,
        lifecycle::{
            cloudformation::classify_code,
            deployer::{
                ChangeSetInfo, ChangeSetRequest, DeployError, Deployer, DriftReport, StackInfo, Target,
            },
            notifier::{Notifier, OperationEvent},
        },
        state::Adapters,
        store::{CallCounts, Item, Query, QueryPage, Store, StoreError, Write},
    },
};
use async_trait::async_trait;

/// Which calls a rule applies to.
#[derive(Clone, Debug)]
pub enum Calls {
    /// Calls of this name (`CreateChangeSet`, `DescribeStacks`, `transact`, `publish` …).
    Named(&'static str),
    /// Every deployer call into this AWS account.
    Account(String),
    /// Every call of one adapter: `deployer`, `store`, `notifier`, `http` (health URLs).
    All(&'static str),
    /// Store transactions writing a key whose partition starts with this (`CUST#`).
    Writing(&'static str),
}

#[derive(Clone, Debug)]
enum Effect {
    /// Fail with this AWS error code (classified as the CloudFormation adapter classifies it).
    Aws(&'static str),
    /// Answer this much later (network latency).
    Delay(Duration),
}

/// What the plan does to one call.
#[derive(Default)]
struct Verdict {
    fail: Option<&'static str>,
    delay: Duration,
}

#[derive(Clone, Debug)]
struct Rule {
    calls: Calls,
    effect: Effect,
    /// Calls still affected (`None`: until `until`).
    times: Option<u32>,
    until: Option<Instant>,
}

/// The plan and the count of calls, shared by the wrappers and the test.
#[derive(Default)]
pub struct Faults {
    rules: Mutex<Vec<Rule>>,
    calls: Mutex<HashMap<String, u64>>,
    /// Calls refused by a rule, by name.
    failed: Mutex<HashMap<String, u64>>,
    /// The keys (partition, sort key) of each store transaction that was written, in order.
    written: Mutex<Vec<Vec<(String, String)>>>,
}

impl Faults {
    pub fn new() -> Arc<Faults> {
        Arc::new(Faults::default())
    }

    /// The next `times` calls matching `calls` fail with the AWS error `code`.
    pub fn fail(&self, calls: Calls, code: &'static str, times: u32) {
        self.add(Rule { calls, effect: Effect::Aws(code), times: Some(times), until: None });
    }

    /// Every call matching `calls` fails with `code` for `window` from now.
    pub fn fail_for(&self, calls: Calls, code: &'static str, window: Duration) {
        self.add(Rule {
            calls,
            effect: Effect::Aws(code),
            times: None,
            until: Some(Instant::now() + window),
        });
    }

    /// Every call matching `calls` answers `delay` later, for `window` from now.
    pub fn delay_for(&self, calls: Calls, delay: Duration, window: Duration) {
        self.add(Rule {
            calls,
            effect: Effect::Delay(delay),
            times: None,
            until: Some(Instant::now() + window),
        });
    }

    /// Forgets the plan: every call goes through as it is from now on.
    pub fn clear(&self) {
        self.rules.lock().unwrap().clear();
    }

    fn add(&self, rule: Rule) {
        self.rules.lock().unwrap().push(rule);
    }

    /// Calls made so far under `name` (`CreateChangeSet`, `account:<id>`, `store`, `publish` …).
    pub fn count(&self, name: &str) -> u64 {
        self.calls.lock().unwrap().get(name).copied().unwrap_or(0)
    }

    /// The keys of each store transaction written so far, in order.
    pub fn transactions(&self) -> Vec<Vec<(String, String)>> {
        self.written.lock().unwrap().clone()
    }

    /// Calls refused by the plan so far under `name`.
    pub fn refused(&self, name: &str) -> u64 {
        self.failed.lock().unwrap().get(name).copied().unwrap_or(0)
    }

    /// Counts one call (under each of `names`), waits out any latency the plan adds, and says
    /// whether the plan fails it (with which AWS error code).
    async fn before(&self, adapter: &'static str, name: &str, account: Option<&str>) -> Option<&'static str> {
        self.before_writing(adapter, name, account, &[]).await
    }

    /// [`Faults::before`] for a call that writes `keys`.
    async fn before_writing(
        &self,
        adapter: &'static str,
        name: &str,
        account: Option<&str>,
        keys: &[(String, String)],
    ) -> Option<&'static str> {
        let verdict = self.verdict(adapter, name, account, keys);
        tokio::time::sleep(verdict.delay).await;
        verdict.fail
    }

    /// Counts one call and says what the plan does to it.
    fn verdict(
        &self,
        adapter: &'static str,
        name: &str,
        account: Option<&str>,
        keys: &[(String, String)],
    ) -> Verdict {
        let mut names = vec![name.to_string(), adapter.to_string()];
        if let Some(a) = account {
            names.push(format!("account:{a}"));
        }
        {
            let mut calls = self.calls.lock().unwrap();
            for n in &names {
                *calls.entry(n.clone()).or_default() += 1;
            }
        }
        let mut verdict = Verdict::default();
        {
            let now = Instant::now();
            let mut rules = self.rules.lock().unwrap();
            rules.retain(|r| r.times != Some(0) && r.until.is_none_or(|u| u > now));
            for rule in rules.iter_mut() {
                let applies = match &rule.calls {
                    Calls::Named(n) => *n == name,
                    Calls::Account(a) => account == Some(a.as_str()),
                    Calls::All(a) => *a == adapter,
                    Calls::Writing(prefix) => keys.iter().any(|(pk, _)| pk.starts_with(prefix)),
                };
                if !applies {
                    continue;
                }
                match rule.effect {
                    Effect::Delay(d) => verdict.delay += d,
                    Effect::Aws(code) => {
                        if verdict.fail.is_none() {
                            verdict.fail = Some(code);
                            if let Some(t) = &mut rule.times {
                                *t -= 1;
                            }
                        }
                    }
                }
            }
        }
        if verdict.fail.is_some() {
            let mut failed = self.failed.lock().unwrap();
            for n in &names {
                *failed.entry(n.clone()).or_default() += 1;
            }
        }
        verdict
    }

    /// The real adapters wrapped: every call counted and subject to the plan.
    pub fn wrap(self: &Arc<Self>, mut adapters: Adapters) -> Adapters {
        adapters.deployer = Arc::new(FaultyDeployer { inner: adapters.deployer, faults: self.clone() });
        adapters.store = Arc::new(FaultyStore { inner: adapters.store, faults: self.clone() });
        // `/health` pings the store the services use, so it sees the same faults.
        adapters.store_checks.retain(|c| c.name() != "store");
        adapters.store_checks.push(Arc::new(StoreCheck(adapters.store.clone())));
        adapters.events = Arc::new(FaultyNotifier { inner: adapters.events, faults: self.clone() });
        adapters.health_http = Arc::new(FaultyHttp { inner: adapters.health_http, faults: self.clone() });
        adapters
    }
}

/// The deployer, each call checked against the plan first.
pub struct FaultyDeployer {
    inner: Arc<dyn Deployer>,
    faults: Arc<Faults>,
}

impl FaultyDeployer {
    async fn check(
        &self,
        service: &'static str,
        op: &'static str,
        target: &Target,
    ) -> Result<(), DeployError> {
        match self.faults.before("deployer", op, Some(&target.account_id)).await {
            Some(code) => Err(classify_code(service, op, code, "injected by the test")),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl Deployer for FaultyDeployer {
    async fn verify_account(&self, target: &Target) -> Result<(), DeployError> {
        self.check("sts", "AssumeRole", target).await?;
        self.inner.verify_account(target).await
    }

    async fn create_change_set(
        &self,
        target: &Target,
        req: &ChangeSetRequest,
    ) -> Result<ChangeSetInfo, DeployError> {
        self.check("cloudformation", "CreateChangeSet", target).await?;
        self.inner.create_change_set(target, req).await
    }

    async fn change_set(
        &self,
        target: &Target,
        stack: &str,
        name: &str,
    ) -> Result<ChangeSetInfo, DeployError> {
        self.check("cloudformation", "DescribeChangeSet", target).await?;
        self.inner.change_set(target, stack, name).await
    }

    async fn execute_change_set(
        &self,
        target: &Target,
        stack: &str,
        name: &str,
        token: &str,
    ) -> Result<(), DeployError> {
        self.check("cloudformation", "ExecuteChangeSet", target).await?;
        self.inner.execute_change_set(target, stack, name, token).await
    }

    async fn delete_change_set(&self, target: &Target, stack: &str, name: &str) -> Result<(), DeployError> {
        self.check("cloudformation", "DeleteChangeSet", target).await?;
        self.inner.delete_change_set(target, stack, name).await
    }

    async fn stack(&self, target: &Target, stack: &str) -> Result<Option<StackInfo>, DeployError> {
        self.check("cloudformation", "DescribeStacks", target).await?;
        self.inner.stack(target, stack).await
    }

    async fn stack_events(&self, target: &Target, stack: &str) -> Result<Vec<StackEvent>, DeployError> {
        self.check("cloudformation", "DescribeStackEvents", target).await?;
        self.inner.stack_events(target, stack).await
    }

    async fn validation_failures(
        &self,
        target: &Target,
        stack: &str,
    ) -> Result<Vec<StackEvent>, DeployError> {
        self.check("cloudformation", "DescribeEvents", target).await?;
        self.inner.validation_failures(target, stack).await
    }

    async fn delete_stack(&self, target: &Target, stack: &str, token: &str) -> Result<(), DeployError> {
        self.check("cloudformation", "DeleteStack", target).await?;
        self.inner.delete_stack(target, stack, token).await
    }

    async fn detect_drift(&self, target: &Target, stack: &str) -> Result<DriftReport, DeployError> {
        self.check("cloudformation", "DetectStackDrift", target).await?;
        self.inner.detect_drift(target, stack).await
    }

    async fn parameter(&self, target: &Target, name: &str) -> Result<Option<String>, DeployError> {
        self.check("ssm", "GetParameter", target).await?;
        self.inner.parameter(target, name).await
    }

    async fn put_parameter(&self, target: &Target, name: &str, value: &str) -> Result<(), DeployError> {
        self.check("ssm", "PutParameter", target).await?;
        self.inner.put_parameter(target, name, value).await
    }
}

/// The store, each call checked against the plan first. A refused call answers what the
/// stores answer when they cannot be reached (DynamoDB throttling that outlasted the SDK's
/// retries included): `Unavailable`, nothing written.
pub struct FaultyStore {
    inner: Arc<dyn Store>,
    faults: Arc<Faults>,
}

impl FaultyStore {
    async fn check(&self, op: &'static str) -> Result<(), StoreError> {
        match self.faults.before("store", op, None).await {
            Some(code) => Err(StoreError::Unavailable(format!("{code} (injected by the test)"))),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl Store for FaultyStore {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.check("get").await?;
        self.inner.get(pk, sk).await
    }

    async fn query(&self, query: Query) -> Result<QueryPage, StoreError> {
        self.check("query").await?;
        self.inner.query(query).await
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let keys: Vec<(String, String)> = writes
            .iter()
            .map(|w| match w {
                Write::Put { item, .. } => (item.pk.clone(), item.sk.clone()),
                Write::Delete { pk, sk, .. } | Write::Add { pk, sk, .. } | Write::Check { pk, sk, .. } => {
                    (pk.clone(), sk.clone())
                }
            })
            .collect();
        if let Some(code) = self.faults.before_writing("store", "transact", None, &keys).await {
            return Err(StoreError::Unavailable(format!("{code} (injected by the test)")));
        }
        self.inner.transact(writes).await?;
        self.faults.written.lock().unwrap().push(keys);
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.check("ping").await?;
        self.inner.ping().await
    }

    fn calls(&self) -> CallCounts {
        self.inner.calls()
    }

    fn generation(&self) -> Option<u64> {
        self.inner.generation()
    }
}

/// The external notifier (EventBridge and SNS, or the log), checked against the plan first.
pub struct FaultyNotifier {
    inner: Arc<dyn Notifier>,
    faults: Arc<Faults>,
}

#[async_trait]
impl Notifier for FaultyNotifier {
    async fn publish(&self, event: &OperationEvent) -> Result<(), String> {
        if let Some(code) = self.faults.before("notifier", "publish", None).await {
            return Err(format!("events PutEvents: {code} (injected by the test)"));
        }
        self.inner.publish(event).await?;
        // Delivered: counted apart from attempts.
        *self.faults.calls.lock().unwrap().entry("delivered".into()).or_default() += 1;
        Ok(())
    }

    async fn publish_rollout(
        &self,
        event: &app::ssr::lifecycle::notifier::RolloutEvent,
    ) -> Result<(), String> {
        if let Some(code) = self.faults.before("notifier", "publish", None).await {
            return Err(format!("events PutEvents: {code} (injected by the test)"));
        }
        self.inner.publish_rollout(event).await
    }
}

/// The health checks' HTTP client (health URLs), checked against the plan first. Latency counts
/// against the probe's own timeout, as a slow network would: a probe delayed past it has no
/// answer.
pub struct FaultyHttp {
    inner: Arc<dyn StatusProbe>,
    faults: Arc<Faults>,
}

#[async_trait]
impl StatusProbe for FaultyHttp {
    async fn status(&self, url: &str, timeout: Duration) -> Result<u16, String> {
        let verdict = self.faults.verdict("http", "GET", None, &[]);
        if verdict.delay >= timeout {
            tokio::time::sleep(timeout).await;
            return Err(format!(
                "{url}: no answer within {} ms (latency injected by the test)",
                timeout.as_millis()
            ));
        }
        tokio::time::sleep(verdict.delay).await;
        if let Some(code) = verdict.fail {
            return Err(format!("{url}: {code} (injected by the test)"));
        }
        self.inner.status(url, timeout - verdict.delay).await
    }
}
