use std::path::PathBuf;

/// Why a test-bed fixture (test API server, key material, kubeconfig, IdP
/// harness) could not be set up.
///
/// Fixtures fail loudly with the step that failed and what to do about it,
/// so a broken test environment reads as such rather than as a failing
/// assertion somewhere later.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestBedError {
    /// A file or socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, e.g. "writing kubeconfig /tmp/x/kubeconfig".
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Generating or signing a test certificate or key failed.
    #[error("generating {what}: {source}")]
    Certificate {
        /// Which certificate or key, e.g. "the test CA".
        what: String,
        /// The underlying error.
        #[source]
        source: rcgen::Error,
    },
    /// Building a TLS configuration from the generated material failed.
    #[error("building the TLS configuration for {what}: {source}")]
    Tls {
        /// Which endpoint, e.g. "the test API server".
        what: String,
        /// The underlying error.
        #[source]
        source: rustls::Error,
    },
    /// Serialising a kubeconfig failed.
    #[error("serialising kubeconfig {path}: {source}")]
    Kubeconfig {
        /// Where it was to be written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_yaml::Error,
    },
    /// A fixture option is inconsistent (e.g. an OIDC issuer that is not a URL).
    #[error("invalid test-bed option: {0}")]
    InvalidOption(String),
    /// An external tool the end-to-end tests drive is not installed.
    #[error(
        "{tool} is not installed (looked for {path}); run scripts/install-test-deps.sh to install \
         the test dependencies (kubectl, chromium, npm packages)"
    )]
    ToolMissing {
        /// The tool, e.g. "kubectl".
        tool: &'static str,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A child process (IdP, browser driver, server) exited before it was
    /// ready or before it answered.
    #[error("{name} exited ({status}) before it was ready; its output:\n{logs}")]
    ProcessExited {
        /// The process label, e.g. "test-idp".
        name: String,
        /// Its exit status, described.
        status: String,
        /// Its captured stdout and stderr.
        logs: String,
    },
    /// A step of the test bed took longer than its bound.
    #[error("timed out after {after:?} waiting for {what}{}", if logs.is_empty() { String::new() } else { format!("; output so far:\n{logs}") })]
    Timeout {
        /// What was awaited, e.g. "test-idp to print its ready line".
        what: String,
        /// The bound.
        after: std::time::Duration,
        /// Captured output of the process concerned, if any.
        logs: String,
    },
    /// An HTTP exchange with a test-bed peer failed below HTTP (connect,
    /// TLS, protocol).
    #[error("{context}: {source}")]
    Http {
        /// The step, e.g. "refreshing the tokens (POST http://127.0.0.1:1234/token)".
        context: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A peer answered, but not as the step expected (an error page, a
    /// token endpoint error, a page without the expected form).
    #[error("{context}: HTTP {status}: {body}")]
    UnexpectedResponse {
        /// The step and URL (without query).
        context: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// The IdP refused the credentials of a scripted login.
    #[error("the IdP refused the login of {username:?}: {message}")]
    LoginRejected {
        /// The login name used.
        username: String,
        /// The IdP's message.
        message: String,
    },
    /// The headless-browser login did not reach its destination.
    #[error("browser login failed: {reason}\n----- browser driver output -----\n{logs}")]
    BrowserLogin {
        /// What went wrong, as the driver reported it.
        reason: String,
        /// The driver's captured output.
        logs: String,
    },
}

impl TestBedError {
    /// An [`TestBedError::Io`] with a description of what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}
