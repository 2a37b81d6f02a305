//! Chooses the caller's token and decides what credentials go upstream:
//! the user's own token (passthrough), or the cluster's credentials plus
//! `Impersonate-*` headers for the verified identity (impersonate).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::{Either, Ready, ready};
use headlamp_core::{Authenticate, AuthenticationError, BearerToken, Identity};
use http::Request;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::credentials::bearer_value;
use crate::error::ProxyError;
use crate::route::Target;
use crate::sanitize::PresentedCredentials;

/// How the proxy calls the API server.
#[derive(Debug, Clone)]
pub enum ProxyMode<A> {
    /// The user's own token goes upstream as `Authorization: Bearer`, as
    /// Headlamp does; the API server authenticates it. No token: the request
    /// goes up without credentials and the API server answers 401 itself.
    Passthrough,
    /// The token is verified here; the API server is called with the
    /// cluster's own credentials and asked to act as the verified identity.
    Impersonate {
        /// Verifies tokens (headlamp-jwt's validator in the server).
        authenticator: A,
    },
}

impl ProxyMode<NoAuthenticator> {
    /// Passthrough mode, for an embedder that never impersonates.
    pub fn passthrough() -> Self {
        Self::Passthrough
    }
}

/// The authenticator type of a proxy that only passes tokens through. It
/// has no values, so it can never be asked anything.
#[derive(Debug, Clone, Copy)]
pub enum NoAuthenticator {}

impl Authenticate for NoAuthenticator {
    #[allow(clippy::manual_async_fn)]
    fn authenticate(
        &self,
        _token: &BearerToken,
    ) -> impl Future<Output = Result<Identity, AuthenticationError>> + Send {
        let never = *self;
        async move { match never {} }
    }
}

/// A token the embedding server resolved for this request (for example one
/// it has just refreshed); when present it takes precedence over the cookie,
/// the `Authorization` header and the WebSocket subprotocol.
#[derive(Clone, Debug)]
pub struct ResolvedToken(pub BearerToken);

/// Where the chosen token came from (for messages; never the token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenSource {
    Server,
    Cookie,
    Header,
    Subprotocol,
}

impl TokenSource {
    fn name(self) -> &'static str {
        match self {
            Self::Server => "supplied by the server",
            Self::Cookie => "in the token cookie",
            Self::Header => "in the Authorization header",
            Self::Subprotocol => "in the WebSocket subprotocol",
        }
    }
}

/// What the client presented, after precedence.
enum Presented {
    Bearer(BearerToken, TokenSource),
    /// An `Authorization` header with another scheme (Basic, ...).
    OtherAuthorization(HeaderValue),
    Nothing,
}

/// Token precedence: server-resolved, cookie, `Authorization: Bearer`, the
/// bearer WebSocket subprotocol (only when no `Authorization` is present,
/// as kube-apiserver and Headlamp treat it).
fn choose(
    resolved: Option<ResolvedToken>,
    presented: PresentedCredentials,
) -> Result<Presented, ProxyError> {
    if let Some(ResolvedToken(token)) = resolved {
        return Ok(Presented::Bearer(token, TokenSource::Server));
    }
    if let Some(token) = presented.cookie {
        return Ok(Presented::Bearer(token, TokenSource::Cookie));
    }
    if let Some(value) = presented.authorization {
        return Ok(match bearer_token(&value) {
            Some(token) => Presented::Bearer(token, TokenSource::Header),
            None => Presented::OtherAuthorization(value),
        });
    }
    match presented.subprotocol {
        Some(Ok(token)) => Ok(Presented::Bearer(token, TokenSource::Subprotocol)),
        Some(Err(reason)) => Err(ProxyError::MalformedToken {
            source_name: TokenSource::Subprotocol.name(),
            reason,
        }),
        None => Ok(Presented::Nothing),
    }
}

