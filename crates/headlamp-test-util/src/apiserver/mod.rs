//! A protocol-faithful test Kubernetes API server, in process.
//!
//! It behaves like kube-apiserver for the parts headlamp-auth touches, so
//! end-to-end tests prove the proxy against the real protocol rather than
//! against a mock that replays expectations:
//!
//! - **Authentication** (<https://kubernetes.io/docs/reference/access-authn-authz/authentication/>):
//!   X.509 client certificates (CN = user, O = groups), static bearer tokens
//!   (one is the `headlamp` service account's), OIDC ID tokens verified like
//!   `--oidc-issuer-url/--oidc-client-id/--oidc-username-claim/--oidc-groups-claim`
//!   with the server's own discovery and JWKS fetch, and the WebSocket
//!   bearer subprotocol. A missing or bad credential is a 401 `Status`.
//! - **Impersonation** (`Impersonate-User`, `-Group`, `-Uid`, `-Extra-*`),
//!   authorized per attribute; refused with kube's 403 message.
//! - **Authorization**: an RBAC-shaped [`Policy`].
//! - **Endpoints**: `/healthz`, `/livez`, `/readyz`, `/version`, discovery
//!   (`/api`, `/api/v1`, `/apis`, `/apis/<group>[/v1]`), namespaces and pods
//!   (list, get, Table output for kubectl, watch over chunked HTTP and
//!   WebSocket), `pods/<name>/exec` over WebSocket (v5/v4/v1 channel
//!   protocols), SelfSubjectReview, SelfSubjectAccessReview and
//!   SelfSubjectRulesReview.
//! - **Request log**: every request as received, with the authenticated
//!   and effective user ([`RequestLog`]).
//! - **Faults**: delay, hang, drop the connection, or answer anything
//!   ([`Fault`]), switchable while running.
//!
//! ```no_run
//! # async fn demo() -> Result<(), headlamp_test_util::TestBedError> {
//! use headlamp_test_util::apiserver::{ApiServerOptions, TestApiServer};
//! let server = TestApiServer::start(ApiServerOptions::default()).await?;
//! let url = server.url(); // https://127.0.0.1:<port>
//! let token = server.service_account_token();
//! # let _ = (url, token);
//! # Ok(()) }
//! ```

mod authn;
mod authz;
mod exec;
mod fetch;
mod impersonation;
mod log;
mod logs;
mod objects;
mod oidc;
mod protobuf;
mod request_info;
mod server;
mod status;
mod user;
mod watch;
mod websocket;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use headlamp_core::{Clock, SystemClock};
use http::StatusCode;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

pub use authz::{Policy, PolicyRule, SERVICE_ACCOUNT_USER, Subject};
pub use log::{RecordedRequest, RequestLog};
pub use objects::{NAMESPACES, PODS};
pub use oidc::OidcOptions;
pub use user::{ALL_AUTHENTICATED, ALL_UNAUTHENTICATED, ANONYMOUS, UserInfo};

use crate::TestBedError;
use crate::kubeconfig::{KubeCluster, KubeUser, Kubeconfig};
use crate::tls::{IssuedCert, TestPki};

/// A misbehaviour to inject into every request (after it is recorded).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer normally, but only after this long.
    Delay(Duration),
    /// Never answer (until the client gives up or the server is dropped).
    Hang,
    /// Close the connection without an HTTP response.
    CloseConnection,
    /// Answer every request with this status and body.
    Respond {
        /// The HTTP status.
        status: StatusCode,
        /// The `Content-Type`.
        content_type: String,
        /// The body.
        body: String,
    },
}

/// Whether and how TLS client certificates are requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientCertMode {
    /// Certificates signed by the server's CA are accepted when presented
    /// (kube-apiserver with `--client-ca-file`).
    #[default]
    Optional,
    /// Connections without a valid client certificate are refused in the
    /// TLS handshake.
    Required,
    /// No certificate is requested.
    Disabled,
}

