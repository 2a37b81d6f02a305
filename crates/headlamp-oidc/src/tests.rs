//! The whole flow against the in-process fake IdP: discovery, login start,
//! callback, code exchange, ID-token verification, refresh.

use std::time::Duration;

use headlamp_core::{FakeClock, Secret};
use http::header::{COOKIE, LOCATION};

use crate::fake_idp::{CLIENT_ID, CLIENT_SECRET, FakeIdp};
use crate::{
    CallbackParams, HttpLimits, IdpHttpClient, IdpTls, LoginCookie, OidcClient, OidcError,
    OidcProviderSettings, OidcRegistry, SessionKey, TokenEndpointAuth, TokenSet,
};

const NOW: u64 = 1_760_000_000;
const CALLBACK: &str = "http://127.0.0.1:4466/base/oidc-callback";

fn settings(idp: &FakeIdp) -> OidcProviderSettings {
    OidcProviderSettings::new(idp.base.clone(), CLIENT_ID)
        .with_client_secret(Secret::new(CLIENT_SECRET))
}

/// Discovery on demand only, so request counts are deterministic; the
/// background refresher has its own test.
fn registry(clock: &FakeClock) -> OidcRegistry {
    OidcRegistry::on_demand(
        SessionKey::from_material(&[42u8; 32]).unwrap(),
        clock.clone(),
    )
}

struct Bed {
    clock: FakeClock,
    idp: FakeIdp,
    registry: OidcRegistry,
    client: OidcClient,
}

async fn bed() -> Bed {
    bed_with(|_| {}).await
}

async fn bed_with(change: impl FnOnce(&mut OidcProviderSettings)) -> Bed {
    let clock = FakeClock::at(NOW);
    let idp = FakeIdp::start(clock.clone()).await;
    let registry = registry(&clock);
    let mut s = settings(&idp);
    change(&mut s);
    let client = registry.client(s).unwrap();
    Bed {
        clock,
        idp,
        registry,
        client,
    }
}

fn callback_url() -> url::Url {
    url::Url::parse(CALLBACK).unwrap()
}

/// The browser: follows the authorization URL to the (fake) IdP, which
/// answers with a redirect to the callback. Returns the callback query and
/// the `Cookie` header the browser would send to the callback.
async fn browser_authorize(
    cluster: &str,
    bed: &Bed,
) -> Result<(String, http::HeaderMap), OidcError> {
    let start = bed.client.start_login(cluster, &callback_url()).await?;
    let set_cookie = start
        .cookie
        .set_cookie_header()
        .to_str()
        .unwrap()
        .to_owned();
    let pair = set_cookie.split(';').next().unwrap().to_owned();
    let http = IdpHttpClient::new(&IdpTls::default(), HttpLimits::default()).unwrap();
    let response = http
        .send(
            http::Request::get(start.authorization_url.as_str())
                .body(Vec::new())
                .unwrap(),
        )
        .await?;
    assert_eq!(response.status(), 302);
    let location = url::Url::parse(response.headers()[LOCATION].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(CALLBACK), "{location}");
    let mut cookies = http::HeaderMap::new();
    cookies.insert(COOKIE, format!("other=1; {pair}").parse().unwrap());
    Ok((location.query().unwrap_or("").to_owned(), cookies))
}

async fn login(bed: &Bed) -> Result<TokenSet, OidcError> {
    let (query, cookies) = browser_authorize("prod", bed).await?;
    let params = CallbackParams::from_query(Some(&query))?;
    let state = bed.registry.open_login_state(&params, &cookies)?;
    assert_eq!(state.cluster(), "prod");
    assert_eq!(state.redirect_uri(), CALLBACK);
    bed.client.complete_login(state, &params).await
}

fn query_of(url: &url::Url) -> std::collections::HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

