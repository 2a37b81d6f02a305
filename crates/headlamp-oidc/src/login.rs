//! Login state between `/oidc` and `/oidc-callback`, kept in a sealed cookie.
//!
//! The authorization request carries `state` (CSRF protection,
//! [RFC 6749 section 10.12](https://www.rfc-editor.org/rfc/rfc6749#section-10.12)),
//! `nonce` (binds the ID token to this browser's login,
//! [OIDC Core section 3.1.2.1](https://openid.net/specs/openid-connect-core-1_0.html#AuthRequest))
//! and a PKCE challenge (binds the code to this login,
//! [RFC 7636](https://www.rfc-editor.org/rfc/rfc7636)). The values the
//! callback needs back are sealed into a short-lived cookie instead of
//! server memory, so any replica with the same session key can finish the
//! login (see [`crate::SessionKey`]).
//!
//! The cookie's name carries a prefix of the state, so two sign-ins running
//! at once in the same browser (two clusters, two popups) do not overwrite
//! each other's state.

use std::fmt;
use std::time::Duration;

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use headlamp_core::{Clock, UnixTime};
use serde::{Deserialize, Serialize};

use crate::OidcError;
use crate::seal::{OpenError, Purpose, SessionKey};

/// How long a sign-in may take, from redirect to callback.
pub const DEFAULT_LOGIN_LIFETIME: Duration = Duration::from_secs(600);

const LOGIN_COOKIE_PREFIX: &str = "headlamp-oidc-login-";
/// How many characters of the state go into the cookie name: 96 bits, so
/// two concurrent logins never share a name.
const STATE_IN_NAME: usize = 16;
/// 32 random bytes, base64url: 43 characters.
const RANDOM_TOKEN_LEN: usize = 43;
/// Longest IdP-supplied text we echo in an error (`error_description`).
const MAX_DESCRIPTION: usize = 300;

/// Debug output that says what a value is, never the value.
macro_rules! redacted_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name(pub(crate) String);

        impl $name {
            /// The value itself, for the request that carries it. Never log it.
            pub fn secret(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

redacted_newtype!(
    /// The `state` parameter: 256 random bits, base64url.
    CsrfState
);
redacted_newtype!(
    /// The `nonce` parameter, echoed in the ID token's `nonce` claim.
    Nonce
);
redacted_newtype!(
    /// The PKCE code verifier. Not `Clone`: it is used exactly once, in the
    /// code exchange.
    ///
    /// ```compile_fail
    /// fn needs_clone<T: Clone>() {}
    /// needs_clone::<headlamp_oidc::PkceCodeVerifier>();
    /// ```
    PkceCodeVerifier
);

impl PkceCodeVerifier {
    /// The S256 code challenge: `BASE64URL(SHA256(ASCII(verifier)))`
    /// ([RFC 7636 section 4.2](https://www.rfc-editor.org/rfc/rfc7636#section-4.2)).
    pub fn s256_challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, self.0.as_bytes()))
    }
}

