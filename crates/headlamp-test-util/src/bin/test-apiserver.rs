//! Runs the test Kubernetes API server as a process, for demos and for
//! driving it from scripts:
//!
//! ```text
//! cargo run -p headlamp-test-util --bin test-apiserver -- \
//!     --oidc-issuer-url http://127.0.0.1:41234 --oidc-client-id headlamp \
//!     --kubeconfig /tmp/testbed.kubeconfig
//! ```
//!
//! It prints one JSON line when ready (`url`, `httpUrl`, `caFile`,
//! `serviceAccountToken`, `kubeconfig`), logs each request to stderr, and
//! runs until SIGINT or SIGTERM. The kubeconfig it writes points at the
//! server with the `headlamp` service account's token: what headlamp-server
//! in impersonation mode calls the API server with.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool: its ready line and request log are its output"
)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use headlamp_test_util::apiserver::{ApiServerOptions, OidcOptions, TestApiServer};
use headlamp_test_util::kubeconfig::KubeUser;

const USAGE: &str = "usage: test-apiserver [--oidc-issuer-url URL --oidc-client-id ID \
[--oidc-username-claim CLAIM] [--oidc-username-prefix PREFIX] [--oidc-groups-claim CLAIM] \
[--oidc-groups-prefix PREFIX] [--oidc-ca-file FILE]] [--kubeconfig FILE] [--port N] \
[--plain-http] [--anonymous-auth] [--watch-events N] [--watch-interval-ms N] [--quiet]";

#[derive(Debug)]
struct Args {
    options: ApiServerOptions,
    kubeconfig: Option<PathBuf>,
    quiet: bool,
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut options = ApiServerOptions::default();
    let mut issuer = None;
    let mut client_id = None;
    let mut oidc_settings: Vec<(String, String)> = Vec::new();
    let mut kubeconfig = None;
    let mut quiet = false;
    while let Some(arg) = argv.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| argv.next())
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        let number = |name: &str, v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{name} must be a whole number, got {v:?}"))
        };
        match flag.as_str() {
            "--oidc-issuer-url" => issuer = Some(value(&flag)?),
            "--oidc-client-id" => client_id = Some(value(&flag)?),
            "--oidc-username-claim"
            | "--oidc-username-prefix"
            | "--oidc-groups-claim"
            | "--oidc-groups-prefix"
            | "--oidc-ca-file" => {
                let v = value(&flag)?;
                oidc_settings.push((flag.clone(), v));
            }
            "--kubeconfig" => kubeconfig = Some(PathBuf::from(value(&flag)?)),
            "--port" => {
                let v = value(&flag)?;
                let port = number(&flag, v)?;
                options.port = Some(
                    u16::try_from(port).map_err(|_| format!("--port {port} is not a TCP port"))?,
                );
            }
            "--plain-http" => options.plain_http = true,
            "--anonymous-auth" => options.anonymous_auth = true,
            "--watch-events" => options.watch_events = number(&flag, value(&flag)?)?,
            "--watch-interval-ms" => {
                options.watch_interval = Duration::from_millis(number(&flag, value(&flag)?)?)
            }
            "--quiet" => quiet = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown flag {other:?}\n{USAGE}")),
        }
    }
    match (issuer, client_id) {
        (Some(issuer), Some(client_id)) => {
            let mut oidc = OidcOptions::new(issuer, client_id);
            for (flag, v) in oidc_settings {
                match flag.as_str() {
                    "--oidc-username-claim" => oidc.username_claim = v,
                    "--oidc-username-prefix" => oidc.username_prefix = Some(v),
                    "--oidc-groups-claim" => oidc.groups_claim = Some(v),
                    "--oidc-groups-prefix" => oidc.groups_prefix = Some(v),
                    _ => {
                        oidc.ca_pem = Some(
                            std::fs::read_to_string(&v)
                                .map_err(|e| format!("--oidc-ca-file {v}: cannot read it: {e}"))?,
                        );
                    }
                }
            }
            options.oidc = Some(oidc);
        }
        (None, None) if oidc_settings.is_empty() => {}
        _ => {
            return Err(
                "--oidc-issuer-url and --oidc-client-id go together (like kube-apiserver's flags)"
                    .to_owned(),
            );
        }
    }
    Ok(Args {
        options,
        kubeconfig,
        quiet,
    })
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(message) => {
            eprintln!("test-apiserver: {message}");
            return ExitCode::from(64);
        }
    };
    let server = match TestApiServer::start(args.options).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("test-apiserver: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &args.kubeconfig {
        let user = KubeUser::Token(server.service_account_token().to_owned());
        if let Err(e) = server.write_kubeconfig(path, user) {
            eprintln!("test-apiserver: {e}");
            return ExitCode::FAILURE;
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "url": server.url(),
            "httpUrl": server.http_url(),
            "caFile": server.ca_path(),
            "serviceAccountToken": server.service_account_token(),
            "kubeconfig": args.kubeconfig,
        })
    );
    let log = server.request_log().clone();
    let quiet = args.quiet;
    let printer = tokio::spawn(async move {
        let mut next = 0u64;
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if quiet {
                continue;
            }
            let start = next;
            for r in log.snapshot().into_iter().filter(|r| r.seq >= start) {
                if r.status.is_none() && r.seq == next {
                    // Still running (e.g. a watch): print it once it answers.
                    break;
                }
                next = r.seq + 1;
                let who = r
                    .effective_user
                    .as_ref()
                    .map(|u| u.username.as_str())
                    .unwrap_or("-");
                let status = r.status.map(|s| s.to_string()).unwrap_or_default();
                eprintln!("{} {} {status} {who}", r.method, r.path_and_query);
            }
        }
    });
    shutdown_signal().await;
    printer.abort();
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Args, String> {
        parse(s.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn parses_flags() {
        let a = args("--oidc-issuer-url=http://127.0.0.1:1 --oidc-client-id headlamp --oidc-groups-prefix oidc: --port 6443 --plain-http").unwrap();
        let oidc = a.options.oidc.unwrap();
        assert_eq!(oidc.issuer_url, "http://127.0.0.1:1");
        assert_eq!(oidc.groups_prefix.as_deref(), Some("oidc:"));
        assert_eq!(a.options.port, Some(6443));
        assert!(a.options.plain_http);
        assert!(
            args("--oidc-issuer-url http://x")
                .unwrap_err()
                .contains("go together")
        );
        assert!(args("--bogus").unwrap_err().contains("unknown flag"));
        assert!(args("--port 70000").unwrap_err().contains("not a TCP port"));
        assert!(args("--port").unwrap_err().contains("needs a value"));
    }
}
