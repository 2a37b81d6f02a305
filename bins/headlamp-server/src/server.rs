//! Listening and connection handling: bind, accept, serve HTTP/1.1 and
//! HTTP/2 (with upgrades, for WebSocket and SPDY exec), shut down gracefully.
//!
//! What a request *does* is decided in [`crate::routes`]; this module only
//! moves bytes and manages connection lifetimes.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use headlamp_config::{Config, ListenSettings};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::{Instrument, debug, info, warn};

use crate::respond::Body;
use crate::routes::{self, App, ConnectionInfo};
use crate::{shutdown, tls};
use headlamp_proxy::ClientAddr;

/// A client must finish sending request headers within this time, so idle
/// half-open connections (slowloris) cannot pile up.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// A TLS client must finish its handshake within this time.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop
/// does not spin while the condition lasts.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServerError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address as configured.
        addr: String,
        /// The operating system's reason.
        source: io::Error,
    },
    /// `-listen-addr` is a host name that does not resolve.
    #[error("cannot resolve -listen-addr {host}: {source}")]
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's reason.
        source: io::Error,
    },
    /// The TLS certificate or key could not be used.
    #[error("TLS setup failed for {path}: {reason}")]
    Tls {
        /// The file concerned.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A kubeconfig file could not be read or parsed.
    #[error("cannot load the clusters: {reason}")]
    Clusters {
        /// What failed (file and parser message).
        reason: String,
    },
    /// The session key could not be used.
    #[error("cannot use the session key: {reason}")]
    SessionKey {
        /// Why.
        reason: String,
    },
    /// `-oidc-callback-url` is not an absolute URL.
    #[error("-oidc-callback-url {url:?} is not an absolute URL: {reason}")]
    CallbackUrl {
        /// The configured value.
        url: String,
        /// The parser's reason.
        reason: String,
    },
    /// `-html-static-dir` cannot be served (no readable `index.html`).
    #[error("cannot serve -html-static-dir {path}: {reason}")]
    StaticDir {
        /// The directory as configured.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Runs the server until SIGINT or SIGTERM, then drains connections.
pub(crate) async fn run(config: Arc<Config>) -> Result<(), ServerError> {
    // First, so a signal sent as soon as we are up is never lost.
    let signals = shutdown::Signals::install();
    let tls = config.tls.as_ref().map(tls::acceptor).transpose()?;
    let listener = bind(&config.listen).await?;
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| config.listen.to_string());
    info!(
        addr = %addr,
        scheme = if tls.is_some() { "https" } else { "http" },
        base_url = %config.base_url,
        version = env!("CARGO_PKG_VERSION"),
        "listening"
    );
    log_summary(&config);

    let app = Arc::new(App::build(config).await?);
    let handler = move |request: Request<Incoming>| routes::route(Arc::clone(&app), request);
    serve(
        listener,
        tls,
        handler,
        signals.recv(),
        shutdown::GRACE_PERIOD,
    )
    .await;
    Ok(())
}

/// One line per concern so an operator sees what is in effect. Only
/// non-secret values: the client id, issuer and paths, never the secret.
fn log_summary(config: &Config) {
    let clusters = &config.clusters;
    info!(
        kubeconfig = ?clusters.kubeconfig.paths,
        in_cluster = clusters.in_cluster,
        skipped_contexts = ?clusters.skipped_contexts,
        "cluster sources"
    );
    match &config.oidc {
        Some(oidc) => info!(
            issuer = %oidc.issuer_url,
            client_id = %oidc.client_id,
            confidential_client = oidc.client_secret.is_some(),
            scopes = %oidc.scope_param(),
            pkce = oidc.use_pkce,
            impersonate = oidc.impersonate,
            "OIDC"
        ),
        None => info!("OIDC: no global -oidc-* settings"),
    }
}

/// Binds the listen address. No host means all interfaces, as Go's
/// `net.Listen("tcp", ":4466")` does: an IPv6 wildcard socket, which Linux
/// makes dual-stack unless `net.ipv6.bindv6only=1`; hosts without IPv6 fall
/// back to the IPv4 wildcard.
async fn bind(listen: &ListenSettings) -> Result<TcpListener, ServerError> {
    let port = listen.port;
    let Some(host) = &listen.host else {
        return match TcpListener::bind((Ipv6Addr::UNSPECIFIED, port)).await {
            Ok(listener) => Ok(listener),
            Err(_) => TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))
                .await
                .map_err(|source| ServerError::Bind {
                    addr: listen.to_string(),
                    source,
                }),
        };
    };
    let addrs = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|source| ServerError::Resolve {
            host: host.clone(),
            source,
        })?;
    let mut last_error = None;
    for addr in addrs {
        match TcpListener::bind(addr).await {
            Ok(listener) => return Ok(listener),
            Err(err) => last_error = Some(err),
        }
    }
    Err(ServerError::Bind {
        addr: listen.to_string(),
        source: last_error.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "the host name resolved to no address",
            )
        }),
    })
}

