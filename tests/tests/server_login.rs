//! The built `headlamp-server` against the test bed, signing in with a
//! scripted browser through the real IdP (oidc-provider): `/config`, the
//! popup flow (`/oidc` -> IdP -> `/oidc-callback` -> `/auth`), the token
//! cookies (names, chunks, attributes), `/me`, set-token and sign-out,
//! the API server's view of what we send, refusals shown as pages, two
//! replicas sharing a session key, refresh, base URL, impersonation.
// Test helpers outside #[test] functions: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use headlamp_e2e::server::{
    ScriptedBrowser, ServerOptions, ServerProcess, callback_url_for, free_port,
};
use headlamp_test_util::apiserver::{
    ApiServerOptions, OidcOptions, RecordedRequest, TestApiServer,
};
use headlamp_test_util::idp::{HttpResponse, TestIdp, TestIdpOptions, TestUser, TokenResponse};
use headlamp_test_util::kubeconfig::KubeUser;
use http::header::{LOCATION, SET_COOKIE};
use http::{Method, StatusCode};
use serde_json::{Value, json};

/// The kubeconfig context the test API server writes.
const CLUSTER: &str = "testbed";

/// IdP, API server trusting it, and a kubeconfig for the API server.
struct Bed {
    idp: TestIdp,
    api: TestApiServer,
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    session_key: PathBuf,
    /// Ports reserved for servers (their callback URLs are registered).
    ports: Vec<u16>,
    base_url: String,
}

struct BedOptions {
    base_url: &'static str,
    servers: usize,
    id_token_ttl: u64,
}

impl Default for BedOptions {
    fn default() -> Self {
        Self {
            base_url: "",
            servers: 1,
            id_token_ttl: 3600,
        }
    }
}

