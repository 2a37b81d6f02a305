//! Unit tests across the crate: every flag through every source, precedence,
//! normalisation, and each validation message.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::flags::{FLAGS, FlagKind};
use crate::{Config, ConfigError, Environment, Invocation, KubeconfigOrigin, LogFormat, LogLevel};

fn environment(pairs: &[(&str, &str)]) -> Environment {
    Environment::from_pairs(pairs.iter().copied())
}

fn load(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_args(args.iter().copied(), &environment(env))
}

fn ok(args: &[&str], env: &[(&str, &str)]) -> Config {
    match load(args, env) {
        Ok(config) => config,
        Err(err) => panic!("expected a valid configuration, got: {err}"),
    }
}

/// The problem lines of an invalid configuration.
fn problems(args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    match load(args, env) {
        Ok(_) => panic!("expected an invalid configuration for {args:?} {env:?}"),
        Err(err) => {
            assert!(!err.problems().is_empty(), "not a validation error: {err}");
            err.problems().iter().map(ToString::to_string).collect()
        }
    }
}

fn only_problem(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut found = problems(args, env);
    assert_eq!(found.len(), 1, "{found:#?}");
    found.remove(0)
}

fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.display().to_string()
}

/// A PEM file with one block of the given tag; config only checks the PEM
/// framing and tag, X.509 parsing is rustls' job.
fn pem_file(dir: &Path, name: &str, tag: &str) -> String {
    let der: Vec<u8> = (0u8..64).collect();
    write(dir, name, pem::encode(&pem::Pem::new(tag, der)))
}

/// A valid, non-default value for every flag, written as on a command line.
/// Files the flags name are created in `dir`.
fn samples(dir: &Path) -> BTreeMap<&'static str, String> {
    let mut s = BTreeMap::new();
    let static_dir = dir.join("static");
    std::fs::create_dir_all(&static_dir).unwrap();
    for spec in FLAGS {
        let value = match spec.name {
            "listen-addr" => "127.0.0.1".to_owned(),
            "port" => "8080".to_owned(),
            "base-url" => "/headlamp/".to_owned(),
            "html-static-dir" => static_dir.display().to_string(),
            "tls-cert-path" => pem_file(dir, "tls.crt", "CERTIFICATE"),
            "tls-key-path" => pem_file(dir, "tls.key", "PRIVATE KEY"),
            "metrics-enabled"
            | "in-cluster"
            | "insecure-ssl"
            | "oidc-skip-tls-verify"
            | "oidc-use-access-token"
            | "oidc-use-cookie"
            | "oidc-impersonate" => "true".to_owned(),
            "oidc-use-pkce" => "false".to_owned(),
            "kubeconfig" => "/k/one:/k/two".to_owned(),
            "skipped-kube-contexts" => "kind-a, kind-b".to_owned(),
            "in-cluster-context-name" => "prod".to_owned(),
            "oidc-client-id" => "headlamp".to_owned(),
            // Exclusive with the file variant: the env/flag run uses the
            // file, see `every_flag_has_a_working_env_twin_flag_and_file_key`.
            "oidc-client-secret" => "s3cr3t-value".to_owned(),
            "oidc-client-secret-file" => write(dir, "client-secret", "from-file\n"),
            "oidc-idp-issuer-url" => "https://idp.example.com/realms/k8s".to_owned(),
            "oidc-scopes" => "email, groups".to_owned(),
            "oidc-callback-url" => "https://headlamp.example.com/oidc-callback".to_owned(),
            "oidc-validator-client-id" => "kubernetes".to_owned(),
            "oidc-validator-idp-issuer-url" => "https://issuer.example.com".to_owned(),
            "oidc-ca-file" => pem_file(dir, "ca.pem", "CERTIFICATE"),
            "oidc-impersonate-claim" => "email".to_owned(),
            "oidc-groups-claim" => "realm_access.roles".to_owned(),
            "oidc-username-prefix" => "oidc:".to_owned(),
            "oidc-groups-prefix" => "oidc-group:".to_owned(),
            "oidc-required-claim" => "hd=example.com".to_owned(),
            "session-ttl" => "3600".to_owned(),
            "session-key-file" => write(dir, "session.key", [7u8; 48]),
            "log-level" => "debug".to_owned(),
            "log-format" => "json".to_owned(),
            "config" => write(dir, "empty.toml", ""),
            other => panic!("no sample for new flag -{other}: add one here"),
        };
        s.insert(spec.name, value);
    }
    s
}

/// Runs with every sample given through one source and returns the
/// effective configuration.
fn effective_via(
    source: &str,
    samples: &BTreeMap<&'static str, String>,
    dir: &Path,
) -> serde_json::Value {
    // The secret and the secret file are exclusive: use the file here and
    // test the plain secret separately.
    let used = samples.iter().filter(|(k, _)| **k != "oidc-client-secret");
    let config = match source {
        "flag" => {
            let args: Vec<String> = used.map(|(k, v)| format!("-{k}={v}")).collect();
            Config::from_args(args, &Environment::default())
        }
        "env" => {
            let env = Environment::from_pairs(
                used.map(|(k, v)| (crate::flags::env_var_for(k), v.clone())),
            );
            Config::from_args(Vec::<String>::new(), &env)
        }
        "file" => {
            let mut toml = String::new();
            for (k, v) in used.filter(|(k, _)| **k != "config") {
                toml.push_str(&format!("{k} = {}\n", toml::Value::String(v.clone())));
            }
            let path = write(dir, "all.toml", toml);
            Config::from_args([format!("-config={path}")], &Environment::default())
        }
        _ => unreachable!(),
    };
    match config {
        Ok(config) => config.effective_json(),
        Err(err) => panic!("{source}: {err}"),
    }
}

