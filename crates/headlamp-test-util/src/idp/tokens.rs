//! Real tokens from the test IdP for tests that need them directly (the test
//! API server's self-tests, token-validation e2e tests): the authorization
//! code flow run by the harness itself (OIDC Core 3.1), and refresh (RFC 6749
//! section 6).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request};
use http_body_util::Full;
use serde::Deserialize;
use url::Url;

use super::login::LoginSession;
use super::{ClientAuthMethod, TestIdp, TestUser};
use crate::TestBedError;

/// A PKCE verifier and its S256 challenge (RFC 7636 4.1, 4.2).
#[derive(Debug, Clone)]
pub struct Pkce {
    /// The `code_verifier` sent to the token endpoint.
    pub verifier: String,
    /// `BASE64URL(SHA256(verifier))`, sent as `code_challenge`.
    pub challenge: String,
}

impl Pkce {
    /// A fresh random verifier (32 random bytes, 43 characters).
    pub fn generate() -> Self {
        Self::from_verifier(random_token())
    }

    /// The S256 pair for a given verifier.
    pub fn from_verifier(verifier: String) -> Self {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
        Self {
            challenge: URL_SAFE_NO_PAD.encode(digest.as_ref()),
            verifier,
        }
    }
}

fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An authorization request (OIDC Core 3.1.2.1), code flow.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    /// `redirect_uri`; must be registered.
    pub redirect_uri: String,
    /// `scope`, space-joined in the URL.
    pub scopes: Vec<String>,
    /// `state`.
    pub state: String,
    /// `nonce`.
    pub nonce: String,
    /// PKCE, or `None` to send no `code_challenge`.
    pub pkce: Option<Pkce>,
    /// `prompt`, if any (e.g. `consent`).
    pub prompt: Option<String>,
}

impl AuthorizationRequest {
    /// `openid profile email groups`, fresh `state` and `nonce`, PKCE S256.
    pub fn new(redirect_uri: impl Into<String>) -> Self {
        Self {
            redirect_uri: redirect_uri.into(),
            scopes: ["openid", "profile", "email", "groups"]
                .map(str::to_owned)
                .to_vec(),
            state: random_token(),
            nonce: random_token(),
            pkce: Some(Pkce::generate()),
            prompt: None,
        }
    }
}

/// A token endpoint response (OIDC Core 3.1.3.3, RFC 6749 5.1). Its `Debug`
/// prints no token.
#[derive(Clone, Deserialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// `Bearer`.
    pub token_type: String,
    /// The ID token (present for `openid` requests and their refreshes).
    pub id_token: Option<String>,
    /// The refresh token, when the IdP issued one.
    pub refresh_token: Option<String>,
    /// Access token lifetime in seconds.
    pub expires_in: Option<u64>,
    /// Granted scopes.
    pub scope: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |present: bool| if present { "[redacted]" } else { "None" };
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("id_token", &redacted(self.id_token.is_some()))
            .field("refresh_token", &redacted(self.refresh_token.is_some()))
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish()
    }
}

impl TokenResponse {
    /// The ID token, or an error saying it is missing.
    pub fn id_token(&self) -> Result<&str, TestBedError> {
        self.id_token.as_deref().ok_or_else(|| {
            TestBedError::InvalidOption("the token response has no id_token".to_owned())
        })
    }

    /// The ID token's payload, decoded WITHOUT checking its signature: for
    /// assertions on what the IdP issued, never for trusting a token.
    pub fn insecure_id_token_claims(&self) -> Result<serde_json::Value, TestBedError> {
        insecure_jwt_claims(self.id_token()?)
    }
}

/// A JWT's payload decoded WITHOUT checking the signature (test assertions only).
pub fn insecure_jwt_claims(jwt: &str) -> Result<serde_json::Value, TestBedError> {
    let payload = jwt
        .split('.')
        .nth(1)
        .ok_or_else(|| TestBedError::InvalidOption("not a JWT: no payload segment".to_owned()))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|e| TestBedError::InvalidOption(format!("JWT payload is not base64url: {e}")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| TestBedError::InvalidOption(format!("JWT payload is not JSON: {e}")))
}

