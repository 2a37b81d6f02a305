//! Sends the request to the cluster's API server and streams the answer
//! back: bodies pass through frame by frame (a watch delivers each event as
//! the API server writes it), and a `101 Switching Protocols` answer turns
//! the two connections into one byte tunnel (WebSocket and SPDY/3.1, as
//! kubectl and Headlamp use for exec, attach and port-forward).

use std::future::Future;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::body::ProxyBody;
use crate::error::{ProxyError, classify_upstream_error, error_chain};
use crate::route::{Target, join_path};
use crate::sanitize::{is_upgrade, strip_hop_by_hop};

/// The address of the client that sent the request, set by the embedding
/// server as a request extension; appended to `X-Forwarded-For`.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

/// The innermost service.
pub(crate) struct Forward<B>(PhantomData<fn(B)>);

impl<B> Forward<B> {
    pub(crate) fn new() -> Self {
        Self(PhantomData)
    }
}

impl<B> Clone for Forward<B> {
    fn clone(&self) -> Self {
        Self(PhantomData)
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<B> tower::Service<Request<B>> for Forward<B>
where
    B: http_body::Body + Send + Sync + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = BoxFuture<Result<Response<ProxyBody>, ProxyError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The pooled clients queue internally; there is nothing to wait for.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        Box::pin(forward(req))
    }
}

async fn forward<B>(mut req: Request<B>) -> Result<Response<ProxyBody>, ProxyError>
where
    B: http_body::Body + Send + Sync + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Some(target) = req.extensions_mut().remove::<Target<B>>() else {
        return Err(ProxyError::NotAClusterPath {
            path: req.uri().path().to_owned(),
            base: String::new(),
        });
    };
    let cluster = &target.cluster;
    let upstream = cluster
        .upstream
        .as_ref()
        .map_err(|reason| ProxyError::ClusterUnavailable {
            name: cluster.info.name.clone(),
            reason: reason.clone(),
        })?;

    let path = join_path(&upstream.path_prefix, &target.rest, req.uri().query());
    let uri = Uri::builder()
        .scheme(upstream.scheme.clone())
        .authority(upstream.authority.clone())
        .path_and_query(path)
        .build()
        .map_err(|e| ProxyError::NotAClusterPath {
            path: format!("{} ({e})", req.uri().path()),
            base: String::new(),
        })?;
    *req.uri_mut() = uri;
    // The pooled client picks HTTP/2 or HTTP/1.1 per connection; it refuses
    // an HTTP/2-versioned request on an HTTP/1.1 connection, so start at 1.1.
    *req.version_mut() = Version::HTTP_11;
    // hyper sets Host (HTTP/1.1) or :authority (HTTP/2) from the URI.
    req.headers_mut().remove(header::HOST);
    append_forwarded_for(&mut req);

    let upgrade = is_upgrade(req.headers());
    let downstream_upgrade: Option<OnUpgrade> = upgrade.then(|| hyper::upgrade::on(&mut req));
    let client = if upgrade {
        &upstream.upgrade_client
    } else {
        &upstream.client
    };
    let mut response = client.request(req).await.map_err(|e| {
        classify_upstream_error(
            &e,
            &cluster.info.name,
            &upstream.server,
            upstream.connect_timeout,
        )
    })?;

    let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    strip_hop_by_hop(response.headers_mut(), switching && upgrade);
    if !switching {
        confine_to_sandbox(response.headers_mut());
    }
    if let (true, Some(downstream)) = (switching, downstream_upgrade) {
        let upstream_io = hyper::upgrade::on(&mut response);
        let name = cluster.info.name.clone();
        tokio::spawn(tunnel(name, downstream, upstream_io));
    }
    Ok(response.map(ProxyBody::upstream))
}

/// Keeps an upstream answer from acting as one of our pages. Through
/// `services/<name>/proxy/`, `pods/<name>/proxy/` and aggregated APIs, any
/// workload in the cluster answers on our origin, where the token cookie is
/// ambient: its HTML must not run script with our origin's rights
/// (`Content-Security-Policy: sandbox` gives the document an opaque origin,
/// CSP Level 3 section 6.3.2; `fetch` readers such as the frontend are
/// unaffected), it must not be sniffed into HTML, and it must not set
/// cookies on our origin (a planted token, or a tossed session).
/// kube-apiserver itself never sets cookies.
fn confine_to_sandbox(headers: &mut header::HeaderMap) {
    headers.remove(header::SET_COOKIE);
    // Appended: every policy present is enforced, the upstream's included.
    headers.append(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// `X-Forwarded-For: <existing>, <client>` (the de-facto header; RFC 7239
/// `Forwarded` is not read by kube-apiserver's audit log, XFF is).
fn append_forwarded_for<B>(req: &mut Request<B>) {
    let Some(ClientAddr(addr)) = req.extensions().get::<ClientAddr>().copied() else {
        return;
    };
    let ip = addr.ip().to_string();
    let value = match req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
    {
        Some(existing) if !existing.trim().is_empty() => format!("{existing}, {ip}"),
        _ => ip,
    };
    if let Ok(value) = HeaderValue::try_from(value) {
        req.headers_mut().insert("x-forwarded-for", value);
    }
}

/// Copies bytes both ways until both directions are finished: when one side
/// closes its sending half, the other side's writer is shut down and the
/// opposite direction keeps flowing (kubectl closes stdin before reading
/// the last output).
async fn tunnel(cluster: String, downstream: OnUpgrade, upstream: OnUpgrade) {
    let (downstream, upstream) = match tokio::try_join!(downstream, upstream) {
        Ok(both) => both,
        Err(e) => {
            tracing::debug!(%cluster, error = %error_chain(&e), "upgrade did not complete");
            return;
        }
    };
    let mut downstream = TokioIo::new(downstream);
    let mut upstream = TokioIo::new(upstream);
    match tokio::io::copy_bidirectional(&mut downstream, &mut upstream).await {
        Ok((sent, received)) => {
            tracing::debug!(%cluster, sent, received, "upgraded connection closed");
        }
        Err(e) => tracing::debug!(%cluster, error = %e, "upgraded connection ended with an error"),
    }
}