/// Accepts connections until `shutdown` resolves, then stops accepting and
/// gives open connections up to `grace` to finish their requests (HTTP/1
/// connections close after the current response, HTTP/2 ones get GOAWAY).
pub(crate) async fn serve<H, F>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    handler: H,
    shutdown: impl Future<Output = &'static str>,
    grace: Duration,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let request_ids = Arc::new(AtomicU64::new(1));
    tokio::pin!(shutdown);

    let signal = loop {
        tokio::select! {
            signal = &mut shutdown => break signal,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let connection = Connection {
                        peer,
                        tls: tls.is_some(),
                        builder: builder.clone(),
                        watcher: graceful.watcher(),
                        request_ids: Arc::clone(&request_ids),
                    };
                    let handler = handler.clone();
                    match tls.clone() {
                        None => {
                            tokio::spawn(connection.serve(stream, handler));
                        }
                        Some(acceptor) => {
                            tokio::spawn(connection.serve_tls(acceptor, stream, handler));
                        }
                    }
                }
                Err(err) => {
                    warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
            },
        }
    };

    // Closing the listener first makes new connections fail fast (a load
    // balancer retries them elsewhere) while old ones drain.
    drop(listener);
    info!(
        signal,
        open_connections = graceful.count(),
        grace_seconds = grace.as_secs_f32(),
        "shutting down: no new connections, waiting for in-flight requests"
    );
    match tokio::time::timeout(grace, graceful.shutdown()).await {
        Ok(()) => info!("all connections closed, shut down cleanly"),
        Err(_) => warn!(
            grace_seconds = grace.as_secs_f32(),
            "grace period over, closing the remaining connections"
        ),
    }
}

/// One accepted connection and what it needs to be served.
struct Connection {
    peer: SocketAddr,
    /// Served over TLS (`Secure` cookies, `https` callback URL).
    tls: bool,
    builder: auto::Builder<TokioExecutor>,
    watcher: Watcher,
    request_ids: Arc<AtomicU64>,
}

