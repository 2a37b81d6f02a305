//! The sans-IO validator: compact JWS + key set + policy + clock -> verified claims.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use headlamp_core::{Clock, UnixTime};
use jsonwebtoken::crypto::CryptoProvider;
use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::{TokenPart, untrusted};
use crate::jwks::VerificationKey;
use crate::{JwtError, KeySet, SigningAlgorithm, ValidationPolicy};

/// Most keys tried for a token without `kid`. Each try is a public-key
/// operation; a document with many keys must not turn one token into
/// dozens of RSA verifications.
const MAX_KEYS_WITHOUT_KID: usize = 4;

/// The members of a JOSE header this validator acts on
/// ([RFC 7515 section 4.1](https://www.rfc-editor.org/rfc/rfc7515#section-4.1)).
///
/// `jku`, `x5u`, `jwk` and `x5c` are deliberately not read: a token must
/// never choose the key that verifies it (RFC 8725 section 3.10), so keys
/// come only from the configured key set. A duplicated member is a parse
/// error (serde rejects duplicate fields), which closes the "two `alg`
/// members, two parsers, two answers" trick.
#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(default, borrow)]
    alg: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    kid: Option<Cow<'a, str>>,
    #[serde(default)]
    enc: Option<de::IgnoredAny>,
    #[serde(default)]
    crit: Option<Vec<String>>,
}

/// A token whose structure and header passed every check that needs no
/// key: cheap to produce, so garbage never reaches the key cache.
pub(crate) struct ParsedToken<'a> {
    signing_input: &'a str,
    payload: &'a str,
    signature: Vec<u8>,
    pub(crate) alg: SigningAlgorithm,
    pub(crate) kid: Option<String>,
}

/// The claims of a token whose signature, issuer, audience and lifetime
/// were verified.
///
/// It has no public constructor: holding one proves the checks ran
/// (compare rustls' `HandshakeSignatureValid`).
#[derive(Clone, PartialEq)]
pub struct VerifiedToken {
    algorithm: SigningAlgorithm,
    key_id: Option<String>,
    issuer: String,
    audiences: Vec<String>,
    expires_at: UnixTime,
    claims: Map<String, Value>,
}

impl fmt::Debug for VerifiedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Claims are not secret, but a nonce or an access-token hash has no
        // business in a log either: print the envelope only.
        f.debug_struct("VerifiedToken")
            .field("algorithm", &self.algorithm)
            .field("key_id", &self.key_id)
            .field("issuer", &self.issuer)
            .field("subject", &self.subject())
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl VerifiedToken {
    /// The algorithm of the signature.
    pub fn algorithm(&self) -> SigningAlgorithm {
        self.algorithm
    }

    /// The `kid` of the key that verified it, when the token named one.
    pub fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    /// `iss`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `sub`, when it is a string.
    pub fn subject(&self) -> Option<&str> {
        self.claims.get("sub").and_then(Value::as_str)
    }

    /// The `aud` values.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// `exp`, seconds since the epoch.
    pub fn expires_at(&self) -> UnixTime {
        self.expires_at
    }

    /// All claims as JSON.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// A claim by name, or by dotted path into nested objects
    /// (`realm_access.roles`). A top-level claim whose name contains dots
    /// (`https://example.com/groups`) wins over the path reading.
    pub fn claim(&self, name: &str) -> Option<&Value> {
        if let Some(v) = self.claims.get(name) {
            return Some(v);
        }
        if !name.contains('.') {
            return None;
        }
        let mut parts = name.split('.');
        let mut current = self.claims.get(parts.next()?)?;
        for part in parts {
            current = current.as_object()?.get(part)?;
        }
        Some(current)
    }
}

/// A JSON object that refuses duplicate member names. RFC 7519 section 4
/// lets a parser reject them, and RFC 8725 section 2.8 shows why it
/// should: two `iss` members read differently by two components is a
/// bypass.
struct UniqueKeys(Map<String, Value>);

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UniqueKeys;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<UniqueKeys, A::Error> {
                let mut map = Map::new();
                while let Some(key) = access.next_key::<String>()? {
                    match map.entry(key) {
                        serde_json::map::Entry::Vacant(slot) => {
                            slot.insert(access.next_value::<Value>()?);
                        }
                        serde_json::map::Entry::Occupied(slot) => {
                            return Err(de::Error::custom(format_args!(
                                "duplicate member {:?}",
                                untrusted(slot.key())
                            )));
                        }
                    }
                }
                Ok(UniqueKeys(map))
            }
        }
        d.deserialize_map(V)
    }
}