#[test]
fn every_flag_has_a_working_env_twin_flag_and_file_key() {
    let dir = tempfile::tempdir().unwrap();
    let samples = samples(dir.path());
    let defaults = ok(&[], &[]).effective_json();

    let via_flag = effective_via("flag", &samples, dir.path());
    let via_env = effective_via("env", &samples, dir.path());
    let mut via_file = effective_via("file", &samples, dir.path());

    for spec in FLAGS {
        let name = spec.name;
        if name == "oidc-client-secret" {
            continue;
        }
        assert_ne!(
            via_flag[name], defaults[name],
            "-{name} given as a flag had no effect"
        );
        assert_eq!(
            via_env[name],
            via_flag[name],
            "{} differs from -{name}",
            spec.env_var()
        );
        if name != "config" {
            assert_eq!(
                via_file[name], via_flag[name],
                "file key `{name}` differs from -{name}"
            );
        }
    }
    // Apart from naming a different config file, the three runs agree.
    assert_ne!(via_file["config"], via_flag["config"]);
    via_file["config"] = via_flag["config"].clone();
    assert_eq!(via_file, via_flag);
    assert_eq!(via_env, via_flag);

    // Spot-check normalised values.
    assert_eq!(via_env["base-url"], json!("/headlamp"));
    assert_eq!(via_env["oidc-scopes"], json!(["openid", "email", "groups"]));
    assert_eq!(via_env["kubeconfig"], json!(["/k/one", "/k/two"]));
    assert_eq!(
        via_env["skipped-kube-contexts"],
        json!(["kind-a", "kind-b"])
    );
    assert_eq!(via_env["oidc-required-claim"], json!(["hd=example.com"]));
    assert_eq!(via_env["oidc-client-secret"], json!(null));
    assert_eq!(via_env["port"], json!(8080));
    assert_eq!(via_env["oidc-use-pkce"], json!(false));
}

#[test]
fn client_secret_env_twin_and_redaction() {
    let env = [
        ("HEADLAMP_CONFIG_OIDC_CLIENT_ID", "headlamp"),
        ("HEADLAMP_CONFIG_OIDC_CLIENT_SECRET", "s3cr3t-value"),
        (
            "HEADLAMP_CONFIG_OIDC_IDP_ISSUER_URL",
            "https://idp.example.com",
        ),
    ];
    let config = ok(&[], &env);
    let oidc = config.oidc.as_ref().unwrap();
    assert_eq!(
        oidc.client_secret.as_ref().unwrap().expose(),
        "s3cr3t-value"
    );
    let printed = config.effective_json().to_string();
    assert!(
        printed.contains(r#""oidc-client-secret":"[redacted]""#),
        "{printed}"
    );
    assert!(!printed.contains("s3cr3t-value"));
    assert!(!format!("{config:?}").contains("s3cr3t-value"));
    // Given on the command line it works but warns about `ps`.
    let config = ok(
        &["-oidc-client-secret", "s3cr3t-value"],
        &env[..1]
            .iter()
            .chain(&env[2..])
            .copied()
            .collect::<Vec<_>>(),
    );
    assert!(config.warnings.iter().any(|w| w.contains("process list")));
    assert!(!config.warnings.iter().any(|w| w.contains("s3cr3t-value")));
}

#[test]
fn secret_file_is_read_without_its_newline_and_session_key_is_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let secret = write(dir.path(), "secret", "file-secret\r\n");
    let key = write(dir.path(), "key", "k".repeat(40));
    let config = ok(
        &[
            "-oidc-client-id=c",
            "-oidc-idp-issuer-url=https://idp.example.com",
            "-oidc-client-secret-file",
            &secret,
            "-session-key-file",
            &key,
        ],
        &[],
    );
    let oidc = config.oidc.as_ref().unwrap();
    assert_eq!(oidc.client_secret.as_ref().unwrap().expose(), "file-secret");
    let session_key = config.session.key.as_ref().unwrap();
    assert_eq!(session_key.expose().len(), 40);
    assert!(!format!("{config:?}").contains("kkkk"));
    assert!(!format!("{config:?}").contains("file-secret"));
}

