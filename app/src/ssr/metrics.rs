//! Process metrics in the Prometheus text format (`GET /metrics`): AWS calls by service,
//! operation and outcome, and lifecycle operations by kind and state.

use std::{collections::BTreeMap, fmt::Write as _, sync::Mutex, time::Duration};

#[derive(Default)]
struct Counters {
    /// (service, operation) -> (calls, seconds)
    aws_calls: BTreeMap<(&'static str, &'static str), (u64, f64)>,
    /// (service, operation, error code) -> count
    aws_errors: BTreeMap<(&'static str, &'static str, String), u64>,
    /// Successful calls that change something in a customer's account.
    aws_changes: BTreeMap<&'static str, u64>,
    /// (kind, state) -> operations that reached the state
    operations: BTreeMap<(&'static str, &'static str), u64>,
    /// The last reconciler pass: seconds, deployments checked, deployments changed; passes.
    reconcile_last: (f64, u64, u64),
    reconcile_passes: u64,
}

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<Counters>,
}

impl Metrics {
    fn with<T>(&self, f: impl FnOnce(&mut Counters) -> T) -> T {
        f(&mut self.counters.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn aws_call(&self, service: &'static str, operation: &'static str, took: Duration) {
        self.with(|c| {
            let e = c.aws_calls.entry((service, operation)).or_default();
            e.0 += 1;
            e.1 += took.as_secs_f64();
        });
    }

    pub fn aws_error(&self, service: &'static str, operation: &'static str, code: &str) {
        self.with(|c| *c.aws_errors.entry((service, operation, code.to_string())).or_default() += 1);
    }

    pub fn aws_change(&self, operation: &'static str) {
        self.with(|c| *c.aws_changes.entry(operation).or_default() += 1);
    }

    pub fn operation_state(&self, kind: &'static str, state: &'static str) {
        self.with(|c| *c.operations.entry((kind, state)).or_default() += 1);
    }

    pub fn reconciled(&self, took: Duration, checked: u64, changed: u64) {
        self.with(|c| {
            c.reconcile_last = (took.as_secs_f64(), checked, changed);
            c.reconcile_passes += 1;
        });
    }

    /// Successful calls of a changing AWS operation so far (tests compare it across replicas).
    pub fn changes(&self, operation: &str) -> u64 {
        self.with(|c| c.aws_changes.get(operation).copied().unwrap_or(0))
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        self.with(|c| {
            out.push_str("# HELP nexus_aws_calls_total AWS API calls.\n# TYPE nexus_aws_calls_total counter\n");
            for ((s, o), (n, _)) in &c.aws_calls {
                let _ = writeln!(out, "nexus_aws_calls_total{{service=\"{s}\",operation=\"{o}\"}} {n}");
            }
            out.push_str("# HELP nexus_aws_call_seconds_sum Time spent in AWS API calls.\n# TYPE nexus_aws_call_seconds_sum counter\n");
            for ((s, o), (_, secs)) in &c.aws_calls {
                let _ = writeln!(out, "nexus_aws_call_seconds_sum{{service=\"{s}\",operation=\"{o}\"}} {secs:.6}");
            }
            out.push_str("# HELP nexus_aws_errors_total Failed AWS API calls by error code.\n# TYPE nexus_aws_errors_total counter\n");
            for ((s, o, code), n) in &c.aws_errors {
                let _ = writeln!(out, "nexus_aws_errors_total{{service=\"{s}\",operation=\"{o}\",code=\"{code}\"}} {n}");
            }
            out.push_str("# HELP nexus_aws_changes_total Successful AWS calls that change a customer's account.\n# TYPE nexus_aws_changes_total counter\n");
            for (o, n) in &c.aws_changes {
                let _ = writeln!(out, "nexus_aws_changes_total{{operation=\"{o}\"}} {n}");
            }
            out.push_str("# HELP nexus_operations_total Lifecycle operations reaching a state.\n# TYPE nexus_operations_total counter\n");
            for ((k, s), n) in &c.operations {
                let _ = writeln!(out, "nexus_operations_total{{kind=\"{k}\",state=\"{s}\"}} {n}");
            }
            let (secs, checked, changed) = c.reconcile_last;
            let _ = writeln!(
                out,
                "# HELP nexus_reconcile_pass_seconds Duration of the last reconciler pass (its lag).\n# TYPE nexus_reconcile_pass_seconds gauge\nnexus_reconcile_pass_seconds {secs:.3}\n# TYPE nexus_reconcile_checked gauge\nnexus_reconcile_checked {checked}\n# TYPE nexus_reconcile_changed gauge\nnexus_reconcile_changed {changed}\n# TYPE nexus_reconcile_passes_total counter\nnexus_reconcile_passes_total {}",
                c.reconcile_passes
            );
        });
        out
    }
}
