//! Merged values -> typed [`Config`], collecting every problem.
//!
//! Each check reports against the flag a user must change, and continues, so
//! one run lists everything that is wrong.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::value::Value;
use headlamp_core::Secret;
use serde_json::json;

use crate::argv::parse_go_bool;
use crate::error::{ConfigError, Problem, Problems, Source};
use crate::flags::{self, FlagKind};
use crate::layers::{Environment, Merged, Resolved, split_list};
use crate::settings::{
    CaBundle, ClaimMapping, ClusterSources, Config, KubeconfigOrigin, KubeconfigSource,
    ListenSettings, LogFormat, LogLevel, LoggingSettings, OidcSettings, SessionKey,
    SessionSettings, TlsSettings,
};

/// How `--print-config` shows a secret that is set.
pub(crate) const REDACTED: &str = "[redacted]";

struct Reader<'a> {
    values: &'a BTreeMap<&'static str, Resolved>,
    problems: Vec<Problem>,
    warnings: Vec<String>,
    /// The normalised value of every flag, for `--print-config`.
    effective: BTreeMap<&'static str, serde_json::Value>,
}

impl Reader<'_> {
    fn resolved(&self, flag: &str) -> Option<&Resolved> {
        self.values.get(flag)
    }

    fn value(&self, flag: &str) -> Option<&Value> {
        self.resolved(flag).and_then(|r| r.value.as_ref())
    }

    fn source(&self, flag: &str) -> Option<Source> {
        self.resolved(flag)
            .map(|r| r.source.clone())
            .filter(|s| *s != Source::Default)
    }

    fn report(&mut self, flag: &'static str, message: impl Into<String>) {
        let source = self.source(flag);
        self.problems.push(Problem {
            flag,
            message: message.into(),
            source,
        });
    }

    fn record(&mut self, flag: &'static str, value: serde_json::Value) {
        self.effective.insert(flag, value);
    }

    /// A text value, trimmed; `None` when unset or empty.
    fn text(&mut self, flag: &'static str) -> Option<String> {
        let out = match self.value(flag) {
            None => None,
            Some(Value::String(_, s)) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
            Some(other) => {
                let got = describe(other);
                self.report(flag, format!("expected a string, got {got}"));
                None
            }
        };
        self.record(flag, json!(out));
        out
    }

    /// A text value that must not be empty when given; falls back to the
    /// default only when unset.
    fn required_text(&mut self, flag: &'static str, what: &str) -> String {
        let explicit = self.source(flag).is_some();
        match self.text(flag) {
            Some(text) => text,
            None => {
                if explicit {
                    self.report(flag, format!("must not be empty; expected {what}"));
                }
                let default = flags::find_flag(flag)
                    .and_then(|s| s.default)
                    .unwrap_or_default()
                    .to_owned();
                self.record(flag, json!(default));
                default
            }
        }
    }

    fn secret(&mut self, flag: &'static str) -> Option<Secret> {
        let out = match self.value(flag) {
            None => None,
            // Not trimmed: a secret is used byte for byte.
            Some(Value::String(_, s)) if s.is_empty() => None,
            Some(Value::String(_, s)) => Some(Secret::new(s.clone())),
            Some(other) => {
                // The kind is safe to name; the value is not echoed.
                let kind = kind_of(other);
                self.report(flag, format!("expected a string, got {kind}"));
                None
            }
        };
        self.record(flag, json!(out.as_ref().map(|_| REDACTED)));
        out
    }

    fn boolean(&mut self, flag: &'static str) -> bool {
        let default = flags::find_flag(flag).and_then(|s| s.default) == Some("true");
        let out = match self.value(flag) {
            None => default,
            Some(Value::Bool(_, b)) => *b,
            Some(Value::String(_, s)) => match parse_go_bool(s.trim()) {
                Some(b) => b,
                None => {
                    let s = s.clone();
                    self.report(
                        flag,
                        format!("expected true or false (or 1/0, t/f), got {s:?}"),
                    );
                    default
                }
            },
            Some(other) => {
                let got = describe(other);
                self.report(flag, format!("expected true or false, got {got}"));
                default
            }
        };
        self.record(flag, json!(out));
        out
    }

    fn number(&mut self, flag: &'static str) -> Option<u64> {
        let Some(FlagKind::Number { min, max }) = flags::find_flag(flag).map(|s| s.kind) else {
            return None;
        };
        let expected = format!("a whole number from {min} to {max}");
        let parsed: Result<Option<i128>, String> = match self.value(flag) {
            None => Ok(None),
            Some(Value::Num(_, n)) => n
                .to_i128()
                .map(Some)
                .ok_or_else(|| format!("expected {expected}, got {}", describe_num(n))),
            Some(Value::String(_, s)) => s
                .trim()
                .parse::<i128>()
                .map(Some)
                .map_err(|_| format!("expected {expected}, got {s:?}")),
            Some(other) => Err(format!("expected {expected}, got {}", describe(other))),
        };
        let out = match parsed {
            Ok(Some(n)) if n >= i128::from(min) && n <= i128::from(max) => u64::try_from(n).ok(),
            Ok(Some(n)) => {
                self.report(flag, format!("must be from {min} to {max}, got {n}"));
                None
            }
            Ok(None) => None,
            Err(message) => {
                self.report(flag, message);
                None
            }
        };
        self.record(flag, json!(out));
        out
    }

    fn choice(&mut self, flag: &'static str) -> Option<&'static str> {
        let Some(FlagKind::Choice(options)) = flags::find_flag(flag).map(|s| s.kind) else {
            return None;
        };
        let given = match self.value(flag) {
            None => return None,
            Some(Value::String(_, s)) => s.trim().to_ascii_lowercase(),
            Some(other) => describe(other),
        };
        match options.iter().find(|o| **o == given) {
            Some(option) => {
                self.record(flag, json!(option));
                Some(option)
            }
            None => {
                self.report(
                    flag,
                    format!("expected one of {}, got {given:?}", options.join(", ")),
                );
                None
            }
        }
    }

    /// A list: a string split on `separator` (and, for repeatable flags,
    /// each occurrence split on commas), or a TOML array of strings. Items
    /// are trimmed and empty items dropped. `None` when unset.
    fn list(&mut self, flag: &'static str) -> Option<Vec<String>> {
        let separator = match flags::find_flag(flag).map(|s| s.kind) {
            Some(FlagKind::List { separator }) => separator,
            _ => ',',
        };
        let out = match self.value(flag) {
            None => None,
            Some(Value::String(_, s)) => Some(split_list(s, separator)),
            Some(Value::Array(_, items)) => {
                let mut list = Vec::with_capacity(items.len());
                let mut bad = None;
                for item in items {
                    match item {
                        Value::String(_, s) => list.extend(split_list(s, separator)),
                        other => bad = Some(describe(other)),
                    }
                }
                if let Some(got) = bad {
                    self.report(
                        flag,
                        format!("expected a list of strings, got an item {got}"),
                    );
                }
                Some(list)
            }
            Some(other) => {
                let got = describe(other);
                self.report(
                    flag,
                    format!("expected a string or a list of strings, got {got}"),
                );
                None
            }
        };
        self.record(flag, json!(out));
        out
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::String(..) | Value::Char(..) => "a string",
        Value::Bool(..) => "a boolean",
        Value::Num(..) => "a number",
        Value::Empty(..) => "nothing",
        Value::Dict(..) => "a table",
        Value::Array(..) => "a list",
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(_, s) => format!("{s:?}"),
        Value::Char(_, c) => format!("{c:?}"),
        Value::Bool(_, b) => b.to_string(),
        Value::Num(_, n) => describe_num(n),
        other => kind_of(other).to_owned(),
    }
}

