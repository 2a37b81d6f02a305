//! The route table: the one place that says which request goes where.
//!
//! Every route is mounted under `-base-url` (Headlamp serves its whole API
//! below the base URL, `backend/cmd/headlamp.go`). Add a route by adding a
//! match arm in [`route`] and a handler function (or a module for anything
//! bigger); shared state goes into [`App`].

use std::sync::Arc;

use headlamp_config::Config;
use http::{Method, Request, Response, StatusCode};

use crate::frontend::Frontend;
use crate::respond::{self, Body};
use crate::server::ServerError;

/// What every handler may use, built once at start and shared.
#[derive(Debug)]
pub(crate) struct App {
    /// The validated configuration.
    pub(crate) config: Arc<Config>,
    /// The web frontend: `-html-static-dir` or the built-in page.
    pub(crate) frontend: Frontend,
}

impl App {
    pub(crate) fn new(config: Arc<Config>) -> Result<Self, ServerError> {
        let frontend = Frontend::load(&config)?;
        Ok(Self { config, frontend })
    }
}

/// Answers one request. Never fails: every error is a response.
pub(crate) async fn route<B>(app: Arc<App>, request: Request<B>) -> Response<Body> {
    let full_path = request.uri().path();
    let Some(path) = strip_base_url(full_path, &app.config.base_url) else {
        return respond::not_found(full_path);
    };
    match path {
        // Liveness: the process accepts and answers requests. Readiness
        // (IdP discovery, clusters) belongs on /readyz.
        "/healthz" => match *request.method() {
            Method::GET | Method::HEAD => healthz(),
            ref other => respond::method_not_allowed(other, full_path, "GET, HEAD"),
        },
        // Everything else is the web frontend (pages, their files, and the
        // single-page app's own routes such as /auth): keep this arm last.
        _ => {
            app.frontend
                .serve(request.method(), request.headers(), path, full_path)
                .await
        }
    }
}

/// `GET /healthz`: 200 `ok`, the body kube-apiserver's own `/healthz` sends.
fn healthz() -> Response<Body> {
    respond::text(StatusCode::OK, "ok")
}

/// The path below `base_url`, or `None` when the request is outside it.
/// `base_url` is normalised by headlamp-config: empty or `/x` without a
/// trailing slash; `/x` itself maps to `/`.
fn strip_base_url<'a>(path: &'a str, base_url: &str) -> Option<&'a str> {
    if base_url.is_empty() {
        return Some(path);
    }
    match path.strip_prefix(base_url)? {
        "" => Some("/"),
        rest if rest.starts_with('/') => Some(rest),
        // "/headlampx" is not below "/headlamp".
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use headlamp_config::Environment;
    use http_body_util::BodyExt;

    fn app(args: &[&str]) -> Arc<App> {
        let config = Config::from_args(args.iter().copied(), &Environment::default()).unwrap();
        Arc::new(App::new(Arc::new(config)).unwrap())
    }

    async fn call(app: &Arc<App>, method: Method, uri: &str) -> (StatusCode, String) {
        let request = Request::builder().method(method).uri(uri).body(()).unwrap();
        let response = route(Arc::clone(app), request).await;
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn healthz_answers_ok() {
        let app = app(&[]);
        assert_eq!(
            call(&app, Method::GET, "/healthz").await,
            (StatusCode::OK, "ok".to_owned())
        );
        assert_eq!(call(&app, Method::HEAD, "/healthz").await.0, StatusCode::OK);
        let (status, body) = call(&app, Method::POST, "/healthz").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert!(body.contains("\"kind\":\"Status\""), "{body}");
    }

    #[tokio::test]
    async fn unknown_paths_are_status_404() {
        let app = app(&[]);
        let (status, body) = call(&app, Method::GET, "/nope?code=secret-code").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let status_json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(status_json["reason"], "NotFound");
        assert!(!body.contains("secret-code"), "queries are never echoed");
    }

    #[tokio::test]
    async fn routes_are_mounted_under_the_base_url() {
        let app = app(&["-base-url=/headlamp/"]);
        assert_eq!(
            call(&app, Method::GET, "/headlamp/healthz").await.0,
            StatusCode::OK
        );
        assert_eq!(
            call(&app, Method::GET, "/healthz").await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            call(&app, Method::GET, "/headlampx/healthz").await.0,
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn base_url_stripping() {
        assert_eq!(strip_base_url("/a", ""), Some("/a"));
        assert_eq!(strip_base_url("/h/a", "/h"), Some("/a"));
        assert_eq!(strip_base_url("/h", "/h"), Some("/"));
        assert_eq!(strip_base_url("/hx", "/h"), None);
        assert_eq!(strip_base_url("/a", "/h"), None);
    }
}
