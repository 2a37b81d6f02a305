//! [`App`]: everything a handler may use, built once at start from the
//! [`Config`].
//!
//! - Clusters come from headlamp-proxy's loaders (kubeconfig contexts and
//!   `-in-cluster`); a context that cannot be used is kept with its error
//!   so `/config` can show it.
//! - Each cluster's OIDC settings: its kubeconfig user's
//!   `auth-provider: oidc` config when it has one, else the global
//!   `-oidc-*` flags (compat part B: Headlamp applies the flags to the
//!   in-cluster context only).
//! - One headlamp-oidc registry (discovery runs in the background; an IdP
//!   that is down never stops the start) sealing with the
//!   `-session-key-file` key, or a per-process random key.
//! - In impersonate mode, a headlamp-jwt authenticator per cluster, over
//!   that cluster's issuer keys, plugged into the proxy.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use headlamp_config::{Config, KubeconfigOrigin, OidcSettings};
use headlamp_core::{Authenticate, AuthenticationError, BearerToken, Clock, Identity, SystemClock};
use headlamp_jwt::{ClaimMapping, JwtAuthenticator};
use headlamp_oidc::{
    IdpKeySource, IdpTls, OidcClient, OidcProviderSettings, OidcRegistry, SessionKey,
};
use headlamp_proxy::{ClusterInfo, ClusterSources, InClusterConfig, KubeProxy, KubeconfigFiles};
use headlamp_proxy::{ClusterSource, ProxyMode};
use http_body_util::combinators::BoxBody;

use crate::cookies::CookieScope;
use crate::frontend::Frontend;
use crate::metrics::Metrics;
use crate::respond::BoxError;
use crate::server::ServerError;
use crate::session::Refresher;

/// Request bodies as the proxy sees them (boxed, so handlers and tests can
/// pass any body type).
pub(crate) type RequestBody = BoxBody<Bytes, BoxError>;

/// The Kubernetes API proxy of this server.
pub(crate) type Proxy = KubeProxy<ClusterAuthenticator, RequestBody>;

/// A cluster's sign-in configuration.
#[derive(Debug, Clone)]
pub(crate) enum ClusterOidc {
    /// No OIDC settings: no kubeconfig `auth-provider`, no global flags.
    None,
    /// Sign-in works through this client.
    Client(OidcClient),
    /// The settings are there but unusable (shown by `/config` and `/oidc`).
    Invalid(String),
}

impl ClusterOidc {
    /// Headlamp's `auth_type`: the frontend shows "Sign in" exactly when it
    /// is `oidc`.
    pub(crate) fn auth_type(&self) -> &'static str {
        match self {
            Self::None => "",
            Self::Client(_) | Self::Invalid(_) => "oidc",
        }
    }

    pub(crate) fn client(&self) -> Option<&OidcClient> {
        match self {
            Self::Client(client) => Some(client),
            _ => None,
        }
    }
}

/// What every handler may use, built once at start and shared.
pub(crate) struct App {
    /// The validated configuration.
    pub(crate) config: Arc<Config>,
    /// The web frontend: `-html-static-dir` or the built-in page.
    pub(crate) frontend: Frontend,
    /// The Kubernetes API proxy (and the cluster list).
    pub(crate) proxy: Proxy,
    /// Each cluster's sign-in configuration, by cluster name.
    pub(crate) oidc: HashMap<String, ClusterOidc>,
    /// Each cluster's cookie names and attributes, for plain-http and for
    /// https requests (built once: the hot path only looks them up).
    cookie_scopes: HashMap<String, [CookieScope; 2]>,
    /// Discovery, keys and sealing for every issuer.
    pub(crate) registry: OidcRegistry,
    /// `-oidc-callback-url`, parsed; `None` = derived per request.
    pub(crate) callback_url: Option<url::Url>,
    /// Refreshes tokens, one IdP call per refresh token.
    pub(crate) refresher: Refresher,
    /// Prometheus metrics.
    pub(crate) metrics: Arc<Metrics>,
    /// The clock token expiry is read with.
    pub(crate) clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("base_url", &self.config.base_url)
            .field("clusters", &self.oidc.keys().collect::<Vec<_>>())
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ClusterAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterAuthenticator")
            .field("clusters", &self.by_cluster.get().map(HashMap::len))
            .finish()
    }
}

