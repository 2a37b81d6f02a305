//! Parsed JWK sets ([RFC 7517](https://www.rfc-editor.org/rfc/rfc7517)).

use aws_lc_rs::signature::{self as lc, ParsedPublicKey, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;

use crate::JwtError;
use crate::algorithm::{KeyKind, SigningAlgorithm};
use crate::error::untrusted;

/// Largest JWKS document accepted. Real identity providers publish a few
/// keys (a few KiB); a multi-megabyte document is a misconfiguration or an
/// attack on the parser.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Most keys kept from one document, for the same reason.
const MAX_KEYS: usize = 100;

/// Smallest RSA modulus accepted, in bytes (2048 bits,
/// [RFC 7518 section 3.3](https://www.rfc-editor.org/rfc/rfc7518#section-3.3)).
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// A public key from a JWKS that can verify signatures.
#[derive(Clone)]
pub(crate) struct VerificationKey {
    pub(crate) kid: Option<String>,
    /// The key's own `alg`, when it names one (RFC 7517 section 4.4).
    pub(crate) alg: Option<String>,
    pub(crate) kind: KeyKind,
    /// For a crypto provider the embedder installed in jsonwebtoken.
    pub(crate) decoding: DecodingKey,
    /// The same key parsed once by aws-lc-rs, one entry per algorithm it
    /// may verify. jsonwebtoken's aws-lc-rs provider rebuilds the public
    /// key from `n`/`e` (or the EC point) on every verification, about
    /// 4 µs of a 2048-bit RSA verify (docs/benchmarks.md); parsing it here,
    /// once per key set, leaves only the signature check per token. The
    /// parameters are exactly the ones that provider uses (see
    /// [`lc_params`]), so the checks are the same.
    pub(crate) parsed: Vec<(SigningAlgorithm, ParsedPublicKey)>,
}

impl VerificationKey {
    /// The key parsed for `alg`, when it was parsed for it.
    pub(crate) fn parsed_for(&self, alg: SigningAlgorithm) -> Option<&ParsedPublicKey> {
        self.parsed
            .iter()
            .find_map(|(a, key)| (*a == alg).then_some(key))
    }

    /// Why this key cannot verify `alg` signatures, if it cannot.
    pub(crate) fn unfit_for(&self, alg: SigningAlgorithm) -> Option<&'static str> {
        if self.kind != alg.key_kind() {
            return Some(match self.kind {
                KeyKind::Rsa => "it is an RSA key",
                KeyKind::EcP256 => "it is an EC P-256 key",
                KeyKind::EcP384 => "it is an EC P-384 key",
                KeyKind::Ed25519 => "it is an Ed25519 key",
            });
        }
        match &self.alg {
            Some(key_alg) if key_alg != alg.as_str() => {
                Some("the key's \"alg\" names a different algorithm")
            }
            _ => None,
        }
    }
}

/// A key that was in the document but cannot verify signatures, kept so a
/// token naming it gets a precise error instead of triggering a refetch.
#[derive(Debug, Clone)]
struct UnusableKey {
    kid: String,
    reason: &'static str,
}

/// The verification keys of one JWKS document.
///
/// Built by [`KeySet::from_jwks_json`], which keeps RSA (2048 bits or
/// more), EC P-256/P-384 and OKP Ed25519 keys meant for signatures and
/// drops everything else: symmetric (`oct`) keys, encryption keys
/// (`use: enc`), private key material is ignored (only public members are
/// read).
///
/// Each key is parsed by aws-lc-rs here, once per algorithm it may verify
/// (one when the JWK names its `alg`, else every algorithm of its type), so
/// a token costs a signature check and no key parsing. A key aws-lc-rs
/// refuses (an EC point off its curve, an empty RSA exponent) is skipped
/// like any other unusable key.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: Vec<VerificationKey>,
    unusable: Vec<UnusableKey>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<_> = self.keys.iter().map(|k| (&k.kid, k.kind)).collect();
        f.debug_struct("KeySet")
            .field("keys", &kids)
            .field("unusable", &self.unusable)
            .finish()
    }
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

/// The members of a JWK this crate reads (RFC 7517 section 4, RFC 7518
/// section 6). Unknown members are ignored, as RFC 7517 section 4 requires.
#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    key_ops: Option<Vec<String>>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
}

/// The aws-lc-rs verification parameters jsonwebtoken 12's `aws_lc`
/// provider uses for each algorithm (its `crypto/aws_lc/{rsa,ecdsa,eddsa}.rs`):
/// RSA moduli from 2048 to 8192 bits, fixed-length (r || s) ECDSA
/// signatures (RFC 7518 section 3.4).
fn lc_params(alg: SigningAlgorithm) -> &'static lc::RsaParameters {
    match alg {
        SigningAlgorithm::RS384 => &lc::RSA_PKCS1_2048_8192_SHA384,
        SigningAlgorithm::RS512 => &lc::RSA_PKCS1_2048_8192_SHA512,
        SigningAlgorithm::PS256 => &lc::RSA_PSS_2048_8192_SHA256,
        SigningAlgorithm::PS384 => &lc::RSA_PSS_2048_8192_SHA384,
        SigningAlgorithm::PS512 => &lc::RSA_PSS_2048_8192_SHA512,
        _ => &lc::RSA_PKCS1_2048_8192_SHA256,
    }
}