/// 32 bytes from the system CSPRNG as base64url (43 characters, which is
/// also a valid PKCE verifier: RFC 7636 section 4.1 asks for 43..128
/// unreserved characters).
pub(crate) fn random_token(key: &SessionKey) -> Result<String, OidcError> {
    let mut bytes = [0u8; 32];
    key.random(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Everything the callback needs from the login start.
#[derive(Debug)]
pub struct LoginState {
    pub(crate) state: CsrfState,
    pub(crate) nonce: Nonce,
    pub(crate) pkce_verifier: Option<PkceCodeVerifier>,
    pub(crate) cluster: String,
    pub(crate) redirect_uri: String,
    pub(crate) expires_at: UnixTime,
}

#[derive(Serialize, Deserialize)]
struct SealedLoginState {
    #[serde(rename = "s")]
    state: String,
    #[serde(rename = "n")]
    nonce: String,
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pkce_verifier: Option<String>,
    #[serde(rename = "c")]
    cluster: String,
    #[serde(rename = "r")]
    redirect_uri: String,
    #[serde(rename = "e")]
    expires_at: UnixTime,
}

impl LoginState {
    /// The cluster this sign-in is for. Look it up among the configured
    /// clusters before completing the login.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The `redirect_uri` the authorization request used; the code exchange
    /// must repeat it exactly (RFC 6749 section 4.1.3).
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    pub(crate) fn seal(&self, key: &SessionKey) -> Result<String, OidcError> {
        let payload = SealedLoginState {
            state: self.state.0.clone(),
            nonce: self.nonce.0.clone(),
            pkce_verifier: self.pkce_verifier.as_ref().map(|v| v.0.clone()),
            cluster: self.cluster.clone(),
            redirect_uri: self.redirect_uri.clone(),
            expires_at: self.expires_at,
        };
        let json = serde_json::to_vec(&payload)
            .map_err(|e| OidcError::setting("login state", e.to_string()))?;
        key.seal(Purpose::LoginState, b"", &json)
    }

    /// Opens the login-state cookie that belongs to the callback's `state`
    /// parameter and checks it: it must exist, open under our key, be
    /// unexpired, and carry exactly that state.
    pub fn open(
        key: &SessionKey,
        clock: &dyn Clock,
        callback: &CallbackParams,
        cookies: &http::HeaderMap,
    ) -> Result<Self, OidcError> {
        let name = login_cookie_name(&callback.state)?;
        let sealed = cookie_value(cookies, &name).ok_or(OidcError::MissingLoginState)?;
        let json = key
            .open(Purpose::LoginState, b"", sealed)
            .map_err(|e| match e {
                OpenError::OtherKey => OidcError::SealedWithOtherKey,
                OpenError::Malformed => OidcError::InvalidLoginState {
                    reason: "the login cookie is malformed",
                },
                OpenError::Forged => OidcError::InvalidLoginState {
                    reason: "the login cookie was altered or is not a login cookie",
                },
            })?;
        let payload: SealedLoginState =
            serde_json::from_slice(&json).map_err(|_| OidcError::InvalidLoginState {
                reason: "the login cookie holds an unknown format",
            })?;
        // Compare in constant time although the state is not secret from
        // the browser: it costs nothing and removes a question in review.
        if aws_lc_rs::constant_time::verify_slices_are_equal(
            payload.state.as_bytes(),
            callback.state.as_bytes(),
        )
        .is_err()
        {
            return Err(OidcError::InvalidLoginState {
                reason: "the state parameter does not match the login cookie",
            });
        }
        let now = clock.now();
        if now >= payload.expires_at {
            return Err(OidcError::LoginStateExpired {
                lifetime: DEFAULT_LOGIN_LIFETIME,
            });
        }
        Ok(Self {
            state: CsrfState(payload.state),
            nonce: Nonce(payload.nonce),
            pkce_verifier: payload.pkce_verifier.map(PkceCodeVerifier),
            cluster: payload.cluster,
            redirect_uri: payload.redirect_uri,
            expires_at: payload.expires_at,
        })
    }
}

/// The query of `/oidc-callback`: either a code and state, or an error
/// ([RFC 6749 section 4.1.2](https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2)).
#[derive(Clone)]
pub struct CallbackParams {
    pub(crate) code: String,
    pub(crate) state: String,
    /// RFC 9207 `iss`, when the IdP sends it.
    pub(crate) iss: Option<String>,
}

impl fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallbackParams([redacted])")
    }
}

