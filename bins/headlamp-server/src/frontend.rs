//! The web frontend: every path no API route claims.
//!
//! - With `-html-static-dir`, a built Headlamp frontend ([`StaticSite`]):
//!   files from the directory, `index.html` rewritten for `-base-url` once
//!   at start (in memory; the directory may be read-only), and `index.html`
//!   for every unknown path, because `/auth`, `/c/<cluster>/...` and
//!   `/login` are routes of Headlamp's single-page app.
//! - Without it, the small built-in page ([`BuiltInPage`], `assets/`
//!   embedded in the binary): lists the clusters, signs in through the
//!   Headlamp popup flow, shows who you are and signs you out.
//!
//! Both answer `GET` and `HEAD` only, with a `Content-Type` from the file
//! name, `X-Content-Type-Options: nosniff`, an `ETag` and a `Cache-Control`
//! that makes browsers revalidate everything but content-hashed assets.

mod builtin;
mod content_type;
mod static_site;

use bytes::Bytes;
use headlamp_config::Config;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};

use self::builtin::BuiltInPage;
use self::static_site::StaticSite;
use crate::respond::{self, Body};
use crate::server::ServerError;

/// What serves the frontend, chosen at start from `-html-static-dir`.
#[derive(Debug)]
pub(crate) enum Frontend {
    /// The built-in sign-in page.
    BuiltIn(Box<BuiltInPage>),
    /// A built Headlamp frontend from `-html-static-dir`.
    Static(Box<StaticSite>),
}

impl Frontend {
    /// Prepares the frontend: reads and rewrites `index.html` of
    /// `-html-static-dir`, or fills the base URL into the built-in page.
    /// A static directory without a readable `index.html` is a startup
    /// error (Headlamp exits too), not a blank page at the first request.
    pub(crate) fn load(config: &Config) -> Result<Self, ServerError> {
        match &config.html_static_dir {
            Some(dir) => {
                StaticSite::load(dir, &config.base_url).map(|site| Self::Static(Box::new(site)))
            }
            None => Ok(Self::BuiltIn(Box::new(BuiltInPage::new(&config.base_url)))),
        }
    }

    /// Answers a request for `path` (below `-base-url`; `full_path` is the
    /// request's own path, for error messages). Never fails: a missing file
    /// or a hostile path is a Kubernetes `Status` response.
    pub(crate) async fn serve(
        &self,
        method: &Method,
        request_headers: &HeaderMap,
        path: &str,
        full_path: &str,
    ) -> Response<Body> {
        if !matches!(*method, Method::GET | Method::HEAD) {
            return match self {
                // Every path is a page of the single-page app.
                Self::Static(_) => respond::method_not_allowed(method, full_path, "GET, HEAD"),
                Self::BuiltIn(page) if page.has(path) => {
                    respond::method_not_allowed(method, full_path, "GET, HEAD")
                }
                Self::BuiltIn(_) => respond::not_found(full_path),
            };
        }
        let if_none_match = request_headers.get(header::IF_NONE_MATCH);
        match self {
            Self::BuiltIn(page) => match page.get(path) {
                Some(asset) => asset.respond(if_none_match),
                None => respond::not_found(full_path),
            },
            Self::Static(site) => {
                let brotli =
                    static_site::accepts_brotli(request_headers.get(header::ACCEPT_ENCODING));
                site.serve(path, full_path, if_none_match, brotli).await
            }
        }
    }
}

/// How long a browser may keep a response without asking again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CachePolicy {
    /// Store, but revalidate (with the `ETag`) before every use: pages, and
    /// files whose name does not change with their content. A new release
    /// or `-base-url` is seen at the next load.
    Revalidate,
    /// Content-hashed build output (Vite's `assets/index-<hash>.js`): the
    /// name changes whenever the content does, so it never needs asking
    /// again (RFC 8246 `immutable`).
    Immutable,
}

impl CachePolicy {
    fn header_value(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            // RFC 9111 5.2.2.4: may be stored, must be validated first.
            Self::Revalidate => "no-cache",
            Self::Immutable => "public, max-age=31536000, immutable",
        })
    }
}

/// One response-ready file: its bytes and the headers that describe them.
#[derive(Debug, Clone)]
pub(crate) struct Asset {
    body: Bytes,
    content_type: HeaderValue,
    etag: HeaderValue,
    cache: CachePolicy,
    /// `Content-Security-Policy` (the built-in page only: a real Headlamp
    /// build loads plugins and styles we do not know).
    csp: Option<HeaderValue>,
    /// `Content-Encoding` of `body` (a precompressed `.br` sidecar).
    encoding: Option<HeaderValue>,
    /// Whether the answer depends on `Accept-Encoding` (files that may have
    /// a sidecar), so shared caches keep one copy per encoding (RFC 9110
    /// 12.5.5).
    vary_encoding: bool,
}