#[tokio::test]
async fn authorization_url_has_every_parameter() {
    let bed = bed_with(|s| s.scopes = vec!["groups".into(), "openid".into()]).await;
    let start = bed
        .client
        .start_login("prod", &callback_url())
        .await
        .unwrap();
    let url = &start.authorization_url;
    assert_eq!(url.path(), "/authorize");
    let q = query_of(url);
    assert_eq!(q["tenant"], "t1", "the endpoint's own query is kept");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["redirect_uri"], CALLBACK);
    assert_eq!(q["scope"], "openid groups");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["state"].len(), 43);
    assert_eq!(q["nonce"].len(), 43);
    assert_eq!(q["code_challenge"].len(), 43);
    assert_ne!(q["state"], q["nonce"]);
    let set_cookie = start.cookie.set_cookie_header();
    let set_cookie = set_cookie.to_str().unwrap();
    assert!(set_cookie.starts_with(&format!("headlamp-oidc-login-{}=", &q["state"][..16])));
    assert!(set_cookie.contains("; Path=/base/oidc-callback; Max-Age=600; HttpOnly; SameSite=Lax"));
    assert!(!set_cookie.contains("Secure"), "http callback");
    // Nothing secret in the URL besides what the protocol puts there.
    assert!(!url.as_str().contains(CLIENT_SECRET));

    let again = bed
        .client
        .start_login("prod", &callback_url())
        .await
        .unwrap();
    assert_ne!(query_of(&again.authorization_url)["state"], q["state"]);
}

#[tokio::test]
async fn full_code_flow_with_pkce_nonce_and_basic_auth() {
    let bed = bed().await;
    let tokens = login(&bed).await.unwrap();
    let seen = bed.idp.last_token_request();
    // client_secret_basic is preferred when both are offered.
    assert!(seen.authorization.as_deref().unwrap().starts_with("Basic "));
    assert!(!seen.form.contains_key("client_secret"));
    assert_eq!(seen.form["grant_type"], "authorization_code");
    assert_eq!(seen.form["code_verifier"].len(), 43, "PKCE verifier sent");
    assert_eq!(seen.form["redirect_uri"], CALLBACK);

    assert_eq!(tokens.api_server_token(), tokens.id_token().unwrap());
    assert_eq!(tokens.expires_at(), Some(NOW + 300));
    assert!(tokens.access_token().expose().starts_with("access-"));
    assert!(
        tokens
            .refresh_token()
            .unwrap()
            .expose()
            .starts_with("refresh-")
    );
    let debug = format!("{tokens:?}");
    assert!(!debug.contains("access-") && !debug.contains("refresh-") && !debug.contains("eyJ"));
    assert!(bed.client.is_ready());
    assert_eq!(bed.registry.status().len(), 1);
    assert!(bed.registry.is_ready());
}

#[tokio::test]
async fn client_secret_post_when_basic_is_not_offered() {
    let bed = bed().await;
    bed.idp.set(|b| b.auth_methods = vec!["client_secret_post"]);
    assert_eq!(
        bed.client.endpoints().await.unwrap().token_auth,
        TokenEndpointAuth::ClientSecretPost
    );
    login(&bed).await.unwrap();
    let seen = bed.idp.last_token_request();
    assert!(seen.authorization.is_none());
    assert_eq!(seen.form["client_secret"], CLIENT_SECRET);
    assert_eq!(seen.form["client_id"], CLIENT_ID);
}

#[tokio::test]
async fn pkce_can_be_turned_off() {
    let bed = bed_with(|s| s.use_pkce = false).await;
    let start = bed
        .client
        .start_login("prod", &callback_url())
        .await
        .unwrap();
    let q = query_of(&start.authorization_url);
    assert!(!q.contains_key("code_challenge") && !q.contains_key("code_challenge_method"));
    login(&bed).await.unwrap();
    assert!(
        !bed.idp
            .last_token_request()
            .form
            .contains_key("code_verifier")
    );
}

