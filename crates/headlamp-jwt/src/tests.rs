//! Unit tests: no network, no sleeps (FakeClock, FakeKeySource).

use std::collections::HashSet;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use headlamp_core::{Authenticate, AuthenticationErrorKind, BearerToken, IdentityError};
use serde_json::json;

use crate::testing::{AUDIENCE, FakeKeySource, ISSUER, NOW, TestIdp, TestKey, b64, jwks};
use crate::*;

fn idp() -> TestIdp {
    TestIdp::new()
}

fn keyset(idp: &TestIdp) -> KeySet {
    KeySet::from_jwks_json(idp.jwks().as_bytes()).unwrap()
}

#[tokio::test]
async fn hostile_token_catalog_is_rejected_with_the_right_error() {
    let idp = idp();
    let catalog = idp.malicious_tokens();
    assert!(catalog.len() >= 40, "catalog has {} entries", catalog.len());
    let names: HashSet<_> = catalog.iter().map(|c| c.name).collect();
    assert_eq!(names.len(), catalog.len(), "catalog names are unique");

    let mut failures = Vec::new();
    for case in &catalog {
        let auth = idp.authenticator(idp.key_source(), case.mapping.clone());
        match auth.authenticate_token(&case.token).await {
            Ok(identity) => failures.push(format!("{}: ACCEPTED as {identity:?}", case.name)),
            Err(error) => {
                if !(case.expect)(&error) {
                    failures.push(format!("{}: wrong error {error:?}", case.name));
                }
                // Whatever the error, it must not echo the signature.
                let message = error.to_string();
                if let Some(sig) = case.token.rsplit('.').next().filter(|s| s.len() > 16) {
                    assert!(
                        !message.contains(sig),
                        "{}: message leaks the token",
                        case.name
                    );
                }
                let auth_error = headlamp_core::AuthenticationError::from(error.clone());
                assert_eq!(
                    auth_error.kind,
                    AuthenticationErrorKind::Rejected,
                    "{}",
                    case.name
                );
                assert_eq!(auth_error.metric_label, error.metric_label());
            }
        }
    }
    assert!(
        failures.is_empty(),
        "catalog failures:\n{}",
        failures.join("\n")
    );
}

#[test]
fn good_tokens_for_every_algorithm_are_accepted() {
    let idp = idp();
    let keys = keyset(&idp);
    let validator = Validator::new(idp.policy(), idp.clock.clone());
    for key in &idp.per_alg {
        let token = key.sign(&idp.claims());
        let verified = validator
            .validate(&token, &keys)
            .unwrap_or_else(|e| panic!("{}: {e}", key.alg()));
        assert_eq!(verified.algorithm(), key.alg());
        assert_eq!(verified.key_id(), key.kid());
        assert_eq!(verified.issuer(), ISSUER);
        assert_eq!(verified.audiences(), [AUDIENCE]);
        assert_eq!(verified.expires_at(), NOW + 3600);
        assert_eq!(verified.subject(), Some("0a1b2c3d"));
    }
}

#[test]
fn default_policy_accepts_only_rs256() {
    let idp = idp();
    let keys = keyset(&idp);
    let validator = Validator::new(ValidationPolicy::new(ISSUER, AUDIENCE), idp.clock.clone());
    assert!(validator.validate(&idp.token(), &keys).is_ok());
    let es = idp.key(SigningAlgorithm::ES256).sign(&idp.claims());
    assert!(matches!(
        validator.validate(&es, &keys),
        Err(JwtError::AlgorithmNotAllowed { alg, allowed }) if alg == "ES256" && allowed == "RS256"
    ));
}