/// How to start a [`TestApiServer`].
#[derive(Clone)]
pub struct ApiServerOptions {
    /// OIDC token authentication, like kube-apiserver's `--oidc-*` flags.
    pub oidc: Option<OidcOptions>,
    /// Extra static bearer tokens (`--token-auth-file` entries).
    pub static_tokens: Vec<(String, UserInfo)>,
    /// Also serve plain HTTP on a second port ([`TestApiServer::http_url`]).
    pub plain_http: bool,
    /// TLS client certificates.
    pub client_certs: ClientCertMode,
    /// `--anonymous-auth`: when false (the default), requests without
    /// credentials are 401 except on `/healthz`, `/livez` and `/readyz`.
    pub anonymous_auth: bool,
    /// Authorization rules.
    pub policy: Policy,
    /// How many `MODIFIED` events a watch sends (after its `ADDED` events).
    pub watch_events: u64,
    /// Time between `MODIFIED` events.
    pub watch_interval: Duration,
    /// Longest a watch stays open (kube's `--min-request-timeout`, shortened
    /// so tests end); `timeoutSeconds` can only shorten it.
    pub watch_max_duration: Duration,
    /// A fault active from the start ([`TestApiServer::set_fault`] changes it).
    pub fault: Option<Fault>,
    /// The clock token expiry is checked against.
    pub clock: Arc<dyn Clock>,
    /// The CA to serve with and trust client certificates from; a new one
    /// is generated when `None`.
    pub pki: Option<Arc<TestPki>>,
    /// The HTTPS port; a free one when `None`. With the same `pki`, a test
    /// can drop the server and start another at the same URL (an API server
    /// outage and recovery, as a proxy sees it).
    pub port: Option<u16>,
}

impl std::fmt::Debug for ApiServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServerOptions")
            .field("oidc", &self.oidc)
            .field("static_tokens", &self.static_tokens.len())
            .field("plain_http", &self.plain_http)
            .field("client_certs", &self.client_certs)
            .field("anonymous_auth", &self.anonymous_auth)
            .field("watch_events", &self.watch_events)
            .field("watch_interval", &self.watch_interval)
            .field("fault", &self.fault)
            .finish_non_exhaustive()
    }
}

impl Default for ApiServerOptions {
    fn default() -> Self {
        Self {
            oidc: None,
            static_tokens: Vec::new(),
            plain_http: false,
            client_certs: ClientCertMode::Optional,
            anonymous_auth: false,
            policy: Policy::default(),
            watch_events: 5,
            watch_interval: Duration::from_millis(200),
            watch_max_duration: Duration::from_secs(30),
            fault: None,
            clock: Arc::new(SystemClock),
            pki: None,
            port: None,
        }
    }
}

impl ApiServerOptions {
    /// Default options with OIDC authentication.
    pub fn with_oidc(oidc: OidcOptions) -> Self {
        Self {
            oidc: Some(oidc),
            ..Self::default()
        }
    }
}

/// A running test API server; it shuts down (every connection, watch and
/// exec session included) when dropped.
pub struct TestApiServer {
    state: Arc<server::State>,
    pki: Arc<TestPki>,
    https_addr: SocketAddr,
    http_addr: Option<SocketAddr>,
    sa_token: String,
    current_sa_token: std::sync::Mutex<String>,
    sa_user: UserInfo,
}

impl std::fmt::Debug for TestApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApiServer")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

