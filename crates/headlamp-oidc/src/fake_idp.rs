//! An in-process fake OpenID Provider for unit tests: a tiny hyper server
//! on 127.0.0.1 that serves discovery, JWKS, an authorization endpoint
//! (answering with a redirect, as after a successful login) and a token
//! endpoint that checks what a real one checks (client authentication,
//! redirect_uri, PKCE S256, single-use codes, refresh-token rotation).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use headlamp_core::{Clock, FakeClock};
use headlamp_jwt::SigningAlgorithm;
use headlamp_jwt::testing::{TestKey, jwks};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub(crate) const CLIENT_ID: &str = "headlamp";
pub(crate) const CLIENT_SECRET: &str = "s3cr:et/+";

/// What the fake does; tests change it between requests.
#[derive(Clone)]
pub(crate) struct Behaviour {
    /// `issuer` in the discovery document (default: the base URL).
    pub(crate) issuer_override: Option<String>,
    pub(crate) auth_methods: Vec<&'static str>,
    /// Put this nonce in ID tokens instead of the requested one.
    pub(crate) wrong_nonce: bool,
    /// The user declines at the authorization endpoint.
    pub(crate) deny: bool,
    pub(crate) rotate_refresh_tokens: bool,
    pub(crate) token_status_override: Option<u16>,
    pub(crate) discovery_padding: usize,
    pub(crate) discovery_redirect: bool,
    pub(crate) id_token_on_refresh: bool,
    pub(crate) token_lifetime: u64,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            issuer_override: None,
            auth_methods: vec!["client_secret_basic", "client_secret_post"],
            wrong_nonce: false,
            deny: false,
            rotate_refresh_tokens: true,
            token_status_override: None,
            discovery_padding: 0,
            discovery_redirect: false,
            id_token_on_refresh: true,
            token_lifetime: 300,
        }
    }
}

struct Grant {
    redirect_uri: String,
    challenge: Option<String>,
    nonce: String,
}

/// What the token endpoint last saw (for assertions).
#[derive(Default, Clone, Debug)]
pub(crate) struct SeenTokenRequest {
    pub(crate) authorization: Option<String>,
    pub(crate) form: HashMap<String, String>,
}

#[derive(Default)]
struct State {
    codes: HashMap<String, Grant>,
    refresh_tokens: HashMap<String, ()>,
    counter: u64,
    discovery_fetches: usize,
    jwks_fetches: usize,
    last_token_request: Option<SeenTokenRequest>,
}

pub(crate) struct FakeIdp {
    pub(crate) base: String,
    pub(crate) behaviour: Arc<Mutex<Behaviour>>,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
    connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Drop for FakeIdp {
    /// Stops listening and cuts open keep-alive connections, as a crashed
    /// IdP would.
    fn drop(&mut self) {
        self.task.abort();
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }
}

struct Shared {
    base: String,
    key: TestKey,
    clock: FakeClock,
    behaviour: Arc<Mutex<Behaviour>>,
    state: Arc<Mutex<State>>,
}

impl FakeIdp {
    pub(crate) async fn start(clock: FakeClock) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, clock)
    }

    /// Serves on an already bound listener (to come back on the same port).
    pub(crate) fn serve(listener: TcpListener, clock: FakeClock) -> Self {
        Self::serve_with(listener, clock, None)
    }

    /// Serves https with `tls`.
    pub(crate) fn serve_tls(
        listener: TcpListener,
        clock: FakeClock,
        tls: Arc<rustls::ServerConfig>,
    ) -> Self {
        Self::serve_with(listener, clock, Some(tokio_rustls::TlsAcceptor::from(tls)))
    }

    fn serve_with(
        listener: TcpListener,
        clock: FakeClock,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Self {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base = format!("{scheme}://{}", listener.local_addr().unwrap());
        let behaviour = Arc::new(Mutex::new(Behaviour::default()));
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::new(Shared {
            base: base.clone(),
            key: TestKey::generate(SigningAlgorithm::ES256).with_kid("fake-1"),
            clock,
            behaviour: behaviour.clone(),
            state: state.clone(),
        });
        let connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let tracked = connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let shared = shared.clone();
                let tls = tls.clone();
                let connection = tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(shared.handle(req).await) }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                        Some(acceptor) => {
                            // A failed handshake is what the TLS tests expect
                            // of an untrusted client; nothing to serve then.
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                    }
                });
                tracked.lock().unwrap().push(connection.abort_handle());
            }
        });
        Self {
            base,
            behaviour,
            state,
            task,
            connections,
        }
    }

    pub(crate) fn set(&self, change: impl FnOnce(&mut Behaviour)) {
        change(&mut self.behaviour.lock().unwrap());
    }

    pub(crate) fn last_token_request(&self) -> SeenTokenRequest {
        self.state
            .lock()
            .unwrap()
            .last_token_request
            .clone()
            .unwrap()
    }

    pub(crate) fn discovery_fetches(&self) -> usize {
        self.state.lock().unwrap().discovery_fetches
    }

    pub(crate) fn jwks_fetches(&self) -> usize {
        self.state.lock().unwrap().jwks_fetches
    }

    /// Revokes every refresh token (the user's session ended at the IdP).
    pub(crate) fn revoke_all(&self) {
        self.state.lock().unwrap().refresh_tokens.clear();
    }
}

