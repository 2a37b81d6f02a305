//! The OpenID Connect authorization-code flow: discovery, PKCE, sealed
//! stateless login state, code exchange and refresh.
//!
//! What this crate does, and why it differs from Headlamp's Go backend
//! (see `docs/headlamp-compat.md` part B):
//!
//! - **Discovery** ([`OidcRegistry::client`]) runs in the background and is
//!   cached per issuer; a server starts even while its IdP is down, retries
//!   with exponential backoff, and reports readiness
//!   ([`OidcRegistry::is_ready`], [`OidcRegistry::status`]). The document's
//!   `issuer` must equal the configured URL, or the
//!   `oidc-validator-idp-issuer-url` ([OIDC Discovery section
//!   4.3](https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderConfigurationValidation)).
//! - **Login start** ([`OidcClient::start_login`]) always sends a `nonce`
//!   and, by default, PKCE S256. State, nonce, verifier, cluster, redirect
//!   URI and expiry are sealed (AES-256-GCM, keys derived with HKDF from
//!   the session key file) into a short-lived cookie, so any replica with
//!   the same key file completes the login: no server memory.
//! - **Callback** ([`CallbackParams::from_query`] →
//!   [`OidcRegistry::open_login_state`] → [`OidcClient::complete_login`]):
//!   IdP errors are typed, the state must match the cookie, the code is
//!   exchanged with the verifier, and the ID token is verified through
//!   headlamp-jwt (signature, issuer, audience, expiry, nonce). Only a
//!   verified exchange yields a [`TokenSet`].
//! - **Refresh** ([`OidcClient::refresh`]) handles rotated refresh tokens,
//!   tells "session over" ([`OidcError::is_session_over`]) from "IdP
//!   briefly unavailable" ([`OidcError::is_retryable`]), and the refresh
//!   token itself travels in a sealed, cluster-bound cookie
//!   ([`OidcRegistry::seal_refresh_token`]).
//!
//! Every request to the IdP goes through one hyper + rustls (aws-lc-rs)
//! client ([`IdpHttpClient`]) with a custom CA, timeouts, a response size
//! limit and no redirect following; it also implements openidconnect's
//! `AsyncHttpClient`.
//!
//! # Using it for your own service's login
//!
//! Nothing here is Headlamp-specific: any Rust web service can use it for
//! its own "Sign in with …". The two handlers below are the whole
//! integration, written against plain `http` types (wire them into axum,
//! hyper or anything else).
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use headlamp_core::{Secret, SystemClock};
//! use headlamp_oidc::{
//!     CallbackParams, LoginCookie, OidcClient, OidcError, OidcProviderSettings, OidcRegistry,
//!     SessionKey,
//! };
//! use http::{HeaderValue, Request, Response, StatusCode, header};
//!
//! /// Built once at start, inside the Tokio runtime.
//! struct Login {
//!     registry: OidcRegistry,
//!     client: OidcClient,
//!     callback: url::Url,
//! }
//!
//! impl Login {
//!     fn new() -> Result<Self, Box<dyn std::error::Error>> {
//!         let key = SessionKey::from_file("/etc/app/session.key".as_ref())?;
//!         let registry = OidcRegistry::new(key, SystemClock);
//!         let settings = OidcProviderSettings::new("https://idp.example.com/realms/main", "my-app")
//!             .with_client_secret(Secret::new(std::env::var("CLIENT_SECRET")?));
//!         // Never fails because the IdP is down: discovery runs in the background.
//!         let client = registry.client(settings)?;
//!         let callback = url::Url::parse("https://app.example.com/login/callback")?;
//!         Ok(Self { registry, client, callback })
//!     }
//!
//!     /// `GET /login`: redirect to the IdP, with the sealed login-state cookie.
//!     async fn sign_in(&self) -> Response<String> {
//!         match self.client.start_login("default", &self.callback).await {
//!             Ok(start) => {
//!                 let mut response = redirect(StatusCode::FOUND, start.authorization_url.as_str());
//!                 response
//!                     .headers_mut()
//!                     .insert(header::SET_COOKIE, start.cookie.set_cookie_header());
//!                 response
//!             }
//!             Err(e) => page(StatusCode::SERVICE_UNAVAILABLE, &e),
//!         }
//!     }
//!
//!     /// `GET /login/callback?code=..&state=..`: finish the login.
//!     async fn callback<B>(&self, req: &Request<B>) -> Response<String> {
//!         let params = CallbackParams::from_query(req.uri().query());
//!         let mut response = match self.finish(&params, req.headers()).await {
//!             Ok(refresh_cookie) => {
//!                 let mut response = redirect(StatusCode::SEE_OTHER, "/");
//!                 response.headers_mut().insert(header::SET_COOKIE, refresh_cookie);
//!                 response
//!             }
//!             Err(e) => page(StatusCode::UNAUTHORIZED, &*e),
//!         };
//!         // The login state is single use: clear its cookie on every answer.
//!         if let Some(clear) = params
//!             .ok()
//!             .and_then(|p| LoginCookie::clear_header(p.state(), &self.callback))
//!         {
//!             response.headers_mut().append(header::SET_COOKIE, clear);
//!         }
//!         response
//!     }
//!
//!     async fn finish(
//!         &self,
//!         params: &Result<CallbackParams, OidcError>,
//!         cookies: &http::HeaderMap,
//!     ) -> Result<HeaderValue, Box<dyn std::error::Error>> {
//!         let params = params.as_ref().map_err(|e| e.to_string())?;
//!         let login = self.registry.open_login_state(params, cookies)?;
//!         let tokens = self.client.complete_login(login, params).await?;
//!         // The ID token is verified; read its claims for your own session.
//!         let claims = self.client.verifier().verify(tokens.api_server_token().expose()).await?;
//!         tracing::info!(sub = ?claims.subject(), "signed in");
//!         // Keep the refresh token in a sealed cookie, not in server memory.
//!         let refresh = tokens.refresh_token().ok_or("the IdP issued no refresh token")?;
//!         let sealed =
//!             self.registry.seal_refresh_token("default", refresh, Duration::from_secs(86_400))?;
//!         Ok(HeaderValue::from_str(&format!(
//!             "app-refresh={sealed}; Path=/; HttpOnly; Secure; SameSite=Strict"
//!         ))?)
//!     }
//! }
//!
//! fn redirect(status: StatusCode, location: &str) -> Response<String> {
//!     let mut response = Response::new(String::new());
//!     *response.status_mut() = status;
//!     if let Ok(location) = HeaderValue::from_str(location) {
//!         response.headers_mut().insert(header::LOCATION, location);
//!     }
//!     response
//! }
//!
//! fn page(status: StatusCode, error: &dyn std::fmt::Display) -> Response<String> {
//!     // Error messages never contain tokens, codes or secrets.
//!     let mut response = Response::new(format!("Sign-in failed: {error}"));
//!     *response.status_mut() = status;
//!     response
//! }
//! ```
#![forbid(unsafe_code)]

mod callback_url;
mod client;
mod discovery;
mod error;
mod http_client;
mod key_source;
mod login;
mod refresh_cookie;
mod seal;
mod settings;
mod token;

pub use callback_url::{CALLBACK_PATH, callback_url};
pub use client::{OidcClient, OidcRegistry, TokenSet};
pub use discovery::{DiscoveryStatus, ProviderEndpoints, TokenEndpointAuth};
pub use error::OidcError;
pub use http_client::{HttpLimits, IdpHttpClient, IdpTls};
pub use key_source::IdpKeySource;
pub use login::{
    CallbackParams, CsrfState, DEFAULT_LOGIN_LIFETIME, LoginCookie, LoginStart, LoginState, Nonce,
    PkceCodeVerifier, cookie_value,
};
pub use refresh_cookie::{
    REFRESH_COOKIE_PREFIX, cluster_cookie_path, refresh_clear_cookie, refresh_cookie_name,
    sanitize_cluster_name,
};
pub use seal::{MIN_KEY_MATERIAL, SessionKey};
pub use settings::{OPENID_SCOPE, OidcProviderSettings, split_scopes};

#[cfg(test)]
mod fake_idp;
#[cfg(test)]
mod tests;
