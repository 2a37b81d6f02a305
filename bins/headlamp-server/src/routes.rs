//! The route table: the one place that says which request goes where.
//!
//! Every route is mounted under `-base-url` (Headlamp serves its whole API
//! below the base URL, `backend/cmd/headlamp.go`):
//!
//! | Route | Handler |
//! | --- | --- |
//! | `GET /healthz`, `GET /readyz` | probes (here) |
//! | `GET /metrics` (with `-metrics-enabled`) | [`crate::metrics`] |
//! | `GET /config`, `GET /plugins` | what the frontend loads first (here) |
//! | `GET /oidc?cluster=`, `GET /oidc-callback` | [`crate::login`] |
//! | `POST /clusters/{name}/set-token`, `GET /clusters/{name}/me` | [`crate::session`] |
//! | `/clusters/{name}/{path...}` | the Kubernetes API proxy (headlamp-proxy), after the session check (refresh) |
//! | anything else | [`crate::frontend`] (built-in page or `-html-static-dir`) |
//!
//! Add a route by adding a match arm in [`dispatch`] and a handler function
//! (or a module for anything bigger); shared state goes into [`App`].

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use headlamp_core::Status;
use headlamp_proxy::{ProxyFailure, ResolvedToken};
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use serde_json::json;

use crate::cookies::{self, CookieScope};
use crate::respond::{self, Body, BoxError};
use crate::session::{self, Session};
pub(crate) use crate::state::App;
use crate::{login, state};

/// Facts about the connection a request came on, attached by the listener.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionInfo {
    /// The connection is TLS (`-tls-cert-path`).
    pub(crate) tls: bool,
}

/// The `route` label of a request, for metrics.
type RouteLabel = &'static str;

/// Answers one request. Never fails: every error is a response.
pub(crate) async fn route<B>(app: Arc<App>, request: Request<B>) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    let started = Instant::now();
    let (route, cluster, response) = dispatch(&app, request).await;
    app.metrics.request(
        route,
        cluster.as_deref().unwrap_or(""),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

async fn dispatch<B>(
    app: &Arc<App>,
    request: Request<B>,
) -> (RouteLabel, Option<String>, Response<Body>)
where
    B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    let full_path = request.uri().path().to_owned();
    let Some(path) = strip_base_url(&full_path, &app.config.base_url) else {
        return ("other", None, respond::not_found(&full_path));
    };
    let tls = request
        .extensions()
        .get::<ConnectionInfo>()
        .is_some_and(|c| c.tls);
    let method = request.method().clone();
    let get_only = |route: RouteLabel| {
        (
            "other",
            None,
            respond::method_not_allowed(&method, &full_path, route),
        )
    };
    match path {
        // Liveness: the process accepts and answers requests.
        "/healthz" => match method {
            Method::GET | Method::HEAD => ("healthz", None, healthz()),
            _ => get_only("GET, HEAD"),
        },
        "/readyz" => match method {
            Method::GET | Method::HEAD => ("readyz", None, readyz(app)),
            _ => get_only("GET, HEAD"),
        },
        "/metrics" if app.config.metrics_enabled => match method {
            Method::GET => ("metrics", None, metrics(app)),
            _ => get_only("GET"),
        },
        "/config" => match method {
            Method::GET => ("config", None, config(app)),
            _ => get_only("GET"),
        },
        // No plugins are served; the frontend retries for ~30 s on
        // anything but a 2xx JSON array.
        "/plugins" => match method {
            Method::GET => ("plugins", None, respond::json(StatusCode::OK, &json!([]))),
            _ => get_only("GET"),
        },
        "/oidc" => match method {
            Method::GET => (
                "oidc",
                None,
                login::start(app, request.uri(), request.headers(), tls).await,
            ),
            _ => get_only("GET"),
        },
        "/oidc-callback" => match method {
            Method::GET => (
                "oidc_callback",
                None,
                login::callback(app, request.uri(), request.headers(), tls).await,
            ),
            _ => get_only("GET"),
        },
        _ if path.starts_with("/clusters/") => {
            let rest = &path["/clusters/".len()..];
            cluster_request(app, request, rest, tls).await
        }
        // Everything else is the web frontend (pages, their files, and the
        // single-page app's own routes such as /auth): keep this arm last.
        _ => (
            "frontend",
            None,
            app.frontend
                .serve(request.method(), request.headers(), path, &full_path)
                .await,
        ),
    }
}