impl CallbackParams {
    /// Parses the callback's query string. An IdP `error=` becomes
    /// [`OidcError::AuthorizationDenied`] carrying `error_description`.
    pub fn from_query(query: Option<&str>) -> Result<Self, OidcError> {
        let mut code = None;
        let mut state = None;
        let mut error = None;
        let mut description = None;
        let mut iss = None;
        for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match k.as_ref() {
                "code" => code = Some(v.into_owned()),
                "state" => state = Some(v.into_owned()),
                "error" => error = Some(v.into_owned()),
                "error_description" => description = Some(v.into_owned()),
                "iss" => iss = Some(v.into_owned()),
                _ => {}
            }
        }
        if let Some(code) = error {
            return Err(OidcError::AuthorizationDenied {
                code: sanitize_idp_text(&code),
                description: description.as_deref().map(sanitize_idp_text),
            });
        }
        let state = state.ok_or(OidcError::InvalidLoginState {
            reason: "the callback has no state parameter",
        })?;
        let code = code
            .filter(|c| !c.is_empty())
            .ok_or(OidcError::InvalidLoginState {
                reason: "the callback has neither a code nor an error parameter",
            })?;
        Ok(Self { code, state, iss })
    }

    /// The `state` parameter (to clear its login cookie).
    pub fn state(&self) -> &str {
        &self.state
    }
}

/// Makes IdP-supplied text safe to show and log: no control characters
/// (no forged log lines), bounded length.
pub(crate) fn sanitize_idp_text(text: &str) -> String {
    let mut clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_DESCRIPTION)
        .collect();
    if text.chars().count() > MAX_DESCRIPTION {
        clean.push('…');
    }
    clean
}

/// The login-state cookie's name for a given `state` value. The state
/// comes from the callback's query, so it is checked to be one we could
/// have made before it becomes part of a cookie name.
fn login_cookie_name(state: &str) -> Result<String, OidcError> {
    let well_formed = state.len() == RANDOM_TOKEN_LEN
        && state
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(OidcError::InvalidLoginState {
            reason: "the state parameter is not one this server issued",
        });
    }
    Ok(format!("{LOGIN_COOKIE_PREFIX}{}", &state[..STATE_IN_NAME]))
}

/// The value of cookie `name` in the request's `Cookie` header(s)
/// ([RFC 6265 section 5.4](https://www.rfc-editor.org/rfc/rfc6265#section-5.4)).
pub fn cookie_value<'h>(headers: &'h http::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// The login-state cookie, set on the redirect to the IdP.
#[derive(Clone)]
pub struct LoginCookie {
    name: String,
    value: String,
    path: String,
    secure: bool,
    max_age: u64,
}

impl fmt::Debug for LoginCookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginCookie")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

impl LoginCookie {
    pub(crate) fn new(
        state: &CsrfState,
        value: String,
        redirect_uri: &url::Url,
        lifetime: Duration,
    ) -> Self {
        Self {
            name: format!(
                "{LOGIN_COOKIE_PREFIX}{}",
                &state.0[..STATE_IN_NAME.min(state.0.len())]
            ),
            value,
            path: redirect_uri.path().to_owned(),
            secure: redirect_uri.scheme() == "https",
            max_age: lifetime.as_secs(),
        }
    }

    /// The cookie's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `Set-Cookie` header value.
    ///
    /// - `Path` is the callback URL's path, so the cookie is sent only to
    ///   the callback, nowhere else on the site.
    /// - `SameSite=Lax`, not `Strict`: the callback is a top-level
    ///   navigation *from the IdP's site*, which `Strict` would strip the
    ///   cookie from ([RFC 6265bis section 5.6.7.1](https://datatracker.ietf.org/doc/html/draft-ietf-httpbis-rfc6265bis#section-5.6.7.1)).
    /// - `Secure` when the callback URL is https (the browser's view, which
    ///   is right behind a TLS-terminating proxy too).
    pub fn set_cookie_header(&self) -> http::HeaderValue {
        header_value(format!(
            "{}={}; Path={}; Max-Age={}; HttpOnly; SameSite=Lax{}",
            self.name,
            self.value,
            self.path,
            self.max_age,
            if self.secure { "; Secure" } else { "" }
        ))
    }

    /// The `Set-Cookie` header value that deletes the login-state cookie of
    /// the callback's `state`, so the state is used once. Send it on every
    /// callback response, success or failure. `None` when the state
    /// parameter is not one we could have issued (there is nothing to clear).
    pub fn clear_header(state: &str, callback_url: &url::Url) -> Option<http::HeaderValue> {
        let name = login_cookie_name(state).ok()?;
        Some(header_value(format!(
            "{name}=; Path={}; Max-Age=0; HttpOnly; SameSite=Lax{}",
            callback_url.path(),
            if callback_url.scheme() == "https" {
                "; Secure"
            } else {
                ""
            }
        )))
    }
}

