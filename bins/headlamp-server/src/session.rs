//! The signed-in session on `/clusters/{name}/...`: refresh before expiry,
//! `POST set-token` and `GET me`.
//!
//! Refresh (compat part B, "Refresh that actually helps the current
//! request"): when the token cookie's token expires within
//! [`REFRESH_MARGIN`] and a sealed refresh cookie is present, the refresh
//! token is used, the new token is sent upstream **with this request** and
//! the new cookies are set on its response. A browser fires many requests at
//! once; they all carry the same refresh cookie, and IdPs rotate refresh
//! tokens and revoke the whole grant when a spent one is presented again
//! (RFC 9700 section 4.14.2), so concurrent refreshes of one refresh token
//! share one IdP call ([`Refresher`]).

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::digest;
use base64::Engine;
use bytes::Bytes;
use headlamp_core::{AuthenticationError, AuthenticationErrorKind, BearerToken, Status};
use headlamp_oidc::{OidcClient, OidcError, OidcRegistry};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cookies::CookieScope;
use crate::metrics::Metrics;
use crate::respond::{self, Body};
use crate::state::App;

/// A token expiring within this many seconds is refreshed first.
pub(crate) const REFRESH_MARGIN: u64 = 10;

/// How long a refresh result is reused for requests still carrying the old
/// refresh cookie (requests already in flight when the new cookie was set).
const REFRESH_REUSE: Duration = Duration::from_secs(60);

/// Largest `set-token` body accepted (ID tokens with many groups are some
/// kilobytes; this is far above any real one).
const MAX_SET_TOKEN_BODY: usize = 256 * 1024;

/// The outcome of a refresh, shared by the requests that triggered it.
struct Refreshed {
    token: BearerToken,
    /// The refresh token to keep, sealed for the cookie.
    sealed_refresh: Option<String>,
}

type RefreshKey = [u8; 32];

/// Single-flight refreshes: one IdP call per refresh-token cookie value
/// within this process, its result reused for [`REFRESH_REUSE`].
pub(crate) struct Refresher {
    in_flight: moka::sync::Cache<RefreshKey, Arc<tokio::sync::OnceCell<Arc<Refreshed>>>>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Refresher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refresher")
            .field("recent", &self.in_flight.entry_count())
            .finish()
    }
}

impl Refresher {
    pub(crate) fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            in_flight: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(REFRESH_REUSE)
                .build(),
            metrics,
        }
    }

    async fn refresh(
        &self,
        registry: &OidcRegistry,
        cluster: &str,
        client: &OidcClient,
        sealed: &str,
        ttl: Duration,
    ) -> Result<Arc<Refreshed>, OidcError> {
        // Keyed by a digest of the cluster and the sealed value: the cache
        // holds no usable credential as a key.
        let mut context = digest::Context::new(&digest::SHA256);
        context.update(cluster.as_bytes());
        context.update(&[0]);
        context.update(sealed.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(context.finish().as_ref());
        let cell = self
            .in_flight
            .get_with(key, || Arc::new(tokio::sync::OnceCell::new()));
        let refreshed = cell
            .get_or_try_init(|| async {
                let refresh_token = registry.open_refresh_token(cluster, sealed)?;
                let tokens = client.refresh(&refresh_token).await?;
                let sealed_refresh = tokens
                    .refresh_token()
                    .map(|rt| registry.seal_refresh_token(cluster, rt, ttl))
                    .transpose()?;
                tracing::info!(cluster, "token refreshed");
                Ok::<_, OidcError>(Arc::new(Refreshed {
                    token: tokens.api_server_token().clone(),
                    sealed_refresh,
                }))
            })
            .await;
        let outcome = match &refreshed {
            Ok(_) => "success",
            Err(e) if e.is_session_over() => "session_over",
            Err(_) => "failed",
        };
        self.metrics.refresh(outcome);
        refreshed.map(Arc::clone)
    }
}

/// What a cluster request goes on with after the session check.
pub(crate) enum Session {
    /// Carry on with `token` (the cookie's, or a refreshed one) and add
    /// `set_cookies` to the response.
    Continue {
        /// The token to use, if the request has one in its cookie.
        token: Option<BearerToken>,
        /// Whether `token` is a fresh one the proxy must use instead of the
        /// cookie's.
        refreshed: bool,
        /// `Set-Cookie` values for the response.
        set_cookies: Vec<HeaderValue>,
    },
    /// The session is over (refresh token refused): this response clears
    /// the cookies.
    Ended(Response<Body>),
}

