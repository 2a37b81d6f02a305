//! Paired, interleaved timing of a cold RS256 validation against the raw
//! aws-lc-rs verification of the same signature with the same key.
//!
//! On a shared or loaded machine, separate criterion runs drift apart by
//! more than the difference being measured. Here each round times a small
//! batch of each, back to back (the order rotating every round), so all
//! see the same load; per-round ratios are reported (p10, median), with
//! per-call times (min, p10, median). Bounded: 400 rounds of 3 x 20 calls.
//! `PARTS=1` also times the pieces of a validation that are not crypto.
#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)]

use std::hint::black_box;
use std::time::Instant;

use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use headlamp_jwt::testing::TestIdp;
use headlamp_jwt::{KeySet, Validator};

const ROUNDS: usize = 400;
const BATCH: u32 = 20;

fn time(mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..BATCH {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(BATCH)
}

fn quantiles(mut v: Vec<f64>) -> [f64; 3] {
    v.sort_by(f64::total_cmp);
    [v[0], v[v.len() / 10], v[v.len() / 2]]
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument is ignored.
    let idp = TestIdp::new();
    let keys = KeySet::from_jwks_json(idp.jwks().as_bytes()).unwrap();
    let validator = Validator::new(idp.policy(), idp.clock.clone());
    let token = idp.token();
    let (input, signature_b64) = token.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature_b64).unwrap();
    let jwk = idp.rsa.jwk();
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap();
    let parsed =
        ParsedPublicKey::new(&sig::RSA_PKCS1_2048_8192_SHA256, idp.rsa.public_key_bytes()).unwrap();

    let mut series: [Vec<f64>; 3] = Default::default();
    for round in 0..ROUNDS {
        let mut row = [0.0; 3];
        for i in 0..3 {
            let which = (round + i) % 3;
            row[which] = match which {
                0 => time(|| {
                    validator.validate(black_box(&token), &keys).unwrap();
                }),
                1 => time(|| {
                    RsaPublicKeyComponents { n: &n, e: &e }
                        .verify(
                            &sig::RSA_PKCS1_2048_8192_SHA256,
                            black_box(input.as_bytes()),
                            black_box(&signature),
                        )
                        .unwrap();
                }),
                _ => time(|| {
                    parsed
                        .verify_sig(black_box(input.as_bytes()), black_box(&signature))
                        .unwrap();
                }),
            };
        }
        for (s, v) in series.iter_mut().zip(row) {
            s.push(v);
        }
    }
    let ratio = |a: usize, b: usize| {
        let v: Vec<f64> = series[a]
            .iter()
            .zip(&series[b])
            .map(|(x, y)| x / y)
            .collect();
        quantiles(v)
    };
    println!(
        "paired RS256, {ROUNDS} rounds x {BATCH} calls of each, {} bytes token",
        token.len()
    );
    println!("{:<46} {:>9} {:>9} {:>9}", "", "min", "p10", "median");
    for (name, i) in [
        ("cold_verify/RS256 (Validator::validate) us", 0),
        ("raw aws-lc-rs, key from (n, e) per call us", 1),
        ("raw aws-lc-rs, key parsed once us", 2),
    ] {
        let [min, p10, med] = quantiles(series[i].clone());
        println!("{name:<46} {min:9.3} {p10:9.3} {med:9.3}");
    }
    for (name, a, b) in [
        ("per-round ratio cold / raw (n, e)", 0, 1),
        ("per-round ratio cold / raw parsed once", 0, 2),
    ] {
        let [min, p10, med] = ratio(a, b);
        println!("{name:<46} {min:8.3}x {p10:8.3}x {med:8.3}x");
    }

    if std::env::var_os("PARTS").is_some() {
        parts(&token);
        // Key-set load: each RSA JWK is parsed once per algorithm it may
        // verify, one with "alg" once, one without for all six RSA ones.
        let mut no_alg = jwk.clone();
        no_alg.as_object_mut().unwrap().remove("alg");
        for (name, key) in [("with \"alg\"", &jwk), ("without \"alg\"", &no_alg)] {
            let doc = serde_json::json!({ "keys": [key] }).to_string();
            let best = (0..50)
                .map(|_| {
                    time(|| {
                        black_box(KeySet::from_jwks_json(black_box(doc.as_bytes())).unwrap());
                    })
                })
                .fold(f64::MAX, f64::min);
            println!(
                "part: {:<42} min {best:7.3} us",
                format!("KeySet load, 1 RSA JWK {name}")
            );
        }
    }
}

/// The non-crypto pieces of a validation, minimum over 200 batches.
fn parts(token: &str) {
    let mut segments = token.split('.');
    let (header, payload_b64, signature) = (
        segments.next().unwrap(),
        segments.next().unwrap(),
        segments.next().unwrap(),
    );
    let payload = URL_SAFE_NO_PAD.decode(payload_b64).unwrap();
    type Claims = serde_json::Map<String, serde_json::Value>;
    let header_json = URL_SAFE_NO_PAD.decode(header).unwrap();
    type Header<'a> = std::collections::BTreeMap<&'a str, serde::de::IgnoredAny>;
    let pieces: [(&str, &dyn Fn()); 7] = [
        ("count '.' byte by byte (before 2026-12-04)", &|| {
            black_box(black_box(token).bytes().filter(|b| *b == b'.').count());
        }),
        ("find the 2 '.' with split_once (now)", &|| {
            let (h, rest) = black_box(token).split_once('.').unwrap();
            let (p, s) = rest.split_once('.').unwrap();
            black_box((h, p, s, s.contains('.')));
        }),
        ("header JSON, borrowed", &|| {
            black_box(serde_json::from_slice::<Header<'_>>(black_box(&header_json)).unwrap());
        }),
        ("base64 header + signature", &|| {
            black_box(URL_SAFE_NO_PAD.decode(black_box(header)).unwrap());
            black_box(URL_SAFE_NO_PAD.decode(black_box(signature)).unwrap());
        }),
        ("base64 payload", &|| {
            black_box(URL_SAFE_NO_PAD.decode(black_box(payload_b64)).unwrap());
        }),
        ("payload JSON -> serde_json Map (+ drop)", &|| {
            black_box(serde_json::from_slice::<Claims>(black_box(&payload)).unwrap());
        }),
        ("payload JSON, syntax only (IgnoredAny)", &|| {
            black_box(
                serde_json::from_slice::<serde::de::IgnoredAny>(black_box(&payload)).unwrap(),
            );
        }),
    ];
    for (name, f) in pieces {
        let best = (0..200).map(|_| time(f)).fold(f64::MAX, f64::min);
        println!("part: {name:<42} min {best:7.3} us");
    }
}
