//! Verification cost: cold (signature + claims) per algorithm, the raw
//! aws-lc-rs verify of the same key for comparison, a verified-token cache
//! hit, and claim extraction. Results: docs/benchmarks.md.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use aws_lc_rs::signature::{
    self as sig, ParsedPublicKey, RsaPublicKeyComponents, UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use headlamp_jwt::testing::{TestIdp, TestKey};
use headlamp_jwt::{ClaimMapping, KeySet, SigningAlgorithm, Validator};

/// Polls a future that must complete without waiting (a cache hit).
fn ready<F: Future>(fut: F) -> F::Output {
    match pin!(fut).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("expected a cache hit that completes immediately"),
    }
}

fn split(token: &str) -> (Vec<u8>, Vec<u8>) {
    let (input, sig) = token.rsplit_once('.').unwrap();
    (
        input.as_bytes().to_vec(),
        URL_SAFE_NO_PAD.decode(sig).unwrap(),
    )
}

fn b64d(v: &serde_json::Value) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(v.as_str().unwrap()).unwrap()
}

fn raw_verify(c: &mut Criterion, name: &str, key: &TestKey, token: &str) {
    let (msg, signature) = split(token);
    let jwk = key.jwk();
    let mut group = c.benchmark_group("raw_crypto_verify");
    match key.alg() {
        SigningAlgorithm::RS256 => {
            let (n, e) = (b64d(&jwk["n"]), b64d(&jwk["e"]));
            // What jsonwebtoken's aws-lc provider does per call: build the
            // key from (n, e), then verify.
            group.bench_function(format!("{name}/components"), |b| {
                b.iter(|| {
                    RsaPublicKeyComponents { n: &n, e: &e }
                        .verify(
                            &sig::RSA_PKCS1_2048_8192_SHA256,
                            black_box(&msg),
                            black_box(&signature),
                        )
                        .unwrap()
                })
            });
            let der = key.public_key_bytes();
            let parsed = ParsedPublicKey::new(&sig::RSA_PKCS1_2048_8192_SHA256, &der).unwrap();
            group.bench_function(format!("{name}/pre_parsed"), |b| {
                b.iter(|| {
                    parsed
                        .verify_sig(black_box(&msg), black_box(&signature))
                        .unwrap()
                })
            });
        }
        SigningAlgorithm::ES256 | SigningAlgorithm::EdDSA => {
            let alg: &'static dyn sig::VerificationAlgorithm =
                if key.alg() == SigningAlgorithm::ES256 {
                    &sig::ECDSA_P256_SHA256_FIXED
                } else {
                    &sig::ED25519
                };
            let point = key.public_key_bytes();
            group.bench_function(format!("{name}/unparsed"), |b| {
                b.iter(|| {
                    UnparsedPublicKey::new(alg, &point)
                        .verify(black_box(&msg), black_box(&signature))
                        .unwrap()
                })
            });
            let parsed = ParsedPublicKey::new(alg, &point).unwrap();
            group.bench_function(format!("{name}/pre_parsed"), |b| {
                b.iter(|| {
                    parsed
                        .verify_sig(black_box(&msg), black_box(&signature))
                        .unwrap()
                })
            });
        }
        _ => unreachable!(),
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let idp = TestIdp::new();
    let keys = KeySet::from_jwks_json(idp.jwks().as_bytes()).unwrap();
    let validator = Validator::new(idp.policy(), idp.clock.clone());

    for (name, key) in [
        ("RS256", &idp.rsa),
        ("ES256", idp.key(SigningAlgorithm::ES256)),
        ("EdDSA", idp.key(SigningAlgorithm::EdDSA)),
    ] {
        let token = key.sign(&idp.claims());
        validator.validate(&token, &keys).unwrap();
        c.benchmark_group("cold_verify").bench_function(name, |b| {
            b.iter(|| validator.validate(black_box(&token), &keys).unwrap())
        });
        raw_verify(c, name, key, &token);
    }

    let token = idp.token();
    let auth = idp.authenticator(idp.key_source(), ClaimMapping::new());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(auth.authenticate_token(&token)).unwrap();
    c.bench_function("cache_hit/authenticate_token", |b| {
        b.iter(|| ready(auth.authenticate_token(black_box(&token))).unwrap())
    });

    // A token with 200 groups (about 6 KiB), as large IdP tokens get.
    let groups: Vec<String> = (0..200).map(|i| format!("team-{i:03}-readers")).collect();
    let big = idp
        .rsa
        .sign(&idp.claims_with(serde_json::json!({ "groups": groups })));
    rt.block_on(auth.authenticate_token(&big)).unwrap();
    c.bench_function(
        &format!("cache_hit/authenticate_token_{}_bytes", big.len()),
        |b| b.iter(|| ready(auth.authenticate_token(black_box(&big))).unwrap()),
    );

    // Where a cache hit's time goes: the key is SHA-256 of the signature
    // segment; hashing the whole token is shown for comparison.
    let mut parts = c.benchmark_group("cache_hit_parts");
    let signature = token.rsplit_once('.').unwrap().1;
    for (what, bytes) in [
        ("signature_segment", signature),
        ("whole_token", token.as_str()),
    ] {
        parts.bench_function(format!("sha256_{what}_{}_bytes", bytes.len()), |b| {
            b.iter(|| {
                aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, black_box(bytes.as_bytes()))
            })
        });
    }
    let identity = ready(auth.authenticate_token(&token)).unwrap();
    parts.bench_function("identity_clone", |b| {
        b.iter(|| black_box(&identity).clone())
    });
    let moka: moka::sync::Cache<[u8; 32], std::sync::Arc<headlamp_core::Identity>> =
        moka::sync::Cache::new(10_000);
    moka.insert([7; 32], std::sync::Arc::new(identity.clone()));
    parts.bench_function("moka_get", |b| {
        b.iter(|| moka.get(black_box(&[7; 32])).unwrap())
    });
    parts.finish();

    let verified = validator.validate(&token, &keys).unwrap();
    let mapping = ClaimMapping::new()
        .with_username_prefix("oidc:")
        .with_groups_prefix("oidc:");
    c.bench_function("claim_extraction/prefixed_user_and_groups", |b| {
        b.iter(|| mapping.identity(black_box(&verified)).unwrap())
    });
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

criterion_group! {
    name = verify;
    config = config();
    targets = benches
}
criterion_main!(verify);
