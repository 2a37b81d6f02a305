//! Prometheus metrics (`GET /metrics` with `-metrics-enabled`), in the
//! OpenMetrics text format of the `prometheus-client` crate.
//!
//! Label values are bounded: `route` is one of a fixed set, `cluster` only
//! ever a configured cluster name (or empty), `reason` a
//! `metric_label` constant. Nothing user-controlled becomes a label, so a
//! client cannot blow up the series count.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use headlamp_oidc::OidcRegistry;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
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

/// Labels of an IdP counter: the configured issuer URL (operator-chosen,
/// so bounded).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IssuerLabels {
    issuer: String,
}

/// Reads headlamp-oidc's per-issuer fetch counters at scrape time, so the
/// discovery and JWKS fetch paths keep plain atomics and know nothing of
/// Prometheus. Empty until the server hands it the registry.
#[derive(Debug, Default)]
struct IdpCollector {
    registry: Arc<OnceLock<OidcRegistry>>,
}

impl Collector for IdpCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(registry) = self.registry.get() else {
            return Ok(());
        };
        let statuses = registry.status();
        if statuses.is_empty() {
            return Ok(());
        }
        type Pick = fn(&headlamp_oidc::DiscoveryStatus) -> u64;
        let counters: [(&str, &str, Pick); 4] = [
            (
                "idp_discovery_fetches",
                "Discovery document fetches, by issuer",
                |s| s.discovery_fetches,
            ),
            (
                "idp_discovery_fetch_failures",
                "Discovery document fetches that failed, by issuer",
                |s| s.discovery_failures,
            ),
            (
                "idp_jwks_fetches",
                "JWKS (signing key set) fetches, by issuer",
                |s| s.jwks_fetches,
            ),
            (
                "idp_jwks_fetch_failures",
                "JWKS fetches that failed, by issuer",
                |s| s.jwks_failures,
            ),
        ];
        for (name, help, pick) in counters {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for status in &statuses {
                let labels = IssuerLabels {
                    issuer: status.issuer_url.clone(),
                };
                let metric = family.encode_family(&labels)?;
                ConstCounter::new(pick(status)).encode(metric)?;
            }
        }
        let mut ready = encoder.encode_descriptor(
            "idp_ready",
            "1 when the issuer's discovery document is cached (sign-in can start), else 0",
            None,
            MetricType::Gauge,
        )?;
        for status in &statuses {
            let labels = IssuerLabels {
                issuer: status.issuer_url.clone(),
            };
            ConstGauge::new(i64::from(status.ready)).encode(ready.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

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
    idp: Arc<OnceLock<OidcRegistry>>,
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
        let idp = Arc::new(OnceLock::new());
        registry.register_collector(Box::new(IdpCollector {
            registry: Arc::clone(&idp),
        }));
        Self {
            registry,
            idp,
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

    /// Exports the discovery and JWKS fetch counters of every issuer the
    /// registry knows (called once, when the registry exists).
    pub(crate) fn watch_idp(&self, registry: OidcRegistry) {
        // A second call keeps the first registry: there is one per process.
        let _ = self.idp.set(registry);
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

    #[tokio::test]
    async fn idp_fetch_counters_are_exported_per_issuer() {
        let metrics = Metrics::new();
        let text = metrics.encode().unwrap();
        assert!(!text.contains("idp_"), "no registry yet: {text}");

        let key = headlamp_oidc::SessionKey::from_material(&[7u8; 32]).unwrap();
        let registry = OidcRegistry::new(key, headlamp_core::SystemClock);
        // Port 1 on loopback refuses at once: whatever the background
        // discovery does, it stays on this machine. The issuer's series
        // exist as soon as the client does.
        let settings = headlamp_oidc::OidcProviderSettings::new("http://127.0.0.1:1", "headlamp");
        let _client = registry.client(settings).unwrap();
        metrics.watch_idp(registry.clone());
        let text = metrics.encode().unwrap();
        for line in [
            r#"headlamp_idp_ready{issuer="http://127.0.0.1:1"} 0"#,
            r#"headlamp_idp_jwks_fetches_total{issuer="http://127.0.0.1:1"} 0"#,
        ] {
            assert!(text.contains(line), "{line} missing from {text}");
        }
        assert!(
            text.contains(r#"headlamp_idp_discovery_fetches_total{issuer="http://127.0.0.1:1"}"#),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
