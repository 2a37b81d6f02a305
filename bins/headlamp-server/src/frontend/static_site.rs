//! `-html-static-dir`: a built Headlamp frontend.
//!
//! Headlamp (backend/cmd/headlamp.go, `baseURLReplace`) rewrites
//! `index.html` inside the directory at start; we do the same three
//! replacements once, in memory, so the directory can be a read-only volume
//! (headlamp-compat.md part B). Every other file is read from disk when
//! asked for, so a redeployed directory is served without a restart (only
//! `index.html` needs one).
//!
//! Unknown paths get `index.html` (the single-page app routes `/auth`,
//! `/c/<cluster>/...`, `/login` itself), except below `assets/`: that is
//! where Vite puts the build's own files, so a missing one is a real 404
//! (an outdated page asking for a chunk of the previous release) rather than
//! HTML a browser would try to run as a script.
//!
//! Headlamp's build writes a brotli copy beside each compressible file
//! (`frontend/scripts/precompress-build.ts`: `index-<hash>.js.br`); like
//! Headlamp (`backend/pkg/spa`), that copy is sent with
//! `Content-Encoding: br` to browsers that accept brotli. `index.html` is
//! never served from a sidecar (it is rewritten).
//!
//! Paths cannot leave the directory: `..` segments are refused, and a file
//! reached through a symbolic link must resolve inside the directory.

use std::fs::Metadata;
use std::io;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use bytes::Bytes;
use headlamp_core::Status;
use http::{HeaderValue, Response};
use tracing::warn;

use super::{Asset, CachePolicy, content_etag, content_type, etag_value};
use crate::respond::{self, Body};
use crate::server::ServerError;

/// The directory Vite writes content-hashed build output to.
const HASHED_ASSETS_DIR: &str = "assets";

/// A built frontend directory, with its `index.html` already rewritten.
#[derive(Debug)]
pub(crate) struct StaticSite {
    /// The directory, canonical (symbolic links resolved), so "is this file
    /// inside" is a prefix check on canonical paths.
    root: PathBuf,
    /// `index.html` after the base-URL rewrites.
    index: Asset,
}

impl StaticSite {
    /// Reads `dir/index.html` and rewrites it for `base_url`.
    pub(crate) fn load(dir: &Path, base_url: &str) -> Result<Self, ServerError> {
        let error = |reason: String| ServerError::StaticDir {
            path: dir.display().to_string(),
            reason,
        };
        let root = std::fs::canonicalize(dir).map_err(|err| error(err.to_string()))?;
        let index_path = root.join("index.html");
        let original = std::fs::read(&index_path).map_err(|err| {
            error(format!(
                "cannot read {}: {err}; point -html-static-dir at a built Headlamp frontend \
                 (the directory holding index.html)",
                index_path.display()
            ))
        })?;
        let body = Bytes::from(rewrite_index(&original, base_url));
        Ok(Self {
            root,
            index: Asset {
                etag: content_etag(&body),
                body,
                content_type: content_type::for_file_name("index.html"),
                cache: CachePolicy::Revalidate,
                csp: None,
                encoding: None,
                vary_encoding: false,
            },
        })
    }

    /// Serves `path` (below the base URL); `brotli` when the browser
    /// accepts it ([`accepts_brotli`]).
    pub(crate) async fn serve(
        &self,
        path: &str,
        full_path: &str,
        if_none_match: Option<&HeaderValue>,
        brotli: bool,
    ) -> Response<Body> {
        let relative = match relative_path(path) {
            Ok(relative) => relative,
            Err(reason) => {
                return respond::status(&Status::bad_request(format!(
                    "invalid path {full_path}: {reason}"
                )));
            }
        };
        if relative.as_os_str().is_empty() || relative == Path::new("index.html") {
            return self.index.respond(if_none_match);
        }
        match self.read(&relative, brotli).await {
            Ok(Lookup::File(asset)) => asset.respond(if_none_match),
            Ok(Lookup::Index) => self.index.respond(if_none_match),
            Ok(Lookup::Missing) if relative.starts_with(HASHED_ASSETS_DIR) => {
                respond::not_found(full_path)
            }
            Ok(Lookup::Missing) => self.index.respond(if_none_match),
            Ok(Lookup::Outside) => {
                warn!(
                    path = %full_path,
                    "refused a file of -html-static-dir that resolves outside the directory"
                );
                respond::not_found(full_path)
            }
            Err(err) => {
                warn!(path = %full_path, error = %err, "cannot read a file of -html-static-dir");
                respond::status(&Status::internal_error(format!(
                    "cannot read {full_path} from -html-static-dir: {}",
                    err.kind()
                )))
            }
        }
    }

