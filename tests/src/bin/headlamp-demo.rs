//! `headlamp-demo`: headlamp-server signing you in against a real OpenID
//! provider and a test Kubernetes API server, in one command.
//!
//! ```text
//! ./scripts/demo.sh                 # passthrough: your ID token reaches the API server
//! ./scripts/demo.sh --impersonate   # headlamp-server impersonates you with its own credentials
//! ```
//!
//! Starts the IdP (`tests/idp/server.mjs`), the test API server (TLS,
//! trusting the IdP) and the `headlamp-server` binary built next to this
//! one, all on 127.0.0.1, prints the URL and the test users, and runs until
//! Ctrl-C; then everything stops and its temporary files are deleted. See
//! [`headlamp_e2e::stack`] for how the pieces are configured.
#![forbid(unsafe_code)]
// A command-line program: its output is for the person who ran it.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use bytes::Bytes;
use headlamp_e2e::stack::{CLUSTER, SignInStack, StackOptions};
use headlamp_test_util::idp::{HttpClient, TestUser};
use http::{Request, StatusCode};
use http_body_util::Full;

const USAGE: &str = "\
usage: headlamp-demo [--impersonate] [--port PORT] [--base-url /PATH] [--log-level LEVEL]

  --impersonate      headlamp-server validates your ID token and calls the API
                     server as its service account with Impersonate-User/-Group
                     (-oidc-impersonate=true); default: your ID token is sent
  --port PORT        where headlamp-server listens on 127.0.0.1 (default 4466)
  --base-url /PATH   serve everything below /PATH (-base-url)
  --log-level LEVEL  headlamp-server's -log-level (default info)

Run it through ./scripts/demo.sh, which installs the IdP's npm packages and
builds headlamp-server first.";

/// How long headlamp-server may take to answer /healthz.
const START_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Args {
    stack: StackOptions,
    log_level: String,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        stack: StackOptions {
            port: 4466,
            ..StackOptions::default()
        },
        log_level: "info".to_owned(),
    };
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = |what: &str| {
            inline
                .clone()
                .or_else(|| argv.next())
                .ok_or_else(|| format!("{name} needs a value ({what})"))
        };
        match name.trim_start_matches('-') {
            "impersonate" => args.stack.impersonate = true,
            "port" => {
                let port = value("a port number")?;
                args.stack.port = port
                    .parse()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("--port must be 1-65535, got {port:?}"))?;
            }
            "base-url" => {
                let base = value("a path such as /headlamp")?;
                if !base.starts_with('/') {
                    return Err(format!("--base-url must start with '/', got {base:?}"));
                }
                args.stack.base_url = base.trim_end_matches('/').to_owned();
            }
            "log-level" => args.log_level = value("trace, debug, info, warn or error")?,
            "h" | "help" => return Ok(None),
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    Ok(Some(args))
}

/// `headlamp-server` beside this binary (`target/<profile>/`), or
/// `HEADLAMP_SERVER_BIN`.
fn server_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("HEADLAMP_SERVER_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate this program: {e}"))?;
    let binary = exe.with_file_name("headlamp-server");
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(format!(
            "{} does not exist: run `cargo build -p headlamp-server` first \
             (./scripts/demo.sh does), or set HEADLAMP_SERVER_BIN",
            binary.display()
        ))
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("headlamp-demo: {message}\n\n{USAGE}");
            return ExitCode::from(64);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("headlamp-demo: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("headlamp-demo: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let binary = server_binary()?;
    let port = args.stack.port;
    // Fail before starting anything when the port is taken: the IdP's
    // redirect URI is bound to it.
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).map_err(|e| {
        format!("port {port} on 127.0.0.1 is not free ({e}); choose another with --port")
    })?;

    eprintln!("Starting the identity provider and the test Kubernetes API server…");
    let stack = SignInStack::start(args.stack)
        .await
        .map_err(|e| e.to_string())?;

    let mut command = tokio::process::Command::new(&binary);
    command
        // Only the flags below: the developer's HEADLAMP_CONFIG_* or
        // ~/.kube/config must not change what the demo shows.
        .env_clear()
        .envs(stack.server_env())
        .arg("-listen-addr=127.0.0.1")
        .arg(format!("-port={port}"))
        .arg(format!("-log-level={}", args.log_level))
        .args(stack.server_args())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let mut server = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;

    wait_until_healthy(&stack, &mut server).await?;
    print_banner(&stack);

    tokio::select! {
        signal = tokio::signal::ctrl_c() => {
            signal.map_err(|e| format!("cannot wait for Ctrl-C: {e}"))?;
            eprintln!("\nStopping…");
        }
        status = server.wait() => {
            return Err(match status {
                Ok(status) => format!("headlamp-server exited ({status}); its log is above"),
                Err(e) => format!("lost headlamp-server: {e}"),
            });
        }
    }
    // The server first (it may have requests to the others in flight),
    // then the API server and IdP, then the temporary files.
    let _ = server.kill().await;
    drop(stack);
    eprintln!("Stopped; temporary files removed.");
    Ok(())
}

async fn wait_until_healthy(
    stack: &SignInStack,
    server: &mut tokio::process::Child,
) -> Result<(), String> {
    let client = HttpClient::new().map_err(|e| e.to_string())?;
    let healthz = format!("{}healthz", stack.page_url());
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = server.try_wait() {
            return Err(format!(
                "headlamp-server exited during start ({status}); its log is above"
            ));
        }
        if let Ok(request) = Request::get(&healthz).body(Full::new(Bytes::new()))
            && client
                .send(request, "headlamp-server /healthz")
                .await
                .is_ok_and(|r| r.status == StatusCode::OK)
        {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "headlamp-server did not answer {healthz} within {START_TIMEOUT:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn print_banner(stack: &SignInStack) {
    let options = stack.options();
    let mode = if options.impersonate {
        "impersonate: headlamp-server checks your ID token, then calls the API server \
         as its service account with Impersonate-User/Impersonate-Group"
    } else {
        "passthrough: your ID token is sent to the API server, which validates it itself"
    };
    let mut users = String::new();
    for (user, what) in [
        (TestUser::Alice, "groups dev, ops"),
        (TestUser::Bob, "no groups"),
        (TestUser::Gwen, "150 groups: a token larger than one cookie"),
        (
            TestUser::Mallory,
            "claims to be system:admin in system:masters",
        ),
        (TestUser::Erin, "unverified email"),
    ] {
        users.push_str(&format!(
            "    {:<8} {:<18} {what}\n",
            user.login(),
            user.password()
        ));
    }
    println!(
        "
headlamp-auth demo is running.

  Open  {page}
        (http://localhost:{port}{base}/ works too)
  Click \"Sign in\" on cluster \"{CLUSTER}\" and log in, e.g. as alice / alice-password.

  Users (login, password):
{users}
  Mode        {mode}
  IdP         {issuer} (oidc-provider, tests/idp/server.mjs)
  API server  {apiserver} (test Kubernetes API server, TLS)
  Kubeconfig  {kubeconfig}

Press Ctrl-C to stop everything.
",
        page = stack.page_url(),
        port = options.port,
        base = options.base_url,
        issuer = stack.idp.issuer(),
        apiserver = stack.apiserver.url(),
        kubeconfig = stack.kubeconfig_path().display(),
    );
}