#[test]
fn keys_without_kid_are_tried_by_algorithm() {
    let idp = idp();
    let keys = keyset(&idp);
    let validator = Validator::new(idp.policy(), idp.clock.clone());
    // Two EdDSA keys are candidates (one without kid); the right one verifies.
    let token = idp.no_kid.sign(&idp.claims());
    let verified = validator.validate(&token, &keys).unwrap();
    assert_eq!(verified.key_id(), None);
    // A kid-less token from an unpublished key tries the candidates and fails.
    let stranger = TestKey::generate(SigningAlgorithm::EdDSA).sign(&idp.claims());
    assert_eq!(
        validator.validate(&stranger, &keys),
        Err(JwtError::BadSignature)
    );
    // A kid-less ES384 token with only a kid-carrying ES384 key: still a candidate.
    let es384 = idp.key(SigningAlgorithm::ES384).clone().without_kid();
    assert!(
        validator
            .validate(&es384.sign(&idp.claims()), &keys)
            .is_ok()
    );
}

#[test]
fn token_naming_a_kid_does_not_match_a_key_without_one() {
    let idp = idp();
    let only_anonymous = KeySet::from_jwks_json(jwks(&[&idp.no_kid]).as_bytes()).unwrap();
    let validator = Validator::new(idp.policy(), idp.clock.clone());
    let token = idp.no_kid.clone().with_kid("surprise").sign(&idp.claims());
    assert!(matches!(
        validator.validate(&token, &only_anonymous),
        Err(JwtError::UnknownKeyId { kid }) if kid == "surprise"
    ));
}

#[test]
fn leeway_applies_to_exp_nbf_and_iat() {
    let idp = idp();
    let keys = keyset(&idp);
    let lenient = Validator::new(idp.policy(), idp.clock.clone());
    let strict = Validator::new(idp.policy().with_leeway(Duration::ZERO), idp.clock.clone());
    let sign = |c| idp.rsa.sign(&idp.claims_with(c));

    let just_expired = sign(json!({"exp": NOW - 30}));
    assert!(lenient.validate(&just_expired, &keys).is_ok());
    assert!(matches!(
        strict.validate(&just_expired, &keys),
        Err(JwtError::Expired { exp, now: NOW, leeway: 0 }) if exp == NOW - 30
    ));
    // exp == now is expired with no leeway (RFC 7519 4.1.4: "before").
    assert!(matches!(
        strict.validate(&sign(json!({"exp": NOW})), &keys),
        Err(JwtError::Expired { .. })
    ));
    let soon = sign(json!({"nbf": NOW + 30, "iat": NOW + 30}));
    assert!(lenient.validate(&soon, &keys).is_ok());
    assert!(matches!(
        strict.validate(&soon, &keys),
        Err(JwtError::NotYetValid { nbf, .. }) if nbf == NOW + 30
    ));
    assert!(matches!(
        strict.validate(&sign(json!({"iat": NOW + 30})), &keys),
        Err(JwtError::IssuedInFuture { .. })
    ));
    // Fractional NumericDates are allowed (RFC 7519 section 2).
    assert!(
        strict
            .validate(&sign(json!({"exp": (NOW as f64) + 10.5})), &keys)
            .is_ok()
    );
    // The clock moves: the same token expires.
    let token = idp.token();
    assert!(strict.validate(&token, &keys).is_ok());
    idp.clock.advance(3600);
    assert!(matches!(
        strict.validate(&token, &keys),
        Err(JwtError::Expired { .. })
    ));
}

#[test]
fn nonce_is_checked_when_expected() {
    let idp = idp();
    let keys = keyset(&idp);
    let v = Validator::new(idp.policy(), idp.clock.clone());
    let token = idp.token();
    assert!(v.validate_with_nonce(&token, &keys, "n-0S6_WzA2Mj").is_ok());
    assert_eq!(
        v.validate_with_nonce(&token, &keys, "n-0S6_WzA2Mk"),
        Err(JwtError::NonceMismatch)
    );
    assert_eq!(
        v.validate_with_nonce(&token, &keys, ""),
        Err(JwtError::NonceMismatch)
    );
    let no_nonce = idp.rsa.sign(&idp.claims_with(json!({"nonce": null})));
    assert!(
        v.validate(&no_nonce, &keys).is_ok(),
        "nonce only checked when expected"
    );
    assert!(matches!(
        v.validate_with_nonce(&no_nonce, &keys, "n"),
        Err(JwtError::MissingClaim { claim }) if claim == "nonce"
    ));
}

