use std::future::Future;

use crate::{BearerToken, Identity};

/// Answers "who is the caller presenting this bearer token?".
///
/// The proxy asks this and nothing else; it never parses a token itself.
/// headlamp-jwt implements it for OIDC ID tokens; an embedder can implement
/// it for any other token format. Implementations must be cheap to call
/// concurrently (no global lock on the hot path).
///
/// ```
/// use headlamp_core::{Authenticate, AuthenticationError, BearerToken, Identity};
///
/// /// Accepts exactly one static token (for a test).
/// struct OneToken(BearerToken, Identity);
///
/// impl Authenticate for OneToken {
///     async fn authenticate(&self, token: &BearerToken) -> Result<Identity, AuthenticationError> {
///         if token == &self.0 {
///             Ok(self.1.clone())
///         } else {
///             Err(AuthenticationError::rejected("unknown token"))
///         }
///     }
/// }
/// ```
pub trait Authenticate: Send + Sync + 'static {
    /// Verifies `token` and maps it to an [`Identity`].
    fn authenticate(
        &self,
        token: &BearerToken,
    ) -> impl Future<Output = Result<Identity, AuthenticationError>> + Send;
}

impl<A: Authenticate + ?Sized> Authenticate for std::sync::Arc<A> {
    fn authenticate(
        &self,
        token: &BearerToken,
    ) -> impl Future<Output = Result<Identity, AuthenticationError>> + Send {
        (**self).authenticate(token)
    }
}

/// Why a bearer token was not accepted, in a form the proxy can answer with.
///
/// `reason` is safe to show to the client (it never contains the token);
/// `kind` says whether the client should re-authenticate (401) or whether the
/// verifier itself could not decide (503, e.g. the IdP's keys are unknown and
/// cannot be fetched).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct AuthenticationError {
    /// What kind of failure this is.
    pub kind: AuthenticationErrorKind,
    /// A human-readable reason, safe to return to the client and to log.
    pub reason: String,
    /// A short, stable label for metrics (`expired`, `bad_signature`, ...).
    pub metric_label: &'static str,
}

/// The class of an [`AuthenticationError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthenticationErrorKind {
    /// The token is invalid, expired, or maps to an unacceptable identity: 401.
    Rejected,
    /// The token could not be checked right now (no keys yet, IdP unreachable): 503.
    Unavailable,
}

impl AuthenticationError {
    /// A token that was checked and refused.
    pub fn rejected(reason: impl Into<String>) -> Self {
        Self {
            kind: AuthenticationErrorKind::Rejected,
            reason: reason.into(),
            metric_label: "rejected",
        }
    }

    /// A token that could not be checked at the moment.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self {
            kind: AuthenticationErrorKind::Unavailable,
            reason: reason.into(),
            metric_label: "unavailable",
        }
    }

    /// Sets the metrics label.
    pub fn with_metric_label(mut self, label: &'static str) -> Self {
        self.metric_label = label;
        self
    }
}
