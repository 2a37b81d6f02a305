//! The built-in page: static HTML, JavaScript and CSS from `assets/`,
//! embedded in the binary (no build step, no external resources).
//!
//! | Path (below `-base-url`) | File |
//! | --- | --- |
//! | `/`, `/index.html` | `index.html`: the cluster list, sign in and out |
//! | `/auth` | `auth.html`: where the sign-in popup lands (Headlamp's `/auth` route) |
//! | `/assets/app.js`, `/assets/auth.js`, `/assets/app.css` | their scripts and style |
//!
//! The HTML files name the base URL as `{{BASE_URL}}`; it is filled in once
//! at start, HTML-escaped, so the pages work under any `-base-url` without
//! guessing it from `location`.

use bytes::Bytes;
use http::HeaderValue;

use super::{Asset, CachePolicy, content_etag, content_type};
use crate::respond::html_escape;

const INDEX_HTML: &str = include_str!("../../assets/index.html");
const AUTH_HTML: &str = include_str!("../../assets/auth.html");
const APP_JS: &str = include_str!("../../assets/app.js");
const AUTH_JS: &str = include_str!("../../assets/auth.js");
const APP_CSS: &str = include_str!("../../assets/app.css");

/// The placeholder the HTML files use for `-base-url`.
const BASE_URL_PLACEHOLDER: &str = "{{BASE_URL}}";

/// Scripts and styles only from our own origin and files, no inline code,
/// no framing (the popup flow never needs a frame; refusing them stops
/// click-jacking of the Sign out button). `connect-src 'self'` is all the
/// page fetches: `/config`, the SelfSubjectReview, `set-token`.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The built-in page, ready to serve.
#[derive(Debug)]
pub(crate) struct BuiltInPage {
    index: Asset,
    auth: Asset,
    app_js: Asset,
    auth_js: Asset,
    app_css: Asset,
}

impl BuiltInPage {
    /// Fills `base_url` (normalised: empty or `/x` without a trailing `/`)
    /// into the pages.
    pub(crate) fn new(base_url: &str) -> Self {
        let base = html_escape(base_url);
        let page = |text: &str, name: &str| asset(text.replace(BASE_URL_PLACEHOLDER, &base), name);
        Self {
            index: page(INDEX_HTML, "index.html"),
            auth: page(AUTH_HTML, "auth.html"),
            app_js: asset(APP_JS.to_owned(), "app.js"),
            auth_js: asset(AUTH_JS.to_owned(), "auth.js"),
            app_css: asset(APP_CSS.to_owned(), "app.css"),
        }
    }

    /// The file served at `path` (below the base URL), if any.
    pub(crate) fn get(&self, path: &str) -> Option<&Asset> {
        match path {
            "/" | "/index.html" => Some(&self.index),
            "/auth" => Some(&self.auth),
            "/assets/app.js" => Some(&self.app_js),
            "/assets/auth.js" => Some(&self.auth_js),
            "/assets/app.css" => Some(&self.app_css),
            _ => None,
        }
    }

    /// Whether `path` is one of the page's files.
    pub(crate) fn has(&self, path: &str) -> bool {
        self.get(path).is_some()
    }
}

fn asset(text: String, file_name: &str) -> Asset {
    let body = Bytes::from(text);
    Asset {
        etag: content_etag(&body),
        body,
        content_type: content_type::for_file_name(file_name),
        // Fixed names: a new release must be seen at the next load.
        cache: CachePolicy::Revalidate,
        csp: Some(HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
        encoding: None,
        vary_encoding: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(asset: &Asset) -> &str {
        std::str::from_utf8(&asset.body).unwrap()
    }

    #[test]
    fn pages_name_their_files_under_the_base_url() {
        let page = BuiltInPage::new("/headlamp");
        for html in [text(&page.index), text(&page.auth)] {
            assert!(!html.contains(BASE_URL_PLACEHOLDER), "{html}");
            assert!(
                html.contains(r#"<meta name="headlamp-base-url" content="/headlamp">"#),
                "{html}"
            );
            assert!(
                html.contains(r#"href="/headlamp/assets/app.css""#),
                "{html}"
            );
        }
        assert!(text(&page.index).contains(r#"src="/headlamp/assets/app.js""#));
        assert!(text(&page.auth).contains(r#"src="/headlamp/assets/auth.js""#));
        assert!(text(&page.auth).contains(r#"href="/headlamp/""#));

        let root = BuiltInPage::new("");
        assert!(text(&root.index).contains(r#"content="">"#));
        assert!(text(&root.index).contains(r#"src="/assets/app.js""#));
        assert!(text(&root.auth).contains(r#"href="/""#));
    }

    #[test]
    fn the_base_url_cannot_break_out_of_its_attribute() {
        let page = BuiltInPage::new(r#"/a"><script>alert(1)</script>"#);
        let html = text(&page.index);
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("/a&quot;&gt;&lt;script&gt;"), "{html}");
    }

    #[test]
    fn every_path_and_its_type() {
        let page = BuiltInPage::new("");
        for (path, content_type) in [
            ("/", "text/html; charset=utf-8"),
            ("/index.html", "text/html; charset=utf-8"),
            ("/auth", "text/html; charset=utf-8"),
            ("/assets/app.js", "text/javascript; charset=utf-8"),
            ("/assets/auth.js", "text/javascript; charset=utf-8"),
            ("/assets/app.css", "text/css; charset=utf-8"),
        ] {
            let asset = page
                .get(path)
                .unwrap_or_else(|| panic!("{path} not served"));
            assert_eq!(asset.content_type, content_type, "{path}");
            assert!(asset.csp.is_some(), "{path}");
        }
        for path in [
            "/auth/",
            "/assets/",
            "/assets/app.js/",
            "/x",
            "/oidc",
            "/config",
        ] {
            assert!(!page.has(path), "{path}");
        }
    }

    #[test]
    fn pages_use_no_external_resources_and_no_inline_script() {
        for source in [INDEX_HTML, AUTH_HTML, APP_JS, AUTH_JS, APP_CSS] {
            assert!(!source.contains("http://") && !source.contains("https://"));
        }
        for html in [INDEX_HTML, AUTH_HTML] {
            // Every <script> has a src: CSP script-src 'self' forbids inline code.
            for (at, _) in html.match_indices("<script") {
                let tag_end = html[at..].find('>').unwrap() + at;
                assert!(
                    html[at..tag_end].contains(" src="),
                    "inline script in {html}"
                );
            }
        }
    }

    #[test]
    fn the_sign_in_flow_matches_headlamp() {
        // The opener and the /auth page agree on Headlamp's storage key and
        // value (frontend/src/components/oidcauth/constants.ts, index.tsx).
        assert!(APP_JS.contains("const AUTH_STATUS_KEY = 'auth_status';"));
        assert!(AUTH_JS.contains("localStorage.setItem('auth_status', 'success')"));
        // The popup URL and the API calls are under the base URL.
        assert!(APP_JS.contains(
            "`${BASE}/oidc?dt=${encodeURIComponent(Date())}&cluster=${encodeURIComponent(name)}`"
        ));
        assert!(APP_JS.contains("`${BASE}/config`"));
        assert!(APP_JS.contains("'/apis/authentication.k8s.io/v1/selfsubjectreviews'"));
        assert!(APP_JS.contains("'/set-token'"));
        assert!(APP_JS.contains("JSON.stringify({ token: '' })"));
    }
}
