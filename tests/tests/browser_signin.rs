//! Headless Chromium signs in on headlamp-server's built-in page the way a
//! person would: "Sign in" opens the popup, alice logs in through the real
//! IdP's login form, the page closes the popup and shows alice and her
//! groups `dev` and `ops` from a SelfSubjectReview through the proxy; a
//! reload keeps her signed in (HttpOnly cookie); "Sign out" signs her out.
//! In passthrough and impersonate mode, and under `-base-url`. Cancelling
//! at the IdP shows headlamp-server's "refused" page in the popup and leaves
//! the page ready to sign in again.
//!
//! The browser part is `tests/idp/signin-page.mjs` (playwright-core driving
//! Debian's `/usr/bin/chromium`). Screenshots go to
//! `tests/artifacts/browser_signin/`. A missing node, npm package or
//! Chromium fails the test with what to install.
// Helpers outside #[test] functions may unwrap too: a panic is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use headlamp_e2e::server::{ServerOptions, ServerProcess, free_port};
use headlamp_e2e::stack::{CLUSTER, SignInStack, StackOptions};
use headlamp_test_util::apiserver::{RecordedRequest, SERVICE_ACCOUNT_USER};
use headlamp_test_util::idp::browser::{artifacts_dir, chromium_executable};
use headlamp_test_util::idp::{TestUser, ensure_npm_packages, idp_dir};
use headlamp_test_util::process::{ChildProcess, node_executable};
use serde::Deserialize;

/// The whole browser run's bound (the script has its own, 5 s shorter
/// than this plus its watchdog).
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);

/// What `signin-page.mjs` reports.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageReport {
    username: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    popup_closed: bool,
    #[serde(default)]
    popup_urls: Vec<String>,
    username_after_reload: Option<String>,
    #[serde(default)]
    signed_out: bool,
    #[serde(default)]
    page_errors: Vec<String>,
    #[serde(default)]
    screenshots: Vec<PathBuf>,
    #[serde(default)]
    aborted: bool,
    popup_url: Option<String>,
    popup_title: Option<String>,
    popup_text: Option<String>,
    page_message: Option<String>,
    error: Option<String>,
}

/// What the browser does at the IdP.
#[derive(Debug, Clone, Copy)]
enum AtTheIdp {
    /// Log in as this user and allow consent.
    LogIn(TestUser),
    /// Press Cancel.
    Cancel,
}

/// Runs the browser through the sign-in on `page_url`.
async fn sign_in_on_the_page(page_url: &str, at_idp: AtTheIdp, screenshot: &Path) -> PageReport {
    let missing =
        |e: headlamp_test_util::TestBedError| -> ! { panic!("the browser test cannot run: {e}") };
    let node = node_executable().unwrap_or_else(|e| missing(e));
    ensure_npm_packages().unwrap_or_else(|e| missing(e));
    let chromium = chromium_executable().unwrap_or_else(|e| missing(e));

    let mut command = tokio::process::Command::new(node);
    command
        .current_dir(idp_dir())
        .arg("signin-page.mjs")
        .args(["--url", page_url])
        .args(["--cluster", CLUSTER])
        .arg("--screenshot")
        .arg(screenshot)
        .args(["--timeout-ms", &BROWSER_TIMEOUT.as_millis().to_string()])
        .env("HEADLAMP_TEST_CHROMIUM", chromium);
    match at_idp {
        AtTheIdp::LogIn(user) => {
            command
                .args(["--user", user.login()])
                .env("LOGIN_PASSWORD", user.password());
        }
        AtTheIdp::Cancel => {
            command.arg("--abort");
        }
    }
    // Its own process group, so a failed test also kills Chromium.
    let mut process = ChildProcess::spawn("signin-page", command, true).unwrap();
    let report = process
        .wait_for_stdout_line(BROWSER_TIMEOUT + Duration::from_secs(30), |line| {
            serde_json::from_str::<PageReport>(line).ok()
        })
        .await
        .unwrap();
    let status = process.wait(Duration::from_secs(30)).await.unwrap();
    assert!(
        report.error.is_none() && status.success(),
        "the browser sign-in failed ({status}): {}\n--- browser driver log ---\n{}",
        report.error.as_deref().unwrap_or("no error reported"),
        process.logs()
    );
    report
}

/// Starts the stack and a headlamp-server for it.
async fn start(impersonate: bool, base_url: &str) -> (SignInStack, ServerProcess) {
    let port = free_port();
    let stack = SignInStack::start(StackOptions {
        port,
        base_url: base_url.to_owned(),
        impersonate,
    })
    .await
    .unwrap();
    let mut options = ServerOptions::new(port).args(stack.server_args());
    for (name, value) in stack.server_env() {
        options = options.env(name, value);
    }
    let server = ServerProcess::start(options).await.unwrap();
    (stack, server)
}

/// The SelfSubjectReviews that reached the API server and succeeded.
fn successful_reviews(stack: &SignInStack) -> Vec<RecordedRequest> {
    stack
        .apiserver
        .requests()
        .into_iter()
        .filter(|r| {
            r.method == "POST"
                && r.path == "/apis/authentication.k8s.io/v1/selfsubjectreviews"
                && r.status.is_some_and(|s| (200..300).contains(&s))
        })
        .collect()
}