/// `/clusters/{name}/...`: `set-token`, `me`, or the proxy.
async fn cluster_request<B>(
    app: &Arc<App>,
    request: Request<B>,
    rest: &str,
    tls: bool,
) -> (RouteLabel, Option<String>, Response<Body>)
where
    B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    let (raw_name, sub) = match rest.split_once('/') {
        Some((name, sub)) => (name, Some(sub)),
        None => (rest, None),
    };
    let name = percent_encoding::percent_decode_str(raw_name).decode_utf8_lossy();
    let Some((_, oidc)) = app.cluster(&name) else {
        return (
            "proxy",
            None,
            respond::status(&Status::not_found(format!(
                "cluster \"{name}\" is not configured; GET {}/config lists the clusters",
                app.config.base_url
            ))),
        );
    };
    let name = name.into_owned();
    tracing::Span::current().record("cluster", name.as_str());
    let client = oidc.client().cloned();
    let Some(scope) = app.cookie_scope(&name, cookies::is_secure(request.headers(), tls)) else {
        return ("proxy", None, respond::not_found(request.uri().path()));
    };
    let method = request.method().clone();
    match sub {
        Some("set-token") => {
            let response = if method == Method::POST {
                set_token(request, scope).await
            } else {
                respond::method_not_allowed(&method, request.uri().path(), "POST")
            };
            ("set_token", Some(name), response)
        }
        Some("me") if method == Method::GET => {
            let response =
                match session::check(app, &name, client.as_ref(), scope, request.headers(), true)
                    .await
                {
                    Session::Ended(response) => response,
                    Session::Continue {
                        token, set_cookies, ..
                    } => {
                        let mut response = session::me(app, client.as_ref(), token.as_ref()).await;
                        respond::append_cookies(&mut response, set_cookies);
                        response
                    }
                };
            ("me", Some(name), response)
        }
        _ => {
            let response = proxy(app, request, &name, client.as_ref(), scope).await;
            ("proxy", Some(name), response)
        }
    }
}

/// The session check (refresh), then headlamp-proxy with the cluster as
/// the current one for impersonate mode's verifier.
async fn proxy<B>(
    app: &Arc<App>,
    mut request: Request<B>,
    name: &str,
    client: Option<&headlamp_oidc::OidcClient>,
    scope: &CookieScope,
) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    // The token cookie is an ambient credential; WebSockets (exec, attach,
    // port-forward) are not subject to CORS and SameSite=Strict does not
    // stop a sibling subdomain (same site). A browser always sends Origin
    // on a WebSocket handshake and on cross-origin requests, so a cookie
    // request from a foreign origin is refused before the API server sees
    // it (RFC 6455 section 10.2). Checked first: Origin is rare on
    // same-origin requests, so the common path scans no cookies here.
    if let Some(origin) = request.headers().get(header::ORIGIN)
        && !is_own_origin(app, origin, &request)
        && scope.has_token(request.headers())
    {
        return respond::status(&Status::forbidden(format!(
            "requests to cluster {name} that carry its sign-in cookie must come from this \
             server's own pages; Origin {:?} is another site. Scripts and tools: send \
             Authorization: Bearer <token> without the cookie",
            String::from_utf8_lossy(origin.as_bytes())
        )));
    }
    let set_cookies = match session::check(app, name, client, scope, request.headers(), false).await
    {
        Session::Ended(response) => return response,
        Session::Continue {
            token,
            refreshed,
            set_cookies,
        } => {
            if refreshed && let Some(token) = token {
                // The proxy prefers this over the (old) cookie.
                request.extensions_mut().insert(ResolvedToken(token));
            }
            set_cookies
        }
    };
    let request = request.map(|body| body.map_err(Into::into).boxed());
    let response = state::with_cluster(Arc::from(name), app.proxy.handle(request)).await;
    let mut response = match response {
        Ok(response) => response.map(|body| body.map_err(BoxError::from).boxed_unsync()),
        Err(never) => match never {},
    };
    if let Some(failure) = response.extensions().get::<ProxyFailure>() {
        app.metrics.proxy_failure(name, failure.label);
    }
    respond::append_cookies(&mut response, set_cookies);
    response
}

