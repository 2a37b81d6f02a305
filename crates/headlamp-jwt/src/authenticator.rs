//! [`Authenticate`] for OIDC tokens: verify, map claims, cache the result.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use headlamp_core::{Authenticate, AuthenticationError, BearerToken, Identity, UnixTime};
use moka::Expiry;
use moka::sync::Cache;

use crate::{ClaimMapping, JwtError, KeySource, TokenVerifier};

/// Default number of verified tokens kept.
pub const DEFAULT_CACHE_CAPACITY: u64 = 10_000;

/// Default longest time a verified token is trusted without re-checking
/// its signature (it is never trusted past its own `exp`).
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(5 * 60);

/// Cache key: SHA-256 of the token's signature segment.
///
/// The cache never holds a usable credential: an entry keeps the signed
/// part (`header.payload`, what the signature covers, no more secret than
/// the claims already in the cached identity) and the key is a hash of the
/// signature, which is not stored. A hit requires the signature hash *and*
/// the signed part to match byte for byte, so it is the very token that
/// was verified; anything else (a cached signature pasted onto other
/// claims) is a miss and gets a full verification.
///
/// Hashing only the signature (86 to 684 characters, by algorithm) keeps a
/// hit's cost independent of the claims size: a token with hundreds of
/// groups is several KiB, and hashing all of it dominated the hit path
/// (docs/benchmarks.md).
type TokenDigest = [u8; 32];

struct CachedIdentity {
    signed_part: Box<str>,
    identity: Identity,
    expires_at: UnixTime,
    ttl: Duration,
}

struct UntilTokenExpiry;

impl Expiry<TokenDigest, Arc<CachedIdentity>> for UntilTokenExpiry {
    fn expire_after_create(
        &self,
        _key: &TokenDigest,
        value: &Arc<CachedIdentity>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Authenticates bearer tokens as OIDC JWTs: a [`TokenVerifier`] for the
/// signature and claims, a [`ClaimMapping`] for the identity, and a bounded
/// cache of verified tokens so a client's repeated requests cost one hash
/// and one lookup.
///
/// The proxy uses it in impersonate mode. Errors map to
/// [`AuthenticationError`]: `Rejected` (401) for every token problem,
/// `Unavailable` (503) when the IdP's keys cannot be had; `metric_label`
/// is [`JwtError::metric_label`].
pub struct JwtAuthenticator<S> {
    verifier: TokenVerifier<S>,
    mapping: ClaimMapping,
    cache: Cache<TokenDigest, Arc<CachedIdentity>>,
    max_ttl: u64,
}

impl<S> fmt::Debug for JwtAuthenticator<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthenticator")
            .field("mapping", &self.mapping)
            .field("cached_tokens", &self.cache.entry_count())
            .field("max_ttl", &self.max_ttl)
            .finish_non_exhaustive()
    }
}

impl<S: KeySource> JwtAuthenticator<S> {
    /// An authenticator with the default cache bounds
    /// ([`DEFAULT_CACHE_CAPACITY`], [`DEFAULT_CACHE_TTL`]).
    pub fn new(verifier: TokenVerifier<S>, mapping: ClaimMapping) -> Self {
        Self::with_cache(verifier, mapping, DEFAULT_CACHE_CAPACITY, DEFAULT_CACHE_TTL)
    }

    /// An authenticator caching at most `capacity` verified tokens, each
    /// for at most `max_ttl` (and never past its `exp`).
    pub fn with_cache(
        verifier: TokenVerifier<S>,
        mapping: ClaimMapping,
        capacity: u64,
        max_ttl: Duration,
    ) -> Self {
        let cache = Cache::builder()
            .max_capacity(capacity)
            .expire_after(UntilTokenExpiry)
            .build();
        Self {
            verifier,
            mapping,
            cache,
            max_ttl: max_ttl.as_secs(),
        }
    }

    /// The token verifier.
    pub fn verifier(&self) -> &TokenVerifier<S> {
        &self.verifier
    }

    /// The claim mapping.
    pub fn mapping(&self) -> &ClaimMapping {
        &self.mapping
    }

    /// Verifies `token` and maps it to an identity, with this crate's
    /// precise error.
    pub async fn authenticate_token(&self, token: &str) -> Result<Identity, JwtError> {
        // Refuse oversized input before hashing it.
        let max = self.verifier.validator().policy().max_token_bytes();
        if token.len() > max {
            return Err(JwtError::TooLarge {
                size: token.len(),
                max,
            });
        }
        // No '.' at all: not a JWS; the validator says so precisely.
        let (signed_part, signature) = token.rsplit_once('.').unwrap_or(("", token));
        let key = digest_of(signature);
        let now = self.verifier.validator().now();
        if let Some(hit) = self.cache.get(&key)
            && *hit.signed_part == *signed_part
        {
            // The cache's own timer runs on the monotonic clock; checking
            // our clock too keeps "never past exp" true under any clock.
            if now < hit.expires_at {
                return Ok(hit.identity.clone());
            }
            self.cache.invalidate(&key);
        }
        let verified = self.verifier.verify(token).await?;
        let identity = self.mapping.identity(&verified)?;
        let remaining = verified.expires_at().saturating_sub(now).min(self.max_ttl);
        if remaining > 0 {
            self.cache.insert(
                key,
                Arc::new(CachedIdentity {
                    signed_part: signed_part.into(),
                    identity: identity.clone(),
                    expires_at: now.saturating_add(remaining),
                    ttl: Duration::from_secs(remaining),
                }),
            );
        }
        Ok(identity)
    }

    /// Number of cached verified tokens (approximate; for metrics).
    pub fn cached_tokens(&self) -> u64 {
        self.cache.entry_count()
    }
}

fn digest_of(signature: &str) -> TokenDigest {
    let digest = digest::digest(&digest::SHA256, signature.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

impl<S: KeySource> Authenticate for JwtAuthenticator<S> {
    async fn authenticate(&self, token: &BearerToken) -> Result<Identity, AuthenticationError> {
        self.authenticate_token(token.expose())
            .await
            .map_err(|error| {
                tracing::debug!(reason = error.metric_label(), %error, "bearer token rejected");
                AuthenticationError::from(error)
            })
    }
}
