//! Key material, token signing, a fake key source and a catalog of hostile
//! tokens, for this crate's tests and for other crates' (enable the
//! `test-keys` feature in `[dev-dependencies]`).
//!
//! Everything is generated at run time with aws-lc-rs; there are no pasted
//! keys or tokens. Signing uses aws-lc-rs directly, not jsonwebtoken, so a
//! bug in the code under test cannot hide itself in the fixtures.
// Fixture generation failing (key generation, JSON of a literal) means a
// broken test environment, where a panic with a message is the right answer.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Poll, Waker};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use aws_lc_rs::{hmac, rsa};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use headlamp_core::{FakeClock, IdentityError, UnixTime};
use serde_json::{Value, json};

use crate::{
    ClaimMapping, FetchedKeySet, JwksCacheConfig, JwtAuthenticator, JwtError, KeySource,
    KeySourceError, SigningAlgorithm, TokenPart, TokenVerifier, ValidationPolicy,
};

/// base64url without padding.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[derive(Clone)]
enum Pair {
    Rsa(Arc<rsa::KeyPair>),
    Ec(Arc<EcdsaKeyPair>),
    Ed(Arc<Ed25519KeyPair>),
}

/// A generated signing key with its JWK.
#[derive(Clone)]
pub struct TestKey {
    alg: SigningAlgorithm,
    kid: Option<String>,
    use_: Option<&'static str>,
    pair: Pair,
}

fn shared_rsa(slot: usize) -> Arc<rsa::KeyPair> {
    // RSA generation takes tens of milliseconds; a test binary needs only
    // a few distinct RSA keys.
    static KEYS: OnceLock<Vec<Arc<rsa::KeyPair>>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        (0..4)
            .map(|_| Arc::new(rsa::KeyPair::generate(rsa::KeySize::Rsa2048).expect("RSA keygen")))
            .collect()
    });
    Arc::clone(&keys[slot % keys.len()])
}

impl TestKey {
    /// A fresh key for `alg` (RSA keys come from a small per-process pool:
    /// `rsa_slot` 0..4 picks distinct ones).
    pub fn generate(alg: SigningAlgorithm) -> Self {
        Self::generate_in_slot(alg, 0)
    }

    /// Like [`TestKey::generate`], with RSA material from pool slot
    /// `rsa_slot` (different slots are different keys).
    pub fn generate_in_slot(alg: SigningAlgorithm, rsa_slot: usize) -> Self {
        use SigningAlgorithm::*;
        let pair = match alg {
            RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => Pair::Rsa(shared_rsa(rsa_slot)),
            ES256 => Pair::Ec(Arc::new(
                EcdsaKeyPair::generate(&sig::ECDSA_P256_SHA256_FIXED_SIGNING)
                    .expect("P-256 keygen"),
            )),
            ES384 => Pair::Ec(Arc::new(
                EcdsaKeyPair::generate(&sig::ECDSA_P384_SHA384_FIXED_SIGNING)
                    .expect("P-384 keygen"),
            )),
            EdDSA => Pair::Ed(Arc::new(
                Ed25519KeyPair::generate().expect("Ed25519 keygen"),
            )),
        };
        Self {
            alg,
            kid: None,
            use_: Some("sig"),
            pair,
        }
    }

    /// The same key material under a `kid`.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The same key material without a `kid`.
    pub fn without_kid(mut self) -> Self {
        self.kid = None;
        self
    }

    /// The same key with another `use` in its JWK (`None` omits it).
    pub fn with_use(mut self, use_: Option<&'static str>) -> Self {
        self.use_ = use_;
        self
    }

    /// The same RSA material used with another RSA algorithm.
    pub fn with_alg(mut self, alg: SigningAlgorithm) -> Self {
        assert_eq!(
            alg.key_kind(),
            self.alg.key_kind(),
            "with_alg keeps the key material, so it must stay in the family"
        );
        self.alg = alg;
        self
    }

    /// The algorithm this key signs with.
    pub fn alg(&self) -> SigningAlgorithm {
        self.alg
    }

