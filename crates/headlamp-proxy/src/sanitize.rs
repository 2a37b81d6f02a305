//! Removes everything a client must not control upstream, and sets aside
//! the credentials it carried so the authenticate step can choose one.
//!
//! Like linkerd2-proxy's `SetIdentityHeader`, this never lets the client's
//! version of a trust header through: `Impersonate-*` and `Authorization`
//! are always taken off here and only ever set again by the proxy itself.

use std::task::{Context, Poll};

use base64::Engine;
use headlamp_core::BearerToken;
use http::Request;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::route::Target;

/// The WebSocket subprotocol that carries a bearer token, since browsers
/// cannot set `Authorization` on a WebSocket: kube-apiserver's
/// `pkg/authentication/request/websocket` (`base64url.bearer.authorization.k8s.io.`
/// followed by the token in unpadded base64url).
pub const BEARER_SUBPROTOCOL_PREFIX: &str = "base64url.bearer.authorization.k8s.io.";

/// Cookie name prefixes that belong to headlamp-auth: the token cookies
/// (`headlamp-auth-<cluster>.<i>`), the sealed login state and the sealed
/// refresh token. None of them is for the API server. (`headlamp-oidc` is
/// headlamp-oidc's login-state cookie, `headlamp-oidc-login-<state>`: it is
/// scoped to the callback path, but a client can send it anywhere.)
const OUR_COOKIE_PREFIXES: [&str; 4] = [
    "headlamp-auth",
    "headlamp-oidc",
    "headlamp-login",
    "headlamp-refresh",
];

/// The credentials a request arrived with, taken off its headers.
#[derive(Clone, Default)]
pub(crate) struct PresentedCredentials {
    /// The cluster's token cookie, chunks joined.
    pub(crate) cookie: Option<BearerToken>,
    /// The client's `Authorization` header, whatever its scheme.
    pub(crate) authorization: Option<HeaderValue>,
    /// The token from the bearer WebSocket subprotocol, or why it is unusable.
    pub(crate) subprotocol: Option<Result<BearerToken, &'static str>>,
}

/// The sanitize layer.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SanitizeLayer;

impl<S> tower::Layer<S> for SanitizeLayer {
    type Service = Sanitize<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Sanitize { inner }
    }
}

/// See the module documentation.
#[derive(Clone, Debug)]
pub(crate) struct Sanitize<S> {
    inner: S,
}

impl<S, B> tower::Service<Request<B>> for Sanitize<S>
where
    S: tower::Service<Request<B>>,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let cookie_prefix = req
            .extensions()
            .get::<Target<B>>()
            .map(|t| t.cluster.cookie_prefix.clone());
        let credentials = sanitize_request(req.headers_mut(), cookie_prefix.as_deref());
        req.extensions_mut().insert(credentials);
        self.inner.call(req)
    }
}

/// Sanitizes request headers in place and returns the credentials found.
/// `cookie_prefix` is `headlamp-auth-<sanitized cluster>.`.
pub(crate) fn sanitize_request(
    headers: &mut HeaderMap,
    cookie_prefix: Option<&str>,
) -> PresentedCredentials {
    let upgrade = is_upgrade(headers);
    strip_hop_by_hop(headers, upgrade);
    strip_impersonation(headers);
    let authorization = headers.remove(header::AUTHORIZATION);
    let cookie = take_our_cookies(headers, cookie_prefix);
    let subprotocol = take_bearer_subprotocol(headers);
    PresentedCredentials {
        cookie,
        authorization,
        subprotocol,
    }
}

/// An HTTP/1.1 upgrade request: `Connection` lists `upgrade` and an
/// `Upgrade` header names the protocol (RFC 9110 section 7.8).
pub(crate) fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .any(|v| connection_tokens(v).any(|t| t.eq_ignore_ascii_case("upgrade")))
}

fn connection_tokens(value: &HeaderValue) -> impl Iterator<Item = &str> {
    value
        .to_str()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Removes hop-by-hop headers (RFC 9110 section 7.6.1): `Connection` and
/// every header it names, `Keep-Alive`, `Proxy-*`, `TE`, `Trailer`,
/// `Transfer-Encoding`, `Upgrade`. For an upgrade the pair
/// `Connection: Upgrade` + `Upgrade` is kept, since the next hop must see it
/// to switch protocols; nothing else `Connection` named survives.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(connection_tokens)
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect();
    let upgrade = if keep_upgrade {
        headers.remove(header::UPGRADE)
    } else {
        None
    };
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
    remove_prefixed(headers, "proxy-");
    if let Some(upgrade) = upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(header::UPGRADE, upgrade);
    }
}