type Response = http::Response<Full<Bytes>>;

fn respond(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(Full::new(body.into()))
        .unwrap()
}

fn json_response(status: u16, body: Value) -> Response {
    respond(status, "application/json", body.to_string())
}

fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    json_response(
        status,
        json!({"error": error, "error_description": description}),
    )
}

impl Shared {
    async fn handle(&self, req: http::Request<hyper::body::Incoming>) -> Response {
        let path = req.uri().path().to_owned();
        let query = req.uri().query().unwrap_or("").to_owned();
        let authorization = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let behaviour = self.behaviour.lock().unwrap().clone();
        match path.as_str() {
            "/.well-known/openid-configuration" => self.discovery(&behaviour),
            "/jwks" => {
                self.state.lock().unwrap().jwks_fetches += 1;
                let mut r = respond(200, "application/json", jwks(&[&self.key]));
                r.headers_mut()
                    .insert(http::header::CACHE_CONTROL, "max-age=600".parse().unwrap());
                r
            }
            "/authorize" => self.authorize(&behaviour, &query),
            "/token" => {
                if let Some(status) = behaviour.token_status_override {
                    return respond(status, "text/html", "<html>maintenance</html>");
                }
                let form: HashMap<String, String> =
                    url::form_urlencoded::parse(&body).into_owned().collect();
                self.state.lock().unwrap().last_token_request = Some(SeenTokenRequest {
                    authorization: authorization.clone(),
                    form: form.clone(),
                });
                self.token(&behaviour, authorization.as_deref(), &form)
            }
            _ => respond(404, "text/plain", "not found"),
        }
    }

    fn discovery(&self, behaviour: &Behaviour) -> Response {
        self.state.lock().unwrap().discovery_fetches += 1;
        if behaviour.discovery_redirect {
            let mut r = respond(302, "text/plain", "");
            r.headers_mut().insert(
                http::header::LOCATION,
                format!("{}/elsewhere", self.base).parse().unwrap(),
            );
            return r;
        }
        let base = &self.base;
        json_response(
            200,
            json!({
                "issuer": behaviour.issuer_override.clone().unwrap_or_else(|| base.clone()),
                "authorization_endpoint": format!("{base}/authorize?tenant=t1"),
                "token_endpoint": format!("{base}/token"),
                "jwks_uri": format!("{base}/jwks"),
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["ES256"],
                "token_endpoint_auth_methods_supported": behaviour.auth_methods,
                "code_challenge_methods_supported": ["S256"],
                "x-padding": "x".repeat(behaviour.discovery_padding),
            }),
        )
    }

    fn next(&self, prefix: &str) -> String {
        let mut state = self.state.lock().unwrap();
        state.counter += 1;
        format!("{prefix}-{}", state.counter)
    }

    fn authorize(&self, behaviour: &Behaviour, query: &str) -> Response {
        let q: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let redirect_uri = q.get("redirect_uri").cloned().unwrap_or_default();
        let state = q.get("state").cloned().unwrap_or_default();
        let mut location = url::Url::parse(&redirect_uri).unwrap();
        let valid = q.get("response_type").map(String::as_str) == Some("code")
            && q.get("client_id").map(String::as_str) == Some(CLIENT_ID)
            && q.get("scope")
                .is_some_and(|s| s.split(' ').next() == Some("openid"))
            && q.get("tenant").map(String::as_str) == Some("t1");
        if behaviour.deny || !valid {
            location
                .query_pairs_mut()
                .append_pair(
                    "error",
                    if valid {
                        "access_denied"
                    } else {
                        "invalid_request"
                    },
                )
                .append_pair("error_description", "The user declined")
                .append_pair("state", &state);
        } else {
            let code = self.next("code");
            let challenge = match q.get("code_challenge_method").map(String::as_str) {
                Some("S256") => q.get("code_challenge").cloned(),
                _ => None,
            };
            self.state.lock().unwrap().codes.insert(
                code.clone(),
                Grant {
                    redirect_uri: redirect_uri.clone(),
                    challenge,
                    nonce: q.get("nonce").cloned().unwrap_or_default(),
                },
            );
            location
                .query_pairs_mut()
                .append_pair("code", &code)
                .append_pair("state", &state);
        }
        let mut r = respond(302, "text/plain", "");
        r.headers_mut()
            .insert(http::header::LOCATION, location.as_str().parse().unwrap());
        r
    }