fn describe_num(n: &figment::value::Num) -> String {
    n.to_i128()
        .map(|i| i.to_string())
        .or_else(|| n.to_u128().map(|u| u.to_string()))
        .or_else(|| n.to_f64().map(|f| f.to_string()))
        .unwrap_or_else(|| "a number".to_owned())
}

/// Builds the typed configuration, or every problem found.
pub(crate) fn build(merged: Merged, env: &Environment) -> Result<Config, ConfigError> {
    let mut r = Reader {
        values: &merged.values,
        problems: merged.problems.clone(),
        warnings: merged.warnings.clone(),
        effective: BTreeMap::new(),
    };
    let home = env.get("HOME").map(PathBuf::from);

    // --- Server -----------------------------------------------------------
    let host = r.text("listen-addr").and_then(|addr| {
        let host = addr
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(&addr)
            .to_owned();
        if host.parse::<IpAddr>().is_ok() || is_host_name(&host) {
            Some(host)
        } else {
            r.report(
                "listen-addr",
                format!(
                    "expected an IP address or host name without a port (the port is -port), got {addr:?}"
                ),
            );
            None
        }
    });
    let port = r
        .number("port")
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(4466);
    let listen = ListenSettings { host, port };

    let base_url = match r.text("base-url") {
        None => String::new(),
        Some(raw) => match normalise_base_url(&raw) {
            Ok(url) => url,
            Err(why) => {
                r.report("base-url", format!("{why}, got {raw:?}"));
                String::new()
            }
        },
    };
    r.record("base-url", json!(base_url));

    let html_static_dir = r.text("html-static-dir").map(PathBuf::from);
    if let Some(dir) = &html_static_dir
        && !dir.is_dir()
    {
        r.report(
                "html-static-dir",
                format!(
                    "{} is not a directory; expected the directory holding the built frontend's index.html",
                    dir.display()
                ),
            );
    }

    let tls = tls_settings(&mut r);
    let metrics_enabled = r.boolean("metrics-enabled");

    // --- Clusters ---------------------------------------------------------
    let in_cluster = r.boolean("in-cluster");
    let kubeconfig = kubeconfig_source(&mut r, env, in_cluster, home.as_deref());
    let clusters = ClusterSources {
        kubeconfig,
        in_cluster,
        in_cluster_context_name: r
            .required_text("in-cluster-context-name", "a cluster name such as main"),
        skipped_contexts: r.list("skipped-kube-contexts").unwrap_or_default(),
        insecure_skip_tls_verify: r.boolean("insecure-ssl"),
    };
    if clusters.insecure_skip_tls_verify {
        r.warnings.push(
            "-insecure-ssl is set: Kubernetes API server certificates are not verified; \
             anyone on the network path can read and change cluster traffic"
                .to_owned(),
        );
    }

    // --- OIDC -------------------------------------------------------------
    let oidc = oidc_settings(&mut r, home.as_deref());

    // --- Session ----------------------------------------------------------
    let ttl = r.number("session-ttl").unwrap_or(86_400);
    let key = session_key(&mut r, home.as_deref());
    let session = SessionSettings {
        ttl: Duration::from_secs(ttl),
        key,
    };

    // --- Logging ----------------------------------------------------------
    let level = match r.choice("log-level") {
        Some("trace") => LogLevel::Trace,
        Some("debug") => LogLevel::Debug,
        Some("warn") => LogLevel::Warn,
        Some("error") => LogLevel::Error,
        _ => LogLevel::Info,
    };
    let format = match r.choice("log-format") {
        Some("json") => LogFormat::Json,
        _ => LogFormat::Text,
    };
    let logging = LoggingSettings { level, format };

    r.record(
        "config",
        json!(merged.config_file.as_ref().map(|p| p.display().to_string())),
    );

    if !r.problems.is_empty() {
        return Err(ConfigError::Invalid(Problems(r.problems)));
    }
    Ok(Config {
        listen,
        tls,
        base_url,
        html_static_dir,
        metrics_enabled,
        clusters,
        oidc,
        session,
        logging,
        config_file: merged.config_file,
        warnings: r.warnings,
        effective: r.effective,
    })
}