async fn bed(options: BedOptions) -> Bed {
    let ports: Vec<u16> = (0..options.servers).map(|_| free_port()).collect();
    let mut idp_options = TestIdpOptions::new(callback_url_for(ports[0], options.base_url))
        .id_token_ttl_secs(options.id_token_ttl)
        .access_token_ttl_secs(options.id_token_ttl);
    for port in &ports[1..] {
        idp_options = idp_options.redirect_uri(callback_url_for(*port, options.base_url));
    }
    let idp = TestIdp::start(idp_options).await.unwrap();
    let api = TestApiServer::start(ApiServerOptions::with_oidc(
        OidcOptions::new(idp.issuer(), idp.client_id()).username_claim("preferred_username"),
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    api.write_kubeconfig(
        &kubeconfig,
        KubeUser::Token(api.service_account_token().to_owned()),
    )
    .unwrap();
    let session_key = dir.path().join("session.key");
    std::fs::write(
        &session_key,
        b"0123456789abcdef0123456789abcdef-shared-test-key",
    )
    .unwrap();
    Bed {
        idp,
        api,
        _dir: dir,
        kubeconfig,
        session_key,
        ports,
        base_url: options.base_url.to_owned(),
    }
}

impl Bed {
    fn server_options(&self, index: usize) -> ServerOptions {
        let mut options = ServerOptions::new(self.ports[index])
            .name(format!("headlamp-server-{index}"))
            .arg(format!("-kubeconfig={}", self.kubeconfig.display()))
            .arg(format!("-oidc-idp-issuer-url={}", self.idp.issuer()))
            .arg(format!("-oidc-client-id={}", self.idp.client_id()))
            .arg(format!("-oidc-client-secret={}", self.idp.client_secret()))
            .arg("-oidc-scopes=profile,email,groups")
            .arg(format!("-session-key-file={}", self.session_key.display()))
            .arg("-metrics-enabled");
        if !self.base_url.is_empty() {
            options = options.arg(format!("-base-url={}", self.base_url));
        }
        options
    }

    async fn server(&self) -> ServerProcess {
        ServerProcess::start(self.server_options(0)).await.unwrap()
    }

    /// API server requests to `path_suffix` since the log was last cleared.
    fn api_requests(&self, path_suffix: &str) -> Vec<RecordedRequest> {
        self.api
            .requests()
            .into_iter()
            .filter(|r| r.path.ends_with(path_suffix))
            .collect()
    }
}

fn set_cookies(response: &HttpResponse) -> Vec<String> {
    response
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn json_body(response: &HttpResponse) -> Value {
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", response.excerpt()))
}

async fn self_subject_review(
    browser: &mut ScriptedBrowser,
    server: &ServerProcess,
) -> HttpResponse {
    browser
        .post_json(
            &server.url(&format!(
                "/clusters/{CLUSTER}/apis/authentication.k8s.io/v1/selfsubjectreviews"
            )),
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
        )
        .await
        .unwrap()
}

fn review_user(response: &HttpResponse) -> (String, Vec<String>) {
    assert_eq!(
        response.status,
        StatusCode::CREATED,
        "{}",
        response.excerpt()
    );
    let review = json_body(response);
    let info = &review["status"]["userInfo"];
    let groups = info["groups"]
        .as_array()
        .map(|g| g.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    (info["username"].as_str().unwrap().to_owned(), groups)
}

/// The whole flow, with or without a base URL.
async fn sign_in_flow(base_url: &'static str) {
    let bed = bed(BedOptions {
        base_url,
        ..BedOptions::default()
    })
    .await;
    let server = bed.server().await;
    let mut browser = ScriptedBrowser::new().unwrap();

    // /config: the frontend's cluster list.
    let config = browser.get(&server.url("/config")).await.unwrap();
    assert_eq!(config.status, StatusCode::OK);
    let config = json_body(&config);
    assert_eq!(
        config,
        json!({
            "clusters": [{
                "name": CLUSTER,
                "server": bed.api.url(),
                "auth_type": "oidc",
                "meta_data": {"source": "kubeconfig"},
            }],
            "isDynamicClusterEnabled": false,
            "allowKubeconfigChanges": false,
        })
    );
    assert_eq!(
        browser.get(&server.url("/plugins")).await.unwrap().text(),
        "[]"
    );

    // The popup: /oidc -> IdP login -> /oidc-callback -> /auth.
    let callback = browser
        .sign_in(&server, CLUSTER, TestUser::Alice)
        .await
        .unwrap();
    assert_eq!(
        callback.status,
        StatusCode::SEE_OTHER,
        "{}",
        callback.excerpt()
    );
    assert_eq!(
        callback.headers[LOCATION],
        format!("{base_url}/auth?cluster={CLUSTER}")
    );
    let cookies = set_cookies(&callback);
    let token_cookie = cookies
        .iter()
        .find(|c| c.starts_with(&format!("headlamp-auth-{CLUSTER}.0=ey")))
        .unwrap_or_else(|| panic!("no token cookie in {cookies:?}"));
    assert!(
        token_cookie.ends_with(&format!(
            "; Path={base_url}/clusters/{CLUSTER}; Max-Age=86400; HttpOnly; SameSite=Strict"
        )),
        "{token_cookie}"
    );
    assert!(!token_cookie.contains("Domain"), "{token_cookie}");
    assert!(
        !token_cookie.contains("Secure"),
        "plain http: {token_cookie}"
    );
    let refresh_cookie = cookies
        .iter()
        .find(|c| c.starts_with(&format!("headlamp-refresh-{CLUSTER}=")))
        .unwrap_or_else(|| panic!("no refresh cookie in {cookies:?}"));
    assert!(
        refresh_cookie.contains("HttpOnly; SameSite=Strict"),
        "{refresh_cookie}"
    );
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("headlamp-oidc-login-") && c.contains("Max-Age=0")),
        "the login-state cookie is cleared: {cookies:?}"
    );

    // /me from the cookie.
    let me = browser
        .get(&server.url(&format!("/clusters/{CLUSTER}/me")))
        .await
        .unwrap();
    assert_eq!(me.status, StatusCode::OK, "{}", me.excerpt());
    assert_eq!(me.headers["cache-control"], "no-store");
    let me = json_body(&me);
    assert_eq!(me["username"], "alice");
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["groups"], json!(["dev", "ops"]));

    // The API through the proxy, with the cookie's token (passthrough):
    // the API server authenticates alice's ID token itself.
    bed.api.request_log().clear();
    let review = self_subject_review(&mut browser, &server).await;
    let (user, groups) = review_user(&review);
    assert_eq!(user, "alice");
    assert!(
        groups.contains(&"dev".to_owned()) && groups.contains(&"ops".to_owned()),
        "{groups:?}"
    );
    let upstream = bed.api_requests("/selfsubjectreviews");
    assert_eq!(upstream.len(), 1);
    assert!(
        upstream[0]
            .header("authorization")
            .unwrap()
            .starts_with("Bearer ey")
    );
    // Only our cookies are taken off (the IdP's own session cookies share
    // the host 127.0.0.1 in this bed and pass through, as any other would).
    assert!(
        upstream[0]
            .cookie_names()
            .iter()
            .all(|n| !n.starts_with("headlamp-")),
        "{:?}",
        upstream[0].cookie_names()
    );

    // Sign out: the token cookie is gone, /me says so.
    let out = browser
        .post_json(
            &server.url(&format!("/clusters/{CLUSTER}/set-token")),
            &json!({"token": null}),
        )
        .await
        .unwrap();
    assert_eq!(out.status, StatusCode::OK, "{}", out.excerpt());
    assert!(
        !browser
            .jar()
            .names_for_host("127.0.0.1")
            .iter()
            .any(|n| n.starts_with("headlamp-auth-") || n.starts_with("headlamp-refresh-")),
        "{:?}",
        browser.jar().names_for_host("127.0.0.1")
    );
    let me = browser
        .get(&server.url(&format!("/clusters/{CLUSTER}/me")))
        .await
        .unwrap();
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(json_body(&me), json!({"message": "unauthorized"}));

    // Metrics saw the sign-in.
    let metrics = browser.get(&server.url("/metrics")).await.unwrap().text();
    assert!(
        metrics.contains(r#"headlamp_oidc_logins_total{outcome="success"} 1"#),
        "{metrics}"
    );
    // Ready: discovery loaded, the cluster usable.
    let ready = browser.get(&server.url("/readyz")).await.unwrap();
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text());
}

#[tokio::test]
async fn sign_in_me_api_and_sign_out() {
    sign_in_flow("").await;
}

#[tokio::test]
async fn the_whole_flow_under_a_base_url() {
    sign_in_flow("/headlamp").await;
}

/// gwen's ID token (150 groups) is over 3800 bytes: two chunks, joined
/// again for the API server.
#[tokio::test]
async fn a_large_token_is_chunked_and_joined() {
    let bed = bed(BedOptions::default()).await;
    let server = bed.server().await;
    let mut browser = ScriptedBrowser::new().unwrap();
    let callback = browser
        .sign_in(&server, CLUSTER, TestUser::Gwen)
        .await
        .unwrap();
    assert_eq!(
        callback.status,
        StatusCode::SEE_OTHER,
        "{}",
        callback.excerpt()
    );
    let cookies = set_cookies(&callback);
    let chunk = |i: usize| {
        cookies
            .iter()
            .find(|c| {
                c.starts_with(&format!("headlamp-auth-{CLUSTER}.{i}=")) && !c.contains("Max-Age=0")
            })
            .cloned()
    };
    let first = chunk(0).unwrap();
    let second = chunk(1).unwrap_or_else(|| panic!("a second chunk: {cookies:?}"));
    assert_eq!(
        first.split(';').next().unwrap().len(),
        format!("headlamp-auth-{CLUSTER}.0=").len() + 3800
    );
    assert!(second.contains("HttpOnly; SameSite=Strict"));

    let me = json_body(
        &browser
            .get(&server.url(&format!("/clusters/{CLUSTER}/me")))
            .await
            .unwrap(),
    );
    assert_eq!(me["username"], "gwen");
    assert_eq!(me["groups"].as_array().unwrap().len(), 150);
    let (user, groups) = review_user(&self_subject_review(&mut browser, &server).await);
    assert_eq!(user, "gwen");
    assert!(groups.contains(&"headlamp-test-group-149".to_owned()));

    // A shorter token next (set-token) expires the stale second chunk.
    let alice = bed.idp.tokens_for(TestUser::Alice).await.unwrap();
    let set = browser
        .post_json(
            &server.url(&format!("/clusters/{CLUSTER}/set-token")),
            &json!({"token": alice.id_token().unwrap()}),
        )
        .await
        .unwrap();
    let cookies = set_cookies(&set);
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with(&format!("headlamp-auth-{CLUSTER}.1=;"))
                && c.contains("Max-Age=0")),
        "{cookies:?}"
    );
    let (user, _) = review_user(&self_subject_review(&mut browser, &server).await);
    assert_eq!(user, "alice");
}

