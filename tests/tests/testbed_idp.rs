//! Self-tests of the test bed's real OpenID provider (npm `oidc-provider`,
//! tests/idp/server.mjs) and of the harness that drives it.
//!
//! They need node and `scripts/install-test-deps.sh`; without them every test
//! here fails saying what to install (never a silent pass).
//!
//! Run one: `cargo test -p headlamp-e2e --test testbed_idp -- alice`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed step is a failed test, with its message"
)]

use std::time::Duration;

use headlamp_test_util::TestBedError;
use headlamp_test_util::idp::{
    AccessTokenFormat, AuthorizationRequest, ClientAuthMethod, RefreshTokens, TestIdp,
    TestIdpOptions, TestUser, scripted_abort, scripted_login,
};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use url::Url;

/// Nothing listens here: the scripted login stops before requesting it.
const REDIRECT_URI: &str = "http://127.0.0.1:9/oidc-callback";

async fn start_idp() -> TestIdp {
    TestIdp::start(TestIdpOptions::new(REDIRECT_URI))
        .await
        .unwrap()
}

fn query(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Verifies `jwt` against the IdP's JWKS as a relying party must (signature,
/// `iss`, `aud`, `exp`), independently of our own crates.
async fn verify_with_jwks(idp: &TestIdp, jwt: &str, audience: &str) -> Value {
    let jwks: JwkSet = serde_json::from_value(idp.jwks().await.unwrap()).unwrap();
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let kid = header.kid.expect("the IdP names its key");
    let jwk = jwks.find(&kid).expect("the token's kid is in the JWKS");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[idp.issuer()]);
    validation.set_audience(&[audience]);
    jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .unwrap()
        .claims
}

