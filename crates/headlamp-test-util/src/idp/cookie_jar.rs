//! A minimal cookie jar after RFC 6265 section 5, enough to carry the IdP's
//! interaction cookies and `headlamp-server`'s login-state and token cookies
//! the way a browser would.
//!
//! Kept: host-only vs `Domain` cookies (5.3 steps 5-6), default path and path
//! matching (5.1.4), `Max-Age` over `Expires` (5.3 step 3), deletion by a past
//! expiry, `Secure` only over https, most specific path first (5.4 step 2).
//! Left out: public-suffix checks (every peer is 127.0.0.1) and `SameSite`
//! (on loopback every request is same-site; ports do not make a site).

use std::time::{Duration, SystemTime};

use url::Url;

#[derive(Debug, Clone)]
struct StoredCookie {
    name: String,
    value: String,
    /// Host (host-only) or domain (with `Domain`) the cookie belongs to.
    domain: String,
    host_only: bool,
    path: String,
    secure: bool,
    http_only: bool,
    expires: Option<SystemTime>,
}

/// Cookies received so far, sent back on matching requests.
#[derive(Debug, Clone, Default)]
pub struct CookieJar {
    cookies: Vec<StoredCookie>,
}

impl CookieJar {
    /// An empty jar.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores one `Set-Cookie` header value received from `url`.
    /// Malformed headers and cookies for another domain are ignored, as
    /// browsers ignore them (RFC 6265 5.3 step 1, step 6).
    pub fn store(&mut self, url: &Url, set_cookie: &str) {
        let Ok(parsed) = cookie::Cookie::parse(set_cookie.to_owned()) else {
            return;
        };
        let Some(host) = url.host_str() else { return };
        let host = host.to_ascii_lowercase();

        let (domain, host_only) = match parsed.domain() {
            Some(domain) if !domain.is_empty() => {
                let domain = domain.trim_start_matches('.').to_ascii_lowercase();
                if !domain_matches(&host, &domain) {
                    return;
                }
                (domain, false)
            }
            _ => (host, true),
        };
        let path = match parsed.path() {
            Some(path) if path.starts_with('/') => path.to_owned(),
            _ => default_path(url.path()),
        };
        let now = SystemTime::now();
        let expires = match (parsed.max_age(), parsed.expires_datetime()) {
            (Some(max_age), _) => {
                let seconds = max_age.whole_seconds();
                Some(if seconds <= 0 {
                    SystemTime::UNIX_EPOCH
                } else {
                    now + Duration::from_secs(seconds.unsigned_abs())
                })
            }
            (None, Some(at)) => Some(SystemTime::from(at)),
            (None, None) => None,
        };

        self.cookies
            .retain(|c| !(c.name == parsed.name() && c.domain == domain && c.path == path));
        if expires.is_some_and(|at| at <= now) {
            return; // An expiry in the past deletes the cookie (5.3 step 11).
        }
        self.cookies.push(StoredCookie {
            name: parsed.name().to_owned(),
            value: parsed.value().to_owned(),
            domain,
            host_only,
            path,
            secure: parsed.secure().unwrap_or(false),
            http_only: parsed.http_only().unwrap_or(false),
            expires,
        });
    }

    /// The `Cookie` header value to send to `url`, if any cookie matches.
    pub fn header_for(&self, url: &Url) -> Option<String> {
        let mut matching = self.matching(url);
        // Longer paths first (RFC 6265 5.4 step 2); stable for equal lengths.
        matching.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        if matching.is_empty() {
            return None;
        }
        Some(
            matching
                .iter()
                .map(|c| format!("{}={}", c.name, c.value))
                .collect::<Vec<_>>()
                .join("; "),
        )
    }

    /// The value of the cookie `name` that would be sent to `url`.
    pub fn get(&self, url: &Url, name: &str) -> Option<String> {
        self.matching(url)
            .into_iter()
            .find(|c| c.name == name)
            .map(|c| c.value.clone())
    }

    /// Names of every live cookie for `host`, any path (for assertions such
    /// as "the token cookie was cleared").
    pub fn names_for_host(&self, host: &str) -> Vec<String> {
        let now = SystemTime::now();
        self.cookies
            .iter()
            .filter(|c| c.expires.is_none_or(|at| at > now))
            .filter(|c| domain_matches(host, &c.domain))
            .map(|c| c.name.clone())
            .collect()
    }

    /// Whether the cookie `name` for `url` was set `HttpOnly`.
    pub fn is_http_only(&self, url: &Url, name: &str) -> Option<bool> {
        self.matching(url)
            .into_iter()
            .find(|c| c.name == name)
            .map(|c| c.http_only)
    }

    /// Forgets every cookie (a fresh browser profile).
    pub fn clear(&mut self) {
        self.cookies.clear();
    }