    /// The key id.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The public JWK (with `kid`, `alg` and `use` when set).
    pub fn jwk(&self) -> Value {
        let mut jwk = match &self.pair {
            Pair::Rsa(pair) => {
                let c = rsa::PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                json!({"kty": "RSA", "n": b64(&c.n), "e": b64(&c.e)})
            }
            Pair::Ec(pair) => {
                let point = pair.public_key().as_ref();
                let size = (point.len() - 1) / 2;
                let crv = if size == 32 { "P-256" } else { "P-384" };
                json!({"kty": "EC", "crv": crv, "x": b64(&point[1..=size]), "y": b64(&point[1 + size..])})
            }
            Pair::Ed(pair) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())})
            }
        };
        let obj = jwk.as_object_mut().expect("object");
        obj.insert("alg".into(), json!(self.alg.as_str()));
        if let Some(kid) = &self.kid {
            obj.insert("kid".into(), json!(kid));
        }
        if let Some(use_) = self.use_ {
            obj.insert("use".into(), json!(use_));
        }
        jwk
    }

    /// The raw RSA public key bytes as an HMAC "secret" (for the
    /// RS256-to-HS256 confusion attack), or the raw EC/Ed point.
    pub fn public_key_bytes(&self) -> Vec<u8> {
        match &self.pair {
            Pair::Rsa(pair) => pair.public_key().as_ref().to_vec(),
            Pair::Ec(pair) => pair.public_key().as_ref().to_vec(),
            Pair::Ed(pair) => pair.public_key().as_ref().to_vec(),
        }
    }

    /// Signs `signing_input` with this key's algorithm.
    pub fn sign_bytes(&self, signing_input: &[u8]) -> Vec<u8> {
        use SigningAlgorithm::*;
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Rsa(pair) => {
                let padding: &'static dyn sig::RsaEncoding = match self.alg {
                    RS256 => &sig::RSA_PKCS1_SHA256,
                    RS384 => &sig::RSA_PKCS1_SHA384,
                    RS512 => &sig::RSA_PKCS1_SHA512,
                    PS256 => &sig::RSA_PSS_SHA256,
                    PS384 => &sig::RSA_PSS_SHA384,
                    _ => &sig::RSA_PSS_SHA512,
                };
                let mut out = vec![0; pair.public_modulus_len()];
                pair.sign(padding, &rng, signing_input, &mut out)
                    .expect("RSA sign");
                out
            }
            Pair::Ec(pair) => pair
                .sign(&rng, signing_input)
                .expect("ECDSA sign")
                .as_ref()
                .to_vec(),
            Pair::Ed(pair) => pair.sign(signing_input).as_ref().to_vec(),
        }
    }

    /// `header_b64.payload_b64.signature`, signed over the segments as given
    /// (so tests can sign non-canonical segments).
    pub fn sign_segments(&self, header_b64: &str, payload_b64: &str) -> String {
        let input = format!("{header_b64}.{payload_b64}");
        let signature = self.sign_bytes(input.as_bytes());
        format!("{input}.{}", b64(signature))
    }

    /// The header this key would normally send.
    pub fn header(&self) -> Value {
        let mut header = json!({"alg": self.alg.as_str(), "typ": "JWT"});
        if let Some(kid) = &self.kid {
            header["kid"] = json!(kid);
        }
        header
    }

    /// A token with `header` (any JSON) and `claims`, signed with this key.
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        self.sign_segments(&b64(header.to_string()), &b64(claims.to_string()))
    }

    /// A token with this key's usual header and `claims`.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(&self.header(), claims)
    }
}

/// A JWKS document holding `keys`' public JWKs.
pub fn jwks(keys: &[&TestKey]) -> String {
    json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()}).to_string()
}

#[derive(Default)]
struct Gate {
    closed: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

struct FakeState {
    answer: Result<FetchedKeySet, KeySourceError>,
}

/// An in-memory [`KeySource`] that behaves like an IdP's JWKS endpoint:
/// serves a document (optionally with max-age) or fails, counts fetches,
/// and can hold fetches open to test concurrent callers.
#[derive(Clone)]
pub struct FakeKeySource {
    state: Arc<Mutex<FakeState>>,
    fetches: Arc<AtomicUsize>,
    gate: Arc<Gate>,
}

impl FakeKeySource {
    /// Serves `jwks`.
    pub fn serving(jwks: impl Into<Bytes>) -> Self {
        Self {
            state: Arc::new(Mutex::new(FakeState {
                answer: Ok(FetchedKeySet::new(jwks)),
            })),
            fetches: Arc::new(AtomicUsize::new(0)),
            gate: Arc::new(Gate::default()),
        }
    }

    /// From now on serves `jwks`.
    pub fn serve(&self, jwks: impl Into<Bytes>) {
        self.set(Ok(FetchedKeySet::new(jwks)));
    }

