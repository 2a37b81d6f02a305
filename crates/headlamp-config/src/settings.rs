//! The validated configuration and the per-concern views other crates read.
//!
//! Every value here has passed validation: a field that exists is usable as
//! is (URLs parse, files were readable when the process started, numbers are
//! in range). Nothing here is `Serialize`; `--print-config` goes through
//! [`Config::effective_json`], which redacts secrets explicitly.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use headlamp_core::Secret;

/// The whole validated configuration of headlamp-server.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Where to listen (`-listen-addr`, `-port`).
    pub listen: ListenSettings,
    /// HTTPS serving (`-tls-cert-path`, `-tls-key-path`); `None` serves plain HTTP.
    pub tls: Option<TlsSettings>,
    /// Path prefix every route is mounted under (`-base-url`), normalised:
    /// empty, or starting with `/` and without a trailing `/` (e.g. `/headlamp`).
    /// Join as `format!("{base_url}/oidc-callback")`.
    pub base_url: String,
    /// Built Headlamp frontend to serve (`-html-static-dir`); an existing directory.
    pub html_static_dir: Option<PathBuf>,
    /// Whether to serve `/metrics` (`-metrics-enabled`).
    pub metrics_enabled: bool,
    /// Where clusters come from.
    pub clusters: ClusterSources,
    /// The global OIDC settings (`-oidc-*`), present when both
    /// `-oidc-client-id` and `-oidc-idp-issuer-url` are set. They apply to
    /// every cluster without OIDC settings of its own.
    pub oidc: Option<OidcSettings>,
    /// Login session cookies.
    pub session: SessionSettings,
    /// Log level and format.
    pub logging: LoggingSettings,
    /// The `-config` file that was read, if any.
    pub config_file: Option<PathBuf>,
    /// Things that are allowed but deserve a log line at start (unsafe
    /// switches, no-op compatibility flags, unknown `HEADLAMP_CONFIG_*`
    /// variables). The binary logs each at WARN once its logger is up.
    pub warnings: Vec<String>,
    /// Normalised value of every flag by name, secrets already redacted.
    pub(crate) effective: BTreeMap<&'static str, serde_json::Value>,
}

impl Config {
    /// The effective configuration as `--print-config` shows it: one key per
    /// flag (the same keys a `-config` file uses), normalised values
    /// (`oidc-scopes` with `openid`, resolved `kubeconfig` paths), and
    /// secrets as `"[redacted]"` when set.
    pub fn effective_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.effective
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }
}

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSettings {
    /// IP address or host name from `-listen-addr` (IPv6 without brackets);
    /// `None` means all interfaces.
    pub host: Option<String>,
    /// TCP port (`-port`); 0 lets the operating system choose.
    pub port: u16,
}

impl fmt::Display for ListenSettings {
    /// `host:port`, `[v6]:port`, or `*:port` for all interfaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Some(h) if h.contains(':') => write!(f, "[{h}]:{}", self.port),
            Some(h) => write!(f, "{h}:{}", self.port),
            None => write!(f, "*:{}", self.port),
        }
    }
}

/// Certificate and key files for HTTPS serving. Both were checked to hold
/// PEM (a `CERTIFICATE` block and a private-key block) at start; parsing them
/// into rustls types is the server's job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// `-tls-cert-path`: PEM certificate chain, leaf first.
    pub cert_path: PathBuf,
    /// `-tls-key-path`: PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_path: PathBuf,
}

/// Where clusters come from (Headlamp: kubeconfig contexts plus, with
/// `-in-cluster`, the pod's own cluster).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterSources {
    /// Kubeconfig files to load, in kubectl merge order (first file wins for
    /// a duplicate context name).
    pub kubeconfig: KubeconfigSource,
    /// `-in-cluster`: also serve the cluster this pod runs in.
    pub in_cluster: bool,
    /// `-in-cluster-context-name`: the name that cluster gets (default `main`).
    pub in_cluster_context_name: String,
    /// `-skipped-kube-contexts`: context names not to serve.
    pub skipped_contexts: Vec<String>,
    /// `-insecure-ssl`: do not verify API server certificates.
    pub insecure_skip_tls_verify: bool,
}

/// The kubeconfig files and why these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeconfigSource {
    /// Paths in order; may be empty (`-in-cluster` without `-kubeconfig`).
    /// Files are not checked here: a missing default `~/.kube/config` just
    /// means no kubeconfig clusters, as with kubectl.
    pub paths: Vec<PathBuf>,
    /// Which rule produced `paths`.
    pub origin: KubeconfigOrigin,
}

/// Which rule chose the kubeconfig files (Headlamp's `setKubeConfigPath`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KubeconfigOrigin {
    /// `-kubeconfig` (or its env twin / file key).
    Configured,
    /// The `KUBECONFIG` environment variable.
    KubeconfigEnv,
    /// `$HOME/.kube/config`.
    HomeDefault,
    /// None: running `-in-cluster` without a kubeconfig, or no `HOME`.
    None,
}