#[tokio::test]
async fn idp_starts_and_serves_a_sane_discovery_document() {
    let idp = start_idp().await;
    assert!(idp.issuer().starts_with("http://127.0.0.1:"));
    assert_eq!(idp.issuer(), format!("http://127.0.0.1:{}", idp.port()));

    let discovery = idp.discovery().await.unwrap();
    assert_eq!(discovery["issuer"], idp.issuer());
    for endpoint in [
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "userinfo_endpoint",
    ] {
        let url = discovery[endpoint].as_str().unwrap();
        assert!(url.starts_with(idp.issuer()), "{endpoint} = {url}");
    }
    assert_eq!(
        discovery["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    assert_eq!(
        discovery["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        discovery["response_types_supported"],
        serde_json::json!(["code"])
    );
    let scopes: Vec<&str> = discovery["scopes_supported"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for scope in ["openid", "profile", "email", "groups", "offline_access"] {
        assert!(scopes.contains(&scope), "{scope} missing from {scopes:?}");
    }
    let grants = discovery["grant_types_supported"].as_array().unwrap();
    assert!(grants.contains(&"refresh_token".into()));
    assert!(grants.contains(&"authorization_code".into()));
    // RFC 9207: the IdP adds `iss` to its authorization responses.
    assert_eq!(
        discovery["authorization_response_iss_parameter_supported"],
        true
    );

    let jwks = idp.jwks().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "RSA");
    assert_eq!(keys[0]["alg"], "RS256");
    assert!(
        keys[0].get("d").is_none(),
        "the JWKS must not publish the private key"
    );
}

#[tokio::test]
async fn scripted_login_for_alice_returns_a_code() {
    let idp = start_idp().await;
    let request = AuthorizationRequest::new(REDIRECT_URI);
    let redirect = scripted_login(
        &idp.authorization_url(&request),
        TestUser::Alice.login(),
        &TestUser::Alice.password(),
    )
    .await
    .unwrap();

    assert!(redirect.as_str().starts_with(REDIRECT_URI), "{redirect}");
    assert!(query(&redirect, "code").is_some_and(|c| c.len() >= 20));
    assert_eq!(query(&redirect, "state"), Some(request.state.clone()));
    assert_eq!(query(&redirect, "iss").as_deref(), Some(idp.issuer()));
    assert_eq!(query(&redirect, "error"), None);
}

#[tokio::test]
async fn alice_gets_a_verifiable_id_token_with_her_groups_in_it() {
    let idp = start_idp().await;
    let tokens = idp.tokens_for(TestUser::Alice).await.unwrap();
    assert_eq!(tokens.token_type, "Bearer");
    assert!(
        tokens.refresh_token.is_some(),
        "a refresh token without offline_access"
    );

    let claims = verify_with_jwks(&idp, tokens.id_token().unwrap(), idp.client_id()).await;
    assert_eq!(claims["sub"], "sub-alice");
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["name"], "Alice Liddell");
    assert_eq!(claims["groups"], serde_json::json!(["dev", "ops"]));
}

#[tokio::test]
async fn every_test_user_logs_in_with_the_documented_claims() {
    let idp = start_idp().await;
    for user in TestUser::ALL {
        let tokens = idp.tokens_for(user).await.unwrap();
        let claims = verify_with_jwks(&idp, tokens.id_token().unwrap(), idp.client_id()).await;
        let context = format!("{user:?}: {claims}");
        assert_eq!(claims["sub"], user.sub(), "{context}");
        assert_eq!(
            claims["preferred_username"],
            user.preferred_username(),
            "{context}"
        );
        assert_eq!(claims["email"], user.email(), "{context}");
        assert_eq!(claims["email_verified"], user.email_verified(), "{context}");
        assert_eq!(claims["name"], user.name(), "{context}");
        match user.groups() {
            Some(groups) => assert_eq!(claims["groups"], serde_json::json!(groups), "{context}"),
            None => assert!(claims.get("groups").is_none(), "{context}"),
        }
    }
    // Gwen exists to overflow one 3800-byte Headlamp cookie chunk.
    let gwen = idp.tokens_for(TestUser::Gwen).await.unwrap();
    assert!(
        gwen.id_token().unwrap().len() > 3800,
        "{}",
        gwen.id_token().unwrap().len()
    );
}

#[tokio::test]
async fn refresh_rotates_the_refresh_token_and_refuses_the_spent_one() {
    let idp = start_idp().await;
    let first = idp.tokens_for(TestUser::Alice).await.unwrap();
    let first_refresh = first.refresh_token.clone().unwrap();

    let second = idp.refresh(&first_refresh).await.unwrap();
    let second_refresh = second.refresh_token.clone().unwrap();
    assert_ne!(second_refresh, first_refresh, "refresh tokens rotate");
    assert_ne!(second.access_token, first.access_token);
    let claims = verify_with_jwks(&idp, second.id_token().unwrap(), idp.client_id()).await;
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(claims["groups"], serde_json::json!(["dev", "ops"]));

    let reuse = idp.refresh(&first_refresh).await.unwrap_err();
    assert!(
        matches!(&reuse, TestBedError::UnexpectedResponse { status: 400, body, .. } if body.contains("invalid_grant")),
        "{reuse}"
    );
}

#[tokio::test]
async fn short_lifetimes_are_honoured_so_expiry_is_testable_in_seconds() {
    let idp = TestIdp::start(
        TestIdpOptions::new(REDIRECT_URI)
            .id_token_ttl_secs(2)
            .access_token_ttl_secs(2)
            .refresh_token_ttl_secs(3),
    )
    .await
    .unwrap();
    let tokens = idp.tokens_for(TestUser::Bob).await.unwrap();
    let claims = tokens.insecure_id_token_claims().unwrap();
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 2);
    assert_eq!(tokens.expires_in, Some(2));

    // A refresh within the refresh token's lifetime works (and rotates it).
    let refreshed = idp
        .refresh(tokens.refresh_token.as_deref().unwrap())
        .await
        .unwrap();
    let rotated = refreshed.refresh_token.unwrap();
    // Real time, bounded: the rotated token lives 3 s.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let expired = idp.refresh(&rotated).await.unwrap_err();
    assert!(
        matches!(&expired, TestBedError::UnexpectedResponse { status: 400, body, .. } if body.contains("invalid_grant")),
        "{expired}"
    );
}

#[tokio::test]
async fn a_wrong_password_is_refused_by_the_login_form() {
    let idp = start_idp().await;
    let request = AuthorizationRequest::new(REDIRECT_URI);
    let err = scripted_login(&idp.authorization_url(&request), "alice", "bob-password")
        .await
        .unwrap_err();
    match err {
        TestBedError::LoginRejected { username, message } => {
            assert_eq!(username, "alice");
            assert!(
                message.contains("Invalid username or password"),
                "{message}"
            );
        }
        other => panic!("expected LoginRejected, got {other}"),
    }
}