/// `POST /clusters/{name}/set-token`.
async fn set_token<B>(request: Request<B>, scope: &CookieScope) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    // A cross-site page must not be able to plant a token (login CSRF);
    // browsers say where a request comes from in Sec-Fetch-Site (Fetch
    // Metadata, https://w3c.github.io/webappsec-fetch-metadata/).
    if request
        .headers()
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return respond::status(&Status::forbidden("set-token refuses cross-site requests"));
    }
    // Sec-Fetch-Site is absent in older browsers and says "same-site" for a
    // sibling subdomain (*.apps.example.com). A JSON content type is not
    // CORS-safelisted, so another origin's browser must ask a preflight,
    // which we never grant (Fetch standard, "CORS-safelisted request-header");
    // text/plain, form encodings and typeless bodies are what a cross-origin
    // "simple" request can send. Headlamp's frontend sends application/json.
    if !is_json(request.headers()) {
        return respond::status(&Status::failure(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            "set-token needs Content-Type: application/json (e.g. curl -H 'Content-Type: \
             application/json' -d '{\"token\":\"...\"}')",
        ));
    }
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, session::max_set_token_body())
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return respond::status(&Status::failure(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                format!(
                    "the set-token body could not be read or is larger than {} bytes",
                    session::max_set_token_body()
                ),
            ));
        }
    };
    session::set_token(scope, &parts.headers, &body)
}

/// Whether `origin` (RFC 6454 serialisation) names this server as the
/// browser reached it: the request's `Host` (or HTTP/2 authority), the
/// `X-Forwarded-Host` a reverse proxy set (a page cannot set it: it is not
/// a header scripts may add to a WebSocket handshake), or the configured
/// `-oidc-callback-url`'s host. Only host and port are compared: a
/// TLS-terminating proxy makes the browser's scheme differ from ours.
fn is_own_origin<B>(app: &App, origin: &HeaderValue, request: &Request<B>) -> bool {
    let Some(origin) = origin
        .to_str()
        .ok()
        .and_then(|o| url::Url::parse(o).ok())
        .filter(|o| matches!(o.scheme(), "http" | "https"))
    else {
        return false; // "null" (sandboxed or opaque origins) or garbage
    };
    let same = |authority: &str| {
        url::Url::parse(&format!("{}://{}", origin.scheme(), authority.trim())).is_ok_and(|ours| {
            ours.host() == origin.host()
                && ours.port_or_known_default() == origin.port_or_known_default()
                && ours.path() == "/"
        })
    };
    let headers = request.headers();
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let authority = request.uri().authority().map(|a| a.as_str());
    let forwarded = headers
        .get("x-forwarded-host")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next());
    let callback = app
        .callback_url
        .as_ref()
        .and_then(|u| Some((u.host_str()?, u.port_or_known_default()?)))
        .is_some_and(|(host, port)| {
            origin.host_str() == Some(host) && origin.port_or_known_default() == Some(port)
        });
    callback || [host, authority, forwarded].into_iter().flatten().any(same)
}

/// Whether the request's media type is `application/json` (parameters such
/// as `charset` allowed; RFC 9110 section 8.3.1: case-insensitive).
fn is_json(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case("application/json"))
}

/// `GET /healthz`: 200 `ok`, the body kube-apiserver's own `/healthz` sends.
fn healthz() -> Response<Body> {
    respond::text(StatusCode::OK, "ok")
}

