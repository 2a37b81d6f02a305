//! The registry of issuers and the per-cluster OIDC client.
//!
//! One [`OidcRegistry`] per process holds the session key and one discovery
//! and key cache per issuer (keyed by the issuer URL, the accepted
//! validator issuer and the TLS settings), so every cluster that signs in
//! at the same IdP, whether configured by the global flags or by kubeconfig
//! `auth-provider` settings, shares one discovery document, one JWKS and one
//! background refresher. An [`OidcClient`] is one client registration
//! (client id, secret, scopes, audience) at one of those issuers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use headlamp_core::{BearerToken, Clock, Secret, UnixTime};
use headlamp_jwt::{
    JwksCache, JwksCacheConfig, JwtError, SigningAlgorithm, TokenVerifier, ValidationPolicy,
    Validator, VerifiedToken,
};
use serde::{Deserialize, Serialize};

use crate::OidcError;
use crate::discovery::{
    Discovery, DiscoveryStatus, FIRST_RETRY, MAX_RETRY, ProviderEndpoints, REFRESH_INTERVAL,
};
use crate::http_client::{HttpLimits, IdpHttpClient};
use crate::key_source::IdpKeySource;
use crate::login::{
    CallbackParams, CsrfState, DEFAULT_LOGIN_LIFETIME, LoginCookie, LoginStart, LoginState, Nonce,
    PkceCodeVerifier, random_token,
};
use crate::seal::{OpenError, Purpose, SessionKey};
use crate::settings::OidcProviderSettings;
use crate::token::{ClientCredentials, Grant, RawTokenResponse, expiry, token_request};

/// What identifies one issuer's caches: the same URL reached with other TLS
/// settings or accepting another issuer value is a different cache.
#[derive(Clone, PartialEq, Eq, Hash)]
struct IssuerKey {
    issuer_url: String,
    validator_issuer: Option<String>,
    ca_pem: Option<Vec<u8>>,
    insecure_skip_verify: bool,
    limits: (Duration, Duration, usize),
}

/// Discovery and keys of one issuer.
struct IssuerCache {
    discovery: Arc<Discovery>,
    keys: JwksCache<IdpKeySource>,
}

impl IssuerCache {
    /// Keeps discovery (and, after each success, the key set) warm in the
    /// background: exponential backoff from 1 s to 5 min while failing, an
    /// hourly re-fetch once it works. Holds only a weak reference, so the
    /// task ends with the registry.
    fn spawn_refresher(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                issuer = %self.discovery.issuer_url(),
                "no Tokio runtime: OIDC discovery runs on first use instead of in the background"
            );
            return;
        };
        let weak: Weak<Self> = Arc::downgrade(self);
        runtime.spawn(async move {
            let mut retry = FIRST_RETRY;
            loop {
                let Some(cache) = weak.upgrade() else { return };
                let wait = match cache.discovery.refresh().await {
                    Ok(_) => {
                        retry = FIRST_RETRY;
                        if let Err(error) = cache.keys.refresh().await {
                            tracing::warn!(
                                issuer = %cache.discovery.issuer_url(),
                                %error,
                                "fetching the IdP's signing keys failed; will retry on first use"
                            );
                        }
                        tracing::info!(issuer = %cache.discovery.issuer_url(), "OIDC discovery succeeded");
                        REFRESH_INTERVAL
                    }
                    Err(error) => {
                        tracing::warn!(
                            issuer = %cache.discovery.issuer_url(),
                            %error,
                            retry_in = ?retry,
                            "OIDC discovery failed; sign-in at this IdP is unavailable until it succeeds"
                        );
                        let wait = retry;
                        retry = (retry * 2).min(MAX_RETRY);
                        wait
                    }
                };
                drop(cache);
                tokio::time::sleep(wait).await;
            }
        });
    }
}

/// The process-wide OIDC state: session key, clock and per-issuer caches.
///
/// Create it once at start inside the Tokio runtime (background discovery
/// is spawned on it); cloning is cheap and clones share everything.
#[derive(Clone)]
pub struct OidcRegistry {
    inner: Arc<RegistryInner>,
}

struct RegistryInner {
    session_key: SessionKey,
    clock: Arc<dyn Clock>,
    issuers: Mutex<HashMap<IssuerKey, Arc<IssuerCache>>>,
    login_lifetime: Duration,
    /// Whether issuers get a background refresher (off in unit tests that
    /// count requests, so the counts are deterministic).
    background: bool,
}

