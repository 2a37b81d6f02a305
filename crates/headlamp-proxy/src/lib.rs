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