    /// From now on serves `jwks` with `Cache-Control: max-age`.
    pub fn serve_with_max_age(&self, jwks: impl Into<Bytes>, max_age: Duration) {
        self.set(Ok(FetchedKeySet::new(jwks).with_max_age(max_age)));
    }

    /// From now on fails like an unreachable IdP.
    pub fn fail(&self, message: &str) {
        self.set(Err(KeySourceError::new(message)));
    }

    fn set(&self, answer: Result<FetchedKeySet, KeySourceError>) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .answer = answer;
    }

    /// How many fetches started.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Fetches started from now on wait until [`FakeKeySource::release`].
    pub fn hold(&self) {
        self.gate.closed.store(true, Ordering::SeqCst);
    }

    /// Lets held fetches complete.
    pub fn release(&self) {
        self.gate.closed.store(false, Ordering::SeqCst);
        for waker in self
            .gate
            .wakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            waker.wake();
        }
    }
}

impl KeySource for FakeKeySource {
    async fn fetch_keys(&self) -> Result<FetchedKeySet, KeySourceError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let gate = Arc::clone(&self.gate);
        poll_fn(move |cx| {
            if !gate.closed.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            gate.wakers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(cx.waker().clone());
            if gate.closed.load(Ordering::SeqCst) {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .answer
            .clone()
    }
}

/// Issuer of [`TestIdp`] tokens.
pub const ISSUER: &str = "https://idp.headlamp.test/realms/k8s";
/// Client id (audience) of [`TestIdp`] tokens.
pub const AUDIENCE: &str = "headlamp";
/// The fixed "now" of [`TestIdp`]'s clock.
pub const NOW: UnixTime = 1_750_000_000;

/// A fake identity provider: keys for every algorithm, its JWKS, a fake
/// clock, well-formed claims, and the hostile-token catalog.
pub struct TestIdp {
    /// RS256 key `rsa-1`.
    pub rsa: TestKey,
    /// A second, unrelated RS256 key `rsa-2`.
    pub rsa_other: TestKey,
    /// One key per supported algorithm (`kid` = algorithm name, lower case).
    pub per_alg: Vec<TestKey>,
    /// An Ed25519 key published without `kid`.
    pub no_kid: TestKey,
    /// An RSA key published with `use: enc` (`rsa-enc`).
    pub enc_key: TestKey,
    /// A key the IdP never published (an attacker's), `kid` `attacker`.
    pub attacker: TestKey,
    /// The clock, at [`NOW`].
    pub clock: FakeClock,
}

impl Default for TestIdp {
    fn default() -> Self {
        Self::new()
    }
}

impl TestIdp {
    /// Generates the keys.
    pub fn new() -> Self {
        Self {
            rsa: TestKey::generate_in_slot(SigningAlgorithm::RS256, 0).with_kid("rsa-1"),
            rsa_other: TestKey::generate_in_slot(SigningAlgorithm::RS256, 1).with_kid("rsa-2"),
            per_alg: SigningAlgorithm::ALL
                .iter()
                .map(|alg| {
                    TestKey::generate_in_slot(*alg, 2).with_kid(alg.as_str().to_ascii_lowercase())
                })
                .collect(),
            no_kid: TestKey::generate(SigningAlgorithm::EdDSA),
            enc_key: TestKey::generate_in_slot(SigningAlgorithm::RS256, 3)
                .with_kid("rsa-enc")
                .with_use(Some("enc")),
            attacker: TestKey::generate_in_slot(SigningAlgorithm::RS256, 3).with_kid("attacker"),
            clock: FakeClock::at(NOW),
        }
    }

    /// The key for `alg` from [`TestIdp::per_alg`].
    pub fn key(&self, alg: SigningAlgorithm) -> &TestKey {
        self.per_alg
            .iter()
            .find(|k| k.alg() == alg)
            .expect("every algorithm has a key")
    }

    /// The published JWKS.
    pub fn jwks(&self) -> String {
        let mut keys = vec![&self.rsa, &self.rsa_other, &self.no_kid, &self.enc_key];
        keys.extend(self.per_alg.iter());
        jwks(&keys)
    }

    /// A policy for this IdP accepting every supported algorithm, 60 s leeway.
    pub fn policy(&self) -> ValidationPolicy {
        ValidationPolicy::new(ISSUER, AUDIENCE).with_algorithms(SigningAlgorithm::ALL)
    }

    /// Claims of a good ID token for alice, valid for an hour.
    pub fn claims(&self) -> Value {
        json!({
            "iss": ISSUER,
            "aud": AUDIENCE,
            "azp": AUDIENCE,
            "sub": "0a1b2c3d",
            "iat": NOW - 10,
            "nbf": NOW - 10,
            "exp": NOW + 3600,
            "preferred_username": "alice",
            "email": "alice@example.com",
            "email_verified": true,
            "groups": ["dev", "ops"],
            "realm_access": {"roles": ["viewer"]},
            "nonce": "n-0S6_WzA2Mj",
        })
    }

    /// [`TestIdp::claims`] with `changes` merged in (`null` removes a claim).
    pub fn claims_with(&self, changes: Value) -> Value {
        let mut claims = self.claims();
        let obj = claims.as_object_mut().expect("object");
        for (k, v) in changes.as_object().expect("changes is an object") {
            if v.is_null() {
                obj.remove(k);
            } else {
                obj.insert(k.clone(), v.clone());
            }
        }
        claims
    }

    /// A good RS256 token.
    pub fn token(&self) -> String {
        self.rsa.sign(&self.claims())
    }

    /// A key source serving [`TestIdp::jwks`].
    pub fn key_source(&self) -> FakeKeySource {
        FakeKeySource::serving(self.jwks())
    }

    /// A verifier over `source` with [`TestIdp::policy`] and the fake clock.
    pub fn verifier(&self, source: FakeKeySource) -> TokenVerifier<FakeKeySource> {
        TokenVerifier::with_cache_config(
            self.policy(),
            source,
            self.clock.clone(),
            JwksCacheConfig::default(),
        )
    }

    /// An authenticator over `source` with `mapping`.
    pub fn authenticator(
        &self,
        source: FakeKeySource,
        mapping: ClaimMapping,
    ) -> JwtAuthenticator<FakeKeySource> {
        JwtAuthenticator::new(self.verifier(source), mapping)
    }

    /// The hostile and malformed tokens, each with the error it must get.
    pub fn malicious_tokens(&self) -> Vec<MaliciousToken> {
        catalog(self)
    }
}

/// One entry of the hostile-token catalog.
pub struct MaliciousToken {
    /// What the token tries.
    pub name: &'static str,
    /// The token.
    pub token: String,
    /// The claim mapping to authenticate it with.
    pub mapping: ClaimMapping,
    /// Whether an error is the right one.
    pub expect: Box<dyn Fn(&JwtError) -> bool + Send + Sync>,
}

impl std::fmt::Debug for MaliciousToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaliciousToken")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

macro_rules! case {
    ($list:ident, $name:expr, $token:expr, $pat:pat $(if $guard:expr)?) => {
        case!($list, $name, $token, ClaimMapping::new(), $pat $(if $guard)?)
    };
    ($list:ident, $name:expr, $token:expr, $mapping:expr, $pat:pat $(if $guard:expr)?) => {
        $list.push(MaliciousToken {
            name: $name,
            token: $token,
            mapping: $mapping,
            expect: Box::new(move |e: &JwtError| matches!(e, $pat $(if $guard)?)),
        })
    };
}

fn catalog(idp: &TestIdp) -> Vec<MaliciousToken> {
    let mut v = Vec::new();
    let rsa = &idp.rsa;
    let good = idp.claims();
    let good_b64 = b64(good.to_string());
    let with = |changes: Value| rsa.sign(&idp.claims_with(changes));
    let header_b64 = |h: Value| b64(h.to_string());

    // --- Algorithm attacks (RFC 8725 section 2.1, 3.1) ---
    case!(v, "alg none, empty signature",
        format!("{}.{good_b64}.", header_b64(json!({"alg": "none", "typ": "JWT"}))),
        JwtError::AlgorithmNotAllowed { alg, .. } if alg == "none");
    case!(v, "alg None (case variant) with a signature",
        format!("{}.{good_b64}.c2ln", header_b64(json!({"alg": "None"}))),
        JwtError::AlgorithmNotAllowed { alg, .. } if alg == "None");
    let hs_input = format!(
        "{}.{good_b64}",
        header_b64(json!({"alg": "HS256", "kid": "rsa-1"}))
    );
    let hs_key = hmac::Key::new(hmac::HMAC_SHA256, &rsa.public_key_bytes());
    case!(v, "HS256 signed with the RSA public key as the secret",
        format!("{hs_input}.{}", b64(hmac::sign(&hs_key, hs_input.as_bytes()))),
        JwtError::AlgorithmNotAllowed { alg, .. } if alg == "HS256");
    let jwk_secret = hmac::Key::new(hmac::HMAC_SHA512, rsa.jwk().to_string().as_bytes());
    let hs512_input = format!("{}.{good_b64}", header_b64(json!({"alg": "HS512"})));
    case!(v, "HS512 signed with the JWK text as the secret",
        format!("{hs512_input}.{}", b64(hmac::sign(&jwk_secret, hs512_input.as_bytes()))),
        JwtError::AlgorithmNotAllowed { alg, .. } if alg == "HS512");
    case!(
        v,
        "no alg member",
        rsa.sign_with_header(&json!({"kid": "rsa-1"}), &good),
        JwtError::Malformed {
            part: TokenPart::Header,
            ..
        }
    );
    case!(
        v,
        "alg is a number",
        rsa.sign_with_header(&json!({"alg": 256, "kid": "rsa-1"}), &good),
        JwtError::Malformed {
            part: TokenPart::Header,
            ..
        }
    );
    case!(v, "unknown alg RS1",
        rsa.sign_with_header(&json!({"alg": "RS1", "kid": "rsa-1"}), &good),
        JwtError::AlgorithmNotAllowed { alg, .. } if alg == "RS1");
    case!(v, "ES512 (unsupported curve P-521)",
        rsa.sign_with_header(&json!({"alg": "ES512", "kid": "rsa-1"}), &good),
        JwtError::AlgorithmNotAllowed { alg, .. } if alg == "ES512");
    case!(v, "ES256 header naming an RSA key",
        rsa.sign_with_header(&json!({"alg": "ES256", "kid": "rsa-1"}), &good),
        JwtError::KeyMismatch { kid, alg: "ES256", .. } if kid == "rsa-1");
    case!(v, "PS256 header with a key published for RS256",
        rsa.clone().with_alg(SigningAlgorithm::PS256).sign(&good),
        JwtError::KeyMismatch { kid, alg: "PS256", .. } if kid == "rsa-1");
    case!(
        v,
        "duplicate alg member in the header",
        rsa.sign_segments(
            &b64(r#"{"alg":"none","alg":"RS256","kid":"rsa-1"}"#),
            &good_b64
        ),
        JwtError::Malformed {
            part: TokenPart::Header,
            ..
        }
    );

    // --- Key selection attacks ---
    case!(
        v,
        "kid pointing at another published key",
        rsa.sign_with_header(&json!({"alg": "RS256", "kid": "rsa-2"}), &good),
        JwtError::BadSignature
    );
    case!(v, "kid is a path",
        rsa.sign_with_header(&json!({"alg": "RS256", "kid": "../../../../etc/passwd"}), &good),
        JwtError::UnknownKeyId { kid } if kid == "../../../../etc/passwd");
    case!(
        v,
        "kid is SQL",
        rsa.sign_with_header(
            &json!({"alg": "RS256", "kid": "x' UNION SELECT 'secret' --"}),
            &good
        ),
        JwtError::UnknownKeyId { .. }
    );
    case!(v, "kid is 10 KB long",
        rsa.sign_with_header(&json!({"alg": "RS256", "kid": "k".repeat(10_000)}), &good),
        JwtError::UnknownKeyId { kid } if kid.len() < 100);
    case!(
        v,
        "kid is a number",
        rsa.sign_with_header(&json!({"alg": "RS256", "kid": 1}), &good),
        JwtError::Malformed {
            part: TokenPart::Header,
            ..
        }
    );
    case!(v, "kid of an encryption key (use: enc)",
        idp.enc_key.sign(&good),
        JwtError::KeyMismatch { kid, .. } if kid == "rsa-enc");
    case!(v, "jku header pointing at the attacker's JWKS",
        idp.attacker.sign_with_header(
            &json!({"alg": "RS256", "kid": "attacker", "jku": "https://attacker.invalid/jwks"}), &good),
        JwtError::UnknownKeyId { kid } if kid == "attacker");
    case!(
        v,
        "embedded jwk header with the attacker's key, no kid",
        idp.attacker.sign_with_header(
            &json!({"alg": "RS256", "jwk": idp.attacker.clone().without_kid().jwk()}),
            &good
        ),
        JwtError::BadSignature
    );
    case!(
        v,
        "x5u header and a real kid, signed by the attacker",
        idp.attacker.sign_with_header(
            &json!({"alg": "RS256", "kid": "rsa-1", "x5u": "https://attacker.invalid/cert.pem"}),
            &good
        ),
        JwtError::BadSignature
    );
    case!(v, "unknown crit extension",
        rsa.sign_with_header(&json!({"alg": "RS256", "kid": "rsa-1", "crit": ["exp"], "exp": 1}), &good),
        JwtError::UnsupportedCritical { names } if names == &["exp".to_owned()]);
    case!(
        v,
        "crit b64=false (RFC 7797 unencoded payload)",
        rsa.sign_with_header(
            &json!({"alg": "RS256", "kid": "rsa-1", "crit": ["b64"], "b64": false}),
            &good
        ),
        JwtError::UnsupportedCritical { .. }
    );
    case!(
        v,
        "empty crit list",
        rsa.sign_with_header(&json!({"alg": "RS256", "kid": "rsa-1", "crit": []}), &good),
        JwtError::Malformed {
            part: TokenPart::Header,
            ..
        }
    );

    // --- Signature tampering ---
    let token = idp.token();
    let parts: Vec<&str> = token.split('.').collect();
    let evil_payload = b64(idp
        .claims_with(json!({"preferred_username": "admin"}))
        .to_string());
    case!(
        v,
        "tampered payload (username changed, signature kept)",
        format!("{}.{evil_payload}.{}", parts[0], parts[2]),
        JwtError::BadSignature
    );
    let evil_header = b64(json!({"alg": "RS256", "kid": "rsa-1", "typ": "at+jwt"}).to_string());
    case!(
        v,
        "tampered header (typ changed, signature kept)",
        format!("{evil_header}.{}.{}", parts[1], parts[2]),
        JwtError::BadSignature
    );
    let sig = URL_SAFE_NO_PAD.decode(parts[2]).expect("own signature");
    case!(
        v,
        "truncated signature",
        format!("{}.{}.{}", parts[0], parts[1], b64(&sig[..sig.len() - 1])),
        JwtError::BadSignature
    );
    let mut longer = sig.clone();
    longer.extend_from_slice(&[0, 0]);
    case!(
        v,
        "extra signature bytes",
        format!("{}.{}.{}", parts[0], parts[1], b64(&longer)),
        JwtError::BadSignature
    );
    let mut flipped = sig.clone();
    flipped[10] ^= 1;
    case!(
        v,
        "one signature bit flipped",
        format!("{}.{}.{}", parts[0], parts[1], b64(&flipped)),
        JwtError::BadSignature
    );
    case!(
        v,
        "signature stripped",
        format!("{}.{}.", parts[0], parts[1]),
        JwtError::Malformed {
            part: TokenPart::Signature,
            ..
        }
    );
    case!(
        v,
        "signature from the attacker's key under a real kid",
        idp.attacker.clone().with_kid("rsa-1").sign(&good),
        JwtError::BadSignature
    );

    // --- Structure and encoding ---
    case!(
        v,
        "JWE compact serialization (5 segments)",
        format!(
            "{}.a2V5.aXY.Y2lwaGVy.dGFn",
            header_b64(json!({"alg": "RSA-OAEP", "enc": "A256GCM"}))
        ),
        JwtError::EncryptedTokenRejected
    );
    case!(
        v,
        "enc header on a 3-segment token",
        rsa.sign_with_header(
            &json!({"alg": "RS256", "kid": "rsa-1", "enc": "A128GCM"}),
            &good
        ),
        JwtError::EncryptedTokenRejected
    );
    case!(
        v,
        "two segments",
        format!("{}.{good_b64}", parts[0]),
        JwtError::Malformed {
            part: TokenPart::Structure,
            ..
        }
    );
    case!(
        v,
        "four segments",
        format!("{token}.extra"),
        JwtError::Malformed {
            part: TokenPart::Structure,
            ..
        }
    );
    case!(
        v,
        "header in standard base64 with padding",
        format!(
            "{}.{}.{}",
            base64::engine::general_purpose::STANDARD.encode(br#"{"alg":"RS256","kid":"rsa-1"}?"#),
            parts[1],
            parts[2]
        ),
        JwtError::Malformed {
            part: TokenPart::Header,
            ..
        }
    );
    case!(
        v,
        "non-base64url characters in the header",
        format!("eyJ!bGc*.{}.{}", parts[1], parts[2]),
        JwtError::Malformed {
            part: TokenPart::Header,
            ..
        }
    );
    case!(
        v,
        "header is a JSON array read positionally",
        rsa.sign_segments(&b64(r#"["RS256","rsa-1"]"#), &good_b64),
        JwtError::Malformed {
            part: TokenPart::Header,
            ..
        }
    );
    case!(
        v,
        "header is not JSON",
        format!("{}.{}.{}", b64("alg=RS256"), parts[1], parts[2]),
        JwtError::Malformed {
            part: TokenPart::Header,
            ..
        }
    );
    case!(
        v,
        "signed payload with base64 padding",
        rsa.sign_segments(parts[0], &format!("{good_b64}==")),
        JwtError::Malformed {
            part: TokenPart::Payload,
            ..
        }
    );
    case!(
        v,
        "signed payload that is a JSON array",
        rsa.sign_segments(parts[0], &b64("[1,2,3]")),
        JwtError::Malformed {
            part: TokenPart::Payload,
            ..
        }
    );
    case!(
        v,
        "signed payload with a duplicate iss",
        rsa.sign_segments(
            parts[0],
            &b64(format!(
                r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{},"iss":"https://evil.invalid"}}"#,
                NOW + 60
            ))
        ),
        JwtError::Malformed {
            part: TokenPart::Payload,
            ..
        }
    );
    case!(
        v,
        "oversize token (64 KiB of claims)",
        with(json!({"padding": "x".repeat(64 * 1024)})),
        JwtError::TooLarge { max: 32768, .. }
    );

    // --- Lifetime ---
    case!(v, "expired an hour ago",
        with(json!({"exp": NOW - 3600})),
        JwtError::Expired { exp, now: NOW, .. } if *exp == NOW - 3600);
    case!(v, "expired just beyond the leeway",
        with(json!({"exp": NOW - 60})),
        JwtError::Expired { exp, .. } if *exp == NOW - 60);
    case!(v, "not valid before tomorrow",
        with(json!({"nbf": NOW + 86_400})),
        JwtError::NotYetValid { nbf, .. } if *nbf == NOW + 86_400);
    case!(v, "issued in the future",
        with(json!({"iat": NOW + 3600})),
        JwtError::IssuedInFuture { iat, .. } if *iat == NOW + 3600);
    case!(v, "no exp",
        with(json!({"exp": null})),
        JwtError::MissingClaim { claim } if claim == "exp");
    case!(v, "exp is a string",
        with(json!({"exp": "9999999999"})),
        JwtError::InvalidClaim { claim, .. } if claim == "exp");
    case!(v, "exp is negative",
        with(json!({"exp": -1})),
        JwtError::InvalidClaim { claim, .. } if claim == "exp");

    // --- Issuer, audience, authorized party ---
    case!(v, "wrong issuer",
        with(json!({"iss": "https://evil.invalid"})),
        JwtError::IssuerMismatch { actual, expected } if actual == "https://evil.invalid" && expected == ISSUER);
    case!(
        v,
        "issuer with a trailing slash",
        with(json!({"iss": format!("{ISSUER}/")})),
        JwtError::IssuerMismatch { .. }
    );
    case!(v, "no issuer",
        with(json!({"iss": null})),
        JwtError::MissingClaim { claim } if claim == "iss");
    case!(v, "wrong audience",
        with(json!({"aud": "another-app"})),
        JwtError::AudienceMismatch { actual, .. } if actual == &["another-app".to_owned()]);
    case!(
        v,
        "audience list without us",
        with(json!({"aud": ["a", "b"], "azp": "a"})),
        JwtError::AudienceMismatch { .. }
    );
    case!(v, "no audience",
        with(json!({"aud": null})),
        JwtError::MissingClaim { claim } if claim == "aud");
    case!(v, "audience with a non-string",
        with(json!({"aud": [AUDIENCE, 7]})),
        JwtError::InvalidClaim { claim, .. } if claim == "aud");
    case!(
        v,
        "several audiences and no azp",
        with(json!({"aud": [AUDIENCE, "other"], "azp": null})),
        JwtError::AuthorizedPartyMismatch { actual: None, .. }
    );
    case!(v, "azp is another client",
        with(json!({"aud": [AUDIENCE, "other"], "azp": "other"})),
        JwtError::AuthorizedPartyMismatch { actual: Some(azp), .. } if azp == "other");

    // --- Claim mapping and identity safety ---
    case!(v, "username is a number",
        with(json!({"preferred_username": 42})),
        JwtError::InvalidClaim { claim, .. } if claim == "preferred_username");
    case!(v, "username is a nested object",
        with(json!({"preferred_username": {"name": "admin"}})),
        JwtError::InvalidClaim { claim, .. } if claim == "preferred_username");
    case!(v, "no username claim",
        with(json!({"preferred_username": null})),
        JwtError::MissingClaim { claim } if claim == "preferred_username");
    case!(
        v,
        "empty username",
        with(json!({"preferred_username": ""})),
        JwtError::Identity(IdentityError::EmptyUsername)
    );
    case!(
        v,
        "system: username",
        with(json!({"preferred_username": "system:admin"})),
        JwtError::Identity(IdentityError::ReservedPrefix {
            field: "username",
            ..
        })
    );
    case!(
        v,
        "system:serviceaccount username",
        with(json!({"preferred_username": "system:serviceaccount:kube-system:default"})),
        JwtError::Identity(IdentityError::ReservedPrefix {
            field: "username",
            ..
        })
    );
    case!(
        v,
        "CR/LF header injection in the username",
        with(json!({"preferred_username": "alice\r\nImpersonate-Group: system:masters"})),
        JwtError::Identity(IdentityError::UnsafeCharacter {
            field: "username",
            ..
        })
    );
    case!(
        v,
        "NUL in the username",
        with(json!({"preferred_username": "alice\u{0}"})),
        JwtError::Identity(IdentityError::UnsafeCharacter { .. })
    );
    case!(v, "system:masters group",
        with(json!({"groups": ["dev", "system:masters"]})),
        JwtError::Identity(IdentityError::ReservedPrefix { field: "group", value }) if value == "system:masters");
    case!(v, "groups with a non-string",
        with(json!({"groups": ["dev", 1]})),
        JwtError::InvalidClaim { claim, .. } if claim == "groups");
    case!(v, "groups with a nested array",
        with(json!({"groups": ["dev", ["system:masters"]]})),
        JwtError::InvalidClaim { claim, .. } if claim == "groups");
    case!(v, "groups is an object",
        with(json!({"groups": {"admin": true}})),
        JwtError::InvalidClaim { claim, .. } if claim == "groups");
    case!(
        v,
        "group with LF",
        with(json!({"groups": ["dev\nops"]})),
        JwtError::Identity(IdentityError::UnsafeCharacter { field: "group", .. })
    );
    case!(
        v,
        "empty group",
        with(json!({"groups": ["dev", ""]})),
        JwtError::Identity(IdentityError::EmptyGroup { index: 1 })
    );
    case!(
        v,
        "system: in nested Keycloak roles",
        with(json!({"realm_access": {"roles": ["system:nodes"]}})),
        ClaimMapping::new().with_groups_claim("realm_access.roles"),
        JwtError::Identity(IdentityError::ReservedPrefix { field: "group", .. })
    );
    case!(
        v,
        "email_verified false with the email claim",
        with(json!({"email_verified": false})),
        ClaimMapping::new().with_username_claim("email"),
        JwtError::EmailNotVerified
    );
    case!(v, "email_verified as the string \"true\"",
        with(json!({"email_verified": "true"})),
        ClaimMapping::new().with_username_claim("email"),
        JwtError::InvalidClaim { claim, .. } if claim == "email_verified");
    case!(v, "missing required claim",
        idp.token(),
        ClaimMapping::new().with_required_claim("hd", "example.com"),
        JwtError::MissingClaim { claim } if claim == "hd");
    case!(v, "required claim with another value",
        with(json!({"hd": "evil.invalid"})),
        ClaimMapping::new().with_required_claim("hd", "example.com"),
        JwtError::RequiredClaimMismatch { claim, .. } if claim == "hd");
    case!(
        v,
        "required claim as an array containing the value",
        with(json!({"hd": ["example.com"]})),
        ClaimMapping::new().with_required_claim("hd", "example.com"),
        JwtError::RequiredClaimMismatch { .. }
    );
    case!(v, "uid claim is an object",
        with(json!({"sub": {"id": 1}})),
        ClaimMapping::new().with_uid_claim("sub"),
        JwtError::InvalidClaim { claim, .. } if claim == "sub");
    v
}
