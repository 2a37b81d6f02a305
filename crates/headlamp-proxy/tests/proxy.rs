//! The proxy end to end against small in-process upstreams on 127.0.0.1.
// Helpers outside #[test] functions: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use headlamp_proxy::{
    BEARER_SUBPROTOCOL_PREFIX, ClusterSources, KubeProxy, KubeconfigFiles, ProxyMode,
};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn proxy_for<A: headlamp_core::Authenticate>(
    mode: ProxyMode<A>,
    kubeconfig: &std::path::Path,
) -> KubeProxy<A> {
    KubeProxy::builder(mode)
        .clusters(ClusterSources {
            kubeconfig: Some(KubeconfigFiles::explicit(kubeconfig)),
            ..Default::default()
        })
        .connect_timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap()
}

fn get(addr: std::net::SocketAddr, path: &str) -> http::request::Builder {
    Request::get(format!("http://{addr}{path}"))
}

fn empty() -> Full<Bytes> {
    Full::new(Bytes::new())
}

#[tokio::test]
async fn passthrough_sends_the_cookie_token_and_strips_what_the_client_must_not_control() {
    let upstream = start_upstream(None).await;
    let dir = tempfile::tempdir().unwrap();
    let server = format!("http://{}/prefix/", upstream.addr);
    let kc = kubeconfig(dir.path(), "sa-token", &[("test", &server, "")]);
    let proxy = proxy_for(ProxyMode::passthrough(), &kc).await;
    let (addr, _task) = serve_proxy(proxy).await;

    let response = client()
        .request(
            get(addr, "/clusters/test/api/v1/namespaces?limit=1")
                .header("cookie", "theme=dark; headlamp-auth-test.0=alice-")
                .header(
                    "cookie",
                    "headlamp-auth-test.1=token; headlamp-refresh-test=sealed",
                )
                .header("cookie", "headlamp-login-state=sealed")
                .header("authorization", "Bearer the-header-loses-to-the-cookie")
                .header("impersonate-user", "admin")
                .header("Impersonate-Group", "system:masters")
                .header("connection", "x-hop")
                .header("x-hop", "1")
                .header("x-forwarded-for", "10.0.0.1")
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        !response.headers().contains_key("keep-alive"),
        "response hop-by-hop headers are dropped"
    );

    let seen = upstream.requests();
    assert_eq!(seen.len(), 1);
    let r = &seen[0];
    assert_eq!(r.uri, "/prefix/api/v1/namespaces?limit=1");
    assert_eq!(r.headers["authorization"], "Bearer alice-token");
    assert_eq!(r.headers["host"], upstream.addr.to_string());
    assert_eq!(r.headers["cookie"], "theme=dark");
    assert_eq!(r.headers["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
    assert!(!r.headers.contains_key("x-hop"));
    assert!(
        r.headers
            .keys()
            .all(|k| !k.as_str().starts_with("impersonate-")),
        "{:?}",
        r.headers
    );
}

/// A Service reached through `services/<name>/proxy/` (or a pod proxy, or
/// an aggregated API) answers on *our* origin, where the token cookie is
/// ambient: its HTML must not run as our pages, and it must not plant
/// cookies (a token of the attacker's, or a tossed session).
#[tokio::test]
async fn upstream_answers_cannot_run_script_or_set_cookies_on_our_origin() {
    let upstream = start_upstream(None).await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(
        dir.path(),
        "sa-token",
        &[("test", &format!("http://{}", upstream.addr), "")],
    );
    let (addr, _task) = serve_proxy(proxy_for(ProxyMode::passthrough(), &kc).await).await;
    let response = client()
        .request(
            get(
                addr,
                "/clusters/test/api/v1/namespaces/dev/services/evil:80/proxy/html-with-cookie",
            )
            .header("cookie", "headlamp-auth-test.0=alice")
            .body(empty())
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert!(!headers.contains_key("set-cookie"), "{headers:?}");
    let csp: Vec<_> = headers.get_all("content-security-policy").iter().collect();
    assert!(
        csp.iter().any(|v| v.as_bytes() == b"sandbox"),
        "{headers:?}"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(
        headers["content-type"], "text/html",
        "the body itself passes unchanged"
    );
}

#[tokio::test]
async fn passthrough_without_a_token_lets_the_api_server_answer() {
    let upstream = start_upstream(None).await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(
        dir.path(),
        "sa-token",
        &[("test", &format!("http://{}", upstream.addr), "")],
    );
    let (addr, _task) = serve_proxy(proxy_for(ProxyMode::passthrough(), &kc).await).await;

    let response = client()
        .request(
            get(addr, "/clusters/test/unauthorized")
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body = body_json(response).await;
    assert_eq!(
        body["message"], "from upstream",
        "upstream errors pass through unchanged"
    );
    let seen = upstream.requests();
    assert!(
        !seen[0].headers.contains_key("authorization"),
        "the kubeconfig token is never used in passthrough"
    );
}

#[tokio::test]
async fn impersonate_sends_our_credentials_and_the_verified_identity() {
    let upstream = start_upstream(None).await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(
        dir.path(),
        "sa-token",
        &[("test", &format!("http://{}", upstream.addr), "")],
    );
    let mode = ProxyMode::Impersonate {
        authenticator: FakeAuthenticator,
    };
    let (addr, _task) = serve_proxy(proxy_for(mode, &kc).await).await;

    let response = client()
        .request(
            Request::post(format!(
                "http://{addr}/clusters/test/apis/authentication.k8s.io/v1/selfsubjectreviews"
            ))
            .header("authorization", "Bearer alice-token")
            .header("impersonate-group", "system:masters")
            .header("IMPERSONATE-USER", "admin")
            .header("impersonate-extra-scopes", "all")
            .body(Full::new(Bytes::from_static(
                b"{\"kind\":\"SelfSubjectReview\"}",
            )))
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echoed = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        &echoed[..],
        b"{\"kind\":\"SelfSubjectReview\"}",
        "the body reached the API server"
    );

    let r = &upstream.requests()[0];
    assert_eq!(r.headers["authorization"], "Bearer sa-token");
    assert_eq!(r.headers["impersonate-user"], "alice");
    let groups: Vec<_> = r.headers.get_all("impersonate-group").iter().collect();
    assert_eq!(groups, ["dev", "ops"]);
    assert!(!r.headers.contains_key("impersonate-extra-scopes"));

    // Refused, unverifiable, and missing tokens never reach the API server.
    for (token, code, needle) in [
        (Some("Bearer forged"), 401, "signature"),
        (Some("Bearer slow-idp"), 503, "keys"),
        (Some("Basic YTpi"), 401, "Bearer"),
        (None, 401, "sign in"),
    ] {
        let mut req = get(addr, "/clusters/test/api/v1/namespaces");
        if let Some(token) = token {
            req = req.header("authorization", token);
        }
        let response = client().request(req.body(empty()).unwrap()).await.unwrap();
        assert_eq!(response.status().as_u16(), code, "{token:?}");
        let status = body_json(response).await;
        assert_eq!(status["kind"], "Status");
        let message = status["message"].as_str().unwrap();
        assert!(message.contains(needle), "{message}");
        assert!(
            !message.contains("forged"),
            "the token never appears in a message"
        );
    }
    assert_eq!(upstream.requests().len(), 1);
}

#[tokio::test]
async fn routing_errors_are_status_responses() {
    let upstream = start_upstream(None).await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(
        dir.path(),
        "sa-token",
        &[
            ("test", &format!("http://{}", upstream.addr), ""),
            (
                "broken",
                "https://127.0.0.1:1",
                "certificate-authority: /nonexistent/ca.crt",
            ),
        ],
    );
    let proxy = proxy_for(ProxyMode::passthrough(), &kc).await;
    let broken = proxy.cluster("broken").unwrap();
    assert!(
        broken
            .error
            .as_ref()
            .unwrap()
            .contains("/nonexistent/ca.crt")
    );
    assert!(proxy.cluster("test").unwrap().error.is_none());
    let (addr, _task) = serve_proxy(proxy).await;

    for (path, code) in [
        ("/clusters/nope/api", 404),
        ("/clusters/broken/api", 503),
        ("/clusters/test/api/../../secret", 400),
        ("/api/v1/pods", 404),
    ] {
        let response = client()
            .request(get(addr, path).body(empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), code, "{path}");
        assert_eq!(body_json(response).await["kind"], "Status");
    }
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn a_watch_delivers_its_first_event_before_the_stream_ends() {
    let upstream = start_upstream(None).await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(
        dir.path(),
        "t",
        &[("test", &format!("http://{}", upstream.addr), "")],
    );
    let (addr, _task) = serve_proxy(proxy_for(ProxyMode::passthrough(), &kc).await).await;

    let response = client()
        .request(
            get(addr, "/clusters/test/api/v1/pods/stream?watch=1")
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let mut body = response.into_body();
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("the first event arrives while the upstream still holds the second")
        .unwrap()
        .unwrap();
    assert_eq!(first.into_data().unwrap(), "event-1\n");
    upstream.release.notify_one();
    let second = body.frame().await.unwrap().unwrap();
    assert_eq!(second.into_data().unwrap(), "event-2\n");
    assert!(body.frame().await.is_none());
}

/// Sends a raw HTTP/1.1 upgrade request and returns the stream after the
/// 101 head, with the head.
async fn upgrade(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &str,
) -> (tokio::net::TcpStream, String) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: proxy\r\n{headers}\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(
            tcp.read(&mut byte).await.unwrap(),
            1,
            "connection closed in the head: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    (tcp, String::from_utf8(head).unwrap())
}

async fn round_trip(tcp: &mut tokio::net::TcpStream, bytes: &[u8]) {
    tcp.write_all(bytes).await.unwrap();
    let mut back = vec![0u8; bytes.len()];
    tokio::time::timeout(Duration::from_secs(5), tcp.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, bytes);
}

#[tokio::test]
async fn upgrades_are_tunneled_both_ways_over_tls_with_h2_offered() {
    let pki = pki();
    let upstream = start_upstream(Some(pki.server_config.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.crt");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let kc = kubeconfig(
        dir.path(),
        "t",
        &[(
            "tls",
            &format!("https://{}", upstream.addr),
            &format!("certificate-authority: {}", ca.display()),
        )],
    );
    let (addr, _task) = serve_proxy(proxy_for(ProxyMode::passthrough(), &kc).await).await;

    // kubectl exec over SPDY/3.1.
    let (mut tcp, head) = upgrade(
        addr,
        "/clusters/tls/api/v1/namespaces/default/pods/p/exec?command=cat&stdin=true",
        "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nAuthorization: Bearer spdy-token\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("upgrade: spdy/3.1"),
        "{head}"
    );
    round_trip(&mut tcp, b"hello through the tunnel").await;
    round_trip(&mut tcp, &[0u8, 1, 2, 255]).await;

    // A browser WebSocket carrying its token in the subprotocol.
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("ws-token");
    let (mut tcp, head) = upgrade(
        addr,
        "/clusters/tls/api/v1/namespaces/default/pods/p/exec?command=cat",
        &format!(
            "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: {BEARER_SUBPROTOCOL_PREFIX}{token}, v4.channel.k8s.io\r\n"
        ),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    round_trip(&mut tcp, b"\x82\x05hello").await;

    let seen = upstream.requests();
    assert_eq!(
        seen[0].version,
        http::Version::HTTP_11,
        "upgrades travel on HTTP/1.1"
    );
    assert_eq!(seen[0].headers["authorization"], "Bearer spdy-token");
    assert_eq!(seen[1].headers["authorization"], "Bearer ws-token");
    assert_eq!(
        seen[1].headers["sec-websocket-protocol"],
        "v4.channel.k8s.io"
    );

    // Ordinary requests to the same server use HTTP/2 by ALPN.
    let response = client()
        .request(get(addr, "/clusters/tls/version").body(empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        upstream.requests().last().unwrap().version,
        http::Version::HTTP_2
    );
}

#[tokio::test]
async fn tls_and_connection_failures_say_what_to_fix() {
    let pki = pki();
    let other = support::pki();
    let upstream = start_upstream(Some(pki.server_config.clone())).await;
    // Accepts TCP, never answers the TLS handshake.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = silent.accept().await {
            held.push(tcp);
        }
    });
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);

    let dir = tempfile::tempdir().unwrap();
    let good_ca = dir.path().join("good.crt");
    std::fs::write(&good_ca, &pki.ca_pem).unwrap();
    let wrong_ca = dir.path().join("wrong.crt");
    std::fs::write(&wrong_ca, &other.ca_pem).unwrap();
    let good = format!("certificate-authority: {}", good_ca.display());
    let wrong = format!("certificate-authority: {}", wrong_ca.display());
    let name_ok = format!("{good}\ntls-server-name: apiserver.test");
    let name_bad = format!("{good}\ntls-server-name: other.test");
    let https = format!("https://{}", upstream.addr);
    let kc = kubeconfig(
        dir.path(),
        "t",
        &[
            ("wrong-ca", &https, &wrong),
            ("named", &https, &name_ok),
            ("misnamed", &https, &name_bad),
            ("silent", &format!("https://{silent_addr}"), &good),
            ("down", &format!("https://{closed_addr}"), &good),
            ("insecure", &https, "insecure-skip-tls-verify: true"),
        ],
    );
    let (addr, _task) = serve_proxy(proxy_for(ProxyMode::passthrough(), &kc).await).await;

    for (cluster, code, needle) in [
        ("wrong-ca", StatusCode::BAD_GATEWAY, "certificate-authority"),
        ("misnamed", StatusCode::BAD_GATEWAY, "tls-server-name"),
        ("silent", StatusCode::GATEWAY_TIMEOUT, "timed out"),
        ("down", StatusCode::BAD_GATEWAY, "unreachable"),
        ("named", StatusCode::OK, ""),
        ("insecure", StatusCode::OK, ""),
    ] {
        let response = client()
            .request(
                get(addr, &format!("/clusters/{cluster}/version"))
                    .body(empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), code, "{cluster}");
        if !needle.is_empty() {
            let status = body_json(response).await;
            let message = status["message"].as_str().unwrap();
            assert!(message.contains(needle), "{cluster}: {message}");
            assert!(message.contains(cluster), "{cluster}: {message}");
        }
    }
}

#[tokio::test]
async fn in_cluster_presents_the_service_account_token_and_follows_its_rotation() {
    use headlamp_core::FakeClock;
    use headlamp_proxy::{ClusterSource, InClusterConfig};

    let pki = pki();
    let upstream = start_upstream(Some(pki.server_config.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    let ca = dir.path().join("ca.crt");
    std::fs::write(&token, "sa-1\n").unwrap();
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let clock = FakeClock::at(1_700_000_000);
    let proxy = KubeProxy::builder(ProxyMode::Impersonate {
        authenticator: FakeAuthenticator,
    })
    .clusters(ClusterSources {
        in_cluster: Some(InClusterConfig::new(
            "main",
            "127.0.0.1",
            upstream.addr.port(),
            &token,
            &ca,
        )),
        ..Default::default()
    })
    .clock(std::sync::Arc::new(clock.clone()))
    .build()
    .await
    .unwrap();
    let info = proxy.cluster("main").unwrap();
    assert_eq!(info.source, ClusterSource::InCluster);
    assert_eq!(
        info.server.as_deref(),
        Some(format!("https://{}", upstream.addr).as_str())
    );
    assert!(info.error.is_none(), "{info:?}");
    let (addr, _task) = serve_proxy(proxy).await;

    let call = || async {
        let response = client()
            .request(
                get(addr, "/clusters/main/api")
                    .header("authorization", "Bearer alice-token")
                    .body(empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        upstream.requests().last().unwrap().headers["authorization"].clone()
    };
    assert_eq!(call().await, "Bearer sa-1");
    // The kubelet rotates the projected token; the proxy re-reads it within a minute.
    std::fs::write(&token, "sa-2\n").unwrap();
    assert_eq!(call().await, "Bearer sa-1");
    clock.advance(60);
    assert_eq!(call().await, "Bearer sa-2");
}
