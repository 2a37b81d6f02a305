//! The real OpenID provider of the test bed: npm `oidc-provider` (OpenID
//! Certified) run by `tests/idp/server.mjs` under node, on 127.0.0.1 and a
//! free port, with the users of [`TestUser`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), headlamp_test_util::TestBedError> {
//! use headlamp_test_util::idp::{TestIdp, TestIdpOptions, TestUser};
//!
//! let idp = TestIdp::start(
//!     TestIdpOptions::new("http://127.0.0.1:4466/oidc-callback").id_token_ttl_secs(5),
//! )
//! .await?;
//! let tokens = idp.tokens_for(TestUser::Alice).await?;
//! let refreshed = idp.refresh(tokens.refresh_token.as_deref().unwrap_or_default()).await?;
//! # let _ = refreshed; Ok(()) }
//! ```
//!
//! Needs `node` in `PATH` and `scripts/install-test-deps.sh` run once; without
//! them [`TestIdp::start`] fails saying so (a test never silently passes).

pub mod browser;
pub mod cookie_jar;
pub mod http;
pub mod login;
pub mod tokens;
pub mod users;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tokio::process::Command;

pub use self::browser::{BrowserLogin, BrowserLoginOutcome, browser_login};
pub use self::cookie_jar::CookieJar;
pub use self::http::{HttpClient, HttpResponse};
pub use self::login::{LoginSession, scripted_abort, scripted_login};
pub use self::tokens::{AuthorizationRequest, Pkce, TokenResponse};
pub use self::users::TestUser;
use crate::TestBedError;
use crate::process::{ChildProcess, node_executable};

/// How long the IdP may take to print its ready line (node start-up plus an
/// RSA key generation; a second or two on the test machines).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The directory holding `package.json`, `server.mjs` and, once installed,
/// `node_modules`.
pub fn idp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/idp")
}

/// The repository root (for scripts and artifacts).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Fails unless `npm ci` ran in tests/idp for the current lockfile (the
/// install script leaves a stamp holding the lockfile's SHA-256).
pub fn ensure_npm_packages() -> Result<(), TestBedError> {
    ensure_npm_packages_in(&idp_dir())
}

fn ensure_npm_packages_in(dir: &Path) -> Result<(), TestBedError> {
    let stamp_path = dir.join("node_modules/.headlamp-install-stamp");
    let lock_path = dir.join("package-lock.json");
    let stamp = std::fs::read_to_string(&stamp_path).map_err(|_| TestBedError::ToolMissing {
        tool: "the npm packages of tests/idp (oidc-provider, playwright-core)",
        path: stamp_path.clone(),
    })?;
    let lock = std::fs::read(&lock_path)
        .map_err(|source| TestBedError::io(format!("reading {}", lock_path.display()), source))?;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &lock);
    let expected: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    if stamp.trim() != expected {
        return Err(TestBedError::InvalidOption(format!(
            "tests/idp/node_modules was installed for another package-lock.json; \
             run scripts/install-test-deps.sh again (stamp {}, lockfile {expected})",
            stamp.trim()
        )));
    }
    Ok(())
}

/// Which refresh tokens the IdP issues on the code flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RefreshTokens {
    /// Always, as Keycloak, Entra ID and Dex do for a confidential client.
    #[default]
    Always,
    /// Only when `offline_access` was requested and granted (OIDC Core 11).
    OfflineAccess,
    /// Never (the client is not even allowed the refresh_token grant).
    Never,
}

/// How the client authenticates at the token endpoint (RFC 6749 2.3.1).
/// The IdP accepts both for the client; this is what it registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuthMethod {
    /// HTTP Basic (the default).
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

/// The access token's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccessTokenFormat {
    /// Opaque (usable at the IdP's UserInfo endpoint), the default.
    #[default]
    Opaque,
    /// An RS256 JWT with `aud` = client id and the username, email and groups
    /// claims, for `-oidc-use-access-token` tests.
    Jwt,
}

/// How to start the test IdP. [`TestIdpOptions::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct TestIdpOptions {
    /// The client id (default `headlamp`).
    pub client_id: String,
    /// The client secret (default `headlamp-test-secret`).
    pub client_secret: String,
    /// Registered redirect URIs; at least one.
    pub redirect_uris: Vec<String>,
    /// Registered post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// ID token lifetime (default 3600 s).
    pub id_token_ttl: Duration,
    /// Access token lifetime (default 3600 s).
    pub access_token_ttl: Duration,
    /// Refresh token lifetime (default 86400 s).
    pub refresh_token_ttl: Duration,
    /// Which refresh tokens are issued.
    pub refresh_tokens: RefreshTokens,
    /// Reject authorization requests without PKCE.
    pub require_pkce: bool,
    /// The registered token endpoint authentication method.
    pub client_auth_method: ClientAuthMethod,
    /// The access token format.
    pub access_token_format: AccessTokenFormat,
    /// Serve the issuer under this path (e.g. `/realms/test`); empty for none.
    pub issuer_path: String,
    /// The port; 0 (default) picks a free one.
    pub port: u16,
    /// Where the signing keys live; `None` keeps them in a temporary
    /// directory owned by the [`TestIdp`] (kept across [`TestIdp::restart`]).
    pub keys_file: Option<PathBuf>,
}