/// RFC 1123 host name (what a listen address may name instead of an IP).
fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// `-base-url`: empty, or a path starting with `/`; the trailing `/` is
/// dropped so routes join as `{base}/oidc-callback`.
pub(crate) fn normalise_base_url(raw: &str) -> Result<String, &'static str> {
    if !raw.starts_with('/') {
        return Err("must start with '/' (e.g. /headlamp) or be empty");
    }
    if raw.contains(['?', '#']) || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must be a plain path without query, fragment or spaces");
    }
    if raw.contains("//") {
        return Err("must not contain an empty path segment (//)");
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

/// `~/x` -> `$HOME/x`: a shell does not expand `~` after `=`
/// (`-kubeconfig=~/.kube/config`), so do it here.
fn expand_home(path: &str, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(path),
    }
}

fn tls_settings(r: &mut Reader<'_>) -> Option<TlsSettings> {
    let cert = r.text("tls-cert-path").map(PathBuf::from);
    let key = r.text("tls-key-path").map(PathBuf::from);
    match (cert, key) {
        (None, None) => None,
        (Some(_), None) => {
            r.report(
                "tls-key-path",
                "is required when -tls-cert-path is set; expected the PEM private key of that certificate",
            );
            None
        }
        (None, Some(_)) => {
            r.report(
                "tls-cert-path",
                "is required when -tls-key-path is set; expected a PEM certificate chain",
            );
            None
        }
        (Some(cert_path), Some(key_path)) => {
            let cert_ok = check_pem(
                r,
                "tls-cert-path",
                &cert_path,
                |tag| tag == "CERTIFICATE",
                "a CERTIFICATE block",
            );
            let key_ok = check_pem(
                r,
                "tls-key-path",
                &key_path,
                |tag| tag.ends_with("PRIVATE KEY"),
                "a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block",
            );
            (cert_ok && key_ok).then_some(TlsSettings {
                cert_path,
                key_path,
            })
        }
    }
}