/// A token set by hand (`set-token`) is used like a signed-in one.
#[tokio::test]
async fn set_token_then_the_api_and_me_use_it() {
    let bed = bed(BedOptions::default()).await;
    let server = bed.server().await;
    let mut browser = ScriptedBrowser::new().unwrap();
    let tokens: TokenResponse = bed.idp.tokens_for(TestUser::Bob).await.unwrap();
    let set = browser
        .post_json(
            &server.url(&format!("/clusters/{CLUSTER}/set-token")),
            &json!({"token": tokens.id_token().unwrap()}),
        )
        .await
        .unwrap();
    assert_eq!(set.status, StatusCode::OK);
    let me = json_body(
        &browser
            .get(&server.url(&format!("/clusters/{CLUSTER}/me")))
            .await
            .unwrap(),
    );
    assert_eq!(me["username"], "bob");
    assert_eq!(me["groups"], json!([]));
    let (user, _) = review_user(&self_subject_review(&mut browser, &server).await);
    assert_eq!(user, "bob");

    let bad = browser
        .send(
            Method::POST,
            &server.url(&format!("/clusters/{CLUSTER}/set-token")),
            None,
            &[("content-type", "application/json")],
        )
        .await
        .unwrap();
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(json_body(&bad)["kind"], "Status");
}