impl TestIdp {
    /// The discovery document (OIDC Discovery 1.0 section 4).
    pub async fn discovery(&self) -> Result<serde_json::Value, TestBedError> {
        self.get_json(&self.discovery_url(), "fetching the IdP discovery document")
            .await
    }

    /// The JSON Web Key Set the IdP signs with (its `jwks_uri`, RFC 7517 5).
    pub async fn jwks(&self) -> Result<serde_json::Value, TestBedError> {
        self.get_json(&format!("{}/jwks", self.issuer()), "fetching the IdP JWKS")
            .await
    }

    async fn get_json(&self, url: &str, context: &str) -> Result<serde_json::Value, TestBedError> {
        let request = Request::get(url)
            .body(Full::new(Bytes::new()))
            .map_err(|e| TestBedError::InvalidOption(format!("{context}: {e}")))?;
        let response = self.http.send(request, context).await?;
        if !response.status.is_success() {
            return Err(TestBedError::UnexpectedResponse {
                context: context.to_owned(),
                status: response.status.as_u16(),
                body: response.excerpt(),
            });
        }
        serde_json::from_slice(&response.body)
            .map_err(|e| TestBedError::InvalidOption(format!("{context}: not JSON: {e}")))
    }

    /// The authorization endpoint URL for `request` (server.mjs keeps
    /// oidc-provider's default route, `/auth`).
    pub fn authorization_url(&self, request: &AuthorizationRequest) -> String {
        let mut url = format!("{}/auth?", self.issuer());
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("client_id", self.client_id())
            .append_pair("redirect_uri", &request.redirect_uri)
            .append_pair("response_type", "code")
            .append_pair("scope", &request.scopes.join(" "))
            .append_pair("state", &request.state)
            .append_pair("nonce", &request.nonce);
        if let Some(pkce) = &request.pkce {
            query
                .append_pair("code_challenge", &pkce.challenge)
                .append_pair("code_challenge_method", "S256");
        }
        if let Some(prompt) = &request.prompt {
            query.append_pair("prompt", prompt);
        }
        url.push_str(&query.finish());
        url
    }

    /// Runs the whole code flow for `user` with the default request (first
    /// redirect URI, scopes `openid profile email groups`, PKCE) and returns
    /// the tokens.
    pub async fn tokens_for(&self, user: TestUser) -> Result<TokenResponse, TestBedError> {
        let redirect_uri = self.redirect_uris().first().cloned().unwrap_or_default();
        self.code_flow(user, &AuthorizationRequest::new(redirect_uri))
            .await
    }