#[test]
fn audiences_and_authorized_party() {
    let idp = idp();
    let keys = keyset(&idp);
    let policy = idp.policy().with_audiences(["kubernetes"]);
    let v = Validator::new(policy.clone(), idp.clock.clone());
    let sign = |c| idp.rsa.sign(&idp.claims_with(c));
    // Any of the configured audiences.
    assert!(
        v.validate(&sign(json!({"aud": "kubernetes", "azp": null})), &keys)
            .is_ok()
    );
    // Several audiences: azp must be present and one of ours.
    assert!(
        v.validate(
            &sign(json!({"aud": ["x", AUDIENCE], "azp": AUDIENCE})),
            &keys
        )
        .is_ok()
    );
    // Single audience with a foreign azp is refused too.
    assert!(matches!(
        v.validate(&sign(json!({"azp": "kubectl"})), &keys),
        Err(JwtError::AuthorizedPartyMismatch { .. })
    ));
    // ...unless that client is accepted explicitly.
    let v = Validator::new(
        policy.with_authorized_parties(["kubectl"]),
        idp.clock.clone(),
    );
    assert!(v.validate(&sign(json!({"azp": "kubectl"})), &keys).is_ok());
}

#[test]
fn validator_issuer_is_matched_exactly() {
    let idp = idp();
    let keys = keyset(&idp);
    // -oidc-validator-idp-issuer-url: tokens carry the external issuer.
    let v = Validator::new(
        ValidationPolicy::new("https://sso.example.com/realms/k8s", AUDIENCE),
        idp.clock.clone(),
    );
    let external = idp
        .rsa
        .sign(&idp.claims_with(json!({"iss": "https://sso.example.com/realms/k8s"})));
    assert!(v.validate(&external, &keys).is_ok());
    assert!(matches!(
        v.validate(&idp.token(), &keys),
        Err(JwtError::IssuerMismatch { actual, .. }) if actual == ISSUER
    ));
}

#[test]
fn claim_mapping_follows_kube_apiserver() {
    let idp = idp();
    let keys = keyset(&idp);
    let v = Validator::new(idp.policy(), idp.clock.clone());
    let verify = |c| {
        v.validate(&idp.rsa.sign(&idp.claims_with(c)), &keys)
            .unwrap()
    };

    let token = verify(json!({}));
    let id = ClaimMapping::new().identity(&token).unwrap();
    assert_eq!(id.username(), "alice");
    assert_eq!(id.groups(), ["dev", "ops"]);
    assert_eq!(id.uid(), None);

    let id = ClaimMapping::new()
        .with_username_prefix("oidc:")
        .with_groups_prefix("oidc:")
        .with_uid_claim("sub")
        .identity(&token)
        .unwrap();
    assert_eq!(id.username(), "oidc:alice");
    assert_eq!(id.groups(), ["oidc:dev", "oidc:ops"]);
    assert_eq!(id.uid(), Some("0a1b2c3d"));

    // A prefix namespaces IdP values: "system:" from the IdP becomes harmless.
    let sys = verify(json!({"preferred_username": "system:admin", "groups": "system:masters"}));
    let id = ClaimMapping::new()
        .with_username_prefix("oidc:")
        .with_groups_prefix("oidc:")
        .identity(&sys)
        .unwrap();
    assert_eq!(id.username(), "oidc:system:admin");
    assert_eq!(id.groups(), ["oidc:system:masters"]);
    // ...but a prefix cannot itself be "system:".
    assert!(matches!(
        ClaimMapping::new()
            .with_username_prefix("system:")
            .identity(&token),
        Err(JwtError::Identity(IdentityError::ReservedPrefix { .. }))
    ));

    // Groups: a single string, null, absent, nested path, dotted claim name.
    let id = ClaimMapping::new()
        .identity(&verify(json!({"groups": "admins"})))
        .unwrap();
    assert_eq!(id.groups(), ["admins"]);
    let id = ClaimMapping::new()
        .identity(&verify(json!({"groups": null})))
        .unwrap();
    assert!(id.groups().is_empty());
    let id = ClaimMapping::new()
        .with_groups_claim("realm_access.roles")
        .identity(&token)
        .unwrap();
    assert_eq!(id.groups(), ["viewer"]);
    let id = ClaimMapping::new()
        .with_groups_claim("https://example.com/groups")
        .identity(&verify(json!({"https://example.com/groups": ["g1"]})))
        .unwrap();
    assert_eq!(id.groups(), ["g1"]);
    let id = ClaimMapping::new()
        .without_groups()
        .identity(&token)
        .unwrap();
    assert!(id.groups().is_empty());

    // email: email_verified absent or true is fine, false is not.
    let email = ClaimMapping::new().with_username_claim("email");
    assert_eq!(
        email.identity(&token).unwrap().username(),
        "alice@example.com"
    );
    let unverified_absent = verify(json!({"email_verified": null}));
    assert!(email.identity(&unverified_absent).is_ok());
    assert_eq!(
        email.identity(&verify(json!({"email_verified": false}))),
        Err(JwtError::EmailNotVerified)
    );
    // email_verified only matters for the email claim.
    let not_email = verify(json!({"email_verified": false}));
    assert!(ClaimMapping::new().identity(&not_email).is_ok());

    // Required claims, repeatable.
    let required = ClaimMapping::new()
        .with_required_claim("hd", "example.com")
        .with_required_claim("tier", "gold");
    assert!(
        required
            .identity(&verify(json!({"hd": "example.com", "tier": "gold"})))
            .is_ok()
    );
    assert!(matches!(
        required.identity(&verify(json!({"hd": "example.com", "tier": "silver"}))),
        Err(JwtError::RequiredClaimMismatch { claim, expected, actual })
            if claim == "tier" && expected == "gold" && actual == "\"silver\""
    ));
}

