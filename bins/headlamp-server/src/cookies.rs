//! The token and refresh-token cookies, exactly as Headlamp's frontend
//! expects them (`docs/headlamp-compat.md`, "The token cookie").
//!
//! - Token: `headlamp-auth-<sanitized>.<i>`, the token cut into
//!   [`CHUNK_SIZE`]-byte chunks, because browsers drop cookies over about
//!   4096 bytes (RFC 6265 section 6.1 asks for at least 4096 bytes per
//!   cookie, name and attributes included) and ID tokens with many groups
//!   are larger. Read back by joining `.0`, `.1`, ... up to the first gap.
//! - Refresh token: `headlamp-refresh-<sanitized>`, sealed by headlamp-oidc
//!   (encrypted, authenticated, bound to the cluster), beside the token.
//! - Attributes: `HttpOnly` (no script reads a token), `SameSite=Strict`
//!   (never sent on cross-site requests, RFC 6265bis section 5.6.7),
//!   `Path=[base-url]/clusters/<name>` so a cluster's token goes to that
//!   cluster's routes only, `Max-Age=<session-ttl>`, `Secure` when the
//!   browser reached us over https, and no `Domain` (host-only).
//!
//! When a token needs fewer chunks than before, the chunks left over are
//! expired; the request's `Cookie` header says which exist.

use std::time::Duration;

use http::HeaderMap;
use http::header::{self, HeaderValue};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

/// Bytes of token per cookie chunk (Headlamp's `backend/pkg/auth` value).
pub(crate) const CHUNK_SIZE: usize = 3800;

/// Chunks expired after a sign-in that cannot see the old cookies: 8
/// chunks are 30 KB of token, beyond what any browser sends in a `Cookie`
/// header to one path (Chrome and Firefox cap a request's cookies near
/// 8-16 KB in practice behind common proxies).
const BLIND_CLEAR_CHUNKS: usize = 8;

/// Prefix of the sealed refresh-token cookie's name. headlamp-proxy strips
/// every `headlamp-refresh*` cookie before forwarding, so it never reaches
/// an API server.
const REFRESH_COOKIE_PREFIX: &str = "headlamp-refresh-";

/// Characters escaped in a cookie `Path`: what RFC 6265 section 4.1.1 does
/// not allow in an attribute value (controls, `;`), plus what a browser
/// would percent-encode in the request path it compares `Path` with.
const PATH_ESCAPE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b';')
    .add(b',')
    .add(b'"')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'#')
    .add(b'\\')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Where and how a cluster's cookies are set.
#[derive(Debug, Clone)]
pub(crate) struct CookieScope {
    /// `headlamp-auth-<sanitized>`.
    token_base: String,
    /// `headlamp-refresh-<sanitized>`.
    refresh_name: String,
    /// `[base-url]/clusters/<name>`, escaped.
    path: String,
    /// `Secure` attribute.
    secure: bool,
    /// `Max-Age` in seconds.
    max_age: u64,
}

impl CookieScope {
    /// The scope of `cluster` under `base_url` for a request that came over
    /// https (`secure`) or not.
    pub(crate) fn new(cluster: &str, base_url: &str, secure: bool, ttl: Duration) -> Self {
        let token_base = headlamp_proxy::token_cookie_base(cluster);
        let sanitized = token_base
            .strip_prefix("headlamp-auth-")
            .unwrap_or_default()
            .to_owned();
        Self {
            refresh_name: format!("{REFRESH_COOKIE_PREFIX}{sanitized}"),
            token_base,
            path: format!(
                "{base_url}/clusters/{}",
                utf8_percent_encode(cluster, PATH_ESCAPE)
            ),
            secure,
            max_age: ttl.as_secs(),
        }
    }

    /// The refresh cookie's name.
    #[cfg(test)]
    pub(crate) fn refresh_name(&self) -> &str {
        &self.refresh_name
    }

    /// The token from the request's chunk cookies, `None` when there is
    /// none (chunks joined up to the first gap, as Headlamp reads them).
    pub(crate) fn read_token(&self, headers: &HeaderMap) -> Option<String> {
        let mut chunks: Vec<(usize, &str)> = self.chunks(headers).collect();
        chunks.sort_unstable_by_key(|(i, _)| *i);
        let mut token = String::new();
        let mut next = 0;
        for (index, value) in chunks {
            if index < next {
                continue; // a duplicate index keeps the first
            }
            if index != next {
                break;
            }
            token.push_str(value);
            next += 1;
        }
        (!token.is_empty()).then_some(token)
    }

    /// Whether the request carries any of this cluster's token chunks.
    pub(crate) fn has_token(&self, headers: &HeaderMap) -> bool {
        self.chunks(headers).next().is_some()
    }