impl std::fmt::Debug for OidcRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcRegistry")
            .field("issuers", &self.status())
            .finish_non_exhaustive()
    }
}

impl OidcRegistry {
    /// A registry sealing with `session_key` and reading time from `clock`.
    pub fn new(session_key: SessionKey, clock: impl Clock) -> Self {
        Self::build(session_key, Arc::new(clock), true)
    }

    /// A registry whose discovery runs only on demand (first login or key
    /// fetch), never in the background.
    #[cfg(test)]
    pub(crate) fn on_demand(session_key: SessionKey, clock: impl Clock) -> Self {
        Self::build(session_key, Arc::new(clock), false)
    }

    fn build(session_key: SessionKey, clock: Arc<dyn Clock>, background: bool) -> Self {
        Self {
            inner: Arc::new(RegistryInner {
                session_key,
                clock,
                issuers: Mutex::new(HashMap::new()),
                login_lifetime: DEFAULT_LOGIN_LIFETIME,
                background,
            }),
        }
    }

    /// The client for `settings`, sharing discovery and keys with every
    /// other client of the same issuer. Never fails because the IdP is
    /// down (discovery runs in the background); fails on invalid settings
    /// (bad URL, unusable CA bundle).
    pub fn client(&self, settings: OidcProviderSettings) -> Result<OidcClient, OidcError> {
        settings.validate()?;
        let issuer = self.issuer_cache(&settings)?;
        let policy =
            ValidationPolicy::new(settings.expected_issuer(), settings.expected_audience())
                // Only asymmetric algorithms exist in SigningAlgorithm, and each
                // needs a key of its own kind from the IdP's JWKS, so allowing
                // all of them cannot open an algorithm-confusion hole
                // (RFC 8725 section 3.1); IdPs differ in what they sign with.
                .with_algorithms(SigningAlgorithm::ALL);
        let validator = Validator::new(policy, self.inner.clock.clone());
        let verifier = TokenVerifier::from_parts(validator, issuer.keys.clone());
        Ok(OidcClient {
            inner: Arc::new(ClientInner {
                settings,
                issuer,
                verifier,
                registry: self.clone(),
            }),
        })
    }

    fn issuer_cache(&self, settings: &OidcProviderSettings) -> Result<Arc<IssuerCache>, OidcError> {
        let HttpLimits {
            connect_timeout,
            request_timeout,
            max_response_bytes,
        } = settings.http;
        let key = IssuerKey {
            issuer_url: settings.issuer_url.clone(),
            validator_issuer: settings
                .validator_issuer_url
                .clone()
                .filter(|v| !v.is_empty()),
            ca_pem: settings.tls.ca_pem.as_ref().map(|(_, pem)| pem.clone()),
            insecure_skip_verify: settings.tls.insecure_skip_verify,
            limits: (connect_timeout, request_timeout, max_response_bytes),
        };
        let mut issuers = self.inner.issuers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(cache) = issuers.get(&key) {
            return Ok(cache.clone());
        }
        let http = IdpHttpClient::new(&settings.tls, settings.http)?;
        let discovery = Arc::new(Discovery::new(
            key.issuer_url.clone(),
            key.validator_issuer.clone(),
            http,
            self.inner.clock.clone(),
        ));
        let keys = JwksCache::new(
            IdpKeySource::new(discovery.clone()),
            self.inner.clock.clone(),
            JwksCacheConfig::default(),
        );
        let cache = Arc::new(IssuerCache { discovery, keys });
        if self.inner.background {
            cache.spawn_refresher();
        }
        issuers.insert(key, cache.clone());
        Ok(cache)
    }

    /// Opens and checks the login-state cookie for a callback (see
    /// [`LoginState::open`]). Then look up [`LoginState::cluster`] and call
    /// that cluster's [`OidcClient::complete_login`].
    pub fn open_login_state(
        &self,
        callback: &CallbackParams,
        cookies: &http::HeaderMap,
    ) -> Result<LoginState, OidcError> {
        LoginState::open(
            &self.inner.session_key,
            &*self.inner.clock,
            callback,
            cookies,
        )
    }

