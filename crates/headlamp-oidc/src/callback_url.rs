//! The `redirect_uri` of a sign-in, as Headlamp derives it.

use crate::OidcError;

/// The path of the callback below the base URL.
pub const CALLBACK_PATH: &str = "/oidc-callback";

/// The callback URL for a request, as Headlamp computes it
/// (`docs/headlamp-compat.md`, "GET /oidc"): `-oidc-callback-url` when set;
/// otherwise the scheme from `X-Forwarded-Proto` (first value), else
/// `https` on a TLS connection, else `http`; then
/// `{scheme}://{Host}{base_url}/oidc-callback`.
///
/// The `Host` header (or, for HTTP/2, the URI's authority) is
/// client-controlled; it only decides where the IdP sends the browser
/// back, and the IdP accepts registered redirect URIs only
/// ([RFC 6749 section 3.1.2.2](https://www.rfc-editor.org/rfc/rfc6749#section-3.1.2.2)),
/// so a forged host ends the login at the IdP. It is still checked to be a
/// bare `host[:port]`.
pub fn callback_url(
    configured: Option<&url::Url>,
    uri: &http::Uri,
    headers: &http::HeaderMap,
    tls: bool,
    base_url: &str,
) -> Result<url::Url, OidcError> {
    if let Some(url) = configured {
        return Ok(url.clone());
    }
    let forwarded = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_ascii_lowercase());
    let scheme = match forwarded.as_deref() {
        Some("https") => "https",
        Some("http") => "http",
        _ if tls => "https",
        _ => "http",
    };
    let host = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .ok_or_else(|| {
            OidcError::setting(
                "oidc-callback-url",
                "the request has no Host header to derive the callback URL from; set \
                 -oidc-callback-url",
            )
        })?;
    let bad_host = || {
        OidcError::setting(
            "oidc-callback-url",
            format!(
                "the request's Host {host:?} is not a valid host[:port]; set -oidc-callback-url"
            ),
        )
    };
    if host.is_empty() || host.contains(['/', '\\', '@', '?', '#']) {
        return Err(bad_host());
    }
    let base = base_url.trim_end_matches('/');
    let url = url::Url::parse(&format!("{scheme}://{host}{base}{CALLBACK_PATH}"))
        .map_err(|_| bad_host())?;
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn derives_like_headlamp() {
        let uri: http::Uri = "/oidc?cluster=a".parse().unwrap();
        let h = headers(&[("host", "headlamp.example:8443")]);
        assert_eq!(
            callback_url(None, &uri, &h, false, "").unwrap().as_str(),
            "http://headlamp.example:8443/oidc-callback"
        );
        assert_eq!(
            callback_url(None, &uri, &h, true, "/hl/").unwrap().as_str(),
            "https://headlamp.example:8443/hl/oidc-callback"
        );
        let h = headers(&[("host", "h.example"), ("x-forwarded-proto", "https, http")]);
        assert_eq!(
            callback_url(None, &uri, &h, false, "/hl").unwrap().as_str(),
            "https://h.example/hl/oidc-callback"
        );
        let configured = url::Url::parse("https://public.example/cb").unwrap();
        assert_eq!(
            callback_url(Some(&configured), &uri, &h, false, "/hl").unwrap(),
            configured
        );
        let h2: http::Uri = "https://h2.example/oidc".parse().unwrap();
        assert_eq!(
            callback_url(None, &h2, &http::HeaderMap::new(), true, "")
                .unwrap()
                .as_str(),
            "https://h2.example/oidc-callback"
        );
    }

    #[test]
    fn refuses_hosts_that_are_not_hosts() {
        let uri: http::Uri = "/oidc".parse().unwrap();
        for bad in ["evil.example/x", "a@b", "", "h?x"] {
            let h = headers(&[("host", bad)]);
            assert!(callback_url(None, &uri, &h, false, "").is_err(), "{bad}");
        }
        assert!(callback_url(None, &uri, &http::HeaderMap::new(), false, "").is_err());
    }
}
