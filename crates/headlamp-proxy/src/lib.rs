//! The Kubernetes API proxy of headlamp-auth, as tower layers: route,
//! sanitize, authenticate (pass through or impersonate), forward, with
//! streams and protocol upgrades included.
//!
//! ```text
//! client ─> /clusters/{name}/api/...           KubeProxy (tower::Service)
//!             route        which cluster; 404 / 400 before anything else
//!             sanitize     hop-by-hop, Impersonate-*, our cookies,
//!                          bearer subprotocol, Authorization taken off
//!             authenticate token: server-resolved > cookie > Bearer > subprotocol
//!                          passthrough: Authorization: Bearer <user token>
//!                          impersonate: verify (Authenticate), our credentials
//!                                       + Impersonate-User/-Group/-Uid/-Extra-*
//!             forward      path joined onto the server URL, bodies streamed,
//!                          101 upgrades tunneled both ways
//!           errors ─> Kubernetes Status JSON (one place: ProxyError::to_status)
//! ```
//!
//! The proxy never parses a token: impersonate mode asks a
//! [`headlamp_core::Authenticate`] implementation who the caller is.
//!
//! # Decisions worth knowing
//!
//! - **Passthrough never loads the cluster's own credentials.** A
//!   kubeconfig client certificate presented beside the user's token would
//!   win (kube-apiserver tries x509 before bearer tokens) and every user
//!   would act as the certificate's owner. Without a user token the request
//!   goes up anonymous and the API server answers 401, as Headlamp does.
//! - **Impersonate mode needs static credentials**: a token, a token file
//!   (re-read every minute, as client-go does) or a client certificate.
//!   Exec plugins and auth-provider users are reported as the cluster's
//!   error instead of being run.
//! - **Everything the client sent as a credential is taken off** before the
//!   proxy sets its own: `Authorization`, every `Impersonate-*` (and the
//!   front-proxy `X-Remote-*` identity headers), our
//!   cookies (`headlamp-auth*`, `headlamp-oidc*`, `headlamp-login*`, `headlamp-refresh*`),
//!   the bearer WebSocket subprotocol.
//! - **Upgrades use an HTTP/1.1-only client**; everything else may use
//!   HTTP/2 by ALPN. Serve the proxy with hyper's upgrade support.
//! - **`..` segments are refused** (400), so a server URL with a path prefix
//!   (Rancher, a gateway) cannot be escaped.
//! - kubectl (client-go) only sends `--token` over TLS, so put the proxy
//!   behind TLS for kubectl.
//!
//! # Mounting
//!
//! Serve [`KubeProxy`] (a `tower::Service`, or call [`KubeProxy::handle`])
//! at `[base]/clusters/{name}/...` with [`KubeProxyBuilder::base_path`] set
//! to `[base]`. Per request, the embedder may insert:
//! - [`ClientAddr`]: the peer address, appended to `X-Forwarded-For`;
//! - [`ResolvedToken`]: a token it resolved itself (e.g. just refreshed),
//!   which wins over the cookie, `Authorization` and the subprotocol.
//!
//! Responses the proxy produced itself carry a [`ProxyFailure`] extension
//! with a metric label. [`KubeProxy::clusters`] lists every cluster with its
//! server, source, kubeconfig `auth-provider` and load error, for `/config`.
//! [`token_cookie_base`] gives the cookie name the server must set.
//!
//! ```no_run
//! # async fn run() -> Result<(), headlamp_proxy::ProxyError> {
//! use headlamp_proxy::{ClusterSources, KubeProxy, KubeconfigFiles, ProxyMode};
//!
//! let proxy = KubeProxy::builder(ProxyMode::passthrough())
//!     .clusters(ClusterSources {
//!         kubeconfig: Some(KubeconfigFiles::explicit("/etc/headlamp/kubeconfig")),
//!         ..Default::default()
//!     })
//!     .build::<hyper::body::Incoming>()
//!     .await?;
//! for cluster in proxy.clusters() {
//!     println!("{} {:?} {:?}", cluster.name, cluster.server, cluster.error);
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod authenticate;
mod body;
mod cluster;
mod credentials;
mod error;
mod forward;
mod route;
mod sanitize;
mod service;
mod upstream;

pub use authenticate::{
    ImpersonationHeaders, NoAuthenticator, ProxyMode, ResolvedToken, UnsendableIdentity,
};
pub use body::ProxyBody;
pub use cluster::{
    AuthProvider, ClusterInfo, ClusterSource, ClusterSources, InClusterConfig, KubeconfigFiles,
};
pub use error::{ProxyError, ProxyFailure};
pub use forward::ClientAddr;
pub use sanitize::{BEARER_SUBPROTOCOL_PREFIX, token_cookie_base};
pub use service::{KubeProxy, KubeProxyBuilder, ResponseFuture};
