//! The one error type of this crate.

use std::time::Duration;

/// Everything that can go wrong between "sign in" and a verified token set.
///
/// Messages name what was wrong and what to do about it; they never contain
/// a token, a client secret, an authorization code or a sealed cookie value.
/// The server maps variants to responses in one place; [`OidcError::is_retryable`]
/// and [`OidcError::is_session_over`] are the two questions it needs to ask on
/// the refresh path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OidcError {
    /// A setting is missing or malformed (startup or kubeconfig error).
    #[error("invalid OIDC setting {setting}: {reason}")]
    InvalidSetting {
        /// The flag or kubeconfig key (`oidc-idp-issuer-url`, `client-id`, ...).
        setting: String,
        /// What is wrong with it and how to fix it.
        reason: String,
    },

    /// A required key is missing from a kubeconfig `auth-provider.config`.
    #[error(
        "kubeconfig auth-provider config has no \"{key}\"; add it under \
         users[].user.auth-provider.config"
    )]
    MissingAuthProviderKey {
        /// The missing key.
        key: &'static str,
    },

    /// The custom CA bundle could not be read or holds no certificate.
    #[error("cannot use the IdP CA certificate from {source_name}: {reason}")]
    InvalidCaCertificate {
        /// Where the PEM came from (file path or kubeconfig key).
        source_name: String,
        /// Why it is unusable.
        reason: String,
    },

    /// The session key file is unusable.
    #[error("cannot use the session key file {path}: {reason}")]
    InvalidSessionKey {
        /// The file path.
        path: String,
        /// Why (unreadable, too short).
        reason: String,
    },

    /// A request to the IdP failed before a response arrived (DNS,
    /// connection refused, TLS, timeout). Retryable.
    #[error("could not reach the IdP at {url}: {reason}")]
    IdpUnreachable {
        /// The URL (no query string, so no code or token).
        url: String,
        /// What failed.
        reason: String,
    },

    /// The IdP answered with an unexpected HTTP status. Retryable when 5xx.
    #[error("the IdP answered {status} at {url}: {detail}")]
    IdpHttpStatus {
        /// The URL requested.
        url: String,
        /// The HTTP status.
        status: u16,
        /// A short, sanitised description.
        detail: String,
    },

    /// An IdP response was larger than the configured limit.
    #[error("the IdP response from {url} is larger than {limit} bytes")]
    ResponseTooLarge {
        /// The URL requested.
        url: String,
        /// The limit in bytes.
        limit: usize,
    },

    /// An IdP response was not what the protocol says it must be.
    #[error("the IdP response from {url} is malformed: {reason}")]
    MalformedResponse {
        /// The URL requested.
        url: String,
        /// What was wrong.
        reason: String,
    },

    /// The discovery document names an issuer other than the configured one,
    /// and `oidc-validator-idp-issuer-url` does not allow it
    /// ([OIDC Discovery section 4.3](https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderConfigurationValidation)).
    #[error(
        "the discovery document at {discovery_url} says the issuer is \"{found}\", but \
         {expected_setting} is \"{expected}\"; set the issuer URL to exactly what the IdP \
         reports, or set oidc-validator-idp-issuer-url to \"{found}\" if the IdP is reached \
         through a different URL than the one it puts in tokens"
    )]
    IssuerMismatch {
        /// The discovery URL fetched.
        discovery_url: String,
        /// The issuer the document reports.
        found: String,
        /// The issuer we accept.
        expected: String,
        /// Which setting holds `expected`.
        expected_setting: &'static str,
    },

    /// Discovery has not succeeded yet (IdP down since start) and a fresh
    /// attempt failed too.
    #[error("OIDC discovery for {issuer} has not succeeded yet: {reason}")]
    DiscoveryUnavailable {
        /// The configured issuer URL.
        issuer: String,
        /// The last failure.
        reason: String,
    },

    /// The IdP redirected the user back with `error=` ([RFC 6749 section
    /// 4.1.2.1](https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1)),
    /// e.g. `access_denied` when the user declined.
    #[error("the identity provider refused the sign-in: {code}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    AuthorizationDenied {
        /// The `error` code.
        code: String,
        /// The `error_description`, if any (IdP text, already length-limited).
        description: Option<String>,
    },

    /// The callback has no usable login-state cookie: never set, already
    /// used, or dropped by the browser.
    #[error(
        "no sign-in is in progress for this browser (the login cookie is missing or was \
         already used); start the sign-in again"
    )]
    MissingLoginState,

    /// The login-state cookie or `state` parameter does not check out.
    #[error("the sign-in cannot be completed: {reason}; start the sign-in again")]
    InvalidLoginState {
        /// What did not match (never the values themselves).
        reason: &'static str,
    },

    /// The login state was sealed with a different key (another replica
    /// without the shared `-session-key-file`, or a restart without one).
    #[error(
        "the sign-in cannot be completed: it was started with a different session key \
         (another replica, or before a restart); configure the same -session-key-file on all \
         replicas and start the sign-in again"
    )]
    SealedWithOtherKey,

    /// The login took longer than the login-state lifetime.
    #[error(
        "the sign-in expired: it was started more than {lifetime:?} ago; start the sign-in again"
    )]
    LoginStateExpired {
        /// How long a login may take.
        lifetime: Duration,
    },

    /// The login state names a cluster this server does not know (any more).
    #[error("the sign-in was started for cluster \"{cluster}\", which is not configured here")]
    UnknownCluster {
        /// The cluster name from the login state.
        cluster: String,
    },

    /// The token endpoint refused the request with an OAuth error
    /// ([RFC 6749 section 5.2](https://www.rfc-editor.org/rfc/rfc6749#section-5.2)).
    #[error("the IdP token endpoint refused the request: {code}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    TokenEndpoint {
        /// The OAuth error code (`invalid_client`, `invalid_request`, ...).
        code: String,
        /// The `error_description`, if any.
        description: Option<String>,
    },

    /// The refresh token is no longer accepted (`invalid_grant`): the
    /// session is over and the user must sign in again.
    #[error(
        "the session is over: the IdP no longer accepts the refresh token ({description}); sign in again"
    )]
    SessionOver {
        /// The IdP's `error_description` or a fixed text.
        description: String,
    },

    /// The ID token from the token endpoint failed verification.
    #[error("the ID token from the IdP is not valid: {reason}")]
    IdToken {
        /// What check failed (issuer, audience, expiry, nonce, signature...).
        reason: String,
    },

    /// The ID token could not be checked because the IdP's keys are
    /// unknown and cannot be fetched right now. Retryable.
    #[error("the ID token cannot be checked right now: {reason}")]
    IdTokenKeysUnavailable {
        /// Why the keys are unavailable.
        reason: String,
    },

    /// The refresh response has no ID token, but the ID token is what goes
    /// to the API server.
    #[error(
        "the IdP's refresh response has no id_token, so the ID token sent to the API server \
         cannot be renewed; sign in again (or set oidc-use-access-token if the API server \
         accepts access tokens)"
    )]
    NoIdTokenOnRefresh,

    /// The refresh-token cookie does not open or is expired.
    #[error("the refresh-token cookie is not valid: {reason}")]
    InvalidRefreshCookie {
        /// Why.
        reason: &'static str,
    },
}