    fn matching(&self, url: &Url) -> Vec<&StoredCookie> {
        let Some(host) = url.host_str() else {
            return Vec::new();
        };
        let host = host.to_ascii_lowercase();
        let https = url.scheme() == "https";
        let now = SystemTime::now();
        self.cookies
            .iter()
            .filter(|c| c.expires.is_none_or(|at| at > now))
            .filter(|c| {
                if c.host_only {
                    c.domain == host
                } else {
                    domain_matches(&host, &c.domain)
                }
            })
            .filter(|c| path_matches(url.path(), &c.path))
            .filter(|c| https || !c.secure)
            .collect()
    }
}

/// RFC 6265 5.1.3: identical, or a suffix after a dot (never for IP addresses).
fn domain_matches(host: &str, domain: &str) -> bool {
    if host == domain {
        return true;
    }
    host.parse::<std::net::IpAddr>().is_err()
        && host.ends_with(domain)
        && host[..host.len() - domain.len()].ends_with('.')
}

/// RFC 6265 5.1.4 default-path: the request path up to, not including, its
/// last `/`; `/` when that leaves nothing.
fn default_path(request_path: &str) -> String {
    match request_path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(i) => request_path[..i].to_owned(),
    }
}

/// RFC 6265 5.1.4 path-match.
fn path_matches(request_path: &str, cookie_path: &str) -> bool {
    request_path == cookie_path
        || (request_path.starts_with(cookie_path)
            && (cookie_path.ends_with('/') || request_path[cookie_path.len()..].starts_with('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn path_scoped_cookies_go_only_below_their_path() {
        let mut jar = CookieJar::new();
        let origin = url("http://127.0.0.1:5556/auth");
        jar.store(&origin, "_interaction=abc; path=/interaction/abc; httponly");
        jar.store(&origin, "top=1; path=/");
        assert_eq!(
            jar.header_for(&url("http://127.0.0.1:5556/interaction/abc/login")),
            Some("_interaction=abc; top=1".to_owned())
        );
        assert_eq!(
            jar.header_for(&url("http://127.0.0.1:5556/interaction/abcdef")),
            Some("top=1".to_owned())
        );
        assert_eq!(
            jar.is_http_only(&url("http://127.0.0.1:1/interaction/abc"), "_interaction"),
            Some(true)
        );
    }

    #[test]
    fn cookies_ignore_the_port_like_browsers_do() {
        let mut jar = CookieJar::new();
        jar.store(&url("http://127.0.0.1:4466/oidc"), "state=s; Path=/");
        assert_eq!(
            jar.get(&url("http://127.0.0.1:9999/"), "state"),
            Some("s".to_owned())
        );
        assert_eq!(jar.get(&url("http://localhost:4466/"), "state"), None);
    }

    #[test]
    fn max_age_zero_or_past_expiry_deletes_and_replacement_overwrites() {
        let mut jar = CookieJar::new();
        let u = url("http://127.0.0.1/clusters/a/x");
        jar.store(&u, "t=1; Path=/clusters/a");
        jar.store(&u, "t=2; Path=/clusters/a");
        assert_eq!(jar.get(&u, "t"), Some("2".to_owned()));
        jar.store(&u, "t=; Path=/clusters/a; Max-Age=0");
        assert_eq!(jar.get(&u, "t"), None);
        jar.store(&u, "u=1; Path=/");
        jar.store(&u, "u=1; Path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT");
        assert!(jar.names_for_host("127.0.0.1").is_empty());
    }

    #[test]
    fn default_path_is_the_request_directory() {
        let mut jar = CookieJar::new();
        jar.store(&url("http://127.0.0.1/a/b/c"), "d=1");
        assert_eq!(
            jar.get(&url("http://127.0.0.1/a/b/other"), "d"),
            Some("1".to_owned())
        );
        assert_eq!(jar.get(&url("http://127.0.0.1/a/other"), "d"), None);
    }

    #[test]
    fn secure_cookies_are_not_sent_over_plain_http() {
        let mut jar = CookieJar::new();
        jar.store(&url("https://127.0.0.1/"), "s=1; Secure; Path=/");
        assert_eq!(jar.get(&url("http://127.0.0.1/"), "s"), None);
        assert_eq!(
            jar.get(&url("https://127.0.0.1/"), "s"),
            Some("1".to_owned())
        );
    }

    #[test]
    fn a_foreign_domain_attribute_is_rejected() {
        let mut jar = CookieJar::new();
        jar.store(&url("http://127.0.0.1/"), "x=1; Domain=example.com");
        assert!(jar.names_for_host("127.0.0.1").is_empty());
        assert!(jar.names_for_host("example.com").is_empty());
    }
}
