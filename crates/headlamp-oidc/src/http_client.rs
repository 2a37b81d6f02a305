//! The HTTP client every request to the IdP goes through.
//!
//! One hyper-util client over hyper-rustls (aws-lc-rs), shared by discovery,
//! JWKS and token requests of one issuer, so TLS settings, timeouts and the
//! response size limit are applied in exactly one place. It never follows
//! redirects: the OpenID Connect endpoints are absolute URLs from the
//! discovery document, and a redirect on the token endpoint would replay the
//! client secret and authorization code to wherever it points
//! ([RFC 6749 section 3.2](https://www.rfc-editor.org/rfc/rfc6749#section-3.2):
//! the token endpoint is a direct back-channel request).
//!
//! It also implements openidconnect's [`AsyncHttpClient`], so an embedder
//! can drive openidconnect's typed API (for example
//! `CoreProviderMetadata::discover_async`) over the same transport.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use headlamp_core::insecure_tls::InsecureSkipVerify;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use openidconnect::AsyncHttpClient;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::OidcError;

/// How the IdP's TLS certificate is checked.
#[derive(Clone, Default)]
pub struct IdpTls {
    /// PEM bundle that replaces the public web roots (like kubectl's and
    /// Headlamp's `idp-certificate-authority`, which build a fresh pool),
    /// with a name for error messages (file path or kubeconfig key).
    pub ca_pem: Option<(String, Vec<u8>)>,
    /// Accept any certificate. Only for throw-away test setups: anyone on
    /// the network path can then impersonate the IdP and mint sessions.
    pub insecure_skip_verify: bool,
}

impl std::fmt::Debug for IdpTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdpTls")
            .field("ca_pem", &self.ca_pem.as_ref().map(|(name, _)| name))
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .finish()
    }
}

/// Timeouts and limits for IdP requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout (connect, TLS, headers and body).
    pub request_timeout: Duration,
    /// Largest response body accepted. Discovery documents and JWKS are a
    /// few kilobytes; the limit stops a broken or hostile endpoint from
    /// filling memory.
    pub max_response_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
            max_response_bytes: 1024 * 1024,
        }
    }
}

/// An HTTP(S) client for talking to one IdP.
#[derive(Clone)]
pub struct IdpHttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    limits: HttpLimits,
}

impl std::fmt::Debug for IdpHttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdpHttpClient")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl IdpHttpClient {
    /// Builds a client. Fails only on an unusable CA bundle.
    pub fn new(tls: &IdpTls, limits: HttpLimits) -> Result<Self, OidcError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| OidcError::setting("TLS", e.to_string()))?;
        let config = if tls.insecure_skip_verify {
            tracing::warn!(
                "OIDC: TLS certificate verification of the IdP is DISABLED \
                 (oidc-skip-tls-verify); anyone on the network path can impersonate the IdP and \
                 sign users in as anyone. Use oidc-ca-file instead outside of throw-away tests."
            );
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(InsecureSkipVerify::new(provider)))
                .with_no_client_auth()
        } else {
            let mut roots = rustls::RootCertStore::empty();
            match &tls.ca_pem {
                Some((name, pem)) => add_pem_roots(&mut roots, name, pem)?,
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(limits.connect_timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Ok(Self { client, limits })
    }

    /// The limits this client applies.
    pub fn limits(&self) -> HttpLimits {
        self.limits
    }

    /// Sends one request and reads the whole (size-limited) body. Any HTTP
    /// status is returned as a response; only transport failures are errors.
    pub async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Bytes>, OidcError> {
        let url = redacted_url(request.uri());
        let (parts, body) = request.into_parts();
        let request = http::Request::from_parts(parts, Full::new(Bytes::from(body)));
        let limit = self.limits.max_response_bytes;
        let exchange = async {
            let response =
                self.client
                    .request(request)
                    .await
                    .map_err(|e| OidcError::IdpUnreachable {
                        url: url.clone(),
                        reason: error_chain(&e),
                    })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, limit).collect().await.map_err(|e| {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    OidcError::ResponseTooLarge {
                        url: url.clone(),
                        limit,
                    }
                } else {
                    OidcError::IdpUnreachable {
                        url: url.clone(),
                        reason: format!("reading the response failed: {e}"),
                    }
                }
            })?;
            Ok(http::Response::from_parts(parts, body.to_bytes()))
        };
        match tokio::time::timeout(self.limits.request_timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(OidcError::IdpUnreachable {
                url,
                reason: format!(
                    "no complete answer within {:?}",
                    self.limits.request_timeout
                ),
            }),
        }
    }
}

impl<'c> AsyncHttpClient<'c> for IdpHttpClient {
    type Error = OidcError;
    type Future =
        Pin<Box<dyn Future<Output = Result<openidconnect::HttpResponse, OidcError>> + Send + 'c>>;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let response = self.send(request).await?;
            let (parts, body) = response.into_parts();
            Ok(http::Response::from_parts(parts, body.to_vec()))
        })
    }
}

fn add_pem_roots(
    roots: &mut rustls::RootCertStore,
    name: &str,
    pem: &[u8],
) -> Result<(), OidcError> {
    let invalid = |reason: String| OidcError::InvalidCaCertificate {
        source_name: name.to_owned(),
        reason,
    };
    let mut added = 0usize;
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| invalid(format!("not valid PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| invalid(format!("not a usable CA certificate: {e}")))?;
        added += 1;
    }
    if added == 0 {
        return Err(invalid(
            "it holds no \"-----BEGIN CERTIFICATE-----\" block".to_owned(),
        ));
    }
    Ok(())
}

/// The URL without query or fragment, for error messages: authorization
/// codes and tokens never travel in IdP request URLs we build, but an
/// operator-supplied URL might carry a secret in its query.
pub(crate) fn redacted_url(uri: &http::Uri) -> String {
    match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => format!("{scheme}://{authority}{}", uri.path()),
        _ => uri.path().to_owned(),
    }
}

/// "outer: inner: innermost", so "connection refused" survives hyper's
/// generic "client error (Connect)".
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        source = inner.source();
    }
    text
}
