//! Prometheus metrics: per-route request counts and latency, tokens issued, key rotations.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    route: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrantLabels {
    grant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlgLabels {
    alg: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    provider: String,
    /// `ok`, or why it failed (`id_token_nonce`, `email_domain_not_allowed`, ...).
    result: String,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram, fn() -> Histogram>,
    tokens: Family<GrantLabels, Counter>,
    rotations: Family<AlgLabels, Counter>,
    security_events: Family<EventLabels, Counter>,
    logout_deliveries: Family<OutcomeLabels, Counter>,
    upstream_sign_ins: Family<UpstreamLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms .. ~4 s
    Histogram::new(exponential_buckets(0.00025, 2.0, 15))
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("sesame");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<LatencyLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let tokens = Family::<GrantLabels, Counter>::default();
        let rotations = Family::<AlgLabels, Counter>::default();
        let security_events = Family::<EventLabels, Counter>::default();
        let logout_deliveries = Family::<OutcomeLabels, Counter>::default();
        let upstream_sign_ins = Family::<UpstreamLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests by route, method and status", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency by route and method", latency.clone());
        registry.register("tokens_issued", "Tokens issued by grant type", tokens.clone());
        registry.register("signing_key_rotations", "Signing keys created by this node, by algorithm", rotations.clone());
        registry.register("security_events", "Security-relevant events by kind", security_events.clone());
        registry.register("backchannel_logout_deliveries", "Back-channel logout attempts by outcome (delivered, retry, gave_up)", logout_deliveries.clone());
        registry.register("upstream_sign_ins", "Sign-ins through upstream identity providers, by provider and result", upstream_sign_ins.clone());
        Self { registry, requests, latency, tokens, rotations, security_events, logout_deliveries, upstream_sign_ins }
    }

    pub fn token_issued(&self, grant: &str) {
        self.tokens.get_or_create(&GrantLabels { grant: grant.to_string() }).inc();
    }

    pub fn key_rotated(&self, alg: crate::crypto::alg::SigningAlg) {
        self.rotations.get_or_create(&AlgLabels { alg: alg.as_str().to_string() }).inc();
    }

    /// `outcome`: `delivered`, `retry` or `gave_up`.
    pub fn logout_delivery(&self, outcome: &'static str) {
        self.logout_deliveries.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    pub fn security_event(&self, event: &str) {
        self.security_events.get_or_create(&EventLabels { event: event.to_string() }).inc();
    }

    pub fn upstream_sign_in(&self, provider: &str, result: &str) {
        self.upstream_sign_ins.get_or_create(&UpstreamLabels { provider: provider.to_string(), result: result.to_string() }).inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The method as a label: any token is a valid HTTP method, so an unknown one is `other`
/// rather than a new series per attacker-chosen name.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// Middleware: counts and times every request under its route template, not its raw path,
/// so that ids in paths cannot blow up the label set.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let method = method_label(request.method()).to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.latency.get_or_create(&LatencyLabels { route: route.clone(), method: method.clone() }).observe(started.elapsed().as_secs_f64());
    metrics.requests.get_or_create(&RequestLabels { route, method, status: response.status().as_u16() }).inc();
    response
}
