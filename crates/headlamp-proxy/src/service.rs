//! [`KubeProxy`], its builder, and the request path as one stack of layers.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::{Either, Ready};
use headlamp_core::{Authenticate, Clock, SystemClock};
use http::{Request, Response};
use tower::ServiceBuilder;

use crate::authenticate::{AuthenticateLayer, AuthenticateService, ProxyMode};
use crate::body::ProxyBody;
use crate::cluster::{self, ClusterInfo, ClusterSources};
use crate::error::{ProxyError, rescue};
use crate::forward::Forward;
use crate::route::{Cluster, ClusterTable, Route, RouteLayer};
use crate::sanitize::{Sanitize, SanitizeLayer, token_cookie_base};
use crate::upstream::{Timeouts, Upstream};

/// The inner stack, innermost last.
type Stack<A, B> = Route<Sanitize<AuthenticateService<Forward<B>, A>>, B>;

/// The request path, outermost first. Each layer sees the request after the
/// ones above it.
fn stack<A: Authenticate, B>(table: Arc<ClusterTable<B>>, mode: Arc<ProxyMode<A>>) -> Stack<A, B>
where
    B: http_body::Body + Send + Sync + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    ServiceBuilder::new()
        // First find the cluster: the token cookie's name, the credentials
        // and the upstream all depend on it, and an unknown cluster or a
        // `..` path must be refused before anything else is read.
        .layer(RouteLayer::new(table))
        // Then take off everything the client must not control upstream
        // (hop-by-hop headers, Impersonate-*, our cookies, the bearer
        // subprotocol, Authorization), keeping the credentials aside. Being
        // before authentication, no later layer can forget to strip them.
        .layer(SanitizeLayer)
        // Choose the token and set the upstream credentials: the user's token
        // (passthrough) or ours plus Impersonate-* for the verified identity.
        // In impersonate mode a refused token stops here, so the API server
        // is never contacted for it.
        .layer(AuthenticateLayer::new(mode))
        // Finally, send it and stream the answer (and any upgrade) back.
        .service(Forward::new())
}

/// The Kubernetes API proxy as a `tower::Service`.
///
/// Serves `[base]/clusters/{name}/{API path}`; every error is answered as a
/// Kubernetes `Status` (so `Error` is [`Infallible`]). Serve it with
/// hyper's `serve_connection_with_upgrades` (or `.with_upgrades()`) so
/// exec, attach and port-forward can switch protocols. See
/// `examples/mount.rs`.
pub struct KubeProxy<A, B = hyper::body::Incoming> {
    inner: Stack<A, B>,
    table: Arc<ClusterTable<B>>,
}

impl<A, B> Clone for KubeProxy<A, B> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            table: self.table.clone(),
        }
    }
}

impl<A, B> KubeProxy<A, B> {
    /// The clusters, in load order (in-cluster first, then kubeconfig
    /// contexts), including those that failed to load.
    pub fn clusters(&self) -> impl Iterator<Item = &ClusterInfo> {
        self.table.clusters.iter().map(|c| &c.info)
    }

    /// One cluster by name.
    pub fn cluster(&self, name: &str) -> Option<&ClusterInfo> {
        self.table.by_name.get(name).map(|c| &c.info)
    }
}

impl<A: Authenticate> KubeProxy<A> {
    /// Starts a builder for the given mode.
    pub fn builder(mode: ProxyMode<A>) -> KubeProxyBuilder<A> {
        KubeProxyBuilder {
            mode,
            sources: ClusterSources::default(),
            base_path: String::new(),
            timeouts: Timeouts {
                connect: Duration::from_secs(10),
                pool_idle: Duration::from_secs(90),
            },
            clock: Arc::new(SystemClock),
        }
    }
}

/// Builds a [`KubeProxy`].
pub struct KubeProxyBuilder<A> {
    mode: ProxyMode<A>,
    sources: ClusterSources,
    base_path: String,
    timeouts: Timeouts,
    clock: Arc<dyn Clock>,
}