impl TestIdpOptions {
    /// Defaults with one redirect URI.
    pub fn new(redirect_uri: impl Into<String>) -> Self {
        Self {
            client_id: "headlamp".to_owned(),
            client_secret: "headlamp-test-secret".to_owned(),
            redirect_uris: vec![redirect_uri.into()],
            post_logout_redirect_uris: Vec::new(),
            id_token_ttl: Duration::from_secs(3600),
            access_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(86_400),
            refresh_tokens: RefreshTokens::Always,
            require_pkce: false,
            client_auth_method: ClientAuthMethod::ClientSecretBasic,
            access_token_format: AccessTokenFormat::Opaque,
            issuer_path: String::new(),
            port: 0,
            keys_file: None,
        }
    }

    /// Registers one more redirect URI.
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uris.push(uri.into());
        self
    }

    /// Sets the client id and secret.
    pub fn client(mut self, id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.client_id = id.into();
        self.client_secret = secret.into();
        self
    }

    /// Sets the ID token lifetime in seconds.
    pub fn id_token_ttl_secs(mut self, secs: u64) -> Self {
        self.id_token_ttl = Duration::from_secs(secs);
        self
    }

    /// Sets the access token lifetime in seconds.
    pub fn access_token_ttl_secs(mut self, secs: u64) -> Self {
        self.access_token_ttl = Duration::from_secs(secs);
        self
    }

    /// Sets the refresh token lifetime in seconds.
    pub fn refresh_token_ttl_secs(mut self, secs: u64) -> Self {
        self.refresh_token_ttl = Duration::from_secs(secs);
        self
    }

    fn args(&self, keys_file: &Path) -> Result<Vec<String>, TestBedError> {
        if self.redirect_uris.is_empty() {
            return Err(TestBedError::InvalidOption(
                "TestIdpOptions needs at least one redirect URI".to_owned(),
            ));
        }
        let secs = |d: Duration, what: &str| {
            if d.as_secs() == 0 {
                Err(TestBedError::InvalidOption(format!(
                    "{what} must be at least one second"
                )))
            } else {
                Ok(d.as_secs().to_string())
            }
        };
        let mut args = vec![
            "--port".to_owned(),
            self.port.to_string(),
            "--client-id".to_owned(),
            self.client_id.clone(),
            "--id-token-ttl".to_owned(),
            secs(self.id_token_ttl, "the ID token lifetime")?,
            "--access-token-ttl".to_owned(),
            secs(self.access_token_ttl, "the access token lifetime")?,
            "--refresh-token-ttl".to_owned(),
            secs(self.refresh_token_ttl, "the refresh token lifetime")?,
            "--refresh-tokens".to_owned(),
            match self.refresh_tokens {
                RefreshTokens::Always => "always",
                RefreshTokens::OfflineAccess => "offline-access",
                RefreshTokens::Never => "never",
            }
            .to_owned(),
            "--client-auth-method".to_owned(),
            match self.client_auth_method {
                ClientAuthMethod::ClientSecretBasic => "client_secret_basic",
                ClientAuthMethod::ClientSecretPost => "client_secret_post",
            }
            .to_owned(),
            "--access-token-format".to_owned(),
            match self.access_token_format {
                AccessTokenFormat::Opaque => "opaque",
                AccessTokenFormat::Jwt => "jwt",
            }
            .to_owned(),
            "--keys-file".to_owned(),
            keys_file.display().to_string(),
        ];
        for uri in &self.redirect_uris {
            args.extend(["--redirect-uri".to_owned(), uri.clone()]);
        }
        for uri in &self.post_logout_redirect_uris {
            args.extend(["--post-logout-redirect-uri".to_owned(), uri.clone()]);
        }
        if self.require_pkce {
            args.push("--require-pkce".to_owned());
        }
        if !self.issuer_path.is_empty() {
            args.extend(["--issuer-path".to_owned(), self.issuer_path.clone()]);
        }
        Ok(args)
    }
}

/// The ready line of server.mjs.
#[derive(Debug, Deserialize)]
struct ReadyLine {
    issuer: String,
    port: u16,
}

/// A running test IdP. Killed on drop; its log is printed if the test panics.
#[derive(Debug)]
pub struct TestIdp {
    options: TestIdpOptions,
    issuer: String,
    port: u16,
    keys_file: PathBuf,
    /// Holds the generated keys file unless the options named one.
    _keys_dir: Option<tempfile::TempDir>,
    process: Option<ChildProcess>,
    http: HttpClient,
}

