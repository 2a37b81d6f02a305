//! Self-test of the headless-browser login: Debian Chromium, driven by
//! playwright-core (tests/idp/login-browser.mjs), logs in through the test
//! IdP's real login form and reaches the redirect URI.
//!
//! Needs node, Chromium and `scripts/install-test-deps.sh`; without them the
//! tests fail saying what to install. Screenshots land in
//! `tests/artifacts/testbed_browser/`.
//!
//! Run one: `cargo test -p headlamp-e2e --test testbed_browser -- alice`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed step is a failed test, with its message"
)]

use headlamp_test_util::TestBedError;
use headlamp_test_util::idp::browser::artifacts_dir;
use headlamp_test_util::idp::{
    AuthorizationRequest, BrowserLogin, TestIdp, TestIdpOptions, TestUser, browser_login,
};

/// Nothing listens here: the browser answers it from inside (intercept).
const REDIRECT_URI: &str = "http://127.0.0.1:9/oidc-callback";

fn query(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn assert_png(path: &std::path::Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    assert!(
        bytes.len() > 1_000,
        "{} is suspiciously small",
        path.display()
    );
}

#[tokio::test]
async fn alice_logs_in_through_the_real_form_in_headless_chromium() {
    let idp = TestIdp::start(TestIdpOptions::new(REDIRECT_URI))
        .await
        .unwrap();
    let request = AuthorizationRequest::new(REDIRECT_URI);
    let screenshot = artifacts_dir("testbed_browser").join("alice-login.png");
    let outcome = browser_login(&BrowserLogin::new(
        idp.authorization_url(&request),
        REDIRECT_URI,
        TestUser::Alice.login(),
        TestUser::Alice.password(),
        &screenshot,
    ))
    .await
    .unwrap();

    assert!(
        outcome.final_url.as_str().starts_with(REDIRECT_URI),
        "{}",
        outcome.final_url
    );
    assert_eq!(
        query(&outcome.final_url, "state"),
        Some(request.state.clone())
    );
    assert_eq!(
        query(&outcome.final_url, "iss").as_deref(),
        Some(idp.issuer())
    );
    // The login page, the consent page and the landing page were captured.
    assert_eq!(outcome.screenshots.len(), 3, "{:?}", outcome.screenshots);
    for shot in &outcome.screenshots {
        assert_png(shot);
    }
    assert_eq!(outcome.screenshots.last(), Some(&screenshot));

    // The code the browser carried is a real one: it buys alice's tokens.
    let code = query(&outcome.final_url, "code").unwrap();
    let tokens = idp
        .exchange_code(
            &code,
            REDIRECT_URI,
            request.pkce.as_ref().map(|p| p.verifier.as_str()),
        )
        .await
        .unwrap();
    let claims = tokens.insecure_id_token_claims().unwrap();
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(claims["nonce"], request.nonce.as_str());
}

#[tokio::test]
async fn a_wrong_password_in_the_browser_fails_with_the_idps_message() {
    let idp = TestIdp::start(TestIdpOptions::new(REDIRECT_URI))
        .await
        .unwrap();
    let request = AuthorizationRequest::new(REDIRECT_URI);
    let screenshot = artifacts_dir("testbed_browser").join("wrong-password.png");
    let err = browser_login(&BrowserLogin::new(
        idp.authorization_url(&request),
        REDIRECT_URI,
        "bob",
        "alice-password",
        &screenshot,
    ))
    .await
    .unwrap_err();
    match err {
        TestBedError::BrowserLogin { reason, .. } => {
            assert!(reason.contains("Invalid username or password"), "{reason}");
        }
        other => panic!("expected BrowserLogin, got {other}"),
    }
}

#[tokio::test]
async fn cancel_in_the_browser_lands_on_the_redirect_uri_with_access_denied() {
    let idp = TestIdp::start(TestIdpOptions::new(REDIRECT_URI))
        .await
        .unwrap();
    let request = AuthorizationRequest::new(REDIRECT_URI);
    let screenshot = artifacts_dir("testbed_browser").join("cancel.png");
    let outcome = browser_login(&BrowserLogin {
        abort: true,
        ..BrowserLogin::new(
            idp.authorization_url(&request),
            REDIRECT_URI,
            "",
            "",
            &screenshot,
        )
    })
    .await
    .unwrap();
    assert_eq!(
        query(&outcome.final_url, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(query(&outcome.final_url, "code"), None);
}

/// Whether a process is gone (or a zombie waiting for a reaper).
fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // Field 3 is the state; the command name before it is in parentheses.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

#[tokio::test]
async fn dropping_a_process_group_leader_kills_its_children_too() {
    // The browser driver starts Chromium; a failing test drops the driver's
    // handle, and Chromium must not outlive it.
    use headlamp_test_util::process::ChildProcess;
    use std::time::Duration;

    let mut command = tokio::process::Command::new("sh");
    command.args(["-c", "sleep 120 & echo $!; wait"]);
    let mut process = ChildProcess::spawn("group-leader", command, true).unwrap();
    let grandchild: u32 = process
        .wait_for_stdout_line(Duration::from_secs(10), |line| line.trim().parse().ok())
        .await
        .unwrap();
    assert!(!is_dead(grandchild), "the grandchild runs before the drop");

    drop(process);
    // The signal is sent synchronously in Drop; give the kernel a bounded
    // moment to deliver it.
    for _ in 0..50 {
        if is_dead(grandchild) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("process {grandchild} survived its group leader's drop");
}
