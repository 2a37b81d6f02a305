//! Connections to one cluster's API server: pooled hyper-util clients over
//! hyper-rustls with the cluster's CA, client certificate, `tls-server-name`
//! and `insecure-skip-tls-verify`.
//!
//! Two clients per cluster: the main one offers HTTP/2 and HTTP/1.1 by ALPN
//! (kube-apiserver speaks both; HTTP/2 multiplexes the many watches of a
//! UI over one connection), the other offers HTTP/1.1 only and carries
//! `Upgrade` requests, because an HTTP/1.1 upgrade (RFC 9110 section 7.8)
//! cannot travel over an HTTP/2 connection.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use headlamp_core::Clock;
use headlamp_core::insecure_tls::InsecureSkipVerify;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder, MaybeHttpsStream};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

use crate::cluster::ConnectionSpec;
use crate::credentials::{self, UpstreamToken};

/// Timeouts shared by every cluster's clients.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub(crate) connect: Duration,
    pub(crate) pool_idle: Duration,
}

/// The connector: TCP, then TLS (or plain HTTP for `http://` servers),
/// under one deadline.
pub(crate) type Connector = TimeoutConnector<HttpsConnector<HttpConnector>>;

/// One cluster's API server, ready to take requests.
pub(crate) struct Upstream<B> {
    /// `https://host:port`, for the request URI.
    pub(crate) scheme: http::uri::Scheme,
    pub(crate) authority: http::uri::Authority,
    /// The server URL's path without its trailing `/` (often empty).
    pub(crate) path_prefix: String,
    /// The server URL as configured, for error messages.
    pub(crate) server: String,
    pub(crate) client: Client<Connector, B>,
    pub(crate) upgrade_client: Client<Connector, B>,
    /// What the proxy presents as itself in impersonate mode (`None` in
    /// passthrough mode, and for clusters that use a client certificate).
    pub(crate) token: Option<UpstreamToken>,
    pub(crate) connect_timeout: Duration,
}

impl<B> Upstream<B>
where
    B: http_body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// Builds the clients. In impersonate mode the cluster's credentials are
    /// resolved too; in passthrough mode none are loaded, so a kubeconfig
    /// client certificate can never stand in for (and outrank) the user's
    /// own token.
    pub(crate) async fn new(
        spec: &ConnectionSpec,
        impersonate: bool,
        timeouts: Timeouts,
        clock: &Arc<dyn Clock>,
    ) -> Result<Self, String> {
        let (token, client_identity) = if impersonate {
            let creds = credentials::resolve(&spec.user, clock).await?;
            (creds.token, creds.client_identity)
        } else {
            (None, None)
        };
        let tls = tls_config(spec, client_identity)?;
        let server = spec.server.to_string();
        let scheme = spec
            .server
            .scheme()
            .cloned()
            .unwrap_or(http::uri::Scheme::HTTPS);
        let authority = spec
            .server
            .authority()
            .cloned()
            .ok_or_else(|| format!("server URL {server:?} names no host"))?;
        let path_prefix = spec.server.path().trim_end_matches('/').to_owned();
        let server_name = match &spec.tls_server_name {
            Some(name) => Some(
                ServerName::try_from(name.clone())
                    .map_err(|e| format!("tls-server-name {name:?} is not a host name: {e}"))?,
            ),
            None => None,
        };
        let client = build_client(tls.clone(), server_name.clone(), true, timeouts);
        let upgrade_client = build_client(tls, server_name, false, timeouts);
        Ok(Self {
            scheme,
            authority,
            path_prefix,
            server,
            client,
            upgrade_client,
            token,
            connect_timeout: timeouts.connect,
        })
    }
}

fn build_client<B>(
    tls: ClientConfig,
    server_name: Option<ServerName<'static>>,
    http2: bool,
    timeouts: Timeouts,
) -> Client<Connector, B>
where
    B: http_body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    // Watches and exec streams are small writes that must not wait for Nagle.
    http.set_nodelay(true);
    let builder = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http();
    let builder = match server_name {
        Some(name) => {
            builder.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
        }
        None => builder,
    };
    let https = if http2 {
        builder.enable_http1().enable_http2().wrap_connector(http)
    } else {
        builder.enable_http1().wrap_connector(http)
    };
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(timeouts.pool_idle)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(TimeoutConnector {
            inner: https,
            timeout: timeouts.connect,
        })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn tls_config(
    spec: &ConnectionSpec,
    client_identity: Option<(
        Vec<CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    )>,
) -> Result<ClientConfig, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    let builder = if spec.insecure_skip_tls_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(InsecureSkipVerify::new(provider)))
    } else {
        builder.with_root_certificates(root_store(spec.root_certs.as_deref())?)
    };
    match client_identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("the client certificate and key do not form a usable pair: {e}")),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// The cluster's CA, or (as kubectl does when a cluster names none) the
/// system trust store.
fn root_store(certs: Option<&[CertificateDer<'static>]>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match certs {
        Some(certs) => {
            for cert in certs {
                store.add(cert.clone()).map_err(|e| {
                    format!("certificate-authority holds an unusable certificate: {e}")
                })?;
            }
        }
        None => {
            // Debian/Ubuntu, Fedora/RHEL, Alpine locations of the system bundle.
            const SYSTEM_BUNDLES: [&str; 3] = [
                "/etc/ssl/certs/ca-certificates.crt",
                "/etc/pki/tls/certs/ca-bundle.crt",
                "/etc/ssl/cert.pem",
            ];
            for path in SYSTEM_BUNDLES {
                if let Ok(pem) = std::fs::read(path) {
                    if let Ok(certs) = crate::cluster::parse_certificates(&pem) {
                        store.add_parsable_certificates(certs);
                    }
                    break;
                }
            }
        }
    }
    Ok(store)
}

/// Marker error: TCP connect plus TLS handshake exceeded the connect
/// timeout. Found again in the client error's source chain to answer 504.
#[derive(Debug, thiserror::Error)]
#[error("connect timed out")]
pub(crate) struct ConnectTimeoutError;

/// Puts one deadline on the whole connect (TCP and TLS), which
/// `HttpConnector::set_connect_timeout` alone (TCP only) does not.
#[derive(Clone)]
pub(crate) struct TimeoutConnector<C> {
    inner: C,
    timeout: Duration,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<C> tower::Service<http::Uri> for TimeoutConnector<C>
where
    C: tower::Service<http::Uri, Response = MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>>
        + Send
        + 'static,
    C::Error: Into<BoxError>,
    C::Future: Send + 'static,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let connect = self.inner.call(uri);
        let timeout = self.timeout;
        // One allocation per new connection, not per request: pooled
        // connections skip the connector.
        Box::pin(async move {
            match tokio::time::timeout(timeout, connect).await {
                Ok(result) => result.map_err(Into::into),
                Err(_) => Err(Box::new(ConnectTimeoutError) as BoxError),
            }
        })
    }
}