fn header_value(text: String) -> http::HeaderValue {
    // Names are "headlamp-oidc-login-" + base64url, values base64url, paths
    // come from a parsed URL (percent-encoded): always a valid header value.
    http::HeaderValue::from_str(&text).unwrap_or_else(|_| http::HeaderValue::from_static(""))
}

/// What the login start produces: send a `302 Found` to
/// `authorization_url` with `Set-Cookie: cookie.set_cookie_header()`.
#[derive(Debug)]
pub struct LoginStart {
    /// The IdP's authorization endpoint with every parameter.
    pub authorization_url: url::Url,
    /// The login-state cookie.
    pub cookie: LoginCookie,
}

#[cfg(test)]
mod tests {
    use super::*;
    use headlamp_core::FakeClock;

    #[test]
    fn pkce_challenge_matches_rfc7636_appendix_b() {
        let v = PkceCodeVerifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned());
        assert_eq!(
            v.s256_challenge(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        assert_eq!(format!("{:?}", Nonce("n0nce".into())), "Nonce([redacted])");
        assert_eq!(
            format!("{:?}", PkceCodeVerifier("v".into())),
            "PkceCodeVerifier([redacted])"
        );
        assert_eq!(
            format!("{:?}", CsrfState("s".into())),
            "CsrfState([redacted])"
        );
        let p = CallbackParams {
            code: "c0de".into(),
            state: "st".into(),
            iss: None,
        };
        assert!(!format!("{p:?}").contains("c0de"));
    }

    #[test]
    fn callback_params_surface_idp_errors() {
        let err = CallbackParams::from_query(Some(
            "error=access_denied&error_description=User%20said%20no%0d%0aX-Forged:%201&state=x",
        ))
        .unwrap_err();
        match &err {
            OidcError::AuthorizationDenied { code, description } => {
                assert_eq!(code, "access_denied");
                assert_eq!(description.as_deref(), Some("User said no  X-Forged: 1"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("access_denied"));
        assert!(matches!(
            CallbackParams::from_query(Some("code=abc")),
            Err(OidcError::InvalidLoginState { .. })
        ));
        assert!(matches!(
            CallbackParams::from_query(None),
            Err(OidcError::InvalidLoginState { .. })
        ));
        let ok = CallbackParams::from_query(Some("code=a%2Bb&state=s&iss=x")).unwrap();
        assert_eq!(ok.code, "a+b");
        let long = "x".repeat(1000);
        let err = CallbackParams::from_query(Some(&format!("error=e&error_description={long}")))
            .unwrap_err();
        assert!(err.to_string().len() < 400);
    }

    #[test]
    fn cookie_parsing_and_headers() {
        let mut h = http::HeaderMap::new();
        h.append(
            http::header::COOKIE,
            "a=1; headlamp-oidc-login-x=\"v\"".parse().unwrap(),
        );
        h.append(http::header::COOKIE, "b=2".parse().unwrap());
        assert_eq!(cookie_value(&h, "headlamp-oidc-login-x"), Some("v"));
        assert_eq!(cookie_value(&h, "b"), Some("2"));
        assert_eq!(cookie_value(&h, "c"), None);

        let state = CsrfState("A".repeat(43));
        let url: url::Url = "https://h.example/base/oidc-callback".parse().unwrap();
        let c = LoginCookie::new(&state, "SEALED".into(), &url, DEFAULT_LOGIN_LIFETIME);
        assert_eq!(
            c.set_cookie_header(),
            "headlamp-oidc-login-AAAAAAAAAAAAAAAA=SEALED; Path=/base/oidc-callback; Max-Age=600; \
             HttpOnly; SameSite=Lax; Secure"
        );
        let http_url: url::Url = "http://h.example/oidc-callback".parse().unwrap();
        assert_eq!(
            LoginCookie::clear_header(&state.0, &http_url).unwrap(),
            "headlamp-oidc-login-AAAAAAAAAAAAAAAA=; Path=/oidc-callback; Max-Age=0; HttpOnly; \
             SameSite=Lax"
        );
        assert!(LoginCookie::clear_header("short", &http_url).is_none());
        assert!(LoginCookie::clear_header(&"a;b".repeat(15)[..43], &http_url).is_none());
    }

    fn sample_state(key: &SessionKey, clock: &FakeClock, cluster: &str) -> (LoginState, String) {
        let s = LoginState {
            state: CsrfState(random_token(key).unwrap()),
            nonce: Nonce(random_token(key).unwrap()),
            pkce_verifier: Some(PkceCodeVerifier(random_token(key).unwrap())),
            cluster: cluster.to_owned(),
            redirect_uri: "http://127.0.0.1/oidc-callback".to_owned(),
            expires_at: clock.now() + 600,
        };
        let sealed = s.seal(key).unwrap();
        (s, sealed)
    }

    fn cookies(name: &str, value: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::COOKIE,
            format!("{name}={value}").parse().unwrap(),
        );
        h
    }

    #[test]
    fn login_state_round_trip_and_failures() {
        let key = SessionKey::from_material(&[5u8; 32]).unwrap();
        let clock = FakeClock::at(1_700_000_000);
        let (s, sealed) = sample_state(&key, &clock, "prod");
        let name = login_cookie_name(&s.state.0).unwrap();
        let params = CallbackParams {
            code: "c".into(),
            state: s.state.0.clone(),
            iss: None,
        };

        let opened = LoginState::open(&key, &clock, &params, &cookies(&name, &sealed)).unwrap();
        assert_eq!(opened.cluster(), "prod");
        assert_eq!(opened.nonce.0, s.nonce.0);
        assert_eq!(
            opened.pkce_verifier.as_ref().unwrap().0,
            s.pkce_verifier.as_ref().unwrap().0
        );

        // Missing cookie.
        assert!(matches!(
            LoginState::open(&key, &clock, &params, &http::HeaderMap::new()),
            Err(OidcError::MissingLoginState)
        ));
        // Another login's cookie under this state's name: state mismatch.
        let (_, other_sealed) = sample_state(&key, &clock, "prod");
        assert!(matches!(
            LoginState::open(&key, &clock, &params, &cookies(&name, &other_sealed)),
            Err(OidcError::InvalidLoginState { reason }) if reason.contains("does not match")
        ));
        // Tampered.
        let mut raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let tampered = URL_SAFE_NO_PAD.encode(raw);
        assert!(matches!(
            LoginState::open(&key, &clock, &params, &cookies(&name, &tampered)),
            Err(OidcError::InvalidLoginState { reason }) if reason.contains("altered")
        ));
        // Another replica's key.
        let other_key = SessionKey::from_material(&[6u8; 32]).unwrap();
        let err =
            LoginState::open(&other_key, &clock, &params, &cookies(&name, &sealed)).unwrap_err();
        assert!(matches!(err, OidcError::SealedWithOtherKey));
        assert!(err.to_string().contains("-session-key-file"));
        // A refresh-token cookie presented as login state.
        let refresh = key.seal(Purpose::RefreshToken, b"prod", b"{}").unwrap();
        assert!(matches!(
            LoginState::open(&key, &clock, &params, &cookies(&name, &refresh)),
            Err(OidcError::InvalidLoginState { .. })
        ));
        // Expired.
        clock.advance(600);
        assert!(matches!(
            LoginState::open(&key, &clock, &params, &cookies(&name, &sealed)),
            Err(OidcError::LoginStateExpired { .. })
        ));
        // A state parameter we could not have issued.
        let bad = CallbackParams {
            code: "c".into(),
            state: "../../etc".into(),
            iss: None,
        };
        assert!(matches!(
            LoginState::open(&key, &clock, &bad, &cookies(&name, &sealed)),
            Err(OidcError::InvalidLoginState { .. })
        ));
    }
}
