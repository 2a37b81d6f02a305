//! headlamp-oidc against the real OpenID provider of the test bed (npm
//! `oidc-provider`, driven by headlamp-test-util): the full code flow with
//! PKCE and nonce, refresh, an IdP outage, and the issuer check.
//!
//! Needs node and `scripts/install-test-deps.sh`; without them the tests
//! fail saying what to install.
//!
//! Run: `cargo test -p headlamp-e2e --test oidc_e2e`.

// Helpers outside #[test] functions panic on failure like assertions do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use headlamp_core::{Secret, SystemClock};
use headlamp_oidc::{
    CallbackParams, LoginStart, OidcClient, OidcError, OidcProviderSettings, OidcRegistry,
    SessionKey, TokenSet,
};
use headlamp_test_util::idp::{TestIdp, TestIdpOptions, TestUser, scripted_abort, scripted_login};
use http::header::COOKIE;

/// Nothing listens here: the scripted login stops before requesting it.
const CALLBACK: &str = "http://127.0.0.1:9/oidc-callback";

fn callback() -> url::Url {
    url::Url::parse(CALLBACK).unwrap()
}

/// A 64-byte session key file shared by the "replicas" of a test. The
/// bytes are a fixed pattern: the test needs two processes reading one file,
/// not secrecy (operators use `head -c 64 /dev/urandom`).
fn key_file() -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    let material: Vec<u8> = (0..64u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(file.path(), material).unwrap();
    file
}

fn registry(key: &tempfile::NamedTempFile) -> OidcRegistry {
    OidcRegistry::new(SessionKey::from_file(key.path()).unwrap(), SystemClock)
}

fn settings(idp: &TestIdp) -> OidcProviderSettings {
    let mut s = OidcProviderSettings::new(idp.issuer(), idp.client_id())
        .with_client_secret(Secret::new(idp.client_secret()));
    s.scopes = vec!["profile".into(), "email".into(), "groups".into()];
    s
}

fn cookie_header(start: &LoginStart) -> http::HeaderMap {
    let set_cookie = start.cookie.set_cookie_header();
    let pair = set_cookie
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let mut headers = http::HeaderMap::new();
    headers.insert(COOKIE, pair.parse().unwrap());
    headers
}

/// `/oidc` on one replica, the IdP's login pages, `/oidc-callback` on
/// another replica with the same key file.
async fn login_across(
    start_on: &OidcClient,
    finish_registry: &OidcRegistry,
    finish_on: &OidcClient,
    user: TestUser,
) -> Result<TokenSet, OidcError> {
    let start = start_on.start_login("in-cluster", &callback()).await?;
    let redirect = scripted_login(
        start.authorization_url.as_str(),
        user.login(),
        &user.password(),
    )
    .await
    .map_err(|e| OidcError::IdpUnreachable {
        url: "scripted login".into(),
        reason: e.to_string(),
    })?;
    let params = CallbackParams::from_query(redirect.query())?;
    let state = finish_registry.open_login_state(&params, &cookie_header(&start))?;
    assert_eq!(state.cluster(), "in-cluster");
    finish_on.complete_login(state, &params).await
}

async fn claims_of(
    client: &OidcClient,
    token: &TokenSet,
) -> serde_json::Map<String, serde_json::Value> {
    client
        .verifier()
        .verify(token.api_server_token().expose())
        .await
        .unwrap()
        .claims()
        .clone()
}

#[tokio::test]
async fn full_code_flow_with_pkce_and_nonce_across_replicas() {
    let mut options = TestIdpOptions::new(CALLBACK);
    // The IdP refuses authorization requests without PKCE: proves we send it.
    options.require_pkce = true;
    let idp = TestIdp::start(options).await.unwrap();
    let key = key_file();
    let (a, b) = (registry(&key), registry(&key));
    let (client_a, client_b) = (
        a.client(settings(&idp)).unwrap(),
        b.client(settings(&idp)).unwrap(),
    );

    let start = client_a
        .start_login("in-cluster", &callback())
        .await
        .unwrap();
    let q: std::collections::HashMap<_, _> =
        start.authorization_url.query_pairs().into_owned().collect();
    assert_eq!(q["scope"], "openid profile email groups");
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q.contains_key("nonce"));

    let tokens = login_across(&client_a, &b, &client_b, TestUser::Alice)
        .await
        .unwrap();
    let claims = claims_of(&client_b, &tokens).await;
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(claims["aud"], idp.client_id());
    assert!(claims.contains_key("nonce"), "the IdP echoed our nonce");
    assert!(tokens.refresh_token().is_some());
    let exp = tokens.expires_at().unwrap();
    assert!(
        exp > SystemClock.now_secs() + 3000,
        "ID token lifetime is an hour"
    );

    // The user cancels at the IdP: a typed error with the IdP's description.
    let start = client_a
        .start_login("in-cluster", &callback())
        .await
        .unwrap();
    let redirect = scripted_abort(start.authorization_url.as_str())
        .await
        .unwrap();
    let err = CallbackParams::from_query(redirect.query()).unwrap_err();
    assert!(
        matches!(&err, OidcError::AuthorizationDenied { code, .. } if code == "access_denied"),
        "{err}"
    );
}

trait NowSecs {
    fn now_secs(&self) -> u64;
}

impl NowSecs for SystemClock {
    fn now_secs(&self) -> u64 {
        headlamp_core::Clock::now(self)
    }
}