#[tokio::test]
async fn cancel_at_the_idp_answers_access_denied() {
    let idp = start_idp().await;
    let request = AuthorizationRequest::new(REDIRECT_URI);
    let redirect = scripted_abort(&idp.authorization_url(&request))
        .await
        .unwrap();
    assert!(redirect.as_str().starts_with(REDIRECT_URI));
    assert_eq!(query(&redirect, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&redirect, "state"), Some(request.state));
    assert_eq!(query(&redirect, "code"), None);
}

#[tokio::test]
async fn pkce_is_optional_by_default_enforced_on_request_and_its_verifier_checked() {
    // Default: a request without PKCE works (for -oidc-use-pkce=false tests).
    let idp = start_idp().await;
    let mut without = AuthorizationRequest::new(REDIRECT_URI);
    without.pkce = None;
    idp.code_flow(TestUser::Alice, &without).await.unwrap();

    // A wrong verifier is refused at the token endpoint (RFC 7636 4.6).
    let with = AuthorizationRequest::new(REDIRECT_URI);
    let redirect = scripted_login(&idp.authorization_url(&with), "alice", "alice-password")
        .await
        .unwrap();
    let code = query(&redirect, "code").unwrap();
    let err = idp
        .exchange_code(
            &code,
            REDIRECT_URI,
            Some("a-wrong-verifier-that-is-long-enough-to-be-valid-0000"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TestBedError::UnexpectedResponse { status: 400, body, .. } if body.contains("invalid_grant")),
        "{err}"
    );

    // --require-pkce: the IdP answers a request without PKCE with an error.
    let strict = TestIdp::start(TestIdpOptions {
        require_pkce: true,
        ..TestIdpOptions::new(REDIRECT_URI)
    })
    .await
    .unwrap();
    let redirect = scripted_login(
        &strict.authorization_url(&without),
        "alice",
        "alice-password",
    )
    .await
    .unwrap();
    assert_eq!(
        query(&redirect, "error").as_deref(),
        Some("invalid_request"),
        "{redirect}"
    );
}

#[tokio::test]
async fn a_restarted_idp_keeps_its_issuer_and_keys_until_told_to_rotate() {
    let mut idp = start_idp().await;
    let issuer = idp.issuer().to_owned();
    let before = idp.tokens_for(TestUser::Alice).await.unwrap();
    let kid = idp.jwks().await.unwrap()["keys"][0]["kid"].clone();

    idp.stop().await;
    assert!(!idp.is_running());
    assert!(
        matches!(idp.discovery().await, Err(TestBedError::Http { .. })),
        "a stopped IdP refuses connections"
    );

    idp.restart().await.unwrap();
    assert_eq!(idp.issuer(), issuer);
    assert_eq!(idp.jwks().await.unwrap()["keys"][0]["kid"], kid);
    // A token issued before the restart still verifies.
    verify_with_jwks(&idp, before.id_token().unwrap(), idp.client_id()).await;
    // The refresh token lived in the old process's memory.
    assert!(
        idp.refresh(before.refresh_token.as_deref().unwrap())
            .await
            .is_err()
    );

    idp.restart_with_new_keys().await.unwrap();
    assert_eq!(idp.issuer(), issuer);
    assert_ne!(idp.jwks().await.unwrap()["keys"][0]["kid"], kid);
}

#[tokio::test]
async fn client_secret_post_works_and_a_wrong_secret_is_refused() {
    let idp = TestIdp::start(TestIdpOptions {
        client_auth_method: ClientAuthMethod::ClientSecretPost,
        ..TestIdpOptions::new(REDIRECT_URI).client("other-client", "other-secret")
    })
    .await
    .unwrap();
    let tokens = idp.tokens_for(TestUser::Bob).await.unwrap();
    assert_eq!(
        tokens.insecure_id_token_claims().unwrap()["aud"],
        "other-client"
    );

    let liar =
        TestIdp::start(TestIdpOptions::new(REDIRECT_URI).client("headlamp", "the-real-secret"))
            .await
            .unwrap();
    let request = AuthorizationRequest::new(REDIRECT_URI);
    let redirect = scripted_login(&liar.authorization_url(&request), "bob", "bob-password")
        .await
        .unwrap();
    // Same client id, wrong secret.
    let code = query(&redirect, "code").unwrap();
    let err = token_call_with(&liar, "not-the-secret", &code, &request).await;
    assert!(err.contains("invalid_client"), "{err}");
}

