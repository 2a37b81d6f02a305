//! [`ServerProcess`]: the built `headlamp-server` binary as a child process
//! of an end-to-end test.
//!
//! The binary lives in another package, so Cargo gives this crate no
//! `CARGO_BIN_EXE_headlamp-server`. [`server_binary`] finds it in the target
//! directory the running test executable was built into
//! (`target/<profile>/deps/<test>` -> `target/<profile>/headlamp-server`)
//! and, once per test process, runs `cargo build -p headlamp-server` (the
//! same profile) so a test never runs a stale server: after a change to the
//! server, `cargo test -p headlamp-e2e` rebuilds it first. Cargo has released
//! its build lock by the time tests run, so this does not deadlock; it is a
//! no-op when the binary is up to date.
//!
//! ```no_run
//! # async fn demo() -> Result<(), headlamp_test_util::TestBedError> {
//! use headlamp_e2e::server::{ServerOptions, ServerProcess, free_port};
//!
//! let port = free_port(); // known before the IdP starts: its redirect URI needs it
//! let server = ServerProcess::start(
//!     ServerOptions::new(port)
//!         .arg("-base-url=/headlamp")
//!         .arg("-kubeconfig=/tmp/kubeconfig"),
//! )
//! .await?; // waits for GET /headlamp/healthz = 200
//! assert_eq!(server.url("/config"), format!("http://127.0.0.1:{port}/headlamp/config"));
//! # Ok(()) }
//! ```
//!
//! The process starts with an **empty environment** plus what
//! [`ServerOptions::env`] adds, so the developer's `HEADLAMP_CONFIG_*`,
//! `KUBECONFIG` or `~/.kube/config` cannot change a test. Its output is
//! captured by [`ChildProcess`]: printed when the test panics, streamed
//! live with `HEADLAMP_TEST_SHOW_LOGS=1`, and the process is killed when
//! the [`ServerProcess`] is dropped.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use headlamp_test_util::TestBedError;
use headlamp_test_util::idp::{CookieJar, HttpClient, HttpResponse, LoginSession, TestUser};
use headlamp_test_util::process::ChildProcess;
use http::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use url::Url;

/// How long a server may take to answer `/healthz` after it was spawned.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A port nothing listens on right now (bind to port 0, read it, close).
///
/// Another process could take it before the server binds; on loopback in a
/// test run that is rare, and the server then fails with a clear "cannot
/// listen" error in its logs.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or(0)
}

/// The path of the `headlamp-server` binary, built (or found up to date)
/// once per test process. See the module documentation.
pub fn server_binary() -> Result<PathBuf, TestBedError> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(build_server)
        .clone()
        .map_err(TestBedError::InvalidOption)
}

fn build_server() -> Result<PathBuf, String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot locate the running test executable: {e}"))?;
    // target/<profile>/deps/<test-exe>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("unexpected test executable path {}", exe.display()))?;
    let binary = profile_dir.join("headlamp-server");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(&cargo);
    command.args(["build", "--quiet", "-p", "headlamp-server"]);
    if profile_dir
        .file_name()
        .is_some_and(|name| name == "release")
    {
        command.arg("--release");
    }
    // The target directory the tests were built into (it may be a
    // CARGO_TARGET_DIR elsewhere).
    if let Some(target_dir) = profile_dir.parent() {
        command.arg("--target-dir").arg(target_dir);
    }
    let output = command
        .output()
        .map_err(|e| format!("cannot run {} build: {e}", cargo.to_string_lossy()))?;
    if !output.status.success() {
        return Err(format!(
            "`cargo build -p headlamp-server` failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    if !binary.is_file() {
        return Err(format!(
            "`cargo build -p headlamp-server` succeeded but {} does not exist",
            binary.display()
        ));
    }
    Ok(binary)
}

/// How to start one server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    port: u16,
    args: Vec<String>,
    env: Vec<(String, String)>,
    name: String,
}

impl ServerOptions {
    /// A server on `127.0.0.1:port` (`-listen-addr=127.0.0.1 -port=PORT`
    /// are added), `-log-level=debug`, no other flags.
    pub fn new(port: u16) -> Self {
        Self {
            port,
            args: Vec::new(),
            env: Vec::new(),
            name: "headlamp-server".to_owned(),
        }
    }