    /// Seals a refresh token for the refresh-token cookie of `cluster`,
    /// valid for `lifetime` (the session TTL). The value is bound to the
    /// cluster and to its purpose: it opens neither for another cluster nor
    /// as login state.
    pub fn seal_refresh_token(
        &self,
        cluster: &str,
        refresh_token: &Secret,
        lifetime: Duration,
    ) -> Result<String, OidcError> {
        let payload = SealedRefresh {
            token: refresh_token.expose().to_owned(),
            expires_at: self.inner.clock.now().saturating_add(lifetime.as_secs()),
        };
        let json = serde_json::to_vec(&payload)
            .map_err(|e| OidcError::setting("refresh token", e.to_string()))?;
        self.inner
            .session_key
            .seal(Purpose::RefreshToken, cluster.as_bytes(), &json)
    }

    /// Opens a refresh-token cookie value sealed for `cluster`. Any failure
    /// is [`OidcError::InvalidRefreshCookie`], which
    /// [`OidcError::is_session_over`]: clear the cookies.
    pub fn open_refresh_token(&self, cluster: &str, sealed: &str) -> Result<Secret, OidcError> {
        let json = self
            .inner
            .session_key
            .open(Purpose::RefreshToken, cluster.as_bytes(), sealed)
            .map_err(|e| OidcError::InvalidRefreshCookie {
                reason: match e {
                    OpenError::Malformed => "it is malformed",
                    OpenError::OtherKey => {
                        "it was sealed with a different session key (another replica without \
                         the shared -session-key-file, or a restart without one)"
                    }
                    OpenError::Forged => "it was altered, or belongs to another cluster",
                },
            })?;
        let payload: SealedRefresh =
            serde_json::from_slice(&json).map_err(|_| OidcError::InvalidRefreshCookie {
                reason: "it holds an unknown format",
            })?;
        if self.inner.clock.now() >= payload.expires_at {
            return Err(OidcError::InvalidRefreshCookie {
                reason: "the session TTL has passed",
            });
        }
        Ok(Secret::new(payload.token))
    }

    /// Discovery status of every issuer, for `/readyz`.
    pub fn status(&self) -> Vec<DiscoveryStatus> {
        let issuers = self.inner.issuers.lock().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<_> = issuers.values().map(|c| c.discovery.status()).collect();
        all.sort_by(|a, b| a.issuer_url.cmp(&b.issuer_url));
        all
    }

    /// Whether every issuer has a discovery document cached.
    pub fn is_ready(&self) -> bool {
        self.status().iter().all(|s| s.ready)
    }
}

#[derive(Serialize, Deserialize)]
struct SealedRefresh {
    #[serde(rename = "t")]
    token: String,
    #[serde(rename = "e")]
    expires_at: UnixTime,
}

/// One OIDC client registration at one issuer (one cluster's sign-in).
/// Cheap to clone.
#[derive(Clone)]
pub struct OidcClient {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    settings: OidcProviderSettings,
    issuer: Arc<IssuerCache>,
    verifier: TokenVerifier<IdpKeySource>,
    registry: OidcRegistry,
}

impl std::fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcClient")
            .field("issuer", &self.inner.settings.issuer_url)
            .field("client_id", &self.inner.settings.client_id)
            .finish_non_exhaustive()
    }
}

/// Tokens from a code exchange or refresh, with the ID token verified.
///
/// Only [`OidcClient::complete_login`] and [`OidcClient::refresh`] build
/// one, so holding a `TokenSet` means the checks ran.
pub struct TokenSet {
    id_token: Option<BearerToken>,
    access_token: BearerToken,
    refresh_token: Option<Secret>,
    expires_at: Option<UnixTime>,
    use_access_token: bool,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("id_token", &self.id_token)
            .field("access_token", &self.access_token)
            .field("refresh_token", &self.refresh_token)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl TokenSet {
    /// The verified ID token (always present after a login; after a refresh
    /// only if the IdP sent one).
    pub fn id_token(&self) -> Option<&BearerToken> {
        self.id_token.as_ref()
    }

    /// The access token.
    pub fn access_token(&self) -> &BearerToken {
        &self.access_token
    }

    /// The refresh token to keep: after a refresh, the rotated one when
    /// the IdP issued one, else the one that was used.
    pub fn refresh_token(&self) -> Option<&Secret> {
        self.refresh_token.as_ref()
    }

    /// When [`TokenSet::api_server_token`] expires: the ID token's `exp`,
    /// or the access token's `expires_in` (when the IdP said).
    pub fn expires_at(&self) -> Option<UnixTime> {
        self.expires_at
    }

    /// The token to send to the API server (and put in the token cookie):
    /// the ID token, or the access token under `oidc-use-access-token`.
    pub fn api_server_token(&self) -> &BearerToken {
        match (&self.id_token, self.use_access_token) {
            (Some(id), false) => id,
            _ => &self.access_token,
        }
    }
}

impl OidcClient {
    /// The settings this client was built from.
    pub fn settings(&self) -> &OidcProviderSettings {
        &self.inner.settings
    }