/// Every client `Impersonate-*` header: only the proxy may ask the API
/// server to impersonate, and only for a verified identity. (Header names
/// are lower-case in `http`, so this is case-insensitive.)
///
/// Also the conventional front-proxy identity headers `X-Remote-User`,
/// `X-Remote-Group`, `X-Remote-Uid`, `X-Remote-Extra-*`: kube-apiserver
/// trusts them from a client certificate signed by its
/// `--requestheader-client-ca-file`
/// (<https://kubernetes.io/docs/tasks/extend-kubernetes/configure-aggregation-layer/#authentication-flow>);
/// should a cluster's impersonate-mode certificate ever be such a
/// certificate, a client's own `X-Remote-User` must not ride along.
fn strip_impersonation(headers: &mut HeaderMap) {
    remove_prefixed(headers, "impersonate-");
    remove_prefixed(headers, "x-remote-");
}

fn remove_prefixed(headers: &mut HeaderMap, prefix: &str) {
    // Collect first: the map cannot be changed while borrowed. Allocates only
    // when such a header is present.
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|n| n.as_str().starts_with(prefix))
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
}

fn is_ours(cookie_name: &[u8]) -> bool {
    OUR_COOKIE_PREFIXES.iter().any(|p| {
        cookie_name.len() >= p.len() && cookie_name[..p.len()].eq_ignore_ascii_case(p.as_bytes())
    })
}

/// Takes our cookies out of `Cookie` (keeping the others, in order, in one
/// header as RFC 9113 section 8.2.3 asks when HTTP/2 split them) and returns
/// the cluster's token: the chunks `<prefix>0`, `<prefix>1`, ... joined up
/// to the first gap, as Headlamp reads them.
///
/// Works on bytes, so a cookie value with non-ASCII bytes in the same
/// header cannot smuggle one of ours through unparsed.
fn take_our_cookies(headers: &mut HeaderMap, cookie_prefix: Option<&str>) -> Option<BearerToken> {
    // Fast path: no cookie of ours, nothing to rewrite (no allocation).
    let any_ours = headers.get_all(header::COOKIE).iter().any(|v| {
        v.as_bytes()
            .windows(b"headlamp-".len())
            .any(|w| w.eq_ignore_ascii_case(b"headlamp-"))
    });
    if !any_ours {
        return None;
    }
    let mut kept: Vec<u8> = Vec::new();
    let mut chunks: Vec<(usize, &str)> = Vec::new();
    let values: Vec<HeaderValue> = headers.get_all(header::COOKIE).iter().cloned().collect();
    for value in &values {
        for pair in value
            .as_bytes()
            .split(|b| *b == b';')
            .map(<[u8]>::trim_ascii)
        {
            if pair.is_empty() {
                continue;
            }
            let (name, cookie_value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (pair[..i].trim_ascii(), pair[i + 1..].trim_ascii()),
                None => (pair, &b""[..]),
            };
            if is_ours(name) {
                let index = cookie_prefix
                    .and_then(|p| name.strip_prefix(p.as_bytes()))
                    .and_then(|i| std::str::from_utf8(i).ok())
                    .and_then(|i| i.parse::<usize>().ok());
                let text = std::str::from_utf8(cookie_value).ok();
                if let (Some(index), Some(text)) = (index, text) {
                    chunks.push((index, text.trim_matches('"')));
                }
                continue;
            }
            if !kept.is_empty() {
                kept.extend_from_slice(b"; ");
            }
            kept.extend_from_slice(pair);
        }
    }
    headers.remove(header::COOKIE);
    if !kept.is_empty()
        && let Ok(value) = HeaderValue::from_bytes(&kept)
    {
        headers.append(header::COOKIE, value);
    }
    join_chunks(chunks)
}

fn join_chunks(mut chunks: Vec<(usize, &str)>) -> Option<BearerToken> {
    chunks.sort_unstable_by_key(|(i, _)| *i);
    let mut token = String::new();
    let mut next = 0;
    for (index, value) in chunks {
        if index != next {
            // A duplicate index keeps the first; a gap ends the token.
            if index < next {
                continue;
            }
            break;
        }
        token.push_str(value);
        next += 1;
    }
    (!token.is_empty()).then(|| BearerToken::new(token))
}

