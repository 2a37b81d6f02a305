//! Headless Chromium logging in through the IdP's real login form: runs
//! `tests/idp/login-browser.mjs` (playwright-core driving Debian's
//! `/usr/bin/chromium`) and reads its one-line JSON result.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tokio::process::Command;
use url::Url;

use super::{ensure_npm_packages, idp_dir, repo_root};
use crate::TestBedError;
use crate::process::{ChildProcess, node_executable};

/// Where Debian's chromium package puts the browser (overridable with
/// `HEADLAMP_TEST_CHROMIUM`, which the node script reads too).
pub const CHROMIUM_PATH: &str = "/usr/bin/chromium";

/// The Chromium binary, or [`TestBedError::ToolMissing`].
pub fn chromium_executable() -> Result<PathBuf, TestBedError> {
    let path = std::env::var_os("HEADLAMP_TEST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(CHROMIUM_PATH));
    if path.is_file() {
        Ok(path)
    } else {
        Err(TestBedError::ToolMissing {
            tool: "chromium",
            path,
        })
    }
}

/// The directory for test artifacts (screenshots): `tests/artifacts/<name>`
/// in the repository (ignored by git).
pub fn artifacts_dir(name: &str) -> PathBuf {
    repo_root().join("tests/artifacts").join(name)
}

/// One browser login.
#[derive(Debug, Clone)]
pub struct BrowserLogin {
    /// Where the browser starts: an IdP authorization URL, or a page that
    /// leads to one (e.g. `headlamp-server`'s `/oidc?cluster=...`).
    pub start_url: String,
    /// The run ends when the browser reaches a URL starting with this.
    pub stop_at: String,
    /// The login name typed into the form.
    pub username: String,
    /// The password typed into the form (passed by environment, not argv).
    pub password: String,
    /// The final screenshot; the login and consent steps are saved beside
    /// it with `-1-login` and `-2-consent` before the extension.
    pub screenshot: PathBuf,
    /// Answer requests to `stop_at` inside the browser (no server needed
    /// behind the redirect URI).
    pub intercept: bool,
    /// Press Cancel at the IdP instead of logging in.
    pub abort: bool,
    /// The whole run's bound.
    pub timeout: Duration,
}

impl BrowserLogin {
    /// A login as `username`/`password` from `start_url` to `stop_at`,
    /// intercepting the redirect URI, with a 60 s bound.
    pub fn new(
        start_url: impl Into<String>,
        stop_at: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<String>,
        screenshot: impl AsRef<Path>,
    ) -> Self {
        Self {
            start_url: start_url.into(),
            stop_at: stop_at.into(),
            username: username.into(),
            password: password.into(),
            screenshot: screenshot.as_ref().to_path_buf(),
            intercept: true,
            abort: false,
            timeout: Duration::from_secs(60),
        }
    }
}

/// What the browser run produced.
#[derive(Debug, Clone)]
pub struct BrowserLoginOutcome {
    /// The URL the browser landed on (starts with `stop_at`).
    pub final_url: Url,
    /// Every screenshot saved, the final one last.
    pub screenshots: Vec<PathBuf>,
    /// The driver's log (playwright and script output).
    pub logs: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScriptResult {
    final_url: Option<String>,
    screenshots: Option<Vec<PathBuf>>,
    error: Option<String>,
}

/// Runs one login in headless Chromium.
///
/// Fails with [`TestBedError::ToolMissing`] when node, the npm packages or
/// Chromium are missing, and with [`TestBedError::BrowserLogin`] (carrying
/// the driver's log) when the login does not reach `stop_at`.
pub async fn browser_login(login: &BrowserLogin) -> Result<BrowserLoginOutcome, TestBedError> {
    let node = node_executable()?;
    ensure_npm_packages()?;
    let chromium = chromium_executable()?;

    let mut command = Command::new(node);
    command
        .current_dir(idp_dir())
        .arg("login-browser.mjs")
        .args(["--url", &login.start_url])
        .args(["--stop-at", &login.stop_at])
        .args(["--user", &login.username])
        .arg("--screenshot")
        .arg(&login.screenshot)
        .args(["--timeout-ms", &login.timeout.as_millis().to_string()])
        .env("LOGIN_PASSWORD", &login.password)
        .env("HEADLAMP_TEST_CHROMIUM", chromium);
    if login.intercept {
        command.arg("--intercept");
    }
    if login.abort {
        command.arg("--abort");
    }
    // Its own process group, so a failed test also kills Chromium.
    let mut process = ChildProcess::spawn("browser-login", command, true)?;
    // The script has its own watchdog at timeout + 5 s; this bound only
    // catches a wedged node.
    let bound = login.timeout + Duration::from_secs(30);
    let result = process
        .wait_for_stdout_line(bound, |line| {
            serde_json::from_str::<ScriptResult>(line).ok()
        })
        .await?;
    let status = process.wait(Duration::from_secs(30)).await?;
    let logs = process.logs();
    match result {
        ScriptResult {
            final_url: Some(url),
            screenshots,
            error: None,
        } if status.success() => {
            let final_url = Url::parse(&url).map_err(|e| TestBedError::BrowserLogin {
                reason: format!("the browser reported an unparsable final URL ({e})"),
                logs: logs.clone(),
            })?;
            Ok(BrowserLoginOutcome {
                final_url,
                screenshots: screenshots.unwrap_or_default(),
                logs,
            })
        }
        ScriptResult { error, .. } => Err(TestBedError::BrowserLogin {
            reason: error.unwrap_or_else(|| format!("the browser driver exited with {status}")),
            logs,
        }),
    }
}
