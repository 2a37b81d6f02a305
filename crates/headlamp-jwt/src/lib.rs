//! Sans-IO validation of OIDC JSON Web Tokens and extraction of a Kubernetes `Identity` from their claims.
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
