//! The signature algorithms a policy may allow.

use std::fmt;
use std::str::FromStr;

use jsonwebtoken::Algorithm;

use crate::JwtError;

/// An asymmetric JWS algorithm ([RFC 7518 section 3.1](https://www.rfc-editor.org/rfc/rfc7518#section-3.1),
/// [RFC 8037](https://www.rfc-editor.org/rfc/rfc8037) for `EdDSA`).
///
/// `none` and the HMAC algorithms (`HS256`, ...) have no variant: a key
/// published in a JWKS is public, so a token "signed" with it as an HMAC
/// secret proves nothing ([RFC 8725 section 2.1 and 3.1](https://www.rfc-editor.org/rfc/rfc8725#section-3.1)).
/// `ES512` (P-521) is not offered because the jsonwebtoken crypto
/// providers do not implement it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (the OIDC default, [OIDC Core section 3.1.3.7](https://openid.net/specs/openid-connect-core-1_0.html#IDTokenValidation)).
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// Ed25519.
    EdDSA,
}

/// The kind of public key an algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

impl SigningAlgorithm {
    /// Every supported algorithm.
    pub const ALL: [Self; 9] = [
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::PS256,
        Self::PS384,
        Self::PS512,
        Self::ES256,
        Self::ES384,
        Self::EdDSA,
    ];

    /// The `alg` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::EdDSA => "EdDSA",
        }
    }

    /// The algorithm named by an `alg` header value, if supported.
    /// Matching is exact and case-sensitive (RFC 7515 section 4.1.1).
    pub fn from_alg(alg: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == alg)
    }

    pub(crate) fn key_kind(self) -> KeyKind {
        match self {
            Self::RS256 | Self::RS384 | Self::RS512 | Self::PS256 | Self::PS384 | Self::PS512 => {
                KeyKind::Rsa
            }
            Self::ES256 => KeyKind::EcP256,
            Self::ES384 => KeyKind::EcP384,
            Self::EdDSA => KeyKind::Ed25519,
        }
    }

    pub(crate) fn to_jsonwebtoken(self) -> Algorithm {
        match self {
            Self::RS256 => Algorithm::RS256,
            Self::RS384 => Algorithm::RS384,
            Self::RS512 => Algorithm::RS512,
            Self::PS256 => Algorithm::PS256,
            Self::PS384 => Algorithm::PS384,
            Self::PS512 => Algorithm::PS512,
            Self::ES256 => Algorithm::ES256,
            Self::ES384 => Algorithm::ES384,
            Self::EdDSA => Algorithm::EdDSA,
        }
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SigningAlgorithm {
    type Err = JwtError;

    /// Parses a configured algorithm name; `none`, `HS256` and unknown
    /// names give [`JwtError::AlgorithmNotAllowed`] listing the choices.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_alg(s).ok_or_else(|| JwtError::AlgorithmNotAllowed {
            alg: crate::error::untrusted(s),
            allowed: Self::ALL.map(Self::as_str).join(", "),
        })
    }
}