    /// The sealed refresh-token cookie of the request.
    pub(crate) fn read_refresh<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        headlamp_oidc::cookie_value(headers, &self.refresh_name).filter(|v| !v.is_empty())
    }

    /// `(index, value)` of every token chunk cookie in the request.
    fn chunks<'h>(&'h self, headers: &'h HeaderMap) -> impl Iterator<Item = (usize, &'h str)> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .filter_map(move |(name, value)| {
                let index = name
                    .trim()
                    .strip_prefix(self.token_base.as_str())?
                    .strip_prefix('.')?
                    .parse::<usize>()
                    .ok()?;
                Some((index, value.trim().trim_matches('"')))
            })
    }

    /// `Set-Cookie` values storing `token`, plus expiring the chunks of an
    /// older, longer token that the request carried.
    pub(crate) fn set_token(&self, token: &str, request: &HeaderMap) -> Vec<HeaderValue> {
        let mut values = Vec::with_capacity(token.len() / CHUNK_SIZE + 2);
        let mut count = 0;
        // Tokens are ASCII (JWS compact serialisation, RFC 7515 section 7.1)
        // and set-token refuses anything else, so byte chunks are char chunks.
        for (index, chunk) in token.as_bytes().chunks(CHUNK_SIZE).enumerate() {
            let chunk = String::from_utf8_lossy(chunk);
            values.extend(self.cookie(&format!("{}.{index}", self.token_base), &chunk, false));
            count = index + 1;
        }
        values.extend(self.clear_chunks_from(count, request));
        values
    }

    /// `Set-Cookie` values storing `token` for a request that cannot carry
    /// the cluster's cookies (the OIDC callback is outside their `Path`):
    /// chunks after the new token's last one are expired up to
    /// [`BLIND_CLEAR_CHUNKS`], so an older, longer token's tail can never be
    /// joined onto the new one.
    pub(crate) fn set_token_blind(&self, token: &str) -> Vec<HeaderValue> {
        let mut values = self.set_token(token, &HeaderMap::new());
        let count = token.len().div_ceil(CHUNK_SIZE).max(1);
        values.extend(
            (count..BLIND_CLEAR_CHUNKS)
                .filter_map(|i| self.cookie(&format!("{}.{i}", self.token_base), "", true)),
        );
        values
    }

    /// `Set-Cookie` values expiring every token chunk the request carried
    /// (at least chunk 0) and the refresh cookie: sign-out.
    pub(crate) fn clear_all(&self, request: &HeaderMap) -> Vec<HeaderValue> {
        let mut values = self.clear_chunks_from(0, request);
        if !self.chunks(request).any(|(i, _)| i == 0) {
            values.extend(self.cookie(&format!("{}.0", self.token_base), "", true));
        }
        values.extend(self.cookie(&self.refresh_name, "", true));
        values
    }

    /// The refresh cookie holding `sealed`.
    pub(crate) fn set_refresh(&self, sealed: &str) -> Option<HeaderValue> {
        self.cookie(&self.refresh_name, sealed, false)
    }

    /// Expires the refresh cookie.
    pub(crate) fn clear_refresh(&self) -> Option<HeaderValue> {
        self.cookie(&self.refresh_name, "", true)
    }

    fn clear_chunks_from(&self, first: usize, request: &HeaderMap) -> Vec<HeaderValue> {
        let mut stale: Vec<usize> = self
            .chunks(request)
            .map(|(i, _)| i)
            .filter(|i| *i >= first)
            .collect();
        stale.sort_unstable();
        stale.dedup();
        stale
            .into_iter()
            .filter_map(|i| self.cookie(&format!("{}.{i}", self.token_base), "", true))
            .collect()
    }

    fn cookie(&self, name: &str, value: &str, expire: bool) -> Option<HeaderValue> {
        let max_age = if expire { 0 } else { self.max_age };
        let text = format!(
            "{name}={value}; Path={}; Max-Age={max_age}; HttpOnly; SameSite=Strict{}",
            self.path,
            if self.secure { "; Secure" } else { "" }
        );
        match HeaderValue::from_str(&text) {
            Ok(value) => Some(value),
            Err(_) => {
                // Only a value with bytes outside visible ASCII gets here;
                // tokens and sealed values are base64url, so this is a bug
                // or hostile input, never a secret worth logging.
                tracing::warn!(cookie = name, "cookie value is not a valid header; not set");
                None
            }
        }
    }
}