    async fn read(&self, relative: &Path, brotli: bool) -> io::Result<Lookup> {
        let real = match tokio::fs::canonicalize(self.root.join(relative)).await {
            Ok(real) => real,
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(Lookup::Missing);
            }
            Err(err) => return Err(err),
        };
        if !real.starts_with(&self.root) {
            return Ok(Lookup::Outside);
        }
        let metadata = tokio::fs::metadata(&real).await?;
        // A directory is a page route too (Headlamp serves index.html), and
        // index.html by another name is still only served rewritten.
        if metadata.is_dir() || real == self.root.join("index.html") {
            return Ok(Lookup::Index);
        }
        let (body, metadata, encoding) = match self.brotli_sidecar(&real, brotli).await {
            Some((body, sidecar)) => (body, sidecar, Some(HeaderValue::from_static("br"))),
            None => (Bytes::from(tokio::fs::read(&real).await?), metadata, None),
        };
        let modified = metadata
            .modified()
            .ok()
            .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
            .unwrap_or_default();
        let file_name = real
            .file_name()
            .map(|name| name.to_string_lossy())
            .unwrap_or_default();
        let cache = if relative.starts_with(HASHED_ASSETS_DIR) && is_content_hashed(&file_name) {
            CachePolicy::Immutable
        } else {
            CachePolicy::Revalidate
        };
        Ok(Lookup::File(Asset {
            // Size and modification time, as nginx and Go's FileServer
            // validate static files: no need to hash every byte per request.
            // The encoding is part of the validator: the two bodies differ
            // (RFC 9110 8.8.3.3).
            etag: etag_value(&format!(
                "\"{:x}-{:x}.{:x}{}\"",
                body.len(),
                modified.as_secs(),
                modified.subsec_nanos(),
                if encoding.is_some() { "-br" } else { "" }
            )),
            content_type: content_type::for_file_name(&file_name),
            body,
            cache,
            csp: None,
            encoding,
            vary_encoding: true,
        }))
    }

    /// The `<file>.br` beside `real` with its metadata, when the browser
    /// accepts brotli and it is a regular file inside the directory; any
    /// problem with it means serving the original instead.
    async fn brotli_sidecar(&self, real: &Path, brotli: bool) -> Option<(Bytes, Metadata)> {
        if !brotli {
            return None;
        }
        let mut name = real.file_name()?.to_os_string();
        name.push(".br");
        let sidecar = tokio::fs::canonicalize(real.with_file_name(name))
            .await
            .ok()?;
        if !sidecar.starts_with(&self.root) {
            return None;
        }
        let metadata = tokio::fs::metadata(&sidecar).await.ok()?;
        if !metadata.is_file() {
            return None;
        }
        let body = tokio::fs::read(&sidecar).await.ok()?;
        Some((Bytes::from(body), metadata))
    }
}

/// Whether `Accept-Encoding` allows brotli (RFC 9110 12.5.3): `br` with a
/// non-zero weight, or `*` with a non-zero weight when `br` is not refused
/// by name (`br;q=0`). No header means identity only.
pub(crate) fn accepts_brotli(accept_encoding: Option<&HeaderValue>) -> bool {
    let Some(value) = accept_encoding.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mut wildcard = false;
    for item in value.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or_default().trim();
        // qvalue = "0" [ "." 0*3DIGIT ] / "1" ...: zero when only 0s and a dot.
        let refused = parts.any(|param| {
            let param = param.trim();
            param
                .strip_prefix("q=")
                .or_else(|| param.strip_prefix("Q="))
                .is_some_and(|q| !q.is_empty() && q.bytes().all(|b| b == b'0' || b == b'.'))
        });
        if coding.eq_ignore_ascii_case("br") {
            return !refused;
        }
        if coding == "*" && !refused {
            wildcard = true;
        }
    }
    wildcard
}

/// What a path found in the directory.
#[derive(Debug)]
enum Lookup {
    /// A regular file inside the directory.
    File(Asset),
    /// Answer with `index.html` (a directory, or index.html itself).
    Index,
    /// Nothing there.
    Missing,
    /// Something there, but it resolves outside the directory.
    Outside,
}