impl Connection {
    async fn serve_tls<H, F>(self, acceptor: TlsAcceptor, stream: tokio::net::TcpStream, handler: H)
    where
        H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Response<Body>> + Send + 'static,
    {
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => self.serve(stream, handler).await,
            Ok(Err(err)) => debug!(peer = %self.peer, error = %err, "TLS handshake failed"),
            Err(_) => debug!(peer = %self.peer, "TLS handshake timed out"),
        }
    }

    async fn serve<I, H, F>(self, io: I, handler: H)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Response<Body>> + Send + 'static,
    {
        let peer = self.peer;
        let tls = self.tls;
        let request_ids = self.request_ids;
        let service = service_fn(move |mut request: Request<Incoming>| {
            let id = request_ids.fetch_add(1, Ordering::Relaxed);
            // The path only: a query may hold an OAuth code or state.
            // `cluster` and `user` are recorded by the handlers once known
            // (never a token).
            let span = tracing::info_span!(
                "request",
                id,
                method = %request.method(),
                path = %request.uri().path(),
                cluster = tracing::field::Empty,
                user = tracing::field::Empty,
            );
            // The proxy appends the peer to X-Forwarded-For; handlers need
            // to know whether the browser came over TLS.
            request.extensions_mut().insert(ClientAddr(peer));
            request.extensions_mut().insert(ConnectionInfo { tls });
            let response = handler(request);
            async move {
                let started = Instant::now();
                let response = response.await;
                debug!(
                    status = response.status().as_u16(),
                    elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                    "request finished"
                );
                Ok::<_, Infallible>(response)
            }
            .instrument(span)
        });
        let connection = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(io), service)
            .into_owned();
        if let Err(err) = self.watcher.watch(connection).await {
            // Clients hang up mid-request all the time; not an error of ours.
            debug!(peer = %peer, error = %err, "connection ended with an error");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::respond;
    use http::StatusCode;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::{mpsc, oneshot};

    const TEST_TIMEOUT: Duration = Duration::from_secs(10);

    async fn get(addr: SocketAddr, path: &str) -> io::Result<String> {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        Ok(response)
    }

    type BoxedResponse = std::pin::Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

    /// A handler that reports when a request arrived and answers only when
    /// released, to hold a request in flight across the shutdown signal.
    struct Gated {
        arrived: mpsc::Receiver<()>,
        gate: Arc<tokio::sync::Semaphore>,
    }

    fn gated_handler() -> (
        impl Fn(Request<Incoming>) -> BoxedResponse + Clone + Send + Sync + 'static,
        Gated,
    ) {
        let (arrived_tx, arrived) = mpsc::channel(8);
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let handler_gate = Arc::clone(&gate);
        let handler = move |_request: Request<Incoming>| {
            let arrived = arrived_tx.clone();
            let gate = Arc::clone(&handler_gate);
            Box::pin(async move {
                let _ = arrived.send(()).await;
                let _permit = gate.acquire().await;
                respond::text(StatusCode::OK, "finished")
            }) as BoxedResponse
        };
        (handler, Gated { arrived, gate })
    }

    /// `serve` on a loopback port with a gated handler, stopped by `stop`.
    struct Running {
        addr: SocketAddr,
        gated: Gated,
        stop: oneshot::Sender<()>,
        server: tokio::task::JoinHandle<()>,
    }

    async fn start(grace: Duration) -> Running {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (handler, gated) = gated_handler();
        let (stop, stop_rx) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stop_rx.await;
            "test"
        };
        let server = tokio::spawn(serve(listener, None, handler, shutdown, grace));
        Running {
            addr,
            gated,
            stop,
            server,
        }
    }

    #[tokio::test]
    async fn in_flight_requests_finish_after_the_shutdown_signal() {
        let Running {
            addr,
            gated: Gated { mut arrived, gate },
            stop: stop_tx,
            server,
        } = start(TEST_TIMEOUT).await;

        let in_flight = tokio::spawn(get(addr, "/slow"));
        tokio::time::timeout(TEST_TIMEOUT, arrived.recv())
            .await
            .unwrap()
            .unwrap();
        stop_tx.send(()).unwrap();

        // The listener closes: new connections are refused...
        let refused = tokio::time::timeout(TEST_TIMEOUT, async {
            loop {
                if tokio::net::TcpStream::connect(addr).await.is_err() {
                    break;
                }
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert!(refused.is_ok(), "listener still accepting after shutdown");
        assert!(
            !server.is_finished(),
            "server must wait for the in-flight request"
        );

        // ...while the request in flight still gets its answer.
        gate.add_permits(1);
        let response = tokio::time::timeout(TEST_TIMEOUT, in_flight)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        assert!(response.ends_with("finished"), "{response}");
        tokio::time::timeout(TEST_TIMEOUT, server)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn the_grace_period_bounds_a_stuck_request() {
        let Running {
            addr,
            gated: Gated { mut arrived, .. },
            stop: stop_tx,
            server,
        } = start(Duration::from_millis(50)).await;
        let _stuck = tokio::spawn(get(addr, "/stuck"));
        tokio::time::timeout(TEST_TIMEOUT, arrived.recv())
            .await
            .unwrap()
            .unwrap();
        stop_tx.send(()).unwrap();
        // Returns although the handler never answers.
        tokio::time::timeout(TEST_TIMEOUT, server)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn binds_loopback_and_names_the_address_when_taken() {
        let listener = bind(&ListenSettings {
            host: Some("127.0.0.1".to_owned()),
            port: 0,
        })
        .await
        .unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(addr.ip().is_loopback());
        // The same port again is a Bind error naming the address.
        let err = bind(&ListenSettings {
            host: Some("127.0.0.1".to_owned()),
            port: addr.port(),
        })
        .await
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("cannot listen on 127.0.0.1:{}", addr.port())),
            "{err}"
        );
    }
}