#[test]
fn key_set_parsing_keeps_only_usable_signature_keys() {
    let idp = idp();
    let good = idp.rsa.jwk();
    let doc = json!({"keys": [
        good,
        {"kty": "oct", "kid": "hmac", "k": b64("secret")},
        {"kty": "RSA", "kid": "small", "n": b64([0xffu8; 128]), "e": "AQAB"},
        {"kty": "EC", "kid": "p521", "crv": "P-521", "x": b64([1u8; 66]), "y": b64([1u8; 66])},
        {"kty": "EC", "kid": "short", "crv": "P-256", "x": b64([1u8; 31]), "y": b64([1u8; 32])},
        {"kty": "EC", "kid": "off-curve", "crv": "P-256", "x": b64([1u8; 32]), "y": b64([1u8; 32])},
        {"kty": "RSA", "kid": "no-exponent", "n": good["n"], "e": ""},
        {"kty": "OKP", "kid": "x25519", "crv": "X25519", "x": b64([1u8; 32])},
        {"kty": "RSA", "kid": "hs-alg", "alg": "HS256", "n": good["n"], "e": good["e"]},
        {"kty": "RSA", "kid": "no-verify", "key_ops": ["encrypt"], "n": good["n"], "e": good["e"]},
        {"kty": "PQ", "kid": "future"},
        ["RSA", null, null, null, "array", null, good["n"], good["e"]],
        "not an object",
    ]});
    let set = KeySet::from_jwks_json(doc.to_string().as_bytes()).unwrap();
    assert_eq!(set.len(), 1);
    assert_eq!(set.key_ids().collect::<Vec<_>>(), [Some("rsa-1")]);
    let v = Validator::new(idp.policy(), idp.clock.clone());
    for kid in [
        "hmac",
        "small",
        "p521",
        "short",
        "off-curve",
        "no-exponent",
        "x25519",
        "hs-alg",
        "no-verify",
        "future",
    ] {
        let token = idp.rsa.clone().with_kid(kid).sign(&idp.claims());
        // A skipped key still names its kid: a precise error, no refetch.
        let result = v.validate(&token, &set);
        assert!(
            matches!(result, Err(JwtError::KeyMismatch { .. })),
            "{kid}: {result:?}"
        );
    }

    for bad in [
        &b"not json"[..],
        br#"{"keys": "x"}"#,
        br#"{"keys": []}"#,
        br#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#,
    ] {
        let err = KeySet::from_jwks_json(bad).unwrap_err();
        assert!(matches!(err, JwtError::InvalidKeySet { .. }), "{err:?}");
        assert!(err.is_unavailable());
    }
}