/// A token request with an arbitrary secret, as a misconfigured relying
/// party would send it.
async fn token_call_with(
    idp: &TestIdp,
    secret: &str,
    code: &str,
    request: &AuthorizationRequest,
) -> String {
    use base64::Engine as _;
    use http_body_util::Full;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", &request.redirect_uri)
        .append_pair("code_verifier", &request.pkce.as_ref().unwrap().verifier)
        .finish();
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{secret}", idp.client_id()));
    let req = http::Request::post(format!("{}/token", idp.issuer()))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", format!("Basic {basic}"))
        .body(Full::new(bytes::Bytes::from(body)))
        .unwrap();
    let response = idp.http_client().send(req, "token call").await.unwrap();
    assert_eq!(response.status, 401);
    response.text()
}

#[tokio::test]
async fn jwt_access_tokens_carry_the_client_audience_and_the_groups() {
    let idp = TestIdp::start(TestIdpOptions {
        access_token_format: AccessTokenFormat::Jwt,
        ..TestIdpOptions::new(REDIRECT_URI)
    })
    .await
    .unwrap();
    let tokens = idp.tokens_for(TestUser::Alice).await.unwrap();
    let claims = verify_with_jwks(&idp, &tokens.access_token, idp.client_id()).await;
    assert_eq!(claims["sub"], "sub-alice");
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(claims["groups"], serde_json::json!(["dev", "ops"]));
    // The ID token is unchanged.
    assert_eq!(
        tokens.insecure_id_token_claims().unwrap()["groups"],
        serde_json::json!(["dev", "ops"])
    );
}

#[tokio::test]
async fn refresh_token_policies_offline_access_and_never() {
    let offline = TestIdp::start(TestIdpOptions {
        refresh_tokens: RefreshTokens::OfflineAccess,
        ..TestIdpOptions::new(REDIRECT_URI)
    })
    .await
    .unwrap();
    assert!(
        offline
            .tokens_for(TestUser::Bob)
            .await
            .unwrap()
            .refresh_token
            .is_none()
    );
    // OIDC Core 11: offline_access is honoured only with prompt=consent.
    let mut request = AuthorizationRequest::new(REDIRECT_URI);
    request.scopes.push("offline_access".to_owned());
    request.prompt = Some("consent".to_owned());
    assert!(
        offline
            .code_flow(TestUser::Bob, &request)
            .await
            .unwrap()
            .refresh_token
            .is_some()
    );

    let never = TestIdp::start(TestIdpOptions {
        refresh_tokens: RefreshTokens::Never,
        ..TestIdpOptions::new(REDIRECT_URI)
    })
    .await
    .unwrap();
    assert!(
        never
            .code_flow(TestUser::Bob, &request)
            .await
            .unwrap()
            .refresh_token
            .is_none()
    );
}

#[tokio::test]
async fn an_issuer_under_a_path_serves_the_whole_flow_there() {
    let idp = TestIdp::start(TestIdpOptions {
        issuer_path: "/realms/test".to_owned(),
        ..TestIdpOptions::new(REDIRECT_URI)
    })
    .await
    .unwrap();
    assert!(idp.issuer().ends_with("/realms/test"));
    let discovery = idp.discovery().await.unwrap();
    assert_eq!(discovery["issuer"], idp.issuer());
    assert!(
        discovery["token_endpoint"]
            .as_str()
            .unwrap()
            .starts_with(idp.issuer())
    );
    let tokens = idp.tokens_for(TestUser::Alice).await.unwrap();
    verify_with_jwks(&idp, tokens.id_token().unwrap(), idp.client_id()).await;
}