#[test]
fn defaults_match_headlamp() {
    let config = ok(&[], &[]);
    assert_eq!(config.listen.port, 4466);
    assert_eq!(config.listen.host, None);
    assert_eq!(config.listen.to_string(), "*:4466");
    assert_eq!(config.base_url, "");
    assert!(config.oidc.is_none());
    assert!(config.tls.is_none());
    assert!(!config.metrics_enabled);
    assert_eq!(config.session.ttl.as_secs(), 86_400);
    assert!(config.session.key.is_none());
    assert_eq!(config.logging.level, LogLevel::Info);
    assert_eq!(config.logging.format, LogFormat::Text);
    assert_eq!(config.clusters.in_cluster_context_name, "main");
    assert!(!config.clusters.in_cluster);
    assert!(config.clusters.skipped_contexts.is_empty());
    assert_eq!(config.clusters.kubeconfig.origin, KubeconfigOrigin::None);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);

    let printed = config.effective_json();
    assert_eq!(
        printed["oidc-scopes"],
        json!(["openid", "profile", "email"])
    );
    assert_eq!(printed["oidc-use-pkce"], json!(true));
    assert_eq!(
        printed["oidc-impersonate-claim"],
        json!("preferred_username")
    );
    assert_eq!(printed["oidc-groups-claim"], json!("groups"));
    // One key per flag, nothing else.
    let keys: Vec<&str> = printed
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut names: Vec<&str> = FLAGS.iter().map(|f| f.name).collect();
    names.sort_unstable();
    assert_eq!(keys, names);
}

#[test]
fn oidc_defaults_when_configured() {
    let config = ok(
        &[
            "-oidc-client-id=c",
            "-oidc-idp-issuer-url=https://idp.example.com",
        ],
        &[],
    );
    let oidc = config.oidc.unwrap();
    assert!(oidc.use_pkce, "PKCE is on by default (compat part B)");
    assert!(!oidc.impersonate);
    assert!(!oidc.use_access_token);
    assert_eq!(
        oidc.issuer_url, "https://idp.example.com",
        "kept exactly, no trailing slash added"
    );
    assert_eq!(oidc.expected_issuer(), "https://idp.example.com");
    assert_eq!(oidc.expected_audience(), "c");
    assert_eq!(oidc.scope_param(), "openid profile email");
    assert_eq!(oidc.extra_scopes(), ["profile", "email"]);
    assert_eq!(oidc.claims.username_claim, "preferred_username");
    assert_eq!(oidc.claims.groups_claim, "groups");
    assert_eq!(oidc.claims.username_prefix, "");
    assert!(oidc.claims.required_claims.is_empty());
    assert!(oidc.client_secret.is_none());
    assert!(oidc.callback_url.is_none());
}

#[test]
fn validator_overrides_what_tokens_must_carry() {
    let oidc = ok(
        &[
            "-oidc-client-id=headlamp",
            "-oidc-idp-issuer-url=https://idp.example.com",
            "-oidc-validator-client-id=kubernetes",
            "-oidc-validator-idp-issuer-url=https://tokens.example.com",
        ],
        &[],
    )
    .oidc
    .unwrap();
    assert_eq!(oidc.expected_audience(), "kubernetes");
    assert_eq!(oidc.expected_issuer(), "https://tokens.example.com");
}

// --- Go flag syntax ---------------------------------------------------------

#[test]
fn every_go_spelling_sets_a_value_flag() {
    for args in [
        &["-port", "81"][..],
        &["-port=81"],
        &["--port", "81"],
        &["--port=81"],
    ] {
        assert_eq!(ok(args, &[]).listen.port, 81, "{args:?}");
    }
}

#[test]
fn bare_booleans_and_explicit_false() {
    let env = [("HEADLAMP_CONFIG_IN_CLUSTER", "true")];
    assert!(ok(&["-in-cluster"], &[]).clusters.in_cluster);
    assert!(ok(&["--in-cluster"], &[]).clusters.in_cluster);
    assert!(ok(&["-in-cluster=1"], &[]).clusters.in_cluster);
    assert!(ok(&[], &env).clusters.in_cluster);
    // An explicit false flag beats the environment's true.
    assert!(!ok(&["-in-cluster=false"], &env).clusters.in_cluster);
    assert!(!ok(&["--in-cluster=F"], &env).clusters.in_cluster);
    // PKCE defaults to true and can be turned off.
    let base = [
        "-oidc-client-id=c",
        "-oidc-idp-issuer-url=https://i.example",
    ];
    let off = ok(&[base[0], base[1], "-oidc-use-pkce=false"], &[]);
    assert!(!off.oidc.unwrap().use_pkce);
    assert!(
        ok(&[base[0], base[1], "-oidc-use-pkce"], &[])
            .oidc
            .unwrap()
            .use_pkce
    );
}

#[test]
fn a_repeated_flag_keeps_the_last_and_a_repeatable_one_keeps_all() {
    assert_eq!(ok(&["-port=1", "--port", "2"], &[]).listen.port, 2);
    let oidc = ok(
        &[
            "-oidc-client-id=c",
            "-oidc-idp-issuer-url=https://i.example",
            "-oidc-required-claim",
            "hd=example.com",
            "--oidc-required-claim=tenant=a=b",
            "-oidc-required-claim=x=1,y=2",
        ],
        &[],
    )
    .oidc
    .unwrap();
    let claims: Vec<(&str, &str)> = oidc
        .claims
        .required_claims
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        claims,
        [
            ("hd", "example.com"),
            ("tenant", "a=b"),
            ("x", "1"),
            ("y", "2")
        ]
    );
}