#[tokio::test]
async fn wrong_pkce_verifier_is_refused_by_the_idp() {
    // Two logins; the callback of the first is completed with the second's
    // cookie name swapped in: the state check catches it first. Here we
    // check the IdP side: a login state from another login (other
    // verifier) cannot redeem this code.
    let bed = bed().await;
    let (query_a, _) = browser_authorize("prod", &bed).await.unwrap();
    let (query_b, cookies_b) = browser_authorize("prod", &bed).await.unwrap();
    let params_a = CallbackParams::from_query(Some(&query_a)).unwrap();
    let params_b = CallbackParams::from_query(Some(&query_b)).unwrap();
    let state_b = bed
        .registry
        .open_login_state(&params_b, &cookies_b)
        .unwrap();
    // Login B's sealed state (its verifier) with login A's code.
    let err = bed
        .client
        .complete_login(state_b, &params_a)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OidcError::TokenEndpoint { code, description: Some(d) } if code == "invalid_grant" && d.contains("PKCE")),
        "{err}"
    );
}

#[tokio::test]
async fn nonce_mismatch_is_refused() {
    let bed = bed().await;
    bed.idp.set(|b| b.wrong_nonce = true);
    let err = login(&bed).await.unwrap_err();
    assert!(matches!(err, OidcError::IdToken { .. }), "{err}");
    assert!(err.to_string().to_lowercase().contains("nonce"), "{err}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn audience_comes_from_the_validator_client_id() {
    let bed = bed_with(|s| s.validator_client_id = Some("kubernetes".into())).await;
    let err = login(&bed).await.unwrap_err();
    assert!(matches!(err, OidcError::IdToken { .. }), "{err}");
    assert!(
        err.to_string().contains("aud") || err.to_string().contains("audience"),
        "{err}"
    );
}

#[tokio::test]
async fn idp_error_parameters_become_a_typed_error() {
    let bed = bed().await;
    bed.idp.set(|b| b.deny = true);
    let (query, _) = browser_authorize("prod", &bed).await.unwrap();
    let err = CallbackParams::from_query(Some(&query)).unwrap_err();
    assert!(
        matches!(&err, OidcError::AuthorizationDenied { code, description: Some(d) } if code == "access_denied" && d == "The user declined"),
        "{err}"
    );
}

#[tokio::test]
async fn login_state_is_bound_to_key_expiry_and_single_use_code() {
    let bed = bed().await;
    let (query, cookies) = browser_authorize("prod", &bed).await.unwrap();
    let params = CallbackParams::from_query(Some(&query)).unwrap();

    // Another replica with another key.
    let other = OidcRegistry::new(
        SessionKey::from_material(&[7u8; 32]).unwrap(),
        bed.clock.clone(),
    );
    assert!(matches!(
        other.open_login_state(&params, &cookies),
        Err(OidcError::SealedWithOtherKey)
    ));
    // A replica with the same key file completes it.
    let replica = registry(&bed.clock);
    let replica_client = replica.client(settings(&bed.idp)).unwrap();
    let state = replica.open_login_state(&params, &cookies).unwrap();
    replica_client.complete_login(state, &params).await.unwrap();
    // Replaying the callback: the code is spent at the IdP.
    let state = bed.registry.open_login_state(&params, &cookies).unwrap();
    let err = bed.client.complete_login(state, &params).await.unwrap_err();
    assert!(matches!(err, OidcError::TokenEndpoint { .. }), "{err}");
    // The response clears the cookie.
    let clear = LoginCookie::clear_header(params.state(), &callback_url()).unwrap();
    assert!(clear.to_str().unwrap().contains("Max-Age=0"));

    // Too slow: the login state expires.
    let (query, cookies) = browser_authorize("prod", &bed).await.unwrap();
    let params = CallbackParams::from_query(Some(&query)).unwrap();
    bed.clock.advance(601);
    assert!(matches!(
        bed.registry.open_login_state(&params, &cookies),
        Err(OidcError::LoginStateExpired { .. })
    ));
}

#[tokio::test]
async fn refresh_rotates_and_keeps_tokens() {
    let bed = bed().await;
    let first = login(&bed).await.unwrap();
    let r1 = first.refresh_token().unwrap().clone();

    bed.clock.advance(200);
    let second = bed.client.refresh(&r1).await.unwrap();
    let seen = bed.idp.last_token_request();
    assert_eq!(seen.form["grant_type"], "refresh_token");
    assert_eq!(seen.form["refresh_token"], r1.expose());
    let r2 = second.refresh_token().unwrap().clone();
    assert_ne!(r2, r1, "rotated refresh token is used");
    assert_eq!(second.expires_at(), Some(NOW + 200 + 300));
    assert_ne!(second.api_server_token(), first.api_server_token());

    // The old one was rotated away: the IdP says invalid_grant.
    let err = bed.client.refresh(&r1).await.unwrap_err();
    assert!(err.is_session_over() && !err.is_retryable(), "{err}");

    // Without rotation, the current refresh token stays.
    bed.idp.set(|b| b.rotate_refresh_tokens = false);
    let third = bed.client.refresh(&r2).await.unwrap();
    assert_eq!(third.refresh_token(), Some(&r2));

    // IdP in trouble: retryable, not session over.
    bed.idp.set(|b| b.token_status_override = Some(503));
    let err = bed.client.refresh(&r2).await.unwrap_err();
    assert!(err.is_retryable() && !err.is_session_over(), "{err}");
    bed.idp.set(|b| b.token_status_override = None);

    // Session ended at the IdP.
    bed.idp.revoke_all();
    let err = bed.client.refresh(&r2).await.unwrap_err();
    assert!(matches!(err, OidcError::SessionOver { .. }), "{err}");
}

#[tokio::test]
async fn refresh_without_id_token() {
    let bed = bed().await;
    let first = login(&bed).await.unwrap();
    bed.idp.set(|b| {
        b.id_token_on_refresh = false;
        b.rotate_refresh_tokens = false;
    });
    let err = bed
        .client
        .refresh(first.refresh_token().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, OidcError::NoIdTokenOnRefresh), "{err}");

    let access = bed.registry.client(OidcProviderSettings {
        use_access_token: true,
        ..settings(&bed.idp)
    });
    let access = access.unwrap();
    let tokens = access
        .refresh(first.refresh_token().unwrap())
        .await
        .unwrap();
    assert_eq!(tokens.api_server_token(), tokens.access_token());
    assert!(tokens.id_token().is_none());
    assert_eq!(tokens.expires_at(), Some(NOW + 300));
}