/// Cancel at the IdP: the callback is a clear page, not a 500.
#[tokio::test]
async fn access_denied_at_the_idp_is_a_clear_page() {
    let bed = bed(BedOptions::default()).await;
    let server = bed.server().await;
    let mut browser = ScriptedBrowser::new().unwrap();
    let callback = browser.cancel_at_idp(&server, CLUSTER).await.unwrap();
    assert!(
        callback.as_str().contains("error=access_denied"),
        "{callback}"
    );
    let page = browser.get(callback.as_str()).await.unwrap();
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    let text = page.text();
    assert!(text.contains("Sign-in was refused"), "{text}");
    assert!(text.contains("access_denied"), "{text}");
    assert!(
        !set_cookies(&page)
            .iter()
            .any(|c| c.starts_with("headlamp-auth-")),
        "no token cookie on a refusal"
    );
}

/// `/oidc?cluster=` only ever redirects to the IdP of a configured cluster.
#[tokio::test]
async fn an_unknown_cluster_never_redirects() {
    let bed = bed(BedOptions::default()).await;
    let server = bed.server().await;
    let mut browser = ScriptedBrowser::new().unwrap();
    for cluster in [
        "nope",
        "https%3A%2F%2Fevil.example",
        "%2F%2Fevil.example",
        "",
    ] {
        let response = browser
            .get(&format!("{}?cluster={cluster}", server.url("/oidc")))
            .await
            .unwrap();
        assert!(
            response.headers.get(LOCATION).is_none(),
            "{cluster}: {:?}",
            response.headers
        );
        assert!(
            response.status.is_client_error(),
            "{cluster}: {}",
            response.status
        );
        assert!(response.text().contains("<h1"), "an HTML page");
    }
    let known = browser
        .get(&format!("{}?cluster={CLUSTER}", server.url("/oidc")))
        .await
        .unwrap();
    assert_eq!(known.status, StatusCode::FOUND);
    let location = known.headers[LOCATION].to_str().unwrap();
    assert!(location.starts_with(bed.idp.issuer()), "{location}");
}

/// Login starts on one replica; the callback and the API calls land on the
/// other (shared -session-key-file): no server memory involved.
#[tokio::test]
async fn two_replicas_share_the_session_key() {
    let bed = bed(BedOptions {
        servers: 2,
        ..BedOptions::default()
    })
    .await;
    let first = ServerProcess::start(bed.server_options(0)).await.unwrap();
    let second = ServerProcess::start(bed.server_options(1)).await.unwrap();
    let mut browser = ScriptedBrowser::new().unwrap();
    let callback = browser
        .login_at_idp(&first, CLUSTER, TestUser::Alice)
        .await
        .unwrap();
    // A replica with another session key cannot open the login state: a
    // clear page, and the code is not spent.
    let other_key = ServerProcess::start(
        ServerOptions::new(free_port())
            .name("headlamp-server-other-key")
            .arg(format!("-kubeconfig={}", bed.kubeconfig.display()))
            .arg(format!("-oidc-idp-issuer-url={}", bed.idp.issuer()))
            .arg(format!("-oidc-client-id={}", bed.idp.client_id()))
            .arg(format!("-oidc-client-secret={}", bed.idp.client_secret())),
    )
    .await
    .unwrap();
    let mut on_other = callback.clone();
    on_other.set_port(Some(other_key.port())).unwrap();
    // (A copy of the browser: every callback answer clears the single-use
    // login cookie, also a refusal.)
    let refused = browser.clone().get(on_other.as_str()).await.unwrap();
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "{}",
        refused.excerpt()
    );
    assert!(
        refused.text().contains("different session key"),
        "{}",
        refused.text()
    );

    // Same callback, sent to the other replica (cookies are per host, not
    // per port, RFC 6265 section 8.5, so the login-state cookie goes along).
    let mut on_second = callback.clone();
    on_second.set_port(Some(second.port())).unwrap();
    let response = browser.get(on_second.as_str()).await.unwrap();
    assert_eq!(
        response.status,
        StatusCode::SEE_OTHER,
        "{}",
        response.excerpt()
    );
    let (user, _) = review_user(&self_subject_review(&mut browser, &second).await);
    assert_eq!(user, "alice");
    let me = json_body(
        &browser
            .get(&second.url(&format!("/clusters/{CLUSTER}/me")))
            .await
            .unwrap(),
    );
    assert_eq!(me["username"], "alice");
}