fn decode_segment(part: TokenPart, segment: &str) -> Result<Vec<u8>, JwtError> {
    if segment.is_empty() {
        return Err(JwtError::malformed(part, "empty"));
    }
    // Strict base64url without padding (RFC 7515 section 2): padding, the
    // standard alphabet or non-zero trailing bits are all rejected.
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|e| JwtError::malformed(part, format!("not base64url: {e}")))
}

/// A JSON NumericDate (RFC 7519 section 2): a non-negative number of
/// seconds, possibly fractional (truncated).
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<UnixTime>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(v) = n.as_u64() {
                return Ok(Some(v));
            }
            match n.as_f64() {
                Some(f) if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 => Ok(Some(f as u64)),
                _ => Err(JwtError::invalid_claim(
                    name,
                    "must be a non-negative number of seconds",
                )),
            }
        }
        Some(other) => Err(JwtError::invalid_claim(
            name,
            format!("must be a number of seconds, not {}", json_type(other)),
        )),
    }
}

pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Compares two nonces without leaking through timing how many leading
/// bytes matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The jsonwebtoken crypto provider the embedder installed, if it is not
/// jsonwebtoken's own aws-lc-rs provider.
///
/// Without one, signatures are verified with the aws-lc-rs keys parsed
/// when the key set was loaded: the same library and parameters as
/// jsonwebtoken's `aws_lc` provider, without rebuilding the public key
/// per token. jsonwebtoken picks a default from its features, and panics
/// when both providers are compiled in (feature unification can do that);
/// that case also lands here, on aws-lc-rs, never on the panic.
/// See docs/adr/0001-crypto-providers.md.
fn installed_provider() -> Option<&'static CryptoProvider> {
    CryptoProvider::try_get_default()
        .filter(|p| !std::ptr::eq(*p, &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER))
}

/// Verifies compact JWS tokens against a key set under a [`ValidationPolicy`].
///
/// Sans-IO: it never fetches keys (pass a [`KeySet`]) and reads the time
/// from the injected [`Clock`]. For keys fetched over the network, see
/// [`TokenVerifier`](crate::TokenVerifier).
///
/// Checks, in order (cheap and key-independent first, so garbage costs no
/// public-key operation): size; three segments (five is a JWE); header
/// (`alg` allowed, no `crit`, no `enc`); key by `kid`/`alg`/`use`;
/// signature; then claims: `iss`, `aud`, `azp`, `exp`, `nbf`, `iat`, and
/// `nonce` when one is expected.
#[derive(Clone)]
pub struct Validator {
    policy: Arc<ValidationPolicy>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validator")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Validator {
    /// A validator enforcing `policy`, reading time from `clock`.
    pub fn new(policy: ValidationPolicy, clock: impl Clock) -> Self {
        Self {
            policy: Arc::new(policy),
            clock: Arc::new(clock),
        }
    }

    /// The policy.
    pub fn policy(&self) -> &ValidationPolicy {
        &self.policy
    }

    /// The current time as this validator sees it.
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// Verifies `token` with `keys`.
    pub fn validate(&self, token: &str, keys: &KeySet) -> Result<VerifiedToken, JwtError> {
        let parsed = self.parse(token)?;
        self.verify(&parsed, keys, None)
    }

    /// Verifies `token` with `keys` and requires its `nonce` claim to equal
    /// `nonce` (an ID token from an authorization code exchange, OIDC Core
    /// section 3.1.3.7 step 11).
    pub fn validate_with_nonce(
        &self,
        token: &str,
        keys: &KeySet,
        nonce: &str,
    ) -> Result<VerifiedToken, JwtError> {
        let parsed = self.parse(token)?;
        self.verify(&parsed, keys, Some(nonce))
    }

