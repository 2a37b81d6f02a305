//! The flag table: the one list every other view of the configuration is
//! generated from (clap's `--help`, the environment variable names, the TOML
//! file keys, `--print-config`, and `docs/flags.md`).
//!
//! Names, defaults and meanings follow Headlamp's Go backend
//! (`backend/pkg/config/config.go`) so existing command lines, Helm values and
//! `HEADLAMP_CONFIG_*` variables keep working; where we differ on purpose the
//! help text says so.

use std::fmt::Write as _;

/// Prefix of every environment variable twin, as in Headlamp's koanf loader
/// (`env.Provider("HEADLAMP_CONFIG_", ...)`).
pub const ENV_PREFIX: &str = "HEADLAMP_CONFIG_";

/// What kind of value a flag takes; decides parsing in every layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlagKind {
    /// `true`/`false` in Go's `strconv.ParseBool` spellings; a bare `-flag`
    /// on the command line means `true`.
    Bool,
    /// Free text: a name, a URL, a path.
    Text,
    /// Text that must never be printed (`--print-config` shows `[redacted]`).
    Secret,
    /// A whole number within `min..=max`.
    Number {
        /// Smallest accepted value.
        min: u64,
        /// Largest accepted value.
        max: u64,
    },
    /// One of a fixed set of words (case-insensitive).
    Choice(&'static [&'static str]),
    /// A list given as one string split on `separator` (a TOML file may also
    /// use an array of strings). Repeating the flag keeps the last value, as
    /// Go's `flag` package does.
    List {
        /// The character between items.
        separator: char,
    },
    /// A flag that may be given several times; every occurrence adds an item.
    /// Its environment twin and a TOML string use commas between items; a
    /// TOML file may also use an array of strings.
    Repeated,
}

/// Which part of the system a flag configures (groups `--help` and the docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum FlagGroup {
    /// Listening, TLS serving, base URL, static files, metrics.
    Server,
    /// Where clusters come from: kubeconfig, in-cluster.
    Clusters,
    /// OpenID Connect login and token validation.
    Oidc,
    /// Login sessions and their cookies.
    Session,
    /// Log level and format.
    Logging,
    /// Where configuration itself comes from.
    Config,
}

impl FlagGroup {
    /// Heading used in `--help` and `docs/flags.md`.
    pub fn title(self) -> &'static str {
        match self {
            FlagGroup::Server => "Server",
            FlagGroup::Clusters => "Clusters",
            FlagGroup::Oidc => "OpenID Connect",
            FlagGroup::Session => "Session",
            FlagGroup::Logging => "Logging",
            FlagGroup::Config => "Configuration source",
        }
    }
}

/// One configuration flag and everything needed to parse and document it.
#[derive(Debug, Clone, Copy)]
pub struct FlagSpec {
    /// Flag name without dashes; also the TOML key.
    pub name: &'static str,
    /// Value kind.
    pub kind: FlagKind,
    /// Default as it would be written on the command line; `None` = unset.
    pub default: Option<&'static str>,
    /// Placeholder for the value in `--help` (ignored for booleans).
    pub value_name: &'static str,
    /// Section of `--help`.
    pub group: FlagGroup,
    /// One-paragraph description.
    pub help: &'static str,
}

impl FlagSpec {
    /// The `HEADLAMP_CONFIG_*` variable twin: upper case, `-` becomes `_`
    /// (Headlamp maps the other way: lower case, `_` becomes `-`).
    pub fn env_var(&self) -> String {
        env_var_for(self.name)
    }

    /// Whether the flag takes a boolean (and so may be given bare).
    pub fn is_bool(&self) -> bool {
        matches!(self.kind, FlagKind::Bool)
    }
}

/// The environment variable twin of a flag name.
pub fn env_var_for(name: &str) -> String {
    let mut var = String::with_capacity(ENV_PREFIX.len() + name.len());
    var.push_str(ENV_PREFIX);
    var.extend(name.chars().map(|c| {
        if c == '-' {
            '_'
        } else {
            c.to_ascii_uppercase()
        }
    }));
    var
}