/// Reads the token cookie and refreshes it when it is about to expire.
///
/// `need_token`: the caller wants the cookie's token even when it is not
/// refreshed (`/me`); the proxy reads the cookie itself, so for it the
/// common case (no refresh cookie, or not yet due) allocates nothing and
/// decodes nothing beyond one header scan.
pub(crate) async fn check(
    app: &App,
    cluster: &str,
    client: Option<&OidcClient>,
    scope: &CookieScope,
    headers: &HeaderMap,
    need_token: bool,
) -> Session {
    let unchanged = |token: Option<String>| Session::Continue {
        token: token.map(BearerToken::new),
        refreshed: false,
        set_cookies: Vec::new(),
    };
    let (Some(client), Some(sealed)) = (client, scope.read_refresh(headers)) else {
        return unchanged(need_token.then(|| scope.read_token(headers)).flatten());
    };
    let token = scope.read_token(headers);
    let Some(current) = token.as_deref() else {
        return unchanged(None);
    };
    // Timing only: the token is not trusted for anything here, and the
    // API server (or the impersonate verifier) checks it in any case.
    let Some(exp) = unverified_claims(current).and_then(|c| c.get("exp")?.as_u64()) else {
        return unchanged(token);
    };
    if exp > app.clock.now().saturating_add(REFRESH_MARGIN) {
        return unchanged(token);
    }
    match app
        .refresher
        .refresh(
            &app.registry,
            cluster,
            client,
            sealed,
            app.config.session.ttl,
        )
        .await
    {
        Ok(refreshed) => {
            let mut set_cookies = scope.set_token(refreshed.token.expose(), headers);
            match &refreshed.sealed_refresh {
                Some(sealed) => set_cookies.extend(scope.set_refresh(sealed)),
                None => set_cookies.extend(scope.clear_refresh()),
            }
            Session::Continue {
                token: Some(refreshed.token.clone()),
                refreshed: true,
                set_cookies,
            }
        }
        Err(error) if error.is_session_over() => {
            tracing::info!(cluster, %error, "session over; clearing the cookies");
            let mut response = respond::status(&Status::unauthorized(format!(
                "{error}; sign in to cluster {cluster} again"
            )));
            respond::append_cookies(&mut response, scope.clear_all(headers));
            Session::Ended(response)
        }
        Err(error) => {
            // IdP down or slow: keep using the current token until it
            // really expires; the next request tries again.
            tracing::warn!(cluster, %error, "token refresh failed; keeping the current token");
            unchanged(token)
        }
    }
}

/// The claims of a JWT, without any check (timing and display only).
pub(crate) fn unverified_claims(token: &str) -> Option<Map<String, Value>> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[derive(Deserialize)]
struct SetTokenRequest {
    #[serde(default)]
    token: Option<String>,
}

/// `POST /clusters/{name}/set-token` with `{"token":"..."}`: stores the
/// token in the cookie; an empty or null token signs out (clears the token
/// and refresh cookies). A token set by hand replaces any sign-in, so its
/// refresh cookie is cleared too.
pub(crate) fn set_token(scope: &CookieScope, headers: &HeaderMap, body: &Bytes) -> Response<Body> {
    let request: SetTokenRequest = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(e) => {
            return respond::status(&Status::bad_request(format!(
                "the body must be JSON {{\"token\": \"...\"}} (an empty or null token signs \
                 out): {e}"
            )));
        }
    };
    let token = request.token.as_deref().map(str::trim).unwrap_or("");
    let (cookies, message) = if token.is_empty() {
        (scope.clear_all(headers), "signed out")
    } else {
        // RFC 6750 section 2.1 b64token characters (what a JWT is made of);
        // anything else cannot be a cookie value or an Authorization header.
        let valid = token.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
        });
        if !valid {
            return respond::status(&Status::bad_request(
                "the token holds characters a bearer token cannot have (RFC 6750 section 2.1)",
            ));
        }
        let mut cookies = scope.set_token(token, headers);
        cookies.extend(scope.clear_refresh());
        (cookies, "token set")
    };
    let mut response = respond::json(StatusCode::OK, &serde_json::json!({ "message": message }));
    respond::append_cookies(&mut response, cookies);
    response
}

/// The most a `set-token` body may be.
pub(crate) const fn max_set_token_body() -> usize {
    MAX_SET_TOKEN_BODY
}

/// `GET /clusters/{name}/me`'s answer.
#[derive(Serialize)]
struct Me {
    username: String,
    email: String,
    groups: Vec<String>,
    #[serde(rename = "userInfoURL")]
    user_info_url: String,
}

