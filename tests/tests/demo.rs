//! The README's demo command keeps working: `headlamp-demo` (what
//! `./scripts/demo.sh` runs) starts, prints the URL it promises, signs alice
//! in against its IdP and API server, and on Ctrl-C stops and removes its
//! temporary files.
// Helpers outside #[test] functions may unwrap too: a panic is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use headlamp_e2e::server::{free_port, server_binary};
use headlamp_e2e::stack::CLUSTER;
use headlamp_test_util::idp::{LoginSession, TestUser};
use headlamp_test_util::process::ChildProcess;
use http::StatusCode;
use url::Url;

/// Start-up bound: node, the IdP's key generation and the server.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// The value after `label` on a banner line such as `  Open  http://...`.
fn banner_value(line: &str, label: &str) -> Option<String> {
    let rest = line.trim_start().strip_prefix(label)?;
    rest.starts_with(' ')
        .then(|| rest.split_whitespace().next().map(str::to_owned))
        .flatten()
}

async fn demo_signs_alice_in(impersonate: bool) {
    let port = free_port();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_headlamp-demo"));
    command
        .args(["--port", &port.to_string(), "--log-level", "debug"])
        .env("HEADLAMP_SERVER_BIN", server_binary().unwrap());
    if impersonate {
        command.arg("--impersonate");
    }
    // Its own process group: a failed test also takes the IdP and the
    // server down.
    let mut demo = ChildProcess::spawn("headlamp-demo", command, true).unwrap();
    let page = demo
        .wait_for_stdout_line(START_TIMEOUT, |line| banner_value(line, "Open"))
        .await
        .unwrap();
    assert_eq!(page, format!("http://127.0.0.1:{port}/"));
    let kubeconfig = PathBuf::from(
        demo.wait_for_stdout_line(Duration::from_secs(5), |line| {
            banner_value(line, "Kubeconfig")
        })
        .await
        .unwrap(),
    );
    assert!(kubeconfig.is_file(), "{}", kubeconfig.display());
    let mode = if impersonate {
        "impersonate:"
    } else {
        "passthrough:"
    };
    assert!(demo.logs().contains(mode), "{}", demo.logs());

    // What the banner promises: alice / alice-password signs in on cluster
    // "testbed" and the API server accepts her.
    let base = Url::parse(&page).unwrap();
    let alice = TestUser::Alice;
    let mut session = LoginSession::new().unwrap();
    let callback = session
        .login(
            base.join(&format!("oidc?cluster={CLUSTER}"))
                .unwrap()
                .as_str(),
            base.join("oidc-callback").unwrap().as_str(),
            alice.login(),
            &alice.password(),
        )
        .await
        .unwrap();
    let landed = session.get(&callback).await.unwrap();
    assert_eq!(landed.status, StatusCode::SEE_OTHER, "{}", landed.excerpt());
    let me = session
        .get(&base.join(&format!("clusters/{CLUSTER}/me")).unwrap())
        .await
        .unwrap();
    assert_eq!(me.status, StatusCode::OK, "{}", me.excerpt());
    let me: serde_json::Value = serde_json::from_slice(&me.body).unwrap();
    assert_eq!(me["username"], "alice");
    let namespaces = session
        .get(
            &base
                .join(&format!("clusters/{CLUSTER}/api/v1/namespaces"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        namespaces.status,
        StatusCode::OK,
        "{}",
        namespaces.excerpt()
    );

    // Ctrl-C: a clean stop that removes the temporary files.
    let pid = demo.pid().unwrap();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = demo.wait(Duration::from_secs(30)).await.unwrap();
    assert!(status.success(), "{status}: {}", demo.logs());
    assert!(demo.logs().contains("Stopped; temporary files removed."));
    assert!(!kubeconfig.exists(), "{} left behind", kubeconfig.display());
}

#[tokio::test]
async fn the_demo_signs_alice_in_and_cleans_up() {
    demo_signs_alice_in(false).await;
}

#[tokio::test]
async fn the_demo_in_impersonate_mode_signs_alice_in() {
    demo_signs_alice_in(true).await;
}

#[test]
fn banner_values() {
    assert_eq!(
        banner_value("  Open  http://127.0.0.1:4466/", "Open").as_deref(),
        Some("http://127.0.0.1:4466/")
    );
    assert_eq!(
        banner_value("  Kubeconfig  /tmp/x/kubeconfig", "Kubeconfig").as_deref(),
        Some("/tmp/x/kubeconfig")
    );
    assert_eq!(banner_value("  Opener x", "Open"), None);
    assert_eq!(banner_value("nothing", "Open"), None);
}