#[test]
fn repeatable_flag_env_and_file_syntax() {
    let dir = tempfile::tempdir().unwrap();
    let base = [
        ("HEADLAMP_CONFIG_OIDC_CLIENT_ID", "c"),
        ("HEADLAMP_CONFIG_OIDC_IDP_ISSUER_URL", "https://i.example"),
    ];
    let mut env = base.to_vec();
    env.push(("HEADLAMP_CONFIG_OIDC_REQUIRED_CLAIM", "a=1, b=2"));
    let claims = ok(&[], &env).oidc.unwrap().claims.required_claims;
    assert_eq!(claims.len(), 2);
    assert_eq!(claims["b"], "2");

    let file = write(
        dir.path(),
        "c.toml",
        "oidc-required-claim = [\"a=1\", \"c=3\"]\n",
    );
    let claims = ok(&["-config", &file], &base)
        .oidc
        .unwrap()
        .claims
        .required_claims;
    assert_eq!(claims.keys().collect::<Vec<_>>(), ["a", "c"]);
    // Flags replace, not extend, the lower layers.
    let claims = ok(&["-config", &file, "-oidc-required-claim=z=9"], &env)
        .oidc
        .unwrap()
        .claims
        .required_claims;
    assert_eq!(claims.keys().collect::<Vec<_>>(), ["z"]);
}

#[test]
fn help_version_and_print_config_are_commands() {
    let env = Environment::default();
    for args in [
        &["-h"][..],
        &["-help"],
        &["--help"],
        &["-port=nope", "--help"],
    ] {
        let Ok(Invocation::Help(text)) = crate::parse(args.iter().copied(), &env) else {
            panic!("{args:?} should print help");
        };
        assert!(text.contains("--oidc-client-id"));
    }
    assert!(matches!(
        crate::parse(["-version"], &env),
        Ok(Invocation::Version)
    ));
    assert!(matches!(
        crate::parse(["--print-config", "-port=1"], &env),
        Ok(Invocation::PrintConfig(c)) if c.listen.port == 1
    ));
    // print-config validates like a normal run.
    assert!(crate::parse(["--print-config", "-port=x"], &env).is_err());
}

#[test]
fn help_lists_every_flag_with_env_var_and_default() {
    let help = crate::help_text();
    for spec in FLAGS {
        assert!(
            help.contains(&format!("--{}", spec.name)),
            "-{} missing",
            spec.name
        );
        assert!(help.contains(&spec.env_var()), "{} missing", spec.env_var());
        if let Some(default) = spec.default {
            assert!(
                help.contains(&format!("[default: {default}]")),
                "default of -{} missing",
                spec.name
            );
        }
    }
    for command in ["--help", "--version", "--print-config"] {
        assert!(help.contains(command));
    }
}

#[test]
fn unknown_flag_is_an_error_with_a_suggestion() {
    let err = load(&["-oidc-clinet-id=x"], &[]).unwrap_err();
    assert!(matches!(err, ConfigError::UnknownFlag { .. }));
    assert_eq!(
        err.to_string(),
        "flag provided but not defined: -oidc-clinet-id (did you mean -oidc-client-id?)"
    );
}

// --- Precedence ---------------------------------------------------------------

#[test]
fn flag_beats_env_beats_file_beats_default() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "c.toml",
        "port = 1000\nlog-level = \"warn\"\nin-cluster = true\nskipped-kube-contexts = [\"from-file\"]\n",
    );
    let env = [
        ("HEADLAMP_CONFIG_PORT", "2000"),
        ("HEADLAMP_CONFIG_LOG_LEVEL", "error"),
        ("HEADLAMP_CONFIG_SKIPPED_KUBE_CONTEXTS", "from-env"),
    ];
    let cfg = ["-config", file.as_str()];

    let all = ok(&[cfg[0], cfg[1], "-port=3000", "-log-level=trace"], &env);
    assert_eq!(all.listen.port, 3000);
    assert_eq!(all.logging.level, LogLevel::Trace);
    assert_eq!(all.clusters.skipped_contexts, ["from-env"]);
    assert!(all.clusters.in_cluster, "only the file sets in-cluster");

    let env_and_file = ok(&cfg, &env);
    assert_eq!(env_and_file.listen.port, 2000);
    assert_eq!(env_and_file.logging.level, LogLevel::Error);

    let file_only = ok(&cfg, &[]);
    assert_eq!(file_only.listen.port, 1000);
    assert_eq!(file_only.logging.level, LogLevel::Warn);
    assert_eq!(file_only.clusters.skipped_contexts, ["from-file"]);
    assert_eq!(file_only.config_file, Some(PathBuf::from(&file)));

    let none = ok(&[], &[]);
    assert_eq!(none.listen.port, 4466);
    assert_eq!(none.logging.level, LogLevel::Info);
}

#[test]
fn config_file_path_may_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "c.toml", "port = 1234\n");
    let config = ok(&[], &[("HEADLAMP_CONFIG_CONFIG", &file)]);
    assert_eq!(config.listen.port, 1234);
    assert_eq!(config.effective_json()["config"], json!(file));
}

#[test]
fn empty_env_var_counts_as_unset() {
    let config = ok(
        &[],
        &[
            ("HEADLAMP_CONFIG_PORT", ""),
            ("HEADLAMP_CONFIG_OIDC_SCOPES", ""),
        ],
    );
    assert_eq!(config.listen.port, 4466);
    assert_eq!(
        config.effective_json()["oidc-scopes"],
        json!(["openid", "profile", "email"])
    );
}

