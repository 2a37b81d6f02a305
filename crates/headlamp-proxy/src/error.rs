//! The proxy's one error enum and the one place that turns it into a
//! response ([`rescue`]), in the manner of linkerd2-proxy's `ServerRescue`.

use std::error::Error as StdError;
use std::path::PathBuf;
use std::time::Duration;

use headlamp_core::{AuthenticationError, AuthenticationErrorKind, Status};
use http::Response;

use crate::body::ProxyBody;

/// Everything that can go wrong between a client request and the API
/// server's answer, and while loading clusters.
///
/// Messages are written for the person who must fix the problem and never
/// contain a token: tokens only travel inside [`headlamp_core::BearerToken`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The request path is not `[base]/clusters/{name}/...`.
    #[error(
        "the path {path:?} is not a cluster API path; expected {base}/clusters/<cluster>/<API path>"
    )]
    NotAClusterPath {
        /// The request path.
        path: String,
        /// The configured base path (may be empty).
        base: String,
    },
    /// The request path holds `.` or `..` segments, which could step out of
    /// the cluster server URL's path prefix.
    #[error("the path {path:?} contains a \".\" or \"..\" segment; send a normalised path")]
    DotSegment {
        /// The request path.
        path: String,
    },
    /// No cluster of that name is configured.
    #[error(
        "cluster {name:?} is not configured; clusters are the kubeconfig contexts (minus the \
         skipped ones) and the in-cluster context"
    )]
    UnknownCluster {
        /// The name from the request path.
        name: String,
    },
    /// The cluster is configured but failed to load (its error shows in `/config`).
    #[error("cluster {name:?} cannot be used: {reason}")]
    ClusterUnavailable {
        /// The cluster.
        name: String,
        /// Why it failed to load.
        reason: String,
    },
    /// Impersonate mode and the request carries no bearer token at all.
    #[error(
        "no bearer token: sign in to cluster {cluster:?} first (token cookie), or send \
         \"Authorization: Bearer <token>\""
    )]
    NoToken {
        /// The cluster.
        cluster: String,
    },
    /// A token was found but is not usable as sent.
    #[error("the bearer token {source_name} is malformed: {reason}")]
    MalformedToken {
        /// Where the token came from (`cookie`, `Authorization header`, `WebSocket subprotocol`).
        source_name: &'static str,
        /// What is wrong with it (never the token itself).
        reason: &'static str,
    },
    /// The [`headlamp_core::Authenticate`] implementation refused the token
    /// or could not check it.
    #[error("{0}")]
    Authentication(#[from] AuthenticationError),
    /// The cluster's own credentials (impersonate mode) could not be read.
    #[error("the credentials of cluster {cluster:?} are not usable: {reason}")]
    UpstreamCredentials {
        /// The cluster.
        cluster: String,
        /// What failed (a file path and an OS error, never a token).
        reason: String,
    },
    /// TCP connect plus TLS handshake took longer than the connect timeout.
    #[error(
        "connecting to the API server of cluster {cluster:?} at {server} timed out after \
         {after:?}; check that the server URL is reachable from this host (firewall, DNS, \
         proxy) or raise the connect timeout"
    )]
    ConnectTimeout {
        /// The cluster.
        cluster: String,
        /// Its server URL.
        server: String,
        /// The configured timeout.
        after: Duration,
    },
    /// The API server could not be reached (refused, DNS, reset).
    #[error(
        "the API server of cluster {cluster:?} at {server} is unreachable: {detail}; check the \
         cluster's server URL and that the API server is running"
    )]
    Unreachable {
        /// The cluster.
        cluster: String,
        /// Its server URL.
        server: String,
        /// The underlying error chain.
        detail: String,
    },
    /// The TLS handshake with the API server failed.
    #[error("TLS with the API server of cluster {cluster:?} at {server} failed: {detail}; {hint}")]
    Tls {
        /// The cluster.
        cluster: String,
        /// Its server URL.
        server: String,
        /// The rustls error.
        detail: String,
        /// What to change.
        hint: &'static str,
    },
    /// The connection to the API server broke after it was established.
    #[error("the API server of cluster {cluster:?} at {server} failed mid-request: {detail}")]
    Upstream {
        /// The cluster.
        cluster: String,
        /// Its server URL.
        server: String,
        /// The underlying error chain.
        detail: String,
    },
    /// A kubeconfig file could not be read or parsed (loading).
    #[error("kubeconfig {path}: {source}; fix the file or leave it out of the kubeconfig list")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// kube-client's error.
        #[source]
        source: kube_client::config::KubeconfigError,
    },
    /// Kubeconfig files that cannot be merged (different `kind`/`apiVersion`).
    #[error("kubeconfig files cannot be merged: {source}")]
    KubeconfigMerge {
        /// kube-client's error.
        #[source]
        source: kube_client::config::KubeconfigError,
    },
}

