//! Shutdown signals.
//!
//! Kubernetes sends SIGTERM and waits `terminationGracePeriodSeconds`
//! (default 30 s) before SIGKILL
//! (<https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination>),
//! so in-flight requests get [`GRACE_PERIOD`], which ends well before that.

use std::time::Duration;

/// How long in-flight requests may take to finish after a shutdown signal.
pub(crate) const GRACE_PERIOD: Duration = Duration::from_secs(20);

/// SIGINT and SIGTERM listeners, installed at once.
///
/// They must exist before the server says it is listening: a signal that
/// arrives before its handler is installed takes the default action (or,
/// when the parent started us with the signal ignored, as a non-interactive
/// shell does for background jobs, is dropped and the server never stops).
/// `tokio::signal::ctrl_c()` would only install its handler when first
/// polled, which is too late.
pub(crate) struct Signals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Installs the handlers. If one cannot be installed (no signal
    /// support), that signal is never delivered; the other still works.
    pub(crate) fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(stream) => Some(stream),
                Err(err) => {
                    tracing::warn!(error = %err, "cannot listen for {name}");
                    None
                }
            };
            Self {
                interrupt: listen(SignalKind::interrupt(), "SIGINT"),
                terminate: listen(SignalKind::terminate(), "SIGTERM"),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Resolves with the signal's name on the first SIGINT or SIGTERM.
    pub(crate) async fn recv(self) -> &'static str {
        #[cfg(unix)]
        {
            async fn next(
                stream: Option<tokio::signal::unix::Signal>,
                name: &'static str,
            ) -> &'static str {
                match stream {
                    Some(mut stream) => {
                        stream.recv().await;
                        name
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                name = next(self.interrupt, "SIGINT") => name,
                name = next(self.terminate, "SIGTERM") => name,
            }
        }
        #[cfg(not(unix))]
        {
            match tokio::signal::ctrl_c().await {
                Ok(()) => "SIGINT",
                Err(_) => std::future::pending().await,
            }
        }
    }
}