    /// Adds one command-line argument (`-name=value` style).
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds several command-line arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable (the environment is otherwise empty).
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// The label of its log lines (default `headlamp-server`), to tell two
    /// servers of one test apart.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The `-base-url` among the arguments (normalised: no trailing `/`).
    fn base_url(&self) -> String {
        let mut base = String::new();
        let mut args = self.args.iter();
        while let Some(arg) = args.next() {
            let arg = arg.trim_start_matches('-');
            if let Some(value) = arg.strip_prefix("base-url=") {
                base = value.to_owned();
            } else if arg == "base-url" {
                base = args.next().cloned().unwrap_or_default();
            }
        }
        base.trim_end_matches('/').to_owned()
    }

    fn is_tls(&self) -> bool {
        self.args
            .iter()
            .any(|a| a.trim_start_matches('-').starts_with("tls-cert-path"))
    }
}

/// A running `headlamp-server`, killed on drop.
#[derive(Debug)]
pub struct ServerProcess {
    process: ChildProcess,
    port: u16,
    base_url: String,
    scheme: &'static str,
}

impl ServerProcess {
    /// Spawns the server and waits until it listens: for plain HTTP until
    /// `GET <base-url>/healthz` answers 200, for HTTPS until the port
    /// accepts connections. A server that exits first (bad flags, port
    /// taken) is an error carrying its output.
    pub async fn start(options: ServerOptions) -> Result<Self, TestBedError> {
        let binary = server_binary()?;
        let mut command = tokio::process::Command::new(&binary);
        command
            .env_clear()
            .arg("-listen-addr=127.0.0.1")
            .arg(format!("-port={}", options.port))
            .arg("-log-level=debug")
            .args(&options.args)
            .envs(options.env.iter().map(|(k, v)| (k, v)));
        let process = ChildProcess::spawn(&options.name, command, false)?;
        let mut server = Self {
            process,
            port: options.port,
            base_url: options.base_url(),
            scheme: if options.is_tls() { "https" } else { "http" },
        };
        server.wait_until_listening().await?;
        Ok(server)
    }