#[tokio::test]
async fn refresh_with_a_short_lived_token() {
    let idp = TestIdp::start(
        TestIdpOptions::new(CALLBACK)
            .id_token_ttl_secs(5)
            .access_token_ttl_secs(5),
    )
    .await
    .unwrap();
    let key = key_file();
    let reg = registry(&key);
    let client = reg.client(settings(&idp)).unwrap();
    let first = login_across(&client, &reg, &client, TestUser::Bob)
        .await
        .unwrap();
    let now = SystemClock.now_secs();
    assert!(first.expires_at().unwrap() <= now + 6);

    // The refresh token travels in a sealed cookie between requests.
    let sealed = reg
        .seal_refresh_token(
            "in-cluster",
            first.refresh_token().unwrap(),
            Duration::from_secs(86_400),
        )
        .unwrap();
    let refresh = reg.open_refresh_token("in-cluster", &sealed).unwrap();
    // ID tokens carry whole-second iat/exp: let one second pass so the
    // refreshed token is observably new (bounded, e2e only).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = client.refresh(&refresh).await.unwrap();
    assert_ne!(second.api_server_token(), first.api_server_token());
    assert_eq!(
        claims_of(&client, &second).await["preferred_username"],
        "bob"
    );
    assert!(second.expires_at().unwrap() > first.expires_at().unwrap());
    // Whether or not the IdP rotated, the set holds a usable refresh token.
    let third = client
        .refresh(second.refresh_token().unwrap())
        .await
        .unwrap();
    assert_eq!(
        claims_of(&client, &third).await["preferred_username"],
        "bob"
    );

    // A refresh token the IdP does not know: the session is over.
    let err = client
        .refresh(&Secret::new("not-a-refresh-token"))
        .await
        .unwrap_err();
    assert!(err.is_session_over(), "{err}");
}

#[tokio::test]
async fn idp_outage_mid_test() {
    let mut idp = TestIdp::start(TestIdpOptions::new(CALLBACK)).await.unwrap();
    let key = key_file();
    let reg = registry(&key);
    let client = reg.client(settings(&idp)).unwrap();
    let tokens = login_across(&client, &reg, &client, TestUser::Alice)
        .await
        .unwrap();

    idp.stop().await;
    // Cached discovery and keys keep working: tokens still verify.
    assert_eq!(
        claims_of(&client, &tokens).await["preferred_username"],
        "alice"
    );
    assert!(client.is_ready());
    // Refresh fails as retryable: keep the current token until it expires.
    let err = client
        .refresh(tokens.refresh_token().unwrap())
        .await
        .unwrap_err();
    assert!(err.is_retryable() && !err.is_session_over(), "{err}");
    // New logins fail with a clear message, whether or not discovery is cached.
    let err = login_across(&client, &reg, &client, TestUser::Alice)
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&idp.port().to_string()), "{err}");
    let fresh = registry(&key);
    let fresh_client = fresh
        .client(settings(&idp))
        .expect("starting never needs the IdP");
    let err = fresh_client
        .start_login("in-cluster", &callback())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, OidcError::DiscoveryUnavailable { .. })
            && text.contains(idp.issuer())
            && text.contains("could not reach the IdP"),
        "{text}"
    );
    assert!(!fresh.is_ready());

    idp.restart().await.unwrap();
    // A process that never reached the IdP retries discovery at most once a
    // second (and in the background with backoff): give it that second.
    let mut attempts = 0;
    while fresh_client.endpoints().await.is_err() {
        attempts += 1;
        assert!(
            attempts < 20,
            "discovery did not recover after the IdP restarted"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Same port, same keys: both the old and the fresh process sign in again.
    let tokens = login_across(&client, &reg, &client, TestUser::Alice)
        .await
        .unwrap();
    assert_eq!(
        claims_of(&client, &tokens).await["preferred_username"],
        "alice"
    );
    let tokens = login_across(&fresh_client, &fresh, &fresh_client, TestUser::Bob)
        .await
        .unwrap();
    assert_eq!(
        claims_of(&fresh_client, &tokens).await["preferred_username"],
        "bob"
    );
    assert!(fresh.is_ready());
}

#[tokio::test]
async fn discovery_issuer_must_match_unless_the_validator_issuer_says_so() {
    let idp = TestIdp::start(TestIdpOptions::new(CALLBACK)).await.unwrap();
    // The same IdP reached under another name: its document still says
    // http://127.0.0.1:PORT.
    let internal_url = format!("http://localhost:{}", idp.port());
    let reg = registry(&key_file());
    let refused = reg
        .client(OidcProviderSettings {
            issuer_url: internal_url.clone(),
            ..settings(&idp)
        })
        .unwrap();
    let err = refused
        .start_login("in-cluster", &callback())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(idp.issuer())
            && text.contains(&internal_url)
            && text.contains("oidc-validator-idp-issuer-url"),
        "{text}"
    );

    let allowed = reg
        .client(OidcProviderSettings {
            issuer_url: internal_url,
            validator_issuer_url: Some(idp.issuer().to_owned()),
            ..settings(&idp)
        })
        .unwrap();
    let tokens = login_across(&allowed, &reg, &allowed, TestUser::Alice)
        .await
        .unwrap();
    assert_eq!(claims_of(&allowed, &tokens).await["iss"], idp.issuer());
}