/// Global OpenID Connect settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OidcSettings {
    /// `-oidc-client-id`.
    pub client_id: String,
    /// `-oidc-client-secret` or the contents of `-oidc-client-secret-file`;
    /// `None` for a public client (PKCE only).
    pub client_secret: Option<Secret>,
    /// `-oidc-idp-issuer-url`, exactly as configured (not re-serialised by a
    /// URL parser: OIDC Discovery 1.0 section 4.3 requires the discovered
    /// `issuer` to be identical to this string). https, or http to a
    /// loopback host; no query or fragment.
    pub issuer_url: String,
    /// Scopes to request: `openid` first, exactly once, then `-oidc-scopes`
    /// in order without duplicates (OIDC Core 1.0 section 3.1.2.1).
    pub scopes: Vec<String>,
    /// `-oidc-callback-url`; `None` = derive it from each request.
    pub callback_url: Option<String>,
    /// `-oidc-validator-client-id`: audience to expect instead of `client_id`.
    pub validator_client_id: Option<String>,
    /// `-oidc-validator-idp-issuer-url`: `iss` to expect instead of `issuer_url`.
    pub validator_issuer_url: Option<String>,
    /// `-oidc-skip-tls-verify` (a warning was recorded in [`Config::warnings`]).
    pub skip_tls_verify: bool,
    /// `-oidc-ca-file`, already parsed.
    pub ca: Option<CaBundle>,
    /// `-oidc-use-access-token`: forward the access token instead of the ID token.
    pub use_access_token: bool,
    /// `-oidc-use-pkce` (default true): send an S256 code challenge (RFC 7636).
    pub use_pkce: bool,
    /// `-oidc-impersonate`: validate tokens here and impersonate upstream.
    pub impersonate: bool,
    /// How token claims become a Kubernetes identity.
    pub claims: ClaimMapping,
}

impl OidcSettings {
    /// The audience (`aud`) a token must carry: the validator client id when
    /// set, else the client id.
    pub fn expected_audience(&self) -> &str {
        self.validator_client_id
            .as_deref()
            .unwrap_or(&self.client_id)
    }

    /// The issuer (`iss`) a token must carry: the validator issuer when set,
    /// else the discovery issuer.
    pub fn expected_issuer(&self) -> &str {
        self.validator_issuer_url
            .as_deref()
            .unwrap_or(&self.issuer_url)
    }

    /// The configured scopes without the leading `openid` (for APIs such as
    /// headlamp-oidc's `OidcProviderSettings::scopes` that add it themselves).
    pub fn extra_scopes(&self) -> &[String] {
        match self.scopes.split_first() {
            Some((first, rest)) if first == "openid" => rest,
            _ => &self.scopes,
        }
    }

    /// The `scope` request parameter: scopes joined by spaces
    /// (RFC 6749 section 3.3).
    pub fn scope_param(&self) -> String {
        self.scopes.join(" ")
    }
}

/// CA certificates trusted for the identity provider (`-oidc-ca-file`).
#[derive(Clone, PartialEq, Eq)]
pub struct CaBundle {
    /// The file they were read from.
    pub path: PathBuf,
    /// The file's contents as read (PEM), for APIs that take a PEM bundle.
    pub pem: Vec<u8>,
    /// DER bytes of each `CERTIFICATE` block, in file order (at least one).
    pub certificates_der: Vec<Vec<u8>>,
}

impl fmt::Debug for CaBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaBundle")
            .field("path", &self.path)
            .field("certificates", &self.certificates_der.len())
            .finish()
    }
}

/// How token claims map to a Kubernetes user, mirroring kube-apiserver's
/// `--oidc-username-claim`, `--oidc-groups-claim`, `--oidc-*-prefix` and
/// `--oidc-required-claim`
/// (<https://kubernetes.io/docs/reference/access-authn-authz/authentication/#using-flags>).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClaimMapping {
    /// `-oidc-impersonate-claim` (default `preferred_username`).
    pub username_claim: String,
    /// `-oidc-groups-claim` (default `groups`); may be a dotted path.
    pub groups_claim: String,
    /// `-oidc-username-prefix`; empty = none.
    pub username_prefix: String,
    /// `-oidc-groups-prefix`; empty = none.
    pub groups_prefix: String,
    /// `-oidc-required-claim key=value` pairs (a later one for the same key
    /// replaces an earlier one, as kube-apiserver's map flag does).
    pub required_claims: BTreeMap<String, String>,
}

/// Login session settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionSettings {
    /// `-session-ttl`: cookie lifetime (1 s to one year).
    pub ttl: Duration,
    /// `-session-key-file` contents; `None` = generate a per-process key.
    pub key: Option<SessionKey>,
}

/// Contents of `-session-key-file`: at least 32 bytes, raw or text. Keys are
/// derived from it (headlamp-oidc), so any replica with the same file can
/// open cookies sealed by another. Prints as `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKey {
    path: PathBuf,
    material: Vec<u8>,
}

impl SessionKey {
    /// Smallest accepted key file, in bytes (256 bits).
    pub const MIN_LEN: usize = 32;

    pub(crate) fn new(path: PathBuf, material: Vec<u8>) -> Self {
        Self { path, material }
    }

    /// The file it was read from (safe to log).
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The key material itself. Never log what this returns.
    pub fn expose(&self) -> &[u8] {
        &self.material
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionKey({}: [redacted])", self.path.display())
    }
}

/// Logging settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoggingSettings {
    /// `-log-level`.
    pub level: LogLevel,
    /// `-log-format`.
    pub format: LogFormat,
}

/// Least severe level that is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation (default).
    Info,
    /// Something unusual.
    Warn,
    /// Failures only.
    Error,
}

impl LogLevel {
    /// The level's name as written in `-log-level` (and tracing filters).
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFormat {
    /// Human-readable lines (coloured when stderr is a terminal).
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// The format's name as written in `-log-format`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}
