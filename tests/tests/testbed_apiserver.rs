//! Self-tests of the test Kubernetes API server
//! (`headlamp_test_util::apiserver::TestApiServer`): it must accept and
//! refuse tokens, impersonate and refuse impersonation, and serve
//! discovery, watches and exec exactly well enough that the real clients
//! (kubectl, curl, a WebSocket client) work against it.
//!
//! kubectl and curl come from Debian packages (`scripts/install-test-deps.sh`);
//! without them the tests that drive them fail saying so.
//!
//! Run one: `cargo test -p headlamp-e2e --test testbed_apiserver -- kubectl`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed step is a failed test, with its message"
)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use headlamp_test_util::TestBedError;
use headlamp_test_util::apiserver::{
    ApiServerOptions, ClientCertMode, Fault, OidcOptions, SERVICE_ACCOUNT_USER, TestApiServer,
    UserInfo,
};
use headlamp_test_util::idp::{TestIdp, TestIdpOptions, TestUser};
use headlamp_test_util::kubeconfig::KubeUser;
use headlamp_test_util::tls::TestPki;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

const CLIENT_ID: &str = "headlamp";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A minimal OpenID issuer for tests that need tokens with chosen claims
/// (expired, wrong audience, forged): discovery and JWKS over plain HTTP
/// on 127.0.0.1, RS256 keys generated at start.
struct TestIssuer {
    url: String,
    key: EncodingKey,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn rsa_key() -> EncodingKey {
    let pair = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        .unwrap();
    EncodingKey::from_rsa_pem(pair.serialize_pem().as_bytes()).unwrap()
}

impl TestIssuer {
    async fn start() -> Self {
        Self::start_with(None).await
    }

    /// An issuer served over HTTPS with a certificate from `pki`.
    async fn start_tls(pki: &TestPki) -> Self {
        let cert = pki.issue_server_cert("issuer", &["127.0.0.1"]).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert_der()], cert.key_der())
        .unwrap();
        Self::start_with(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}", listener.local_addr().unwrap());
        let key = rsa_key();
        let mut jwk =
            jsonwebtoken::jwk::Jwk::from_encoding_key(&key, jsonwebtoken::Algorithm::RS256)
                .unwrap();
        jwk.common.key_id = Some("k1".to_owned());
        let discovery = json!({
            "issuer": url,
            "jwks_uri": format!("{url}/jwks"),
            "authorization_endpoint": format!("{url}/auth"),
            "token_endpoint": format!("{url}/token"),
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
        })
        .to_string();
        let jwks = json!({ "keys": [jwk] }).to_string();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (discovery, jwks, tls) = (discovery.clone(), jwks.clone(), tls.clone());
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let body = match req.uri().path() {
                                "/.well-known/openid-configuration" => Some(discovery.clone()),
                                "/jwks" => Some(jwks.clone()),
                                _ => None,
                            };
                            async move {
                                let mut r = http::Response::new(Full::new(Bytes::from(
                                    body.clone().unwrap_or_default(),
                                )));
                                if body.is_none() {
                                    *r.status_mut() = StatusCode::NOT_FOUND;
                                }
                                Ok::<_, std::convert::Infallible>(r)
                            }
                        });
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                let io = hyper_util::rt::TokioIo::new(stream);
                                let _ = http.serve_connection(io, service).await;
                            }
                        }
                        None => {
                            let io = hyper_util::rt::TokioIo::new(tcp);
                            let _ = http.serve_connection(io, service).await;
                        }
                    }
                });
            }
        });
        Self { url, key, task }
    }

    fn sign_with(&self, key: &EncodingKey, claims: &Value) -> String {
        let mut header = Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some("k1".to_owned());
        jsonwebtoken::encode(&header, claims, key).unwrap()
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_with(&self.key, claims)
    }

    /// Claims of a valid ID token for `sub` with `groups`.
    fn claims(&self, sub: &str, groups: &[&str]) -> Value {
        json!({
            "iss": self.url, "aud": CLIENT_ID, "sub": sub, "groups": groups,
            "iat": now(), "exp": now() + 300, "email": format!("{sub}@example.com"),
        })
    }

    fn oidc_options(&self) -> OidcOptions {
        OidcOptions::new(self.url.clone(), CLIENT_ID)
    }
}

/// An HTTPS client trusting the test API server's CA.
struct ApiClient {
    client: Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        Full<Bytes>,
    >,
    base: String,
}