#[test]
fn unknown_env_vars_warn_with_a_suggestion() {
    let config = ok(
        &[],
        &[
            ("HEADLAMP_CONFIG_OIDC_CLIENTID", "x"),
            ("HEADLAMP_CONFIG_PLUGINS_DIR", "/plugins"),
            ("UNRELATED", "1"),
        ],
    );
    assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);
    assert!(config.warnings.iter().any(|w| w.contains(
        "HEADLAMP_CONFIG_OIDC_CLIENTID is not a headlamp-server setting and is ignored (did you mean HEADLAMP_CONFIG_OIDC_CLIENT_ID?)"
    )));
}

// --- Clusters -------------------------------------------------------------------

#[test]
fn kubeconfig_resolution_follows_headlamp() {
    let home = [("HOME", "/home/u")];
    let c = ok(&[], &home);
    assert_eq!(c.clusters.kubeconfig.origin, KubeconfigOrigin::HomeDefault);
    assert_eq!(
        c.clusters.kubeconfig.paths,
        [PathBuf::from("/home/u/.kube/config")]
    );

    let c = ok(&[], &[("HOME", "/home/u"), ("KUBECONFIG", "/a:/b::")]);
    assert_eq!(
        c.clusters.kubeconfig.origin,
        KubeconfigOrigin::KubeconfigEnv
    );
    assert_eq!(
        c.clusters.kubeconfig.paths,
        [PathBuf::from("/a"), PathBuf::from("/b")]
    );

    let c = ok(
        &["-kubeconfig=~/x.yaml"],
        &[("HOME", "/home/u"), ("KUBECONFIG", "/a")],
    );
    assert_eq!(c.clusters.kubeconfig.origin, KubeconfigOrigin::Configured);
    assert_eq!(
        c.clusters.kubeconfig.paths,
        [PathBuf::from("/home/u/x.yaml")]
    );

    // In-cluster without -kubeconfig reads no kubeconfig, even with KUBECONFIG.
    let c = ok(
        &["-in-cluster"],
        &[("HOME", "/home/u"), ("KUBECONFIG", "/a")],
    );
    assert_eq!(c.clusters.kubeconfig.origin, KubeconfigOrigin::None);
    assert!(c.clusters.kubeconfig.paths.is_empty());
}

#[test]
fn insecure_switches_warn() {
    let c = ok(&["-insecure-ssl"], &[]);
    assert!(c.clusters.insecure_skip_tls_verify);
    assert!(c.warnings.iter().any(|w| w.contains("-insecure-ssl")));
    let c = ok(
        &[
            "-oidc-client-id=c",
            "-oidc-idp-issuer-url=https://i.example",
            "-oidc-skip-tls-verify",
            "-oidc-use-cookie",
        ],
        &[],
    );
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("-oidc-skip-tls-verify"))
    );
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("-oidc-use-cookie has no effect"))
    );
}

// --- Scopes -----------------------------------------------------------------------

#[test]
fn scopes_always_start_with_openid_exactly_once() {
    let scopes = |value: &str| {
        ok(
            &[
                "-oidc-client-id=c",
                "-oidc-idp-issuer-url=https://i.example",
                &format!("-oidc-scopes={value}"),
            ],
            &[],
        )
        .oidc
        .unwrap()
        .scopes
    };
    assert_eq!(scopes("profile,email"), ["openid", "profile", "email"]);
    assert_eq!(scopes("openid"), ["openid"]);
    assert_eq!(scopes(""), ["openid"]);
    assert_eq!(scopes(" , ,"), ["openid"]);
    assert_eq!(
        scopes(" email , ,openid,profile,email,openid "),
        ["openid", "email", "profile"]
    );
    assert_eq!(
        scopes("profile email\tgroups"),
        ["openid", "profile", "email", "groups"]
    );
    assert_eq!(
        scopes("offline_access,groups"),
        ["openid", "offline_access", "groups"]
    );
    assert_eq!(crate::normalise_scopes(&["openid,openid"]), ["openid"]);
}

#[test]
fn scopes_from_a_toml_array() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "c.toml",
        "oidc-client-id = \"c\"\noidc-idp-issuer-url = \"https://i.example\"\noidc-scopes = [\"groups\", \" openid \", \"\"]\n",
    );
    assert_eq!(
        ok(&["-config", &file], &[]).oidc.unwrap().scopes,
        ["openid", "groups"]
    );
}

// --- Validation messages -----------------------------------------------------------------

const CLIENT: &str = "-oidc-client-id=c";