impl ProxyError {
    /// A short, stable label for metrics (`unknown_cluster`, `no_token`,
    /// the authenticator's own label such as `expired`, `tls`, ...).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::NotAClusterPath { .. } => "not_a_cluster_path",
            Self::DotSegment { .. } => "dot_segment",
            Self::UnknownCluster { .. } => "unknown_cluster",
            Self::ClusterUnavailable { .. } => "cluster_unavailable",
            Self::NoToken { .. } => "no_token",
            Self::MalformedToken { .. } => "malformed_token",
            Self::Authentication(e) => e.metric_label,
            Self::UpstreamCredentials { .. } => "upstream_credentials",
            Self::ConnectTimeout { .. } => "connect_timeout",
            Self::Unreachable { .. } => "unreachable",
            Self::Tls { .. } => "tls",
            Self::Upstream { .. } => "upstream",
            Self::Kubeconfig { .. } | Self::KubeconfigMerge { .. } => "kubeconfig",
        }
    }

    /// The Kubernetes `Status` this error is answered with.
    pub fn to_status(&self) -> Status {
        let message = self.to_string();
        match self {
            Self::NotAClusterPath { .. } | Self::UnknownCluster { .. } => {
                Status::not_found(message)
            }
            Self::DotSegment { .. } => Status::bad_request(message),
            Self::NoToken { .. } | Self::MalformedToken { .. } => Status::unauthorized(message),
            Self::Authentication(e) => match e.kind {
                AuthenticationErrorKind::Unavailable => Status::service_unavailable(message),
                // Rejected, and any kind added later: refuse rather than let through.
                _ => Status::unauthorized(message),
            },
            Self::ClusterUnavailable { .. } | Self::UpstreamCredentials { .. } => {
                Status::service_unavailable(message)
            }
            Self::ConnectTimeout { .. } => Status::gateway_timeout(message),
            Self::Unreachable { .. } | Self::Tls { .. } | Self::Upstream { .. } => {
                Status::bad_gateway(message)
            }
            Self::Kubeconfig { .. } | Self::KubeconfigMerge { .. } => {
                Status::internal_error(message)
            }
        }
    }
}

/// Turns every error of the request path into a `Status` response, logging
/// it once: a 5xx at `warn` (an operator must act), a 4xx at `debug` (the
/// client must act, and a scanner must not flood the log).
pub(crate) fn rescue(error: &ProxyError) -> Response<ProxyBody> {
    let status = error.to_status();
    let label = error.metric_label();
    if status.code >= 500 {
        tracing::warn!(code = status.code, label, %error, "request failed");
    } else {
        tracing::debug!(code = status.code, label, %error, "request refused");
    }
    let mut response: Response<ProxyBody> = status.to_response();
    response.extensions_mut().insert(ProxyFailure { label });
    response
}

/// Set as a response extension on every response the proxy produced itself
/// (rather than passed through from the API server), so the embedding
/// server can count failures by cause without parsing bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyFailure {
    /// [`ProxyError::metric_label`].
    pub label: &'static str,
}