/// `Bearer <token>`, the scheme matched case-insensitively (RFC 9110
/// section 11.1, RFC 6750 section 2.1).
fn bearer_token(value: &HeaderValue) -> Option<BearerToken> {
    let text = value.to_str().ok()?;
    let (scheme, token) = text.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| BearerToken::new(token))
}

/// The `Impersonate-*` headers for a verified identity
/// (<https://kubernetes.io/docs/reference/access-authn-authz/authentication/#user-impersonation>).
///
/// ```
/// use headlamp_core::Identity;
/// use headlamp_proxy::ImpersonationHeaders;
///
/// let alice = Identity::new("alice", None, vec!["dev".into(), "ops".into()], Default::default())?;
/// let mut headers = http::HeaderMap::new();
/// ImpersonationHeaders::new(&alice)?.apply(&mut headers);
/// assert_eq!(headers["impersonate-user"], "alice");
/// assert_eq!(headers.get_all("impersonate-group").iter().count(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ImpersonationHeaders(Vec<(HeaderName, HeaderValue)>);

/// An identity value that cannot become a header. [`Identity::new`] already
/// refuses these, so this is defence in depth.
#[derive(Debug, thiserror::Error)]
#[error("the identity's {0} cannot be sent as an Impersonate header")]
pub struct UnsendableIdentity(&'static str);

impl ImpersonationHeaders {
    /// `Impersonate-User`, one `Impersonate-Group` per group,
    /// `Impersonate-Uid` and `Impersonate-Extra-<key>` when present.
    pub fn new(identity: &Identity) -> Result<Self, UnsendableIdentity> {
        let value = |what, v: &str| HeaderValue::from_str(v).map_err(|_| UnsendableIdentity(what));
        let mut headers = Vec::with_capacity(2 + identity.groups().len());
        headers.push((
            HeaderName::from_static("impersonate-user"),
            value("username", identity.username())?,
        ));
        for group in identity.groups() {
            headers.push((
                HeaderName::from_static("impersonate-group"),
                value("group", group)?,
            ));
        }
        if let Some(uid) = identity.uid() {
            headers.push((
                HeaderName::from_static("impersonate-uid"),
                value("uid", uid)?,
            ));
        }
        for (key, values) in identity.extra() {
            let name = HeaderName::try_from(format!("impersonate-extra-{}", escape_extra_key(key)))
                .map_err(|_| UnsendableIdentity("extra key"))?;
            for v in values {
                headers.push((name.clone(), value("extra value", v)?));
            }
        }
        Ok(Self(headers))
    }

    /// Adds the headers (after any client `Impersonate-*` were removed).
    pub fn apply(self, headers: &mut HeaderMap) {
        for (name, value) in self.0 {
            headers.append(name, value);
        }
    }
}

/// client-go's `headerKeyEscape`: percent-encode every byte that is not an
/// RFC 9110 token character, and `%` itself, so kube-apiserver's
/// `url.PathUnescape` gives the key back (e.g. `example.com/team` ->
/// `example.com%2Fteam`).
fn escape_extra_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        let token_char = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        if token_char {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The authenticate layer.
pub(crate) struct AuthenticateLayer<A> {
    mode: Arc<ProxyMode<A>>,
}

impl<A> AuthenticateLayer<A> {
    pub(crate) fn new(mode: Arc<ProxyMode<A>>) -> Self {
        Self { mode }
    }
}

impl<S, A> tower::Layer<S> for AuthenticateLayer<A> {
    type Service = AuthenticateService<S, A>;
    fn layer(&self, inner: S) -> Self::Service {
        AuthenticateService {
            inner,
            mode: self.mode.clone(),
        }
    }
}

/// See the module documentation.
pub(crate) struct AuthenticateService<S, A> {
    inner: S,
    mode: Arc<ProxyMode<A>>,
}

impl<S: Clone, A> Clone for AuthenticateService<S, A> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            mode: self.mode.clone(),
        }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, A, B, R> tower::Service<Request<B>> for AuthenticateService<S, A>
where
    S: tower::Service<Request<B>, Response = R, Error = ProxyError> + Clone + Send + 'static,
    S::Future: Send,
    A: Authenticate,
    B: Send + Sync + 'static,
    R: Send + 'static,
{
    type Response = R;
    type Error = ProxyError;
    /// Passthrough needs no await before forwarding, so it costs no box.
    type Future =
        Either<Either<Ready<Result<R, ProxyError>>, S::Future>, BoxFuture<Result<R, ProxyError>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let presented = req
            .extensions_mut()
            .remove::<PresentedCredentials>()
            .unwrap_or_default();
        let resolved = req.extensions_mut().remove::<ResolvedToken>();
        let presented = match choose(resolved, presented) {
            Ok(p) => p,
            Err(e) => return Either::Left(Either::Left(ready(Err(e)))),
        };
        match &*self.mode {
            ProxyMode::Passthrough => {
                let value = match presented {
                    Presented::Bearer(token, source) => match bearer_value(token.expose()) {
                        Ok(v) => Some(v),
                        Err(reason) => {
                            return Either::Left(Either::Left(ready(Err(
                                ProxyError::MalformedToken {
                                    source_name: source.name(),
                                    reason,
                                },
                            ))));
                        }
                    },
                    // Headlamp passes a client's own Authorization through
                    // (plugins, kubectl with basic or other schemes).
                    Presented::OtherAuthorization(value) => Some(value),
                    Presented::Nothing => None,
                };
                if let Some(value) = value {
                    req.headers_mut().insert(header::AUTHORIZATION, value);
                }
                Either::Left(Either::Right(self.inner.call(req)))
            }
            ProxyMode::Impersonate { .. } => {
                // Take the service that was driven to readiness; leave a clone.
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                let mode = self.mode.clone();
                Either::Right(Box::pin(impersonate(mode, inner, req, presented)))
            }
        }
    }
}

