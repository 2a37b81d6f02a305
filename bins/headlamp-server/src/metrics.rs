//! Prometheus metrics (`GET /metrics` with `-metrics-enabled`), in the
//! OpenMetrics text format of the `prometheus-client` crate.
//!
//! Label values are bounded: `route` is one of a fixed set, `cluster` only
//! ever a configured cluster name (or empty), `reason` a
//! `metric_label` constant. Nothing user-controlled becomes a label, so a
//! client cannot blow up the series count.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a served request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    cluster: String,
    code: u16,
}

/// Labels of a latency observation (no status: one histogram per route
/// and cluster keeps the series count small).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    route: &'static str,
    cluster: String,
}

/// Labels of an outcome counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// Labels of a failure the proxy answered itself.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProxyFailureLabels {
    cluster: String,
    reason: &'static str,
}

/// Labels of a token validation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ValidationLabels {
    result: &'static str,
    reason: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms to ~33 s: API calls, IdP round trips, long requests.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Every metric of the server.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily<LatencyLabels>,
    validations: Family<ValidationLabels, Counter>,
    logins: Family<OutcomeLabels, Counter>,
    refreshes: Family<OutcomeLabels, Counter>,
    proxy_failures: Family<ProxyFailureLabels, Counter>,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("headlamp");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "Requests answered, by route, cluster and HTTP status",
            requests.clone(),
        );
        let latency: HistogramFamily<LatencyLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time until the response headers were ready, by route and cluster",
            latency.clone(),
        );
        let validations = Family::<ValidationLabels, Counter>::default();
        registry.register(
            "token_validations",
            "Bearer token checks (impersonate mode and /me), by result and reason",
            validations.clone(),
        );
        let logins = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "oidc_logins",
            "OIDC sign-ins (callbacks), by outcome",
            logins.clone(),
        );
        let refreshes = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "oidc_token_refreshes",
            "Token refreshes with the sealed refresh token, by outcome",
            refreshes.clone(),
        );
        let proxy_failures = Family::<ProxyFailureLabels, Counter>::default();
        registry.register(
            "proxy_failures",
            "Requests the proxy answered itself (API server unreachable, TLS, timeout, refused \
             token...), by cluster and reason",
            proxy_failures.clone(),
        );
        Self {
            registry,
            proxy_failures,
            requests,
            latency,
            validations,
            logins,
            refreshes,
        }
    }

    /// Records one answered request.
    pub(crate) fn request(&self, route: &'static str, cluster: &str, code: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                route,
                cluster: cluster.to_owned(),
                code,
            })
            .inc();
        self.latency
            .get_or_create(&LatencyLabels {
                route,
                cluster: cluster.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// Records a token check: `Ok` or the failure's `metric_label`.
    pub(crate) fn validation(&self, outcome: Result<(), &'static str>) {
        let labels = match outcome {
            Ok(()) => ValidationLabels {
                result: "accepted",
                reason: "",
            },
            Err(reason) => ValidationLabels {
                result: "rejected",
                reason,
            },
        };
        self.validations.get_or_create(&labels).inc();
    }

    /// Records a sign-in outcome (`success`, `denied`, `failed`).
    pub(crate) fn login(&self, outcome: &'static str) {
        self.logins.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// Records a refresh outcome (`success`, `session_over`, `failed`).
    pub(crate) fn refresh(&self, outcome: &'static str) {
        self.refreshes
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Records a failure the proxy answered itself (its `metric_label`).
    pub(crate) fn proxy_failure(&self, cluster: &str, reason: &'static str) {
        self.proxy_failures
            .get_or_create(&ProxyFailureLabels {
                cluster: cluster.to_owned(),
                reason,
            })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub(crate) fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_values_appear_in_the_exposition() {
        let metrics = Metrics::new();
        metrics.request("proxy", "kind", 200, Duration::from_millis(3));
        metrics.validation(Err("expired"));
        metrics.validation(Ok(()));
        metrics.login("success");
        metrics.refresh("session_over");
        metrics.proxy_failure("kind", "connect");
        let text = metrics.encode().unwrap();
        assert!(
            text.contains(
                r#"headlamp_http_requests_total{route="proxy",cluster="kind",code="200"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"headlamp_http_request_duration_seconds_count{route="proxy",cluster="kind"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"headlamp_token_validations_total{result="rejected",reason="expired"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"headlamp_oidc_logins_total{outcome="success"} 1"#));
        assert!(text.contains(r#"headlamp_oidc_token_refreshes_total{outcome="session_over"} 1"#));
        assert!(
            text.contains(r#"headlamp_proxy_failures_total{cluster="kind",reason="connect"} 1"#),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