impl App {
    /// Builds everything; fails only on what an operator must fix (an
    /// unreadable kubeconfig, a bad `-oidc-callback-url`, an unusable
    /// `-html-static-dir`). An unreachable IdP or API server is not a
    /// start failure: `/readyz` reports it.
    pub(crate) async fn build(config: Arc<Config>) -> Result<Self, ServerError> {
        let frontend = Frontend::load(&config)?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let metrics = Arc::new(Metrics::new());
        let impersonate = config.oidc.as_ref().is_some_and(|o| o.impersonate);

        let authenticator = ClusterAuthenticator {
            by_cluster: Arc::new(OnceLock::new()),
            metrics: Arc::clone(&metrics),
        };
        let mode = if impersonate {
            ProxyMode::Impersonate {
                authenticator: authenticator.clone(),
            }
        } else {
            ProxyMode::Passthrough
        };
        let proxy: Proxy = KubeProxy::builder(mode)
            .clusters(cluster_sources(&config))
            .base_path(config.base_url.clone())
            .clock(Arc::clone(&clock))
            .build()
            .await
            .map_err(|e| ServerError::Clusters {
                reason: e.to_string(),
            })?;

        let key = match &config.session.key {
            Some(key) => SessionKey::from_material(key.expose()),
            None => {
                tracing::warn!(
                    "no -session-key-file: using a random per-process session key; sign-ins \
                     and refresh cookies do not survive a restart or work across replicas"
                );
                SessionKey::ephemeral()
            }
        }
        .map_err(|e| ServerError::SessionKey {
            reason: e.to_string(),
        })?;
        let registry = OidcRegistry::new(key, SystemClock);
        metrics.watch_idp(registry.clone());

        let global = config.oidc.as_ref().map(provider_settings);
        let mut oidc = HashMap::new();
        for cluster in proxy.clusters() {
            let settings = cluster_oidc(cluster, global.as_ref(), &registry);
            match &settings {
                ClusterOidc::Client(client) => tracing::info!(
                    cluster = %cluster.name,
                    issuer = %client.settings().issuer_url,
                    client_id = %client.settings().client_id,
                    "OIDC sign-in configured"
                ),
                ClusterOidc::Invalid(reason) => tracing::warn!(
                    cluster = %cluster.name,
                    %reason,
                    "OIDC settings unusable; sign-in for this cluster will fail"
                ),
                ClusterOidc::None => {}
            }
            oidc.insert(cluster.name.clone(), settings);
        }

        if let Some(global) = config.oidc.as_ref().filter(|o| o.impersonate) {
            let mapping = claim_mapping(global);
            let table = oidc
                .iter()
                .filter_map(|(name, settings)| {
                    let client = settings.client()?;
                    let authenticator =
                        JwtAuthenticator::new(client.verifier().clone(), mapping.clone());
                    Some((name.clone(), Arc::new(authenticator)))
                })
                .collect();
            // Set once, before the first request can arrive.
            let _ = authenticator.by_cluster.set(table);
        }

        let callback_url = config
            .oidc
            .as_ref()
            .and_then(|o| o.callback_url.as_deref())
            .map(|raw| {
                url::Url::parse(raw).map_err(|e| ServerError::CallbackUrl {
                    url: raw.to_owned(),
                    reason: e.to_string(),
                })
            })
            .transpose()?;

        let cookie_scopes = proxy
            .clusters()
            .map(|c| {
                let scope = |secure| {
                    CookieScope::new(&c.name, &config.base_url, secure, config.session.ttl)
                };
                (c.name.clone(), [scope(false), scope(true)])
            })
            .collect();

        Ok(Self {
            refresher: Refresher::new(Arc::clone(&metrics)),
            cookie_scopes,
            config,
            frontend,
            proxy,
            oidc,
            registry,
            callback_url,
            metrics,
            clock,
        })
    }

    /// The cookies of a configured cluster, `Secure` or not.
    pub(crate) fn cookie_scope(&self, name: &str, secure: bool) -> Option<&CookieScope> {
        self.cookie_scopes
            .get(name)
            .map(|[plain, https]| if secure { https } else { plain })
    }

    /// A configured cluster and its sign-in settings.
    pub(crate) fn cluster(&self, name: &str) -> Option<(&ClusterInfo, &ClusterOidc)> {
        let info = self.proxy.cluster(name)?;
        Some((info, self.oidc.get(name).unwrap_or(&ClusterOidc::None)))
    }
}

/// headlamp-proxy's cluster sources from the configuration.
fn cluster_sources(config: &Config) -> ClusterSources {
    let clusters = &config.clusters;
    let kubeconfig = match (
        clusters.kubeconfig.origin,
        clusters.kubeconfig.paths.as_slice(),
    ) {
        (_, []) | (KubeconfigOrigin::None, _) => None,
        // An explicitly named file must exist (a typo is an error, not an
        // empty cluster list).
        (KubeconfigOrigin::Configured, [one]) => Some(KubeconfigFiles::explicit(one)),
        (_, paths) => std::env::join_paths(paths)
            .ok()
            .map(|joined| KubeconfigFiles::from_path_list(&joined)),
    };
    ClusterSources {
        kubeconfig,
        skipped_contexts: clusters.skipped_contexts.clone(),
        in_cluster: clusters
            .in_cluster
            .then(|| InClusterConfig::from_env(clusters.in_cluster_context_name.clone())),
        insecure_skip_tls_verify: clusters.insecure_skip_tls_verify,
    }
}