/// Headlamp's three `index.html` replacements (`makeBaseURLReplacements`
/// in backend/cmd/headlamp.go), applied in its order to the original bytes:
///
/// 1. `headlampBaseUrl = __baseUrl__` -> `headlampBaseUrl = '<base>'`
///    (`'/'` when there is no base URL), what the app routes under;
/// 2. every `./` -> `<base>/`: the build references its scripts and styles
///    relative to the page, which breaks on any deep link
///    (`/c/main/pods` would load `/c/main/assets/...`);
/// 3. every `url(` -> `url(<base>/`, for CSS in the page.
///
/// Byte for byte like Headlamp, including its quirks (a `url(./x)` becomes
/// `url(<base>//x)`), so a frontend built for Headlamp behaves the same.
pub(crate) fn rewrite_index(original: &[u8], base_url: &str) -> Vec<u8> {
    let headlamp_base = if base_url.is_empty() { "/" } else { base_url };
    let step1 = replace_all(
        original,
        b"headlampBaseUrl = __baseUrl__",
        format!("headlampBaseUrl = '{headlamp_base}'").as_bytes(),
    );
    let step2 = replace_all(&step1, b"./", format!("{base_url}/").as_bytes());
    replace_all(&step2, b"url(", format!("url({base_url}/").as_bytes())
}

/// `haystack` with every non-overlapping `needle` (left to right) replaced.
fn replace_all(haystack: &[u8], needle: &[u8], replacement: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = rest.windows(needle.len()).position(|w| w == needle) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(replacement);
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// The request path (below the base URL) as a relative path inside the
/// directory, percent-decoded (RFC 3986 2.1). Empty and `.` segments are
/// dropped; `..`, backslashes and NUL are refused rather than cleaned, since
/// browsers resolve dot segments before sending (RFC 3986 5.2.4) and only a
/// crafted request still has them.
fn relative_path(path: &str) -> Result<PathBuf, &'static str> {
    let decoded = percent_decode(path)?;
    let mut relative = PathBuf::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Err("'..' path segments are not allowed"),
            s if s.contains(['\\', '\0']) => {
                return Err("backslashes and NUL characters are not allowed");
            }
            s => relative.push(s),
        }
    }
    Ok(relative)
}

fn percent_decode(path: &str) -> Result<String, &'static str> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("a '%' must be followed by two hex digits")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the decoded path is not UTF-8")
}

