//! The IdP's `jwks_uri`, fetched over HTTP, as a headlamp-jwt [`KeySource`].

use std::sync::Arc;
use std::sync::atomic::Ordering;

use headlamp_jwt::{FetchedKeySet, KeySource, KeySourceError};

use crate::discovery::{Discovery, max_age};

/// Fetches the JWKS from the `jwks_uri` of the issuer's (cached) discovery
/// document. headlamp-jwt's cache decides when to call it.
#[derive(Clone)]
pub struct IdpKeySource {
    discovery: Arc<Discovery>,
}

impl std::fmt::Debug for IdpKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdpKeySource")
            .field("issuer", &self.discovery.issuer_url())
            .finish()
    }
}

impl IdpKeySource {
    pub(crate) fn new(discovery: Arc<Discovery>) -> Self {
        Self { discovery }
    }
}

impl KeySource for IdpKeySource {
    async fn fetch_keys(&self) -> Result<FetchedKeySet, KeySourceError> {
        let counters = &self.discovery.counters;
        counters.jwks.fetch_add(1, Ordering::Relaxed);
        let result = self.fetch().await;
        if result.is_err() {
            counters.jwks_failures.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

impl IdpKeySource {
    async fn fetch(&self) -> Result<FetchedKeySet, KeySourceError> {
        let endpoints = self
            .discovery
            .endpoints()
            .await
            .map_err(|e| KeySourceError::new(e.to_string()))?;
        let uri = endpoints.jwks_uri.as_str();
        let request = http::Request::get(uri)
            .header(
                http::header::ACCEPT,
                "application/jwk-set+json, application/json",
            )
            .body(Vec::new())
            .map_err(|e| KeySourceError::new(format!("GET {uri}: {e}")))?;
        let response = self
            .discovery
            .http()
            .send(request)
            .await
            .map_err(|e| KeySourceError::new(e.to_string()))?;
        if response.status() != http::StatusCode::OK {
            return Err(KeySourceError::new(format!(
                "GET {uri}: the IdP answered {} instead of the key set",
                response.status()
            )));
        }
        let max_age = max_age(response.headers());
        let mut keys = FetchedKeySet::new(response.into_body());
        if let Some(max_age) = max_age {
            keys = keys.with_max_age(max_age);
        }
        Ok(keys)
    }
}
