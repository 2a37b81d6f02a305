//! Shutdown signals.
//!
//! Kubernetes sends SIGTERM and waits `terminationGracePeriodSeconds`
//! (default 30 s) before SIGKILL
//! (<https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination>),
//! so in-flight requests get [`GRACE_PERIOD`], which ends well before that.

use std::time::Duration;

/// How long in-flight requests may take to finish after a shutdown signal.
pub(crate) const GRACE_PERIOD: Duration = Duration::from_secs(20);

/// Resolves with the signal's name on the first SIGINT or SIGTERM.
///
/// If a handler cannot be installed (no signal support), that signal is
/// simply never delivered; the other still works.
pub(crate) async fn signal() -> &'static str {
    let interrupt = async {
        match tokio::signal::ctrl_c().await {
            Ok(()) => "SIGINT",
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGINT");
                std::future::pending().await
            }
        }
    };
    let terminate = async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut stream) => {
                    stream.recv().await;
                    "SIGTERM"
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot listen for SIGTERM");
                    std::future::pending().await
                }
            }
        }
        #[cfg(not(unix))]
        std::future::pending::<&'static str>().await
    };
    tokio::select! {
        name = interrupt => name,
        name = terminate => name,
    }
}