fn b64(value: Option<&str>, missing: &'static str) -> Result<Vec<u8>, &'static str> {
    URL_SAFE_NO_PAD
        .decode(value.ok_or(missing)?)
        .map_err(|_| "a key member is not base64url")
}

/// The algorithms a key of `kind` may verify: the key's own `alg` when it
/// names one (checked to fit the kind by [`VerificationKey::unfit_for`]
/// at selection time), else every algorithm of its kind.
fn algorithms_for(kind: KeyKind, key_alg: Option<&str>) -> Vec<SigningAlgorithm> {
    SigningAlgorithm::ALL
        .into_iter()
        .filter(|a| a.key_kind() == kind)
        .filter(|a| key_alg.is_none_or(|k| k == a.as_str()))
        .collect()
}

type Converted = (
    KeyKind,
    DecodingKey,
    Vec<(SigningAlgorithm, ParsedPublicKey)>,
);

fn convert(jwk: &RawJwk) -> Result<Converted, &'static str> {
    if let Some(use_) = &jwk.use_
        && use_ != "sig"
    {
        return Err("its \"use\" is not \"sig\"");
    }
    if let Some(ops) = &jwk.key_ops
        && !ops.iter().any(|op| op == "verify")
    {
        return Err("its \"key_ops\" do not include \"verify\"");
    }
    if let Some(alg) = &jwk.alg
        && SigningAlgorithm::from_alg(alg).is_none()
    {
        return Err("its \"alg\" is not an allowed signature algorithm");
    }
    let key_alg = jwk.alg.as_deref();
    match (jwk.kty.as_str(), jwk.crv.as_deref()) {
        ("RSA", _) => {
            let n = b64(jwk.n.as_deref(), "the RSA key has no \"n\"")?;
            let e = b64(jwk.e.as_deref(), "the RSA key has no \"e\"")?;
            // A leading zero octet is not part of the magnitude (RFC 7518
            // section 6.3.1.1 forbids it, some IdPs send it anyway).
            let strip = |v: &[u8]| v.iter().position(|b| *b != 0).unwrap_or(v.len());
            let (n_mag, e_mag) = (&n[strip(&n)..], &e[strip(&e)..]);
            if n_mag.len() < MIN_RSA_MODULUS_BYTES {
                return Err("its RSA modulus is shorter than 2048 bits");
            }
            let decoding = DecodingKey::from_rsa_raw_components(&n, &e);
            let components = RsaPublicKeyComponents { n: n_mag, e: e_mag };
            let parsed = algorithms_for(KeyKind::Rsa, key_alg)
                .into_iter()
                .map(|alg| {
                    components
                        .to_parsed_public_key(lc_params(alg))
                        .map(|key| (alg, key))
                })
                .collect::<Result<_, _>>()
                .map_err(|_| "its RSA members are invalid")?;
            Ok((KeyKind::Rsa, decoding, parsed))
        }
        ("EC", Some(crv @ ("P-256" | "P-384"))) => {
            let (kind, size, params) = if crv == "P-256" {
                (KeyKind::EcP256, 32, &lc::ECDSA_P256_SHA256_FIXED)
            } else {
                (KeyKind::EcP384, 48, &lc::ECDSA_P384_SHA384_FIXED)
            };
            // Coordinates are fixed-length octet strings (RFC 7518
            // section 6.2.1.2); anything else is not a point on the curve.
            let x = b64(jwk.x.as_deref(), "the EC key has no \"x\"")?;
            let y = b64(jwk.y.as_deref(), "the EC key has no \"y\"")?;
            if x.len() != size || y.len() != size {
                return Err("its EC coordinates have the wrong length for the curve");
            }
            // The uncompressed point (SEC 1 section 2.3.3), as jsonwebtoken
            // builds it in `DecodingKey::from_ec_components`.
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            let parsed = ParsedPublicKey::new(params, &point)
                .map_err(|_| "its EC point is not on the curve")?;
            let alg = if kind == KeyKind::EcP256 {
                SigningAlgorithm::ES256
            } else {
                SigningAlgorithm::ES384
            };
            let (Some(x), Some(y)) = (&jwk.x, &jwk.y) else {
                return Err("the EC key lacks \"x\" or \"y\"");
            };
            let decoding =
                DecodingKey::from_ec_components(x, y).map_err(|_| "its EC members are invalid")?;
            Ok((kind, decoding, vec![(alg, parsed)]))
        }
        ("EC", _) => Err("its curve is not P-256 or P-384"),
        ("OKP", Some("Ed25519")) => {
            let x = b64(jwk.x.as_deref(), "the OKP key has no \"x\"")?;
            if x.len() != 32 {
                return Err("its Ed25519 public key is not 32 bytes");
            }
            let parsed = ParsedPublicKey::new(&lc::ED25519, &x)
                .map_err(|_| "its OKP members are invalid")?;
            let decoding = DecodingKey::from_ed_der(&x);
            Ok((
                KeyKind::Ed25519,
                decoding,
                vec![(SigningAlgorithm::EdDSA, parsed)],
            ))
        }
        ("OKP", _) => Err("its curve is not Ed25519"),
        ("oct", _) => Err("it is a symmetric key, never used with public key sets"),
        _ => Err("its key type is not RSA, EC or OKP"),
    }
}