/// A 15-second ID token: within 10 s of expiry the server refreshes, the
/// API server gets the new token with the same request, the browser the
/// new cookies (scoped below the base URL).
#[tokio::test]
async fn refresh_before_expiry_is_used_for_the_same_request() {
    // Under a base URL: Headlamp's own refresh check ignores it.
    let bed = bed(BedOptions {
        id_token_ttl: 15,
        base_url: "/headlamp",
        ..BedOptions::default()
    })
    .await;
    let server = bed.server().await;
    let mut browser = ScriptedBrowser::new().unwrap();
    let callback = browser
        .sign_in(&server, CLUSTER, TestUser::Alice)
        .await
        .unwrap();
    assert_eq!(callback.status, StatusCode::SEE_OTHER);
    bed.api.request_log().clear();
    let (user, _) = review_user(&self_subject_review(&mut browser, &server).await);
    assert_eq!(user, "alice");
    let first_token = bed.api_requests("/selfsubjectreviews")[0]
        .header("authorization")
        .unwrap()
        .to_owned();
    let exp = claims(&first_token)["exp"].as_u64().unwrap();
    // Wait until the token is inside the 10-second refresh window.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let wait = (exp.saturating_sub(9)).saturating_sub(now);
    assert!(wait <= 15, "the IdP's token lives 15 s");
    tokio::time::sleep(Duration::from_secs(wait)).await;

    bed.api.request_log().clear();
    let review = self_subject_review(&mut browser, &server).await;
    let (user, _) = review_user(&review);
    assert_eq!(user, "alice");
    let upstream = bed.api_requests("/selfsubjectreviews");
    let sent = upstream[0].header("authorization").unwrap();
    assert_ne!(sent, first_token, "the refreshed token went upstream");
    assert!(claims(sent)["exp"].as_u64().unwrap() > exp);
    let cookies = set_cookies(&review);
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with(&format!("headlamp-auth-{CLUSTER}.0=ey"))),
        "{cookies:?}"
    );
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with(&format!("headlamp-refresh-{CLUSTER}="))),
        "{cookies:?}"
    );
    assert!(
        cookies
            .iter()
            .all(|c| c.contains(&format!("; Path=/headlamp/clusters/{CLUSTER};"))),
        "{cookies:?}"
    );
    // The next request uses the new cookie: no second refresh.
    bed.api.request_log().clear();
    let again = self_subject_review(&mut browser, &server).await;
    assert!(set_cookies(&again).is_empty(), "{:?}", set_cookies(&again));
    assert_eq!(
        bed.api_requests("/selfsubjectreviews")[0]
            .header("authorization")
            .unwrap(),
        sent
    );
    let metrics = browser.get(&server.url("/metrics")).await.unwrap().text();
    assert!(
        metrics.contains(r#"headlamp_oidc_token_refreshes_total{outcome="success"} 1"#),
        "{metrics}"
    );
}

fn claims(authorization: &str) -> Value {
    let token = authorization.trim_start_matches("Bearer ");
    headlamp_test_util::idp::tokens::insecure_jwt_claims(token).unwrap()
}