/// Whether the browser's view of this request is https: a TLS connection,
/// or `X-Forwarded-Proto: https` from a TLS-terminating proxy in front.
pub(crate) fn is_secure(headers: &HeaderMap, tls: bool) -> bool {
    tls || headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(cluster: &str, base: &str, secure: bool) -> CookieScope {
        CookieScope::new(cluster, base, secure, Duration::from_secs(86_400))
    }

    fn cookie_header(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let text: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&text.join("; ")).unwrap(),
        );
        headers
    }

    fn texts(values: &[HeaderValue]) -> Vec<String> {
        values
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn a_short_token_is_one_chunk_with_every_attribute() {
        let set = texts(&scope("kind-kind", "/headlamp", true).set_token("abc", &HeaderMap::new()));
        assert_eq!(
            set,
            [
                "headlamp-auth-kind-kind.0=abc; Path=/headlamp/clusters/kind-kind; Max-Age=86400; \
              HttpOnly; SameSite=Strict; Secure"
            ]
        );
        let plain = texts(&scope("c", "", false).set_token("abc", &HeaderMap::new()));
        assert!(!plain[0].contains("Secure"), "{plain:?}");
        assert!(!plain[0].contains("Domain"), "{plain:?}");
    }

    #[test]
    fn long_tokens_are_split_into_3800_byte_chunks_and_read_back() {
        let token: String = "x".repeat(CHUNK_SIZE * 2 + 5);
        let scope = scope("c", "", false);
        let set = texts(&scope.set_token(&token, &HeaderMap::new()));
        assert_eq!(set.len(), 3);
        let pairs: Vec<(String, String)> = set
            .iter()
            .map(|s| {
                let (nv, _) = s.split_once(';').unwrap();
                let (n, v) = nv.split_once('=').unwrap();
                (n.to_owned(), v.to_owned())
            })
            .collect();
        assert_eq!(pairs[0].1.len(), CHUNK_SIZE);
        assert_eq!(pairs[2].1.len(), 5);
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(scope.read_token(&cookie_header(&refs)), Some(token));
    }

    #[test]
    fn fewer_chunks_expire_the_stale_ones() {
        let scope = scope("c", "", false);
        let request = cookie_header(&[
            ("headlamp-auth-c.0", "a"),
            ("headlamp-auth-c.1", "b"),
            ("headlamp-auth-c.2", "c"),
            ("other", "x"),
        ]);
        let set = texts(&scope.set_token("new", &request));
        assert_eq!(set.len(), 3, "{set:?}");
        assert!(set[0].starts_with("headlamp-auth-c.0=new;"));
        assert!(set[1].starts_with("headlamp-auth-c.1=;") && set[1].contains("Max-Age=0"));
        assert!(set[2].starts_with("headlamp-auth-c.2=;") && set[2].contains("Max-Age=0"));
    }

    #[test]
    fn a_blind_set_expires_every_later_chunk() {
        let set = texts(&scope("c", "", false).set_token_blind("abc"));
        assert_eq!(set.len(), BLIND_CLEAR_CHUNKS);
        assert!(set[0].starts_with("headlamp-auth-c.0=abc;"));
        assert!(set[1..].iter().all(|s| s.contains("Max-Age=0")), "{set:?}");
        assert!(set[7].starts_with("headlamp-auth-c.7=;"));
    }

    #[test]
    fn reading_stops_at_the_first_gap_and_ignores_other_clusters() {
        let scope = scope("c", "", false);
        let request = cookie_header(&[
            ("headlamp-auth-c.1", "b"),
            ("headlamp-auth-c.0", "a"),
            ("headlamp-auth-c.3", "d"),
            ("headlamp-auth-cx.0", "other-cluster"),
        ]);
        assert_eq!(scope.read_token(&request).as_deref(), Some("ab"));
        assert_eq!(scope.read_token(&HeaderMap::new()), None);
    }

    #[test]
    fn sign_out_expires_every_chunk_and_the_refresh_cookie() {
        let scope = scope("c", "/h", false);
        let request = cookie_header(&[("headlamp-auth-c.0", "a"), ("headlamp-auth-c.1", "b")]);
        let set = texts(&scope.clear_all(&request));
        assert_eq!(set.len(), 3, "{set:?}");
        assert!(set.iter().all(|s| s.contains("Max-Age=0")));
        assert!(set[2].starts_with("headlamp-refresh-c=;"), "{set:?}");
        // Nothing in the request: chunk 0 and the refresh cookie are still cleared.
        assert_eq!(scope.clear_all(&HeaderMap::new()).len(), 2);
    }

    #[test]
    fn cluster_names_are_sanitized_in_names_and_escaped_in_paths() {
        let scope = scope("arn:aws:eks/prod cluster;x", "", false);
        let set = texts(&scope.set_token("t", &HeaderMap::new()));
        assert!(
            set[0].starts_with("headlamp-auth-arnawseksprodclusterx.0=t; Path=/clusters/arn:aws:eks/prod%20cluster%3Bx;"),
            "{set:?}"
        );
        assert_eq!(
            scope.refresh_name(),
            "headlamp-refresh-arnawseksprodclusterx"
        );
    }

    #[test]
    fn https_is_the_connection_or_the_forwarded_proto() {
        let mut headers = HeaderMap::new();
        assert!(!is_secure(&headers, false));
        assert!(is_secure(&headers, true));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("HTTPS, http"));
        assert!(is_secure(&headers, false));
    }
}