/// Reads a PEM file and returns its contents and the DER of the blocks
/// `wanted` accepts, reporting a problem (never the contents) when there is
/// none.
fn read_pem(
    r: &mut Reader<'_>,
    flag: &'static str,
    path: &Path,
    wanted: impl Fn(&str) -> bool,
    what: &str,
) -> Option<(Vec<u8>, Vec<Vec<u8>>)> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) => {
            r.report(flag, format!("cannot read {}: {err}", path.display()));
            return None;
        }
    };
    let blocks = match pem::parse_many(&bytes) {
        Ok(blocks) => blocks,
        Err(err) => {
            r.report(
                flag,
                format!(
                    "{} is not valid PEM ({err}); expected {what}",
                    path.display()
                ),
            );
            return None;
        }
    };
    let ders: Vec<Vec<u8>> = blocks
        .into_iter()
        .filter(|b| wanted(b.tag()))
        .map(pem::Pem::into_contents)
        .collect();
    if ders.is_empty() {
        r.report(
            flag,
            format!(
                "{} holds no PEM data of the right kind; expected {what}",
                path.display()
            ),
        );
        return None;
    }
    Some((bytes, ders))
}

fn check_pem(
    r: &mut Reader<'_>,
    flag: &'static str,
    path: &Path,
    wanted: impl Fn(&str) -> bool,
    what: &str,
) -> bool {
    read_pem(r, flag, path, wanted, what).is_some()
}

fn kubeconfig_source(
    r: &mut Reader<'_>,
    env: &Environment,
    in_cluster: bool,
    home: Option<&Path>,
) -> KubeconfigSource {
    // Headlamp's setKubeConfigPath: the flag, else (unless in-cluster)
    // KUBECONFIG, else ~/.kube/config. KUBECONFIG is a ':'-separated list
    // merged in order (https://kubernetes.io/docs/concepts/configuration/organize-cluster-access-kubeconfig/).
    let configured = r.list("kubeconfig").filter(|paths| !paths.is_empty());
    let source = if let Some(paths) = configured {
        KubeconfigSource {
            paths: paths.iter().map(|p| expand_home(p, home)).collect(),
            origin: KubeconfigOrigin::Configured,
        }
    } else if in_cluster {
        KubeconfigSource {
            paths: Vec::new(),
            origin: KubeconfigOrigin::None,
        }
    } else if let Some(list) = env
        .get("KUBECONFIG")
        .map(|v| split_list(v, ':'))
        .filter(|l| !l.is_empty())
    {
        KubeconfigSource {
            paths: list.iter().map(|p| expand_home(p, home)).collect(),
            origin: KubeconfigOrigin::KubeconfigEnv,
        }
    } else if let Some(home) = home {
        KubeconfigSource {
            paths: vec![home.join(".kube").join("config")],
            origin: KubeconfigOrigin::HomeDefault,
        }
    } else {
        KubeconfigSource {
            paths: Vec::new(),
            origin: KubeconfigOrigin::None,
        }
    };
    r.record(
        "kubeconfig",
        json!(
            source
                .paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
        ),
    );
    source
}

/// Checks an issuer URL per OpenID Connect Discovery 1.0 section 3
/// ("a case-sensitive URL using the https scheme ... and no query or
/// fragment components"); http is allowed for loopback hosts so local test
/// providers work without certificates.
pub(crate) fn check_issuer(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw)
        .map_err(|err| format!("expected an absolute https URL, got {raw:?} ({err})"))?;
    let Some(host) = url.host() else {
        return Err(format!(
            "expected an absolute https URL with a host, got {raw:?}"
        ));
    };
    let loopback = match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(format!(
                "must use https (http is allowed only for localhost/127.0.0.1/::1), got {raw:?}"
            ));
        }
        other => {
            return Err(format!(
                "expected an https URL, got scheme {other:?} in {raw:?}"
            ));
        }
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "must not have a query or fragment (OIDC Discovery section 3), got {raw:?}"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password".to_owned());
    }
    Ok(())
}