impl OidcError {
    /// Whether the failure is transient (IdP unreachable, 5xx, timeouts):
    /// the caller should keep the current token until it really expires and
    /// try again later.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::IdpUnreachable { .. }
            | Self::DiscoveryUnavailable { .. }
            | Self::IdTokenKeysUnavailable { .. } => true,
            Self::IdpHttpStatus { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// Whether the user's session is over (refresh token refused): clear the
    /// token and refresh cookies and ask the user to sign in again.
    pub fn is_session_over(&self) -> bool {
        matches!(
            self,
            Self::SessionOver { .. } | Self::InvalidRefreshCookie { .. }
        )
    }

    /// The HTTP status that fits the failure, for the server's one place
    /// that turns errors into responses: 400/401/403 for what the user or
    /// browser can fix by signing in again, 502/503 for the IdP, 500 for
    /// our own configuration.
    pub fn status_code(&self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            Self::InvalidSetting { .. }
            | Self::MissingAuthProviderKey { .. }
            | Self::InvalidCaCertificate { .. }
            | Self::InvalidSessionKey { .. } => S::INTERNAL_SERVER_ERROR,
            Self::IdpUnreachable { .. }
            | Self::DiscoveryUnavailable { .. }
            | Self::IdTokenKeysUnavailable { .. } => S::SERVICE_UNAVAILABLE,
            Self::IdpHttpStatus { .. }
            | Self::ResponseTooLarge { .. }
            | Self::MalformedResponse { .. }
            | Self::IssuerMismatch { .. }
            | Self::TokenEndpoint { .. }
            | Self::IdToken { .. }
            | Self::NoIdTokenOnRefresh => S::BAD_GATEWAY,
            Self::AuthorizationDenied { .. } => S::FORBIDDEN,
            Self::MissingLoginState
            | Self::InvalidLoginState { .. }
            | Self::SealedWithOtherKey
            | Self::LoginStateExpired { .. } => S::BAD_REQUEST,
            Self::UnknownCluster { .. } => S::NOT_FOUND,
            Self::SessionOver { .. } | Self::InvalidRefreshCookie { .. } => S::UNAUTHORIZED,
        }
    }

    pub(crate) fn setting(setting: &str, reason: impl Into<String>) -> Self {
        Self::InvalidSetting {
            setting: setting.to_owned(),
            reason: reason.into(),
        }
    }
}