#[test]
fn rsa_modulus_with_a_leading_zero_octet_still_verifies() {
    // RFC 7518 section 6.3.1.1 forbids the zero octet, some IdPs send it;
    // the integer is the same, so the key must verify (aws-lc-rs itself
    // refuses the zero when the key is parsed at load).
    use base64::Engine as _;
    let idp = idp();
    let mut jwk = idp.rsa.jwk();
    let mut n = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(jwk["n"].as_str().unwrap())
        .unwrap();
    n.insert(0, 0);
    jwk["n"] = json!(b64(n));
    let set = KeySet::from_jwks_json(json!({"keys": [jwk]}).to_string().as_bytes()).unwrap();
    let v = Validator::new(idp.policy(), idp.clock.clone());
    v.validate(&idp.token(), &set).unwrap();
    let token = idp.token();
    // The last character of a 2048-bit signature carries 2 bits; 'A' and
    // 'Q' both keep the unused bits zero, so the result is valid base64url.
    let last = if token.ends_with('A') { 'Q' } else { 'A' };
    let tampered = format!("{}{last}", &token[..token.len() - 1]);
    assert!(matches!(
        v.validate(&tampered, &set),
        Err(JwtError::BadSignature)
    ));
}

#[test]
fn verified_token_debug_hides_claims() {
    let idp = idp();
    let v = Validator::new(idp.policy(), idp.clock.clone());
    let token = v.validate(&idp.token(), &keyset(&idp)).unwrap();
    let debug = format!("{token:?}");
    assert!(debug.contains("rsa-1"));
    assert!(
        !debug.contains("n-0S6_WzA2Mj"),
        "nonce must not be logged: {debug}"
    );
}

#[test]
fn error_messages_from_unverified_input_are_bounded_and_escaped() {
    let idp = idp();
    let keys = keyset(&idp);
    let v = Validator::new(idp.policy(), idp.clock.clone());
    let long = format!("a\r\nInjected: yes{}", "x".repeat(20_000));
    for header in [
        json!({"alg": "RS256", "kid": "rsa-1", "crit": long}),
        json!({"alg": long, "kid": "rsa-1"}),
        json!({"alg": "RS256", "kid": long}),
    ] {
        let err = v
            .validate(&idp.rsa.sign_with_header(&header, &idp.claims()), &keys)
            .unwrap_err();
        let message = err.to_string();
        assert!(message.len() < 400, "{} bytes: {message}", message.len());
        assert!(
            !message.contains('\n') && !message.contains('\r'),
            "{message:?}"
        );
    }
}

#[test]
fn algorithm_names_parse_strictly() {
    assert_eq!(
        "ES256".parse::<SigningAlgorithm>(),
        Ok(SigningAlgorithm::ES256)
    );
    for bad in ["none", "HS256", "rs256", "ES512", ""] {
        assert!(matches!(
            bad.parse::<SigningAlgorithm>(),
            Err(JwtError::AlgorithmNotAllowed { .. })
        ));
    }
}

// ----- JWKS cache -----

