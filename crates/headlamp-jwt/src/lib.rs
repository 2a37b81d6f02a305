//! Sans-IO validation of OIDC JSON Web Tokens and extraction of a
//! Kubernetes [`Identity`](headlamp_core::Identity) from their claims.
//!
//! In impersonate mode this crate is the only thing between a bearer token
//! and a service account that can act as anyone, so it is strict by
//! default: RS256 only until told otherwise, `none` and HMAC impossible to
//! configure, exact issuer, required `exp`, unknown `crit` rejected, keys
//! only ever from the configured key set (`jku`, `x5u`, `jwk` headers are
//! ignored), duplicate JSON members rejected, and every claim value checked
//! by [`Identity::new`](headlamp_core::Identity::new) before it can become
//! an `Impersonate-*` header.
//!
//! The layers, each usable on its own:
//!
//! - [`Validator`]: compact JWS + [`KeySet`] + [`ValidationPolicy`] + clock
//!   -> [`VerifiedToken`] or a precise [`JwtError`]. No I/O.
//! - [`KeySource`]: where JWKS documents come from (headlamp-oidc fetches
//!   them over HTTP; [`StaticKeySource`] serves a fixed document).
//! - [`JwksCache`]: refetch on unknown `kid`, at most one fetch per
//!   interval, shared by concurrent callers, max-age within bounds, last
//!   good set kept when the IdP is down.
//! - [`TokenVerifier`]: validator + cache (`verify`, `verify_with_nonce`).
//! - [`ClaimMapping`]: username/groups/uid/required claims, as
//!   kube-apiserver's `--oidc-*` flags define them.
//! - [`JwtAuthenticator`]: all of the above plus a bounded verified-token
//!   cache, implementing [`headlamp_core::Authenticate`] for the proxy.
//!
//! Validating tokens in another Rust service:
//!
//! ```
//! use headlamp_core::SystemClock;
//! use headlamp_jwt::{ClaimMapping, StaticKeySource, TokenVerifier, ValidationPolicy};
//! # let idp = headlamp_jwt::testing::TestIdp::new();
//! # use headlamp_core::Clock as _;
//! # let now = SystemClock.now();
//! # let claims = serde_json::json!({"iat": now, "nbf": now, "exp": now + 600});
//! # let (jwks_json, token) = (idp.jwks(), idp.rsa.sign(&idp.claims_with(claims)));
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//!
//! let verifier = TokenVerifier::new(
//!     ValidationPolicy::new("https://idp.headlamp.test/realms/k8s", "headlamp"),
//!     StaticKeySource::new(jwks_json), // or your own KeySource over HTTP
//!     SystemClock,
//! );
//! let claims = verifier.verify(&token).await?;
//! let who = ClaimMapping::new().with_username_prefix("oidc:").identity(&claims)?;
//! assert_eq!(who.username(), "oidc:alice");
//! assert_eq!(who.groups(), ["dev", "ops"]);
//!
//! // A tampered token gets a typed error saying why.
//! let tampered = format!("{}x", &token[..token.len() - 1]);
//! assert!(verifier.verify(&tampered).await.is_err());
//! # Ok::<(), headlamp_jwt::JwtError>(()) }).unwrap();
//! ```
//!
//! Test fixtures (generated keys, token signing, a fake key source and a
//! catalog of hostile tokens) are in the `testing` module behind the
//! `test-keys` feature.
#![forbid(unsafe_code)]

mod algorithm;
mod authenticator;
mod cache;
mod claims;
mod error;
mod jwks;
mod key_source;
mod policy;
mod validator;
mod verifier;

pub use algorithm::SigningAlgorithm;
pub use authenticator::{DEFAULT_CACHE_CAPACITY, DEFAULT_CACHE_TTL, JwtAuthenticator};
pub use cache::{JwksCache, JwksCacheConfig};
pub use claims::{ClaimMapping, DEFAULT_GROUPS_CLAIM, DEFAULT_USERNAME_CLAIM};
pub use error::{JwtError, TokenPart};
pub use jwks::KeySet;
pub use key_source::{FetchedKeySet, KeySource, KeySourceError, StaticKeySource};
pub use policy::{DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_BYTES, ValidationPolicy};
pub use validator::{Validator, VerifiedToken};
pub use verifier::TokenVerifier;

#[cfg(any(test, feature = "test-keys"))]
pub mod testing;

#[cfg(test)]
mod tests;