/// Whether a file name carries a content hash the way Vite and Rollup name
/// chunks (`index-BjQ3x9aF.js`: the part of the stem after its last `-`,
/// at least 8 letters, digits or `_`).
fn is_content_hashed(file_name: &str) -> bool {
    let stem = file_name.split('.').next().unwrap_or_default();
    stem.rsplit_once('-').is_some_and(|(_, hash)| {
        hash.len() >= 8 && hash.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{StatusCode, header};
    use http_body_util::BodyExt;

    /// What a Headlamp build's index.html holds where the rewrites apply
    /// (Vite output with `base: './'`, frontend/index.html's script).
    const BUILT_INDEX: &str = r#"<!DOCTYPE html>
<html lang="en"><head>
<link rel="icon" href="./favicon.ico" />
<script>
  __baseUrl__ = './<%= BASE_URL %>'.replace('%BASE_' + 'URL%', '').replace('<' + '%= BASE_URL %>', '');
  headlampBaseUrl = __baseUrl__;
</script>
<style>.splash { background: url(images/splash.png); }</style>
<script type="module" crossorigin src="./assets/index-BjQ3x9aF.js"></script>
<link rel="stylesheet" crossorigin href="./assets/index-Cq8Zt0Pe.css">
</head><body><div id="root"></div></body></html>
"#;

    fn site_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("index.html"), BUILT_INDEX).unwrap();
        std::fs::create_dir_all(root.join("assets")).unwrap();
        std::fs::write(root.join("assets/index-BjQ3x9aF.js"), "console.log('app');").unwrap();
        std::fs::write(root.join("assets/index-Cq8Zt0Pe.css"), "body{}").unwrap();
        std::fs::write(root.join("assets/logo.svg"), "<svg/>").unwrap();
        std::fs::write(root.join("manifest.json"), "{}").unwrap();
        std::fs::write(root.join("file with space.txt"), "spaced").unwrap();
        dir
    }

    async fn get(site: &StaticSite, path: &str) -> (StatusCode, http::HeaderMap, String) {
        let response = site.serve(path, path, None, false).await;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8(body.to_vec()).unwrap())
    }

    #[test]
    fn the_three_rewrites_under_a_base_url() {
        let out = String::from_utf8(rewrite_index(BUILT_INDEX.as_bytes(), "/headlamp")).unwrap();
        assert!(out.contains("headlampBaseUrl = '/headlamp';"), "{out}");
        assert!(out.contains(r#"href="/headlamp/favicon.ico""#), "{out}");
        assert!(
            out.contains(r#"src="/headlamp/assets/index-BjQ3x9aF.js""#),
            "{out}"
        );
        assert!(
            out.contains(r#"href="/headlamp/assets/index-Cq8Zt0Pe.css""#),
            "{out}"
        );
        assert!(out.contains("url(/headlamp/images/splash.png)"), "{out}");
        assert!(
            out.contains("__baseUrl__ = '/headlamp/<%= BASE_URL %>'"),
            "{out}"
        );
        assert!(!out.contains("./"), "{out}");
    }

    #[test]
    fn the_three_rewrites_without_a_base_url() {
        let out = String::from_utf8(rewrite_index(BUILT_INDEX.as_bytes(), "")).unwrap();
        assert!(out.contains("headlampBaseUrl = '/';"), "{out}");
        assert!(out.contains(r#"src="/assets/index-BjQ3x9aF.js""#), "{out}");
        assert!(out.contains("url(/images/splash.png)"), "{out}");
    }

    #[test]
    fn rewrites_match_headlamp_byte_for_byte() {
        // Go's bytes.ReplaceAll semantics: non-overlapping, left to right,
        // and the url( rewrite also applies after a ./ rewrite.
        assert_eq!(rewrite_index(b"a././b", "/h"), b"a/h//h/b");
        assert_eq!(rewrite_index(b"url(./x)", ""), b"url(//x)");
        assert_eq!(rewrite_index(b"nothing to do", "/h"), b"nothing to do");
        assert_eq!(replace_all(b"aaa", b"aa", b"b"), b"ba");
    }

    #[tokio::test]
    async fn serves_the_rewritten_index_and_never_the_file_on_disk() {
        let dir = site_dir();
        let site = StaticSite::load(dir.path(), "/headlamp").unwrap();
        for path in ["/", "/index.html", "//index.html", "/./index.html"] {
            let (status, headers, body) = get(&site, path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
            assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
            assert!(
                body.contains("headlampBaseUrl = '/headlamp'"),
                "{path}: {body}"
            );
        }
        // The directory is untouched (it may be read-only).
        assert_eq!(
            std::fs::read_to_string(dir.path().join("index.html")).unwrap(),
            BUILT_INDEX
        );
    }

    #[tokio::test]
    async fn unknown_paths_are_the_app_but_missing_build_files_are_404() {
        let dir = site_dir();
        let site = StaticSite::load(dir.path(), "").unwrap();
        for path in [
            "/auth",
            "/c/main/pods",
            "/login",
            "/c/main/pods/default/nginx.js",
            "/assets",
        ] {
            let (status, headers, body) = get(&site, path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(
                headers[header::CONTENT_TYPE],
                "text/html; charset=utf-8",
                "{path}"
            );
            assert!(body.contains("headlampBaseUrl = '/'"), "{path}");
        }
        let (status, _, body) = get(&site, "/assets/index-OLDHASH1.js").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("\"kind\":\"Status\""), "{body}");
    }

    #[tokio::test]
    async fn files_with_their_types_and_cache_policies() {
        let dir = site_dir();
        let site = StaticSite::load(dir.path(), "").unwrap();
        for (path, content_type, cache, body) in [
            (
                "/assets/index-BjQ3x9aF.js",
                "text/javascript; charset=utf-8",
                "public, max-age=31536000, immutable",
                "console.log('app');",
            ),
            (
                "/assets/index-Cq8Zt0Pe.css",
                "text/css; charset=utf-8",
                "public, max-age=31536000, immutable",
                "body{}",
            ),
            ("/assets/logo.svg", "image/svg+xml", "no-cache", "<svg/>"),
            ("/manifest.json", "application/json", "no-cache", "{}"),
            (
                "/file%20with%20space.txt",
                "text/plain; charset=utf-8",
                "no-cache",
                "spaced",
            ),
        ] {
            let (status, headers, got) = get(&site, path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(headers[header::CONTENT_TYPE], content_type, "{path}");
            assert_eq!(headers[header::CACHE_CONTROL], cache, "{path}");
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
            assert!(headers.contains_key(header::ETAG), "{path}");
            assert_eq!(got, body, "{path}");
        }
    }

    #[tokio::test]
    async fn a_current_copy_is_304() {
        let dir = site_dir();
        let site = StaticSite::load(dir.path(), "").unwrap();
        for path in ["/manifest.json", "/"] {
            let (_, headers, _) = get(&site, path).await;
            let etag = headers[header::ETAG].clone();
            let response = site.serve(path, path, Some(&etag), false).await;
            assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{path}");
        }
    }

    #[tokio::test]
    async fn paths_cannot_leave_the_directory() {
        let outer = tempfile::tempdir().unwrap();
        std::fs::write(outer.path().join("secret.txt"), "top secret").unwrap();
        let root = outer.path().join("site");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("index.html"), BUILT_INDEX).unwrap();
        std::os::unix::fs::symlink(outer.path().join("secret.txt"), root.join("link.txt")).unwrap();
        std::os::unix::fs::symlink(outer.path(), root.join("up")).unwrap();
        let site = StaticSite::load(&root, "").unwrap();

        for path in [
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/%2E%2E%2Fsecret.txt",
            "/assets/..%2f..%2fsecret.txt",
            "/..%5csecret.txt",
            "/a%00b",
            "/%zz",
            "/%ff",
        ] {
            let (status, _, body) = get(&site, path).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
            assert!(!body.contains("top secret"), "{path}");
        }
        for path in ["/link.txt", "/up/secret.txt", "/up"] {
            let (status, _, body) = get(&site, path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
            assert!(!body.contains("top secret"), "{path}");
        }
    }

    #[test]
    fn a_directory_without_index_html_is_a_startup_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = StaticSite::load(dir.path(), "").unwrap_err().to_string();
        assert!(err.contains("index.html"), "{err}");
        assert!(err.contains("-html-static-dir"), "{err}");
    }

    #[test]
    fn content_hashed_names() {
        assert!(is_content_hashed("index-BjQ3x9aF.js"));
        assert!(is_content_hashed("vendor-react-DxYz1234.js"));
        assert!(is_content_hashed("index-Cq8Zt0Pe.css"));
        assert!(!is_content_hashed("logo.svg"));
        assert!(!is_content_hashed("my-logo.svg"));
        assert!(!is_content_hashed("index-short.js"));
    }

    #[test]
    fn brotli_is_accepted_as_rfc_9110_weighs_it() {
        let accepts = |value: &'static str| accepts_brotli(Some(&HeaderValue::from_static(value)));
        assert!(accepts("gzip, deflate, br, zstd"));
        assert!(accepts("BR"));
        assert!(accepts("br;q=0.5"));
        assert!(accepts("*"));
        assert!(accepts("gzip, *;q=0.1"));
        assert!(!accepts("br;q=0"));
        assert!(!accepts("br; q=0.000"));
        assert!(!accepts("*, br;q=0"));
        assert!(!accepts("br;q=0, *"));
        assert!(!accepts("*;q=0"));
        assert!(!accepts("gzip, deflate"));
        assert!(!accepts(""));
        assert!(!accepts_brotli(None));
    }

    #[tokio::test]
    async fn brotli_sidecars_go_to_browsers_that_accept_them() {
        let dir = site_dir();
        let js = "assets/index-BjQ3x9aF.js";
        // Stand-in bytes: only the choice of file is under test.
        std::fs::write(dir.path().join(format!("{js}.br")), "BROTLI").unwrap();
        std::fs::write(dir.path().join("index.html.br"), "STALE").unwrap();
        let site = StaticSite::load(dir.path(), "").unwrap();
        let path = format!("/{js}");

        let response = site.serve(&path, &path, None, true).await;
        assert_eq!(response.headers()[header::CONTENT_ENCODING], "br");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert_eq!(response.headers()[header::VARY], "accept-encoding");
        let br_etag = response.headers()[header::ETAG].clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"BROTLI");

        let plain = site.serve(&path, &path, None, false).await;
        assert!(!plain.headers().contains_key(header::CONTENT_ENCODING));
        assert_eq!(plain.headers()[header::VARY], "accept-encoding");
        assert_ne!(plain.headers()[header::ETAG], br_etag);

        // No sidecar: the original, whatever the browser accepts.
        let css = site
            .serve("/assets/index-Cq8Zt0Pe.css", "/x", None, true)
            .await;
        assert!(!css.headers().contains_key(header::CONTENT_ENCODING));
        // index.html is rewritten, so a sidecar of it is never used.
        for page in ["/", "/index.html", "/auth"] {
            let response = site.serve(page, page, None, true).await;
            assert!(
                !response.headers().contains_key(header::CONTENT_ENCODING),
                "{page}"
            );
        }
    }
}
