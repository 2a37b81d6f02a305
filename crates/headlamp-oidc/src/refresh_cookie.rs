//! The refresh-token cookie that sits beside Headlamp's token cookie.
//!
//! Headlamp keeps refresh tokens in process memory ("key not found" after a
//! restart or on another replica). We seal the refresh token
//! ([`OidcRegistry::seal_refresh_token`]: AES-256-GCM, bound to the cluster
//! and to its purpose) into its own cookie with the same scope as the token
//! cookie (`docs/headlamp-compat.md`, "The token cookie"): `HttpOnly`,
//! `SameSite=Strict`, `Path=[/base-url]/clusters/<name>`,
//! `Max-Age=<session-ttl>`, `Secure` over https, no `Domain`.

use std::time::Duration;

use headlamp_core::Secret;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use crate::login::cookie_value;
use crate::{OidcError, OidcRegistry};

/// Prefix of the refresh-token cookie's name.
pub const REFRESH_COOKIE_PREFIX: &str = "headlamp-refresh-";

/// Characters escaped in the cluster segment of a cookie `Path`: what a
/// browser escapes in a URL path segment, plus `;` and `,` which would end
/// the attribute (RFC 6265 section 4.1.1).
const PATH_SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'%')
    .add(b';')
    .add(b',')
    .add(b'\\');

/// Headlamp's cookie-name form of a cluster name: `[^A-Za-z0-9_-]`
/// removed, at most 50 characters.
pub fn sanitize_cluster_name(cluster: &str) -> String {
    cluster
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(50)
        .collect()
}

/// `[/base-url]/clusters/<name>`: the `Path` of a cluster's cookies.
pub fn cluster_cookie_path(base_url: &str, cluster: &str) -> String {
    format!(
        "{}/clusters/{}",
        base_url.trim_end_matches('/'),
        utf8_percent_encode(cluster, PATH_SEGMENT)
    )
}

/// The refresh-token cookie's name for `cluster`.
pub fn refresh_cookie_name(cluster: &str) -> String {
    format!("{REFRESH_COOKIE_PREFIX}{}", sanitize_cluster_name(cluster))
}

impl OidcRegistry {
    /// The `Set-Cookie` value carrying `refresh_token` for `cluster`,
    /// sealed and valid for `session_ttl`.
    pub fn refresh_set_cookie(
        &self,
        cluster: &str,
        refresh_token: &Secret,
        base_url: &str,
        secure: bool,
        session_ttl: Duration,
    ) -> Result<http::HeaderValue, OidcError> {
        let sealed = self.seal_refresh_token(cluster, refresh_token, session_ttl)?;
        header(format!(
            "{}={sealed}; Path={}; Max-Age={}; HttpOnly; SameSite=Strict{}",
            refresh_cookie_name(cluster),
            cluster_cookie_path(base_url, cluster),
            session_ttl.as_secs(),
            if secure { "; Secure" } else { "" }
        ))
    }

    /// The refresh token from the request's cookies: `Ok(None)` when there
    /// is no refresh cookie, an error (with
    /// [`OidcError::is_session_over`]) when there is one that does not open.
    pub fn refresh_token_from_cookies(
        &self,
        cluster: &str,
        headers: &http::HeaderMap,
    ) -> Result<Option<Secret>, OidcError> {
        match cookie_value(headers, &refresh_cookie_name(cluster)) {
            None | Some("") => Ok(None),
            Some(sealed) => self.open_refresh_token(cluster, sealed).map(Some),
        }
    }
}

/// The `Set-Cookie` value that deletes `cluster`'s refresh cookie (logout,
/// session over).
pub fn refresh_clear_cookie(cluster: &str, base_url: &str, secure: bool) -> http::HeaderValue {
    header(format!(
        "{}=; Path={}; Max-Age=0; HttpOnly; SameSite=Strict{}",
        refresh_cookie_name(cluster),
        cluster_cookie_path(base_url, cluster),
        if secure { "; Secure" } else { "" }
    ))
    .unwrap_or_else(|_| http::HeaderValue::from_static(""))
}

fn header(text: String) -> Result<http::HeaderValue, OidcError> {
    // Name: sanitised; value: base64url; path: percent-encoded. A failure
    // here is a bug, reported rather than panicking.
    http::HeaderValue::from_str(&text)
        .map_err(|_| OidcError::setting("refresh cookie", "the cookie is not a valid header"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SessionKey;
    use headlamp_core::FakeClock;

    #[test]
    fn names_paths_and_round_trip() {
        assert_eq!(sanitize_cluster_name("my.cluster/prod 1"), "myclusterprod1");
        assert_eq!(sanitize_cluster_name(&"a".repeat(80)).len(), 50);
        assert_eq!(cluster_cookie_path("", "prod"), "/clusters/prod");
        assert_eq!(
            cluster_cookie_path("/hl/", "a b;c"),
            "/hl/clusters/a%20b%3Bc"
        );

        let clock = FakeClock::at(1_000);
        let reg = OidcRegistry::new(SessionKey::from_material(&[3; 32]).unwrap(), clock.clone());
        let set = reg
            .refresh_set_cookie(
                "prod",
                &Secret::new("rt"),
                "/hl",
                true,
                Duration::from_secs(60),
            )
            .unwrap();
        let set = set.to_str().unwrap();
        assert!(set.starts_with("headlamp-refresh-prod="));
        assert!(
            set.ends_with(
                "; Path=/hl/clusters/prod; Max-Age=60; HttpOnly; SameSite=Strict; Secure"
            )
        );
        let pair = set.split(';').next().unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::COOKIE, pair.parse().unwrap());
        assert_eq!(
            reg.refresh_token_from_cookies("prod", &headers).unwrap(),
            Some(Secret::new("rt"))
        );
        assert_eq!(
            reg.refresh_token_from_cookies("dev", &headers).unwrap(),
            None
        );
        clock.advance(60);
        assert!(
            reg.refresh_token_from_cookies("prod", &headers)
                .unwrap_err()
                .is_session_over()
        );
        assert_eq!(
            refresh_clear_cookie("prod", "", false),
            "headlamp-refresh-prod=; Path=/clusters/prod; Max-Age=0; HttpOnly; SameSite=Strict"
        );
    }
}