fn random_token() -> String {
    use base64::Engine as _;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl TestApiServer {
    /// Starts the server on free ports of 127.0.0.1.
    pub async fn start(options: ApiServerOptions) -> Result<Self, TestBedError> {
        let pki = match options.pki.clone() {
            Some(pki) => pki,
            None => Arc::new(TestPki::generate()?),
        };
        let server_cert = pki.issue_server_cert("apiserver", &["127.0.0.1", "localhost"])?;
        let tls = tls_config(&pki, &server_cert, options.client_certs)?;
        let https = bind(options.port.unwrap_or(0)).await?;
        let https_addr = local_addr(&https)?;
        let http = if options.plain_http {
            Some(bind(0).await?)
        } else {
            None
        };
        let http_addr = http.as_ref().map(local_addr).transpose()?;

        let sa_token = random_token();
        let sa_user = UserInfo {
            username: SERVICE_ACCOUNT_USER.to_owned(),
            uid: "5d6f4c8e-0000-4000-8000-00000000aaaa".to_owned(),
            groups: vec![
                "system:serviceaccounts".to_owned(),
                "system:serviceaccounts:headlamp".to_owned(),
            ],
            extra: Default::default(),
        };
        let mut static_tokens = vec![(sa_token.clone(), sa_user.clone())];
        static_tokens.extend(options.static_tokens.iter().cloned());
        let oidc = options
            .oidc
            .clone()
            .map(|o| oidc::OidcAuthenticator::new(o, Arc::clone(&options.clock)))
            .transpose()?;
        let state = Arc::new(server::State {
            authn: authn::Authenticator {
                static_tokens: std::sync::RwLock::new(static_tokens),
                oidc,
            },
            policy: options.policy.clone(),
            anonymous_auth: options.anonymous_auth,
            log: RequestLog::default(),
            fault: std::sync::Mutex::new(options.fault.clone()),
            fixtures: objects::Fixtures::new(options.clock.now()),
            clock: Arc::clone(&options.clock),
            watch: watch::WatchSettings {
                events: options.watch_events,
                interval: options.watch_interval,
                max_duration: options.watch_max_duration,
            },
            server_address: https_addr.to_string(),
            tasks: std::sync::Mutex::new(JoinSet::new()),
            audit_ids: AtomicU64::new(1),
        });
        state.spawn(server::accept_loop(
            Arc::clone(&state),
            https,
            Some(tokio_rustls::TlsAcceptor::from(tls)),
        ));
        if let Some(http) = http {
            state.spawn(server::accept_loop(Arc::clone(&state), http, None));
        }
        Ok(Self {
            state,
            pki,
            https_addr,
            http_addr,
            current_sa_token: std::sync::Mutex::new(sa_token.clone()),
            sa_token,
            sa_user,
        })
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.https_addr)
    }

    /// The HTTPS listening address.
    pub fn addr(&self) -> SocketAddr {
        self.https_addr
    }

    /// `http://127.0.0.1:<port>` when started with `plain_http`.
    pub fn http_url(&self) -> Option<String> {
        self.http_addr.map(|a| format!("http://{a}"))
    }

    /// The CA that signed the serving certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        self.pki.ca_pem()
    }

    /// The CA certificate file.
    pub fn ca_path(&self) -> &Path {
        self.pki.ca_path()
    }

    /// The server's PKI: issue client certificates it will accept.
    pub fn pki(&self) -> &Arc<TestPki> {
        &self.pki
    }

    /// A client certificate for `username` in `group`, trusted by this server.
    pub fn issue_client_cert(
        &self,
        username: &str,
        group: Option<&str>,
    ) -> Result<IssuedCert, TestBedError> {
        let file: String = username
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        self.pki
            .issue_client_cert(&format!("client-{file}"), username, group)
    }

    /// The bearer token of `system:serviceaccount:headlamp:headlamp`, which
    /// may impersonate any user.
    pub fn service_account_token(&self) -> &str {
        &self.sa_token
    }

    /// Issues a new token for the service account, as the kubelet does when
    /// it refreshes a projected token; the previous ones stay valid unless
    /// `revoke_previous`. [`TestApiServer::service_account_token`] keeps
    /// returning the first token; [`TestApiServer::write_in_cluster_files`]
    /// writes the newest.
    pub fn rotate_service_account_token(&self, revoke_previous: bool) -> String {
        let token = random_token();
        {
            let mut tokens = self
                .state
                .authn
                .static_tokens
                .write()
                .unwrap_or_else(|p| p.into_inner());
            if revoke_previous {
                tokens.retain(|(_, user)| user.username != SERVICE_ACCOUNT_USER);
            }
            tokens.push((token.clone(), self.sa_user.clone()));
        }
        *self
            .current_sa_token
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = token.clone();
        token
    }

    /// Accepts `token` as `user` from now on (a `--token-auth-file` entry).
    pub fn add_static_token(&self, token: impl Into<String>, user: UserInfo) {
        self.state
            .authn
            .static_tokens
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push((token.into(), user));
    }

    /// Stops accepting the static token `token`.
    pub fn revoke_token(&self, token: &str) {
        self.state
            .authn
            .static_tokens
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(t, _)| t != token);
    }

    /// Writes what a pod's service-account volume holds
    /// (`/var/run/secrets/kubernetes.io/serviceaccount`: `token` (the newest
    /// service-account token), `ca.crt`, `namespace` = `headlamp`) into `dir`,
    /// for testing in-cluster configuration with the directory redirected.
    pub fn write_in_cluster_files(&self, dir: &Path) -> Result<(), TestBedError> {
        let token = self
            .current_sa_token
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for (name, contents) in [
            ("token", token.as_str()),
            ("ca.crt", self.ca_pem()),
            ("namespace", "headlamp"),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, contents)
                .map_err(|e| TestBedError::io(format!("writing {}", path.display()), e))?;
        }
        Ok(())
    }

    /// The request log.
    pub fn request_log(&self) -> &RequestLog {
        &self.state.log
    }

    /// A copy of every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.log.snapshot()
    }

    /// Sets (or with `None` clears) the fault injected into every request.
    pub fn set_fault(&self, fault: Option<Fault>) {
        *self.state.fault.lock().unwrap_or_else(|p| p.into_inner()) = fault;
    }

    /// A kubeconfig (cluster, user and context named `testbed`, namespace
    /// `default`) for this server.
    pub fn kubeconfig(&self, user: KubeUser) -> Kubeconfig {
        Kubeconfig::new()
            .cluster(
                "testbed",
                KubeCluster {
                    server: self.url(),
                    ca_pem: Some(self.ca_pem().to_owned()),
                    insecure_skip_tls_verify: false,
                },
            )
            .user("testbed", user)
            .context("testbed", "testbed", "testbed", Some("default"))
            .current_context("testbed")
    }

    /// Writes [`TestApiServer::kubeconfig`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path, user: KubeUser) -> Result<(), TestBedError> {
        self.kubeconfig(user).write(path)
    }

    /// A rustls client configuration trusting this server, optionally with
    /// a client certificate (HTTP/1.1 ALPN).
    pub fn client_tls(
        &self,
        client_cert: Option<&IssuedCert>,
    ) -> Result<Arc<rustls::ClientConfig>, TestBedError> {
        self.pki.client_config(client_cert)
    }
}