#[tokio::test]
async fn refresh_cookie_is_bound_to_cluster_purpose_and_ttl() {
    let bed = bed().await;
    let token = Secret::new("refresh-xyz");
    let sealed = bed
        .registry
        .seal_refresh_token("prod", &token, Duration::from_secs(3600))
        .unwrap();
    assert!(!sealed.contains("refresh-xyz"));
    assert_eq!(
        bed.registry.open_refresh_token("prod", &sealed).unwrap(),
        token
    );
    let err = bed.registry.open_refresh_token("dev", &sealed).unwrap_err();
    assert!(err.is_session_over(), "{err}");
    // Not usable as login state.
    let name = "headlamp-oidc-login-AAAAAAAAAAAAAAAA";
    let mut cookies = http::HeaderMap::new();
    cookies.insert(COOKIE, format!("{name}={sealed}").parse().unwrap());
    let params =
        CallbackParams::from_query(Some(&format!("code=c&state={}", "A".repeat(43)))).unwrap();
    assert!(matches!(
        bed.registry.open_login_state(&params, &cookies),
        Err(OidcError::InvalidLoginState { .. })
    ));
    // Another key.
    let other = OidcRegistry::new(
        SessionKey::from_material(&[1u8; 40]).unwrap(),
        bed.clock.clone(),
    );
    assert!(
        other
            .open_refresh_token("prod", &sealed)
            .unwrap_err()
            .to_string()
            .contains("different session key")
    );
    // Past the session TTL.
    bed.clock.advance(3600);
    assert!(bed.registry.open_refresh_token("prod", &sealed).is_err());
}

