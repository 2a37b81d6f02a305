//! Response helpers: the one place an error becomes an HTTP response.
//!
//! API errors are Kubernetes `Status` JSON (what kubectl and the Headlamp
//! frontend know how to show); plain text is only for `/healthz`-style
//! probes.

use bytes::Bytes;
use headlamp_core::Status;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};

/// Error type of response bodies: a proxied stream can fail mid-way.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every response body: fixed bytes today, streamed upstream bodies later.
pub(crate) type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A body of fixed bytes.
pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A `text/plain` response that must not be cached (probes, short notes).
pub(crate) fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A Kubernetes `Status` error response.
pub(crate) fn status(status: &Status) -> Response<Body> {
    status
        .to_response::<Full<Bytes>>()
        .map(|body| body.map_err(|never| match never {}).boxed_unsync())
}

/// 404 for a path no route serves (the path is the caller's own input, safe
/// to echo; the query is not included).
pub(crate) fn not_found(path: &str) -> Response<Body> {
    status(&Status::not_found(format!("no route for {path}")))
}

/// 405 for a known path with the wrong method.
pub(crate) fn method_not_allowed(
    method: &http::Method,
    path: &str,
    allowed: &'static str,
) -> Response<Body> {
    let mut response = status(&Status::failure(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!("{method} is not allowed on {path}; use {allowed}"),
    ));
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allowed));
    response
}

/// A JSON response (`application/json`). A value that cannot be serialised
/// (never for our types) becomes a 500 `Status`.
pub(crate) fn json<T: serde::Serialize>(code: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(bytes) => {
            let mut response = Response::new(full(bytes));
            *response.status_mut() = code;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(err) => status(&Status::internal_error(format!(
            "cannot serialise the response: {err}"
        ))),
    }
}

/// A redirect to `location` (a URL we built: the IdP's authorization
/// endpoint or our own `/auth`).
pub(crate) fn redirect(code: StatusCode, location: &str) -> Response<Body> {
    match HeaderValue::from_str(location) {
        Ok(value) => {
            let mut response = Response::new(full(Bytes::new()));
            *response.status_mut() = code;
            response.headers_mut().insert(header::LOCATION, value);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(_) => status(&Status::internal_error(
            "the redirect target is not a valid header value",
        )),
    }
}

/// Adds `Set-Cookie` headers.
pub(crate) fn append_cookies(
    response: &mut Response<Body>,
    cookies: impl IntoIterator<Item = HeaderValue>,
) {
    for cookie in cookies {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
}

/// A short, self-contained HTML page for a person in a browser window (the
/// sign-in popup): a title and a message, both HTML-escaped, no scripts,
/// no external resources.
pub(crate) fn page(code: StatusCode, title: &str, message: &str) -> Response<Body> {
    let title = html_escape(title);
    let message = html_escape(message);
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;\
         padding:0 1rem;line-height:1.5}}h1{{font-size:1.4rem}}</style></head>\
         <body><h1 id=\"error-title\">{title}</h1><p id=\"error-message\">{message}</p>\
         <p>You can close this window and try again.</p></body></html>\n"
    );
    let mut response = Response::new(full(html));
    *response.status_mut() = code;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Escapes text for an HTML attribute value or element content.
pub(crate) fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn pages_escape_their_text() {
        let response = page(StatusCode::FORBIDDEN, "No <b>", "a \"quote\" & <script>");
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(body.contains("No &lt;b&gt;"), "{body}");
        assert!(
            body.contains("a &quot;quote&quot; &amp; &lt;script&gt;"),
            "{body}"
        );
        assert!(!body.contains("<script>"));
    }
}
