//! Bearer-token authentication the way kube-apiserver's `--oidc-*` flags
//! configure it
//! (<https://kubernetes.io/docs/reference/access-authn-authz/authentication/#openid-connect-tokens>,
//! `k8s.io/apiserver/plugin/pkg/authenticator/token/oidc/oidc.go`):
//! discovery and JWKS are fetched by the server itself, the ID token's
//! signature, `iss` (exact match), `aud` (must contain the client id) and
//! `exp` are verified, then the username and groups claims (with their
//! prefixes) become the user.
//!
//! Verification uses `jsonwebtoken` directly and none of our own crates, so
//! the test bed is an independent judge of the tokens headlamp-auth sends.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use headlamp_core::Clock;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use super::fetch::get_json;
use super::user::UserInfo;
use crate::TestBedError;

/// kube-apiserver's OIDC flags.
#[derive(Debug, Clone)]
pub struct OidcOptions {
    /// `--oidc-issuer-url`: discovery is fetched from
    /// `<issuer>/.well-known/openid-configuration`, and the token's `iss`
    /// must equal it exactly.
    pub issuer_url: String,
    /// `--oidc-client-id`: the token's `aud` must contain it.
    pub client_id: String,
    /// `--oidc-username-claim` (default `sub`).
    pub username_claim: String,
    /// `--oidc-username-prefix`. `None` is kube's default: usernames from
    /// claims other than `email` are prefixed with `<issuer>#`; `Some("-")`
    /// disables prefixing.
    pub username_prefix: Option<String>,
    /// `--oidc-groups-claim` (no groups when `None`).
    pub groups_claim: Option<String>,
    /// `--oidc-groups-prefix`.
    pub groups_prefix: Option<String>,
    /// `--oidc-required-claim` pairs: each claim must be present with
    /// exactly this string value.
    pub required_claims: BTreeMap<String, String>,
    /// `--oidc-ca-file` contents (PEM) for an https issuer.
    pub ca_pem: Option<String>,
    /// `--oidc-signing-algs` (default `RS256`).
    pub signing_algs: Vec<Algorithm>,
}

impl OidcOptions {
    /// Options with kube-apiserver's defaults for everything but the issuer
    /// and client id, plus `groups` as the groups claim and no username
    /// prefix (`-`), the settings the test bed's users are designed for.
    pub fn new(issuer_url: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            issuer_url: issuer_url.into(),
            client_id: client_id.into(),
            username_claim: "sub".to_owned(),
            username_prefix: Some("-".to_owned()),
            groups_claim: Some("groups".to_owned()),
            groups_prefix: None,
            required_claims: BTreeMap::new(),
            ca_pem: None,
            signing_algs: vec![Algorithm::RS256],
        }
    }

    /// Sets `--oidc-username-claim`.
    pub fn username_claim(mut self, claim: &str) -> Self {
        self.username_claim = claim.to_owned();
        self
    }

    fn effective_username_prefix(&self) -> String {
        match self.username_prefix.as_deref() {
            Some("-") => String::new(),
            Some(p) => p.to_owned(),
            None if self.username_claim == "email" => String::new(),
            None => format!("{}#", self.issuer_url),
        }
    }
}

/// What the OIDC authenticator made of a bearer token.
#[derive(Debug)]
pub(crate) enum TokenOutcome {
    /// Not a JWT from our issuer: another authenticator may take it.
    NotMine,
    /// From our issuer but invalid; the reason goes to the request log.
    Rejected(String),
    /// A valid token for this user.
    Accepted(UserInfo),
}

pub(crate) struct OidcAuthenticator {
    options: OidcOptions,
    clock: Arc<dyn Clock>,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// The issuer's keys, fetched on first use and again whenever a token
    /// names a key id the cached set lacks (key rotation), like go-oidc's
    /// remote key set. The lock also makes concurrent re-fetches wait for
    /// one fetch instead of each hitting the IdP.
    keys: tokio::sync::Mutex<Option<JwkSet>>,
}

/// go-oidc accepts `nbf` up to five minutes in the future.
const NBF_LEEWAY: u64 = 300;

impl OidcAuthenticator {
    pub(crate) fn new(options: OidcOptions, clock: Arc<dyn Clock>) -> Result<Self, TestBedError> {
        let tls = match &options.ca_pem {
            Some(pem) => Some(client_tls(pem)?),
            None => None,
        };
        if !options.issuer_url.starts_with("http://") && !options.issuer_url.starts_with("https://")
        {
            return Err(TestBedError::InvalidOption(format!(
                "the OIDC issuer {:?} must be an http:// or https:// URL",
                options.issuer_url
            )));
        }
        Ok(Self {
            options,
            clock,
            tls,
            keys: tokio::sync::Mutex::new(None),
        })
    }

