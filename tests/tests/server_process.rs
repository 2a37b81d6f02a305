//! The `ServerProcess` harness itself: it starts the built binary, waits
//! for `/healthz` under the base URL, and reports a server that dies during
//! start with its output.

use headlamp_e2e::server::{ServerOptions, ServerProcess, free_port};
use headlamp_test_util::TestBedError;

#[tokio::test]
async fn starts_under_the_base_url_and_answers_healthz() {
    let port = free_port();
    let server = ServerProcess::start(ServerOptions::new(port).arg("-base-url=/headlamp"))
        .await
        .unwrap();
    assert_eq!(server.base_url(), "/headlamp");
    assert_eq!(
        server.url("/healthz"),
        format!("http://127.0.0.1:{port}/headlamp/healthz")
    );
    assert!(server.logs().contains("listening"), "{}", server.logs());
}

#[tokio::test]
async fn a_server_that_exits_at_start_is_an_error_with_its_output() {
    let err = ServerProcess::start(ServerOptions::new(free_port()).arg("-no-such-flag"))
        .await
        .unwrap_err();
    match err {
        TestBedError::ProcessExited { logs, .. } => {
            assert!(logs.contains("no-such-flag"), "{logs}");
        }
        other => panic!("expected ProcessExited, got {other}"),
    }
}