fn poll_once<F: std::future::Future>(fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

#[tokio::test]
async fn rotated_key_is_picked_up_with_one_refetch() {
    let idp = idp();
    let source = FakeKeySource::serving(jwks(&[&idp.rsa]));
    let verifier = idp.verifier(source.clone());
    assert!(verifier.verify(&idp.token()).await.is_ok());
    assert_eq!(source.fetches(), 1);

    // The IdP rotates to rsa-2; a token signed by it arrives later.
    source.serve(jwks(&[&idp.rsa, &idp.rsa_other]));
    idp.clock.advance(11);
    let rotated = idp.rsa_other.sign(&idp.claims());
    assert!(verifier.verify(&rotated).await.is_ok());
    assert_eq!(source.fetches(), 2);
    // Both keys now known: no more fetches.
    assert!(verifier.verify(&idp.token()).await.is_ok());
    assert!(verifier.verify(&rotated).await.is_ok());
    assert_eq!(source.fetches(), 2);
}

#[tokio::test]
async fn random_kid_flood_is_rate_limited() {
    let idp = idp();
    let source = idp.key_source();
    let verifier = idp.verifier(source.clone());
    assert!(verifier.verify(&idp.token()).await.is_ok());
    idp.clock.advance(60);
    for i in 0..200 {
        let token = idp
            .attacker
            .clone()
            .with_kid(format!("random-{i}"))
            .sign(&idp.claims());
        assert!(matches!(
            verifier.verify(&token).await,
            Err(JwtError::UnknownKeyId { .. })
        ));
    }
    // One initial fetch, one refetch for the first unknown kid, no more.
    assert_eq!(source.fetches(), 2);
    // After the interval, one more refetch is allowed.
    idp.clock.advance(10);
    let token = idp
        .attacker
        .clone()
        .with_kid("random-x")
        .sign(&idp.claims());
    assert!(verifier.verify(&token).await.is_err());
    assert!(verifier.verify(&token).await.is_err());
    assert_eq!(source.fetches(), 3);
}

#[tokio::test]
async fn header_garbage_never_triggers_a_fetch() {
    let idp = idp();
    let source = idp.key_source();
    let auth = idp.authenticator(source.clone(), ClaimMapping::new());
    for case in idp.malicious_tokens() {
        // Some cases need their own claim mapping to fail; only the fetch
        // count matters here.
        let _ = auth.authenticate_token(&case.token).await;
    }
    // Keys are fetched once for the first token that passed header checks
    // and at most once more per refresh interval; the clock did not move.
    assert!(source.fetches() <= 2, "fetches: {}", source.fetches());

    let fresh = idp.key_source();
    let auth = idp.authenticator(fresh.clone(), ClaimMapping::new());
    let none = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64("{}"));
    assert!(auth.authenticate_token(&none).await.is_err());
    assert!(auth.authenticate_token("not-a-jwt").await.is_err());
    assert_eq!(fresh.fetches(), 0);
}

#[tokio::test]
async fn concurrent_misses_share_one_fetch() {
    let idp = idp();
    let source = idp.key_source();
    source.hold();
    let verifier = Arc::new(idp.verifier(source.clone()));
    let token = idp.token();
    let mut futures: Vec<_> = (0..16)
        .map(|_| {
            let verifier = Arc::clone(&verifier);
            let token = token.clone();
            Box::pin(async move { verifier.verify(&token).await })
        })
        .collect();
    for fut in &mut futures {
        assert!(poll_once(fut.as_mut()).is_pending());
    }
    assert_eq!(
        source.fetches(),
        1,
        "16 concurrent first lookups, one fetch"
    );
    source.release();
    for fut in futures {
        assert!(fut.await.is_ok());
    }
    assert_eq!(source.fetches(), 1);
}

#[tokio::test]
async fn max_age_is_honoured_within_bounds() {
    let idp = idp();
    let source = idp.key_source();
    source.serve_with_max_age(idp.jwks(), Duration::from_secs(600));
    let cache = JwksCache::new(
        source.clone(),
        idp.clock.clone(),
        JwksCacheConfig::default(),
    );
    cache.keys().await.unwrap();
    idp.clock.advance(599);
    cache.keys().await.unwrap();
    assert_eq!(source.fetches(), 1, "fresh for max-age");
    idp.clock.advance(1);
    cache.keys().await.unwrap();
    assert_eq!(source.fetches(), 2, "stale after max-age");

    // max-age=0 is clamped up to the minimum (60 s by default).
    source.serve_with_max_age(idp.jwks(), Duration::ZERO);
    idp.clock.advance(600);
    cache.keys().await.unwrap();
    assert_eq!(source.fetches(), 3);
    idp.clock.advance(59);
    cache.keys().await.unwrap();
    assert_eq!(source.fetches(), 3);
    idp.clock.advance(1);
    cache.keys().await.unwrap();
    assert_eq!(source.fetches(), 4);

    // A year is clamped down to a day.
    source.serve_with_max_age(idp.jwks(), Duration::from_secs(365 * 86_400));
    idp.clock.advance(60);
    cache.keys().await.unwrap();
    assert_eq!(source.fetches(), 5);
    idp.clock.advance(86_400);
    cache.keys().await.unwrap();
    assert_eq!(source.fetches(), 6);
}

