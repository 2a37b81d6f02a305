//! OpenID Provider discovery, cached and refreshed in the background.
//!
//! We fetch `{issuer}/.well-known/openid-configuration` ourselves and parse
//! it into openidconnect's [`CoreProviderMetadata`] (so the document is
//! checked against the spec's required fields by a well-tested type), but we
//! do not call `CoreProviderMetadata::discover_async`: it insists that the
//! document's `issuer` equals the URL it was fetched from, which rules out
//! Headlamp's `-oidc-validator-idp-issuer-url` (an IdP reached through an
//! internal URL that puts its public URL in tokens), and it fetches and
//! parses the JWKS itself, whereas keys are cached and checked by
//! headlamp-jwt.
//!
//! The server must start while the IdP is down, so nothing here fails at
//! construction: a background task fetches the document, retries with
//! exponential backoff (1 s doubling to 5 min), and re-fetches hourly once
//! it has one. Readiness (`/readyz`) reports whether a document is cached.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use headlamp_core::{Clock, UnixTime};
use openidconnect::core::{CoreClientAuthMethod, CoreProviderMetadata};

use crate::OidcError;
use crate::http_client::{IdpHttpClient, redacted_url};

const WELL_KNOWN: &str = "/.well-known/openid-configuration";
pub(crate) const FIRST_RETRY: Duration = Duration::from_secs(1);
pub(crate) const MAX_RETRY: Duration = Duration::from_secs(300);
pub(crate) const REFRESH_INTERVAL: Duration = Duration::from_secs(3600);

/// The parts of a discovery document this crate uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderEndpoints {
    /// The document's `issuer`.
    pub issuer: String,
    /// `authorization_endpoint`.
    pub authorization_endpoint: url::Url,
    /// `token_endpoint` (required for the code flow).
    pub token_endpoint: url::Url,
    /// `jwks_uri`.
    pub jwks_uri: url::Url,
    /// How the client authenticates at the token endpoint.
    pub token_auth: TokenEndpointAuth,
    /// When the document was fetched.
    pub fetched_at: UnixTime,
}

/// Client authentication at the token endpoint
/// ([RFC 6749 section 2.3.1](https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenEndpointAuth {
    /// HTTP Basic with the url-encoded client id and secret (the default
    /// when the document says nothing: OIDC Discovery section 3,
    /// `token_endpoint_auth_methods_supported`).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

impl TokenEndpointAuth {
    /// Prefers basic (RFC 6749 section 2.3.1: servers MUST support it, and
    /// it keeps the secret out of bodies that might be logged); post only
    /// when the IdP lists post but not basic.
    fn choose(supported: Option<&Vec<CoreClientAuthMethod>>) -> Self {
        match supported {
            Some(methods)
                if !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
                    && methods.contains(&CoreClientAuthMethod::ClientSecretPost) =>
            {
                Self::ClientSecretPost
            }
            _ => Self::ClientSecretBasic,
        }
    }
}

/// Whether discovery has succeeded, for `/readyz` and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryStatus {
    /// The configured issuer URL.
    pub issuer_url: String,
    /// A document is cached (logins can start).
    pub ready: bool,
    /// When the cached document was fetched.
    pub last_success: Option<UnixTime>,
    /// The most recent failure, if the most recent attempt failed.
    pub last_error: Option<String>,
    /// Discovery document fetches attempted (for `/metrics`).
    pub discovery_fetches: u64,
    /// Discovery fetches that failed.
    pub discovery_failures: u64,
    /// JWKS fetches attempted.
    pub jwks_fetches: u64,
    /// JWKS fetches that failed.
    pub jwks_failures: u64,
}

/// Fetch counters of one issuer.
#[derive(Default)]
pub(crate) struct FetchCounters {
    pub(crate) discovery: AtomicU64,
    pub(crate) discovery_failures: AtomicU64,
    pub(crate) jwks: AtomicU64,
    pub(crate) jwks_failures: AtomicU64,
}

/// The discovery cache of one issuer (shared by every client of it).
pub(crate) struct Discovery {
    issuer_url: String,
    /// The other issuer value a document may report
    /// (`oidc-validator-idp-issuer-url`).
    validator_issuer: Option<String>,
    http: IdpHttpClient,
    clock: Arc<dyn Clock>,
    state: RwLock<DiscoveryState>,
    pub(crate) counters: FetchCounters,
    /// Flips to true on the first successful fetch.
    ready: tokio::sync::watch::Sender<bool>,
}