#[tokio::test]
async fn discovery_issuer_must_match_unless_the_validator_issuer_says_so() {
    let clock = FakeClock::at(NOW);
    let idp = FakeIdp::start(clock.clone()).await;
    idp.set(|b| b.issuer_override = Some("https://public.example".into()));
    let reg = registry(&clock);
    let client = reg.client(settings(&idp)).unwrap();
    let err = client
        .start_login("prod", &callback_url())
        .await
        .unwrap_err();
    assert!(
        matches!(err, OidcError::DiscoveryUnavailable { .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("https://public.example") && text.contains("oidc-validator-idp-issuer-url"),
        "{text}"
    );
    assert!(!client.is_ready());
    assert!(
        client
            .status()
            .last_error
            .unwrap()
            .contains("public.example")
    );

    // A validator issuer that is not what the document says: still refused.
    let other = reg
        .client(OidcProviderSettings {
            validator_issuer_url: Some("https://other.example".into()),
            ..settings(&idp)
        })
        .unwrap();
    assert!(other.start_login("prod", &callback_url()).await.is_err());

    let ok = reg
        .client(OidcProviderSettings {
            validator_issuer_url: Some("https://public.example".into()),
            ..settings(&idp)
        })
        .unwrap();
    ok.start_login("prod", &callback_url()).await.unwrap();
    // ID tokens then carry the validator issuer and verify against it.
    let bed = Bed {
        clock,
        idp,
        registry: reg,
        client: ok,
    };
    login(&bed).await.unwrap();
}

#[tokio::test]
async fn idp_down_at_start_then_up() {
    let clock = FakeClock::at(NOW);
    // Reserve a port, then close it: nothing listens there.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let reg = registry(&clock);
    let client = reg
        .client(
            OidcProviderSettings::new(format!("http://{addr}"), CLIENT_ID)
                .with_client_secret(Secret::new(CLIENT_SECRET)),
        )
        .expect("constructing never needs the IdP");
    assert!(!client.is_ready());
    let err = client
        .start_login("prod", &callback_url())
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&addr.to_string()) && text.contains("has not succeeded yet"),
        "{text}"
    );

    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let idp = FakeIdp::serve(listener, clock.clone());
    // Within a second of a failure, clicks get the failure without another
    // connection attempt; after it, a new attempt succeeds.
    let err = client
        .start_login("prod", &callback_url())
        .await
        .unwrap_err();
    assert!(
        matches!(err, OidcError::DiscoveryUnavailable { .. }),
        "{err}"
    );
    assert_eq!(idp.discovery_fetches(), 0);
    clock.advance(1);
    client.start_login("prod", &callback_url()).await.unwrap();
    assert!(client.is_ready());
    assert!(reg.is_ready());
    drop(idp);
}

#[tokio::test]
async fn cached_discovery_and_keys_survive_an_idp_outage() {
    let bed = bed().await;
    let tokens = login(&bed).await.unwrap();
    let fetches = bed.idp.jwks_fetches();
    assert!(fetches >= 1);
    // Keys are cached: verifying again needs no fetch.
    bed.client
        .verifier()
        .verify(tokens.id_token().unwrap().expose())
        .await
        .unwrap();
    assert_eq!(bed.idp.jwks_fetches(), fetches);
    let status = bed.client.status();
    assert_eq!(status.jwks_fetches as usize, fetches, "{status:?}");
    assert_eq!(status.jwks_failures, 0);
    assert!(status.discovery_fetches >= 1);
    let Bed { idp, client, .. } = bed;
    drop(idp);
    // Discovery is cached: a login can still be started.
    client.start_login("prod", &callback_url()).await.unwrap();
    client
        .verifier()
        .verify(tokens.id_token().unwrap().expose())
        .await
        .unwrap();
    // But talking to the IdP fails, as a retryable error.
    let err = client
        .refresh(tokens.refresh_token().unwrap())
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(matches!(err, OidcError::IdpUnreachable { .. }), "{err}");
}

#[tokio::test]
async fn clients_of_one_issuer_share_one_cache() {
    let bed = bed().await;
    let b = bed
        .registry
        .client(OidcProviderSettings {
            client_id: "another".into(),
            ..settings(&bed.idp)
        })
        .unwrap();
    bed.client.endpoints().await.unwrap();
    assert!(b.is_ready(), "discovery by one client serves the other");
    assert_eq!(bed.registry.status().len(), 1);
    let _ = bed.idp.discovery_fetches();
}