/// `-oidc-impersonate`: the server verifies alice's token and calls the
/// API server as its service account with Impersonate-* headers; client
/// Impersonate-* headers and our cookies never reach the API server.
#[tokio::test]
async fn impersonate_mode_acts_as_the_verified_user() {
    let bed = bed(BedOptions::default()).await;
    let server = ServerProcess::start(bed.server_options(0).arg("-oidc-impersonate"))
        .await
        .unwrap();
    let mut browser = ScriptedBrowser::new().unwrap();
    let callback = browser
        .sign_in(&server, CLUSTER, TestUser::Alice)
        .await
        .unwrap();
    assert_eq!(
        callback.status,
        StatusCode::SEE_OTHER,
        "{}",
        callback.excerpt()
    );
    bed.api.request_log().clear();
    let response = browser
        .send(
            Method::POST,
            &server.url(&format!(
                "/clusters/{CLUSTER}/apis/authentication.k8s.io/v1/selfsubjectreviews"
            )),
            Some(&json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})),
            &[
                ("impersonate-user", "system:admin"),
                ("impersonate-group", "system:masters"),
                ("cookie", "other=kept"),
            ],
        )
        .await
        .unwrap();
    let (user, groups) = review_user(&response);
    assert_eq!(user, "alice");
    assert!(
        groups.contains(&"dev".to_owned()) && groups.contains(&"ops".to_owned()),
        "{groups:?}"
    );
    assert!(!groups.contains(&"system:masters".to_owned()));
    let upstream = &bed.api_requests("/selfsubjectreviews")[0];
    assert_eq!(upstream.header_values("impersonate-user"), ["alice"]);
    assert_eq!(upstream.header_values("impersonate-group"), ["dev", "ops"]);
    assert!(
        upstream
            .cookie_names()
            .iter()
            .all(|n| !n.starts_with("headlamp-")),
        "{:?}",
        upstream.cookie_names()
    );
    assert_eq!(
        upstream.authenticated_user.as_ref().unwrap().username,
        headlamp_test_util::apiserver::SERVICE_ACCOUNT_USER
    );

    // Without a token the proxy refuses before the API server is asked.
    let mut anonymous = ScriptedBrowser::new().unwrap();
    bed.api.request_log().clear();
    let refused = self_subject_review(&mut anonymous, &server).await;
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        refused.excerpt()
    );
    assert!(bed.api_requests("/selfsubjectreviews").is_empty());
    let metrics = browser.get(&server.url("/metrics")).await.unwrap().text();
    assert!(
        metrics.contains(&format!(
            "headlamp_proxy_failures_total{{cluster=\"{CLUSTER}\""
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"headlamp_token_validations_total{result="accepted",reason=""}"#),
        "{metrics}"
    );
}

/// Seconds until `exp - 9`: inside the 10-second refresh window.
async fn sleep_into_refresh_window(authorization: &str) -> u64 {
    let exp = claims(authorization)["exp"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let wait = exp.saturating_sub(9).saturating_sub(now);
    assert!(wait <= 15, "the IdP's token lives 15 s");
    tokio::time::sleep(Duration::from_secs(wait)).await;
    exp
}

/// Signs alice in on a bed with 15-second tokens and returns the token the
/// API server saw first.
async fn signed_in_with_short_tokens(
    bed: &Bed,
    server: &ServerProcess,
    browser: &mut ScriptedBrowser,
) -> String {
    let callback = browser
        .sign_in(server, CLUSTER, TestUser::Alice)
        .await
        .unwrap();
    assert_eq!(
        callback.status,
        StatusCode::SEE_OTHER,
        "{}",
        callback.excerpt()
    );
    bed.api.request_log().clear();
    review_user(&self_subject_review(browser, server).await);
    bed.api_requests("/selfsubjectreviews")[0]
        .header("authorization")
        .unwrap()
        .to_owned()
}

/// IdP down: the current token is kept until it really expires. IdP back
/// but the grant gone (`invalid_grant`): the cookies are cleared and the
/// answer is a 401 Status telling the user to sign in again.
#[tokio::test]
async fn a_failed_refresh_keeps_the_token_and_a_refused_one_ends_the_session() {
    let mut bed = bed(BedOptions {
        id_token_ttl: 15,
        ..BedOptions::default()
    })
    .await;
    let server = bed.server().await;
    let mut browser = ScriptedBrowser::new().unwrap();
    let first = signed_in_with_short_tokens(&bed, &server, &mut browser).await;
    sleep_into_refresh_window(&first).await;

    bed.idp.stop().await;
    bed.api.request_log().clear();
    let review = self_subject_review(&mut browser, &server).await;
    let (user, _) = review_user(&review);
    assert_eq!(user, "alice", "the old token still works until it expires");
    assert!(
        set_cookies(&review).is_empty(),
        "{:?}",
        set_cookies(&review)
    );
    assert_eq!(
        bed.api_requests("/selfsubjectreviews")[0]
            .header("authorization")
            .unwrap(),
        first
    );

    // A restarted IdP has forgotten its grants: the refresh token is refused.
    bed.idp.restart().await.unwrap();
    bed.api.request_log().clear();
    let ended = self_subject_review(&mut browser, &server).await;
    assert_eq!(
        ended.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        ended.excerpt()
    );
    let status = json_body(&ended);
    assert_eq!(status["kind"], "Status");
    assert!(
        status["message"].as_str().unwrap().contains("sign in"),
        "{status}"
    );
    assert!(bed.api_requests("/selfsubjectreviews").is_empty());
    assert!(
        !browser
            .jar()
            .names_for_host("127.0.0.1")
            .iter()
            .any(|n| n.starts_with("headlamp-auth-") || n.starts_with("headlamp-refresh-")),
        "{:?}",
        browser.jar().names_for_host("127.0.0.1")
    );
}

/// A WebSocket watch (what the frontend opens for live lists) in the
/// refresh window: the upgrade itself is refreshed, the API server sees the
/// new token on it, and the events flow.
#[tokio::test]
async fn a_websocket_watch_is_refreshed_too() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

    let bed = bed(BedOptions {
        id_token_ttl: 15,
        ..BedOptions::default()
    })
    .await;
    let server = bed.server().await;
    let mut browser = ScriptedBrowser::new().unwrap();
    let first = signed_in_with_short_tokens(&bed, &server, &mut browser).await;
    sleep_into_refresh_window(&first).await;

    let url = format!(
        "ws://127.0.0.1:{}/clusters/{CLUSTER}/api/v1/namespaces?watch=1",
        server.port()
    );
    let mut request = url.as_str().into_client_request().unwrap();
    let cookies = browser
        .jar()
        .header_for(&url::Url::parse(&server.url(&format!("/clusters/{CLUSTER}/api"))).unwrap())
        .unwrap();
    let headers = request.headers_mut();
    headers.insert("cookie", cookies.parse().unwrap());
    headers.insert(
        "sec-websocket-protocol",
        "base64.binary.k8s.io".parse().unwrap(),
    );
    headers.insert("origin", server.origin().parse().unwrap());
    bed.api.request_log().clear();
    let (mut ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert!(
        response.headers().get_all("set-cookie").iter().any(|c| c
            .to_str()
            .unwrap()
            .starts_with(&format!("headlamp-auth-{CLUSTER}.0=ey"))),
        "the upgrade response carries the new token cookie: {:?}",
        response.headers()
    );
    let event = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => return text.to_string(),
                Some(Ok(Message::Binary(bytes))) => {
                    return String::from_utf8_lossy(&bytes).into_owned();
                }
                Some(Ok(_)) => continue,
                other => panic!("the watch ended: {other:?}"),
            }
        }
    })
    .await
    .unwrap();
    assert!(event.contains("ADDED"), "{event}");
    let upgrade = bed
        .api
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/namespaces"))
        .unwrap();
    let sent = upgrade.header("authorization").unwrap();
    assert_ne!(sent, first, "the upgrade carried the refreshed token");
    assert_eq!(upgrade.effective_user.as_ref().unwrap().username, "alice");
}