    /// The discovery status of this client's issuer.
    pub fn status(&self) -> DiscoveryStatus {
        self.inner.issuer.discovery.status()
    }

    /// Whether the issuer's discovery document is cached (sign-in can start
    /// without contacting the IdP).
    pub fn is_ready(&self) -> bool {
        self.status().ready
    }

    /// Resolves once the issuer's discovery document is cached (by the
    /// background refresher or a request). For a server that prefers to
    /// wait for its IdP at start; wrap it in a timeout.
    pub async fn wait_ready(&self) {
        self.inner.issuer.discovery.wait_ready().await;
    }

    /// The issuer's endpoints: cached, or fetched now if discovery has not
    /// succeeded yet.
    pub async fn endpoints(&self) -> Result<Arc<ProviderEndpoints>, OidcError> {
        self.inner.issuer.discovery.endpoints().await
    }

    /// The issuer's key cache (shared by every client of the issuer), for
    /// building a headlamp-jwt `JwtAuthenticator` over the same keys.
    pub fn key_cache(&self) -> &JwksCache<IdpKeySource> {
        &self.inner.issuer.keys
    }

    /// The verifier of this client's ID tokens (issuer, audience, keys).
    pub fn verifier(&self) -> &TokenVerifier<IdpKeySource> {
        &self.inner.verifier
    }

    /// Starts a sign-in for `cluster`: answer with `302 Found` to
    /// [`LoginStart::authorization_url`] and set
    /// [`LoginCookie::set_cookie_header`].
    ///
    /// `redirect_uri` is the absolute callback URL (`-oidc-callback-url`, or
    /// derived from the request); it is sealed into the login state so the
    /// code exchange repeats exactly the value the IdP saw.
    #[tracing::instrument(skip_all, fields(cluster = %cluster, issuer = %self.inner.settings.issuer_url))]
    pub async fn start_login(
        &self,
        cluster: &str,
        redirect_uri: &url::Url,
    ) -> Result<LoginStart, OidcError> {
        let endpoints = self.endpoints().await?;
        let registry = &self.inner.registry.inner;
        let key = &registry.session_key;
        let settings = &self.inner.settings;
        let state = CsrfState(random_token(key)?);
        let nonce = Nonce(random_token(key)?);
        let pkce_verifier = if settings.use_pkce {
            Some(PkceCodeVerifier(random_token(key)?))
        } else {
            None
        };
        let mut url = endpoints.authorization_endpoint.clone();
        {
            // OIDC Core section 3.1.2.1; RFC 7636 section 4.3.
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &settings.client_id)
                .append_pair("redirect_uri", redirect_uri.as_str())
                .append_pair("scope", &settings.scope_parameter())
                .append_pair("state", state.secret())
                .append_pair("nonce", nonce.secret());
            if let Some(verifier) = &pkce_verifier {
                query
                    .append_pair("code_challenge", &verifier.s256_challenge())
                    .append_pair("code_challenge_method", "S256");
            }
        }
        let login = LoginState {
            state,
            nonce,
            pkce_verifier,
            cluster: cluster.to_owned(),
            redirect_uri: redirect_uri.as_str().to_owned(),
            expires_at: registry
                .clock
                .now()
                .saturating_add(registry.login_lifetime.as_secs()),
        };
        let sealed = login.seal(key)?;
        let cookie = LoginCookie::new(&login.state, sealed, redirect_uri, registry.login_lifetime);
        Ok(LoginStart {
            authorization_url: url,
            cookie,
        })
    }

