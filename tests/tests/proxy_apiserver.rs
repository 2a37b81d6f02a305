//! headlamp-proxy against the test bed: the real OpenID provider issues
//! alice's ID token, the test API server authenticates it (passthrough) or
//! the service account impersonating her (impersonate mode, the token
//! verified by headlamp-jwt against the IdP's JWKS), and the API server's
//! request log shows exactly what reached it. kubectl is pointed at the
//! proxy for the real-client check.
// Test helpers outside #[test] functions: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use headlamp_core::{Authenticate, SystemClock};
use headlamp_jwt::{
    ClaimMapping, FetchedKeySet, JwtAuthenticator, KeySource, KeySourceError, TokenVerifier,
    ValidationPolicy,
};
use headlamp_proxy::{ClientAddr, ClusterSources, KubeProxy, KubeconfigFiles, ProxyMode};
use headlamp_test_util::apiserver::{
    ApiServerOptions, OidcOptions, RecordedRequest, SERVICE_ACCOUNT_USER, TestApiServer,
};
use headlamp_test_util::idp::{HttpClient, TestIdp, TestIdpOptions, TestUser};
use headlamp_test_util::kubeconfig::KubeUser;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

const CLUSTER: &str = "testbed";

/// The IdP, the API server trusting it, alice's ID token, and a kubeconfig
/// whose `testbed` context holds the service account's token.
struct Bed {
    idp: TestIdp,
    api: TestApiServer,
    alice: String,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

async fn bed() -> Bed {
    let idp = TestIdp::start(TestIdpOptions::new("http://127.0.0.1:9/callback"))
        .await
        .unwrap();
    let api = TestApiServer::start(ApiServerOptions {
        watch_events: 3,
        watch_interval: Duration::from_millis(300),
        watch_max_duration: Duration::from_secs(10),
        ..ApiServerOptions::with_oidc(
            OidcOptions::new(idp.issuer(), idp.client_id()).username_claim("preferred_username"),
        )
    })
    .await
    .unwrap();
    let alice = idp
        .tokens_for(TestUser::Alice)
        .await
        .unwrap()
        .id_token
        .expect("the IdP issues an ID token");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    api.write_kubeconfig(
        &kubeconfig,
        KubeUser::Token(api.service_account_token().to_owned()),
    )
    .unwrap();
    Bed {
        idp,
        api,
        alice,
        dir,
        kubeconfig,
    }
}

/// The IdP's JWKS, fetched over HTTP from its discovery document's `jwks_uri`.
struct IdpJwks {
    http: HttpClient,
    jwks_uri: String,
}

impl KeySource for IdpJwks {
    async fn fetch_keys(&self) -> Result<FetchedKeySet, KeySourceError> {
        let request = Request::get(&self.jwks_uri)
            .body(Full::new(Bytes::new()))
            .map_err(|e| KeySourceError::new(e.to_string()))?;
        let response = self
            .http
            .send(request, "fetching the JWKS")
            .await
            .map_err(|e| KeySourceError::new(e.to_string()))?;
        Ok(FetchedKeySet::new(response.body))
    }
}

/// headlamp-jwt's authenticator for the test IdP's ID tokens: username from
/// `preferred_username`, groups from `groups`.
async fn jwt_authenticator(idp: &TestIdp) -> JwtAuthenticator<IdpJwks> {
    let http = HttpClient::new().unwrap();
    let discovery = http
        .send(
            Request::get(idp.discovery_url())
                .body(Full::new(Bytes::new()))
                .unwrap(),
            "fetching discovery",
        )
        .await
        .unwrap();
    let discovery: Value = serde_json::from_slice(&discovery.body).unwrap();
    let jwks_uri = discovery["jwks_uri"].as_str().unwrap().to_owned();
    let verifier = TokenVerifier::new(
        ValidationPolicy::new(idp.issuer(), idp.client_id()),
        IdpJwks { http, jwks_uri },
        SystemClock,
    );
    JwtAuthenticator::new(verifier, ClaimMapping::new())
}

async fn proxy<A: Authenticate>(mode: ProxyMode<A>, kubeconfig: &Path) -> KubeProxy<A> {
    let proxy = KubeProxy::builder(mode)
        .clusters(ClusterSources {
            kubeconfig: Some(KubeconfigFiles::explicit(kubeconfig)),
            ..Default::default()
        })
        .connect_timeout(Duration::from_secs(2))
        .build()
        .await
        .unwrap();
    for cluster in proxy.clusters() {
        assert!(cluster.error.is_none(), "{cluster:?}");
    }
    proxy
}

/// Serves the proxy on 127.0.0.1 with upgrades, as headlamp-server will.
async fn serve<A: Authenticate>(proxy: KubeProxy<A>) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    serve_on(proxy, None).await
}