/// Takes the bearer subprotocol out of `Sec-WebSocket-Protocol` (keeping the
/// others, in order) and decodes its token.
fn take_bearer_subprotocol(headers: &mut HeaderMap) -> Option<Result<BearerToken, &'static str>> {
    let name = header::SEC_WEBSOCKET_PROTOCOL;
    let any = headers.get_all(&name).iter().any(|v| {
        v.as_bytes()
            .windows(BEARER_SUBPROTOCOL_PREFIX.len())
            .any(|w| w == BEARER_SUBPROTOCOL_PREFIX.as_bytes())
    });
    if !any {
        return None;
    }
    let mut token = None;
    let mut kept: Vec<&str> = Vec::new();
    let values: Vec<HeaderValue> = headers.get_all(&name).iter().cloned().collect();
    for value in &values {
        for protocol in value.to_str().unwrap_or("").split(',').map(str::trim) {
            if let Some(encoded) = protocol.strip_prefix(BEARER_SUBPROTOCOL_PREFIX) {
                if token.is_none() {
                    token = Some(decode_subprotocol_token(encoded));
                }
            } else if !protocol.is_empty() {
                kept.push(protocol);
            }
        }
    }
    headers.remove(&name);
    if !kept.is_empty()
        && let Ok(value) = HeaderValue::try_from(kept.join(", "))
    {
        headers.insert(name, value);
    }
    token
}

fn decode_subprotocol_token(encoded: &str) -> Result<BearerToken, &'static str> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| "its WebSocket subprotocol value is not unpadded base64url")?;
    let token =
        String::from_utf8(bytes).map_err(|_| "its WebSocket subprotocol value is not UTF-8")?;
    if token.is_empty() {
        return Err("its WebSocket subprotocol value is empty");
    }
    Ok(BearerToken::new(token))
}

