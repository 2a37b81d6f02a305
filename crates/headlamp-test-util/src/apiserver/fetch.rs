//! A minimal HTTP(S) GET for OIDC discovery and JWKS documents, built on
//! hyper's client connection directly so the test API server shares no
//! code with headlamp-oidc (a bug there must not hide itself here).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Uri, header};
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_BODY: usize = 1 << 20;

/// GETs `url` and parses the 200 response as JSON. Errors are one-line
/// descriptions for the request log.
pub(crate) async fn get_json(
    url: &str,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<serde_json::Value, String> {
    tokio::time::timeout(TIMEOUT, get_json_inner(url, tls))
        .await
        .map_err(|_| format!("GET {url}: no answer within {TIMEOUT:?}"))?
}

async fn get_json_inner(
    url: &str,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<serde_json::Value, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("GET {url}: not a URL: {e}"))?;
    let host = uri
        .host()
        .ok_or_else(|| format!("GET {url}: the URL has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(format!("GET {url}: only http and https URLs are supported")),
    };
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("GET {url}: connect: {e}"))?;
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_else(|| host.clone());
    let request = Request::get(path)
        .header(header::HOST, authority)
        .header(header::ACCEPT, "application/json")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("GET {url}: {e}"))?;
    let (status, body) = if https {
        let config = match tls {
            Some(c) => Arc::clone(c),
            None => default_tls()?,
        };
        let name = ServerName::try_from(host.clone())
            .map_err(|e| format!("GET {url}: bad TLS server name: {e}"))?;
        let stream = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("GET {url}: TLS: {e}"))?;
        send(TokioIo::new(stream), request, url).await?
    } else {
        send(TokioIo::new(tcp), request, url).await?
    };
    if status != 200 {
        return Err(format!(
            "GET {url}: HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ));
    }
    serde_json::from_slice(&body).map_err(|e| format!("GET {url}: the body is not JSON: {e}"))
}

async fn send<I>(io: I, request: Request<Empty<Bytes>>, url: &str) -> Result<(u16, Bytes), String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("GET {url}: HTTP handshake: {e}"))?;
    let conn = tokio::spawn(conn);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = response.status().as_u16();
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("GET {url}: reading the body: {e}"))?
        .to_bytes();
    conn.abort();
    Ok((status, body))
}

/// HTTPS without a configured CA: nothing is trusted, as the test bed has
/// no business reaching a publicly trusted issuer.
fn default_tls() -> Result<Arc<rustls::ClientConfig>, String> {
    Err("an https issuer needs OidcOptions::ca_pem (the IdP's CA certificate)".to_owned())
}