    /// Everything that can be checked without a key.
    pub(crate) fn parse<'a>(&self, token: &'a str) -> Result<ParsedToken<'a>, JwtError> {
        let max = self.policy.max_token_bytes();
        if token.len() > max {
            return Err(JwtError::TooLarge {
                size: token.len(),
                max,
            });
        }
        // Three segments: the common case is found with three `split_once`
        // (memchr-backed, several times faster than counting every byte
        // of a 1 KiB token); only a token with another number of dots
        // pays for a full count, for the error message.
        let three = token.split_once('.').and_then(|(header, rest)| {
            let (payload, signature) = rest.split_once('.')?;
            (!signature.contains('.')).then_some((header, payload, signature))
        });
        let Some((header_b64, payload, signature_b64)) = three else {
            let dots = token.bytes().filter(|b| *b == b'.').count();
            if dots == 4 {
                // RFC 7516 section 7.1: the JWE compact form has five segments.
                return Err(JwtError::EncryptedTokenRejected);
            }
            return Err(JwtError::malformed(
                TokenPart::Structure,
                format!(
                    "a signed JWT has 3 segments separated by '.', this one has {}",
                    dots + 1
                ),
            ));
        };
        let signing_input = &token[..header_b64.len() + 1 + payload.len()];

        let header_json = decode_segment(TokenPart::Header, header_b64)?;
        // RFC 7515 section 4: the header is a JSON object. serde would also
        // read a JSON array positionally into the same struct; refuse it
        // rather than accept what other JOSE parsers reject.
        if header_json.trim_ascii_start().first() != Some(&b'{') {
            return Err(JwtError::malformed(TokenPart::Header, "not a JSON object"));
        }
        let header: RawHeader<'_> = serde_json::from_slice(&header_json).map_err(|e| {
            JwtError::malformed(TokenPart::Header, format!("not a JOSE header: {e}"))
        })?;
        if header.enc.is_some() {
            return Err(JwtError::EncryptedTokenRejected);
        }
        let Some(alg_name) = header.alg else {
            return Err(JwtError::malformed(TokenPart::Header, "no \"alg\" member"));
        };
        let alg = SigningAlgorithm::from_alg(&alg_name)
            .filter(|a| self.policy.algorithms().contains(a))
            .ok_or_else(|| JwtError::AlgorithmNotAllowed {
                alg: untrusted(&alg_name),
                allowed: self.policy.allowed_list(),
            })?;
        if let Some(crit) = header.crit {
            // RFC 7515 section 4.1.11: an empty list is invalid, and every
            // listed extension must be understood. We implement none
            // (notably not RFC 7797 "b64": false), so any entry rejects.
            if crit.is_empty() {
                return Err(JwtError::malformed(
                    TokenPart::Header,
                    "\"crit\" is an empty list",
                ));
            }
            return Err(JwtError::UnsupportedCritical {
                names: crit.iter().take(8).map(|n| untrusted(n)).collect(),
            });
        }
        let signature = decode_segment(TokenPart::Signature, signature_b64)?;
        Ok(ParsedToken {
            signing_input,
            payload,
            signature,
            alg,
            kid: header.kid.map(Cow::into_owned),
        })
    }

    fn check_signature(&self, token: &ParsedToken<'_>, key: &VerificationKey) -> bool {
        let Some(provider) = installed_provider() else {
            // Candidates passed `unfit_for`, so the key was parsed for
            // this algorithm; a key that was not cannot verify it.
            return key.parsed_for(token.alg).is_some_and(|parsed| {
                parsed
                    .verify_sig(token.signing_input.as_bytes(), &token.signature)
                    .is_ok()
            });
        };
        let alg = token.alg.to_jsonwebtoken();
        match (provider.verifier_factory)(&alg, &key.decoding) {
            Ok(verifier) => verifier
                .verify(token.signing_input.as_bytes(), &token.signature)
                .is_ok(),
            Err(error) => {
                // The key passed our own checks when the set was parsed,
                // so this is a provider limitation; treat as not verified.
                tracing::warn!(%error, kid = ?key.kid, "crypto provider refused a key");
                false
            }
        }
    }

    /// Signature and claims checks for a parsed token.
    pub(crate) fn verify(
        &self,
        token: &ParsedToken<'_>,
        keys: &KeySet,
        nonce: Option<&str>,
    ) -> Result<VerifiedToken, JwtError> {
        let candidates = keys.candidates(token.alg, token.kid.as_deref())?;
        let verified = candidates
            .into_iter()
            .take(MAX_KEYS_WITHOUT_KID)
            .any(|key| self.check_signature(token, key));
        if !verified {
            return Err(JwtError::BadSignature);
        }

        // Only now, with the signature verified, are the claims worth reading.
        let payload = decode_segment(TokenPart::Payload, token.payload)?;
        let UniqueKeys(claims) = serde_json::from_slice(&payload).map_err(|e| {
            JwtError::malformed(
                TokenPart::Payload,
                format!("not a JSON object of claims: {e}"),
            )
        })?;
        self.check_claims(token, claims, nonce)
    }

    fn check_claims(
        &self,
        token: &ParsedToken<'_>,
        claims: Map<String, Value>,
        nonce: Option<&str>,
    ) -> Result<VerifiedToken, JwtError> {
        let policy = &*self.policy;

        let issuer = match claims.get("iss") {
            Some(Value::String(iss)) => iss.clone(),
            Some(other) => {
                return Err(JwtError::invalid_claim(
                    "iss",
                    format!("must be a string, not {}", json_type(other)),
                ));
            }
            None => return Err(JwtError::missing_claim("iss")),
        };
        if issuer != policy.issuer() {
            return Err(JwtError::IssuerMismatch {
                actual: issuer,
                expected: policy.issuer().to_owned(),
            });
        }

        // RFC 7519 section 4.1.3: a string or an array of strings.
        let audiences: Vec<String> = match claims.get("aud") {
            Some(Value::String(aud)) => vec![aud.clone()],
            Some(Value::Array(list)) => list
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| JwtError::invalid_claim("aud", "array holds a non-string"))?,
            Some(other) => {
                return Err(JwtError::invalid_claim(
                    "aud",
                    format!(
                        "must be a string or an array of strings, not {}",
                        json_type(other)
                    ),
                ));
            }
            None => return Err(JwtError::missing_claim("aud")),
        };
        if !audiences.iter().any(|a| policy.audiences().contains(a)) {
            return Err(JwtError::AudienceMismatch {
                actual: audiences,
                expected: policy.audiences().to_vec(),
            });
        }

        let azp = match claims.get("azp") {
            None => None,
            Some(Value::String(azp)) => Some(azp.as_str()),
            Some(other) => {
                return Err(JwtError::invalid_claim(
                    "azp",
                    format!("must be a string, not {}", json_type(other)),
                ));
            }
        };
        let parties = policy.authorized_parties();
        let azp_ok = match azp {
            Some(azp) => parties.iter().any(|p| p == azp),
            None => audiences.len() <= 1,
        };
        if !azp_ok {
            return Err(JwtError::AuthorizedPartyMismatch {
                actual: azp.map(str::to_owned),
                expected: parties.to_vec(),
            });
        }

        let now = self.clock.now();
        let leeway = policy.leeway_secs();
        // exp is required: a token without one would be valid forever and
        // could sit in the verified-token cache forever.
        let exp = numeric_date(&claims, "exp")?.ok_or_else(|| JwtError::missing_claim("exp"))?;
        // RFC 7519 section 4.1.4: "the current date/time MUST be before" exp.
        if now >= exp.saturating_add(leeway) {
            return Err(JwtError::Expired { exp, now, leeway });
        }
        if let Some(nbf) = numeric_date(&claims, "nbf")? {
            // RFC 7519 section 4.1.5: "after or equal to" nbf.
            if now.saturating_add(leeway) < nbf {
                return Err(JwtError::NotYetValid { nbf, now, leeway });
            }
        }
        if let Some(iat) = numeric_date(&claims, "iat")?
            && iat > now.saturating_add(leeway)
        {
            return Err(JwtError::IssuedInFuture { iat, now, leeway });
        }

        if let Some(expected) = nonce {
            match claims.get("nonce") {
                Some(Value::String(actual)) => {
                    if !constant_time_eq(actual.as_bytes(), expected.as_bytes()) {
                        return Err(JwtError::NonceMismatch);
                    }
                }
                Some(other) => {
                    return Err(JwtError::invalid_claim(
                        "nonce",
                        format!("must be a string, not {}", json_type(other)),
                    ));
                }
                None => return Err(JwtError::missing_claim("nonce")),
            }
        }

        Ok(VerifiedToken {
            algorithm: token.alg,
            key_id: token.kid.clone(),
            issuer,
            audiences,
            expires_at: exp,
            claims,
        })
    }
}