    /// Runs the code flow for `user` with `request`: scripted login, then
    /// the checks a relying party makes on the redirect (`state`, and `iss`
    /// per RFC 9207), then the code exchange, then the ID token's `nonce`.
    pub async fn code_flow(
        &self,
        user: TestUser,
        request: &AuthorizationRequest,
    ) -> Result<TokenResponse, TestBedError> {
        let authorization_url = self.authorization_url(request);
        let redirect = LoginSession::new()?
            .login(
                &authorization_url,
                &request.redirect_uri,
                user.login(),
                &user.password(),
            )
            .await?;
        let param = |name: &str| {
            redirect
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        if let Some(error) = param("error") {
            return Err(TestBedError::InvalidOption(format!(
                "the IdP answered the authorization request with error={error} ({})",
                param("error_description").unwrap_or_default()
            )));
        }
        if param("state").as_deref() != Some(request.state.as_str()) {
            return Err(TestBedError::InvalidOption(
                "the redirect's state does not match the request's".to_owned(),
            ));
        }
        if param("iss").as_deref() != Some(self.issuer()) {
            return Err(TestBedError::InvalidOption(format!(
                "the redirect's iss is {:?}, expected {}",
                param("iss"),
                self.issuer()
            )));
        }
        let code = param("code").ok_or_else(|| {
            TestBedError::InvalidOption("the redirect carries no code".to_owned())
        })?;
        let tokens = self
            .exchange_code(
                &code,
                &request.redirect_uri,
                request.pkce.as_ref().map(|p| p.verifier.as_str()),
            )
            .await?;
        let claims = tokens.insecure_id_token_claims()?;
        if claims.get("nonce").and_then(|n| n.as_str()) != Some(request.nonce.as_str()) {
            return Err(TestBedError::InvalidOption(
                "the ID token's nonce does not match the request's".to_owned(),
            ));
        }
        Ok(tokens)
    }

    /// Exchanges an authorization code (OIDC Core 3.1.3.1).
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<&str>,
    ) -> Result<TokenResponse, TestBedError> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
        ];
        if let Some(verifier) = code_verifier {
            form.push(("code_verifier", verifier));
        }
        self.token_request(&form, "exchanging the authorization code")
            .await
    }

    /// Uses a refresh token (RFC 6749 section 6). The IdP rotates refresh
    /// tokens: the response carries a new one and the old one is spent.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenResponse, TestBedError> {
        self.token_request(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
            "refreshing the tokens",
        )
        .await
    }

    async fn token_request(
        &self,
        form: &[(&str, &str)],
        context: &str,
    ) -> Result<TokenResponse, TestBedError> {
        let mut body = url::form_urlencoded::Serializer::new(String::new());
        body.extend_pairs(form);
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(format!("{}/token", self.issuer()))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        match self.options().client_auth_method {
            ClientAuthMethod::ClientSecretBasic => {
                // RFC 6749 2.3.1: id and secret are form-urlencoded first.
                let encode = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                let credentials = format!(
                    "{}:{}",
                    encode(self.client_id()),
                    encode(self.client_secret())
                );
                builder = builder.header(
                    AUTHORIZATION,
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(credentials)
                    ),
                );
            }
            ClientAuthMethod::ClientSecretPost => {
                body.append_pair("client_id", self.client_id())
                    .append_pair("client_secret", self.client_secret());
            }
        }
        let request = builder
            .body(Full::new(Bytes::from(body.finish())))
            .map_err(|e| TestBedError::InvalidOption(format!("{context}: {e}")))?;
        let response = self.http_client().send(request, context).await?;
        if !response.status.is_success() {
            return Err(TestBedError::UnexpectedResponse {
                context: format!("{context} at the IdP token endpoint"),
                status: response.status.as_u16(),
                body: response.excerpt(),
            });
        }
        serde_json::from_slice(&response.body).map_err(|e| {
            TestBedError::InvalidOption(format!(
                "{context}: the token response is not the expected JSON: {e}"
            ))
        })
    }
}

/// The query parameters of a redirect URL as pairs (for assertions).
pub fn query_pairs(url: &Url) -> Vec<(String, String)> {
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_is_the_rfc7636_appendix_b_transform() {
        // RFC 7636 Appendix B's example verifier and challenge.
        let pkce = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned());
        assert_eq!(
            pkce.challenge,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let generated = Pkce::generate();
        assert_eq!(generated.verifier.len(), 43);
        assert_ne!(generated.verifier, Pkce::generate().verifier);
    }

    #[test]
    fn token_response_debug_prints_no_token() {
        let response: TokenResponse = serde_json::from_str(
            r#"{"access_token":"AT-secret","token_type":"Bearer","id_token":"ID-secret","refresh_token":"RT-secret","expires_in":5}"#,
        )
        .unwrap();
        let printed = format!("{response:?}");
        assert!(!printed.contains("secret"), "{printed}");
        assert!(printed.contains("[redacted]") && printed.contains("expires_in: Some(5)"));
    }

    #[test]
    fn insecure_claims_decode_the_payload_segment() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"x"}"#);
        let claims = insecure_jwt_claims(&format!("e30.{payload}.sig")).unwrap();
        assert_eq!(claims["sub"], "x");
        assert!(insecure_jwt_claims("nodots").is_err());
    }
}