/// The same over TLS (HTTP/2 and HTTP/1.1 by ALPN).
async fn serve_on<A: Authenticate>(
    proxy: KubeProxy<A>,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, peer)) = listener.accept().await else {
                return;
            };
            let proxy = proxy.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                    req.extensions_mut().insert(ClientAddr(peer));
                    proxy.handle(req)
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let _ = match acceptor {
                    Some(acceptor) => match acceptor.accept(tcp).await {
                        Ok(stream) => {
                            builder
                                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                                .await
                        }
                        Err(_) => return,
                    },
                    None => {
                        builder
                            .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                            .await
                    }
                };
            });
        }
    });
    (addr, task)
}

/// A serving certificate for 127.0.0.1 from the test bed's CA.
fn proxy_tls(bed: &Bed) -> Arc<rustls::ServerConfig> {
    let cert = bed
        .api
        .pki()
        .issue_server_cert("proxy", &["127.0.0.1"])
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert_der()], cert.key_der())
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

fn client() -> Client {
    hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http()
}

/// A SelfSubjectReview through the proxy, with everything a hostile or
/// careless client could add: Impersonate-* headers and our own cookies.
async fn self_subject_review(
    addr: SocketAddr,
    authorization: Option<&str>,
    token_cookies: &[String],
) -> (StatusCode, Value) {
    let mut cookies = vec![
        "theme=dark".to_owned(),
        "headlamp-refresh-testbed=sealed".to_owned(),
    ];
    cookies.extend(token_cookies.iter().cloned());
    let mut request = Request::post(format!(
        "http://{addr}/clusters/{CLUSTER}/apis/authentication.k8s.io/v1/selfsubjectreviews"
    ))
    .header("content-type", "application/json")
    .header("impersonate-user", "admin")
    .header("Impersonate-Group", "system:masters")
    .header("cookie", cookies.join("; "));
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"});
    let response = client()
        .request(
            request
                .body(Full::new(Bytes::from(body.to_string())))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// Headlamp's token cookie for `token`, in two chunks so the join is exercised.
fn token_cookies(token: &str) -> Vec<String> {
    let (a, b) = token.split_at(token.len() / 2);
    vec![
        format!("headlamp-auth-{CLUSTER}.1={b}"),
        format!("headlamp-auth-{CLUSTER}.0={a}"),
    ]
}

fn last_review(api: &TestApiServer) -> RecordedRequest {
    api.requests()
        .into_iter()
        .rev()
        .find(|r| r.path.ends_with("/selfsubjectreviews"))
        .expect("the review reached the API server")
}

fn assert_nothing_of_ours_or_the_clients(r: &RecordedRequest) {
    assert!(
        r.headers_with_prefix("impersonate-")
            .iter()
            .all(|v| *v != "system:masters" && *v != "admin"),
        "{:?}",
        r.headers
    );
    assert_eq!(
        r.cookie_names(),
        ["theme"],
        "only the other cookies reach the API server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passthrough_sends_alices_own_token() {
    let bed = bed().await;
    let (addr, _task) = serve(proxy(ProxyMode::passthrough(), &bed.kubeconfig).await).await;

    // The frontend's way: the token in the chunked cookie.
    let (status, review) = self_subject_review(addr, None, &token_cookies(&bed.alice)).await;
    assert_eq!(status, StatusCode::CREATED, "{review}");
    assert_eq!(
        review["status"]["userInfo"],
        json!({"username": "alice", "groups": ["dev", "ops", "system:authenticated"]})
    );
    let r = last_review(&bed.api);
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {}", bed.alice).as_str())
    );
    assert_eq!(r.authenticated_user.as_ref().unwrap().username, "alice");
    assert!(
        r.headers_with_prefix("impersonate-").is_empty(),
        "{:?}",
        r.headers
    );
    assert_nothing_of_ours_or_the_clients(&r);

    // kubectl's way: Authorization: Bearer.
    let (status, review) =
        self_subject_review(addr, Some(&format!("Bearer {}", bed.alice)), &[]).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(review["status"]["userInfo"]["username"], "alice");

    // No token: the API server itself answers 401.
    let (status, review) = self_subject_review(addr, None, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(review["kind"], "Status");
    assert!(last_review(&bed.api).header("authorization").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impersonate_mode_makes_the_api_server_see_alice_through_the_service_account() {
    let bed = bed().await;
    let mode = ProxyMode::Impersonate {
        authenticator: jwt_authenticator(&bed.idp).await,
    };
    let (addr, _task) = serve(proxy(mode, &bed.kubeconfig).await).await;

    let (status, review) = self_subject_review(addr, None, &token_cookies(&bed.alice)).await;
    assert_eq!(status, StatusCode::CREATED, "{review}");
    assert_eq!(
        review["status"]["userInfo"]["username"], "alice",
        "{review}"
    );
    let groups = review["status"]["userInfo"]["groups"].as_array().unwrap();
    assert!(
        groups.contains(&json!("dev")) && groups.contains(&json!("ops")),
        "{review}"
    );
    assert!(!groups.contains(&json!("system:masters")), "{review}");

    let r = last_review(&bed.api);
    assert_eq!(
        r.authenticated_user.as_ref().unwrap().username,
        SERVICE_ACCOUNT_USER
    );
    let effective = r.effective_user.as_ref().unwrap();
    assert_eq!(effective.username, "alice");
    assert_eq!(r.header_values("impersonate-group"), ["dev", "ops"]);
    assert_eq!(r.header_values("impersonate-user"), ["alice"]);
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {}", bed.api.service_account_token()).as_str()),
        "the proxy calls as itself, never with alice's token"
    );
    assert_nothing_of_ours_or_the_clients(&r);

    // A forged token, and no token: 401 without contacting the API server.
    let seen = bed.api.requests().len();
    let forged = format!("{}x", bed.alice);
    let (status, refused) = self_subject_review(addr, Some(&format!("Bearer {forged}")), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    assert_eq!(refused["kind"], "Status");
    assert!(!refused["message"].as_str().unwrap().contains(&forged));
    let (status, _) = self_subject_review(addr, None, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        bed.api.requests().len(),
        seen,
        "refused requests never reach the API server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_delivers_its_first_event_before_the_stream_ends() {
    let bed = bed().await;
    let (addr, _task) = serve(proxy(ProxyMode::passthrough(), &bed.kubeconfig).await).await;
    let response = client()
        .request(
            Request::get(format!(
                "http://{addr}/clusters/{CLUSTER}/api/v1/namespaces?watch=1"
            ))
            .header("authorization", format!("Bearer {}", bed.alice))
            .body(Full::new(Bytes::new()))
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut events = Vec::new();
    let mut buffered = Vec::new();
    let first_at = tokio::time::Instant::now();
    // The API server sends the ADDED events at once, then a MODIFIED event
    // every 300 ms: the first event must be here long before the end.
    while events.iter().all(|t| t != "MODIFIED") {
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("an event within 5 s")
            .expect("the watch is still open")
            .unwrap();
        buffered.extend_from_slice(&frame.into_data().unwrap());
        while let Some(end) = buffered.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffered.drain(..=end).collect();
            let event: Value = serde_json::from_slice(&line).unwrap();
            events.push(event["type"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(events[0], "ADDED");
    assert!(
        !body.is_end_stream(),
        "the watch is still open after its first events"
    );
    assert!(first_at.elapsed() < Duration::from_secs(5));
}

async fn exec_round_trip(
    addr: SocketAddr,
    authorization: Option<&str>,
    subprotocol_token: Option<&str>,
) {
    let url = format!(
        "ws://{addr}/clusters/{CLUSTER}/api/v1/namespaces/default/pods/echo/exec?command=cat&stdin=1&stdout=1"
    );
    let mut request = url.into_client_request().unwrap();
    let mut protocols = "v4.channel.k8s.io".to_owned();
    if let Some(token) = subprotocol_token {
        let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token);
        protocols = format!("base64url.bearer.authorization.k8s.io.{encoded}, {protocols}");
    }
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocols.parse().unwrap());
    if let Some(authorization) = authorization {
        request
            .headers_mut()
            .insert("authorization", authorization.parse().unwrap());
    }
    let (mut ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "v4.channel.k8s.io"
    );
    let mut stdin = vec![0u8];
    stdin.extend_from_slice(b"hello exec\n");
    ws.send(Message::binary(stdin)).await.unwrap();
    let echoed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Binary(b))) if b.first() == Some(&1) => return b[1..].to_vec(),
                Some(Ok(_)) => continue,
                other => panic!("the exec stream ended: {other:?}"),
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(echoed, b"hello exec\n");
    ws.close(None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_websocket_round_trips_bytes_in_both_modes() {
    let bed = bed().await;
    let (passthrough, _a) = serve(proxy(ProxyMode::passthrough(), &bed.kubeconfig).await).await;
    // The browser's way: the token in the subprotocol.
    exec_round_trip(passthrough, None, Some(&bed.alice)).await;
    let exec = bed
        .api
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path.ends_with("/exec"))
        .unwrap();
    assert_eq!(exec.status, Some(101));
    assert_eq!(exec.authenticated_user.as_ref().unwrap().username, "alice");
    assert_eq!(
        exec.header("sec-websocket-protocol"),
        Some("v4.channel.k8s.io")
    );

    let mode = ProxyMode::Impersonate {
        authenticator: jwt_authenticator(&bed.idp).await,
    };
    let (impersonating, _b) = serve(proxy(mode, &bed.kubeconfig).await).await;
    exec_round_trip(impersonating, Some(&format!("Bearer {}", bed.alice)), None).await;
    let exec = bed
        .api
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path.ends_with("/exec"))
        .unwrap();
    assert_eq!(exec.status, Some(101));
    assert_eq!(exec.effective_user.as_ref().unwrap().username, "alice");
    assert_eq!(
        exec.authenticated_user.as_ref().unwrap().username,
        SERVICE_ACCOUNT_USER
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_down_is_a_502_status() {
    let bed = bed().await;
    let proxy = proxy(ProxyMode::passthrough(), &bed.kubeconfig).await;
    let Bed { api, alice, .. } = bed;
    drop(api);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (addr, _task) = serve(proxy).await;
    let response = client()
        .request(
            Request::get(format!(
                "http://{addr}/clusters/{CLUSTER}/api/v1/namespaces"
            ))
            .header("authorization", format!("Bearer {alice}"))
            .body(Full::new(Bytes::new()))
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let status: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["code"], 502);
    let message = status["message"].as_str().unwrap();
    assert!(
        message.contains("unreachable") && message.contains(CLUSTER),
        "{message}"
    );
}

/// kubectl pointed at the proxy with `--server` and `--token`. The proxy
/// is served over TLS: client-go only sends credentials over TLS
/// (clientcmd's `DirectClientConfig.ClientConfig`: "only try to read the
/// auth information if we are secure").
struct Kubectl {
    server: String,
    token: String,
    ca: PathBuf,
    home: tempfile::TempDir,
}

impl Kubectl {
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let empty = self.home.path().join("empty-kubeconfig");
        std::fs::write(&empty, "apiVersion: v1\nkind: Config\n").unwrap();
        let mut command = tokio::process::Command::new("/usr/bin/kubectl");
        command
            .arg("--kubeconfig")
            .arg(empty)
            .arg("--server")
            .arg(&self.server)
            .arg("--token")
            .arg(&self.token)
            .arg("--certificate-authority")
            .arg(&self.ca)
            .args(args)
            .env("KUBECACHEDIR", self.home.path().join("cache"))
            .env("HOME", self.home.path())
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    async fn ok(&self, args: &[&str], stdin: Option<&[u8]>) -> String {
        let mut command = self.command(args);
        if stdin.is_some() {
            command.stdin(Stdio::piped());
        }
        let mut child = command.spawn().expect("kubectl at /usr/bin/kubectl");
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(input).await.unwrap();
            drop(pipe);
        }
        let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("kubectl finished within 60 s")
            .unwrap();
        assert!(
            output.status.success(),
            "kubectl {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    async fn watch_two_modified(&self) {
        let mut child = self
            .command(&["get", "namespaces", "--watch", "--output-watch-events"])
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut modified = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while modified < 2 {
            let line = tokio::time::timeout_at(deadline, lines.next_line())
                .await
                .expect("kubectl --watch printed MODIFIED events within 30 s")
                .unwrap()
                .expect("kubectl --watch ended early");
            if line.starts_with("MODIFIED") {
                modified += 1;
            }
        }
        child.kill().await.unwrap();
    }
}

async fn kubectl_works_through(addr: SocketAddr, bed: &Bed) {
    let kubectl = Kubectl {
        server: format!("https://{addr}/clusters/{CLUSTER}"),
        token: bed.alice.clone(),
        ca: bed.api.ca_path().to_owned(),
        home: tempfile::tempdir_in(bed.dir.path()).unwrap(),
    };
    let table = kubectl.ok(&["get", "namespaces"], None).await;
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.lines().any(|l| l.starts_with("default ")), "{table}");
    let whoami: Value =
        serde_json::from_str(&kubectl.ok(&["auth", "whoami", "-o", "json"], None).await).unwrap();
    assert_eq!(whoami["status"]["userInfo"]["username"], "alice");
    kubectl.watch_two_modified().await;
    let echoed = kubectl
        .ok(
            &["exec", "-i", "echo", "--", "cat"],
            Some(b"hello\nfrom kubectl\n"),
        )
        .await;
    assert_eq!(echoed, "hello\nfrom kubectl\n");
    let exec = bed
        .api
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path.ends_with("/pods/echo/exec"))
        .unwrap();
    assert_eq!(
        exec.status,
        Some(101),
        "kubectl's exec upgrade went through the proxy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_gets_watches_and_execs_through_the_proxy_in_both_modes() {
    let bed = bed().await;
    let tls = proxy_tls(&bed);
    let (passthrough, _a) = serve_on(
        proxy(ProxyMode::passthrough(), &bed.kubeconfig).await,
        Some(tls.clone()),
    )
    .await;
    kubectl_works_through(passthrough, &bed).await;
    let exec = bed
        .api
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path.ends_with("/exec"))
        .unwrap();
    assert_eq!(exec.authenticated_user.as_ref().unwrap().username, "alice");

    let mode = ProxyMode::Impersonate {
        authenticator: jwt_authenticator(&bed.idp).await,
    };
    let (impersonating, _b) = serve_on(proxy(mode, &bed.kubeconfig).await, Some(tls)).await;
    kubectl_works_through(impersonating, &bed).await;
    let exec = bed
        .api
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path.ends_with("/exec"))
        .unwrap();
    assert_eq!(
        exec.authenticated_user.as_ref().unwrap().username,
        SERVICE_ACCOUNT_USER
    );
    assert_eq!(exec.effective_user.as_ref().unwrap().username, "alice");
}

/// A kubeconfig whose `testbed` user is a client certificate for the
/// service account (CN = its username), as a cluster admin might set up.
fn client_cert_kubeconfig(bed: &Bed) -> PathBuf {
    let cert = bed
        .api
        .issue_client_cert(SERVICE_ACCOUNT_USER, None)
        .unwrap();
    let path = bed.dir.path().join("cert-kubeconfig");
    bed.api
        .write_kubeconfig(
            &path,
            KubeUser::ClientCert {
                cert_pem: cert.cert_pem.clone(),
                key_pem: cert.key_pem.clone(),
            },
        )
        .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_impersonates_and_is_never_presented_in_passthrough() {
    let bed = bed().await;
    let kubeconfig = client_cert_kubeconfig(&bed);

    // Impersonate: the certificate authenticates the proxy (no Authorization).
    let mode = ProxyMode::Impersonate {
        authenticator: jwt_authenticator(&bed.idp).await,
    };
    let (addr, _a) = serve(proxy(mode, &kubeconfig).await).await;
    let (status, review) =
        self_subject_review(addr, Some(&format!("Bearer {}", bed.alice)), &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{review}");
    assert_eq!(review["status"]["userInfo"]["username"], "alice");
    let r = last_review(&bed.api);
    assert_eq!(
        r.authenticated_user.as_ref().unwrap().username,
        SERVICE_ACCOUNT_USER
    );
    assert!(r.header("authorization").is_none(), "{:?}", r.headers);

    // Passthrough: kube-apiserver tries x509 before bearer tokens, so a
    // presented certificate would silently turn every user into the
    // service account. The proxy never loads it in this mode.
    let (addr, _b) = serve(proxy(ProxyMode::passthrough(), &kubeconfig).await).await;
    let (status, review) =
        self_subject_review(addr, Some(&format!("Bearer {}", bed.alice)), &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{review}");
    assert_eq!(review["status"]["userInfo"]["username"], "alice");
    let (status, _) = self_subject_review(addr, None, &[]).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "no token is anonymous, not the certificate's user"
    );
}