#[test]
fn issuer_must_be_https_except_on_loopback() {
    for good in [
        "https://idp.example.com",
        "https://idp.example.com/realms/x/",
        "http://127.0.0.1:5556/dex",
        "http://localhost:8080",
        "http://[::1]:9000",
    ] {
        let issuer = format!("-oidc-idp-issuer-url={good}");
        assert_eq!(ok(&[CLIENT, &issuer], &[]).oidc.unwrap().issuer_url, good);
    }
    let p = only_problem(
        &[CLIENT, "-oidc-idp-issuer-url=http://idp.example.com"],
        &[],
    );
    assert_eq!(
        p,
        "-oidc-idp-issuer-url (HEADLAMP_CONFIG_OIDC_IDP_ISSUER_URL): must use https (http is allowed only for localhost/127.0.0.1/::1), got \"http://idp.example.com\" [set by command line]"
    );
    let p = only_problem(
        &[CLIENT],
        &[("HEADLAMP_CONFIG_OIDC_IDP_ISSUER_URL", "idp.example.com")],
    );
    assert!(
        p.starts_with("-oidc-idp-issuer-url (HEADLAMP_CONFIG_OIDC_IDP_ISSUER_URL): expected an absolute https URL, got \"idp.example.com\""),
        "{p}"
    );
    assert!(
        p.ends_with("[set by environment variable HEADLAMP_CONFIG_OIDC_IDP_ISSUER_URL]"),
        "{p}"
    );
    let p = only_problem(
        &[CLIENT, "-oidc-idp-issuer-url=https://i.example/?tenant=x"],
        &[],
    );
    assert!(p.contains("must not have a query or fragment"), "{p}");
    let p = only_problem(&[CLIENT, "-oidc-idp-issuer-url=ftp://i.example"], &[]);
    assert!(
        p.contains("expected an https URL, got scheme \"ftp\""),
        "{p}"
    );
    let p = only_problem(&[CLIENT, "-oidc-idp-issuer-url=https://u:p@i.example"], &[]);
    assert!(
        p.contains("must not contain a user name or password"),
        "{p}"
    );
    let p = only_problem(
        &[
            CLIENT,
            "-oidc-idp-issuer-url=https://i.example",
            "-oidc-validator-idp-issuer-url=http://x.example",
        ],
        &[],
    );
    assert!(p.starts_with("-oidc-validator-idp-issuer-url (HEADLAMP_CONFIG_OIDC_VALIDATOR_IDP_ISSUER_URL): must use https"), "{p}");
}

#[test]
fn client_id_and_issuer_go_together() {
    let p = only_problem(&[CLIENT], &[]);
    assert!(p.starts_with("-oidc-idp-issuer-url (HEADLAMP_CONFIG_OIDC_IDP_ISSUER_URL): is required when other -oidc-* client settings are given"), "{p}");
    let p = only_problem(&["-oidc-idp-issuer-url=https://i.example"], &[]);
    assert!(
        p.starts_with("-oidc-client-id (HEADLAMP_CONFIG_OIDC_CLIENT_ID): is required"),
        "{p}"
    );
    let found = problems(&[], &[("HEADLAMP_CONFIG_OIDC_CLIENT_SECRET", "top-secret")]);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.iter().all(|p| !p.contains("top-secret")));
}

#[test]
fn impersonation_needs_issuer_and_client_id() {
    let p = only_problem(&["-oidc-impersonate"], &[]);
    assert_eq!(
        p,
        "-oidc-impersonate (HEADLAMP_CONFIG_OIDC_IMPERSONATE): needs -oidc-idp-issuer-url and -oidc-client-id: in impersonate mode tokens are validated here against that issuer and audience [set by command line]"
    );
    let c = ok(
        &[
            "-oidc-impersonate",
            CLIENT,
            "-oidc-idp-issuer-url=https://i.example",
        ],
        &[],
    );
    assert!(c.oidc.unwrap().impersonate);
}

#[test]
fn base_url_must_start_with_a_slash_and_is_normalised() {
    assert_eq!(ok(&["-base-url=/headlamp/"], &[]).base_url, "/headlamp");
    assert_eq!(ok(&["-base-url=/a/b"], &[]).base_url, "/a/b");
    assert_eq!(ok(&["-base-url=/"], &[]).base_url, "");
    assert_eq!(ok(&["-base-url="], &[]).base_url, "");
    let p = only_problem(&["-base-url=headlamp"], &[]);
    assert_eq!(
        p,
        "-base-url (HEADLAMP_CONFIG_BASE_URL): must start with '/' (e.g. /headlamp) or be empty, got \"headlamp\" [set by command line]"
    );
    assert!(only_problem(&["-base-url=/a?b"], &[]).contains("without query"));
    assert!(only_problem(&["-base-url=/a//b"], &[]).contains("empty path segment"));
}

#[test]
fn session_ttl_range() {
    assert_eq!(ok(&["-session-ttl=1"], &[]).session.ttl.as_secs(), 1);
    assert_eq!(
        ok(&["-session-ttl=31536000"], &[]).session.ttl.as_secs(),
        31_536_000
    );
    assert_eq!(
        only_problem(&["-session-ttl=0"], &[]),
        "-session-ttl (HEADLAMP_CONFIG_SESSION_TTL): must be from 1 to 31536000, got 0 [set by command line]"
    );
    assert!(
        only_problem(&["-session-ttl=31536001"], &[])
            .contains("must be from 1 to 31536000, got 31536001")
    );
    assert!(only_problem(&["-session-ttl=-5"], &[]).contains("got -5"));
    assert!(
        only_problem(&["-session-ttl=1d"], &[])
            .contains("expected a whole number from 1 to 31536000, got \"1d\"")
    );
}

#[test]
fn port_range() {
    assert_eq!(ok(&["-port=0"], &[]).listen.port, 0);
    assert!(only_problem(&["-port=65536"], &[]).contains("must be from 0 to 65535, got 65536"));
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "c.toml", "port = 4466.5\n");
    assert!(
        only_problem(&["-config", &file], &[])
            .contains("expected a whole number from 0 to 65535, got 4466.5")
    );
}

