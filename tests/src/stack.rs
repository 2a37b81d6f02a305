//! [`SignInStack`]: the real IdP and the test API server, configured to
//! trust each other, plus the kubeconfig, session key and flags that make a
//! `headlamp-server` on a given port sign users in against them.
//!
//! One definition for the demo (`headlamp-demo`) and the browser tests, so
//! what a newcomer sees is what the tests prove.
//!
//! - The IdP (`tests/idp/server.mjs`) registers the server's callback URL
//!   for both `127.0.0.1` and `localhost` (the server derives the callback
//!   from the `Host` the browser used).
//! - The test API server validates the IdP's ID tokens itself, with the
//!   username from `preferred_username` and groups from `groups` (what
//!   kube-apiserver's `--oidc-username-claim`/`--oidc-groups-claim` would
//!   say), so in passthrough mode alice is `alice` in groups `dev`, `ops`.
//! - Passthrough: the kubeconfig user has no credentials; the user's ID
//!   token is what reaches the API server. Impersonate
//!   (`-oidc-impersonate=true`): the kubeconfig user is the API server's
//!   service account, which may impersonate.
//! - `-oidc-scopes=profile,email,groups`: the IdP, like Dex, only issues
//!   the `groups` claim for the `groups` scope.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use headlamp_test_util::TestBedError;
use headlamp_test_util::apiserver::{ApiServerOptions, OidcOptions, TestApiServer};
use headlamp_test_util::idp::{TestIdp, TestIdpOptions};
use headlamp_test_util::kubeconfig::KubeUser;

/// The cluster (kubeconfig context) name headlamp-server shows.
pub const CLUSTER: &str = "testbed";

/// How to set the stack up for a server on `port`.
#[derive(Debug, Clone, Default)]
pub struct StackOptions {
    /// The port headlamp-server will listen on (the IdP must know its
    /// callback URL before either starts).
    pub port: u16,
    /// `-base-url` (e.g. `/headlamp`), empty for none.
    pub base_url: String,
    /// `-oidc-impersonate=true` with the service account in the kubeconfig.
    pub impersonate: bool,
}

/// The running IdP and API server and the files headlamp-server reads.
/// Everything stops and is deleted when it is dropped.
#[derive(Debug)]
pub struct SignInStack {
    /// The real OpenID provider.
    pub idp: TestIdp,
    /// The test Kubernetes API server.
    pub apiserver: TestApiServer,
    options: StackOptions,
    kubeconfig: PathBuf,
    session_key: PathBuf,
    _dir: tempfile::TempDir,
}

impl SignInStack {
    /// Starts the IdP and the API server and writes the kubeconfig and the
    /// session key into a temporary directory.
    pub async fn start(options: StackOptions) -> Result<Self, TestBedError> {
        let base = options.base_url.trim_end_matches('/').to_owned();
        let callback = |host: &str| format!("http://{host}:{}{base}/oidc-callback", options.port);
        let idp = TestIdp::start(
            TestIdpOptions::new(callback("127.0.0.1")).redirect_uri(callback("localhost")),
        )
        .await?;
        let apiserver = TestApiServer::start(ApiServerOptions::with_oidc(
            OidcOptions::new(idp.issuer(), idp.client_id()).username_claim("preferred_username"),
        ))
        .await?;

        let dir = tempfile::Builder::new()
            .prefix("headlamp-sign-in-")
            .tempdir()
            .map_err(|e| TestBedError::io("creating the stack's directory", e))?;
        let kubeconfig = dir.path().join("kubeconfig");
        let user = if options.impersonate {
            KubeUser::Token(apiserver.service_account_token().to_owned())
        } else {
            KubeUser::Anonymous
        };
        apiserver.write_kubeconfig(&kubeconfig, user)?;
        let session_key = dir.path().join("session.key");
        write_random_key(&session_key)?;
        Ok(Self {
            idp,
            apiserver,
            options: StackOptions {
                base_url: base,
                ..options
            },
            kubeconfig,
            session_key,
            _dir: dir,
        })
    }

    /// The options it was started with (`base_url` without a trailing `/`).
    pub fn options(&self) -> &StackOptions {
        &self.options
    }

    /// The generated kubeconfig (context [`CLUSTER`]).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// headlamp-server's flags for this stack, except the listen address
    /// and port. The client secret is in [`SignInStack::server_env`], not
    /// on the command line (`ps` shows arguments to every user).
    pub fn server_args(&self) -> Vec<String> {
        let mut args = vec![
            format!("-kubeconfig={}", self.kubeconfig.display()),
            format!("-oidc-idp-issuer-url={}", self.idp.issuer()),
            format!("-oidc-client-id={}", self.idp.client_id()),
            "-oidc-scopes=profile,email,groups".to_owned(),
            format!("-session-key-file={}", self.session_key.display()),
        ];
        if self.options.impersonate {
            args.push("-oidc-impersonate=true".to_owned());
        }
        if !self.options.base_url.is_empty() {
            args.push(format!("-base-url={}", self.options.base_url));
        }
        args
    }

    /// headlamp-server's environment for this stack.
    pub fn server_env(&self) -> Vec<(String, String)> {
        vec![(
            "HEADLAMP_CONFIG_OIDC_CLIENT_SECRET".to_owned(),
            self.idp.client_secret().to_owned(),
        )]
    }

    /// The built-in page: `http://127.0.0.1:<port><base-url>/`.
    pub fn page_url(&self) -> String {
        format!(
            "http://127.0.0.1:{}{}/",
            self.options.port, self.options.base_url
        )
    }
}

/// 64 bytes from the kernel's CSPRNG: the `-session-key-file` format
/// ("at least 32 bytes of random data, raw or as text").
fn write_random_key(path: &Path) -> Result<(), TestBedError> {
    let mut key = [0u8; 64];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut urandom| urandom.read_exact(&mut key))
        .map_err(|e| TestBedError::io("reading /dev/urandom for the session key", e))?;
    std::fs::write(path, key)
        .map_err(|e| TestBedError::io(format!("writing {}", path.display()), e))
}