#[tokio::test]
async fn http_client_limits_and_no_redirects() {
    let bed = bed().await;
    bed.idp.set(|b| b.discovery_padding = 4096);
    let small = bed
        .registry
        .client(OidcProviderSettings {
            http: HttpLimits {
                max_response_bytes: 2048,
                ..HttpLimits::default()
            },
            ..settings(&bed.idp)
        })
        .unwrap();
    let err = small.endpoints().await.unwrap_err();
    assert!(err.to_string().contains("larger than 2048 bytes"), "{err}");

    bed.idp.set(|b| {
        b.discovery_padding = 0;
        b.discovery_redirect = true;
    });
    let err = bed.client.endpoints().await.unwrap_err();
    assert!(err.to_string().contains("302"), "{err}");
}

#[tokio::test]
async fn openidconnect_discovery_runs_over_our_client() {
    use openidconnect::IssuerUrl;
    use openidconnect::core::CoreProviderMetadata;
    let clock = FakeClock::at(NOW);
    let idp = FakeIdp::start(clock).await;
    let http = IdpHttpClient::new(&IdpTls::default(), HttpLimits::default()).unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(idp.base.clone()).unwrap(), &http)
            .await
            .unwrap();
    assert_eq!(metadata.issuer().as_str(), idp.base);
    assert_eq!(metadata.jwks().keys().len(), 1);
}

#[tokio::test]
async fn bad_ca_bundle_is_a_startup_error() {
    let clock = FakeClock::at(NOW);
    let reg = registry(&clock);
    let err = reg
        .client(OidcProviderSettings {
            tls: IdpTls {
                ca_pem: Some(("oidc-ca-file /etc/ca.pem".into(), b"not pem".to_vec())),
                insecure_skip_verify: false,
            },
            ..OidcProviderSettings::new("https://idp.example", CLIENT_ID)
        })
        .unwrap_err();
    assert!(err.to_string().contains("/etc/ca.pem"), "{err}");
}

#[tokio::test]
async fn callback_iss_must_name_this_idp() {
    let bed = bed().await;
    let (query, cookies) = browser_authorize("prod", &bed).await.unwrap();
    let mixed_up = format!("{query}&iss=https%3A%2F%2Fevil.example");
    let params = CallbackParams::from_query(Some(&mixed_up)).unwrap();
    let state = bed.registry.open_login_state(&params, &cookies).unwrap();
    let err = bed.client.complete_login(state, &params).await.unwrap_err();
    assert!(
        err.to_string().contains("another identity provider"),
        "{err}"
    );

    let (query, cookies) = browser_authorize("prod", &bed).await.unwrap();
    let honest = format!(
        "{query}&iss={}",
        url::form_urlencoded::byte_serialize(bed.idp.base.as_bytes()).collect::<String>()
    );
    let params = CallbackParams::from_query(Some(&honest)).unwrap();
    let state = bed.registry.open_login_state(&params, &cookies).unwrap();
    bed.client.complete_login(state, &params).await.unwrap();
}

mod tls {
    use super::*;
    use headlamp_test_util::tls::TestPki;
    use std::sync::Arc;

