//! What a token must satisfy, independent of keys and time.

use std::time::Duration;

use crate::SigningAlgorithm;

/// Default clock-skew allowance for `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

/// Default maximum token size. ID tokens with a few hundred groups stay
/// well below it; Headlamp itself splits cookies at 3800 bytes, so a
/// token is usually far smaller.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 32 * 1024;

/// The rules a token must satisfy ([OIDC Core section 3.1.3.7](https://openid.net/specs/openid-connect-core-1_0.html#IDTokenValidation),
/// [RFC 8725](https://www.rfc-editor.org/rfc/rfc8725)).
///
/// ```
/// use std::time::Duration;
/// use headlamp_jwt::{SigningAlgorithm, ValidationPolicy};
///
/// let policy = ValidationPolicy::new("https://idp.example.com/realms/k8s", "headlamp")
///     .with_audiences(["kubernetes"])
///     .with_algorithms([SigningAlgorithm::RS256, SigningAlgorithm::ES256])
///     .with_leeway(Duration::from_secs(30));
/// assert_eq!(policy.audiences(), ["headlamp", "kubernetes"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationPolicy {
    issuer: String,
    audiences: Vec<String>,
    authorized_parties: Option<Vec<String>>,
    algorithms: Vec<SigningAlgorithm>,
    leeway: u64,
    max_token_bytes: usize,
}

impl ValidationPolicy {
    /// Tokens from `issuer` (compared byte for byte with `iss`, as OIDC
    /// Core section 3.1.3.7 step 2 requires: no trailing-slash or case
    /// normalisation) for `audience` (the client id).
    ///
    /// With `-oidc-validator-idp-issuer-url`, pass that URL here: it is
    /// the `iss` the tokens carry when it differs from the discovery URL.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audiences: vec![audience.into()],
            authorized_parties: None,
            algorithms: vec![SigningAlgorithm::RS256],
            leeway: DEFAULT_LEEWAY.as_secs(),
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
        }
    }

    /// Also accepts these audiences (a token is accepted when any of its
    /// `aud` values is any of the configured ones).
    pub fn with_audiences<I, A>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<String>,
    {
        for audience in audiences {
            let audience = audience.into();
            if !self.audiences.contains(&audience) {
                self.audiences.push(audience);
            }
        }
        self
    }

    /// The clients accepted as `azp` (authorized party). Default: the
    /// audiences. `azp` is required when `aud` has several values and must
    /// be one of these whenever present (OIDC Core section 3.1.3.7 steps 4
    /// and 5).
    pub fn with_authorized_parties<I, A>(mut self, parties: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<String>,
    {
        self.authorized_parties = Some(parties.into_iter().map(Into::into).collect());
        self
    }

    /// The accepted algorithms (default `RS256` only, the OIDC default).
    /// An empty list keeps the default: a policy that accepts nothing is
    /// never what was meant.
    pub fn with_algorithms(
        mut self,
        algorithms: impl IntoIterator<Item = SigningAlgorithm>,
    ) -> Self {
        let mut list: Vec<_> = Vec::new();
        for alg in algorithms {
            if !list.contains(&alg) {
                list.push(alg);
            }
        }
        if !list.is_empty() {
            self.algorithms = list;
        }
        self
    }

    /// Clock-skew allowance for `exp`, `nbf` and `iat` (whole seconds,
    /// default 60 s).
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway.as_secs();
        self
    }

    /// Maximum token length in bytes (default 32 KiB). Longer tokens are
    /// rejected before any decoding.
    pub fn with_max_token_bytes(mut self, max: usize) -> Self {
        self.max_token_bytes = max;
        self
    }

    /// The expected issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The accepted audiences.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// The accepted authorized parties.
    pub fn authorized_parties(&self) -> &[String] {
        self.authorized_parties
            .as_deref()
            .unwrap_or(&self.audiences)
    }

    /// The accepted algorithms.
    pub fn algorithms(&self) -> &[SigningAlgorithm] {
        &self.algorithms
    }

    /// The leeway in seconds.
    pub fn leeway_secs(&self) -> u64 {
        self.leeway
    }

    /// The maximum token length in bytes.
    pub fn max_token_bytes(&self) -> usize {
        self.max_token_bytes
    }

    pub(crate) fn allowed_list(&self) -> String {
        self.algorithms
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}