impl Asset {
    /// A 200 with the asset, or a 304 when the browser's copy is current
    /// (RFC 9110 13.1.2, `If-None-Match`).
    fn respond(&self, if_none_match: Option<&HeaderValue>) -> Response<Body> {
        let fresh = if_none_match.is_some_and(|value| etag_matches(value, &self.etag));
        let mut response = if fresh {
            let mut response = Response::new(respond::full(Bytes::new()));
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            response
        } else {
            Response::new(respond::full(self.body.clone()))
        };
        let headers = response.headers_mut();
        if !fresh {
            headers.insert(header::CONTENT_TYPE, self.content_type.clone());
        }
        headers.insert(header::ETAG, self.etag.clone());
        headers.insert(header::CACHE_CONTROL, self.cache.header_value());
        // Browsers must not guess a type other than the one we send
        // (a user-named file served as HTML would be script on our origin).
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if let Some(csp) = &self.csp {
            headers.insert(header::CONTENT_SECURITY_POLICY, csp.clone());
        }
        if let Some(encoding) = &self.encoding {
            headers.insert(header::CONTENT_ENCODING, encoding.clone());
        }
        if self.vary_encoding {
            headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        response
    }
}

/// Whether an `If-None-Match` list names `etag`, by the weak comparison
/// RFC 9110 13.1.2 prescribes for it (`W/"x"` matches `"x"`); `*` matches
/// any current representation.
fn etag_matches(if_none_match: &HeaderValue, etag: &HeaderValue) -> bool {
    let Ok(list) = if_none_match.to_str() else {
        return false;
    };
    let Ok(ours) = etag.to_str() else {
        return false;
    };
    let ours = ours.trim_start_matches("W/");
    list.split(',')
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == ours)
}

/// A strong `ETag` for bytes held in memory: a hash of the content, so it
/// is the same in every replica running the same build and base URL.
fn content_etag(body: &[u8]) -> HeaderValue {
    use std::hash::Hasher as _;
    // SipHash with fixed keys: stable for the same input within a build,
    // which is all a validator needs (not a security boundary).
    let mut hasher = std::hash::DefaultHasher::new();
    hasher.write(body);
    etag_value(&format!("\"{:016x}-{:x}\"", hasher.finish(), body.len()))
}

/// An `ETag` header from text we formatted ourselves (hex digits, dashes
/// and quotes only).
fn etag_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::routes::{App, route};
    use headlamp_config::Environment;
    use http::Request;
    use http_body_util::BodyExt;

    async fn call(app: &Arc<App>, method: Method, uri: &str) -> (StatusCode, HeaderMap, String) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let response = route(Arc::clone(app), request).await;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn the_route_table_falls_back_to_the_built_in_page_under_the_base_url() {
        let config = Config::from_args(["-base-url=/headlamp"], &Environment::default()).unwrap();
        let app = Arc::new(App::build(Arc::new(config)).await.unwrap());
        for path in ["/headlamp", "/headlamp/", "/headlamp/auth?cluster=main"] {
            let (status, headers, body) = call(&app, Method::GET, path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
            assert!(
                headers[header::CONTENT_SECURITY_POLICY]
                    .to_str()
                    .unwrap()
                    .contains("frame-ancestors 'none'")
            );
            assert!(body.contains(r#"content="/headlamp">"#), "{path}: {body}");
        }
        let (status, headers, _) = call(&app, Method::HEAD, "/headlamp/assets/app.js").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        let (status, headers, _) = call(&app, Method::POST, "/headlamp/").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(headers[header::ALLOW], "GET, HEAD");
        for path in [
            "/headlamp/nope",
            "/assets/app.js",
            "/headlamp/assets/missing.js",
        ] {
            let (status, _, body) = call(&app, Method::GET, path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            assert!(body.contains("\"kind\":\"Status\""), "{path}: {body}");
        }
        let (status, _, _) = call(&app, Method::POST, "/headlamp/nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[test]
    fn if_none_match_uses_the_weak_comparison() {
        let etag = HeaderValue::from_static("\"abc\"");
        let matches = |value: &'static str| etag_matches(&HeaderValue::from_static(value), &etag);
        assert!(matches("\"abc\""));
        assert!(matches("W/\"abc\""));
        assert!(matches("\"x\", \"abc\""));
        assert!(matches("*"));
        assert!(!matches("\"abcd\""));
        assert!(!matches("abc"));
        assert!(!matches(""));
    }

    #[test]
    fn content_etags_follow_the_content() {
        assert_eq!(content_etag(b"one"), content_etag(b"one"));
        assert_ne!(content_etag(b"one"), content_etag(b"two"));
        let etag = content_etag(b"one");
        let text = etag.to_str().unwrap();
        assert!(text.starts_with('"') && text.ends_with('"'), "{text}");
    }

    #[test]
    fn a_fresh_copy_is_a_304_without_a_body_type() {
        let asset = Asset {
            body: Bytes::from_static(b"body"),
            content_type: HeaderValue::from_static("text/css; charset=utf-8"),
            etag: content_etag(b"body"),
            cache: CachePolicy::Revalidate,
            csp: None,
            encoding: None,
            vary_encoding: false,
        };
        let full = asset.respond(None);
        assert_eq!(full.status(), StatusCode::OK);
        assert_eq!(full.headers()[header::CACHE_CONTROL], "no-cache");
        assert_eq!(full.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let etag = full.headers()[header::ETAG].clone();
        let not_modified = asset.respond(Some(&etag));
        assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(not_modified.headers()[header::ETAG], etag);
        assert!(!not_modified.headers().contains_key(header::CONTENT_TYPE));
        let stale = asset.respond(Some(&HeaderValue::from_static("\"old\"")));
        assert_eq!(stale.status(), StatusCode::OK);
    }
}