impl ApiClient {
    fn new(
        server: &TestApiServer,
        client_cert: Option<&headlamp_test_util::tls::IssuedCert>,
    ) -> Self {
        let mut tls = (*server.client_tls(client_cert).unwrap()).clone();
        // hyper-rustls sets ALPN itself.
        tls.alpn_protocols.clear();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .build();
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            base: server.url(),
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<(StatusCode, http::HeaderMap, Bytes), hyper_util::client::legacy::Error> {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let response = self
            .client
            .request(builder.body(Full::new(Bytes::from(body))).unwrap())
            .await?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Ok((status, headers, bytes))
    }

    async fn json(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        extra: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        if let Some(auth) = &auth {
            headers.push(("authorization", auth));
        }
        let (status, _, bytes) = self.send(method, path, &headers, body).await.unwrap();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    async fn whoami(&self, token: Option<&str>, extra: &[(&str, &str)]) -> (StatusCode, Value) {
        self.json(
            Method::POST,
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            token,
            extra,
            Some(json!({"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1"})),
        )
        .await
    }
}

fn unauthorized() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_tokens_are_verified_like_kube_apiserver() {
    let issuer = TestIssuer::start().await;
    let server = TestApiServer::start(ApiServerOptions::with_oidc(issuer.oidc_options()))
        .await
        .unwrap();
    let api = ApiClient::new(&server, None);

    let good = issuer.sign(&issuer.claims("alice", &["dev", "ops"]));
    let (status, review) = api.whoami(Some(&good), &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{review}");
    assert_eq!(review["kind"], "SelfSubjectReview");
    assert_eq!(review["apiVersion"], "authentication.k8s.io/v1");
    assert_eq!(
        review["status"]["userInfo"],
        json!({"username": "alice", "groups": ["dev", "ops", "system:authenticated"]})
    );

    let mut expired = issuer.claims("alice", &[]);
    expired["exp"] = json!(now() - 60);
    let mut wrong_audience = issuer.claims("alice", &[]);
    wrong_audience["aud"] = json!("someone-else");
    let mut no_audience = issuer.claims("alice", &[]);
    no_audience.as_object_mut().unwrap().remove("aud");
    let forged = issuer.sign_with(&rsa_key(), &issuer.claims("alice", &["system:masters"]));
    let cases = [
        ("expired", issuer.sign(&expired), "expired"),
        ("wrong audience", issuer.sign(&wrong_audience), "Audience"),
        ("no audience", issuer.sign(&no_audience), "aud"),
        ("forged", forged, "Signature"),
        ("garbage", "not-a-token".to_owned(), "invalid bearer token"),
    ];
    for (what, token, reason) in cases {
        server.request_log().clear();
        let (status, body) = api.whoami(Some(&token), &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert_eq!(body, unauthorized(), "{what}");
        let logged = server.requests();
        let error = logged[0].authentication_error.clone().unwrap_or_default();
        assert!(
            error.contains(reason),
            "{what}: logged reason {error:?} should mention {reason:?}"
        );
        assert!(
            !error.contains(&token),
            "{what}: the token must not be logged"
        );
        assert_eq!(logged[0].authenticated_user, None);
    }

    // No credentials at all: 401 everywhere but the health endpoints.
    let (status, body) = api
        .json(Method::GET, "/api/v1/namespaces", None, &[], None)
        .await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, unauthorized()));
    let (status, _, body) = api.send(Method::GET, "/readyz", &[], None).await.unwrap();
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"ok"[..]));
}

/// `--oidc-ca-file`: an https issuer is trusted through the given CA only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_issuer_needs_its_ca() {
    let idp_pki = TestPki::generate().unwrap();
    let issuer = TestIssuer::start_tls(&idp_pki).await;
    let token = issuer.sign(&issuer.claims("alice", &["dev"]));
    let reason_for = |server: &TestApiServer| {
        server.requests()[0]
            .authentication_error
            .clone()
            .unwrap_or_default()
    };

    let mut trusting = issuer.oidc_options();
    trusting.ca_pem = Some(idp_pki.ca_pem().to_owned());
    let server = TestApiServer::start(ApiServerOptions::with_oidc(trusting))
        .await
        .unwrap();
    let (status, review) = ApiClient::new(&server, None)
        .whoami(Some(&token), &[])
        .await;
    assert_eq!(status, StatusCode::CREATED, "{review}");

    // Another CA: the TLS handshake with the issuer fails, so the token is refused.
    let mut other_ca = issuer.oidc_options();
    other_ca.ca_pem = Some(TestPki::generate().unwrap().ca_pem().to_owned());
    let server = TestApiServer::start(ApiServerOptions::with_oidc(other_ca))
        .await
        .unwrap();
    let (status, _) = ApiClient::new(&server, None)
        .whoami(Some(&token), &[])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        reason_for(&server).contains("TLS"),
        "{}",
        reason_for(&server)
    );

    // No CA at all: refused, saying what is missing.
    let server = TestApiServer::start(ApiServerOptions::with_oidc(issuer.oidc_options()))
        .await
        .unwrap();
    let (status, _) = ApiClient::new(&server, None)
        .whoami(Some(&token), &[])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        reason_for(&server).contains("ca_pem"),
        "{}",
        reason_for(&server)
    );
}

