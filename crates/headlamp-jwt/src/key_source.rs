//! Where JWKS documents come from.
//!
//! The fetch itself (HTTP, TLS, discovery) lives outside this crate, in
//! headlamp-oidc; this crate only needs the bytes of the key set and how
//! long the server said they may be cached.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

/// Where JWKS documents come from (an HTTP fetch lives outside this crate).
///
/// Implementations fetch the document afresh on every call: caching,
/// rate limiting and "keep the last good set" are the job of
/// [`JwksCache`](crate::JwksCache), which calls this at most once per
/// refresh interval however many requests are waiting.
///
/// Implementations must bound the time a fetch can take (connect and
/// response timeouts): requests that need keys the cache does not have
/// wait for the fetch in progress.
///
/// ```
/// use headlamp_jwt::{FetchedKeySet, KeySource, KeySourceError};
///
/// /// Keys read from a file that an operator mounts next to the service.
/// struct FileKeys(std::path::PathBuf);
///
/// impl KeySource for FileKeys {
///     async fn fetch_keys(&self) -> Result<FetchedKeySet, KeySourceError> {
///         let bytes = std::fs::read(&self.0)
///             .map_err(|e| KeySourceError::new(format!("reading {}: {e}", self.0.display())))?;
///         Ok(FetchedKeySet::new(bytes))
///     }
/// }
/// ```
pub trait KeySource: Send + Sync + 'static {
    /// Fetches the current JWKS document.
    fn fetch_keys(&self) -> impl Future<Output = Result<FetchedKeySet, KeySourceError>> + Send;
}

/// One JWKS document as fetched, before parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedKeySet {
    /// The raw JWKS JSON ([RFC 7517 section 5](https://www.rfc-editor.org/rfc/rfc7517#section-5)).
    pub jwks_json: Bytes,
    /// How long the server allows the document to be cached
    /// (`Cache-Control: max-age`, [RFC 9111 section 5.2.2.1](https://www.rfc-editor.org/rfc/rfc9111#section-5.2.2.1)),
    /// when it said. The cache clamps it to its configured bounds.
    pub max_age: Option<Duration>,
}

impl FetchedKeySet {
    /// A document with no caching hint.
    pub fn new(jwks_json: impl Into<Bytes>) -> Self {
        Self {
            jwks_json: jwks_json.into(),
            max_age: None,
        }
    }

    /// Sets the `Cache-Control: max-age` the server sent.
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }
}

/// Why a [`KeySource`] could not produce a key set (IdP unreachable, TLS
/// failure, HTTP status, ...).
///
/// The message is shown in logs and in the 503 a client gets when no keys
/// are known at all, so it must say what failed and never contain a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct KeySourceError {
    message: String,
}

impl KeySourceError {
    /// A failure described by `message` (for example
    /// `"GET https://idp.example/jwks: connection refused"`).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The description of the failure.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A key source that always returns the same document: keys configured
/// from a file or string, or a fixed set in tests.
#[derive(Debug, Clone)]
pub struct StaticKeySource {
    document: FetchedKeySet,
}

impl StaticKeySource {
    /// Always serves `jwks_json`.
    pub fn new(jwks_json: impl Into<Bytes>) -> Self {
        Self {
            document: FetchedKeySet::new(jwks_json),
        }
    }
}

impl KeySource for StaticKeySource {
    async fn fetch_keys(&self) -> Result<FetchedKeySet, KeySourceError> {
        Ok(self.document.clone())
    }
}

impl<S: KeySource + ?Sized> KeySource for std::sync::Arc<S> {
    fn fetch_keys(&self) -> impl Future<Output = Result<FetchedKeySet, KeySourceError>> + Send {
        (**self).fetch_keys()
    }
}
