//! The cluster's own credentials, used only in impersonate mode: the proxy
//! calls the API server as itself and asks to act as the user
//! (<https://kubernetes.io/docs/reference/access-authn-authz/authentication/#user-impersonation>).
//!
//! Only credentials that can be presented on every request without running
//! anything are usable: a token, a token file, a client certificate. Exec
//! plugins and auth-provider entries belong to a person at a terminal, not
//! to a server.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use headlamp_core::{Clock, UnixTime};
use http::HeaderValue;
use kube_client::config::AuthInfo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use secrecy::ExposeSecret;

use crate::cluster::{UserSpec, parse_certificates};

/// client-go re-reads token files after a minute
/// (`transport.NewCachedFileTokenSource`); the kubelet rotates projected
/// service-account tokens well before they expire (at 80% of their life,
/// <https://kubernetes.io/docs/concepts/security/service-accounts/#bound-service-account-token-volume>),
/// so a minute-old copy is always still valid.
pub(crate) const TOKEN_FILE_REFRESH_SECONDS: u64 = 60;

/// The bearer token the proxy presents as itself.
#[derive(Clone)]
pub(crate) enum UpstreamToken {
    /// A token written into the kubeconfig.
    Static(HeaderValue),
    /// A token file, re-read when it rotates.
    File(Arc<TokenFile>),
}

impl UpstreamToken {
    /// The `Authorization` value to send.
    pub(crate) async fn authorization(&self) -> Result<HeaderValue, String> {
        match self {
            Self::Static(value) => Ok(value.clone()),
            Self::File(file) => file.authorization().await,
        }
    }
}

/// The cluster's credentials for impersonate mode.
pub(crate) struct UpstreamCredentials {
    pub(crate) token: Option<UpstreamToken>,
    /// Client certificate chain and key, presented in the TLS handshake.
    pub(crate) client_identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
}

/// A token file with a cached `Authorization` value.
///
/// Requests only take the read lock long enough to clone a `HeaderValue`
/// (a reference-count increment); one request a minute re-reads the file.
pub(crate) struct TokenFile {
    path: PathBuf,
    clock: Arc<dyn Clock>,
    cached: RwLock<Option<(HeaderValue, UnixTime)>>,
}

impl TokenFile {
    pub(crate) fn new(path: PathBuf, clock: Arc<dyn Clock>) -> Self {
        Self {
            path,
            clock,
            cached: RwLock::new(None),
        }
    }

    pub(crate) async fn authorization(&self) -> Result<HeaderValue, String> {
        let now = self.clock.now();
        let stale = {
            let cached = self.cached.read().unwrap_or_else(|p| p.into_inner());
            match &*cached {
                Some((value, read_at))
                    if now.saturating_sub(*read_at) < TOKEN_FILE_REFRESH_SECONDS =>
                {
                    return Ok(value.clone());
                }
                Some((value, _)) => Some(value.clone()),
                None => None,
            }
        };
        match read_token_file(&self.path).await {
            Ok(value) => {
                let mut cached = self.cached.write().unwrap_or_else(|p| p.into_inner());
                *cached = Some((value.clone(), now));
                Ok(value)
            }
            // As client-go does: a failed re-read keeps the last good token
            // (a rotation in progress can briefly remove the file).
            Err(error) => match stale {
                Some(value) => {
                    tracing::warn!(path = %self.path.display(), %error, "token file re-read failed; using the previous token");
                    Ok(value)
                }
                None => Err(error),
            },
        }
    }
}

async fn read_token_file(path: &Path) -> Result<HeaderValue, String> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|e| format!("cannot read token file {}: {e}", path.display()))?;
    bearer_value(text.trim()).map_err(|reason| format!("token file {}: {reason}", path.display()))
}

/// `Bearer <token>` as a sensitive header value (HTTP/2 HPACK then never
/// indexes it, RFC 7541 section 7.1.3).
pub(crate) fn bearer_value(token: &str) -> Result<HeaderValue, &'static str> {
    if token.is_empty() {
        return Err("the token is empty");
    }
    let mut value = HeaderValue::try_from(format!("Bearer {token}"))
        .map_err(|_| "the token holds characters that cannot be sent in an HTTP header")?;
    value.set_sensitive(true);
    Ok(value)
}

/// Resolves a cluster's user into credentials usable for impersonation.
pub(crate) async fn resolve(
    user: &UserSpec,
    clock: &Arc<dyn Clock>,
) -> Result<UpstreamCredentials, String> {
    match user {
        UserSpec::ServiceAccount { token_file } => {
            let file = TokenFile::new(token_file.clone(), clock.clone());
            // Read once now, so a missing mount shows in /config at start.
            file.authorization().await?;
            Ok(UpstreamCredentials {
                token: Some(UpstreamToken::File(Arc::new(file))),
                client_identity: None,
            })
        }
        UserSpec::Kubeconfig(auth) => resolve_kubeconfig_user(auth, clock).await,
    }
}