impl<A: Authenticate> KubeProxyBuilder<A> {
    /// Where clusters come from.
    pub fn clusters(mut self, sources: ClusterSources) -> Self {
        self.sources = sources;
        self
    }

    /// The path before `/clusters/` (Headlamp's `-base-url`, e.g. `/headlamp`).
    pub fn base_path(mut self, base: impl Into<String>) -> Self {
        self.base_path = base.into().trim_end_matches('/').to_owned();
        self
    }

    /// Deadline for TCP connect plus TLS handshake (default 10 s); past it
    /// the request is answered 504.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.connect = timeout;
        self
    }

    /// How long an unused pooled connection stays open (default 90 s).
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.pool_idle = timeout;
        self
    }

    /// The clock token files are re-read by.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Loads the clusters and builds their clients. Fails only when a
    /// kubeconfig file cannot be read or parsed; a cluster that cannot be
    /// used is kept with its error.
    pub async fn build<B>(self) -> Result<KubeProxy<A, B>, ProxyError>
    where
        B: http_body::Body + Send + Sync + Unpin + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let impersonate = matches!(self.mode, ProxyMode::Impersonate { .. });
        let specs = cluster::load(&self.sources).await?;
        let mut clusters = Vec::with_capacity(specs.len());
        for spec in specs {
            let upstream = match spec.connection {
                Ok(connection) => {
                    Upstream::new(&connection, impersonate, self.timeouts, &self.clock).await
                }
                Err(e) => Err(e),
            };
            let mut info = spec.info;
            if let Err(e) = &upstream {
                tracing::warn!(cluster = %info.name, error = %e, "cluster cannot be used");
                info.error = Some(e.clone());
            }
            clusters.push(Arc::new(Cluster {
                cookie_prefix: format!("{}.", token_cookie_base(&info.name)),
                info,
                upstream,
            }));
        }
        let by_name: HashMap<_, _> = clusters
            .iter()
            .map(|c| (c.info.name.clone(), c.clone()))
            .collect();
        let table = Arc::new(ClusterTable {
            clusters,
            by_name,
            base_path: self.base_path,
        });
        Ok(KubeProxy {
            inner: stack(table.clone(), Arc::new(self.mode)),
            table,
        })
    }
}

impl<A, B> KubeProxy<A, B>
where
    A: Authenticate,
    B: http_body::Body + Send + Sync + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// Handles one request; the same as `tower::Service::call`, for callers
    /// that hold a shared `&KubeProxy` (e.g. inside `hyper::service::service_fn`).
    pub fn handle(&self, req: Request<B>) -> ResponseFuture {
        let mut inner = self.inner.clone();
        ResponseFuture {
            inner: tower::Service::call(&mut inner, req),
        }
    }
}

impl<A, B> tower::Service<Request<B>> for KubeProxy<A, B>
where
    A: Authenticate,
    B: http_body::Body + Send + Sync + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Every layer is always ready (the pooled client queues internally).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        ResponseFuture {
            inner: tower::Service::call(&mut self.inner, req),
        }
    }
}

type Outcome = Result<Response<ProxyBody>, ProxyError>;
type BoxFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;
/// The stack's future, spelled out: route may answer at once (`Ready`),
/// passthrough goes straight to forward (one box), impersonate awaits the
/// authenticator first (a second box).
type StackFuture = Either<Ready<Outcome>, Either<Either<Ready<Outcome>, BoxFuture>, BoxFuture>>;

/// The future of [`KubeProxy`]: the stack's future with every error
/// rescued into a `Status` response (the one place that happens).
pub struct ResponseFuture {
    inner: StackFuture,
}

impl std::fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResponseFuture")
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<ProxyBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.inner)
            .poll(cx)
            .map(|result| Ok(result.unwrap_or_else(|e| rescue(&e))))
    }
}