/// The sign-in as alice, and what the page, the popup and the API server
/// must show for it.
async fn alice_signs_in(impersonate: bool, base_url: &str, artifact: &str) {
    let (stack, server) = start(impersonate, base_url).await;
    let screenshot = artifacts_dir("browser_signin").join(format!("{artifact}.png"));
    let report = sign_in_on_the_page(
        &server.url("/"),
        AtTheIdp::LogIn(TestUser::Alice),
        &screenshot,
    )
    .await;

    assert_eq!(report.username.as_deref(), Some("alice"), "{report:?}");
    for group in ["dev", "ops"] {
        assert!(report.groups.iter().any(|g| g == group), "{report:?}");
    }
    assert!(
        report.popup_closed,
        "the page must close the popup: {report:?}"
    );
    // The popup went to the IdP and ended on the /auth page (under the
    // base URL) after the callback.
    assert!(
        report
            .popup_urls
            .iter()
            .any(|u| u.starts_with(stack.idp.issuer())),
        "{report:?}"
    );
    assert_eq!(
        report.popup_urls.last().map(String::as_str),
        Some(server.url("/auth").as_str()),
        "{report:?}"
    );
    assert_eq!(report.username_after_reload.as_deref(), Some("alice"));
    assert!(report.signed_out, "{report:?}");
    assert!(report.page_errors.is_empty(), "{:?}", report.page_errors);
    assert!(
        screenshot.is_file(),
        "no screenshot at {}",
        screenshot.display()
    );
    assert!(report.screenshots.contains(&screenshot));

    // The API server is the judge of who the page showed.
    let reviews = successful_reviews(&stack);
    let review = reviews.first().unwrap_or_else(|| {
        panic!(
            "no SelfSubjectReview reached the API server: {:?}",
            stack.apiserver.requests()
        )
    });
    let effective = review.effective_user.as_ref().unwrap();
    assert_eq!(effective.username, "alice");
    assert!(effective.groups.iter().any(|g| g == "dev"), "{review:?}");
    let authenticated = review.authenticated_user.as_ref().unwrap();
    if impersonate {
        assert_eq!(authenticated.username, SERVICE_ACCOUNT_USER, "{review:?}");
        assert_eq!(
            review.header("impersonate-user"),
            Some("alice"),
            "{review:?}"
        );
    } else {
        assert_eq!(authenticated.username, "alice", "{review:?}");
        assert!(
            review.header_values("impersonate-user").is_empty(),
            "{review:?}"
        );
        assert!(
            review
                .header("authorization")
                .is_some_and(|v| v.starts_with("Bearer ey")),
            "passthrough sends the ID token (a JWT)"
        );
    }
    // Our cookies never reach the cluster. (The IdP's do: cookies are not
    // port-specific, RFC 6265 8.5, and both listen on 127.0.0.1; the proxy
    // forwards cookies that are not its own, as Headlamp does.)
    for request in stack.apiserver.requests() {
        let names = request.cookie_names();
        assert!(
            !names.iter().any(|n| n.starts_with("headlamp-")),
            "{names:?} reached the API server"
        );
    }
    drop(server);
}

#[tokio::test]
async fn alice_signs_in_on_the_built_in_page_in_passthrough_mode() {
    alice_signs_in(false, "", "passthrough").await;
}

#[tokio::test]
async fn alice_signs_in_on_the_built_in_page_in_impersonate_mode() {
    alice_signs_in(true, "", "impersonate").await;
}

#[tokio::test]
async fn alice_signs_in_on_the_built_in_page_under_a_base_url() {
    alice_signs_in(false, "/headlamp", "base-url").await;
}

#[tokio::test]
async fn cancelling_at_the_idp_leaves_the_page_ready_to_sign_in_again() {
    let (stack, server) = start(false, "").await;
    let screenshot = artifacts_dir("browser_signin").join("cancel.png");
    let report = sign_in_on_the_page(&server.url("/"), AtTheIdp::Cancel, &screenshot).await;

    assert!(report.aborted, "{report:?}");
    // The IdP answered the callback with error=access_denied and the
    // server said so in the popup, as a page (not a 500, not the /auth page).
    assert_eq!(
        report.popup_url.as_deref(),
        Some(server.url("/oidc-callback").as_str()),
        "{report:?}"
    );
    assert_eq!(
        report.popup_title.as_deref(),
        Some("Sign-in was refused"),
        "{report:?}"
    );
    assert!(
        report
            .popup_text
            .as_deref()
            .is_some_and(|t| t.contains("access_denied")),
        "{report:?}"
    );
    // Closing the popup leaves the page saying so, with Sign in offered
    // again (the script waited for the button).
    assert!(
        report
            .page_message
            .as_deref()
            .is_some_and(|m| m.contains("closed before the sign-in finished")),
        "{report:?}"
    );
    assert!(report.page_errors.is_empty(), "{:?}", report.page_errors);
    assert!(successful_reviews(&stack).is_empty(), "nobody signed in");
}