impl Drop for TestApiServer {
    fn drop(&mut self) {
        self.state.abort_all();
    }
}

async fn bind(port: u16) -> Result<TcpListener, TestBedError> {
    // A fixed port may still be held for a moment by a server just dropped
    // (its listener closes when its aborted task is dropped): retry briefly.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(listener) => return Ok(listener),
            Err(e)
                if port != 0
                    && e.kind() == std::io::ErrorKind::AddrInUse
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => {
                return Err(TestBedError::io(
                    format!("binding the test API server to 127.0.0.1:{port}"),
                    e,
                ));
            }
        }
    }
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr, TestBedError> {
    listener
        .local_addr()
        .map_err(|e| TestBedError::io("reading the test API server address", e))
}

fn tls_config(
    pki: &TestPki,
    cert: &IssuedCert,
    client_certs: ClientCertMode,
) -> Result<Arc<rustls::ServerConfig>, TestBedError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls_err = |source| TestBedError::Tls {
        what: "the test API server".to_owned(),
        source,
    };
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?;
    let builder = match client_certs {
        ClientCertMode::Disabled => builder.with_no_client_auth(),
        mode => {
            let roots = Arc::new(pki.root_store()?);
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider);
            let verifier = if mode == ClientCertMode::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| tls_err(rustls::Error::General(e.to_string())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(vec![cert.cert_der()], cert.key_der())
        .map_err(tls_err)?;
    // kube-apiserver speaks HTTP/2 and HTTP/1.1; kubectl uses h2 for plain
    // requests and HTTP/1.1 for upgrades.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
