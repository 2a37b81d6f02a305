//! A jsonwebtoken `CryptoProvider` installed by the embedder is used for
//! every signature, instead of the aws-lc-rs keys parsed at key-set load.
//!
//! Its own test binary: installing a provider is process-wide and
//! permanent, so it must not share a process with the unit tests.

use std::sync::atomic::{AtomicUsize, Ordering};

use headlamp_jwt::testing::TestIdp;
use headlamp_jwt::{JwtError, KeySet, Validator};
use jsonwebtoken::crypto::{CryptoProvider, JwtVerifier, aws_lc};
use jsonwebtoken::{Algorithm, DecodingKey};

static VERIFIERS_MADE: AtomicUsize = AtomicUsize::new(0);

/// aws-lc-rs through jsonwebtoken, counting the verifiers it hands out.
fn counting_verifier(
    alg: &Algorithm,
    key: &DecodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    VERIFIERS_MADE.fetch_add(1, Ordering::SeqCst);
    (aws_lc::DEFAULT_PROVIDER.verifier_factory)(alg, key)
}

#[test]
fn an_installed_provider_verifies_every_signature() {
    let provider: &'static CryptoProvider = Box::leak(Box::new(CryptoProvider {
        verifier_factory: counting_verifier,
        ..aws_lc::DEFAULT_PROVIDER.clone()
    }));
    provider.install_default().unwrap();

    let idp = TestIdp::new();
    let keys = KeySet::from_jwks_json(idp.jwks().as_bytes()).unwrap();
    let validator = Validator::new(idp.policy(), idp.clock.clone());
    for (i, key) in idp.per_alg.iter().enumerate() {
        let token = key.sign(&idp.claims());
        let verified = validator
            .validate(&token, &keys)
            .unwrap_or_else(|e| panic!("{}: {e}", key.alg()));
        assert_eq!(verified.algorithm(), key.alg());
        assert_eq!(
            VERIFIERS_MADE.load(Ordering::SeqCst),
            i + 1,
            "{}",
            key.alg()
        );
    }

    // The provider's answer is the answer: a signature over other claims
    // is refused through it too.
    let token = idp.token();
    let other = idp
        .rsa
        .sign(&idp.claims_with(serde_json::json!({"sub": "mallory"})));
    let (_, signature) = token.rsplit_once('.').unwrap();
    let (signing_input, _) = other.rsplit_once('.').unwrap();
    let forged = format!("{signing_input}.{signature}");
    let before = VERIFIERS_MADE.load(Ordering::SeqCst);
    assert!(matches!(
        validator.validate(&forged, &keys),
        Err(JwtError::BadSignature)
    ));
    assert_eq!(VERIFIERS_MADE.load(Ordering::SeqCst), before + 1);
}
