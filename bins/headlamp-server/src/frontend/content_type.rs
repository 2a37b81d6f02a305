//! `Content-Type` from a file name, for what a built web frontend contains.
//!
//! A fixed table rather than the system's MIME database: the answer must not
//! depend on the host (a missing `/etc/mime.types` would serve JavaScript as
//! `application/octet-stream`, which browsers refuse to run as a module).
//! Text types carry `charset=utf-8`, what Vite and webpack emit.

use http::HeaderValue;

/// The `Content-Type` for `file_name`, by its extension (case-insensitive);
/// `application/octet-stream` when unknown.
pub(crate) fn for_file_name(file_name: &str) -> HeaderValue {
    let extension = file_name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    HeaderValue::from_static(match extension.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        // RFC 9239: text/javascript is the one JavaScript type.
        "js" | "mjs" | "cjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "txt" => "text/plain; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "eot" => "application/vnd.ms-fontobject",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_extensions_and_the_fallback() {
        for (name, expected) in [
            ("index.html", "text/html; charset=utf-8"),
            ("assets/index-3f9a.js", "text/javascript; charset=utf-8"),
            ("A.MJS", "text/javascript; charset=utf-8"),
            ("assets/index.css", "text/css; charset=utf-8"),
            ("manifest.json", "application/json"),
            ("favicon.ico", "image/x-icon"),
            ("logo.svg", "image/svg+xml"),
            ("fonts/x.woff2", "font/woff2"),
            ("LICENSE", "application/octet-stream"),
            ("archive.tar.gz", "application/octet-stream"),
        ] {
            assert_eq!(for_file_name(name), expected, "{name}");
        }
    }
}
