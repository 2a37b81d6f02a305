//! `GET /oidc?cluster=` and `GET /oidc-callback`: the sign-in popup flow
//! of Headlamp's frontend, with stateless, sealed login state (compat
//! part B).
//!
//! Both answer a browser window, not a script, so failures are short HTML
//! pages saying what went wrong and what to do, with the status that fits
//! (an IdP `access_denied` is a 403 page, never a 500).

use headlamp_oidc::{CallbackParams, LoginCookie, OidcError};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode, Uri};

use crate::cookies;
use crate::respond::{self, Body};
use crate::state::{App, ClusterOidc};

/// `GET /oidc?cluster=NAME` (`dt` and other parameters ignored).
///
/// Only ever redirects to a configured cluster's IdP authorization
/// endpoint: an unknown cluster is a 404 page, so this cannot be used as an
/// open redirect.
pub(crate) async fn start(app: &App, uri: &Uri, headers: &HeaderMap, tls: bool) -> Response<Body> {
    let cluster = uri.query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "cluster")
            .map(|(_, v)| v.into_owned())
    });
    let Some(cluster) = cluster.filter(|c| !c.is_empty()) else {
        return respond::page(
            StatusCode::BAD_REQUEST,
            "Sign-in needs a cluster",
            "The sign-in link has no cluster parameter. Open the sign-in from the cluster list.",
        );
    };
    tracing::Span::current().record("cluster", cluster.as_str());
    let Some((_, oidc)) = app.cluster(&cluster) else {
        return respond::page(
            StatusCode::NOT_FOUND,
            "Unknown cluster",
            &format!("There is no cluster named \"{cluster}\" on this server."),
        );
    };
    let client = match oidc {
        ClusterOidc::Client(client) => client,
        ClusterOidc::None => {
            return respond::page(
                StatusCode::BAD_REQUEST,
                "This cluster has no sign-in",
                &format!(
                    "Cluster \"{cluster}\" has no OpenID Connect settings: neither an \
                     auth-provider in its kubeconfig user nor the -oidc-* flags. Use a token \
                     instead, or configure OIDC."
                ),
            );
        }
        ClusterOidc::Invalid(reason) => {
            return respond::page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Sign-in is misconfigured",
                &format!(
                    "The OpenID Connect settings of cluster \"{cluster}\" are unusable: {reason}"
                ),
            );
        }
    };
    let callback = match callback_url(app, uri, headers, tls) {
        Ok(url) => url,
        Err(error) => return error_page(&error),
    };
    match client.start_login(&cluster, &callback).await {
        Ok(login) => {
            let mut response =
                respond::redirect(StatusCode::FOUND, login.authorization_url.as_str());
            respond::append_cookies(&mut response, [login.cookie.set_cookie_header()]);
            response
        }
        Err(error) => {
            tracing::warn!(cluster, %error, "cannot start the sign-in");
            error_page(&error)
        }
    }
}

/// `GET /oidc-callback?code=..&state=..` (or `?error=..`).
pub(crate) async fn callback(
    app: &App,
    uri: &Uri,
    headers: &HeaderMap,
    tls: bool,
) -> Response<Body> {
    let params = CallbackParams::from_query(uri.query());
    let mut response = match &params {
        Ok(params) => finish(app, params, headers, tls).await,
        Err(error) => {
            app.metrics
                .login(if matches!(error, OidcError::AuthorizationDenied { .. }) {
                    "denied"
                } else {
                    "failed"
                });
            tracing::info!(%error, "sign-in ended at the IdP");
            error_page(error)
        }
    };
    // The login state is single use: clear its cookie on every answer.
    if let (Ok(params), Ok(callback)) = (&params, callback_url(app, uri, headers, tls))
        && let Some(clear) = LoginCookie::clear_header(params.state(), &callback)
    {
        respond::append_cookies(&mut response, [clear]);
    }
    response
}

async fn finish(
    app: &App,
    params: &CallbackParams,
    headers: &HeaderMap,
    tls: bool,
) -> Response<Body> {
    let login = match app.registry.open_login_state(params, headers) {
        Ok(login) => login,
        Err(error) => {
            app.metrics.login("failed");
            tracing::info!(%error, "sign-in callback refused");
            return error_page(&error);
        }
    };
    let cluster = login.cluster().to_owned();
    tracing::Span::current().record("cluster", cluster.as_str());
    let Some(client) = app.cluster(&cluster).and_then(|(_, oidc)| oidc.client()) else {
        app.metrics.login("failed");
        return error_page(&OidcError::UnknownCluster { cluster });
    };
    let tokens = match client.complete_login(login, params).await {
        Ok(tokens) => tokens,
        Err(error) => {
            app.metrics.login("failed");
            tracing::warn!(cluster, %error, "sign-in failed");
            return error_page(&error);
        }
    };
    let Some(scope) = app.cookie_scope(&cluster, cookies::is_secure(headers, tls)) else {
        app.metrics.login("failed");
        return error_page(&OidcError::UnknownCluster { cluster });
    };
    // The callback's path is not below the cluster's cookie path, so the
    // request carries none of its chunk cookies: clear later chunks blind.
    let mut set_cookies = scope.set_token_blind(tokens.api_server_token().expose());
    match tokens.refresh_token() {
        Some(refresh) => {
            match app
                .registry
                .seal_refresh_token(&cluster, refresh, app.config.session.ttl)
            {
                Ok(sealed) => set_cookies.extend(scope.set_refresh(&sealed)),
                Err(error) => {
                    tracing::warn!(cluster, %error, "cannot seal the refresh token; no refresh for this session");
                    set_cookies.extend(scope.clear_refresh());
                }
            }
        }
        None => set_cookies.extend(scope.clear_refresh()),
    }
    app.metrics.login("success");
    let location = format!(
        "{}/auth?cluster={}",
        app.config.base_url,
        url::form_urlencoded::byte_serialize(cluster.as_bytes()).collect::<String>()
    );
    let mut response = respond::redirect(StatusCode::SEE_OTHER, &location);
    respond::append_cookies(&mut response, set_cookies);
    response
}

/// The `redirect_uri`: `-oidc-callback-url`, or derived from the request
/// as Headlamp does.
fn callback_url(
    app: &App,
    uri: &Uri,
    headers: &HeaderMap,
    tls: bool,
) -> Result<url::Url, OidcError> {
    headlamp_oidc::callback_url(
        app.callback_url.as_ref(),
        uri,
        headers,
        tls,
        &app.config.base_url,
    )
}

/// The page for a sign-in failure, with the status headlamp-oidc assigns.
fn error_page(error: &OidcError) -> Response<Body> {
    let title = match error {
        OidcError::AuthorizationDenied { .. } => "Sign-in was refused",
        OidcError::MissingLoginState
        | OidcError::InvalidLoginState { .. }
        | OidcError::SealedWithOtherKey
        | OidcError::LoginStateExpired { .. } => "Sign-in cannot be completed",
        OidcError::UnknownCluster { .. } => "Unknown cluster",
        e if e.is_retryable() => "The identity provider is unavailable",
        _ => "Sign-in failed",
    };
    let mut response = respond::page(error.status_code(), title, &error.to_string());
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