#[derive(Default)]
struct DiscoveryState {
    current: Option<Arc<ProviderEndpoints>>,
    last_error: Option<String>,
    last_attempt: Option<UnixTime>,
}

/// While the IdP is down and nothing is cached, a burst of sign-in clicks
/// must not become a burst of connection attempts each waiting for a
/// timeout: within this many seconds of a failed attempt, callers get that
/// failure again.
const INLINE_RETRY_SECS: u64 = 1;

impl Discovery {
    pub(crate) fn new(
        issuer_url: String,
        validator_issuer: Option<String>,
        http: IdpHttpClient,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            issuer_url,
            validator_issuer,
            http,
            clock,
            state: RwLock::new(DiscoveryState::default()),
            counters: FetchCounters::default(),
            ready: tokio::sync::watch::Sender::new(false),
        }
    }

    pub(crate) fn http(&self) -> &IdpHttpClient {
        &self.http
    }

    pub(crate) fn issuer_url(&self) -> &str {
        &self.issuer_url
    }

    /// The cached endpoints, without any I/O.
    pub(crate) fn cached(&self) -> Option<Arc<ProviderEndpoints>> {
        // A poisoned lock only means a writer panicked between two field
        // assignments; the data is still a valid cache.
        self.state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .current
            .clone()
    }

    /// The cached endpoints, or a fresh fetch when none are cached yet.
    pub(crate) async fn endpoints(&self) -> Result<Arc<ProviderEndpoints>, OidcError> {
        if let Some(current) = self.cached() {
            return Ok(current);
        }
        let recent_failure = {
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            match (&state.last_error, state.last_attempt) {
                (Some(error), Some(at))
                    if self.clock.now() < at.saturating_add(INLINE_RETRY_SECS) =>
                {
                    Some(error.clone())
                }
                _ => None,
            }
        };
        if let Some(reason) = recent_failure {
            return Err(OidcError::DiscoveryUnavailable {
                issuer: self.issuer_url.clone(),
                reason,
            });
        }
        self.refresh()
            .await
            .map_err(|e| OidcError::DiscoveryUnavailable {
                issuer: self.issuer_url.clone(),
                reason: e.to_string(),
            })
    }

    /// Resolves once a discovery document is cached.
    pub(crate) async fn wait_ready(&self) {
        let mut ready = self.ready.subscribe();
        // The sender lives as long as `self`, so this cannot fail while we
        // are borrowed.
        let _ = ready.wait_for(|ready| *ready).await;
    }

    pub(crate) fn status(&self) -> DiscoveryStatus {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        DiscoveryStatus {
            issuer_url: self.issuer_url.clone(),
            ready: state.current.is_some(),
            last_success: state.current.as_ref().map(|c| c.fetched_at),
            last_error: state.last_error.clone(),
            discovery_fetches: self.counters.discovery.load(Ordering::Relaxed),
            discovery_failures: self.counters.discovery_failures.load(Ordering::Relaxed),
            jwks_fetches: self.counters.jwks.load(Ordering::Relaxed),
            jwks_failures: self.counters.jwks_failures.load(Ordering::Relaxed),
        }
    }

    /// Fetches the document now and updates the cache. A failure keeps the
    /// previously cached document (an IdP restart must not log everyone out).
    pub(crate) async fn refresh(&self) -> Result<Arc<ProviderEndpoints>, OidcError> {
        let started = self.clock.now();
        self.counters.discovery.fetch_add(1, Ordering::Relaxed);
        let result = self.fetch().await.map(Arc::new);
        if result.is_err() {
            self.counters
                .discovery_failures
                .fetch_add(1, Ordering::Relaxed);
        }
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        state.last_attempt = Some(started);
        match &result {
            Ok(endpoints) => {
                state.current = Some(endpoints.clone());
                state.last_error = None;
                self.ready.send_replace(true);
            }
            Err(e) => state.last_error = Some(e.to_string()),
        }
        result
    }

    async fn fetch(&self) -> Result<ProviderEndpoints, OidcError> {
        let discovery_url = format!("{}{WELL_KNOWN}", self.issuer_url.trim_end_matches('/'));
        let request = http::Request::get(&discovery_url)
            .header(http::header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|e| OidcError::setting("oidc-idp-issuer-url", e.to_string()))?;
        let response = self.http.send(request).await?;
        let url = redacted_url(&discovery_url.parse().unwrap_or_default());
        if response.status() != http::StatusCode::OK {
            return Err(OidcError::IdpHttpStatus {
                url,
                status: response.status().as_u16(),
                detail: "expected 200 with the discovery document; check oidc-idp-issuer-url"
                    .to_owned(),
            });
        }
        let metadata: CoreProviderMetadata =
            serde_json::from_slice(response.body()).map_err(|e| OidcError::MalformedResponse {
                url: url.clone(),
                reason: format!("not an OpenID Provider metadata document: {e}"),
            })?;
        let issuer = metadata.issuer().as_str().to_owned();
        // OIDC Discovery section 4.3: the document's issuer MUST be identical
        // to the URL discovery started from. The one exception is the
        // operator's explicit oidc-validator-idp-issuer-url.
        let accepted =
            issuer == self.issuer_url || self.validator_issuer.as_deref() == Some(issuer.as_str());
        if !accepted {
            let (expected, expected_setting) = match &self.validator_issuer {
                Some(v) => (v.clone(), "oidc-validator-idp-issuer-url"),
                None => (self.issuer_url.clone(), "oidc-idp-issuer-url"),
            };
            return Err(OidcError::IssuerMismatch {
                discovery_url: url,
                found: issuer,
                expected,
                expected_setting,
            });
        }
        let token_endpoint =
            metadata
                .token_endpoint()
                .ok_or_else(|| OidcError::MalformedResponse {
                    url: url.clone(),
                    reason: "it has no token_endpoint, which the authorization-code flow needs"
                        .to_owned(),
                })?;
        Ok(ProviderEndpoints {
            issuer,
            authorization_endpoint: metadata.authorization_endpoint().url().clone(),
            token_endpoint: token_endpoint.url().clone(),
            jwks_uri: metadata.jwks_uri().url().clone(),
            token_auth: TokenEndpointAuth::choose(metadata.token_endpoint_auth_methods_supported()),
            fetched_at: self.clock.now(),
        })
    }
}

