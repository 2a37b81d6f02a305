//! Configuration: Go-style flags, `HEADLAMP_CONFIG_*` environment variables
//! and an optional TOML file, layered into one validated [`Config`].
//!
//! headlamp-server accepts the flags and variables people already use for
//! Headlamp (`backend/pkg/config/config.go`), so a deployment can switch
//! backends without rewriting its manifests. Precedence, highest first:
//!
//! 1. command-line flags (`-name value`, `-name=value`, `--name[=value]`;
//!    a bare boolean flag means true),
//! 2. `HEADLAMP_CONFIG_<NAME>` (flag name upper-cased, `-` -> `_`),
//! 3. the `-config FILE` TOML file (keys are flag names),
//! 4. defaults.
//!
//! Validation reports every problem at once, each naming the flag, its
//! environment variable and what is expected; the binary exits with
//! [`ConfigError::EXIT_CODE`] (64) before listening.
//!
//! This crate knows nothing of HTTP: it reads files named by flags (secret
//! file, CA file, session key) so problems surface at start, and hands the
//! results to the other crates through the per-concern views of [`Config`]:
//! [`Config::oidc`], [`Config::clusters`], [`Config::listen`],
//! [`Config::tls`], [`Config::session`], [`Config::logging`].
//!
//! ```
//! use headlamp_config::{Config, Environment};
//!
//! let env = Environment::from_pairs([
//!     ("HEADLAMP_CONFIG_OIDC_CLIENT_ID", "headlamp"),
//!     ("HEADLAMP_CONFIG_PORT", "8080"),
//! ]);
//! let config = Config::from_args(
//!     ["-oidc-idp-issuer-url=https://idp.example.com", "--port", "9090"],
//!     &env,
//! )?;
//! assert_eq!(config.listen.port, 9090); // the flag beats the environment
//! let oidc = config.oidc.as_ref().expect("client id and issuer are set");
//! assert_eq!(oidc.client_id, "headlamp");
//! assert_eq!(oidc.scopes, ["openid", "profile", "email"]);
//! assert!(oidc.use_pkce);
//! # Ok::<(), headlamp_config::ConfigError>(())
//! ```
#![forbid(unsafe_code)]

mod argv;
mod error;
pub mod flags;
mod layers;
mod settings;
mod validate;

use figment::value::{Dict, Value};

pub use error::{ConfigError, Problem, Problems, Source};
pub use layers::Environment;
pub use settings::{
    CaBundle, ClaimMapping, ClusterSources, Config, KubeconfigOrigin, KubeconfigSource,
    ListenSettings, LogFormat, LogLevel, LoggingSettings, OidcSettings, SessionKey,
    SessionSettings, TlsSettings,
};
pub use validate::normalise_scopes;

/// Name shown in `--help`.
const BIN_NAME: &str = "headlamp-server";

/// What the command line asks for.
#[derive(Debug)]
#[non_exhaustive]
pub enum Invocation {
    /// Run the server with this configuration.
    Run(Box<Config>),
    /// `--print-config`: print [`Config::effective_json`] and exit 0.
    PrintConfig(Box<Config>),
    /// `--help`: print this text to stdout and exit 0.
    Help(String),
    /// `--version`: print the version and exit 0.
    Version,
}

/// Parses the command line (without the program name) and the environment.
///
/// `--help` and `--version` win over everything else, even invalid values,
/// so a user can always read the help.
pub fn parse<I, S>(args: I, env: &Environment) -> Result<Invocation, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let args: Vec<String> = args.into_iter().map(Into::into).collect();
    let normalised = argv::normalise(&args)?;
    let command = flags::command(BIN_NAME, env!("CARGO_PKG_VERSION"));
    let matches = command
        .clone()
        .try_get_matches_from(std::iter::once(BIN_NAME.to_owned()).chain(normalised.args))
        // The normaliser only emits known `--name=value` items, so clap has
        // nothing left to reject; map it anyway rather than panic.
        .map_err(|err| ConfigError::BadFlagSyntax {
            arg: err
                .to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
        })?;

    if matches.get_flag("help") {
        return Ok(Invocation::Help(help_text()));
    }
    if matches.get_flag("version") {
        return Ok(Invocation::Version);
    }

    let mut flag_values = Dict::new();
    for spec in flags::FLAGS {
        let mut given: Vec<String> = matches
            .get_many::<String>(spec.name)
            .map(|values| values.cloned().collect())
            .unwrap_or_default();
        let value = match (spec.kind, given.len()) {
            (_, 0) => continue,
            (flags::FlagKind::Repeated, _) => Value::from(given),
            _ => Value::from(given.pop().unwrap_or_default()),
        };
        flag_values.insert(spec.name.to_owned(), value);
    }

    let merged = layers::merge(flag_values, env);
    let config = validate::build(merged, env)?;
    if matches.get_flag("print-config") {
        Ok(Invocation::PrintConfig(Box::new(config)))
    } else {
        Ok(Invocation::Run(Box::new(config)))
    }
}

/// The `--help` text: every flag with its environment variable and default.
pub fn help_text() -> String {
    flags::command(BIN_NAME, env!("CARGO_PKG_VERSION"))
        .render_help()
        .to_string()
}

impl Config {
    /// Builds a configuration from flags and an environment, for tests and
    /// embedders; `--help`, `--version` and `--print-config` are errors here.
    pub fn from_args<I, S>(args: I, env: &Environment) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        match parse(args, env)? {
            Invocation::Run(config) => Ok(*config),
            Invocation::PrintConfig(_) | Invocation::Help(_) | Invocation::Version => {
                Err(ConfigError::BadFlagSyntax {
                    arg: "--help, --version and --print-config are not configuration".to_owned(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests;