/// The redirect URI: absolute http(s) and, per RFC 6749 section 3.1.2,
/// without a fragment.
fn check_callback(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|err| {
        format!("expected an absolute URL ending in /oidc-callback, got {raw:?} ({err})")
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("expected an absolute http(s) URL, got {raw:?}"));
    }
    if url.fragment().is_some() {
        return Err(format!(
            "must not have a fragment (RFC 6749 section 3.1.2), got {raw:?}"
        ));
    }
    Ok(())
}

/// `openid` first and exactly once, then the configured scopes in order
/// without duplicates. Items are split on commas and whitespace, so
/// `"profile, email"` and `"profile email"` both work.
pub fn normalise_scopes<S: AsRef<str>>(items: &[S]) -> Vec<String> {
    let mut scopes = vec!["openid".to_owned()];
    for item in items {
        for scope in item
            .as_ref()
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
        {
            if !scopes.iter().any(|s| s == scope) {
                scopes.push(scope.to_owned());
            }
        }
    }
    scopes
}

/// RFC 6749 section 3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

fn oidc_settings(r: &mut Reader<'_>, home: Option<&Path>) -> Option<OidcSettings> {
    let client_id = r.text("oidc-client-id");
    let secret_flag = r.secret("oidc-client-secret");
    let secret_file = r
        .text("oidc-client-secret-file")
        .map(|p| expand_home(&p, home));
    let issuer_url = r.text("oidc-idp-issuer-url");
    let scopes = normalise_scopes(&r.list("oidc-scopes").unwrap_or_default());
    r.record("oidc-scopes", json!(scopes));
    let callback_url = r.text("oidc-callback-url");
    let validator_client_id = r.text("oidc-validator-client-id");
    let validator_issuer_url = r.text("oidc-validator-idp-issuer-url");
    let skip_tls_verify = r.boolean("oidc-skip-tls-verify");
    let ca_path = r.text("oidc-ca-file").map(|p| expand_home(&p, home));
    let use_access_token = r.boolean("oidc-use-access-token");
    let use_pkce = r.boolean("oidc-use-pkce");
    let use_cookie = r.boolean("oidc-use-cookie");
    let impersonate = r.boolean("oidc-impersonate");
    let username_claim = r.required_text(
        "oidc-impersonate-claim",
        "a claim name such as preferred_username or email",
    );
    let groups_claim = r.required_text("oidc-groups-claim", "a claim name such as groups");
    let username_prefix = r.text("oidc-username-prefix").unwrap_or_default();
    let groups_prefix = r.text("oidc-groups-prefix").unwrap_or_default();
    let required_claims = required_claims(r);

    if let Some(issuer) = &issuer_url
        && let Err(why) = check_issuer(issuer)
    {
        r.report("oidc-idp-issuer-url", why);
    }
    if let Some(issuer) = &validator_issuer_url
        && let Err(why) = check_issuer(issuer)
    {
        r.report("oidc-validator-idp-issuer-url", why);
    }
    if let Some(callback) = &callback_url
        && let Err(why) = check_callback(callback)
    {
        r.report("oidc-callback-url", why);
    }
    for scope in &scopes {
        if !is_scope_token(scope) {
            r.report(
                "oidc-scopes",
                format!("{scope:?} is not a valid scope (RFC 6749 section 3.3 allows printable ASCII except space, '\"' and '\\\\')"),
            );
        }
    }

    let client_secret = match (secret_flag, &secret_file) {
        (Some(_), Some(_)) => {
            r.report(
                "oidc-client-secret-file",
                "cannot be combined with -oidc-client-secret; set only one of them",
            );
            None
        }
        (Some(secret), None) => {
            if r.source("oidc-client-secret") == Some(Source::Flag) {
                r.warnings.push(
                    "the client secret was given as -oidc-client-secret on the command line, \
                     where other users can see it in the process list; prefer \
                     -oidc-client-secret-file or HEADLAMP_CONFIG_OIDC_CLIENT_SECRET"
                        .to_owned(),
                );
            }
            Some(secret)
        }
        (None, Some(path)) => read_secret_file(r, path),
        (None, None) => None,
    };

    let ca = ca_path.and_then(|path| {
        read_pem(
            r,
            "oidc-ca-file",
            &path,
            |tag| tag == "CERTIFICATE",
            "PEM CERTIFICATE blocks of the CA(s) that signed the identity provider's certificate",
        )
        .map(|(pem, certificates_der)| CaBundle {
            path,
            pem,
            certificates_der,
        })
    });

    // Which flags make OIDC "configured": a client and an issuer, both.
    let any_client_setting = client_id.is_some()
        || issuer_url.is_some()
        || client_secret.is_some()
        || secret_file.is_some();
    if any_client_setting {
        if client_id.is_none() {
            r.report(
                "oidc-client-id",
                "is required when other -oidc-* client settings are given; expected the client id registered at the identity provider",
            );
        }
        if issuer_url.is_none() {
            r.report(
                "oidc-idp-issuer-url",
                "is required when other -oidc-* client settings are given; expected the identity provider's https issuer URL",
            );
        }
    }
    if impersonate && (client_id.is_none() || issuer_url.is_none()) {
        r.report(
            "oidc-impersonate",
            "needs -oidc-idp-issuer-url and -oidc-client-id: in impersonate mode tokens are validated here against that issuer and audience",
        );
    }

    if skip_tls_verify {
        r.warnings.push(
            "-oidc-skip-tls-verify is set: the identity provider's certificate is not verified, \
             so a network attacker can impersonate it and mint accepted tokens"
                .to_owned(),
        );
    }
    if use_cookie {
        r.warnings.push(
            "-oidc-use-cookie has no effect here: the -oidc-* flags already apply to every \
             cluster without OIDC settings of its own"
                .to_owned(),
        );
    }
    if !use_pkce && client_id.is_some() {
        r.warnings.push(
            "-oidc-use-pkce=false: authorization codes are not bound to this login (RFC 7636); \
             turn it off only for a provider that rejects PKCE"
                .to_owned(),
        );
    }

    let (client_id, issuer_url) = (client_id?, issuer_url?);
    Some(OidcSettings {
        client_id,
        client_secret,
        issuer_url,
        scopes,
        callback_url,
        validator_client_id,
        validator_issuer_url,
        skip_tls_verify,
        ca,
        use_access_token,
        use_pkce,
        impersonate,
        claims: ClaimMapping {
            username_claim,
            groups_claim,
            username_prefix,
            groups_prefix,
            required_claims,
        },
    })
}

