//! A small HTTP client for the test bed's own requests to the IdP (and to
//! `headlamp-server` in e2e tests): hyper-util's pooled client over plain
//! HTTP, or HTTPS with the roots a test gives it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;

use crate::TestBedError;

/// One request's bound: the peers are on loopback, so anything slower is a
/// hang worth failing on.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Responses larger than this are cut (an IdP page or token response is a
/// few kilobytes; this only bounds a misbehaving peer).
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// A response read to its end.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl HttpResponse {
    /// The body as text (lossy), for page scraping and error messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first at most 600 characters of the body, for error messages.
    pub fn excerpt(&self) -> String {
        let text = self.text();
        match text.char_indices().nth(600) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text,
        }
    }
}

/// A pooled HTTP/1.1 client for `http://` and (with [`HttpClient::with_roots`])
/// `https://` URLs.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl HttpClient {
    /// A client for plain `http://` URLs (an `https://` URL fails its TLS
    /// handshake: no root is trusted).
    pub fn new() -> Result<Self, TestBedError> {
        Self::with_roots(std::iter::empty())
    }

    /// A client that also speaks HTTPS, trusting only `roots` (e.g. the test
    /// CA of a TLS-serving `headlamp-server`).
    pub fn with_roots(
        roots: impl IntoIterator<Item = CertificateDer<'static>>,
    ) -> Result<Self, TestBedError> {
        let mut store = rustls::RootCertStore::empty();
        for root in roots {
            store.add(root).map_err(|source| TestBedError::Tls {
                what: "the test HTTP client's trusted roots".to_owned(),
                source,
            })?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|source| TestBedError::Tls {
                what: "the test HTTP client".to_owned(),
                source,
            })?
            .with_root_certificates(store)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let inner = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self { inner })
    }

    /// Sends `request` and reads the whole response; `context` names the
    /// step for error messages (e.g. "fetching the IdP discovery document").
    pub async fn send(
        &self,
        request: Request<Full<Bytes>>,
        context: &str,
    ) -> Result<HttpResponse, TestBedError> {
        let target = format!(
            "{} {}",
            request.method(),
            strip_query(&request.uri().to_string())
        );
        let exchange = async {
            let response =
                self.inner
                    .request(request)
                    .await
                    .map_err(|source| TestBedError::Http {
                        context: format!("{context} ({target})"),
                        source: Box::new(source),
                    })?;
            let (parts, body) = response.into_parts();
            let limited = http_body_util::Limited::new(body, MAX_BODY_BYTES);
            let body = limited
                .collect()
                .await
                .map_err(|source| TestBedError::Http {
                    context: format!("{context} ({target}): reading the body"),
                    source,
                })?
                .to_bytes();
            Ok(HttpResponse {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_elapsed| TestBedError::Timeout {
                what: format!("{context} ({target})"),
                after: REQUEST_TIMEOUT,
                logs: String::new(),
            })?
    }
}

/// A URL without its query: queries carry codes and tokens, which stay out
/// of error messages.
pub(crate) fn strip_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}