/// Parses `Cache-Control: max-age=N` ([RFC 9111 section 5.2.2.1](https://www.rfc-editor.org/rfc/rfc9111#section-5.2.2.1)).
/// `no-store`/`no-cache` mean "do not reuse", which we express as zero.
pub(crate) fn max_age(headers: &http::HeaderMap) -> Option<Duration> {
    let mut result = None;
    for value in headers.get_all(http::header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',').map(str::trim) {
            let lower = directive.to_ascii_lowercase();
            if lower == "no-store" || lower == "no-cache" {
                return Some(Duration::ZERO);
            }
            if let Some(secs) = lower.strip_prefix("max-age=")
                && let Ok(secs) = secs.trim_matches('"').parse::<u64>()
            {
                result = Some(Duration::from_secs(secs));
            }
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_max_age() {
        let mut h = http::HeaderMap::new();
        assert_eq!(max_age(&h), None);
        h.insert(
            http::header::CACHE_CONTROL,
            "public, max-age=600".parse().unwrap(),
        );
        assert_eq!(max_age(&h), Some(Duration::from_secs(600)));
        h.insert(http::header::CACHE_CONTROL, "no-store".parse().unwrap());
        assert_eq!(max_age(&h), Some(Duration::ZERO));
        h.insert(
            http::header::CACHE_CONTROL,
            "max-age=bogus".parse().unwrap(),
        );
        assert_eq!(max_age(&h), None);
    }

    #[test]
    fn token_auth_prefers_basic() {
        use CoreClientAuthMethod as M;
        assert_eq!(
            TokenEndpointAuth::choose(None),
            TokenEndpointAuth::ClientSecretBasic
        );
        assert_eq!(
            TokenEndpointAuth::choose(Some(&vec![M::ClientSecretPost, M::ClientSecretBasic])),
            TokenEndpointAuth::ClientSecretBasic
        );
        assert_eq!(
            TokenEndpointAuth::choose(Some(&vec![M::PrivateKeyJwt, M::ClientSecretPost])),
            TokenEndpointAuth::ClientSecretPost
        );
    }
}