/// Tokens from the real IdP (npm `oidc-provider`, logged in through its
/// form by the scripted login) are accepted with kube's claim mapping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_from_the_real_idp_are_accepted() {
    let mut idp = TestIdp::start(TestIdpOptions::new("http://127.0.0.1:9/oidc-callback"))
        .await
        .unwrap();
    // --oidc-username-claim=email --oidc-groups-claim=groups
    // --oidc-groups-prefix=oidc: (email usernames get no default prefix).
    let mut oidc = OidcOptions::new(idp.issuer(), idp.client_id()).username_claim("email");
    oidc.username_prefix = None;
    oidc.groups_prefix = Some("oidc:".to_owned());
    let server = TestApiServer::start(ApiServerOptions::with_oidc(oidc))
        .await
        .unwrap();
    let api = ApiClient::new(&server, None);

    let alice = idp.tokens_for(TestUser::Alice).await.unwrap();
    let (status, review) = api.whoami(Some(alice.id_token().unwrap()), &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{review}");
    assert_eq!(
        review["status"]["userInfo"],
        json!({"username": "alice@example.com", "groups": ["oidc:dev", "oidc:ops", "system:authenticated"]})
    );

    // The groups prefix keeps an IdP group named system:masters from
    // becoming the real one.
    let mallory = idp.tokens_for(TestUser::Mallory).await.unwrap();
    let (status, review) = api.whoami(Some(mallory.id_token().unwrap()), &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{review}");
    let groups = review["status"]["userInfo"]["groups"]
        .as_array()
        .unwrap()
        .clone();
    assert!(groups.contains(&json!("oidc:system:masters")), "{groups:?}");
    assert!(!groups.contains(&json!("system:masters")), "{groups:?}");

    // An unverified email cannot be a username.
    let erin = idp.tokens_for(TestUser::Erin).await.unwrap();
    server.request_log().clear();
    let (status, body) = api.whoami(Some(erin.id_token().unwrap()), &[]).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, unauthorized()));
    let reason = server.requests()[0].authentication_error.clone().unwrap();
    assert!(reason.contains("oidc: email not verified"), "{reason}");

    // The access token is not an ID token for this audience.
    let (status, _) = api.whoami(Some(&alice.access_token), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Key rotation: a token naming a key id the server has not seen makes
    // it re-fetch the JWKS; the old key is gone, so old tokens stop working.
    idp.restart_with_new_keys().await.unwrap();
    let rotated = idp.tokens_for(TestUser::Alice).await.unwrap();
    let (status, review) = api.whoami(Some(rotated.id_token().unwrap()), &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{review}");
    server.request_log().clear();
    let (status, _) = api.whoami(Some(alice.id_token().unwrap()), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let reason = server.requests()[0].authentication_error.clone().unwrap();
    assert!(reason.contains("no JWKS key with kid"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_service_account_may_impersonate() {
    let options = ApiServerOptions {
        static_tokens: vec![("bob-token".to_owned(), UserInfo::new("bob", &[]))],
        ..ApiServerOptions::default()
    };
    let server = TestApiServer::start(options).await.unwrap();
    let api = ApiClient::new(&server, None);
    let sa = server.service_account_token();

    // The service account itself.
    let (status, review) = api.whoami(Some(sa), &[]).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        review["status"]["userInfo"]["username"],
        SERVICE_ACCOUNT_USER
    );
    assert_eq!(
        review["status"]["userInfo"]["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:headlamp",
            "system:authenticated"
        ])
    );

    // Impersonating alice with repeated groups, a uid and an extra.
    let (status, review) = api
        .whoami(
            Some(sa),
            &[
                ("impersonate-user", "alice"),
                ("impersonate-group", "dev"),
                ("impersonate-group", "ops"),
                ("impersonate-uid", "uid-alice"),
                ("impersonate-extra-scopes.example.com%2fteam", "blue"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{review}");
    assert_eq!(
        review["status"]["userInfo"],
        json!({"username": "alice", "uid": "uid-alice", "groups": ["dev", "ops", "system:authenticated"],
               "extra": {"scopes.example.com/team": ["blue"]}})
    );
    let logged = server.requests().pop().unwrap();
    assert_eq!(logged.header_values("impersonate-group"), ["dev", "ops"]);
    assert_eq!(
        logged.authenticated_user.unwrap().username,
        SERVICE_ACCOUNT_USER
    );
    assert_eq!(logged.effective_user.unwrap().username, "alice");

    // Authorization applies to the impersonated user: alice (dev) may list
    // pods, bob (no groups) may not.
    let (status, list) = api
        .json(
            Method::GET,
            "/api/v1/namespaces/default/pods",
            Some(sa),
            &[("impersonate-user", "alice"), ("impersonate-group", "dev")],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["kind"], "PodList");
    let (status, refused) = api
        .json(
            Method::GET,
            "/api/v1/namespaces/default/pods",
            Some(sa),
            &[("impersonate-user", "bob")],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        refused,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "pods is forbidden: User \"bob\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\"",
               "reason": "Forbidden", "details": {"kind": "pods"}, "code": 403})
    );

    // An end user may not impersonate.
    let (status, refused) = api
        .whoami(Some("bob-token"), &[("impersonate-user", "alice")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        refused,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "users \"alice\" is forbidden: User \"bob\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope",
               "reason": "Forbidden", "details": {"name": "alice", "kind": "users"}, "code": 403})
    );
    let (status, refused) = api
        .whoami(
            Some("bob-token"),
            &[
                ("impersonate-user", "bob"),
                ("impersonate-group", "system:masters"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        refused["message"],
        "users \"bob\" is forbidden: User \"bob\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
    );
    // Groups without a user: 400 BadRequest.
    let (status, body) = api
        .whoami(Some(sa), &[("impersonate-group", "system:masters")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["message"],
        "requested [{Group  system:masters    }] without impersonating a user"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_tokens_rotate_and_tokens_can_be_revoked() {
    let server = TestApiServer::start(ApiServerOptions::default())
        .await
        .unwrap();
    let api = ApiClient::new(&server, None);
    let first = server.service_account_token().to_owned();
    let second = server.rotate_service_account_token(false);
    assert_ne!(first, second);
    for token in [&first, &second] {
        let (status, review) = api.whoami(Some(token), &[]).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(
            review["status"]["userInfo"]["username"],
            SERVICE_ACCOUNT_USER
        );
    }
    let dir = tempfile::tempdir().unwrap();
    server.write_in_cluster_files(dir.path()).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("token")).unwrap(),
        second
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("namespace")).unwrap(),
        "headlamp"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("ca.crt")).unwrap(),
        server.ca_pem()
    );

    let third = server.rotate_service_account_token(true);
    assert_eq!(
        api.whoami(Some(&first), &[]).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.whoami(Some(&second), &[]).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(api.whoami(Some(&third), &[]).await.0, StatusCode::CREATED);

    server.add_static_token("erin-token", UserInfo::new("erin", &["qa"]));
    let (status, review) = api.whoami(Some("erin-token"), &[]).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        review["status"]["userInfo"]["groups"],
        json!(["qa", "system:authenticated"])
    );
    server.revoke_token("erin-token");
    assert_eq!(
        api.whoami(Some("erin-token"), &[]).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_authenticate_and_can_be_required() {
    let server = TestApiServer::start(ApiServerOptions::default())
        .await
        .unwrap();
    let cert = server.issue_client_cert("carol", Some("dev")).unwrap();
    let api = ApiClient::new(&server, Some(&cert));
    let (status, review) = api.whoami(None, &[]).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        review["status"]["userInfo"],
        json!({"username": "carol", "groups": ["dev", "system:authenticated"]})
    );

    let strict = TestApiServer::start(ApiServerOptions {
        client_certs: ClientCertMode::Required,
        ..ApiServerOptions::default()
    })
    .await
    .unwrap();
    let anonymous = ApiClient::new(&strict, None);
    assert!(
        anonymous
            .send(Method::GET, "/version", &[], None)
            .await
            .is_err()
    );
    let cert = strict.issue_client_cert("dave", None).unwrap();
    let (status, _) = ApiClient::new(&strict, Some(&cert)).whoami(None, &[]).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_watch_streams_events_over_time() {
    let server = TestApiServer::start(ApiServerOptions {
        watch_events: 3,
        watch_interval: Duration::from_millis(200),
        ..ApiServerOptions::default()
    })
    .await
    .unwrap();
    let api = ApiClient::new(&server, None);
    let auth = format!("Bearer {}", server.service_account_token());
    let request = Request::get(format!(
        "{}/api/v1/namespaces?watch=1&timeoutSeconds=2",
        server.url()
    ))
    .header("authorization", &auth)
    .body(Full::new(Bytes::new()))
    .unwrap();
    let started = Instant::now();
    let response = api.client.request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let mut body = response.into_body();
    let mut buffer = Vec::new();
    let mut events: Vec<(Duration, Value)> = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.unwrap().into_data() else {
            continue;
        };
        buffer.extend_from_slice(&data);
        while let Some(pos) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=pos).collect();
            events.push((started.elapsed(), serde_json::from_slice(&line).unwrap()));
        }
    }
    let ended = started.elapsed();
    let types: Vec<&str> = events
        .iter()
        .map(|(_, e)| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "ADDED", "ADDED", "ADDED", "ADDED", "ADDED", "MODIFIED", "MODIFIED", "MODIFIED"
        ]
    );
    assert_eq!(events[0].1["object"]["kind"], "Namespace");
    assert_eq!(events[5].1["object"]["metadata"]["resourceVersion"], "1001");
    // Events arrive as they happen, not when the stream ends: the server's
    // timer spaces them by at least the interval, and the stream stays open
    // until timeoutSeconds.
    let (first_change, last_change) = (events[5].0, events[7].0);
    assert!(
        last_change >= first_change + Duration::from_millis(350),
        "{events:?}"
    );
    assert!(
        ended >= last_change + Duration::from_millis(800),
        "stream ended at {ended:?}"
    );

    // Resuming from a seen resource version continues the same history.
    let (status, resumed) = api
        .json(
            Method::GET,
            "/api/v1/namespaces?watch=true&resourceVersion=1002&timeoutSeconds=1",
            Some(server.service_account_token()),
            &[],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(resumed["type"], "MODIFIED", "{resumed}");
    assert_eq!(resumed["object"]["metadata"]["resourceVersion"], "1003");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_watch_and_exec_speak_the_kubernetes_subprotocols() {
    let server = TestApiServer::start(ApiServerOptions {
        plain_http: true,
        watch_events: 2,
        watch_interval: Duration::from_millis(100),
        ..ApiServerOptions::default()
    })
    .await
    .unwrap();
    let ws_base = server.http_url().unwrap().replace("http://", "ws://");
    let token = server.service_account_token().to_owned();
    let ws_request = |path: &str, protocols: &str, origin: bool, with_header_token: bool| {
        let mut request = format!("{ws_base}{path}").into_client_request().unwrap();
        let h = request.headers_mut();
        h.insert("sec-websocket-protocol", protocols.parse().unwrap());
        if origin {
            h.insert("origin", "http://127.0.0.1".parse().unwrap());
        }
        if with_header_token {
            h.insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        request
    };

    // Watch: the bearer token travels as a subprotocol (as Headlamp's
    // frontend sends it), which is removed before the single remaining
    // protocol is echoed; events are JSON text frames.
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&token);
    let protocols =
        format!("base64.binary.k8s.io, base64url.bearer.authorization.k8s.io.{encoded}");
    let (mut ws, response) = tokio_tungstenite::connect_async(ws_request(
        "/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=5",
        &protocols,
        true,
        false,
    ))
    .await
    .unwrap();
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "base64.binary.k8s.io"
    );
    let mut types = Vec::new();
    while let Some(Ok(message)) = ws.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        let event: Value = serde_json::from_str(&text).unwrap();
        types.push(event["type"].as_str().unwrap().to_owned());
        if types.len() == 4 {
            break;
        }
    }
    assert_eq!(types, ["ADDED", "ADDED", "MODIFIED", "MODIFIED"]);

    // x/net/websocket's handshake rules: Origin is required, and at most
    // one subprotocol may remain.
    let err = tokio_tungstenite::connect_async(ws_request(
        "/api/v1/namespaces?watch=1",
        "base64.binary.k8s.io",
        false,
        true,
    ))
    .await
    .unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    let err = tokio_tungstenite::connect_async(ws_request(
        "/api/v1/namespaces?watch=1",
        "a, b",
        true,
        true,
    ))
    .await
    .unwrap_err();
    assert!(err.to_string().contains("400"), "{err}");

    // Exec, v4 binary channels: stdout then a Success status on channel 3.
    let (mut ws, response) = tokio_tungstenite::connect_async(ws_request(
        "/api/v1/namespaces/default/pods/web-0/exec?container=nginx&command=echo&command=hello&stdout=1",
        "v4.channel.k8s.io",
        false,
        true,
    ))
    .await
    .unwrap();
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "v4.channel.k8s.io"
    );
    let mut frames = Vec::new();
    while let Some(Ok(message)) = ws.next().await {
        if let Message::Binary(b) = message {
            frames.push(b.to_vec());
        }
    }
    assert_eq!(frames[0], b"\x01hello\n");
    assert_eq!(frames[1][0], 3);
    let status: Value = serde_json::from_slice(&frames[1][1..]).unwrap();
    assert_eq!(status, json!({"metadata": {}, "status": "Success"}));

    // Exec, base64 channels: stdin echoed by `cat`, text frames.
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_request(
        "/api/v1/namespaces/default/pods/echo/exec?command=cat&stdin=1&stdout=1",
        "base64.channel.k8s.io",
        false,
        true,
    ))
    .await
    .unwrap();
    ws.send(Message::text("0aGk=")).await.unwrap();
    let echoed = ws.next().await.unwrap().unwrap();
    assert_eq!(echoed, Message::text("1aGk="));
    ws.close(None).await.unwrap();

    // Exec, v5: the close signal ends `cat`; a non-zero exit is reported
    // with kube's NonZeroExitCode status.
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_request(
        "/api/v1/namespaces/default/pods/echo/exec?command=false&stdout=1",
        "v5.channel.k8s.io",
        false,
        true,
    ))
    .await
    .unwrap();
    let Some(Ok(Message::Binary(status))) = ws.next().await else {
        panic!("expected a status frame")
    };
    let status: Value = serde_json::from_slice(&status[1..]).unwrap();
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(
        status["details"]["causes"][0],
        json!({"reason": "ExitCode", "message": "1"})
    );

    // Logs over a WebSocket: base64.binary.k8s.io means base64 text frames.
    let (mut ws, response) = tokio_tungstenite::connect_async(ws_request(
        "/api/v1/namespaces/default/pods/echo/log?tailLines=2&follow=true&timeoutSeconds=5",
        "base64.binary.k8s.io",
        false,
        true,
    ))
    .await
    .unwrap();
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "base64.binary.k8s.io"
    );
    let mut text = String::new();
    while text.lines().count() < 4 {
        let Some(Ok(Message::Text(frame))) = ws.next().await else {
            panic!("log stream ended: {text:?}")
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(frame.as_bytes())
            .unwrap();
        text.push_str(std::str::from_utf8(&bytes).unwrap());
    }
    assert_eq!(
        text,
        "echo/echo log line 9\necho/echo log line 10\necho/echo log line 11\necho/echo log line 12\n"
    );

    // Exec errors before the upgrade are Status JSON.
    let api_status = tokio_tungstenite::connect_async(ws_request(
        "/api/v1/namespaces/default/pods/web-0/exec?command=cat&stdin=1",
        "v5.channel.k8s.io",
        false,
        true,
    ))
    .await
    .unwrap_err();
    assert!(api_status.to_string().contains("400"), "{api_status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_can_be_injected_while_running() {
    let server = TestApiServer::start(ApiServerOptions::default())
        .await
        .unwrap();
    let api = ApiClient::new(&server, None);
    let sa = server.service_account_token();
    server.set_fault(Some(Fault::Respond {
        status: StatusCode::SERVICE_UNAVAILABLE,
        content_type: "text/plain".to_owned(),
        body: "etcd is on fire".to_owned(),
    }));
    let (status, body) = api.json(Method::GET, "/version", Some(sa), &[], None).await;
    assert_eq!(
        (status, body),
        (StatusCode::SERVICE_UNAVAILABLE, json!("etcd is on fire"))
    );
    server.set_fault(Some(Fault::CloseConnection));
    assert!(api.send(Method::GET, "/version", &[], None).await.is_err());
    server.set_fault(Some(Fault::Hang));
    let hung = tokio::time::timeout(
        Duration::from_millis(300),
        api.send(Method::GET, "/version", &[], None),
    )
    .await;
    assert!(hung.is_err(), "a hanging server must not answer");
    server.set_fault(None);
    let (status, version) = api.json(Method::GET, "/version", Some(sa), &[], None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(version["major"], "1");
    assert_eq!(
        server.requests().len(),
        4,
        "every request is recorded, faulted or not"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_server_ends_streams_and_frees_the_port() {
    let server = TestApiServer::start(ApiServerOptions::default())
        .await
        .unwrap();
    let api = ApiClient::new(&server, None);
    let addr = server.addr();
    let request = Request::get(format!("{}/api/v1/namespaces?watch=1", server.url()))
        .header(
            "authorization",
            format!("Bearer {}", server.service_account_token()),
        )
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = api.client.request(request).await.unwrap();
    let mut body = response.into_body();
    // The five ADDED events arrive; then the server goes away mid-watch.
    let mut received = 0;
    while received < 5 {
        let data = body.frame().await.unwrap().unwrap().into_data().unwrap();
        received += data.iter().filter(|b| **b == b'\n').count();
    }
    drop(server);
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = body.frame().await {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "the watch must end when the server is dropped"
    );
    let refused = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(refused.is_ok(), "the port must be closed after drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_can_come_back_at_the_same_url() {
    let first = TestApiServer::start(ApiServerOptions::default())
        .await
        .unwrap();
    let (url, pki, port) = (first.url(), Arc::clone(first.pki()), first.addr().port());
    let api = ApiClient::new(&first, None);
    drop(first);
    let second = TestApiServer::start(ApiServerOptions {
        pki: Some(pki),
        port: Some(port),
        ..ApiServerOptions::default()
    })
    .await
    .unwrap();
    assert_eq!(second.url(), url);
    // The same client (same trusted CA, same URL) reaches the new server.
    let (status, version) = api
        .json(
            Method::GET,
            "/version",
            Some(second.service_account_token()),
            &[],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{version}");
}

// ---------------------------------------------------------------- real clients

fn require_tool(name: &'static str) -> PathBuf {
    let path = PathBuf::from(format!("/usr/bin/{name}"));
    if !path.exists() {
        panic!("{}", TestBedError::ToolMissing { tool: name, path });
    }
    path
}

struct Kubectl {
    binary: PathBuf,
    kubeconfig: PathBuf,
    cache: tempfile::TempDir,
}

impl Kubectl {
    fn new(server: &TestApiServer, dir: &Path, user: KubeUser) -> Self {
        let kubeconfig = dir.join("kubeconfig");
        server.write_kubeconfig(&kubeconfig, user).unwrap();
        Self {
            binary: require_tool("kubectl"),
            kubeconfig,
            cache: tempfile::tempdir().unwrap(),
        }
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.binary);
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            // A fresh discovery cache per server: ports are reused.
            .env("KUBECACHEDIR", self.cache.path())
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    async fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
        let mut command = self.command(args);
        if stdin.is_some() {
            command.stdin(Stdio::piped());
        }
        let mut child = command.spawn().unwrap();
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(input).await.unwrap();
            drop(pipe);
        }
        tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("kubectl did not finish within 60 s")
            .unwrap()
    }

    async fn ok(&self, args: &[&str], stdin: Option<&[u8]>) -> String {
        let output = self.run(args, stdin).await;
        assert!(
            output.status.success(),
            "kubectl {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_gets_whoamis_watches_and_execs() {
    let issuer = TestIssuer::start().await;
    let server = TestApiServer::start(ApiServerOptions {
        watch_events: 3,
        watch_interval: Duration::from_millis(200),
        ..ApiServerOptions::with_oidc(issuer.oidc_options())
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token = issuer.sign(&issuer.claims("alice", &["dev", "ops"]));
    let kubectl = Kubectl::new(&server, dir.path(), KubeUser::Token(token.clone()));

    // get namespaces: discovery, then a Table list.
    let table = kubectl.ok(&["get", "namespaces"], None).await;
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "STATUS", "AGE"]);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 5, "{table}");
    assert_eq!(rows[0], ["default", "Active", "10d"]);
    // kubectl 1.32 discovers through aggregated discovery (one request each
    // for /api and /apis), so it never needs the per-group documents.
    let discovery: Vec<String> = server
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/api"))
        .map(|r| r.path.clone())
        .take_while(|p| !p.contains("namespaces"))
        .collect();
    assert_eq!(discovery, ["/api", "/apis"], "{discovery:?}");
    let names = kubectl.ok(&["get", "pods", "-o", "name"], None).await;
    assert_eq!(names, "pod/echo\npod/web-0\n");

    // auth whoami: a SelfSubjectReview.
    let review: Value =
        serde_json::from_str(&kubectl.ok(&["auth", "whoami", "-o", "json"], None).await).unwrap();
    assert_eq!(
        review["status"]["userInfo"],
        json!({"username": "alice", "groups": ["dev", "ops", "system:authenticated"]})
    );

    // auth can-i: SelfSubjectAccessReviews (protobuf-encoded by kubectl).
    assert_eq!(
        kubectl.ok(&["auth", "can-i", "list", "pods"], None).await,
        "yes\n"
    );
    assert_eq!(
        kubectl
            .ok(
                &["auth", "can-i", "create", "pods", "--subresource=exec"],
                None
            )
            .await,
        "yes\n"
    );
    let no = kubectl
        .run(&["auth", "can-i", "delete", "namespaces"], None)
        .await;
    assert_eq!((no.status.code(), &no.stdout[..]), (Some(1), &b"no\n"[..]));
    let rules = kubectl.ok(&["auth", "can-i", "--list"], None).await;
    assert!(
        rules
            .lines()
            .any(|l| l.starts_with("pods ") && l.contains("[get list watch]")),
        "{rules}"
    );

    // --watch: the list, then MODIFIED events as they happen.
    let mut child = kubectl
        .command(&["get", "namespaces", "--watch", "--output-watch-events"])
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut modified = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while modified.len() < 2 {
        let line = tokio::time::timeout_at(deadline, out.next_line())
            .await
            .expect("kubectl --watch printed no MODIFIED events within 30 s")
            .unwrap()
            .expect("kubectl --watch ended early");
        if line.starts_with("MODIFIED") {
            modified.push(line);
        }
    }
    child.kill().await.unwrap();
    assert!(
        modified[0].split_whitespace().nth(1) == Some("default"),
        "{modified:?}"
    );
    let watch = server
        .requests()
        .into_iter()
        .find(|r| r.path_and_query.contains("watch=true"))
        .expect("kubectl sent a watch request");
    assert!(
        watch.path_and_query.contains("resourceVersion=1000"),
        "{}",
        watch.path_and_query
    );

    // exec -i: stdin round-trips through the WebSocket v5 protocol.
    let echoed = kubectl
        .ok(
            &["exec", "-i", "echo", "--", "cat"],
            Some(b"hello\nworld\n"),
        )
        .await;
    assert_eq!(echoed, "hello\nworld\n");
    let exec = server
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path.ends_with("/pods/echo/exec"))
        .unwrap();
    assert_eq!(
        exec.method, "GET",
        "kubectl must use WebSockets, not the SPDY fallback"
    );
    assert_eq!(exec.status, Some(101));
    assert_eq!(
        exec.header("sec-websocket-protocol"),
        Some("v5.channel.k8s.io")
    );
    // logs: plain-text streams, tailLines, the default container.
    assert_eq!(
        kubectl.ok(&["logs", "--tail=2", "echo"], None).await,
        "echo/echo log line 9\necho/echo log line 10\n"
    );
    let web = kubectl.ok(&["logs", "web-0"], None).await;
    assert_eq!(web.lines().count(), 10);
    assert!(web.starts_with("web-0/nginx log line 1\n"), "{web}");
    // logs -f: lines written after the request arrive while it is open.
    let mut child = kubectl
        .command(&["logs", "-f", "--tail=1", "-c", "log-shipper", "web-0"])
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut followed = Vec::new();
    while followed.len() < 3 {
        let line = tokio::time::timeout(Duration::from_secs(30), out.next_line())
            .await
            .expect("kubectl logs -f printed nothing new within 30 s")
            .unwrap()
            .expect("kubectl logs -f ended early");
        followed.push(line);
    }
    child.kill().await.unwrap();
    assert_eq!(
        followed,
        [
            "web-0/log-shipper log line 10",
            "web-0/log-shipper log line 11",
            "web-0/log-shipper log line 12"
        ]
    );

    // attach -i: the container's main process echoes stdin.
    let attached = kubectl.ok(&["attach", "-i", "echo"], Some(b"ping\n")).await;
    assert!(attached.contains("ping\n"), "{attached}");

    // The default container of a two-container pod, and a failing command.
    assert_eq!(
        kubectl
            .ok(&["exec", "web-0", "--", "echo", "hi"], None)
            .await,
        "hi\n"
    );
    let failed = kubectl.run(&["exec", "echo", "--", "false"], None).await;
    assert_eq!(failed.status.code(), Some(1));

    // A user without pod rights gets kube's Forbidden through kubectl.
    let bob = Kubectl::new(
        &server,
        dir.path(),
        KubeUser::Token(issuer.sign(&issuer.claims("bob", &[]))),
    );
    let refused = bob.run(&["get", "pods"], None).await;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains(
            "pods is forbidden: User \"bob\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        ),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let expired = {
        let mut c = issuer.claims("alice", &["dev"]);
        c["exp"] = json!(now() - 5);
        issuer.sign(&c)
    };
    let stale = Kubectl::new(&server, dir.path(), KubeUser::Token(expired));
    let refused = stale.run(&["get", "namespaces"], None).await;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("You must be logged in to the server"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_with_a_client_certificate() {
    let server = TestApiServer::start(ApiServerOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert = server.issue_client_cert("carol", Some("dev")).unwrap();
    let kubectl = Kubectl::new(
        &server,
        dir.path(),
        KubeUser::ClientCert {
            cert_pem: cert.cert_pem.clone(),
            key_pem: cert.key_pem.clone(),
        },
    );
    let review: Value =
        serde_json::from_str(&kubectl.ok(&["auth", "whoami", "-o", "json"], None).await).unwrap();
    assert_eq!(review["status"]["userInfo"]["username"], "carol");
    assert_eq!(
        kubectl
            .ok(&["get", "ns", "kube-system", "-o", "name"], None)
            .await,
        "namespace/kube-system\n"
    );
}

async fn curl(args: &[&str]) -> (String, String) {
    let output = tokio::process::Command::new(require_tool("curl"))
        .args(["--silent", "--show-error", "--max-time", "20"])
        .args(args)
        .output()
        .await
        .unwrap();
    (
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_with_the_test_ca() {
    let server = TestApiServer::start(ApiServerOptions {
        watch_events: 2,
        watch_interval: Duration::from_millis(100),
        ..ApiServerOptions::default()
    })
    .await
    .unwrap();
    let ca = server.ca_path().to_str().unwrap().to_owned();
    let auth = format!("Authorization: Bearer {}", server.service_account_token());
    let url = server.url();

    let (body, err) = curl(&[
        "--cacert",
        &ca,
        "-H",
        &auth,
        &format!("{url}/api/v1/namespaces"),
    ])
    .await;
    let list: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body} {err}"));
    assert_eq!(list["kind"], "NamespaceList");
    assert_eq!(list["metadata"]["resourceVersion"], "1000");
    assert_eq!(list["items"].as_array().unwrap().len(), 5);
    assert!(
        list["items"][0].get("kind").is_none(),
        "list items carry no kind, as in kube"
    );

    let (body, _) = curl(&["--cacert", &ca, &format!("{url}/api/v1/namespaces")]).await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        unauthorized()
    );

    let (body, _) = curl(&[
        "--cacert",
        &ca,
        "-H",
        &auth,
        "-H",
        "Impersonate-User: alice",
        "-H",
        "Impersonate-Group: dev",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        "{}",
        &format!("{url}/apis/authentication.k8s.io/v1/selfsubjectreviews"),
    ])
    .await;
    let review: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        review["status"]["userInfo"]["groups"],
        json!(["dev", "system:authenticated"])
    );

    // A streaming watch, read line by line.
    let (body, _) = curl(&[
        "-N",
        "--cacert",
        &ca,
        "-H",
        &auth,
        &format!("{url}/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=1"),
    ])
    .await;
    let types: Vec<String> = body
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(types, ["ADDED", "ADDED", "MODIFIED", "MODIFIED"]);

    // Without the CA, curl refuses the server.
    let (_, err) = curl(&[&format!("{url}/version")]).await;
    assert!(err.contains("certificate"), "{err}");
}
