//! Paired, interleaved timing of a cold RS256 validation against the raw
//! aws-lc-rs verification of the same signature with the same key.
//!
//! On a shared or loaded machine, separate criterion runs drift apart by
//! more than the difference being measured. Here each round times a batch
//! of each, back to back, so both see the same load; the per-round ratio
//! is what is reported (median and best quartile). Bounded: 60 rounds.
#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)]

use std::hint::black_box;
use std::time::Instant;

use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use headlamp_jwt::testing::TestIdp;
use headlamp_jwt::{KeySet, Validator};

const ROUNDS: usize = 60;
const BATCH: u32 = 200;

fn time(mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..BATCH {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(BATCH)
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument filters by name.
    let idp = TestIdp::new();
    let keys = KeySet::from_jwks_json(idp.jwks().as_bytes()).unwrap();
    let validator = Validator::new(idp.policy(), idp.clock.clone());
    let token = idp.token();
    let (input, signature) = token.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    let jwk = idp.rsa.jwk();
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap();
    let parsed =
        ParsedPublicKey::new(&sig::RSA_PKCS1_2048_8192_SHA256, idp.rsa.public_key_bytes()).unwrap();

    let mut rows: Vec<[f64; 3]> = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let cold = time(|| {
            validator.validate(black_box(&token), &keys).unwrap();
        });
        let components = time(|| {
            RsaPublicKeyComponents { n: &n, e: &e }
                .verify(
                    &sig::RSA_PKCS1_2048_8192_SHA256,
                    black_box(input.as_bytes()),
                    black_box(&signature),
                )
                .unwrap();
        });
        let pre_parsed = time(|| {
            parsed
                .verify_sig(black_box(input.as_bytes()), black_box(&signature))
                .unwrap();
        });
        rows.push([cold, components, pre_parsed]);
    }
    let stat = |f: &dyn Fn(&[f64; 3]) -> f64| {
        let mut v: Vec<f64> = rows.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        (v[v.len() / 4], v[v.len() / 2])
    };
    let report = |name: &str, (q1, med): (f64, f64), unit: &str| {
        println!("{name:<48} p25 {q1:8.3}{unit}  median {med:8.3}{unit}");
    };
    println!("paired RS256, {ROUNDS} rounds x {BATCH} verifications each");
    report(
        "cold_verify/RS256 (headlamp-jwt Validator)",
        stat(&|r| r[0]),
        " us",
    );
    report(
        "raw aws-lc-rs, key from (n, e) per call",
        stat(&|r| r[1]),
        " us",
    );
    report("raw aws-lc-rs, key parsed once", stat(&|r| r[2]), " us");
    report("ratio cold / raw (n, e)", stat(&|r| r[0] / r[1]), "x ");
    report("ratio cold / raw parsed once", stat(&|r| r[0] / r[2]), "x ");
}