    /// Finishes a sign-in: exchanges the code (with the PKCE verifier and
    /// the same `redirect_uri`) and verifies the ID token, including the
    /// nonce sealed in `login` (OIDC Core section 3.1.3.7).
    #[tracing::instrument(skip_all, fields(cluster = %login.cluster, issuer = %self.inner.settings.issuer_url))]
    pub async fn complete_login(
        &self,
        login: LoginState,
        callback: &CallbackParams,
    ) -> Result<TokenSet, OidcError> {
        let endpoints = self.endpoints().await?;
        // RFC 9207 section 2.4: when the IdP names itself in the
        // authorization response, it must be the issuer this login went to
        // (defeats mix-up attacks between IdPs).
        if let Some(iss) = &callback.iss
            && iss != &endpoints.issuer
        {
            return Err(OidcError::InvalidLoginState {
                reason: "the callback's iss parameter names another identity provider",
            });
        }
        let mut params: Vec<(&str, &str)> = vec![
            ("code", callback.code.as_str()),
            ("redirect_uri", login.redirect_uri.as_str()),
        ];
        if let Some(verifier) = &login.pkce_verifier {
            params.push(("code_verifier", verifier.secret()));
        }
        let raw = token_request(
            self.inner.issuer.discovery.http(),
            &endpoints,
            &self.credentials(),
            Grant::AuthorizationCode,
            &params,
        )
        .await?;
        let id_token = raw
            .id_token
            .as_ref()
            .ok_or_else(|| OidcError::MalformedResponse {
                url: endpoints.token_endpoint.to_string(),
                reason: "the token response has no id_token (is the openid scope allowed for this \
                     client?)"
                    .to_owned(),
            })?;
        let verified = self
            .inner
            .verifier
            .verify_with_nonce(id_token.expose(), login.nonce.secret())
            .await
            .map_err(id_token_error)?;
        tracing::info!(
            sub = verified.subject().unwrap_or(""),
            "OIDC sign-in completed"
        );
        Ok(self.token_set(raw, Some(&verified), None))
    }

    /// Uses a refresh token (`grant_type=refresh_token`,
    /// [RFC 6749 section 6](https://www.rfc-editor.org/rfc/rfc6749#section-6)).
    ///
    /// - A rotated refresh token in the answer replaces `refresh_token`;
    ///   without one, `refresh_token` stays in the returned set.
    /// - `invalid_grant`: [`OidcError::SessionOver`] (clear the cookies).
    /// - IdP unreachable or 5xx: an error with
    ///   [`OidcError::is_retryable`]; keep sending the current token until
    ///   it really expires.
    #[tracing::instrument(skip_all, fields(issuer = %self.inner.settings.issuer_url))]
    pub async fn refresh(&self, refresh_token: &Secret) -> Result<TokenSet, OidcError> {
        let endpoints = self.endpoints().await?;
        let scope = self.inner.settings.scope_parameter();
        let params = [
            ("refresh_token", refresh_token.expose()),
            // RFC 6749 section 6: scope may be omitted (same scope); some
            // IdPs (Azure AD) only return an ID token when openid is asked
            // for again, so we ask for the same scope explicitly.
            ("scope", scope.as_str()),
        ];
        let raw = token_request(
            self.inner.issuer.discovery.http(),
            &endpoints,
            &self.credentials(),
            Grant::RefreshToken,
            &params,
        )
        .await?;
        let verified = match &raw.id_token {
            // OIDC Core section 12.2: a refreshed ID token carries no nonce
            // of its own to check; issuer, audience, expiry and signature are
            // checked as on login.
            Some(id_token) => Some(
                self.inner
                    .verifier
                    .verify(id_token.expose())
                    .await
                    .map_err(id_token_error)?,
            ),
            None if !self.inner.settings.use_access_token => {
                return Err(OidcError::NoIdTokenOnRefresh);
            }
            None => None,
        };
        Ok(self.token_set(raw, verified.as_ref(), Some(refresh_token)))
    }

    fn credentials(&self) -> ClientCredentials<'_> {
        ClientCredentials {
            client_id: &self.inner.settings.client_id,
            client_secret: self.inner.settings.client_secret.as_ref(),
        }
    }

    fn token_set(
        &self,
        raw: RawTokenResponse,
        verified: Option<&VerifiedToken>,
        previous_refresh: Option<&Secret>,
    ) -> TokenSet {
        let use_access_token = self.inner.settings.use_access_token;
        let now = self.inner.registry.inner.clock.now();
        let expires_at = match verified {
            Some(v) if !use_access_token => Some(v.expires_at()),
            _ => expiry(now, raw.expires_in),
        };
        TokenSet {
            id_token: raw.id_token,
            access_token: raw.access_token,
            refresh_token: raw.refresh_token.or_else(|| previous_refresh.cloned()),
            expires_at,
            use_access_token,
        }
    }
}

fn id_token_error(error: JwtError) -> OidcError {
    if error.is_unavailable() {
        OidcError::IdTokenKeysUnavailable {
            reason: error.to_string(),
        }
    } else {
        OidcError::IdToken {
            reason: error.to_string(),
        }
    }
}