/// Flags that select what the program does instead of configuring it; they
/// have no environment twin and no file key.
pub const COMMAND_FLAGS: &[(&str, &str)] = &[
    ("help", "Print this help and exit."),
    ("version", "Print the version and exit."),
    (
        "print-config",
        "Print the effective configuration as JSON (secrets shown as \"[redacted]\") and exit.",
    ),
];

/// Short aliases Go's `flag` package answers with usage (`-h`, `-help`).
pub(crate) const HELP_ALIASES: &[&str] = &["h", "help"];

const fn flag(
    name: &'static str,
    kind: FlagKind,
    default: Option<&'static str>,
    value_name: &'static str,
    group: FlagGroup,
    help: &'static str,
) -> FlagSpec {
    FlagSpec {
        name,
        kind,
        default,
        value_name,
        group,
        help,
    }
}

/// Every configuration flag, in `--help` order.
pub const FLAGS: &[FlagSpec] = &[
    // --- Server -------------------------------------------------------------
    flag(
        "listen-addr",
        FlagKind::Text,
        None,
        "ADDR",
        FlagGroup::Server,
        "Address to listen on (IP address or host name). Empty listens on all interfaces.",
    ),
    flag(
        "port",
        FlagKind::Number { min: 0, max: 65535 },
        Some("4466"),
        "PORT",
        FlagGroup::Server,
        "Port to listen on. 0 asks the operating system for a free port (the chosen port is logged).",
    ),
    flag(
        "base-url",
        FlagKind::Text,
        None,
        "PATH",
        FlagGroup::Server,
        "Path prefix everything is served under, e.g. /headlamp. Must start with '/'; a trailing '/' is ignored.",
    ),
    flag(
        "html-static-dir",
        FlagKind::Text,
        None,
        "DIR",
        FlagGroup::Server,
        "Directory holding a built Headlamp frontend to serve (index.html is rewritten in memory, the directory may be read-only).",
    ),
    flag(
        "tls-cert-path",
        FlagKind::Text,
        None,
        "FILE",
        FlagGroup::Server,
        "PEM certificate chain to serve HTTPS with. Needs -tls-key-path.",
    ),
    flag(
        "tls-key-path",
        FlagKind::Text,
        None,
        "FILE",
        FlagGroup::Server,
        "PEM private key for -tls-cert-path.",
    ),
    flag(
        "metrics-enabled",
        FlagKind::Bool,
        Some("false"),
        "",
        FlagGroup::Server,
        "Serve Prometheus metrics at /metrics.",
    ),
    // --- Clusters -----------------------------------------------------------
    flag(
        "kubeconfig",
        FlagKind::List { separator: ':' },
        None,
        "PATHS",
        FlagGroup::Clusters,
        "Kubeconfig file(s), ':'-separated like KUBECONFIG. Unset: $KUBECONFIG, else ~/.kube/config (none when -in-cluster).",
    ),
    flag(
        "skipped-kube-contexts",
        FlagKind::List { separator: ',' },
        None,
        "NAMES",
        FlagGroup::Clusters,
        "Comma-separated kubeconfig context names to ignore.",
    ),
    flag(
        "in-cluster",
        FlagKind::Bool,
        Some("false"),
        "",
        FlagGroup::Clusters,
        "Also serve the cluster this pod runs in (service-account token and CA from the pod).",
    ),
    flag(
        "in-cluster-context-name",
        FlagKind::Text,
        Some("main"),
        "NAME",
        FlagGroup::Clusters,
        "Cluster name of the in-cluster context.",
    ),
    flag(
        "insecure-ssl",
        FlagKind::Bool,
        Some("false"),
        "",
        FlagGroup::Clusters,
        "Do not verify Kubernetes API server certificates. Unsafe: for local experiments only.",
    ),
    // --- OIDC ---------------------------------------------------------------
    flag(
        "oidc-client-id",
        FlagKind::Text,
        None,
        "ID",
        FlagGroup::Oidc,
        "OAuth 2.0 client id registered at the identity provider.",
    ),
    flag(
        "oidc-client-secret",
        FlagKind::Secret,
        None,
        "SECRET",
        FlagGroup::Oidc,
        "Client secret. Visible in `ps`: prefer -oidc-client-secret-file or the environment variable.",
    ),
    flag(
        "oidc-client-secret-file",
        FlagKind::Text,
        None,
        "FILE",
        FlagGroup::Oidc,
        "File holding the client secret (trailing newline ignored). Excludes -oidc-client-secret.",
    ),
    flag(
        "oidc-idp-issuer-url",
        FlagKind::Text,
        None,
        "URL",
        FlagGroup::Oidc,
        "Issuer URL of the identity provider (https; http only for loopback hosts).",
    ),
    flag(
        "oidc-scopes",
        FlagKind::List { separator: ',' },
        Some("profile,email"),
        "SCOPES",
        FlagGroup::Oidc,
        "Comma-separated scopes to request; openid is always added, once, first.",
    ),
    flag(
        "oidc-callback-url",
        FlagKind::Text,
        None,
        "URL",
        FlagGroup::Oidc,
        "Redirect URI registered at the identity provider. Unset: derived from the request ({scheme}://{Host}[base-url]/oidc-callback).",
    ),
    flag(
        "oidc-validator-client-id",
        FlagKind::Text,
        None,
        "ID",
        FlagGroup::Oidc,
        "Audience expected in tokens when it differs from -oidc-client-id.",
    ),
    flag(
        "oidc-validator-idp-issuer-url",
        FlagKind::Text,
        None,
        "URL",
        FlagGroup::Oidc,
        "Issuer (iss) expected in tokens when it differs from -oidc-idp-issuer-url.",
    ),
    flag(
        "oidc-skip-tls-verify",
        FlagKind::Bool,
        Some("false"),
        "",
        FlagGroup::Oidc,
        "Do not verify the identity provider's certificate. Unsafe: for local experiments only.",
    ),
    flag(
        "oidc-ca-file",
        FlagKind::Text,
        None,
        "FILE",
        FlagGroup::Oidc,
        "PEM file of CA certificates to trust for the identity provider (instead of the system roots).",
    ),
    flag(
        "oidc-use-access-token",
        FlagKind::Bool,
        Some("false"),
        "",
        FlagGroup::Oidc,
        "Send the access token to the API server instead of the ID token.",
    ),
    flag(
        "oidc-use-pkce",
        FlagKind::Bool,
        Some("true"),
        "",
        FlagGroup::Oidc,
        "Use PKCE S256 (RFC 7636). On by default (Headlamp: off); -oidc-use-pkce=false for a broken provider.",
    ),
    flag(
        "oidc-use-cookie",
        FlagKind::Bool,
        Some("false"),
        "",
        FlagGroup::Oidc,
        "Accepted for Headlamp compatibility; has no effect (the -oidc-* flags apply to every cluster without its own OIDC settings).",
    ),
    flag(
        "oidc-impersonate",
        FlagKind::Bool,
        Some("false"),
        "",
        FlagGroup::Oidc,
        "Validate tokens here and call the API server with the cluster's own credentials plus Impersonate-User/Impersonate-Group.",
    ),
    flag(
        "oidc-impersonate-claim",
        FlagKind::Text,
        Some("preferred_username"),
        "CLAIM",
        FlagGroup::Oidc,
        "Token claim that becomes the username (Impersonate-User).",
    ),
    flag(
        "oidc-groups-claim",
        FlagKind::Text,
        Some("groups"),
        "CLAIM",
        FlagGroup::Oidc,
        "Token claim holding the groups (Impersonate-Group); dotted paths such as realm_access.roles work.",
    ),
    flag(
        "oidc-username-prefix",
        FlagKind::Text,
        None,
        "PREFIX",
        FlagGroup::Oidc,
        "Prefix added to every username, e.g. oidc: (like kube-apiserver's --oidc-username-prefix).",
    ),
    flag(
        "oidc-groups-prefix",
        FlagKind::Text,
        None,
        "PREFIX",
        FlagGroup::Oidc,
        "Prefix added to every group (like kube-apiserver's --oidc-groups-prefix).",
    ),
    flag(
        "oidc-required-claim",
        FlagKind::Repeated,
        None,
        "KEY=VALUE",
        FlagGroup::Oidc,
        "Claim a token must carry with exactly this value. Repeatable; environment and file take a comma-separated list.",
    ),
    // --- Session ------------------------------------------------------------
    flag(
        "session-ttl",
        FlagKind::Number {
            min: 1,
            max: 31_536_000,
        },
        Some("86400"),
        "SECONDS",
        FlagGroup::Session,
        "Lifetime of the login cookies in seconds (1 to 31536000, one year).",
    ),
    flag(
        "session-key-file",
        FlagKind::Text,
        None,
        "FILE",
        FlagGroup::Session,
        "File with at least 32 bytes of random data (raw or text) that login-state and refresh cookies are sealed with. All replicas must share it. Unset: a random key per process (logins then cannot cross replicas or restarts).",
    ),
    // --- Logging ------------------------------------------------------------
    flag(
        "log-level",
        FlagKind::Choice(&["trace", "debug", "info", "warn", "error"]),
        Some("info"),
        "LEVEL",
        FlagGroup::Logging,
        "Least severe level logged: trace, debug, info, warn or error.",
    ),
    flag(
        "log-format",
        FlagKind::Choice(&["text", "json"]),
        Some("text"),
        "FORMAT",
        FlagGroup::Logging,
        "text (human-readable, coloured on a terminal) or json (one JSON object per line).",
    ),
    // --- Config file ----------------------------------------------------------
    flag(
        "config",
        FlagKind::Text,
        None,
        "FILE",
        FlagGroup::Config,
        "TOML file whose keys are flag names (e.g. port = 8080). Flags and environment variables override it.",
    ),
];

