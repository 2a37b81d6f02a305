//! The one error type of this crate.

use std::fmt;

use headlamp_core::{AuthenticationError, IdentityError, UnixTime};

use crate::KeySourceError;

/// Which part of a compact JWS was malformed
/// ([RFC 7515 section 7.1](https://www.rfc-editor.org/rfc/rfc7515#section-7.1):
/// `BASE64URL(header) '.' BASE64URL(payload) '.' BASE64URL(signature)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenPart {
    /// The token as a whole (number of segments, characters).
    Structure,
    /// The JOSE header (first segment).
    Header,
    /// The claims (second segment).
    Payload,
    /// The signature (third segment).
    Signature,
}

impl fmt::Display for TokenPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Structure => "token",
            Self::Header => "header",
            Self::Payload => "payload",
            Self::Signature => "signature",
        })
    }
}

/// Why a token was not accepted, or why it could not be checked.
///
/// Every variant carries the values a user or operator needs to act on it
/// (the times, the issuer seen and expected, the key id). None carries the
/// token itself or its signature. Claim values that come from a token whose
/// signature was verified (issuer, audience, username) may appear; values
/// from an unverified token appear only `Debug`-escaped and truncated.
///
/// [`JwtError::metric_label`] gives a short stable label per reason and
/// `From<JwtError> for AuthenticationError` maps each variant to a 401
/// (`Rejected`) or, for key-set problems, a 503 (`Unavailable`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// The token is longer than the configured maximum.
    #[error("token is {size} bytes, more than the {max} bytes allowed")]
    TooLarge {
        /// The token's length in bytes.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A part of the token is not what a compact JWS requires.
    #[error("malformed {part}: {reason}")]
    Malformed {
        /// Which part.
        part: TokenPart,
        /// What was wrong with it.
        reason: String,
    },
    /// The token is an encrypted JWT (JWE, five segments or an `enc`
    /// header); only signed tokens are accepted.
    #[error(
        "token is an encrypted JWT (JWE); only signed ID tokens (JWS) are accepted, ask the \
         identity provider for signed, unencrypted ID tokens"
    )]
    EncryptedTokenRejected,
    /// The header's `alg` is not one the policy allows (this includes
    /// `none` and every HMAC algorithm, which are never allowed with
    /// public keys).
    #[error("algorithm {alg:?} is not allowed; allowed: {allowed}")]
    AlgorithmNotAllowed {
        /// The `alg` of the token, escaped and truncated.
        alg: String,
        /// The allowed algorithms, comma separated.
        allowed: String,
    },
    /// The header lists `crit` extensions this validator does not
    /// understand, so it must reject the token
    /// ([RFC 7515 section 4.1.11](https://www.rfc-editor.org/rfc/rfc7515#section-4.1.11)).
    #[error("unsupported critical header parameters: {names:?}")]
    UnsupportedCritical {
        /// The names listed in `crit`.
        names: Vec<String>,
    },
    /// No key in the identity provider's key set has the token's `kid`,
    /// even after refreshing the key set.
    #[error("no key with id {kid:?} in the identity provider's key set")]
    UnknownKeyId {
        /// The `kid` of the token, escaped and truncated.
        kid: String,
    },
    /// The token has no `kid` and no key in the set can verify its algorithm.
    #[error("no key in the identity provider's key set can verify {alg} tokens")]
    NoMatchingKey {
        /// The token's algorithm.
        alg: &'static str,
    },
    /// The key named by `kid` cannot be used for the token's algorithm
    /// (wrong key type or curve, a different `alg`, or `use`/`key_ops` that
    /// exclude signature verification).
    #[error("key {kid:?} cannot verify {alg} signatures: {reason}")]
    KeyMismatch {
        /// The key id.
        kid: String,
        /// The token's algorithm.
        alg: &'static str,
        /// Why the key does not fit.
        reason: &'static str,
    },
    /// The signature does not verify with the selected key.
    #[error("signature verification failed")]
    BadSignature,
    /// The token expired (`exp` plus leeway is not after now).
    #[error("token expired at {exp} (now {now}, leeway {leeway}s)")]
    Expired {
        /// The token's `exp`, seconds since the epoch.
        exp: UnixTime,
        /// The validator's current time.
        now: UnixTime,
        /// The configured clock-skew allowance in seconds.
        leeway: u64,
    },
    /// The token is not valid yet (`nbf` minus leeway is after now).
    #[error("token not valid before {nbf} (now {now}, leeway {leeway}s)")]
    NotYetValid {
        /// The token's `nbf`.
        nbf: UnixTime,
        /// The validator's current time.
        now: UnixTime,
        /// The configured clock-skew allowance in seconds.
        leeway: u64,
    },
    /// The token claims to be issued in the future (`iat` minus leeway is
    /// after now), a sign of a broken clock or a forged token.
    #[error("token issued in the future at {iat} (now {now}, leeway {leeway}s)")]
    IssuedInFuture {
        /// The token's `iat`.
        iat: UnixTime,
        /// The validator's current time.
        now: UnixTime,
        /// The configured clock-skew allowance in seconds.
        leeway: u64,
    },
    /// The `iss` claim is not the expected issuer.
    #[error("issuer {actual:?} is not the expected issuer {expected:?}")]
    IssuerMismatch {
        /// The token's `iss`.
        actual: String,
        /// The configured issuer.
        expected: String,
    },
    /// None of the token's audiences is an expected audience.
    #[error("audience {actual:?} does not include any of {expected:?}")]
    AudienceMismatch {
        /// The token's `aud` values.
        actual: Vec<String>,
        /// The configured audiences.
        expected: Vec<String>,
    },
    /// The authorized party (`azp`) is missing although the token has
    /// several audiences, or it is not an expected client
    /// ([OIDC Core section 3.1.3.7](https://openid.net/specs/openid-connect-core-1_0.html#IDTokenValidation), steps 4 and 5).
    #[error("authorized party (azp) {actual:?} is not one of {expected:?}")]
    AuthorizedPartyMismatch {
        /// The token's `azp`, `None` when missing.
        actual: Option<String>,
        /// The accepted clients.
        expected: Vec<String>,
    },
    /// The `nonce` claim does not match the nonce sent in the
    /// authorization request ([OIDC Core section 3.1.3.7](https://openid.net/specs/openid-connect-core-1_0.html#IDTokenValidation), step 11).
    #[error("nonce does not match the one sent with the authorization request")]
    NonceMismatch,
    /// A claim the policy or mapping needs is absent.
    #[error("required claim {claim:?} is missing")]
    MissingClaim {
        /// The claim name (or dotted path).
        claim: String,
    },
    /// A claim has the wrong JSON type or an unusable value.
    #[error("claim {claim:?} is invalid: {reason}")]
    InvalidClaim {
        /// The claim name (or dotted path).
        claim: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `-oidc-required-claim key=value` is present with another value.
    #[error("required claim {claim:?} must be {expected:?}, token has {actual:?}")]
    RequiredClaimMismatch {
        /// The claim name.
        claim: String,
        /// The configured value.
        expected: String,
        /// The value in the token (rendered as JSON).
        actual: String,
    },
    /// The username claim is `email` and the token says
    /// `email_verified: false`; kube-apiserver rejects such tokens too.
    #[error(
        "the email address is not verified (email_verified is false); verify it at the identity \
         provider or use another username claim"
    )]
    EmailNotVerified,
    /// The claims cannot become a Kubernetes identity (empty, unsafe
    /// characters, `system:` prefix, ...).
    #[error("unacceptable identity: {0}")]
    Identity(#[from] IdentityError),
    /// The JWKS document could not be used (not JSON, no usable keys).
    #[error("invalid JWKS document: {reason}")]
    InvalidKeySet {
        /// What was wrong with it.
        reason: String,
    },
    /// No key set is available because the identity provider could not be
    /// reached; the token could not be checked at all.
    #[error("the identity provider's signing keys are unavailable: {0}")]
    KeysUnavailable(#[source] KeySourceError),
}

impl JwtError {
    /// A short, stable label for metrics and logs (`expired`,
    /// `bad_signature`, `issuer`, ...).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::Malformed { .. } => "malformed",
            Self::EncryptedTokenRejected => "encrypted",
            Self::AlgorithmNotAllowed { .. } => "algorithm",
            Self::UnsupportedCritical { .. } => "crit",
            Self::UnknownKeyId { .. } => "unknown_kid",
            Self::NoMatchingKey { .. } => "no_key",
            Self::KeyMismatch { .. } => "key_mismatch",
            Self::BadSignature => "bad_signature",
            Self::Expired { .. } => "expired",
            Self::NotYetValid { .. } => "not_yet_valid",
            Self::IssuedInFuture { .. } => "issued_in_future",
            Self::IssuerMismatch { .. } => "issuer",
            Self::AudienceMismatch { .. } => "audience",
            Self::AuthorizedPartyMismatch { .. } => "azp",
            Self::NonceMismatch => "nonce",
            Self::MissingClaim { .. } => "missing_claim",
            Self::InvalidClaim { .. } => "invalid_claim",
            Self::RequiredClaimMismatch { .. } => "required_claim",
            Self::EmailNotVerified => "email_not_verified",
            Self::Identity(_) => "identity",
            Self::InvalidKeySet { .. } => "invalid_jwks",
            Self::KeysUnavailable(_) => "keys_unavailable",
        }
    }

    /// Whether the failure is about the verifier's key set rather than the
    /// token (the client cannot fix it by signing in again).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::KeysUnavailable(_) | Self::InvalidKeySet { .. })
    }

    pub(crate) fn malformed(part: TokenPart, reason: impl Into<String>) -> Self {
        // Parser messages can quote pieces of the (unverified) input; cap
        // them so a 32 KiB header cannot become a 32 KiB log line.
        let mut reason = reason.into();
        if reason.len() > 200 {
            let mut end = 200;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
            reason.push_str("...");
        }
        Self::Malformed { part, reason }
    }

    pub(crate) fn invalid_claim(claim: &str, reason: impl Into<String>) -> Self {
        Self::InvalidClaim {
            claim: claim.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn missing_claim(claim: &str) -> Self {
        Self::MissingClaim {
            claim: claim.to_owned(),
        }
    }
}

impl From<JwtError> for AuthenticationError {
    fn from(error: JwtError) -> Self {
        let label = error.metric_label();
        let reason = error.to_string();
        let base = if error.is_unavailable() {
            AuthenticationError::unavailable(reason)
        } else {
            AuthenticationError::rejected(reason)
        };
        base.with_metric_label(label)
    }
}

/// Cuts a value taken from an unverified token to a length that cannot
/// flood a log. Every variant displays such values with `{:?}`, which
/// escapes CR/LF and other controls, so they cannot forge log lines.
pub(crate) fn untrusted(value: &str) -> String {
    const MAX: usize = 64;
    if value.len() <= MAX {
        return value.to_owned();
    }
    let mut end = MAX;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &value[..end])
}