    async fn fetch_keys(&self) -> Result<JwkSet, String> {
        let issuer = &self.options.issuer_url;
        let discovery_url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let discovery = get_json(&discovery_url, self.tls.as_ref()).await?;
        // OpenID Connect Discovery 1.0 section 4.3: the issuer in the
        // document must be identical to the one it was fetched for.
        if discovery["issuer"].as_str() != Some(issuer.as_str()) {
            return Err(format!(
                "oidc: issuer did not match the issuer returned by provider, expected {issuer:?} got {}",
                discovery["issuer"]
            ));
        }
        let jwks_uri = discovery["jwks_uri"]
            .as_str()
            .ok_or_else(|| "oidc: discovery document has no jwks_uri".to_owned())?;
        let jwks = get_json(jwks_uri, self.tls.as_ref()).await?;
        serde_json::from_value(jwks).map_err(|e| format!("oidc: bad JWKS from {jwks_uri}: {e}"))
    }

    /// The key for `kid` (or all keys when the token names none),
    /// re-fetching the JWKS once when the key is unknown.
    async fn keys_for(&self, kid: Option<&str>) -> Result<Vec<DecodingKey>, String> {
        let mut cache = self.keys.lock().await;
        for attempt in 0..2 {
            if cache.is_none() || attempt == 1 {
                *cache = Some(self.fetch_keys().await?);
            }
            let Some(set) = cache.as_ref() else { continue };
            let found: Vec<DecodingKey> = set
                .keys
                .iter()
                .filter(|k| kid.is_none() || k.common.key_id.as_deref() == kid)
                .filter_map(|k| DecodingKey::from_jwk(k).ok())
                .collect();
            if !found.is_empty() {
                return Ok(found);
            }
        }
        Err(format!(
            "oidc: verify token: failed to verify signature: no JWKS key with kid {kid:?}"
        ))
    }

    pub(crate) async fn authenticate(&self, token: &str) -> TokenOutcome {
        // Like kube's authenticator, look at `iss` before verifying so a
        // token from another issuer is left to the other authenticators.
        let mut parts = token.split('.');
        let (Some(_), Some(payload), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return TokenOutcome::NotMine;
        };
        let Some(unverified) = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        else {
            return TokenOutcome::NotMine;
        };
        if unverified["iss"].as_str() != Some(self.options.issuer_url.as_str()) {
            return TokenOutcome::NotMine;
        }
        match self.verify(token).await {
            Ok(user) => TokenOutcome::Accepted(user),
            Err(reason) => TokenOutcome::Rejected(reason),
        }
    }

