//! Token endpoint requests: the code exchange and the refresh grant.
//!
//! Written by hand (form encoding, one POST) rather than through
//! openidconnect's typed `CoreClient::exchange_code`, because the caller
//! needs three things that typed flow hides: the HTTP status (a 5xx or a
//! timeout is "retry later, keep the current token", an OAuth error is
//! not), the raw ID token string (verified by headlamp-jwt, not by
//! openidconnect's RustCrypto verifier), and the client-authentication
//! method chosen from the discovery document.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use headlamp_core::{BearerToken, Secret, UnixTime};
use serde::Deserialize;

use crate::OidcError;
use crate::discovery::{ProviderEndpoints, TokenEndpointAuth};
use crate::http_client::{IdpHttpClient, redacted_url};
use crate::login::sanitize_idp_text;

/// A successful token response
/// ([RFC 6749 section 5.1](https://www.rfc-editor.org/rfc/rfc6749#section-5.1),
/// [OIDC Core section 3.1.3.3](https://openid.net/specs/openid-connect-core-1_0.html#TokenResponse)),
/// before ID-token verification.
#[derive(Debug)]
pub(crate) struct RawTokenResponse {
    pub(crate) access_token: BearerToken,
    pub(crate) id_token: Option<BearerToken>,
    pub(crate) refresh_token: Option<Secret>,
    pub(crate) expires_in: Option<Duration>,
}

#[derive(Deserialize)]
struct TokenResponseJson {
    access_token: String,
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    /// Some IdPs send a string; both are accepted.
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ErrorJson {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// Which grant a request is, for error mapping.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grant {
    AuthorizationCode,
    RefreshToken,
}

pub(crate) struct ClientCredentials<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) client_secret: Option<&'a Secret>,
}

/// POSTs a token request and parses the answer.
pub(crate) async fn token_request(
    http: &IdpHttpClient,
    endpoints: &ProviderEndpoints,
    client: &ClientCredentials<'_>,
    grant: Grant,
    params: &[(&str, &str)],
) -> Result<RawTokenResponse, OidcError> {
    // In a block: the serializer holds a non-Sync encoding hook and must
    // not live across the await below, or callers' futures are not Send.
    let (request, body) = {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair(
            "grant_type",
            match grant {
                Grant::AuthorizationCode => "authorization_code",
                Grant::RefreshToken => "refresh_token",
            },
        );
        for (k, v) in params {
            form.append_pair(k, v);
        }
        let mut request = http::Request::post(endpoints.token_endpoint.as_str())
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json");
        match (client.client_secret, endpoints.token_auth) {
            (Some(secret), TokenEndpointAuth::ClientSecretBasic) => {
                // RFC 6749 section 2.3.1: id and secret are form-urlencoded
                // before being joined and base64-encoded.
                let user = form_encode(client.client_id);
                let pass = form_encode(secret.expose());
                let basic =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
                request = request.header(http::header::AUTHORIZATION, format!("Basic {basic}"));
            }
            (Some(secret), TokenEndpointAuth::ClientSecretPost) => {
                form.append_pair("client_id", client.client_id);
                form.append_pair("client_secret", secret.expose());
            }
            // A public client identifies itself in the body (RFC 6749 section 4.1.3).
            (None, _) => {
                form.append_pair("client_id", client.client_id);
            }
        }
        (request, form.finish().into_bytes())
    };
    let url = redacted_url(
        &endpoints
            .token_endpoint
            .as_str()
            .parse()
            .unwrap_or_default(),
    );
    let request = request
        .body(body)
        .map_err(|e| OidcError::MalformedResponse {
            url: url.clone(),
            reason: format!("cannot build the token request: {e}"),
        })?;
    let response = http.send(request).await?;
    parse_token_response(&url, grant, response.status(), response.body())
}

fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn parse_token_response(
    url: &str,
    grant: Grant,
    status: http::StatusCode,
    body: &Bytes,
) -> Result<RawTokenResponse, OidcError> {
    if status == http::StatusCode::OK {
        let json: TokenResponseJson =
            serde_json::from_slice(body).map_err(|e| OidcError::MalformedResponse {
                url: url.to_owned(),
                reason: format!("not a token response: {e}"),
            })?;
        if json.access_token.is_empty() {
            return Err(OidcError::MalformedResponse {
                url: url.to_owned(),
                reason: "the access_token is empty".to_owned(),
            });
        }
        let expires_in = match json.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .map(Duration::from_secs);
        return Ok(RawTokenResponse {
            access_token: BearerToken::new(json.access_token),
            id_token: json
                .id_token
                .filter(|t| !t.is_empty())
                .map(BearerToken::new),
            refresh_token: json
                .refresh_token
                .filter(|t| !t.is_empty())
                .map(Secret::new),
            expires_in,
        });
    }
    // RFC 6749 section 5.2: errors are 400 (or 401 for client
    // authentication) with a JSON body. Anything else, notably 5xx and
    // gateway pages, is an HTTP failure the caller may retry.
    if status.is_client_error()
        && let Ok(err) = serde_json::from_slice::<ErrorJson>(body)
    {
        let description = err.error_description.as_deref().map(sanitize_idp_text);
        if grant == Grant::RefreshToken && err.error == "invalid_grant" {
            return Err(OidcError::SessionOver {
                description: description.unwrap_or_else(|| "invalid_grant".to_owned()),
            });
        }
        return Err(OidcError::TokenEndpoint {
            code: sanitize_idp_text(&err.error),
            description,
        });
    }
    Err(OidcError::IdpHttpStatus {
        url: url.to_owned(),
        status: status.as_u16(),
        detail: "the token endpoint did not answer with a token or an OAuth error".to_owned(),
    })
}

/// Adds `expires_in` to `now`, saturating.
pub(crate) fn expiry(now: UnixTime, expires_in: Option<Duration>) -> Option<UnixTime> {
    expires_in.map(|d| now.saturating_add(d.as_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(status: u16, body: &str, grant: Grant) -> Result<RawTokenResponse, OidcError> {
        parse_token_response(
            "https://idp/token",
            grant,
            http::StatusCode::from_u16(status).unwrap(),
            &Bytes::from(body.to_owned()),
        )
    }

    #[test]
    fn maps_token_endpoint_answers() {
        let ok = parse(
            200,
            r#"{"access_token":"a","token_type":"Bearer","expires_in":"60","refresh_token":""}"#,
            Grant::AuthorizationCode,
        )
        .unwrap();
        assert_eq!(ok.access_token.expose(), "a");
        assert!(ok.refresh_token.is_none(), "empty refresh token means none");
        assert_eq!(ok.expires_in, Some(Duration::from_secs(60)));

        let e = parse(
            400,
            r#"{"error":"invalid_grant","error_description":"grant request is invalid"}"#,
            Grant::RefreshToken,
        )
        .unwrap_err();
        assert!(e.is_session_over() && !e.is_retryable(), "{e}");
        let e = parse(
            400,
            r#"{"error":"invalid_grant"}"#,
            Grant::AuthorizationCode,
        )
        .unwrap_err();
        assert!(matches!(e, OidcError::TokenEndpoint { .. }) && !e.is_session_over());
        let e = parse(401, r#"{"error":"invalid_client"}"#, Grant::RefreshToken).unwrap_err();
        assert!(e.to_string().contains("invalid_client") && !e.is_retryable());
        let e = parse(503, "<html>down</html>", Grant::RefreshToken).unwrap_err();
        assert!(e.is_retryable(), "{e}");
        let e = parse(502, r#"{"error":"server_error"}"#, Grant::RefreshToken).unwrap_err();
        assert!(e.is_retryable(), "{e}");
        let e = parse(200, "not json", Grant::RefreshToken).unwrap_err();
        assert!(matches!(e, OidcError::MalformedResponse { .. }));
    }

    #[test]
    fn form_encoding_of_basic_credentials() {
        assert_eq!(form_encode("a b:c%"), "a+b%3Ac%25");
    }
}