fn required_claims(r: &mut Reader<'_>) -> BTreeMap<String, String> {
    let mut claims = BTreeMap::new();
    for item in r.list("oidc-required-claim").unwrap_or_default() {
        match item.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() && !value.trim().is_empty() => {
                claims.insert(key.trim().to_owned(), value.trim().to_owned());
            }
            _ => r.report(
                "oidc-required-claim",
                format!("expected key=value (e.g. hd=example.com), got {item:?}"),
            ),
        }
    }
    r.record(
        "oidc-required-claim",
        json!(
            claims
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
        ),
    );
    claims
}

fn read_secret_file(r: &mut Reader<'_>, path: &Path) -> Option<Secret> {
    match std::fs::read(path) {
        Err(err) => {
            r.report(
                "oidc-client-secret-file",
                format!("cannot read {}: {err}", path.display()),
            );
            None
        }
        Ok(bytes) => match String::from_utf8(bytes) {
            Err(_) => {
                r.report(
                    "oidc-client-secret-file",
                    format!(
                        "{} is not UTF-8 text; expected the client secret as text",
                        path.display()
                    ),
                );
                None
            }
            Ok(text) => {
                // `echo secret > file` and Kubernetes secrets created from
                // literals often end in a newline that is not part of it.
                let secret = text.trim_end_matches(['\n', '\r']);
                if secret.is_empty() {
                    r.report(
                        "oidc-client-secret-file",
                        format!("{} is empty; expected the client secret", path.display()),
                    );
                    None
                } else {
                    Some(Secret::new(secret))
                }
            }
        },
    }
}

fn session_key(r: &mut Reader<'_>, home: Option<&Path>) -> Option<SessionKey> {
    let path = r.text("session-key-file").map(|p| expand_home(&p, home))?;
    match std::fs::read(&path) {
        Err(err) => {
            r.report(
                "session-key-file",
                format!("cannot read {}: {err}", path.display()),
            );
            None
        }
        Ok(material) => {
            // Surrounding whitespace (a text key's newline) adds no entropy.
            let meaningful = material.trim_ascii().len();
            if meaningful < SessionKey::MIN_LEN {
                r.report(
                    "session-key-file",
                    format!(
                        "{} holds {meaningful} bytes; expected at least {} bytes of random data (e.g. head -c 64 /dev/urandom > {})",
                        path.display(),
                        SessionKey::MIN_LEN,
                        path.display()
                    ),
                );
                None
            } else {
                Some(SessionKey::new(path, material))
            }
        }
    }
}