/// Served over TLS (`-tls-cert-path`/`-tls-key-path`): the callback URL is
/// https and every cookie is `Secure`; behind a TLS-terminating proxy
/// (`X-Forwarded-Proto: https`) too.
#[tokio::test]
async fn over_tls_the_cookies_are_secure() {
    let port = free_port();
    let pki = headlamp_test_util::tls::TestPki::generate().unwrap();
    let cert = pki.issue_server_cert("headlamp", &["127.0.0.1"]).unwrap();
    let idp = TestIdp::start(TestIdpOptions::new(format!(
        "https://127.0.0.1:{port}/oidc-callback"
    )))
    .await
    .unwrap();
    let api = TestApiServer::start(ApiServerOptions::with_oidc(
        OidcOptions::new(idp.issuer(), idp.client_id()).username_claim("preferred_username"),
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig, KubeUser::Token("unused".to_owned()))
        .unwrap();
    let server = ServerProcess::start(
        ServerOptions::new(port)
            .arg(format!("-kubeconfig={}", kubeconfig.display()))
            .arg(format!("-oidc-idp-issuer-url={}", idp.issuer()))
            .arg(format!("-oidc-client-id={}", idp.client_id()))
            .arg(format!("-oidc-client-secret={}", idp.client_secret()))
            .arg("-oidc-scopes=profile,email,groups")
            .arg(format!("-tls-cert-path={}", cert.cert_path.display()))
            .arg(format!("-tls-key-path={}", cert.key_path.display())),
    )
    .await
    .unwrap();
    assert!(server.url("/config").starts_with("https://"));
    let client = headlamp_test_util::idp::HttpClient::with_roots([pki.ca_der()]).unwrap();
    let mut browser = ScriptedBrowser::with_client(client);
    let start = browser
        .get(&format!("{}?cluster={CLUSTER}", server.url("/oidc")))
        .await
        .unwrap();
    assert_eq!(start.status, StatusCode::FOUND);
    let location = start.headers[LOCATION].to_str().unwrap();
    assert!(
        location.contains(&format!(
            "redirect_uri=https%3A%2F%2F127.0.0.1%3A{port}%2Foidc-callback"
        )),
        "{location}"
    );
    assert!(
        set_cookies(&start)[0].ends_with("; Secure"),
        "{:?}",
        set_cookies(&start)
    );

    let mut browser = ScriptedBrowser::with_client(
        headlamp_test_util::idp::HttpClient::with_roots([pki.ca_der()]).unwrap(),
    );
    let callback = browser
        .sign_in(&server, CLUSTER, TestUser::Alice)
        .await
        .unwrap();
    assert_eq!(
        callback.status,
        StatusCode::SEE_OTHER,
        "{}",
        callback.excerpt()
    );
    let cookies = set_cookies(&callback);
    assert!(
        cookies
            .iter()
            .filter(|c| c.starts_with("headlamp-auth-") || c.starts_with("headlamp-refresh-"))
            .all(|c| c.ends_with("; Secure")),
        "{cookies:?}"
    );
    let me = json_body(
        &browser
            .get(&server.url(&format!("/clusters/{CLUSTER}/me")))
            .await
            .unwrap(),
    );
    assert_eq!(me["username"], "alice");
}

#[tokio::test]
async fn behind_a_tls_proxy_the_cookies_are_secure() {
    let bed = bed(BedOptions::default()).await;
    let server = bed.server().await;
    let mut browser = ScriptedBrowser::new().unwrap();
    let set = browser
        .send(
            Method::POST,
            &server.url(&format!("/clusters/{CLUSTER}/set-token")),
            Some(&json!({"token": "a.b.c"})),
            &[("x-forwarded-proto", "https")],
        )
        .await
        .unwrap();
    assert_eq!(set.status, StatusCode::OK);
    let cookies = set_cookies(&set);
    assert!(cookies[0].starts_with(&format!("headlamp-auth-{CLUSTER}.0=a.b.c;")));
    assert!(
        cookies.iter().all(|c| c.ends_with("; Secure")),
        "{cookies:?}"
    );
}

/// The IdP is down when the server starts: it starts anyway, `/readyz`
/// says which issuer is missing, sign-in is a clear 503 page; once the IdP
/// is up, background discovery makes it ready without a restart.
#[tokio::test]
async fn starts_while_the_idp_is_down_and_becomes_ready() {
    let mut bed = bed(BedOptions::default()).await;
    bed.idp.stop().await;
    let server = bed.server().await;
    let mut browser = ScriptedBrowser::new().unwrap();
    let ready = browser.get(&server.url("/readyz")).await.unwrap();
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        ready
            .text()
            .contains(&format!("OIDC discovery for {}", bed.idp.issuer())),
        "{}",
        ready.text()
    );
    let start = browser
        .get(&format!("{}?cluster={CLUSTER}", server.url("/oidc")))
        .await
        .unwrap();
    assert_eq!(
        start.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        start.text()
    );
    assert!(
        start.text().contains("identity provider is unavailable"),
        "{}",
        start.text()
    );

    bed.idp.restart().await.unwrap();
    // Background discovery retries with backoff (1 s, 2 s, 4 s, ...).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ready = browser.get(&server.url("/readyz")).await.unwrap();
        if ready.status == StatusCode::OK {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", ready.text());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let callback = browser
        .sign_in(&server, CLUSTER, TestUser::Alice)
        .await
        .unwrap();
    assert_eq!(
        callback.status,
        StatusCode::SEE_OTHER,
        "{}",
        callback.excerpt()
    );
    let ready = browser.get(&server.url("/readyz")).await.unwrap();
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text());
}

