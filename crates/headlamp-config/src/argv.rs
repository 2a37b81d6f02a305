//! Go `flag` syntax, normalised for clap.
//!
//! Headlamp parses its command line with Go's `flag` package
//! (<https://pkg.go.dev/flag#hdr-Command_line_flag_syntax>): one or two dashes
//! are equivalent, `-name=value` and `-name value` both work, and a boolean
//! flag never consumes the next argument (`-in-cluster` means true,
//! `-in-cluster=false` turns it off). clap wants `--name=value`, so each
//! argument is rewritten into that canonical form first; after that clap only
//! collects values and renders `--help`.

use crate::ConfigError;
use crate::flags::{self, COMMAND_FLAGS, HELP_ALIASES};

/// The command line rewritten as `--name=value` items for clap.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Normalised {
    /// `--name=value` / `--command` items, program name excluded.
    pub(crate) args: Vec<String>,
}

/// Rewrites Go-style arguments (program name excluded) into clap's canonical
/// long form, rejecting unknown flags with a suggestion.
pub(crate) fn normalise(args: &[String]) -> Result<Normalised, ConfigError> {
    let mut out = Normalised::default();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        // Go stops at the first non-flag argument; we take no positional
        // arguments, so anything left over is a mistake worth naming (often a
        // value with a space that lost its quotes).
        if arg.len() < 2 || !arg.starts_with('-') {
            return Err(ConfigError::UnexpectedArgument { arg: arg.clone() });
        }
        if arg == "--" {
            if let Some(next) = rest.next() {
                return Err(ConfigError::UnexpectedArgument { arg: next.clone() });
            }
            break;
        }
        let body = arg
            .strip_prefix("--")
            .or_else(|| arg.strip_prefix('-'))
            .unwrap_or(arg);
        if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
            return Err(ConfigError::BadFlagSyntax { arg: arg.clone() });
        }
        let (name, inline_value) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };

        if HELP_ALIASES.contains(&name) || COMMAND_FLAGS.iter().any(|(n, _)| *n == name) {
            let name = if name == "h" { "help" } else { name };
            // `-print-config=false` is accepted the way a boolean flag is.
            match inline_value.map(parse_go_bool) {
                None | Some(Some(true)) => out.args.push(format!("--{name}")),
                Some(Some(false)) => {}
                Some(None) => {
                    return Err(ConfigError::BadFlagSyntax { arg: arg.clone() });
                }
            }
            continue;
        }

        let Some(spec) = flags::find_flag(name) else {
            return Err(ConfigError::UnknownFlag {
                flag: name.to_owned(),
                suggestion: flags::closest_name(name, true),
            });
        };
        let value = match (inline_value, spec.is_bool()) {
            (Some(value), _) => value.to_owned(),
            // A bare boolean is true and never takes the next argument.
            (None, true) => "true".to_owned(),
            (None, false) => match rest.next() {
                Some(value) => value.clone(),
                None => {
                    return Err(ConfigError::MissingValue {
                        flag: name.to_owned(),
                    });
                }
            },
        };
        out.args.push(format!("--{name}={value}"));
    }
    Ok(out)
}

/// Go's `strconv.ParseBool` spellings, which `flag` and Headlamp accept.
pub(crate) fn parse_go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> Result<Vec<String>, ConfigError> {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        normalise(&args).map(|n| n.args)
    }

    #[test]
    fn all_go_spellings_of_a_value_flag_are_equal() {
        let expected = vec!["--oidc-client-id=abc".to_owned()];
        for args in [
            &["-oidc-client-id", "abc"][..],
            &["-oidc-client-id=abc"],
            &["--oidc-client-id", "abc"],
            &["--oidc-client-id=abc"],
        ] {
            assert_eq!(norm(args).unwrap(), expected, "{args:?}");
        }
    }

    #[test]
    fn bare_boolean_is_true_and_does_not_take_the_next_argument() {
        assert_eq!(
            norm(&["-in-cluster", "-port", "80"]).unwrap(),
            vec!["--in-cluster=true", "--port=80"]
        );
        assert_eq!(norm(&["--in-cluster"]).unwrap(), vec!["--in-cluster=true"]);
        assert_eq!(
            norm(&["-in-cluster=false"]).unwrap(),
            vec!["--in-cluster=false"]
        );
        assert_eq!(
            norm(&["--oidc-use-pkce=false"]).unwrap(),
            vec!["--oidc-use-pkce=false"]
        );
    }

    #[test]
    fn a_value_may_start_with_a_dash_or_be_empty() {
        assert_eq!(
            norm(&["-oidc-username-prefix", "-"]).unwrap(),
            vec!["--oidc-username-prefix=-"]
        );
        assert_eq!(norm(&["-base-url="]).unwrap(), vec!["--base-url="]);
        // Only the first '=' splits; claim values may contain '='.
        assert_eq!(
            norm(&["-oidc-required-claim=hd=example.com"]).unwrap(),
            vec!["--oidc-required-claim=hd=example.com"]
        );
    }

    #[test]
    fn unknown_flag_names_the_flag_and_suggests_the_closest() {
        let err = norm(&["-oidc-client-idd", "x"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "flag provided but not defined: -oidc-client-idd (did you mean -oidc-client-id?)"
        );
        let err = norm(&["--zzzzzzzzzzzz"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "flag provided but not defined: -zzzzzzzzzzzz (see --help for the list of flags)"
        );
    }

    #[test]
    fn missing_value_and_bad_syntax_are_errors() {
        assert_eq!(
            norm(&["-port"]).unwrap_err().to_string(),
            "flag needs an argument: -port"
        );
        assert!(matches!(
            norm(&["---port=1"]).unwrap_err(),
            ConfigError::BadFlagSyntax { .. }
        ));
        assert!(matches!(
            norm(&["-=x"]).unwrap_err(),
            ConfigError::BadFlagSyntax { .. }
        ));
        assert!(matches!(
            norm(&["-port", "80", "extra"]).unwrap_err(),
            ConfigError::UnexpectedArgument { .. }
        ));
        assert!(matches!(
            norm(&["--", "x"]).unwrap_err(),
            ConfigError::UnexpectedArgument { .. }
        ));
        assert_eq!(norm(&["--"]).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn command_flags_in_every_spelling() {
        for args in [&["-h"][..], &["-help"], &["--help"]] {
            assert_eq!(norm(args).unwrap(), vec!["--help"]);
        }
        assert_eq!(norm(&["-version"]).unwrap(), vec!["--version"]);
        assert_eq!(norm(&["-print-config"]).unwrap(), vec!["--print-config"]);
        assert_eq!(
            norm(&["-print-config=false"]).unwrap(),
            Vec::<String>::new()
        );
        assert!(norm(&["-print-config=maybe"]).is_err());
    }

    #[test]
    fn go_bool_spellings() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_go_bool(t), Some(true));
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_go_bool(f), Some(false));
        }
        for bad in ["yes", "", "tRUE", "on"] {
            assert_eq!(parse_go_bool(bad), None);
        }
    }
}