    async fn tls_idp(pki: &TestPki, clock: &FakeClock) -> FakeIdp {
        let cert = pki.issue_server_cert("idp", &["127.0.0.1"]).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert_der()], cert.key_der())
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        FakeIdp::serve_tls(listener, clock.clone(), Arc::new(config))
    }

    fn with_tls(idp: &FakeIdp, tls: IdpTls) -> OidcProviderSettings {
        OidcProviderSettings {
            tls,
            ..settings(idp)
        }
    }

    #[tokio::test]
    async fn custom_ca_is_trusted_and_replaces_the_web_roots() {
        let pki = TestPki::generate().unwrap();
        let clock = FakeClock::at(NOW);
        let idp = tls_idp(&pki, &clock).await;
        assert!(idp.base.starts_with("https://"));
        let reg = registry(&clock);

        // Public web roots only: the private CA is not trusted.
        let err = reg
            .client(with_tls(&idp, IdpTls::default()))
            .unwrap()
            .endpoints()
            .await
            .unwrap_err();
        assert!(
            err.to_string().to_lowercase().contains("certificate"),
            "{err}"
        );

        // Another CA: not trusted either.
        let other = TestPki::generate().unwrap();
        let err = reg
            .client(with_tls(
                &idp,
                IdpTls {
                    ca_pem: Some(("other".into(), other.ca_pem().as_bytes().to_vec())),
                    insecure_skip_verify: false,
                },
            ))
            .unwrap()
            .endpoints()
            .await
            .unwrap_err();
        assert!(
            err.to_string().to_lowercase().contains("certificate"),
            "{err}"
        );

        // The IdP's CA: the whole flow works over TLS.
        let client = reg
            .client(with_tls(
                &idp,
                IdpTls {
                    ca_pem: Some(("oidc-ca-file".into(), pki.ca_pem().as_bytes().to_vec())),
                    insecure_skip_verify: false,
                },
            ))
            .unwrap();
        let bed = Bed {
            clock,
            idp,
            registry: reg,
            client,
        };
        let (query, cookies) = browser_authorize_tls(&bed, &pki).await;
        let params = CallbackParams::from_query(Some(&query)).unwrap();
        let state = bed.registry.open_login_state(&params, &cookies).unwrap();
        bed.client.complete_login(state, &params).await.unwrap();
    }

    #[tokio::test]
    async fn skip_tls_verify_accepts_any_certificate() {
        let pki = TestPki::generate().unwrap();
        let clock = FakeClock::at(NOW);
        let idp = tls_idp(&pki, &clock).await;
        let client = registry(&clock)
            .client(with_tls(
                &idp,
                IdpTls {
                    ca_pem: None,
                    insecure_skip_verify: true,
                },
            ))
            .unwrap();
        client.endpoints().await.unwrap();
    }

    /// Like `browser_authorize`, with a browser that trusts the test CA.
    async fn browser_authorize_tls(bed: &Bed, pki: &TestPki) -> (String, http::HeaderMap) {
        let start = bed
            .client
            .start_login("prod", &callback_url())
            .await
            .unwrap();
        let set_cookie = start
            .cookie
            .set_cookie_header()
            .to_str()
            .unwrap()
            .to_owned();
        let pair = set_cookie.split(';').next().unwrap().to_owned();
        let browser = IdpHttpClient::new(
            &IdpTls {
                ca_pem: Some(("test CA".into(), pki.ca_pem().as_bytes().to_vec())),
                insecure_skip_verify: false,
            },
            HttpLimits::default(),
        )
        .unwrap();
        let response = browser
            .send(
                http::Request::get(start.authorization_url.as_str())
                    .body(Vec::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        let location = url::Url::parse(response.headers()[LOCATION].to_str().unwrap()).unwrap();
        let mut cookies = http::HeaderMap::new();
        cookies.insert(COOKIE, pair.parse().unwrap());
        (location.query().unwrap_or("").to_owned(), cookies)
    }
}

#[tokio::test]
async fn a_silent_idp_times_out_as_retryable() {
    // Accepts connections (the kernel's backlog) but never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let http = IdpHttpClient::new(
        &IdpTls::default(),
        HttpLimits {
            request_timeout: Duration::from_millis(200),
            ..HttpLimits::default()
        },
    )
    .unwrap();
    let err = http
        .send(
            http::Request::get(format!("http://{addr}/.well-known/openid-configuration"))
                .body(Vec::new())
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(
        err.to_string().contains("no complete answer within 200ms"),
        "{err}"
    );
    drop(silent);
}

#[tokio::test]
async fn background_discovery_fills_the_cache_without_a_request() {
    let clock = FakeClock::at(NOW);
    let idp = FakeIdp::start(clock.clone()).await;
    let reg = OidcRegistry::new(SessionKey::from_material(&[42u8; 32]).unwrap(), clock);
    let client = reg.client(settings(&idp)).unwrap();
    // No request was made; the refresher's first attempt is immediate.
    tokio::time::timeout(Duration::from_secs(10), client.wait_ready())
        .await
        .expect("background discovery succeeds");
    assert!(client.is_ready() && reg.is_ready());
    assert!(idp.discovery_fetches() >= 1);
    let status = client.status();
    assert_eq!(status.discovery_failures, 0);
    assert!(status.last_success.is_some() && status.last_error.is_none());
}