/// `GET /readyz`: ready when every issuer in use has its discovery document
/// and at least one cluster is usable; the body lists what is not.
fn readyz(app: &App) -> Response<Body> {
    let mut problems = Vec::new();
    for issuer in app.registry.status() {
        if !issuer.ready {
            problems.push(format!(
                "OIDC discovery for {} has not succeeded yet{}",
                issuer.issuer_url,
                issuer
                    .last_error
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ));
        }
    }
    let total = app.proxy.clusters().count();
    let usable = app.proxy.clusters().filter(|c| c.error.is_none()).count();
    if usable == 0 {
        problems.push(format!(
            "no usable cluster ({total} configured; GET {}/config shows each one's error)",
            app.config.base_url
        ));
    }
    let (code, body) = if problems.is_empty() {
        (
            StatusCode::OK,
            format!("ok\n{usable} of {total} clusters usable\n"),
        )
    } else {
        let mut body = String::from("not ready:\n");
        for problem in problems {
            body.push_str("- ");
            body.push_str(&problem);
            body.push('\n');
        }
        (StatusCode::SERVICE_UNAVAILABLE, body)
    };
    let mut response = Response::new(respond::full(body));
    *response.status_mut() = code;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /metrics`: the OpenMetrics text exposition.
fn metrics(app: &App) -> Response<Body> {
    match app.metrics.encode() {
        Ok(text) => {
            let mut response = Response::new(respond::full(text));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            response
        }
        Err(_) => respond::status(&Status::internal_error("cannot encode the metrics")),
    }
}

/// `GET /config`: the cluster list in Headlamp's shape
/// (`docs/headlamp-compat.md`, "GET /config").
fn config(app: &App) -> Response<Body> {
    let clusters: Vec<serde_json::Value> = app
        .proxy
        .clusters()
        .map(|info| {
            let oidc = app.oidc.get(&info.name);
            let mut cluster = json!({
                "name": info.name,
                "server": info.server.as_deref().unwrap_or(""),
                "auth_type": oidc.map_or("", |o| o.auth_type()),
                "meta_data": { "source": info.source },
            });
            let oidc_error = match oidc {
                Some(state::ClusterOidc::Invalid(reason)) => {
                    Some(format!("OIDC settings unusable: {reason}"))
                }
                _ => None,
            };
            if let Some(error) = info.error.clone().or(oidc_error) {
                cluster["error"] = json!(error);
            }
            cluster
        })
        .collect();
    let mut response = respond::json(
        StatusCode::OK,
        &json!({
            "clusters": clusters,
            "isDynamicClusterEnabled": false,
            "allowKubeconfigChanges": false,
        }),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
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
    use headlamp_config::{Config, Environment};
    use http_body_util::Full;

    async fn app_with_env(args: &[&str], env: &[(&str, &str)]) -> Arc<App> {
        let env = Environment::from_pairs(env.iter().copied());
        let config = Config::from_args(args.iter().copied(), &env).unwrap();
        Arc::new(App::build(Arc::new(config)).await.unwrap())
    }

    async fn app(args: &[&str]) -> Arc<App> {
        app_with_env(args, &[]).await
    }

    async fn send(app: &Arc<App>, request: Request<Full<Bytes>>) -> Response<Body> {
        route(Arc::clone(app), request).await
    }

    async fn call(app: &Arc<App>, method: Method, uri: &str) -> (StatusCode, String) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = send(app, request).await;
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    /// A kubeconfig with two contexts: `plain` (token user) and `sso`
    /// (auth-provider oidc), both pointing at a closed loopback port.
    fn kubeconfig(dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            r#"apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:9
contexts:
- name: plain
  context: {cluster: c, user: token}
- name: sso
  context: {cluster: c, user: oidc}
current-context: plain
users:
- name: token
  user:
    token: abc
- name: oidc
  user:
    auth-provider:
      name: oidc
      config:
        client-id: kube
        idp-issuer-url: http://127.0.0.1:9/issuer
"#,
        )
        .unwrap();
        path
    }

    #[tokio::test]
    async fn healthz_answers_ok() {
        let app = app(&[]).await;
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
    async fn unknown_api_paths_are_status_404() {
        let app = app(&[]).await;
        let (status, body) = call(&app, Method::GET, "/clusters/nope/api?code=secret-code").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let status_json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(status_json["reason"], "NotFound");
        assert!(!body.contains("secret-code"), "queries are never echoed");
    }

    #[tokio::test]
    async fn routes_are_mounted_under_the_base_url() {
        let app = app(&["-base-url=/headlamp/"]).await;
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
        assert_eq!(
            call(&app, Method::GET, "/headlamp/plugins").await,
            (StatusCode::OK, "[]".to_owned())
        );
    }

    #[tokio::test]
    async fn config_lists_clusters_with_auth_type_and_source() {
        let dir = tempfile::tempdir().unwrap();
        let path = kubeconfig(dir.path());
        let app = app(&[&format!("-kubeconfig={}", path.display())]).await;
        let (status, body) = call(&app, Method::GET, "/config").await;
        assert_eq!(status, StatusCode::OK);
        let config: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(config["isDynamicClusterEnabled"], false);
        assert_eq!(config["allowKubeconfigChanges"], false);
        let clusters = config["clusters"].as_array().unwrap();
        let by_name = |n: &str| clusters.iter().find(|c| c["name"] == n).unwrap().clone();
        let plain = by_name("plain");
        assert_eq!(plain["auth_type"], "");
        assert_eq!(plain["server"], "https://127.0.0.1:9");
        assert_eq!(plain["meta_data"]["source"], "kubeconfig");
        assert!(plain.get("error").is_none(), "{plain}");
        assert_eq!(by_name("sso")["auth_type"], "oidc");
    }

    #[tokio::test]
    async fn global_oidc_flags_apply_to_every_cluster_without_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = kubeconfig(dir.path());
        let app = app(&[
            &format!("-kubeconfig={}", path.display()),
            "-oidc-client-id=headlamp",
            "-oidc-idp-issuer-url=http://127.0.0.1:9/global",
        ])
        .await;
        let (_, body) = call(&app, Method::GET, "/config").await;
        let config: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(
            config["clusters"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["auth_type"] == "oidc"),
            "{config}"
        );
        let (_, sso) = app.cluster("sso").unwrap();
        assert_eq!(
            sso.client().unwrap().settings().issuer_url,
            "http://127.0.0.1:9/issuer",
            "the kubeconfig's own auth-provider wins"
        );
        let (_, plain) = app.cluster("plain").unwrap();
        assert_eq!(
            plain.client().unwrap().settings().issuer_url,
            "http://127.0.0.1:9/global"
        );
    }

    #[tokio::test]
    async fn oidc_start_refuses_unknown_and_non_oidc_clusters_with_pages() {
        let dir = tempfile::tempdir().unwrap();
        let path = kubeconfig(dir.path());
        let app = app(&[&format!("-kubeconfig={}", path.display())]).await;
        for (uri, code) in [
            ("/oidc?cluster=https://evil.example", StatusCode::NOT_FOUND),
            ("/oidc?cluster=plain", StatusCode::BAD_REQUEST),
            ("/oidc", StatusCode::BAD_REQUEST),
        ] {
            let request = Request::get(uri)
                .header(header::HOST, "127.0.0.1:4466")
                .body(Full::new(Bytes::new()))
                .unwrap();
            let response = send(&app, request).await;
            assert_eq!(response.status(), code, "{uri}");
            assert!(response.headers().get(header::LOCATION).is_none(), "{uri}");
            assert_eq!(
                response.headers()[header::CONTENT_TYPE],
                "text/html; charset=utf-8"
            );
        }
    }

    #[tokio::test]
    async fn set_token_then_me_reads_the_cookie_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = kubeconfig(dir.path());
        let app = app(&[&format!("-kubeconfig={}", path.display()), "-base-url=/h"]).await;
        let b64 = |v: &str| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
        };
        let claims = format!(
            r#"{{"preferred_username":"alice","email":"a@example.com","groups":["dev","ops"],"exp":{}}}"#,
            u64::MAX / 2
        );
        let token = format!("{}.{}.sig", b64(r#"{"alg":"RS256"}"#), b64(&claims));
        let request = Request::post("/h/clusters/plain/set-token")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(format!(r#"{{"token":"{token}"}}"#))))
            .unwrap();
        let response = send(&app, request).await;
        assert_eq!(response.status(), StatusCode::OK);
        let set = response.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(set.contains("Path=/h/clusters/plain"), "{set}");
        let cookie = set.split(';').next().unwrap().to_owned();

        let request = Request::get("/h/clusters/plain/me")
            .header(header::COOKIE, cookie)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = send(&app, request).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let me: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(me["username"], "alice");
        assert_eq!(me["email"], "a@example.com");
        assert_eq!(me["groups"], json!(["dev", "ops"]));

        let (status, body) = call(&app, Method::GET, "/h/clusters/plain/me").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body, r#"{"message":"unauthorized"}"#);

        let request = Request::post("/h/clusters/plain/set-token")
            .header("sec-fetch-site", "cross-site")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from_static(br#"{"token":"x"}"#)))
            .unwrap();
        assert_eq!(send(&app, request).await.status(), StatusCode::FORBIDDEN);
    }

    /// Cross-site WebSocket hijacking: WebSockets are not subject to CORS,
    /// and a page on a sibling subdomain is same-site, so the browser
    /// sends the SameSite=Strict token cookie with its handshake. Without
    /// an Origin check that page could exec into pods as the signed-in user.
    #[tokio::test]
    async fn cookie_requests_from_another_origin_never_reach_the_api_server() {
        let dir = tempfile::tempdir().unwrap();
        let path = kubeconfig(dir.path());
        let app = app(&[&format!("-kubeconfig={}", path.display())]).await;
        let request = |origin: Option<&str>, cookie: bool, forwarded_host: Option<&str>| {
            let mut builder = Request::get(
                "/clusters/plain/api/v1/namespaces/default/pods/p/exec?command=sh&stdin=true",
            )
            .header(header::HOST, "headlamp.apps.example.com")
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_VERSION, "13")
            .header(header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==")
            .header(header::SEC_WEBSOCKET_PROTOCOL, "v5.channel.k8s.io");
            if let Some(origin) = origin {
                builder = builder.header(header::ORIGIN, origin);
            }
            if cookie {
                builder = builder.header(header::COOKIE, "theme=dark; headlamp-auth-plain.0=a.b.c");
            }
            if let Some(host) = forwarded_host {
                builder = builder.header("x-forwarded-host", host);
            }
            builder.body(Full::new(Bytes::new())).unwrap()
        };
        for origin in [
            "https://evil.apps.example.com",
            "https://headlamp.apps.example.com.evil.example",
            "https://headlamp.apps.example.com:8443",
            "null",
            "not an origin",
        ] {
            let response = send(&app, request(Some(origin), true, None)).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{origin}");
            let body = response.into_body().collect().await.unwrap().to_bytes();
            let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(status["kind"], "Status", "{origin}");
        }
        // Our own origin (any scheme: a TLS proxy in front), a proxy that
        // rewrites Host but says the original in X-Forwarded-Host, no Origin
        // (kubectl, curl), or no cookie (the caller's own Authorization) all
        // go on to the cluster (here a closed port, so not a 403).
        let allowed = [
            request(Some("https://headlamp.apps.example.com"), true, None),
            request(Some("http://HEADLAMP.apps.example.com"), true, None),
            request(
                Some("https://headlamp.example.com"),
                true,
                Some("headlamp.example.com"),
            ),
            request(None, true, None),
            request(Some("https://evil.apps.example.com"), false, None),
        ];
        for (i, request) in allowed.into_iter().enumerate() {
            let status = send(&app, request).await.status();
            assert_ne!(status, StatusCode::FORBIDDEN, "case {i}");
        }
    }

    /// Login CSRF: a page on another origin can send a "simple" POST (no
    /// preflight) with a JSON-looking body as text/plain, a form encoding or
    /// a typeless Blob, and browsers without Fetch Metadata (or a sibling
    /// subdomain, which is same-site) are not stopped by Sec-Fetch-Site.
    /// Only `application/json`, which needs a CORS preflight we never
    /// grant, may set or clear a token.
    #[tokio::test]
    async fn set_token_takes_only_json_so_other_origins_cannot_plant_a_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = kubeconfig(dir.path());
        let app = app(&[&format!("-kubeconfig={}", path.display())]).await;
        let post = |content_type: Option<&str>, site: Option<&str>| {
            let mut builder = Request::post("/clusters/plain/set-token");
            if let Some(content_type) = content_type {
                builder = builder.header(header::CONTENT_TYPE, content_type);
            }
            if let Some(site) = site {
                builder = builder.header("sec-fetch-site", site);
            }
            builder
                .body(Full::new(Bytes::from_static(
                    br#"{"token":"attacker.token.sig"}"#,
                )))
                .unwrap()
        };
        for content_type in [
            None,
            Some("text/plain"),
            Some("text/plain;charset=UTF-8"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("application/jsonx"),
        ] {
            let response = send(&app, post(content_type, Some("same-site"))).await;
            assert_eq!(
                response.status(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{content_type:?}"
            );
            assert!(
                response.headers().get(header::SET_COOKIE).is_none(),
                "{content_type:?}"
            );
        }
        for content_type in ["application/json", "Application/JSON; charset=utf-8"] {
            let response = send(&app, post(Some(content_type), Some("same-origin"))).await;
            assert_eq!(response.status(), StatusCode::OK, "{content_type}");
            assert!(response.headers().get(header::SET_COOKIE).is_some());
        }
    }

    #[tokio::test]
    async fn readyz_names_what_is_not_ready() {
        let app = app(&[]).await;
        let (status, body) = call(&app, Method::GET, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("no usable cluster (0 configured"), "{body}");
    }

    #[tokio::test]
    async fn metrics_only_with_the_flag() {
        let off = app(&[]).await;
        assert_eq!(
            call(&off, Method::GET, "/metrics").await.0,
            StatusCode::NOT_FOUND
        );
        let on = app(&["-metrics-enabled"]).await;
        call(&on, Method::GET, "/config").await;
        let (status, body) = call(&on, Method::GET, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body.contains(
                r#"headlamp_http_requests_total{route="config",cluster="",code="200"} 1"#
            ),
            "{body}"
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