/// No global `-oidc-*` flags: a kubeconfig context whose user has an
/// `auth-provider: oidc` config signs in with those settings (as Headlamp
/// reads them); a context without one has no sign-in.
#[tokio::test]
async fn a_kubeconfig_auth_provider_configures_sign_in() {
    use headlamp_test_util::kubeconfig::{KubeCluster, Kubeconfig, OidcAuthProvider};

    let port = free_port();
    let idp = TestIdp::start(TestIdpOptions::new(callback_url_for(port, "")))
        .await
        .unwrap();
    let api = TestApiServer::start(ApiServerOptions::with_oidc(
        OidcOptions::new(idp.issuer(), idp.client_id()).username_claim("preferred_username"),
    ))
    .await
    .unwrap();
    let provider = OidcAuthProvider {
        client_id: idp.client_id().to_owned(),
        client_secret: Some(idp.client_secret().to_owned()),
        idp_issuer_url: idp.issuer().to_owned(),
        extra: [("scope".to_owned(), "profile,email,groups".to_owned())].into(),
        ..OidcAuthProvider::default()
    };
    let cluster = KubeCluster {
        server: api.url(),
        ca_pem: Some(api.ca_pem().to_owned()),
        insecure_skip_tls_verify: false,
    };
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    Kubeconfig::new()
        .cluster("testbed", cluster)
        .user("sso", KubeUser::Oidc(provider))
        .user("static", KubeUser::Token("unused".to_owned()))
        .context("sso", "testbed", "sso", None)
        .context("static", "testbed", "static", None)
        .current_context("sso")
        .write(&kubeconfig)
        .unwrap();
    let server = ServerProcess::start(
        ServerOptions::new(port).arg(format!("-kubeconfig={}", kubeconfig.display())),
    )
    .await
    .unwrap();
    let mut browser = ScriptedBrowser::new().unwrap();
    let config = json_body(&browser.get(&server.url("/config")).await.unwrap());
    let auth_type = |name: &str| {
        config["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()["auth_type"]
            .clone()
    };
    assert_eq!(auth_type("sso"), "oidc", "{config}");
    assert_eq!(auth_type("static"), "", "{config}");

    let callback = browser
        .sign_in(&server, "sso", TestUser::Alice)
        .await
        .unwrap();
    assert_eq!(
        callback.status,
        StatusCode::SEE_OTHER,
        "{}",
        callback.excerpt()
    );
    let me = json_body(&browser.get(&server.url("/clusters/sso/me")).await.unwrap());
    assert_eq!(me["username"], "alice");
    assert_eq!(me["groups"], json!(["dev", "ops"]));
    let review = browser
        .post_json(
            &server.url("/clusters/sso/apis/authentication.k8s.io/v1/selfsubjectreviews"),
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
        )
        .await
        .unwrap();
    assert_eq!(review_user(&review).0, "alice");

    let none = browser
        .get(&format!("{}?cluster=static", server.url("/oidc")))
        .await
        .unwrap();
    assert_eq!(none.status, StatusCode::BAD_REQUEST);
    assert!(
        none.text().contains("has no OpenID Connect settings"),
        "{}",
        none.text()
    );
}
