//! Validator + JWKS cache: verify a token whose keys live at the IdP.

use std::sync::Arc;

use headlamp_core::Clock;

use crate::{
    JwksCache, JwksCacheConfig, JwtError, KeySource, ValidationPolicy, Validator, VerifiedToken,
};

/// Verifies tokens against keys fetched through a [`KeySource`] and cached
/// by a [`JwksCache`]. This is what headlamp-oidc calls for the ID token of
/// a code exchange ([`TokenVerifier::verify_with_nonce`]) and what
/// [`JwtAuthenticator`](crate::JwtAuthenticator) builds on.
#[derive(Debug)]
pub struct TokenVerifier<S> {
    validator: Validator,
    keys: JwksCache<S>,
}

impl<S> Clone for TokenVerifier<S> {
    fn clone(&self) -> Self {
        Self {
            validator: self.validator.clone(),
            keys: self.keys.clone(),
        }
    }
}

impl<S: KeySource> TokenVerifier<S> {
    /// A verifier enforcing `policy` with keys from `source`, with the
    /// default cache bounds. `clock` is shared by token and cache expiry.
    pub fn new(policy: ValidationPolicy, source: S, clock: impl Clock) -> Self {
        Self::with_cache_config(policy, source, clock, JwksCacheConfig::default())
    }

    /// Like [`TokenVerifier::new`] with explicit cache bounds.
    pub fn with_cache_config(
        policy: ValidationPolicy,
        source: S,
        clock: impl Clock,
        config: JwksCacheConfig,
    ) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(clock);
        let validator = Validator::new(policy, Arc::clone(&clock));
        let keys = JwksCache::with_shared_clock(source, clock, config);
        Self { validator, keys }
    }

    /// A verifier from parts built separately.
    pub fn from_parts(validator: Validator, keys: JwksCache<S>) -> Self {
        Self { validator, keys }
    }

    /// The validator.
    pub fn validator(&self) -> &Validator {
        &self.validator
    }

    /// The key cache.
    pub fn key_cache(&self) -> &JwksCache<S> {
        &self.keys
    }

    /// Verifies an access or ID token.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, JwtError> {
        self.verify_inner(token, None).await
    }

    /// Verifies an ID token from a code exchange, requiring its `nonce`.
    pub async fn verify_with_nonce(
        &self,
        token: &str,
        nonce: &str,
    ) -> Result<VerifiedToken, JwtError> {
        self.verify_inner(token, Some(nonce)).await
    }

    async fn verify_inner(
        &self,
        token: &str,
        nonce: Option<&str>,
    ) -> Result<VerifiedToken, JwtError> {
        // Header checks first: a token that can never verify must not cost
        // a key fetch.
        let parsed = self.validator.parse(token)?;
        let keys = self.keys.keys().await?;
        match self.validator.verify(&parsed, &keys, nonce) {
            Err(error @ (JwtError::UnknownKeyId { .. } | JwtError::NoMatchingKey { .. })) => {
                // Key rotation: the IdP may have published a new key since
                // the last fetch (OIDC Core section 10.1.1). The cache
                // decides whether a fetch is allowed right now.
                match self.keys.keys_after_miss(&keys).await {
                    Some(newer) => self.validator.verify(&parsed, &newer, nonce),
                    None => Err(error),
                }
            }
            other => other,
        }
    }
}