impl KeySet {
    /// Parses a JWKS document (`{"keys": [...]}`).
    ///
    /// Keys this crate cannot use are skipped (a key set may carry
    /// encryption keys or algorithms a verifier does not support,
    /// RFC 7517 section 5); the document is rejected only if it is not a
    /// JWKS at all or holds no usable key.
    pub fn from_jwks_json(json: &[u8]) -> Result<Self, JwtError> {
        if json.len() > MAX_JWKS_BYTES {
            return Err(JwtError::InvalidKeySet {
                reason: format!(
                    "the document is {} bytes, more than {MAX_JWKS_BYTES}",
                    json.len()
                ),
            });
        }
        let raw: RawJwks = serde_json::from_slice(json).map_err(|e| JwtError::InvalidKeySet {
            reason: format!("not a JWKS document ({{\"keys\": [...]}}): {e}"),
        })?;
        let mut set = KeySet::default();
        for value in raw.keys.into_iter().take(MAX_KEYS) {
            // A JWK is a JSON object (RFC 7517 section 4); serde would
            // otherwise read an array positionally.
            if !value.is_object() {
                tracing::debug!("skipping a JWK that is not a JSON object");
                continue;
            }
            let Ok(jwk) = serde_json::from_value::<RawJwk>(value) else {
                tracing::debug!("skipping a JWK that is not a JSON object with a string \"kty\"");
                continue;
            };
            match convert(&jwk) {
                Ok((kind, decoding, parsed)) => set.keys.push(VerificationKey {
                    kid: jwk.kid,
                    alg: jwk.alg,
                    kind,
                    decoding,
                    parsed,
                }),
                Err(reason) => {
                    tracing::debug!(kid = ?jwk.kid, reason, "skipping unusable JWK");
                    if let Some(kid) = jwk.kid {
                        set.unusable.push(UnusableKey { kid, reason });
                    }
                }
            }
        }
        if set.keys.is_empty() {
            return Err(JwtError::InvalidKeySet {
                reason: match set.unusable.first() {
                    Some(k) => format!(
                        "no usable signature key (key {:?} skipped: {})",
                        untrusted(&k.kid),
                        k.reason
                    ),
                    None => "no usable signature key".to_owned(),
                },
            });
        }
        Ok(set)
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set has no usable key (only possible for `Default`).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key ids of the usable keys, in document order.
    pub fn key_ids(&self) -> impl Iterator<Item = Option<&str>> {
        self.keys.iter().map(|k| k.kid.as_deref())
    }

    /// The keys that may have produced a token with this `kid` and `alg`.
    ///
    /// With a `kid`, only keys with exactly that id are candidates (a key
    /// without an id does not match a token that names one). Without a
    /// `kid`, every key fitting the algorithm is a candidate.
    pub(crate) fn candidates(
        &self,
        alg: SigningAlgorithm,
        kid: Option<&str>,
    ) -> Result<Vec<&VerificationKey>, JwtError> {
        match kid {
            Some(kid) => {
                let mut named = self.keys.iter().filter(|k| k.kid.as_deref() == Some(kid));
                let mut mismatch = None;
                let mut out = Vec::with_capacity(1);
                for key in named.by_ref() {
                    match key.unfit_for(alg) {
                        None => out.push(key),
                        Some(reason) => mismatch = Some(reason),
                    }
                }
                if !out.is_empty() {
                    return Ok(out);
                }
                let reason = mismatch.or_else(|| {
                    self.unusable
                        .iter()
                        .find(|k| k.kid == kid)
                        .map(|k| k.reason)
                });
                Err(match reason {
                    Some(reason) => JwtError::KeyMismatch {
                        kid: untrusted(kid),
                        alg: alg.as_str(),
                        reason,
                    },
                    None => JwtError::UnknownKeyId {
                        kid: untrusted(kid),
                    },
                })
            }
            None => {
                let out: Vec<_> = self
                    .keys
                    .iter()
                    .filter(|k| k.unfit_for(alg).is_none())
                    .collect();
                if out.is_empty() {
                    Err(JwtError::NoMatchingKey { alg: alg.as_str() })
                } else {
                    Ok(out)
                }
            }
        }
    }
}