#[tokio::test]
async fn bad_options_fail_with_a_message_instead_of_starting() {
    let mut options = TestIdpOptions::new(REDIRECT_URI);
    options.redirect_uris.clear();
    let err = TestIdp::start(options).await.unwrap_err();
    assert!(
        err.to_string().contains("at least one redirect URI"),
        "{err}"
    );

    // server.mjs validates on its own too: a relative redirect URI.
    let err = TestIdp::start(TestIdpOptions::new("/relative"))
        .await
        .unwrap_err();
    match err {
        TestBedError::ProcessExited { logs, .. } => {
            assert!(logs.contains("not an absolute URL"), "{logs}")
        }
        other => panic!("expected ProcessExited, got {other}"),
    }
}

/// A stand-in relying party on its own port: `/oidc` sets a state cookie and
/// redirects to `authorization_url`; `/oidc-callback` echoes the `Cookie`
/// header it received. Enough to prove the session carries cookies across
/// origins the way headlamp-server's login needs.
async fn start_relying_party(
    listener: tokio::net::TcpListener,
    authorization_url: String,
) -> tokio::task::JoinHandle<()> {
    use http_body_util::Full;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let authorization_url = authorization_url.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let authorization_url = authorization_url.clone();
                    async move {
                        let response = match req.uri().path() {
                            "/oidc" => http::Response::builder()
                                .status(302)
                                .header("location", authorization_url)
                                .header(
                                    "set-cookie",
                                    "rp-state=s3cret; Path=/; HttpOnly; SameSite=Lax",
                                )
                                .body(Full::new(bytes::Bytes::new())),
                            _ => {
                                let cookies = req
                                    .headers()
                                    .get("cookie")
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or_default()
                                    .to_owned();
                                http::Response::builder()
                                    .body(Full::new(bytes::Bytes::from(cookies)))
                            }
                        };
                        Ok::<_, std::convert::Infallible>(response.unwrap())
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

#[tokio::test]
async fn a_login_session_carries_the_relying_partys_cookie_through_the_idp() {
    use headlamp_test_util::idp::LoginSession;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rp = format!("http://{}", listener.local_addr().unwrap());
    let callback = format!("{rp}/oidc-callback");
    let idp = TestIdp::start(TestIdpOptions::new(&callback))
        .await
        .unwrap();
    let request = AuthorizationRequest::new(&callback);
    let server = start_relying_party(listener, idp.authorization_url(&request)).await;

    let mut session = LoginSession::new().unwrap();
    let landed = session
        .login(&format!("{rp}/oidc"), &callback, "alice", "alice-password")
        .await
        .unwrap();
    assert_eq!(query(&landed, "state"), Some(request.state.clone()));

    let echoed = session.get(&landed).await.unwrap().text();
    assert!(echoed.contains("rp-state=s3cret"), "{echoed}");
    assert_eq!(session.jar().is_http_only(&landed, "rp-state"), Some(true));

    // A second login in the same session rides the IdP's session cookie:
    // no login form this time (a wrong password would otherwise fail).
    let again = session
        .login(&format!("{rp}/oidc"), &callback, "alice", "not-used")
        .await
        .unwrap();
    assert!(query(&again, "code").is_some());
    server.abort();
}

#[tokio::test]
async fn an_idp_whose_harness_vanished_exits_by_itself() {
    // A test binary killed outright runs no destructor; the IdP must still
    // go. Here `sleep 1` stands for the harness: when it exits, the IdP's
    // stdin reaches EOF, as it does when the test process dies.
    use headlamp_test_util::idp::{ensure_npm_packages, idp_dir};
    use headlamp_test_util::process::{ChildProcess, node_executable};

    ensure_npm_packages().unwrap();
    let node = node_executable().unwrap();
    let mut command = tokio::process::Command::new("sh");
    command.current_dir(idp_dir()).args([
        "-c",
        &format!(
            "sleep 1 | exec '{}' server.mjs --exit-with-stdin --redirect-uri {REDIRECT_URI}",
            node.display()
        ),
    ]);
    let mut process = ChildProcess::spawn("orphan-idp", command, true).unwrap();
    process
        .wait_for_stdout_line(Duration::from_secs(30), |line| {
            line.contains("\"issuer\"").then_some(())
        })
        .await
        .unwrap();
    let status = process.wait(Duration::from_secs(20)).await.unwrap();
    assert!(status.success(), "{status}");
}