    fn client_authenticated(
        &self,
        behaviour: &Behaviour,
        authorization: Option<&str>,
        form: &HashMap<String, String>,
    ) -> bool {
        if let Some(basic) = authorization.and_then(|a| a.strip_prefix("Basic ")) {
            let decoded = String::from_utf8(STANDARD.decode(basic).unwrap()).unwrap();
            let (id, secret) = decoded.split_once(':').unwrap();
            let decode = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .unwrap()
                    .1
                    .into_owned()
            };
            return behaviour.auth_methods.contains(&"client_secret_basic")
                && decode(id) == CLIENT_ID
                && decode(secret) == CLIENT_SECRET;
        }
        behaviour.auth_methods.contains(&"client_secret_post")
            && form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
            && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET)
    }

    fn token(
        &self,
        behaviour: &Behaviour,
        authorization: Option<&str>,
        form: &HashMap<String, String>,
    ) -> Response {
        if !self.client_authenticated(behaviour, authorization, form) {
            return oauth_error(401, "invalid_client", "client authentication failed");
        }
        match form.get("grant_type").map(String::as_str) {
            Some("authorization_code") => {
                let code = form.get("code").cloned().unwrap_or_default();
                // Codes are single use (RFC 6749 section 4.1.2).
                let Some(grant) = self.state.lock().unwrap().codes.remove(&code) else {
                    return oauth_error(400, "invalid_grant", "unknown or used code");
                };
                if form.get("redirect_uri") != Some(&grant.redirect_uri) {
                    return oauth_error(400, "invalid_grant", "redirect_uri mismatch");
                }
                match (&grant.challenge, form.get("code_verifier")) {
                    (Some(challenge), Some(verifier)) => {
                        let computed = URL_SAFE_NO_PAD
                            .encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
                        if &computed != challenge {
                            return oauth_error(400, "invalid_grant", "PKCE verification failed");
                        }
                    }
                    (None, None) => {}
                    _ => return oauth_error(400, "invalid_grant", "PKCE parameters mismatch"),
                }
                let nonce = if behaviour.wrong_nonce {
                    "someone-elses-nonce".to_owned()
                } else {
                    grant.nonce
                };
                self.tokens(behaviour, Some(&nonce), true)
            }
            Some("refresh_token") => {
                let token = form.get("refresh_token").cloned().unwrap_or_default();
                let known = self
                    .state
                    .lock()
                    .unwrap()
                    .refresh_tokens
                    .contains_key(&token);
                if !known {
                    return oauth_error(400, "invalid_grant", "grant request is invalid");
                }
                if behaviour.rotate_refresh_tokens {
                    self.state.lock().unwrap().refresh_tokens.remove(&token);
                }
                self.tokens(behaviour, None, behaviour.rotate_refresh_tokens)
            }
            _ => oauth_error(400, "unsupported_grant_type", "unsupported grant_type"),
        }
    }

    fn tokens(&self, behaviour: &Behaviour, nonce: Option<&str>, new_refresh: bool) -> Response {
        let now = self.clock.now();
        let mut claims = json!({
            "iss": behaviour.issuer_override.clone().unwrap_or_else(|| self.base.clone()),
            "aud": CLIENT_ID,
            "sub": "alice-sub",
            "iat": now,
            "exp": now + behaviour.token_lifetime,
            "preferred_username": "alice",
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        let mut body = json!({
            "access_token": self.next("access"),
            "token_type": "Bearer",
            "expires_in": behaviour.token_lifetime,
        });
        if nonce.is_some() || behaviour.id_token_on_refresh {
            body["id_token"] = json!(self.key.sign(&claims));
        }
        if new_refresh {
            let refresh = self.next("refresh");
            self.state
                .lock()
                .unwrap()
                .refresh_tokens
                .insert(refresh.clone(), ());
            body["refresh_token"] = json!(refresh);
        }
        json_response(200, body)
    }
}
