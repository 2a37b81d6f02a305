//! The `test-apiserver` binary: prints its ready line, writes a working
//! kubeconfig, answers, refuses bad flags, and exits cleanly on SIGTERM.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed step is a failed test, with its message"
)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_test-apiserver");

#[tokio::test]
async fn runs_until_sigterm_and_writes_a_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = tokio::process::Command::new(BIN)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--quiet")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("no ready line within 30 s")
        .unwrap()
        .expect("exited before its ready line");
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
    let url = ready["url"].as_str().unwrap();
    assert!(url.starts_with("https://127.0.0.1:"), "{ready}");
    let token = ready["serviceAccountToken"].as_str().unwrap();
    let yaml = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(yaml.contains(url) && yaml.contains(token), "{yaml}");

    let curl = std::path::PathBuf::from("/usr/bin/curl");
    if !curl.exists() {
        panic!(
            "{}",
            headlamp_test_util::TestBedError::ToolMissing {
                tool: "curl",
                path: curl
            }
        );
    }
    {
        let out = tokio::process::Command::new(&curl)
            .args(["--silent", "--show-error", "--max-time", "10", "--cacert"])
            .arg(ready["caFile"].as_str().unwrap())
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .arg(format!("{url}/version"))
            .output()
            .await
            .unwrap();
        let version: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(version["major"], "1");
    }

    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("no exit within 10 s of SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn bad_flags_exit_64_with_the_usage() {
    let out = tokio::process::Command::new(BIN)
        .arg("--oidc-issuer-url=http://127.0.0.1:1")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--oidc-client-id"), "{stderr}");
}