/// The global `-oidc-*` flags as headlamp-oidc settings.
fn provider_settings(global: &OidcSettings) -> OidcProviderSettings {
    let mut settings = OidcProviderSettings::new(&global.issuer_url, &global.client_id);
    if let Some(secret) = &global.client_secret {
        settings = settings.with_client_secret(secret.clone());
    }
    settings.validator_issuer_url = global.validator_issuer_url.clone();
    settings.validator_client_id = global.validator_client_id.clone();
    settings.scopes = global.extra_scopes().to_vec();
    settings.tls = IdpTls {
        ca_pem: global.ca.as_ref().map(|ca| {
            (
                format!("-oidc-ca-file {}", ca.path.display()),
                ca.pem.clone(),
            )
        }),
        insecure_skip_verify: global.skip_tls_verify,
    };
    settings.use_pkce = global.use_pkce;
    settings.use_access_token = global.use_access_token;
    settings
}

/// A cluster's OIDC settings: its kubeconfig `auth-provider: oidc` config,
/// else the global flags (for every cluster, compat part B).
fn cluster_oidc(
    cluster: &ClusterInfo,
    global: Option<&OidcProviderSettings>,
    registry: &OidcRegistry,
) -> ClusterOidc {
    let own = cluster
        .auth_provider
        .as_ref()
        .filter(|p| p.name == "oidc" && cluster.source == ClusterSource::Kubeconfig);
    let settings = match (own, global) {
        (Some(provider), _) => {
            let defaults = global
                .cloned()
                .unwrap_or_else(|| OidcProviderSettings::new("", ""));
            OidcProviderSettings::from_auth_provider_config(&provider.config, &defaults)
        }
        (None, Some(global)) => Ok(global.clone()),
        (None, None) => return ClusterOidc::None,
    };
    match settings.and_then(|s| registry.client(s)) {
        Ok(client) => ClusterOidc::Client(client),
        Err(e) => ClusterOidc::Invalid(e.to_string()),
    }
}

/// `-oidc-impersonate-claim`, groups claim, prefixes and required claims.
fn claim_mapping(global: &OidcSettings) -> ClaimMapping {
    let claims = &global.claims;
    let mut mapping = ClaimMapping::new()
        .with_username_claim(&claims.username_claim)
        .with_groups_claim(&claims.groups_claim)
        .with_username_prefix(&claims.username_prefix)
        .with_groups_prefix(&claims.groups_prefix);
    for (name, value) in &claims.required_claims {
        mapping = mapping.with_required_claim(name, value);
    }
    mapping
}

tokio::task_local! {
    /// The cluster the current proxied request is for. The proxy asks its
    /// authenticator about a token only; which issuer and audience the
    /// token must have depends on the cluster, so the route handler scopes
    /// the proxy call with it (see [`with_cluster`]).
    static CURRENT_CLUSTER: Arc<str>;
}

/// Runs `future` (a proxy call) with `cluster` as the current cluster for
/// [`ClusterAuthenticator`].
pub(crate) fn with_cluster<F: Future>(
    cluster: Arc<str>,
    future: F,
) -> impl Future<Output = F::Output> {
    CURRENT_CLUSTER.scope(cluster, future)
}

/// Impersonate mode's [`Authenticate`]: the JWT authenticator of the
/// cluster the request is for, so a token is checked against that
/// cluster's issuer and client id and no other (a token for cluster A's
/// IdP is never accepted for cluster B).
#[derive(Clone)]
pub(crate) struct ClusterAuthenticator {
    by_cluster: Arc<OnceLock<HashMap<String, Arc<JwtAuthenticator<IdpKeySource>>>>>,
    metrics: Arc<Metrics>,
}

impl Authenticate for ClusterAuthenticator {
    async fn authenticate(&self, token: &BearerToken) -> Result<Identity, AuthenticationError> {
        let cluster = CURRENT_CLUSTER.try_with(Arc::clone).ok();
        let authenticator = cluster
            .as_deref()
            .and_then(|name| self.by_cluster.get()?.get(name));
        let Some(authenticator) = authenticator else {
            self.metrics.validation(Err("no_verifier"));
            return Err(AuthenticationError::rejected(format!(
                "cluster {} has no OIDC settings, so tokens for it cannot be verified in \
                 impersonate mode; give it an auth-provider in the kubeconfig or set the \
                 -oidc-* flags",
                cluster.as_deref().unwrap_or("?")
            ))
            .with_metric_label("no_verifier"));
        };
        let outcome = authenticator.authenticate(token).await;
        match &outcome {
            Ok(identity) => {
                tracing::Span::current().record("user", identity.username());
                self.metrics.validation(Ok(()));
            }
            Err(error) => self.metrics.validation(Err(error.metric_label)),
        }
        outcome
    }
}