    async fn verify(&self, token: &str) -> Result<UserInfo, String> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| format!("oidc: malformed jwt: {e}"))?;
        if !self.options.signing_algs.contains(&header.alg) {
            return Err(format!(
                "oidc: verify token: oidc: id token signed with unsupported algorithm, expected {:?} got {:?}",
                self.options.signing_algs, header.alg
            ));
        }
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.options.issuer_url]);
        validation.set_audience(&[&self.options.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        // Time is checked below against the server's injected clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let keys = self.keys_for(header.kid.as_deref()).await?;
        let mut last_error = String::new();
        let mut claims = None;
        for key in &keys {
            match jsonwebtoken::decode::<Value>(token, key, &validation) {
                Ok(data) => {
                    claims = Some(data.claims);
                    break;
                }
                Err(e) => last_error = format!("oidc: verify token: {e}"),
            }
        }
        let claims = claims.ok_or(last_error)?;
        let now = self.clock.now();
        let exp = claims["exp"]
            .as_u64()
            .ok_or("oidc: verify token: malformed claim exp")?;
        if now > exp {
            return Err(format!(
                "oidc: verify token: oidc: token is expired (Token Expiry: {exp}, now {now})"
            ));
        }
        if let Some(nbf) = claims["nbf"].as_u64()
            && now + NBF_LEEWAY < nbf
        {
            return Err(format!(
                "oidc: verify token: oidc: current time {now} before the nbf (not before) time: {nbf}"
            ));
        }
        self.user_from_claims(&claims)
    }

    fn user_from_claims(&self, claims: &Value) -> Result<UserInfo, String> {
        let o = &self.options;
        let username = claims[&o.username_claim].as_str().ok_or_else(|| {
            format!(
                "oidc: parse username claims {:?}: not a string",
                o.username_claim
            )
        })?;
        if o.username_claim == "email" {
            // If email_verified is present it must be true (OpenID Connect
            // Core 1.0 section 5.1).
            match &claims["email_verified"] {
                Value::Null => {}
                Value::Bool(true) => {}
                Value::Bool(false) => return Err("oidc: email not verified".to_owned()),
                _ => return Err("oidc: parse 'email_verified' claim: not a boolean".to_owned()),
            }
        }
        for (claim, want) in &o.required_claims {
            match claims[claim].as_str() {
                Some(v) if v == want => {}
                Some(v) => {
                    return Err(format!(
                        "oidc: required claim {claim} value does not match. Got = {v}, want = {want}"
                    ));
                }
                None => {
                    return Err(format!(
                        "oidc: required claim {claim} not present in ID token"
                    ));
                }
            }
        }
        let mut groups = Vec::new();
        if let Some(claim) = &o.groups_claim {
            // A single string is accepted as one group
            // (kubernetes/kubernetes#33290).
            match &claims[claim] {
                Value::Null => {}
                Value::String(g) => groups.push(g.clone()),
                Value::Array(items) => {
                    for item in items {
                        let g = item.as_str().ok_or_else(|| {
                            format!("oidc: parse groups claim {claim:?}: not a string array")
                        })?;
                        groups.push(g.to_owned());
                    }
                }
                _ => {
                    return Err(format!(
                        "oidc: parse groups claim {claim:?}: not a string array"
                    ));
                }
            }
        }
        let groups_prefix = o.groups_prefix.as_deref().unwrap_or("");
        Ok(UserInfo {
            username: format!("{}{username}", o.effective_username_prefix()),
            uid: String::new(),
            groups: groups
                .into_iter()
                .map(|g| format!("{groups_prefix}{g}"))
                .collect(),
            extra: BTreeMap::new(),
        })
    }
}

fn client_tls(ca_pem: &str) -> Result<Arc<rustls::ClientConfig>, TestBedError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let tls_err = |source| TestBedError::Tls {
        what: "the OIDC discovery client".to_owned(),
        source,
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| {
            TestBedError::InvalidOption(format!("OidcOptions::ca_pem is not PEM: {e}"))
        })?;
        roots.add(cert).map_err(tls_err)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(tls_err)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use headlamp_core::FakeClock;
    use serde_json::json;

    fn authn(options: OidcOptions) -> OidcAuthenticator {
        OidcAuthenticator::new(options, Arc::new(FakeClock::at(1_000))).unwrap()
    }

    #[test]
    fn maps_claims_like_kube() {
        let mut o = OidcOptions::new("https://idp.example", "headlamp");
        o.groups_prefix = Some("oidc:".into());
        let user = authn(o.clone())
            .user_from_claims(&json!({"sub": "alice", "groups": ["dev", "ops"]}))
            .unwrap();
        assert_eq!(user.username, "alice");
        assert_eq!(user.groups, ["oidc:dev", "oidc:ops"]);
        let single = authn(o.clone())
            .user_from_claims(&json!({"sub": "alice", "groups": "dev"}))
            .unwrap();
        assert_eq!(single.groups, ["oidc:dev"]);

        o.username_prefix = None;
        let user = authn(o.clone())
            .user_from_claims(&json!({"sub": "alice"}))
            .unwrap();
        assert_eq!(user.username, "https://idp.example#alice");
        let email = authn(o.clone().username_claim("email"));
        assert_eq!(
            email
                .user_from_claims(&json!({"email": "a@x", "email_verified": true}))
                .unwrap()
                .username,
            "a@x"
        );
        assert_eq!(
            email
                .user_from_claims(&json!({"email": "a@x", "email_verified": false}))
                .unwrap_err(),
            "oidc: email not verified"
        );
        o.required_claims.insert("hd".into(), "example.com".into());
        assert!(
            authn(o)
                .user_from_claims(&json!({"sub": "a", "hd": "evil.com"}))
                .is_err()
        );
    }

    #[tokio::test]
    async fn other_issuers_and_garbage_are_not_ours() {
        let a = authn(OidcOptions::new("https://idp.example", "headlamp"));
        assert!(matches!(
            a.authenticate("not-a-jwt").await,
            TokenOutcome::NotMine
        ));
        let other = format!(
            "e30.{}.sig",
            URL_SAFE_NO_PAD.encode(br#"{"iss":"https://other.example"}"#)
        );
        assert!(matches!(
            a.authenticate(&other).await,
            TokenOutcome::NotMine
        ));
    }
}
