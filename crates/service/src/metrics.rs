//! Prometheus metrics, kept in a few maps and rendered as text.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (c, b) in self.counts.iter_mut().zip(BUCKETS) {
            if secs <= b {
                *c += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }
}

#[derive(Default)]
struct Inner {
    http: BTreeMap<(String, String, u16), u64>,
    inferences: BTreeMap<(String, &'static str), u64>,
    latency: BTreeMap<String, Histogram>,
    disputes: BTreeMap<&'static str, u64>,
}

/// The node's counters.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one HTTP response.
    pub fn http(&self, method: &str, route: &str, status: u16) {
        *self
            .lock()
            .http
            .entry((method.into(), route.into(), status))
            .or_default() += 1;
    }

    /// Counts one inference and its engine time.
    pub fn inference(&self, model: &str, ok: bool, secs: f64) {
        let mut inner = self.lock();
        *inner
            .inferences
            .entry((model.into(), if ok { "ok" } else { "error" }))
            .or_default() += 1;
        if ok {
            inner.latency.entry(model.into()).or_default().observe(secs);
        }
    }

    /// Counts one dispute heard from a peer, by what became of it:
    /// `counted`, `duplicate` (its receipt was disputed before),
    /// `unproven` (it checks, but neither its parties nor this node's own
    /// re-execution establish it) or `invalid` (it does not check, or this
    /// node's re-execution refutes it).
    pub fn dispute(&self, outcome: &'static str) {
        *self.lock().disputes.entry(outcome).or_default() += 1;
    }

    /// How many disputes heard ended as `outcome` ([`Metrics::dispute`]).
    pub fn disputes(&self, outcome: &str) -> u64 {
        self.lock().disputes.get(outcome).copied().unwrap_or(0)
    }

    /// Renders the Prometheus text format; `gauges` are added as they are.
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let inner = self.lock();
        let mut out = String::new();
        out.push_str(
            "# HELP vouch_http_requests_total HTTP responses by method, route and status.\n",
        );
        out.push_str("# TYPE vouch_http_requests_total counter\n");
        for ((method, route, status), n) in &inner.http {
            let _ = writeln!(
                out,
                "vouch_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(method),
                escape(route)
            );
        }
        out.push_str("# HELP vouch_inferences_total Inferences by model and outcome.\n");
        out.push_str("# TYPE vouch_inferences_total counter\n");
        for ((model, outcome), n) in &inner.inferences {
            let _ = writeln!(
                out,
                "vouch_inferences_total{{model=\"{}\",outcome=\"{outcome}\"}} {n}",
                escape(model)
            );
        }
        out.push_str("# HELP vouch_inference_seconds Engine time per successful inference.\n");
        out.push_str("# TYPE vouch_inference_seconds histogram\n");
        for (model, h) in &inner.latency {
            let m = escape(model);
            for (b, c) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "vouch_inference_seconds_bucket{{model=\"{m}\",le=\"{b}\"}} {c}"
                );
            }
            let _ = writeln!(
                out,
                "vouch_inference_seconds_bucket{{model=\"{m}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "vouch_inference_seconds_sum{{model=\"{m}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "vouch_inference_seconds_count{{model=\"{m}\"}} {}",
                h.count
            );
        }
        out.push_str("# HELP vouch_disputes_heard_total Disputes heard from peers, by outcome.\n");
        out.push_str("# TYPE vouch_disputes_heard_total counter\n");
        for (outcome, n) in &inner.disputes {
            let _ = writeln!(
                out,
                "vouch_disputes_heard_total{{outcome=\"{outcome}\"}} {n}"
            );
        }
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}