async fn impersonate<S, A, B, R>(
    mode: Arc<ProxyMode<A>>,
    mut inner: S,
    mut req: Request<B>,
    presented: Presented,
) -> Result<R, ProxyError>
where
    S: tower::Service<Request<B>, Response = R, Error = ProxyError>,
    A: Authenticate,
    B: Send + Sync + 'static,
{
    let ProxyMode::Impersonate { authenticator } = &*mode else {
        return Err(ProxyError::Authentication(AuthenticationError::rejected(
            "impersonation is not configured",
        )));
    };
    let cluster_name = || {
        req.extensions()
            .get::<Target<B>>()
            .map(|t| t.cluster.info.name.clone())
            .unwrap_or_default()
    };
    let token = match presented {
        Presented::Bearer(token, _) => token,
        Presented::OtherAuthorization(_) => {
            return Err(ProxyError::MalformedToken {
                source_name: TokenSource::Header.name(),
                reason: "the Authorization header is not \"Bearer <token>\"",
            });
        }
        Presented::Nothing => {
            return Err(ProxyError::NoToken {
                cluster: cluster_name(),
            });
        }
    };
    let identity = authenticator.authenticate(&token).await?;
    drop(token);
    let impersonation = ImpersonationHeaders::new(&identity)
        .map_err(|e| ProxyError::Authentication(AuthenticationError::rejected(e.to_string())))?;
    let upstream_token = req
        .extensions()
        .get::<Target<B>>()
        .and_then(|t| t.cluster.upstream.as_ref().ok())
        .and_then(|u| u.token.clone());
    if let Some(token) = upstream_token {
        let value =
            token
                .authorization()
                .await
                .map_err(|reason| ProxyError::UpstreamCredentials {
                    cluster: cluster_name(),
                    reason,
                })?;
        req.headers_mut().insert(header::AUTHORIZATION, value);
    }
    impersonation.apply(req.headers_mut());
    tracing::debug!(user = identity.username(), groups = ?identity.groups(), "impersonating");
    inner.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn bearer(v: &str) -> Option<HeaderValue> {
        Some(HeaderValue::from_str(v).unwrap())
    }

    fn token_of(p: Presented) -> (String, TokenSource) {
        match p {
            Presented::Bearer(t, s) => (t.expose().to_owned(), s),
            _ => panic!("expected a bearer token"),
        }
    }

    #[test]
    fn token_precedence() {
        let all = || PresentedCredentials {
            cookie: Some(BearerToken::new("cookie")),
            authorization: bearer("Bearer header"),
            subprotocol: Some(Ok(BearerToken::new("ws"))),
        };
        let server = Some(ResolvedToken(BearerToken::new("refreshed")));
        assert_eq!(
            token_of(choose(server, all()).unwrap()),
            ("refreshed".into(), TokenSource::Server)
        );
        assert_eq!(
            token_of(choose(None, all()).unwrap()),
            ("cookie".into(), TokenSource::Cookie)
        );
        let no_cookie = PresentedCredentials {
            cookie: None,
            ..all()
        };
        assert_eq!(token_of(choose(None, no_cookie).unwrap()).0, "header");
        let ws_only = PresentedCredentials {
            subprotocol: Some(Ok(BearerToken::new("ws"))),
            ..Default::default()
        };
        assert_eq!(
            token_of(choose(None, ws_only).unwrap()),
            ("ws".into(), TokenSource::Subprotocol)
        );
        let lower = PresentedCredentials {
            authorization: bearer("bearer  spaced "),
            ..Default::default()
        };
        assert_eq!(token_of(choose(None, lower).unwrap()).0, "spaced");
        let basic = PresentedCredentials {
            authorization: bearer("Basic YTpi"),
            subprotocol: Some(Ok(BearerToken::new("ws"))),
            ..Default::default()
        };
        assert!(matches!(
            choose(None, basic).unwrap(),
            Presented::OtherAuthorization(_)
        ));
        let bad_ws = PresentedCredentials {
            subprotocol: Some(Err("not base64url")),
            ..Default::default()
        };
        assert!(matches!(
            choose(None, bad_ws),
            Err(ProxyError::MalformedToken { .. })
        ));
        assert!(matches!(
            choose(None, PresentedCredentials::default()).unwrap(),
            Presented::Nothing
        ));
    }

    #[test]
    fn builds_impersonation_headers() {
        let mut extra = BTreeMap::new();
        extra.insert(
            "example.com/team".to_owned(),
            vec!["a".to_owned(), "b".to_owned()],
        );
        extra.insert("scopes".to_owned(), vec!["view".to_owned()]);
        extra.insert("100%".to_owned(), vec!["x".to_owned()]);
        let id = Identity::new(
            "josé@example.com",
            Some("1234".into()),
            vec!["dev".into(), "ops".into()],
            extra,
        )
        .unwrap();
        let mut h = HeaderMap::new();
        ImpersonationHeaders::new(&id).unwrap().apply(&mut h);
        assert_eq!(
            h["impersonate-user"].as_bytes(),
            "josé@example.com".as_bytes()
        );
        let groups: Vec<_> = h.get_all("impersonate-group").iter().collect();
        assert_eq!(groups, ["dev", "ops"]);
        assert_eq!(h["impersonate-uid"], "1234");
        let team: Vec<_> = h
            .get_all("impersonate-extra-example.com%2fteam")
            .iter()
            .collect();
        assert_eq!(team, ["a", "b"]);
        assert_eq!(h["impersonate-extra-scopes"], "view");
        assert_eq!(h["impersonate-extra-100%25"], "x");
    }

    #[test]
    fn escapes_extra_keys_like_client_go() {
        assert_eq!(escape_extra_key("example.com/team"), "example.com%2Fteam");
        assert_eq!(escape_extra_key("a%b"), "a%25b");
        assert_eq!(escape_extra_key("plain-key_1.2~"), "plain-key_1.2~");
    }
}
