//! Process metrics in the Prometheus text format (`GET /metrics`): HTTP request latency by route
//! and status, AWS calls by service, operation and outcome, lifecycle operations by kind and
//! state, the reconciler's lag, rate-limit rejections and sign-in lockouts.

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Write as _,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

/// Upper bounds (seconds) of the latency histograms' buckets: from a cached read (~1 ms) to a
/// slow AWS call (seconds).
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// A Prometheus histogram updated without a lock (requests record into it concurrently).
#[derive(Default)]
struct Histogram {
    /// Per bucket (not cumulative; summed when rendered), then +Inf.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let i = BUCKETS.iter().position(|b| secs <= *b).unwrap_or(BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let le = BUCKETS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum:.6}\n{name}_count{{{labels}}} {cumulative}");
    }
}

/// (route, method, status) of a request.
type RequestKey = (String, &'static str, u16);

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
    /// Requests refused by a rate limit, by limit (`all`, `login`).
    rate_limited: BTreeMap<&'static str, u64>,
    /// Sign-in lockouts started.
    lockouts: u64,
    /// Operation events the bus refused and the outbox kept; of those, delivered later.
    outbox_held: u64,
    outbox_delivered: u64,
}

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<Counters>,
    /// Read-locked on every request, written once per new (route, method, status).
    requests: RwLock<HashMap<RequestKey, Arc<Histogram>>>,
    /// (service, operation) -> call latency.
    aws_latency: RwLock<HashMap<(&'static str, &'static str), Arc<Histogram>>>,
}

/// Finds or adds the histogram under `key`; a read lock in the common case.
fn histogram<K: std::hash::Hash + Eq>(map: &RwLock<HashMap<K, Arc<Histogram>>>, key: K) -> Arc<Histogram> {
    if let Some(h) = map.read().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return h.clone();
    }
    map.write().unwrap_or_else(|p| p.into_inner()).entry(key).or_default().clone()
}

fn sorted<K: Ord + Clone, V: Clone>(map: &RwLock<HashMap<K, V>>) -> Vec<(K, V)> {
    let mut all: Vec<(K, V)> =
        map.read().unwrap_or_else(|p| p.into_inner()).iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

/// Escapes a label value (a route pattern may hold any character a path can).
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    fn with<T>(&self, f: impl FnOnce(&mut Counters) -> T) -> T {
        f(&mut self.counters.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// One HTTP request: `route` is the matched route pattern (never the raw path, so
    /// customer ids do not become series).
    pub fn request(&self, route: &str, method: &'static str, status: u16, took: Duration) {
        let key = (route.to_string(), method, status);
        histogram(&self.requests, key).observe(took);
    }

    pub fn rate_limited(&self, limit: &'static str) {
        self.with(|c| *c.rate_limited.entry(limit).or_default() += 1);
    }

    pub fn lockout(&self) {
        self.with(|c| c.lockouts += 1);
    }

    pub fn aws_call(&self, service: &'static str, operation: &'static str, took: Duration) {
        histogram(&self.aws_latency, (service, operation)).observe(took);
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

    pub fn outbox_held(&self) {
        self.with(|c| c.outbox_held += 1);
    }

    pub fn outbox_delivered(&self) {
        self.with(|c| c.outbox_delivered += 1);
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
        out.push_str("# HELP nexus_http_request_duration_seconds Time to the response head, by route pattern, method and status.\n# TYPE nexus_http_request_duration_seconds histogram\n");
        for ((route, method, status), h) in sorted(&self.requests) {
            let labels = format!("route=\"{}\",method=\"{method}\",status=\"{status}\"", label(&route));
            h.render(&mut out, "nexus_http_request_duration_seconds", &labels);
        }
        out.push_str("# HELP nexus_aws_call_duration_seconds AWS API call latency.\n# TYPE nexus_aws_call_duration_seconds histogram\n");
        for ((s, o), h) in sorted(&self.aws_latency) {
            h.render(
                &mut out,
                "nexus_aws_call_duration_seconds",
                &format!("service=\"{s}\",operation=\"{o}\""),
            );
        }
        self.with(|c| {
            out.push_str("# HELP nexus_rate_limited_total Requests refused by a rate limit.\n# TYPE nexus_rate_limited_total counter\n");
            for limit in ["all", "login"] {
                let n = c.rate_limited.get(limit).copied().unwrap_or(0);
                let _ = writeln!(out, "nexus_rate_limited_total{{limit=\"{limit}\"}} {n}");
            }
            let _ = writeln!(
                out,
                "# HELP nexus_lockouts_total Sign-in lockouts started.\n# TYPE nexus_lockouts_total counter\nnexus_lockouts_total {}",
                c.lockouts
            );
            let _ = writeln!(
                out,
                "# HELP nexus_outbox_held_total Operation events the bus refused, kept in the outbox.\n# TYPE nexus_outbox_held_total counter\nnexus_outbox_held_total {}\n# HELP nexus_outbox_delivered_total Held operation events delivered later.\n# TYPE nexus_outbox_delivered_total counter\nnexus_outbox_delivered_total {}",
                c.outbox_held, c.outbox_delivered
            );
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