#[test]
fn listen_addr_is_an_ip_or_host_name() {
    assert_eq!(
        ok(&["-listen-addr=[::1]"], &[]).listen.host.as_deref(),
        Some("::1")
    );
    assert_eq!(
        ok(&["-listen-addr=::1"], &[]).listen.to_string(),
        "[::1]:4466"
    );
    assert_eq!(
        ok(&["-listen-addr=localhost"], &[]).listen.host.as_deref(),
        Some("localhost")
    );
    let p = only_problem(&["-listen-addr=127.0.0.1:80"], &[]);
    assert!(
        p.contains("expected an IP address or host name without a port"),
        "{p}"
    );
}

#[test]
fn ca_file_must_hold_pem_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let base = [CLIENT, "-oidc-idp-issuer-url=https://i.example"];
    let good = pem_file(dir.path(), "ca.pem", "CERTIFICATE");
    let ca_flag = format!("-oidc-ca-file={good}");
    let ca = ok(&[base[0], base[1], &ca_flag], &[])
        .oidc
        .unwrap()
        .ca
        .unwrap();
    assert_eq!(ca.certificates_der.len(), 1);
    assert_eq!(ca.certificates_der[0], (0u8..64).collect::<Vec<u8>>());
    assert_eq!(ca.pem, std::fs::read(&good).unwrap());

    let not_pem = write(dir.path(), "junk", "this is not a certificate");
    let p = only_problem(
        &[base[0], base[1], &format!("-oidc-ca-file={not_pem}")],
        &[],
    );
    assert!(
        p.starts_with("-oidc-ca-file (HEADLAMP_CONFIG_OIDC_CA_FILE): "),
        "{p}"
    );
    assert!(p.contains("expected PEM CERTIFICATE blocks"), "{p}");

    let key_only = pem_file(dir.path(), "key.pem", "PRIVATE KEY");
    let p = only_problem(
        &[base[0], base[1], &format!("-oidc-ca-file={key_only}")],
        &[],
    );
    assert!(p.contains("holds no PEM data of the right kind"), "{p}");

    let missing = dir.path().join("missing.pem").display().to_string();
    let p = only_problem(
        &[base[0], base[1], &format!("-oidc-ca-file={missing}")],
        &[],
    );
    assert!(p.contains("cannot read"), "{p}");
}

#[test]
fn tls_cert_and_key_go_together_and_hold_pem() {
    let dir = tempfile::tempdir().unwrap();
    let cert = pem_file(dir.path(), "tls.crt", "CERTIFICATE");
    let key = pem_file(dir.path(), "tls.key", "EC PRIVATE KEY");
    let c = ok(&["-tls-cert-path", &cert, "-tls-key-path", &key], &[]);
    assert_eq!(c.tls.unwrap().key_path, PathBuf::from(&key));

    let p = only_problem(&["-tls-cert-path", &cert], &[]);
    assert!(
        p.starts_with(
            "-tls-key-path (HEADLAMP_CONFIG_TLS_KEY_PATH): is required when -tls-cert-path is set"
        ),
        "{p}"
    );
    let p = only_problem(&["-tls-key-path", &key], &[]);
    assert!(
        p.starts_with(
            "-tls-cert-path (HEADLAMP_CONFIG_TLS_CERT_PATH): is required when -tls-key-path is set"
        ),
        "{p}"
    );
    // Swapped files: each is reported.
    let found = problems(&["-tls-cert-path", &key, "-tls-key-path", &cert], &[]);
    assert_eq!(found.len(), 2, "{found:?}");
}

#[test]
fn secret_and_secret_file_are_exclusive_and_the_file_must_be_usable() {
    let dir = tempfile::tempdir().unwrap();
    let base = [CLIENT, "-oidc-idp-issuer-url=https://i.example"];
    let file = write(dir.path(), "s", "x");
    let p = only_problem(
        &[base[0], base[1], "-oidc-client-secret-file", &file],
        &[("HEADLAMP_CONFIG_OIDC_CLIENT_SECRET", "hidden-value")],
    );
    assert_eq!(
        p,
        "-oidc-client-secret-file (HEADLAMP_CONFIG_OIDC_CLIENT_SECRET_FILE): cannot be combined with -oidc-client-secret; set only one of them [set by command line]"
    );
    let empty = write(dir.path(), "empty", "\n");
    assert!(
        only_problem(&[base[0], base[1], "-oidc-client-secret-file", &empty], &[])
            .contains("is empty")
    );
    let missing = dir.path().join("nope").display().to_string();
    assert!(
        only_problem(
            &[base[0], base[1], "-oidc-client-secret-file", &missing],
            &[]
        )
        .contains("cannot read")
    );
}

#[test]
fn session_key_needs_32_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let short = write(dir.path(), "short", "too short\n");
    let p = only_problem(&["-session-key-file", &short], &[]);
    assert!(
        p.starts_with("-session-key-file (HEADLAMP_CONFIG_SESSION_KEY_FILE): "),
        "{p}"
    );
    assert!(
        p.contains("holds 9 bytes; expected at least 32 bytes of random data"),
        "{p}"
    );
    assert!(
        !p.contains("too short"),
        "key contents must not be echoed: {p}"
    );
    let exact = write(dir.path(), "exact", [0xA5u8; 32]);
    assert!(
        ok(&["-session-key-file", &exact], &[])
            .session
            .key
            .is_some()
    );
}

