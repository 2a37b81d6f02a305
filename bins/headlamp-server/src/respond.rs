//! Response helpers: the one place an error becomes an HTTP response.
//!
//! API errors are Kubernetes `Status` JSON (what kubectl and the Headlamp
//! frontend know how to show); plain text is only for `/healthz`-style
//! probes.

use bytes::Bytes;
use headlamp_core::Status;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};

/// Error type of response bodies: a proxied stream can fail mid-way.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every response body: fixed bytes today, streamed upstream bodies later.
pub(crate) type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A body of fixed bytes.
pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A `text/plain` response that must not be cached (probes, short notes).
pub(crate) fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A Kubernetes `Status` error response.
pub(crate) fn status(status: &Status) -> Response<Body> {
    status
        .to_response::<Full<Bytes>>()
        .map(|body| body.map_err(|never| match never {}).boxed_unsync())
}

/// 404 for a path no route serves (the path is the caller's own input, safe
/// to echo; the query is not included).
pub(crate) fn not_found(path: &str) -> Response<Body> {
    status(&Status::not_found(format!("no route for {path}")))
}

/// 405 for a known path with the wrong method.
pub(crate) fn method_not_allowed(
    method: &http::Method,
    path: &str,
    allowed: &'static str,
) -> Response<Body> {
    let mut response = status(&Status::failure(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!("{method} is not allowed on {path}; use {allowed}"),
    ));
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allowed));
    response
}