/// The spec of a configuration flag by name.
pub fn find_flag(name: &str) -> Option<&'static FlagSpec> {
    FLAGS.iter().find(|f| f.name == name)
}

/// The known name closest to `name` (flags or, with `include_commands`, also
/// `help`/`version`/`print-config`), when it is close enough to be a typo.
pub(crate) fn closest_name(name: &str, include_commands: bool) -> Option<&'static str> {
    let commands = COMMAND_FLAGS.iter().map(|(n, _)| *n);
    let names: Vec<&'static str> = if include_commands {
        FLAGS.iter().map(|f| f.name).chain(commands).collect()
    } else {
        FLAGS.iter().map(|f| f.name).collect()
    };
    // Damerau-Levenshtein catches swapped letters ("oidc-cleint-id");
    // a third of the name's length keeps wild guesses out.
    let limit = (name.len() / 3).max(2);
    names
        .into_iter()
        .map(|candidate| (strsim::damerau_levenshtein(name, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// How the default is shown in help and docs.
fn default_display(spec: &FlagSpec) -> String {
    match spec.default {
        Some(d) => d.to_owned(),
        None => "unset".to_owned(),
    }
}

/// How the value is written after the flag name in help and docs.
pub(crate) fn syntax(spec: &FlagSpec) -> String {
    if spec.is_bool() {
        format!("-{}[=true|false]", spec.name)
    } else {
        format!("-{} {}", spec.name, spec.value_name)
    }
}

/// The Markdown flag table committed as `docs/flags.md`; a test asserts the
/// committed file equals this, so the docs cannot drift from `--help`.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "# headlamp-server flags\n\n\
         <!-- Generated from crates/headlamp-config/src/flags.rs; a test keeps it in sync.\n     \
         Regenerate: HEADLAMP_UPDATE_DOCS=1 cargo test -p headlamp-config flags_doc -->\n\n\
         Every flag can be written `-name value`, `-name=value`, `--name value` or\n\
         `--name=value`; a boolean flag given bare (`-in-cluster`) means `true` and\n\
         `-in-cluster=false` turns it off.\n\n\
         Precedence: command-line flag > environment variable > `-config` file > default.\n\
         The environment variable is `HEADLAMP_CONFIG_` plus the flag name in upper case\n\
         with `-` replaced by `_`. An empty environment variable counts as unset.\n\
         The `-config` file is TOML with the flag names as keys, e.g.\n\n\
         ```toml\n\
         port = 8080\n\
         oidc-idp-issuer-url = \"https://login.example.com/realms/k8s\"\n\
         oidc-scopes = [\"profile\", \"email\", \"groups\"]\n\
         oidc-required-claim = [\"hd=example.com\"]\n\
         ```\n\n\
         Lists: in a flag or environment variable a list is one string (`,` between\n\
         items, `:` for `kubeconfig` paths); in the file it may also be an array of\n\
         strings. `-oidc-required-claim` may be repeated on the command line.\n",
    );
    let mut group = None;
    for spec in FLAGS {
        if group != Some(spec.group) {
            group = Some(spec.group);
            let _ = write!(
                out,
                "\n## {}\n\n| Flag | Environment variable | Default | Description |\n| --- | --- | --- | --- |\n",
                spec.group.title()
            );
        }
        let _ = writeln!(
            out,
            "| `{}` | `{}` | {} | {} |",
            syntax(spec).replace('|', "\\|"),
            spec.env_var(),
            match spec.default {
                Some(d) => format!("`{d}`"),
                None => "unset".to_owned(),
            },
            spec.help.replace('|', "\\|")
        );
    }
    out.push_str("\n## Commands\n\n| Flag | Description |\n| --- | --- |\n");
    for (name, help) in COMMAND_FLAGS {
        let _ = writeln!(out, "| `--{name}` | {help} |");
    }
    out
}

/// The `clap` command describing every flag; used to render `--help` and to
/// collect values from the normalised argument list.
pub(crate) fn command(bin_name: &'static str, version: &'static str) -> clap::Command {
    use clap::{Arg, ArgAction};
    let mut cmd = clap::Command::new(bin_name)
        .version(version)
        .about(
            "Headlamp-compatible OpenID Connect login and Kubernetes API proxy.\n\n\
             Flags use Go syntax: -name value, -name=value, --name=value; a bare boolean flag means true.\n\
             Precedence: flag > HEADLAMP_CONFIG_* environment variable > -config file > default.",
        )
        .disable_help_flag(true)
        .disable_version_flag(true)
        // Go's flag package lets a later occurrence win.
        .args_override_self(true)
        .max_term_width(100);
    for spec in FLAGS {
        let help = format!(
            "{}\n[env: {}] [default: {}]",
            spec.help,
            spec.env_var(),
            default_display(spec)
        );
        let mut arg = Arg::new(spec.name)
            .long(spec.name)
            .help(help)
            .help_heading(spec.group.title());
        arg = match spec.kind {
            FlagKind::Bool => arg
                .num_args(0..=1)
                .require_equals(true)
                .default_missing_value("true")
                .value_name("true|false")
                .action(ArgAction::Set),
            FlagKind::Repeated => arg.value_name(spec.value_name).action(ArgAction::Append),
            _ => arg.value_name(spec.value_name).action(ArgAction::Set),
        };
        cmd = cmd.arg(arg);
    }
    for (name, help) in COMMAND_FLAGS {
        cmd = cmd.arg(
            Arg::new(*name)
                .long(*name)
                .help(*help)
                .help_heading("Commands")
                .action(ArgAction::SetTrue),
        );
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_keep_every_word() {
        // figment's Env::split("_") would turn this into oidc.client.id.
        assert_eq!(
            env_var_for("oidc-client-id"),
            "HEADLAMP_CONFIG_OIDC_CLIENT_ID"
        );
        assert_eq!(
            env_var_for("in-cluster-context-name"),
            "HEADLAMP_CONFIG_IN_CLUSTER_CONTEXT_NAME"
        );
    }

    #[test]
    fn names_are_unique_and_kebab_case() {
        let mut seen = std::collections::BTreeSet::new();
        for spec in FLAGS {
            assert!(seen.insert(spec.name), "duplicate flag {}", spec.name);
            assert!(
                spec.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{} is not kebab-case",
                spec.name
            );
            assert!(!spec.help.is_empty());
        }
        for (name, _) in COMMAND_FLAGS {
            assert!(find_flag(name).is_none());
        }
    }

    #[test]
    fn typos_get_a_suggestion_and_nonsense_does_not() {
        assert_eq!(
            closest_name("oidc-cleint-id", false),
            Some("oidc-client-id")
        );
        assert_eq!(closest_name("prot", false), Some("port"));
        assert_eq!(closest_name("print-cofig", true), Some("print-config"));
        assert_eq!(closest_name("completely-unrelated-thing", true), None);
    }

    #[test]
    fn clap_command_is_consistent() {
        command("headlamp-server", "0.0.0").debug_assert();
    }
}