    async fn wait_until_listening(&mut self) -> Result<(), TestBedError> {
        let client = HttpClient::new()?;
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        let healthz = self.url("/healthz");
        loop {
            // The server writes nothing to stdout, so stdout closes only when
            // it exits: a ProcessExited here means it died during start.
            if let Err(err @ TestBedError::ProcessExited { .. }) = self
                .process
                .wait_for_stdout_line(Duration::from_millis(50), |_| None::<()>)
                .await
            {
                return Err(err);
            }
            let ready = if self.scheme == "https" {
                tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, self.port))
                    .await
                    .is_ok()
            } else {
                match Request::get(&healthz).body(Full::new(Bytes::new())) {
                    Ok(request) => client
                        .send(request, "headlamp-server /healthz")
                        .await
                        .is_ok_and(|r| r.status == StatusCode::OK),
                    Err(_) => false,
                }
            };
            if ready {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(TestBedError::Timeout {
                    what: format!("{} to answer {healthz}", self.process.name()),
                    after: START_TIMEOUT,
                    logs: self.process.logs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>` (or `https://`), without the base URL.
    pub fn origin(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }

    /// The `-base-url` it was started with (`""` when none).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The absolute URL of `path` below the base URL, e.g. `url("/config")`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}{path}", self.origin(), self.base_url)
    }

    /// The redirect URI the server derives for itself
    /// (`<origin><base-url>/oidc-callback`): register it at the IdP.
    pub fn callback_url(&self) -> String {
        self.url("/oidc-callback")
    }

    /// Everything it logged so far.
    pub fn logs(&self) -> String {
        self.process.logs()
    }

    /// The child process (to wait for it or send it a signal).
    pub fn process_mut(&mut self) -> &mut ChildProcess {
        &mut self.process
    }

    /// Kills it now.
    pub async fn stop(&mut self) {
        self.process.stop().await;
    }
}

/// `http://127.0.0.1:<port><base_url>/oidc-callback`: the callback URL a
/// server on `port` derives for itself, to register at the IdP before the
/// server starts.
pub fn callback_url_for(port: u16, base_url: &str) -> String {
    format!(
        "http://127.0.0.1:{port}{}/oidc-callback",
        base_url.trim_end_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_is_read_from_either_flag_form() {
        let o = ServerOptions::new(1).arg("-base-url=/headlamp/");
        assert_eq!(o.base_url(), "/headlamp");
        let o = ServerOptions::new(1).args(["--base-url", "/x"]);
        assert_eq!(o.base_url(), "/x");
        assert_eq!(ServerOptions::new(1).base_url(), "");
        assert!(ServerOptions::new(1).arg("-tls-cert-path=/c.pem").is_tls());
    }

    #[test]
    fn callback_url_joins_the_base_url() {
        assert_eq!(
            callback_url_for(4466, "/headlamp/"),
            "http://127.0.0.1:4466/headlamp/oidc-callback"
        );
        assert_eq!(
            callback_url_for(4466, ""),
            "http://127.0.0.1:4466/oidc-callback"
        );
    }
}

/// A scripted browser for a [`ServerProcess`]: one cookie jar for the
/// server and the IdP (a [`LoginSession`]), the Headlamp popup sign-in,
/// and JSON requests that carry and store cookies like a browser.
#[derive(Debug, Clone)]
pub struct ScriptedBrowser {
    session: LoginSession,
    http: HttpClient,
}

impl ScriptedBrowser {
    /// A browser with an empty cookie jar, speaking plain HTTP.
    pub fn new() -> Result<Self, TestBedError> {
        Ok(Self {
            session: LoginSession::new()?,
            http: HttpClient::new()?,
        })
    }

    /// A browser over `client`, e.g. [`HttpClient::with_roots`] for a
    /// server started with `-tls-cert-path` and a test CA.
    pub fn with_client(client: HttpClient) -> Self {
        Self {
            session: LoginSession::with_client(client.clone()),
            http: client,
        }
    }

    /// The cookie jar.
    pub fn jar(&self) -> &CookieJar {
        self.session.jar()
    }

    /// The cookie jar, to plant or drop a cookie.
    pub fn jar_mut(&mut self) -> &mut CookieJar {
        self.session.jar_mut()
    }

    /// Opens `[base]/oidc?cluster=NAME` on `server`, logs in at the IdP as
    /// `user` and returns the callback URL the IdP sent the browser to (not
    /// yet requested; [`ScriptedBrowser::get`] it, on any server).
    pub async fn login_at_idp(
        &mut self,
        server: &ServerProcess,
        cluster: &str,
        user: TestUser,
    ) -> Result<Url, TestBedError> {
        let start = format!("{}?dt=1&cluster={cluster}", server.url("/oidc"));
        self.session
            .login(
                &start,
                &server.callback_url(),
                user.login(),
                &user.password(),
            )
            .await
    }

    /// Like [`ScriptedBrowser::login_at_idp`] but presses Cancel at the
    /// IdP: the returned callback URL carries `error=access_denied`.
    pub async fn cancel_at_idp(
        &mut self,
        server: &ServerProcess,
        cluster: &str,
    ) -> Result<Url, TestBedError> {
        let start = format!("{}?dt=1&cluster={cluster}", server.url("/oidc"));
        self.session.abort(&start, &server.callback_url()).await
    }

    /// The whole popup sign-in: [`ScriptedBrowser::login_at_idp`], then the
    /// callback on the same server. Returns the callback's response (a
    /// `303` to `[base]/auth?cluster=NAME` on success).
    pub async fn sign_in(
        &mut self,
        server: &ServerProcess,
        cluster: &str,
        user: TestUser,
    ) -> Result<HttpResponse, TestBedError> {
        let callback = self.login_at_idp(server, cluster, user).await?;
        self.get(callback.as_str()).await
    }

    /// `GET url` with the jar's cookies (redirects not followed).
    pub async fn get(&mut self, url: &str) -> Result<HttpResponse, TestBedError> {
        self.send(Method::GET, url, None, &[]).await
    }

    /// `POST url` with a JSON body.
    pub async fn post_json(
        &mut self,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<HttpResponse, TestBedError> {
        self.send(Method::POST, url, Some(body), &[]).await
    }

    /// Any request with the jar's cookies and `headers`; the response's
    /// `Set-Cookie` headers go into the jar.
    pub async fn send(
        &mut self,
        method: Method,
        url: &str,
        json: Option<&serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> Result<HttpResponse, TestBedError> {
        let parsed = Url::parse(url)
            .map_err(|e| TestBedError::InvalidOption(format!("bad URL {url}: {e}")))?;
        let mut builder = Request::builder().method(method).uri(url);
        if let Some(cookies) = self.session.jar().header_for(&parsed) {
            builder = builder.header(COOKIE, cookies);
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let body = match json {
            Some(value) => {
                builder = builder.header(CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(value.to_string()))
            }
            None => Full::new(Bytes::new()),
        };
        let request = builder
            .body(body)
            .map_err(|e| TestBedError::InvalidOption(format!("cannot build a request: {e}")))?;
        let response = self.http.send(request, "scripted browser").await?;
        for value in response.headers.get_all(SET_COOKIE) {
            if let Ok(value) = value.to_str() {
                self.session.jar_mut().store(&parsed, value);
            }
        }
        Ok(response)
    }
}
