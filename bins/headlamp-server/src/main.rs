//! headlamp-server: a Headlamp-compatible OpenID Connect login and
//! Kubernetes API proxy.
//!
//! `main` only wires things together: configuration (headlamp-config) ->
//! logging -> the route table ([`routes`]) -> the listener ([`server`]).
//! Routes are added in `routes.rs`; nothing else lives here.
#![forbid(unsafe_code)]

mod cookies;
mod frontend;
mod logging;
mod login;
mod metrics;
mod respond;
mod routes;
mod server;
mod session;
mod shutdown;
mod state;
mod tls;

use std::process::ExitCode;
use std::sync::Arc;

use headlamp_config::{Config, ConfigError, Environment, Invocation};

/// Exit status when the server could not start or failed while running
/// (configuration errors use [`ConfigError::EXIT_CODE`] instead).
const EXIT_RUNTIME_FAILURE: u8 = 1;

fn main() -> ExitCode {
    let args = match collect_args() {
        Ok(args) => args,
        Err(code) => return code,
    };
    match headlamp_config::parse(args, &Environment::from_process()) {
        Ok(Invocation::Run(config)) => run(*config),
        Ok(Invocation::PrintConfig(config)) => print_stdout(&pretty(&config)),
        Ok(Invocation::Help(text)) => print_stdout(&text),
        Ok(Invocation::Version) => {
            print_stdout(&format!("headlamp-server {}\n", env!("CARGO_PKG_VERSION")))
        }
        Ok(_) => usage_error("this command is not supported by this build"),
        Err(err) => usage_error(&err.to_string()),
    }
}

/// Arguments as strings; a non-UTF-8 argument is a usage error, not a panic
/// (`std::env::args` would panic).
fn collect_args() -> Result<Vec<String>, ExitCode> {
    std::env::args_os()
        .skip(1)
        .map(|arg| {
            arg.into_string().map_err(|arg| {
                usage_error(&format!(
                    "argument {} is not valid UTF-8",
                    arg.to_string_lossy()
                ))
            })
        })
        .collect()
}

fn pretty(config: &Config) -> String {
    let mut text = serde_json::to_string_pretty(&config.effective_json())
        .unwrap_or_else(|err| format!("{{\"error\": \"cannot render configuration: {err}\"}}"));
    text.push('\n');
    text
}

// --help, --version and --print-config are the program's answer, so they go
// to stdout as they are; everything else is logged through tracing.
#[allow(clippy::print_stdout)]
fn print_stdout(text: &str) -> ExitCode {
    print!("{text}");
    ExitCode::SUCCESS
}

// Before logging is set up there is no subscriber: a configuration error is
// printed plainly, like Go's flag package does.
#[allow(clippy::print_stderr)]
fn usage_error(message: &str) -> ExitCode {
    eprintln!("headlamp-server: {message}");
    eprintln!("Run headlamp-server --help for every flag, its environment variable and default.");
    ExitCode::from(ConfigError::EXIT_CODE)
}

fn run(config: Config) -> ExitCode {
    logging::init(&config.logging);
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!(error = %err, "cannot start the async runtime");
            return ExitCode::from(EXIT_RUNTIME_FAILURE);
        }
    };
    match runtime.block_on(server::run(Arc::new(config))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "headlamp-server stopped");
            ExitCode::from(EXIT_RUNTIME_FAILURE)
        }
    }
}