#[test]
fn choices_and_booleans_say_what_is_expected() {
    assert_eq!(
        ok(&["-log-level=DEBUG"], &[]).logging.level,
        LogLevel::Debug
    );
    assert_eq!(
        only_problem(&["-log-level=verbose"], &[]),
        "-log-level (HEADLAMP_CONFIG_LOG_LEVEL): expected one of trace, debug, info, warn, error, got \"verbose\" [set by command line]"
    );
    assert!(
        only_problem(&["-log-format=xml"], &[]).contains("expected one of text, json, got \"xml\"")
    );
    assert_eq!(
        only_problem(&[], &[("HEADLAMP_CONFIG_IN_CLUSTER", "yes")]),
        "-in-cluster (HEADLAMP_CONFIG_IN_CLUSTER): expected true or false (or 1/0, t/f), got \"yes\" [set by environment variable HEADLAMP_CONFIG_IN_CLUSTER]"
    );
}

#[test]
fn claims_and_required_claims_are_checked() {
    let base = [CLIENT, "-oidc-idp-issuer-url=https://i.example"];
    let p = only_problem(&[base[0], base[1], "-oidc-required-claim=hd"], &[]);
    assert!(
        p.contains("expected key=value (e.g. hd=example.com), got \"hd\""),
        "{p}"
    );
    assert!(
        only_problem(&[base[0], base[1], "-oidc-required-claim==x"], &[])
            .contains("expected key=value")
    );
    let p = only_problem(&[base[0], base[1], "-oidc-impersonate-claim="], &[]);
    assert!(
        p.starts_with(
            "-oidc-impersonate-claim (HEADLAMP_CONFIG_OIDC_IMPERSONATE_CLAIM): must not be empty"
        ),
        "{p}"
    );
    let p = only_problem(&[base[0], base[1], "-oidc-scopes=profile,\"quoted\""], &[]);
    assert!(p.contains("is not a valid scope"), "{p}");
    let p = only_problem(
        &[base[0], base[1], "-oidc-callback-url=/oidc-callback"],
        &[],
    );
    assert!(
        p.starts_with(
            "-oidc-callback-url (HEADLAMP_CONFIG_OIDC_CALLBACK_URL): expected an absolute URL"
        ),
        "{p}"
    );
}

#[test]
fn html_static_dir_must_be_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "index.html", "<html>");
    let p = only_problem(&["-html-static-dir", &file], &[]);
    assert!(p.contains("is not a directory"), "{p}");
}

#[test]
fn config_file_problems() {
    let dir = tempfile::tempdir().unwrap();
    let typo = write(
        dir.path(),
        "typo.toml",
        "prot = 1\nconfig = \"x\"\nport = { a = 1 }\n",
    );
    let found = problems(&["-config", &typo], &[]);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(
        found
            .iter()
            .any(|p| p.contains("unknown key `prot`") && p.contains("(did you mean `port`?)"))
    );
    assert!(
        found
            .iter()
            .any(|p| p.contains("cannot name another config file"))
    );
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("-port (HEADLAMP_CONFIG_PORT): expected a whole number"))
    );

    let broken = write(dir.path(), "broken.toml", "port = \n");
    let p = only_problem(&["-config", &broken], &[]);
    assert!(p.starts_with("-config (HEADLAMP_CONFIG_CONFIG): "), "{p}");
    assert!(p.contains("is not valid TOML"), "{p}");

    let missing = dir.path().join("missing.toml").display().to_string();
    assert!(only_problem(&["-config", &missing], &[]).contains("cannot read config file"));

    let wrong_type = write(
        dir.path(),
        "types.toml",
        "in-cluster = \"sure\"\noidc-scopes = 5\n",
    );
    let found = problems(&["-config", &wrong_type], &[]);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found.iter().all(|p| p.contains("[set by config file")));
}

#[test]
fn all_problems_are_reported_together() {
    let err = load(
        &[
            "-base-url=x",
            "-session-ttl=0",
            "-oidc-impersonate",
            "-log-format=yaml",
        ],
        &[("HEADLAMP_CONFIG_PORT", "http")],
    )
    .unwrap_err();
    assert_eq!(err.problems().len(), 5, "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with("invalid configuration (5 problems):\n  - "),
        "{text}"
    );
    for flag in [
        "-base-url",
        "-session-ttl",
        "-oidc-impersonate",
        "-log-format",
        "-port",
    ] {
        assert!(
            text.contains(&format!("\n  - {flag} (")),
            "{flag} missing in {text}"
        );
    }
    assert_eq!(ConfigError::EXIT_CODE, 64);
}

#[test]
fn flags_doc_is_in_sync() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/flags.md");
    let expected = crate::flags::markdown_table();
    if std::env::var_os("HEADLAMP_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == expected,
        "docs/flags.md is out of date; regenerate with: HEADLAMP_UPDATE_DOCS=1 cargo test -p headlamp-config flags_doc"
    );
    // And the table names every flag and env var.
    for spec in FLAGS {
        assert!(committed.contains(&spec.env_var()));
        if matches!(spec.kind, FlagKind::Bool) {
            assert!(committed.contains(&format!("`-{}[=true\\|false]`", spec.name)));
        }
    }
}
