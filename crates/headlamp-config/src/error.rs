use std::fmt;
use std::path::PathBuf;

use crate::flags;

/// Where a configuration value came from; named in every problem so the user
/// knows which of the four places to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// The built-in default.
    Default,
    /// The `-config` TOML file.
    File(PathBuf),
    /// A `HEADLAMP_CONFIG_*` environment variable (the name is included).
    Env(String),
    /// A command-line flag.
    Flag,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(path) => write!(f, "config file {}", path.display()),
            Source::Env(var) => write!(f, "environment variable {var}"),
            Source::Flag => f.write_str("command line"),
        }
    }
}

/// One thing wrong with the configuration, tied to the flag that fixes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The flag (without dashes) the problem is about.
    pub flag: &'static str,
    /// What is wrong and what is expected. Never contains a secret value.
    pub message: String,
    /// Where the offending value came from, when a value was given.
    pub source: Option<Source>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "-{} ({}): {}",
            self.flag,
            flags::env_var_for(self.flag),
            self.message
        )?;
        match &self.source {
            Some(source @ (Source::File(_) | Source::Env(_) | Source::Flag)) => {
                write!(f, " [set by {source}]")
            }
            _ => Ok(()),
        }
    }
}

/// Every problem found, reported together so one run shows all fixes needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "invalid configuration ({n} problem{}):",
            if n == 1 { "" } else { "s" }
        )?;
        for problem in &self.0 {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

/// Why no [`Config`](crate::Config) could be built.
///
/// Every variant is a usage error: the binary prints it and exits with
/// [`ConfigError::EXIT_CODE`] before anything listens.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A flag that does not exist (the wording is Go's).
    #[error("flag provided but not defined: -{flag} ({})", match suggestion {
        Some(s) => format!("did you mean -{s}?"),
        None => "see --help for the list of flags".to_owned(),
    })]
    UnknownFlag {
        /// The flag as given, without dashes.
        flag: String,
        /// The closest known flag, when one is close.
        suggestion: Option<&'static str>,
    },
    /// A non-boolean flag was the last argument.
    #[error("flag needs an argument: -{flag}")]
    MissingValue {
        /// The flag, without dashes.
        flag: String,
    },
    /// Something like `---x`, `-=x`, or a command flag with a bad value.
    #[error("bad flag syntax: {arg}")]
    BadFlagSyntax {
        /// The argument as given.
        arg: String,
    },
    /// An argument that is not a flag.
    #[error(
        "unexpected argument {arg:?}: only flags are accepted (a value containing spaces needs quotes)"
    )]
    UnexpectedArgument {
        /// The argument as given.
        arg: String,
    },
    /// Values were given but some are invalid; all are listed.
    #[error("{0}")]
    Invalid(Problems),
}

impl ConfigError {
    /// Exit status for any configuration error: `EX_USAGE` from BSD
    /// `sysexits.h`, which Go tools and init systems recognise as "fix your
    /// command line", distinct from a crash.
    pub const EXIT_CODE: u8 = 64;

    /// The individual problems, when the error is a validation failure.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid(p) => &p.0,
            _ => &[],
        }
    }
}