/// `GET /clusters/{name}/me`: who the token says the user is, Headlamp's
/// way (username from the first of `preferred_username`, `upn`,
/// `username`, `name`; groups from `groups` or `realm_access.roles`).
///
/// The token's signature, issuer, audience and expiry are verified when
/// the cluster has OIDC settings and its IdP's keys can be had; otherwise
/// (no OIDC, or keys unavailable) only expiry is checked, as Headlamp does.
pub(crate) async fn me(
    app: &App,
    client: Option<&OidcClient>,
    token: Option<&BearerToken>,
) -> Response<Body> {
    let Some(token) = token else {
        return me_error("unauthorized");
    };
    let verify = client.filter(|c| !c.settings().use_access_token);
    let claims = match verify {
        Some(client) => match client.verifier().verify(token.expose()).await {
            Ok(verified) => {
                app.metrics.validation(Ok(()));
                Some(verified.claims().clone())
            }
            Err(error) => {
                let label = error.metric_label();
                let auth = AuthenticationError::from(error);
                if auth.kind == AuthenticationErrorKind::Unavailable {
                    tracing::warn!(reason = %auth, "IdP keys unavailable; /me reads the token unverified");
                    None
                } else {
                    app.metrics.validation(Err(label));
                    return me_error(if label == "expired" {
                        "token expired"
                    } else {
                        "unauthorized"
                    });
                }
            }
        },
        None => None,
    };
    let claims = match claims {
        Some(claims) => claims,
        None => {
            let Some(claims) = unverified_claims(token.expose()) else {
                return me_error("unauthorized");
            };
            let expired = claims
                .get("exp")
                .and_then(Value::as_u64)
                .is_some_and(|exp| exp <= app.clock.now());
            if expired {
                return me_error("token expired");
            }
            claims
        }
    };
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let username = ["preferred_username", "upn", "username", "name"]
        .into_iter()
        .find_map(text)
        .unwrap_or_default()
        .to_owned();
    tracing::Span::current().record("user", username.as_str());
    let groups = claims
        .get("groups")
        .or_else(|| claims.get("realm_access")?.get("roles"))
        .map(string_list)
        .unwrap_or_default();
    let me = Me {
        username,
        email: text("email").unwrap_or_default().to_owned(),
        groups,
        // Headlamp fills this from its -me-user-info-url flag (empty by
        // default); no such flag exists here, so it is always empty.
        user_info_url: String::new(),
    };
    let mut response = respond::json(StatusCode::OK, &me);
    no_store(&mut response);
    response
}

fn string_list(value: &Value) -> Vec<String> {
    match value {
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// `401 {"message": ...}`, the shape Headlamp's frontend reads from `/me`.
fn me_error(message: &str) -> Response<Body> {
    let mut response = respond::json(
        StatusCode::UNAUTHORIZED,
        &serde_json::json!({ "message": message }),
    );
    no_store(&mut response);
    response
}

fn no_store(response: &mut Response<Body>) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn jwt(claims: &Value) -> String {
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!(
            "{}.{}.sig",
            b64(br#"{"alg":"RS256"}"#),
            b64(claims.to_string().as_bytes())
        )
    }

    async fn body(response: Response<Body>) -> (StatusCode, HeaderMap, Value) {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, serde_json::from_slice(&bytes).unwrap())
    }

    #[test]
    fn unverified_claims_read_the_payload() {
        let token = jwt(&serde_json::json!({"exp": 42, "sub": "x"}));
        assert_eq!(unverified_claims(&token).unwrap()["exp"], 42);
        assert!(unverified_claims("not-a-jwt").is_none());
        assert!(unverified_claims("a.!!!.c").is_none());
    }

    #[tokio::test]
    async fn set_token_sets_clears_and_refuses_bad_json() {
        let scope = CookieScope::new("c", "", false, Duration::from_secs(60));
        let headers = HeaderMap::new();
        let response = set_token(
            &scope,
            &headers,
            &Bytes::from_static(br#"{"token":"a.b.c"}"#),
        );
        let (status, h, _) = body(response).await;
        assert_eq!(status, StatusCode::OK);
        let cookies: Vec<_> = h.get_all(header::SET_COOKIE).iter().collect();
        assert!(
            cookies[0]
                .to_str()
                .unwrap()
                .starts_with("headlamp-auth-c.0=a.b.c;")
        );
        assert!(
            cookies[1]
                .to_str()
                .unwrap()
                .starts_with("headlamp-refresh-c=;")
        );

        for signout in [&br#"{"token":null}"#[..], br#"{"token":""}"#, br#"{}"#] {
            let (status, h, json) =
                body(set_token(&scope, &headers, &Bytes::from_static(signout))).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(json["message"], "signed out");
            assert!(
                h.get_all(header::SET_COOKIE)
                    .iter()
                    .all(|v| v.to_str().unwrap().contains("Max-Age=0"))
            );
        }
        let (status, _, json) =
            body(set_token(&scope, &headers, &Bytes::from_static(b"{nope"))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(json["kind"], "Status");
        let (status, _, _) = body(set_token(
            &scope,
            &headers,
            &Bytes::from_static(br#"{"token":"a\r\nb"}"#),
        ))
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn groups_come_from_a_list_or_a_single_string() {
        assert_eq!(string_list(&serde_json::json!(["a", 1, "b"])), ["a", "b"]);
        assert_eq!(string_list(&serde_json::json!("a")), ["a"]);
        assert!(string_list(&serde_json::json!({"x": 1})).is_empty());
    }
}