async fn resolve_kubeconfig_user(
    auth: &AuthInfo,
    clock: &Arc<dyn Clock>,
) -> Result<UpstreamCredentials, String> {
    // kubeconfig: "If both token and tokenFile are present, token takes precedence".
    let token = match (&auth.token, &auth.token_file) {
        (Some(token), _) => Some(UpstreamToken::Static(
            bearer_value(token.expose_secret().trim())
                .map_err(|reason| format!("the user's token is unusable: {reason}"))?,
        )),
        (None, Some(path)) => {
            let file = TokenFile::new(PathBuf::from(path), clock.clone());
            file.authorization().await?;
            Some(UpstreamToken::File(Arc::new(file)))
        }
        (None, None) => None,
    };
    let client_identity = client_identity(auth)?;
    if token.is_none() && client_identity.is_none() {
        let what = if let Some(exec) = &auth.exec {
            format!(
                "an exec plugin ({})",
                exec.command.as_deref().unwrap_or("no command")
            )
        } else if let Some(provider) = &auth.auth_provider {
            format!("the {:?} auth-provider", provider.name)
        } else if auth.username.is_some() {
            "a username and password (basic auth, removed in Kubernetes 1.19)".to_owned()
        } else {
            "no credentials".to_owned()
        };
        return Err(format!(
            "impersonate mode calls the API server with the cluster's own credentials, but this \
             context's user has {what}; give it a token, tokenFile or client-certificate/\
             client-key of an account allowed to impersonate (verb \"impersonate\" on users and \
             groups)"
        ));
    }
    Ok(UpstreamCredentials {
        token,
        client_identity,
    })
}

type ClientIdentity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn client_identity(auth: &AuthInfo) -> Result<Option<ClientIdentity>, String> {
    let cert = load_data_or_file(
        auth.client_certificate_data.as_deref(),
        auth.client_certificate.as_deref(),
        "client-certificate",
    )?;
    let key = load_data_or_file(
        auth.client_key_data.as_ref().map(|k| k.expose_secret()),
        auth.client_key.as_deref(),
        "client-key",
    )?;
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(_), None) => Err("the user has a client certificate but no client-key".to_owned()),
        (None, Some(_)) => Err("the user has a client-key but no client certificate".to_owned()),
        (Some(cert), Some(key)) => {
            let chain = parse_certificates(&cert).map_err(|e| format!("client-certificate {e}"))?;
            let key = PrivateKeyDer::from_pem_slice(&key)
                .map_err(|e| format!("client-key is not a PEM private key: {e}"))?;
            Ok(Some((chain, key)))
        }
    }
}

/// The kubeconfig convention: `*-data` (base64) wins over the file path.
fn load_data_or_file(
    data: Option<&str>,
    file: Option<&str>,
    what: &str,
) -> Result<Option<Vec<u8>>, String> {
    use base64::Engine;
    match (data, file) {
        (Some(data), _) => base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map(Some)
            .map_err(|e| format!("{what}-data is not base64: {e}")),
        (None, Some(path)) => std::fs::read(path)
            .map(Some)
            .map_err(|e| format!("cannot read {what} file {path}: {e}")),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use headlamp_core::FakeClock;

    #[tokio::test]
    async fn token_file_is_reread_after_a_minute_and_survives_a_gap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "one\n").unwrap();
        let clock = FakeClock::at(1_000);
        let file = TokenFile::new(path.clone(), Arc::new(clock.clone()));
        assert_eq!(file.authorization().await.unwrap(), "Bearer one");

        std::fs::write(&path, "two").unwrap();
        clock.advance(TOKEN_FILE_REFRESH_SECONDS - 1);
        assert_eq!(file.authorization().await.unwrap(), "Bearer one", "cached");
        clock.advance(1);
        assert_eq!(file.authorization().await.unwrap(), "Bearer two", "rotated");

        std::fs::remove_file(&path).unwrap();
        clock.advance(TOKEN_FILE_REFRESH_SECONDS);
        assert_eq!(file.authorization().await.unwrap(), "Bearer two", "kept");
        assert!(file.authorization().await.unwrap().is_sensitive());
    }

    #[tokio::test]
    async fn missing_token_file_is_a_clear_error() {
        let clock: Arc<dyn Clock> = Arc::new(FakeClock::at(0));
        let user = UserSpec::ServiceAccount {
            token_file: "/nonexistent/token".into(),
        };
        let Err(e) = resolve(&user, &clock).await else {
            panic!("expected an error")
        };
        assert!(e.contains("/nonexistent/token"), "{e}");
    }

    #[tokio::test]
    async fn exec_and_auth_provider_users_cannot_impersonate() {
        let clock: Arc<dyn Clock> = Arc::new(FakeClock::at(0));
        let auth: AuthInfo = serde_json::from_value(serde_json::json!({
            "exec": { "command": "aws", "apiVersion": "client.authentication.k8s.io/v1" }
        }))
        .unwrap();
        let Err(e) = resolve(&UserSpec::Kubeconfig(Box::new(auth)), &clock).await else {
            panic!("expected an error")
        };
        assert!(
            e.contains("exec plugin (aws)") && e.contains("impersonate"),
            "{e}"
        );

        let auth: AuthInfo = serde_json::from_value(serde_json::json!({
            "auth-provider": { "name": "oidc", "config": {} }
        }))
        .unwrap();
        let Err(e) = resolve(&UserSpec::Kubeconfig(Box::new(auth)), &clock).await else {
            panic!("expected an error")
        };
        assert!(e.contains("\"oidc\" auth-provider"), "{e}");
    }

    #[tokio::test]
    async fn client_certificate_users_resolve() {
        use base64::Engine;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["headlamp".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
        let auth: AuthInfo = serde_json::from_value(serde_json::json!({
            "client-certificate-data": b64(cert.pem()),
            "client-key-data": b64(key.serialize_pem()),
        }))
        .unwrap();
        let clock: Arc<dyn Clock> = Arc::new(FakeClock::at(0));
        let creds = resolve(&UserSpec::Kubeconfig(Box::new(auth)), &clock)
            .await
            .unwrap();
        assert!(creds.token.is_none());
        assert_eq!(creds.client_identity.unwrap().0.len(), 1);
    }
}