/// Maps a hyper-util client error to the error a client can act on.
///
/// The connect phase is classified by walking the source chain: our own
/// [`ConnectTimeout`](crate::upstream::ConnectTimeoutError) marker, a rustls
/// error (hidden inside an `io::Error` by tokio-rustls), or anything else
/// during connect (refused, DNS).
pub(crate) fn classify_upstream_error(
    error: &hyper_util::client::legacy::Error,
    cluster: &str,
    server: &str,
    connect_timeout: Duration,
) -> ProxyError {
    let mut tls = None;
    let mut timed_out = false;
    // Both `source()` and `io::Error::get_ref()` lead inwards: hyper-rustls
    // wraps tokio-rustls' io::Error (which holds the rustls::Error) in a
    // second io::Error, and io::Error's `source()` skips its payload.
    let mut pending: Vec<&(dyn StdError + 'static)> = vec![error];
    while let Some(e) = pending.pop() {
        if e.is::<crate::upstream::ConnectTimeoutError>() {
            timed_out = true;
        }
        if let Some(t) = e.downcast_ref::<rustls::Error>() {
            tls = Some(t.clone());
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            pending.push(inner);
        }
        if let Some(source) = e.source() {
            pending.push(source);
        }
    }
    let cluster = cluster.to_owned();
    let server = server.to_owned();
    if timed_out {
        return ProxyError::ConnectTimeout {
            cluster,
            server,
            after: connect_timeout,
        };
    }
    if let Some(tls) = tls {
        return ProxyError::Tls {
            cluster,
            server,
            hint: tls_hint(&tls),
            detail: tls.to_string(),
        };
    }
    let detail = error_chain(error);
    if error.is_connect() {
        ProxyError::Unreachable {
            cluster,
            server,
            detail,
        }
    } else {
        ProxyError::Upstream {
            cluster,
            server,
            detail,
        }
    }
}

/// What an operator should change for a given TLS failure.
fn tls_hint(error: &rustls::Error) -> &'static str {
    use rustls::CertificateError as C;
    match error {
        rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
            "the server certificate is not signed by the cluster's CA: set the cluster's \
             certificate-authority or certificate-authority-data to the CA that issued it"
        }
        rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        ) => {
            "the server certificate does not name the host in the server URL: use a server URL \
             the certificate covers, or set the cluster's tls-server-name"
        }
        rustls::Error::InvalidCertificate(
            C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. },
        ) => {
            "the server certificate is outside its validity period: renew it or fix this host's \
             clock"
        }
        rustls::Error::AlertReceived(_) => {
            "the API server refused the handshake: if it requires a client certificate, give the \
             kubeconfig user client-certificate and client-key"
        }
        _ => {
            "check that the server URL points at the API server's TLS port and that its CA is configured"
        }
    }
}

/// `a: b: c` from an error and its sources, skipping repeats (hyper wraps
/// errors whose `Display` repeats their source's).
pub(crate) fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut out = String::new();
    let mut current = Some(error);
    while let Some(e) = current {
        let text = e.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
        current = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use headlamp_core::AuthenticationError;

    fn code(e: ProxyError) -> (u16, String) {
        let s = e.to_status();
        (s.code, s.reason)
    }

    #[test]
    fn maps_every_class_to_its_status() {
        assert_eq!(
            code(ProxyError::UnknownCluster { name: "x".into() }),
            (404, "NotFound".into())
        );
        assert_eq!(
            code(ProxyError::DotSegment {
                path: "/a/../b".into()
            })
            .0,
            400
        );
        assert_eq!(
            code(ProxyError::NoToken {
                cluster: "x".into()
            }),
            (401, "Unauthorized".into())
        );
        assert_eq!(
            code(AuthenticationError::rejected("token expired").into()),
            (401, "Unauthorized".into())
        );
        assert_eq!(
            code(AuthenticationError::unavailable("no keys").into()),
            (503, "ServiceUnavailable".into())
        );
        assert_eq!(
            code(ProxyError::ConnectTimeout {
                cluster: "x".into(),
                server: "https://10.0.0.1".into(),
                after: Duration::from_secs(1)
            }),
            (504, "Timeout".into())
        );
        for e in [
            ProxyError::Unreachable {
                cluster: "x".into(),
                server: "s".into(),
                detail: "refused".into(),
            },
            ProxyError::Tls {
                cluster: "x".into(),
                server: "s".into(),
                detail: "d".into(),
                hint: "h",
            },
            ProxyError::Upstream {
                cluster: "x".into(),
                server: "s".into(),
                detail: "reset".into(),
            },
        ] {
            assert_eq!(code(e).0, 502);
        }
        assert_eq!(
            code(ProxyError::ClusterUnavailable {
                name: "x".into(),
                reason: "r".into()
            })
            .0,
            503
        );
    }

    #[test]
    fn rescue_answers_status_json_with_the_reason() {
        let r = rescue(
            &ProxyError::from(AuthenticationError::rejected("token expired"))
                .with_label_for_test("expired"),
        );
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.extensions().get::<ProxyFailure>().unwrap().label,
            "expired"
        );
        assert_eq!(r.headers()[http::header::CONTENT_TYPE], "application/json");
    }

    impl ProxyError {
        fn with_label_for_test(self, label: &'static str) -> Self {
            match self {
                Self::Authentication(e) => Self::Authentication(e.with_metric_label(label)),
                other => other,
            }
        }
    }

    #[test]
    fn tls_hints_name_the_fix() {
        let unknown = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        assert!(tls_hint(&unknown).contains("certificate-authority"));
        let name = rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName);
        assert!(tls_hint(&name).contains("tls-server-name"));
    }
}
