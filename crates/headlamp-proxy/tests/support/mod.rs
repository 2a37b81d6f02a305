//! Small in-process peers for the proxy's own tests: an upstream that
//! records what reached it (plain HTTP or TLS with its own CA), and the
//! proxy served by hyper on 127.0.0.1 the way an embedder serves it.
// Test helpers: a panic here is a failed test with a backtrace.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use headlamp_core::{Authenticate, AuthenticationError, BearerToken, Identity};
use headlamp_proxy::{ClientAddr, KubeProxy};
use http::{HeaderMap, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower::ServiceExt;

/// What reached the upstream.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: http::Method,
    pub uri: String,
    pub version: Version,
    pub headers: HeaderMap,
}

/// An upstream API server stand-in.
pub struct Upstream {
    pub addr: SocketAddr,
    pub recorded: Arc<Mutex<Vec<Recorded>>>,
    /// Releases the second event of `/stream`.
    pub release: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    pub fn requests(&self) -> Vec<Recorded> {
        self.recorded.lock().unwrap().clone()
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn full(text: impl Into<Bytes>) -> Body {
    Full::new(text.into()).boxed()
}

async fn handle(
    mut req: Request<Incoming>,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    release: Arc<Notify>,
) -> Result<Response<Body>, Infallible> {
    recorded.lock().unwrap().push(Recorded {
        method: req.method().clone(),
        uri: req.uri().to_string(),
        version: req.version(),
        headers: req.headers().clone(),
    });
    let path = req.uri().path().to_owned();
    if let Some(protocol) = req.headers().get(http::header::UPGRADE).cloned() {
        // Echo every byte back once switched, like an exec of `cat`.
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = on.await {
                let mut io = TokioIo::new(upgraded);
                let (mut r, mut w) = tokio::io::split(&mut io);
                let _ = tokio::io::copy(&mut r, &mut w).await;
            }
        });
        return Ok(Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "Upgrade")
            .header("upgrade", protocol)
            .body(full(""))
            .unwrap());
    }
    if path.ends_with("/stream") {
        // First event now, the second only once the test has seen the first.
        let stream = futures_util::stream::unfold(0u8, move |step| {
            let release = release.clone();
            async move {
                match step {
                    0 => Some((
                        Ok::<_, Infallible>(Frame::data(Bytes::from("event-1\n"))),
                        1,
                    )),
                    1 => {
                        release.notified().await;
                        Some((Ok(Frame::data(Bytes::from("event-2\n"))), 2))
                    }
                    _ => None,
                }
            }
        });
        return Ok(Response::new(StreamBody::new(stream).boxed()));
    }
    if path.ends_with("/html-with-cookie") {
        // What a Service behind `services/<name>/proxy/` can answer.
        return Ok(Response::builder()
            .header("content-type", "text/html")
            .header(
                "set-cookie",
                "headlamp-auth-test.0=planted; Path=/clusters/test",
            )
            .header("set-cookie", "session=x; Path=/")
            .body(full(
                "<script>fetch('/clusters/test/api/v1/secrets')</script>",
            ))
            .unwrap());
    }
    if path.ends_with("/unauthorized") {
        return Ok(Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header("content-type", "application/json")
            .header("connection", "close")
            .body(full(
                r#"{"kind":"Status","code":401,"reason":"Unauthorized","message":"from upstream"}"#,
            ))
            .unwrap());
    }
    // Echo the request body so streaming uploads are visible.
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    Ok(Response::builder()
        .header("content-type", "application/json")
        .header("keep-alive", "timeout=5")
        .header("x-upstream-version", format!("{:?}", version_of(&recorded)))
        .body(full(body))
        .unwrap())
}

fn version_of(recorded: &Arc<Mutex<Vec<Recorded>>>) -> Version {
    recorded
        .lock()
        .unwrap()
        .last()
        .map(|r| r.version)
        .unwrap_or_default()
}

/// Starts an upstream; with `tls`, it serves HTTPS (ALPN h2 and http/1.1).
pub async fn start_upstream(tls: Option<Arc<rustls::ServerConfig>>) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let release = Arc::new(Notify::new());
    let (rec, rel) = (recorded.clone(), release.clone());
    let task = tokio::spawn(async move {
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (rec, rel, acceptor) = (rec.clone(), rel.clone(), acceptor.clone());
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(move |req| handle(req, rec.clone(), rel.clone()));
                let builder = auto::Builder::new(TokioExecutor::new());
                match acceptor {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(tcp).await {
                            let _ = builder
                                .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                                .await;
                        }
                    }
                    None => {
                        let _ = builder
                            .serve_connection_with_upgrades(TokioIo::new(tcp), svc)
                            .await;
                    }
                }
            });
        }
    });
    Upstream {
        addr,
        recorded,
        release,
        task,
    }
}

/// A CA and a server certificate for 127.0.0.1 issued by it.
pub struct Pki {
    pub ca_pem: String,
    pub server_config: Arc<rustls::ServerConfig>,
}

pub fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "apiserver.test".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Pki {
        ca_pem: ca.pem(),
        server_config: Arc::new(config),
    }
}

/// Writes a kubeconfig with one context per `(name, server, extra cluster
/// YAML)` entry, all using a user with `token`.
pub fn kubeconfig(dir: &Path, token: &str, contexts: &[(&str, &str, &str)]) -> PathBuf {
    let mut yaml = String::from("apiVersion: v1\nkind: Config\nclusters:\n");
    for (name, server, extra) in contexts {
        yaml.push_str(&format!(
            "- name: {name}\n  cluster:\n    server: {server:?}\n"
        ));
        for line in extra.lines().filter(|l| !l.trim().is_empty()) {
            yaml.push_str(&format!("    {line}\n"));
        }
    }
    yaml.push_str(&format!(
        "users:\n- name: sa\n  user:\n    token: {token:?}\ncontexts:\n"
    ));
    for (name, _, _) in contexts {
        yaml.push_str(&format!(
            "- name: {name}\n  context: {{ cluster: {name}, user: sa }}\n"
        ));
    }
    let path = dir.join("kubeconfig.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Serves the proxy on 127.0.0.1 with upgrades, inserting [`ClientAddr`].
pub async fn serve_proxy<A: Authenticate>(
    proxy: KubeProxy<A>,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, peer)) = listener.accept().await else {
                return;
            };
            let proxy = proxy.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                    req.extensions_mut().insert(ClientAddr(peer));
                    proxy.clone().oneshot(req)
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    (addr, task)
}

/// Accepts `alice-token` as alice (groups dev, ops); `slow-idp` cannot be
/// checked; everything else is refused.
#[derive(Clone)]
pub struct FakeAuthenticator;

impl Authenticate for FakeAuthenticator {
    async fn authenticate(&self, token: &BearerToken) -> Result<Identity, AuthenticationError> {
        match token.expose() {
            "alice-token" => Ok(Identity::new(
                "alice",
                None,
                vec!["dev".into(), "ops".into()],
                Default::default(),
            )
            .map_err(|e| AuthenticationError::rejected(e.to_string()))?),
            "slow-idp" => Err(AuthenticationError::unavailable(
                "the IdP's keys cannot be fetched",
            )),
            _ => Err(AuthenticationError::rejected("token signature is invalid")),
        }
    }
}

/// A plain HTTP/1.1 client for the proxy.
pub fn client() -> hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
> {
    hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http()
}

pub async fn body_json(response: Response<Incoming>) -> serde_json::Value {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()))
}