impl TestIdp {
    /// Starts the IdP and waits for it to listen.
    pub async fn start(options: TestIdpOptions) -> Result<Self, TestBedError> {
        let (keys_file, keys_dir) = match &options.keys_file {
            Some(path) => (path.clone(), None),
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("headlamp-test-idp-")
                    .tempdir()
                    .map_err(|source| {
                        TestBedError::io("creating the IdP keys directory", source)
                    })?;
                (dir.path().join("keys.json"), Some(dir))
            }
        };
        let mut idp = Self {
            issuer: String::new(),
            port: options.port,
            options,
            keys_file,
            _keys_dir: keys_dir,
            process: None,
            http: HttpClient::new()?,
        };
        idp.spawn(idp.options.port).await?;
        Ok(idp)
    }

    async fn spawn(&mut self, port: u16) -> Result<(), TestBedError> {
        let node = node_executable()?;
        ensure_npm_packages()?;
        let mut options = self.options.clone();
        options.port = port;
        let mut command = Command::new(node);
        command
            .current_dir(idp_dir())
            .arg("server.mjs")
            .arg("--exit-with-stdin")
            .args(options.args(&self.keys_file)?)
            // The secret goes by environment, not argv, so it is not in `ps`.
            .env("TEST_IDP_CLIENT_SECRET", &options.client_secret)
            .env("NODE_ENV", "test");
        let mut process = ChildProcess::spawn("test-idp", command, false)?;
        let ready = process
            .wait_for_stdout_line(READY_TIMEOUT, |line| {
                serde_json::from_str::<ReadyLine>(line).ok()
            })
            .await?;
        self.issuer = ready.issuer;
        self.port = ready.port;
        self.process = Some(process);
        Ok(())
    }

    /// The issuer URL, e.g. `http://127.0.0.1:38571` (no trailing slash).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The discovery document URL (OIDC Discovery 1.0 section 4).
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.options.client_id
    }

    /// The client secret.
    pub fn client_secret(&self) -> &str {
        &self.options.client_secret
    }

    /// The registered redirect URIs, the first being the default for
    /// [`TestIdp::tokens_for`].
    pub fn redirect_uris(&self) -> &[String] {
        &self.options.redirect_uris
    }

    /// The options it was started with.
    pub fn options(&self) -> &TestIdpOptions {
        &self.options
    }

    /// The HTTP client it uses for token calls.
    pub fn http_client(&self) -> &HttpClient {
        &self.http
    }

    /// Whether the process runs (false between [`TestIdp::stop`] and
    /// [`TestIdp::restart`]).
    pub fn is_running(&self) -> bool {
        self.process.is_some()
    }

    /// The IdP's log so far.
    pub fn logs(&self) -> String {
        self.process
            .as_ref()
            .map(ChildProcess::logs)
            .unwrap_or_default()
    }

    /// Stops the IdP (its port refuses connections until [`TestIdp::restart`]).
    pub async fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop().await;
        }
    }

    /// Starts the IdP again on the same port with the same signing keys.
    /// Sessions, grants and refresh tokens do not survive (the provider keeps
    /// them in memory), as with a real IdP that lost its store.
    pub async fn restart(&mut self) -> Result<(), TestBedError> {
        self.stop().await;
        let expected = self.issuer.clone();
        self.spawn(self.port).await?;
        if self.issuer != expected {
            return Err(TestBedError::InvalidOption(format!(
                "the restarted IdP has issuer {} instead of {expected}",
                self.issuer
            )));
        }
        Ok(())
    }

    /// Like [`TestIdp::restart`] but with a new signing key (key rotation
    /// seen from a relying party: the old `kid` disappears from the JWKS).
    pub async fn restart_with_new_keys(&mut self) -> Result<(), TestBedError> {
        self.stop().await;
        match std::fs::remove_file(&self.keys_file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(TestBedError::io(
                    format!("removing {}", self.keys_file.display()),
                    source,
                ));
            }
        }
        let port = self.port;
        self.spawn(port).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npm_packages_are_checked_against_the_lockfile_stamp() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("package-lock.json"), b"{}").unwrap();
        let err = ensure_npm_packages_in(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("run scripts/install-test-deps.sh"),
            "{err}"
        );

        std::fs::create_dir(dir.path().join("node_modules")).unwrap();
        let stamp = dir.path().join("node_modules/.headlamp-install-stamp");
        std::fs::write(&stamp, "0000\n").unwrap();
        let err = ensure_npm_packages_in(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("another package-lock.json"),
            "{err}"
        );

        // sha256("{}"), as `sha256sum` prints it.
        std::fs::write(
            &stamp,
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\n",
        )
        .unwrap();
        ensure_npm_packages_in(dir.path()).unwrap();
    }

    #[test]
    fn options_without_a_redirect_uri_or_with_a_zero_lifetime_are_refused() {
        let mut options = TestIdpOptions::new("http://127.0.0.1:9/cb");
        options.id_token_ttl = Duration::ZERO;
        let err = options.args(Path::new("k")).unwrap_err();
        assert!(err.to_string().contains("at least one second"), "{err}");
        options.redirect_uris.clear();
        assert!(options.args(Path::new("k")).is_err());
    }
}