#[tokio::test]
async fn last_good_keys_are_served_while_the_idp_is_down() {
    let idp = idp();
    let source = idp.key_source();
    let verifier = idp.verifier(source.clone());
    let token = idp.rsa.sign(&idp.claims_with(json!({"exp": NOW + 86_400})));
    assert!(verifier.verify(&token).await.is_ok());
    source.fail("GET https://idp.headlamp.test/jwks: connection refused");
    idp.clock.advance(3600);
    assert!(
        verifier.verify(&token).await.is_ok(),
        "stale keys still verify"
    );
    assert_eq!(source.fetches(), 2, "the stale set triggered one refresh");
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(source.fetches(), 2, "failed refresh is rate-limited too");
    // A garbage document is also not installed over the good one.
    source.serve("{\"keys\": []}");
    idp.clock.advance(10);
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(source.fetches(), 3);
}

#[tokio::test]
async fn no_keys_at_all_is_unavailable_not_rejected() {
    let idp = idp();
    let source = idp.key_source();
    source.fail("GET https://idp.headlamp.test/jwks: connection refused");
    let auth = idp.authenticator(source.clone(), ClaimMapping::new());
    let err = auth
        .authenticate(&BearerToken::new(idp.token()))
        .await
        .unwrap_err();
    assert_eq!(err.kind, AuthenticationErrorKind::Unavailable);
    assert_eq!(err.metric_label, "keys_unavailable");
    assert!(err.reason.contains("connection refused"), "{}", err.reason);
    // Within the interval, no second fetch; the last error is repeated.
    let again = auth.authenticate_token(&idp.token()).await.unwrap_err();
    assert!(matches!(again, JwtError::KeysUnavailable(_)));
    assert_eq!(source.fetches(), 1);
    // The IdP comes back.
    source.serve(idp.jwks());
    idp.clock.advance(10);
    assert!(auth.authenticate_token(&idp.token()).await.is_ok());

    let bad_doc = FakeKeySource::serving("<html>503</html>");
    let auth = idp.authenticator(bad_doc, ClaimMapping::new());
    let err = auth
        .authenticate(&BearerToken::new(idp.token()))
        .await
        .unwrap_err();
    assert_eq!(err.kind, AuthenticationErrorKind::Unavailable);
    assert_eq!(err.metric_label, "invalid_jwks");
}

#[tokio::test]
async fn forced_refresh_ignores_the_rate_limit() {
    let idp = idp();
    let source = idp.key_source();
    let cache = JwksCache::new(
        source.clone(),
        idp.clock.clone(),
        JwksCacheConfig::default(),
    );
    cache.keys().await.unwrap();
    cache.refresh().await.unwrap();
    assert_eq!(source.fetches(), 2);
}

// ----- JwtAuthenticator and its verified-token cache -----