/// The token cookie base name for a cluster, `headlamp-auth-<sanitized>`,
/// where `<sanitized>` is the cluster name with everything but
/// `[A-Za-z0-9_-]` removed, cut to 50 characters (Headlamp's
/// `backend/pkg/auth` cookie naming). Chunk `i` is `<base>.<i>`.
///
/// ```
/// assert_eq!(headlamp_proxy::token_cookie_base("kind-kind"), "headlamp-auth-kind-kind");
/// assert_eq!(headlamp_proxy::token_cookie_base("arn:aws:eks/prod"), "headlamp-auth-arnawseksprod");
/// ```
pub fn token_cookie_base(cluster: &str) -> String {
    let sanitized: String = cluster
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(50)
        .collect();
    format!("headlamp-auth-{sanitized}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    fn names(map: &HeaderMap) -> Vec<&str> {
        let mut v: Vec<_> = map.keys().map(|k| k.as_str()).collect();
        v.sort();
        v
    }

    #[test]
    fn drops_hop_by_hop_and_what_connection_names() {
        let mut h = headers(&[
            ("connection", "keep-alive, X-Secret-Hop"),
            ("x-secret-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic abc"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("trailer", "x-checksum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("accept", "application/json"),
        ]);
        sanitize_request(&mut h, None);
        assert_eq!(names(&h), ["accept"]);
    }

    #[test]
    fn keeps_connection_upgrade_for_upgrade_requests() {
        let mut h = headers(&[
            ("connection", "keep-alive, Upgrade, X-Other"),
            ("x-other", "1"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "13"),
        ]);
        sanitize_request(&mut h, None);
        assert_eq!(h["connection"], "Upgrade");
        assert_eq!(h["upgrade"], "websocket");
        assert!(!h.contains_key("x-other"));
        assert!(h.contains_key("sec-websocket-key"));

        let mut spdy = headers(&[("connection", "Upgrade"), ("upgrade", "SPDY/3.1")]);
        sanitize_request(&mut spdy, None);
        assert_eq!(spdy["upgrade"], "SPDY/3.1");
    }

    #[test]
    fn drops_every_impersonation_header_and_takes_authorization() {
        let mut h = headers(&[
            ("Impersonate-User", "admin"),
            ("impersonate-group", "system:masters"),
            ("IMPERSONATE-GROUP", "system:nodes"),
            ("Impersonate-Uid", "0"),
            ("Impersonate-Extra-Scopes", "all"),
            ("authorization", "Bearer abc"),
            ("x-impersonate-user", "kept: not an impersonation header"),
            ("X-Remote-User", "admin"),
            ("x-remote-group", "system:masters"),
            ("X-Remote-Extra-Scopes", "all"),
        ]);
        let creds = sanitize_request(&mut h, None);
        assert_eq!(names(&h), ["x-impersonate-user"]);
        assert_eq!(creds.authorization.unwrap(), "Bearer abc");
    }

    #[test]
    fn takes_our_cookies_keeps_others_and_joins_chunks() {
        let prefix = format!("{}.", token_cookie_base("kind-kind"));
        let mut h = headers(&[
            (
                "cookie",
                "theme=dark; headlamp-auth-kind-kind.1=PART2; headlamp-auth-kind-kind.0=PART1",
            ),
            // HTTP/2 clients send one cookie per header field.
            ("cookie", "headlamp-auth-kind-kind.2=PART3"),
            (
                "cookie",
                "headlamp-auth-kind-kind.4=AFTER-GAP; headlamp-login-state=sealed; headlamp-oidc-login-AAAA=sealed",
            ),
            (
                "cookie",
                "headlamp-refresh-kind-kind=sealed; Headlamp-Auth-other.0=x; lang=en",
            ),
        ]);
        let creds = sanitize_request(&mut h, Some(&prefix));
        assert_eq!(creds.cookie.unwrap().expose(), "PART1PART2PART3");
        assert_eq!(h.get_all("cookie").iter().count(), 1);
        assert_eq!(h["cookie"], "theme=dark; lang=en");

        let mut only_ours = headers(&[("cookie", "headlamp-auth-x.0=t")]);
        let creds = sanitize_request(&mut only_ours, Some("headlamp-auth-kind-kind."));
        assert!(
            creds.cookie.is_none(),
            "another cluster's cookie is not this cluster's token"
        );
        assert!(!only_ours.contains_key("cookie"));
    }

    #[test]
    fn a_non_ascii_cookie_cannot_smuggle_ours_through() {
        let mut h = HeaderMap::new();
        h.insert(
            "cookie",
            HeaderValue::from_bytes(
                b"name=caf\xc3\xa9; headlamp-refresh-x=sealed; headlamp-auth-x.0=t",
            )
            .unwrap(),
        );
        let creds = sanitize_request(&mut h, Some("headlamp-auth-x."));
        assert_eq!(creds.cookie.unwrap().expose(), "t");
        assert_eq!(h["cookie"].as_bytes(), b"name=caf\xc3\xa9");
    }

    #[test]
    fn takes_the_bearer_subprotocol_keeps_the_rest() {
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("tok.en-1");
        let mut h = headers(&[(
            "sec-websocket-protocol",
            &format!("{BEARER_SUBPROTOCOL_PREFIX}{token}, base64.binary.k8s.io"),
        )]);
        let creds = sanitize_request(&mut h, None);
        assert_eq!(creds.subprotocol.unwrap().unwrap().expose(), "tok.en-1");
        assert_eq!(h["sec-websocket-protocol"], "base64.binary.k8s.io");

        let mut alone = headers(&[(
            "sec-websocket-protocol",
            &format!("{BEARER_SUBPROTOCOL_PREFIX}{token}"),
        )]);
        sanitize_request(&mut alone, None);
        assert!(!alone.contains_key("sec-websocket-protocol"));

        let mut bad = headers(&[(
            "sec-websocket-protocol",
            &format!("{BEARER_SUBPROTOCOL_PREFIX}not*base64, v4.channel.k8s.io"),
        )]);
        let creds = sanitize_request(&mut bad, None);
        assert!(creds.subprotocol.unwrap().is_err());
        assert_eq!(bad["sec-websocket-protocol"], "v4.channel.k8s.io");
    }

    #[test]
    fn cookie_names_follow_headlamp() {
        assert_eq!(
            token_cookie_base("my.cluster@corp"),
            "headlamp-auth-myclustercorp"
        );
        let long = "x".repeat(80);
        assert_eq!(token_cookie_base(&long).len(), "headlamp-auth-".len() + 50);
    }
}
