//! Request authentication as kube-apiserver's union authenticator runs it
//! (<https://kubernetes.io/docs/reference/access-authn-authz/authentication/#authentication-strategies>):
//! X.509 client certificate first, then the `Authorization: Bearer` header,
//! then the WebSocket `base64url.bearer.authorization.k8s.io.<token>`
//! subprotocol; the first authenticator that accepts wins. A token is tried
//! against the static tokens (`--token-auth-file`) and then OIDC.

use http::HeaderMap;

use super::oidc::{OidcAuthenticator, TokenOutcome};
use super::user::UserInfo;

const BEARER_PROTOCOL_PREFIX: &str = "base64url.bearer.authorization.k8s.io.";

#[derive(Debug)]
pub(crate) enum Authn {
    /// Authenticated (before `system:authenticated` is added).
    User(UserInfo),
    /// No credentials at all: the anonymous path.
    NoCredentials,
    /// Credentials were presented and refused; the reason is logged only.
    Refused(String),
}

#[derive(Debug)]
pub(crate) struct AuthnResult {
    pub(crate) outcome: Authn,
    /// The WebSocket subprotocols the handler sees: kube removes the bearer
    /// protocol from the list only when that protocol authenticated the
    /// request.
    pub(crate) ws_protocols: Vec<String>,
}

pub(crate) struct Authenticator {
    /// `--token-auth-file` entries; changeable while running (token
    /// rotation and revocation tests).
    pub(crate) static_tokens: std::sync::RwLock<Vec<(String, UserInfo)>>,
    pub(crate) oidc: Option<OidcAuthenticator>,
}

/// The offered subprotocols (RFC 6455 section 11.3.4: the header may repeat
/// and is a comma list).
pub(crate) fn offered_protocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

impl Authenticator {
    /// Tries one bearer token: `Ok(Some)` accepted, `Ok(None)` no
    /// authenticator claims it, `Err` refused with a reason.
    async fn token(&self, token: &str) -> Result<UserInfo, String> {
        let known = self
            .static_tokens
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(t, _)| t == token)
            .map(|(_, user)| user.clone());
        if let Some(user) = known {
            return Ok(user);
        }
        if let Some(oidc) = &self.oidc {
            match oidc.authenticate(token).await {
                TokenOutcome::Accepted(user) => return Ok(user),
                TokenOutcome::Rejected(reason) => {
                    return Err(format!("invalid bearer token, {reason}"));
                }
                TokenOutcome::NotMine => {}
            }
        }
        Err("invalid bearer token".to_owned())
    }

    pub(crate) async fn authenticate(
        &self,
        headers: &HeaderMap,
        cert_user: Option<&UserInfo>,
        is_websocket: bool,
    ) -> AuthnResult {
        let protocols = offered_protocols(headers);
        if let Some(user) = cert_user {
            return AuthnResult {
                outcome: Authn::User(user.clone()),
                ws_protocols: protocols,
            };
        }
        let mut errors = Vec::new();
        // bearertoken.Authenticator: `Bearer <token>`, case-insensitive
        // scheme; anything else is "no credentials" for this authenticator.
        let auth = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim();
        let mut parts = auth.splitn(3, ' ');
        if let (Some(scheme), Some(token)) = (parts.next(), parts.next())
            && scheme.eq_ignore_ascii_case("bearer")
            && !token.is_empty()
        {
            match self.token(token).await {
                Ok(user) => {
                    return AuthnResult {
                        outcome: Authn::User(user),
                        ws_protocols: protocols,
                    };
                }
                Err(e) => errors.push(e),
            }
        }
        if is_websocket {
            match self.websocket_token(&protocols).await {
                Ok(Some((user, filtered))) => {
                    return AuthnResult {
                        outcome: Authn::User(user),
                        ws_protocols: filtered,
                    };
                }
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
        let outcome = if errors.is_empty() {
            Authn::NoCredentials
        } else {
            Authn::Refused(errors.join("; "))
        };
        AuthnResult {
            outcome,
            ws_protocols: protocols,
        }
    }

    /// `k8s.io/apiserver/pkg/authentication/request/websocket/protocol.go`.
    async fn websocket_token(
        &self,
        protocols: &[String],
    ) -> Result<Option<(UserInfo, Vec<String>)>, String> {
        use base64::Engine as _;
        let mut token = None;
        let mut filtered = Vec::new();
        for p in protocols {
            let Some(encoded) = p.strip_prefix(BEARER_PROTOCOL_PREFIX) else {
                filtered.push(p.clone());
                continue;
            };
            if token.is_some() {
                return Err("multiple base64.bearer.authorization tokens specified".to_owned());
            }
            let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(encoded)
                .map_err(|_| "invalid base64.bearer.authorization token encoding".to_owned())?;
            token = Some(
                String::from_utf8(decoded)
                    .map_err(|_| "invalid base64.bearer.authorization token".to_owned())?,
            );
        }
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        // At least one other subprotocol must remain to be echoed back.
        if filtered.is_empty() {
            return Err("missing additional subprotocol".to_owned());
        }
        let user = self.token(&token).await?;
        Ok(Some((user, filtered)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn authenticator() -> Authenticator {
        Authenticator {
            static_tokens: std::sync::RwLock::new(vec![(
                "s3cret".to_owned(),
                UserInfo::new("sa", &[]),
            )]),
            oidc: None,
        }
    }

    #[tokio::test]
    async fn bearer_header_and_websocket_protocol() {
        let a = authenticator();
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("bearer s3cret"));
        assert!(
            matches!(a.authenticate(&h, None, false).await.outcome, Authn::User(u) if u.username == "sa")
        );
        h.insert("authorization", HeaderValue::from_static("Bearer nope"));
        assert!(matches!(
            a.authenticate(&h, None, false).await.outcome,
            Authn::Refused(_)
        ));
        h.insert("authorization", HeaderValue::from_static("Basic YTpi"));
        assert!(matches!(
            a.authenticate(&h, None, false).await.outcome,
            Authn::NoCredentials
        ));

        let mut ws = HeaderMap::new();
        // base64url("s3cret") without padding.
        ws.insert(
            "sec-websocket-protocol",
            HeaderValue::from_static(
                "base64.binary.k8s.io, base64url.bearer.authorization.k8s.io.czNjcmV0",
            ),
        );
        let r = a.authenticate(&ws, None, true).await;
        assert!(matches!(r.outcome, Authn::User(_)));
        assert_eq!(r.ws_protocols, ["base64.binary.k8s.io"]);
        let r = a.authenticate(&ws, None, false).await;
        assert!(
            matches!(r.outcome, Authn::NoCredentials),
            "only WebSocket requests"
        );
        ws.insert(
            "sec-websocket-protocol",
            HeaderValue::from_static("base64url.bearer.authorization.k8s.io.czNjcmV0"),
        );
        assert!(matches!(
            a.authenticate(&ws, None, true).await.outcome,
            Authn::Refused(_)
        ));
    }
}