#[tokio::test]
async fn authenticator_caches_verified_tokens_until_exp() {
    let idp = idp();
    let source = idp.key_source();
    let auth = JwtAuthenticator::with_cache(
        idp.verifier(source.clone()),
        ClaimMapping::new(),
        100,
        Duration::from_secs(3600),
    );
    let token = idp.rsa.sign(&idp.claims_with(json!({"exp": NOW + 120})));
    let id = auth
        .authenticate(&BearerToken::new(token.clone()))
        .await
        .unwrap();
    assert_eq!(id.username(), "alice");

    // Rotate rsa-1 away: a fresh verification would now fail, so success
    // proves the cache answered.
    source.serve(jwks(&[&idp.rsa_other]));
    auth.verifier().key_cache().refresh().await.unwrap();
    assert_eq!(auth.authenticate_token(&token).await.unwrap(), id);

    // At exp the cache no longer answers: with rsa-1 back, the fresh
    // verification reports the expiry (no leeway in the cache).
    source.serve(idp.jwks());
    auth.verifier().key_cache().refresh().await.unwrap();
    idp.clock.advance(120);
    assert!(
        auth.authenticate_token(&token).await.is_ok(),
        "within leeway"
    );
    idp.clock.advance(60);
    assert!(matches!(
        auth.authenticate_token(&token).await,
        Err(JwtError::Expired { exp, .. }) if exp == NOW + 120
    ));
}

#[tokio::test]
async fn cached_signature_on_other_claims_is_a_miss() {
    let idp = idp();
    let source = idp.key_source();
    let auth = idp.authenticator(source, ClaimMapping::new());
    let token = idp.token();
    assert_eq!(
        auth.authenticate_token(&token).await.unwrap().username(),
        "alice"
    );
    // Same signature segment (same cache key), other header or claims.
    let (header, rest) = token.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let admin = b64(idp
        .claims_with(json!({"preferred_username": "admin"}))
        .to_string());
    for forged in [
        format!("{header}.{admin}.{signature}"),
        format!("{}.{rest}", b64(r#"{"alg":"RS256","kid":"rsa-2"}"#)),
    ] {
        assert_eq!(
            auth.authenticate_token(&forged).await,
            Err(JwtError::BadSignature)
        );
    }
    // The real token is still served from the cache.
    assert_eq!(
        auth.authenticate_token(&token).await.unwrap().username(),
        "alice"
    );
}

#[tokio::test]
async fn authenticator_cache_ttl_is_capped() {
    let idp = idp();
    let source = idp.key_source();
    let auth = JwtAuthenticator::with_cache(
        idp.verifier(source.clone()),
        ClaimMapping::new(),
        100,
        Duration::from_secs(30),
    );
    let token = idp.token();
    assert!(auth.authenticate_token(&token).await.is_ok());
    source.serve(jwks(&[&idp.rsa_other]));
    auth.verifier().key_cache().refresh().await.unwrap();
    idp.clock.advance(29);
    assert!(auth.authenticate_token(&token).await.is_ok(), "cached");
    idp.clock.advance(1);
    assert!(matches!(
        auth.authenticate_token(&token).await,
        Err(JwtError::UnknownKeyId { .. })
    ));
}

#[tokio::test]
async fn authenticator_does_not_cache_failures_or_oversize() {
    let idp = idp();
    let source = idp.key_source();
    let auth = idp.authenticator(source, ClaimMapping::new());
    let bad = idp
        .rsa
        .sign(&idp.claims_with(json!({"preferred_username": "system:admin"})));
    assert!(auth.authenticate_token(&bad).await.is_err());
    assert!(auth.authenticate_token(&bad).await.is_err());
    let huge = "a".repeat(DEFAULT_MAX_TOKEN_BYTES + 1);
    assert!(matches!(
        auth.authenticate_token(&huge).await,
        Err(JwtError::TooLarge { .. })
    ));
    assert_eq!(auth.cached_tokens(), 0);
}

#[tokio::test]
async fn verify_with_nonce_through_the_cache() {
    let idp = idp();
    let verifier = idp.verifier(idp.key_source());
    assert!(
        verifier
            .verify_with_nonce(&idp.token(), "n-0S6_WzA2Mj")
            .await
            .is_ok()
    );
    assert_eq!(
        verifier.verify_with_nonce(&idp.token(), "other").await,
        Err(JwtError::NonceMismatch)
    );
}

#[test]
fn static_key_source_and_arc_source_work() {
    fn assert_source<S: KeySource>(_: &S) {}
    let s = StaticKeySource::new("{}");
    assert_source(&s);
    assert_source(&Arc::new(s));
}
