//! Black-box tests of the built `headlamp-server` binary: what a user sees
//! on the command line, and a real start / probe / SIGTERM cycle on loopback.

// clippy's allow-unwrap-in-tests covers #[test] functions only; in these
// helpers too a panic is a failed assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use headlamp_config::flags::FLAGS;

const BIN: &str = env!("CARGO_BIN_EXE_headlamp-server");
const SECRET: &str = "hunter2-client-secret";
const WAIT: Duration = Duration::from_secs(20);

/// The binary with an empty environment, so the developer's own
/// `HEADLAMP_CONFIG_*`, `KUBECONFIG` or `HOME` cannot change the outcome.
fn headlamp(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BIN);
    command.env_clear().args(args).envs(env.iter().copied());
    command
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    headlamp(args, env).stdin(Stdio::null()).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn help_lists_every_flag_with_env_var_and_default() {
    for spelling in ["--help", "-help", "-h"] {
        let out = run(&[spelling], &[]);
        assert!(out.status.success(), "{spelling}: {out:?}");
        let help = text(&out.stdout);
        for spec in FLAGS {
            assert!(
                help.contains(&format!("--{} ", spec.name))
                    || help.contains(&format!("--{}[", spec.name)),
                "-{} missing from {spelling}",
                spec.name
            );
            assert!(help.contains(&spec.env_var()), "{} missing", spec.env_var());
        }
        assert!(help.contains("[default: 4466]"));
        assert!(help.contains("[default: preferred_username]"));
    }
}

#[test]
fn version_prints_the_package_version() {
    let out = run(&["--version"], &[]);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        format!("headlamp-server {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn print_config_merges_env_and_flags_and_redacts_secrets() {
    let out = run(
        &[
            "-oidc-idp-issuer-url=https://idp.example.com",
            "-log-level",
            "debug",
            "--oidc-scopes=groups,openid",
            "-in-cluster",
            "--print-config",
        ],
        &[
            ("HEADLAMP_CONFIG_PORT", "1234"),
            ("HEADLAMP_CONFIG_OIDC_CLIENT_ID", "env-client"),
            ("HEADLAMP_CONFIG_OIDC_CLIENT_SECRET", SECRET),
            ("HEADLAMP_CONFIG_LOG_LEVEL", "warn"),
            ("HEADLAMP_CONFIG_BASE_URL", "/headlamp/"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains(SECRET));
    let config: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(config["port"], 1234, "from the environment");
    assert_eq!(config["oidc-client-id"], "env-client");
    assert_eq!(config["oidc-client-secret"], "[redacted]");
    assert_eq!(config["oidc-idp-issuer-url"], "https://idp.example.com");
    assert_eq!(
        config["log-level"], "debug",
        "the flag beats the environment"
    );
    assert_eq!(
        config["oidc-scopes"],
        serde_json::json!(["openid", "groups"])
    );
    assert_eq!(config["in-cluster"], true);
    assert_eq!(config["base-url"], "/headlamp");
    assert_eq!(config["oidc-use-pkce"], true);
    assert_eq!(config["session-ttl"], 86400);
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn invalid_configuration_exits_64_listing_every_problem() {
    let port = free_port();
    let port_flag = format!("-port={port}");
    let started = Instant::now();
    let out = run(
        &[
            "-listen-addr=127.0.0.1",
            &port_flag,
            "-base-url=headlamp",
            "-session-ttl",
            "0",
        ],
        &[
            (
                "HEADLAMP_CONFIG_OIDC_IDP_ISSUER_URL",
                "http://idp.example.com",
            ),
            ("HEADLAMP_CONFIG_OIDC_CLIENT_SECRET", SECRET),
        ],
    );
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("invalid configuration (4 problems)"),
        "{stderr}"
    );
    for expected in [
        "-base-url (HEADLAMP_CONFIG_BASE_URL): must start with '/'",
        "-session-ttl (HEADLAMP_CONFIG_SESSION_TTL): must be from 1 to 31536000, got 0",
        "-oidc-idp-issuer-url (HEADLAMP_CONFIG_OIDC_IDP_ISSUER_URL): must use https",
        "-oidc-client-id (HEADLAMP_CONFIG_OIDC_CLIENT_ID): is required",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in {stderr}"
        );
    }
    assert!(!stderr.contains(SECRET));
    // It never listened: the port is still free.
    assert!(started.elapsed() < WAIT);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn unknown_flag_exits_64_with_a_suggestion() {
    let out = run(&["-oidc-client-idd=x"], &[]);
    assert_eq!(out.status.code(), Some(64));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "flag provided but not defined: -oidc-client-idd (did you mean -oidc-client-id?)"
        ),
        "{stderr}"
    );
}

/// A running server whose stderr is collected line by line.
struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Server {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = headlamp(args, env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Server {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for the first log line `matches` accepts.
    fn wait_for(&mut self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if matches(&line) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = self.child.kill();
        panic!("no log line {what}; got:\n{}", self.seen.join("\n"));
    }

    /// Sends a signal the way an init system or Kubernetes does.
    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for exit and returns (success, all stderr lines).
    fn wait_exit(mut self) -> (bool, Vec<String>) {
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("server did not exit; log:\n{}", self.seen.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(line);
        }
        (status.success(), std::mem::take(&mut self.seen))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request over a plain socket; returns the raw response.
fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn serves_healthz_under_the_base_url_and_exits_cleanly_on_sigterm() {
    let mut server = Server::start(
        &[
            "-listen-addr=127.0.0.1",
            "-port=0",
            "-log-format=json",
            "-log-level=debug",
            "-base-url=/headlamp",
            "-oidc-client-id=headlamp",
            "-oidc-idp-issuer-url=http://127.0.0.1:9/realms/test",
        ],
        &[("HEADLAMP_CONFIG_OIDC_CLIENT_SECRET", SECRET)],
    );
    let listening = server.wait_for("\"listening\"", |line| line.contains("\"listening\""));
    let event: serde_json::Value = serde_json::from_str(&listening).unwrap();
    let addr: SocketAddr = event["addr"].as_str().unwrap().parse().unwrap();
    assert!(addr.ip().is_loopback());
    assert_eq!(event["level"], "INFO");

    let healthz = http_get(addr, "/headlamp/healthz");
    assert!(healthz.starts_with("HTTP/1.1 200 OK\r\n"), "{healthz}");
    assert!(healthz.ends_with("\r\n\r\nok"), "{healthz}");
    let outside = http_get(addr, "/healthz");
    assert!(
        outside.starts_with("HTTP/1.1 404 Not Found\r\n"),
        "{outside}"
    );
    assert!(outside.contains("\"kind\":\"Status\""), "{outside}");

    server.signal("TERM");
    let (success, log) = server.wait_exit();
    assert!(
        success,
        "exit status after SIGTERM; log:\n{}",
        log.join("\n")
    );
    for line in &log {
        let event: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(event["message"].is_string(), "{line}");
        assert!(!line.contains(SECRET), "secret in log: {line}");
    }
    assert!(log.iter().any(|l| l.contains("\"signal\":\"SIGTERM\"")));
    assert!(log.iter().any(|l| l.contains("shut down cleanly")));
    // The request span carries the path but the port is free again.
    assert!(
        log.iter()
            .any(|l| l.contains("\"path\":\"/headlamp/healthz\""))
    );
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn text_logs_and_sigint() {
    let mut server = Server::start(&["-listen-addr", "127.0.0.1", "-port", "0"], &[]);
    let line = server.wait_for("listening", |line| line.contains("listening"));
    // Not a terminal: plain text without colour codes.
    assert!(!line.contains('\u{1b}'), "{line}");
    assert!(line.contains("INFO"), "{line}");
    let addr: SocketAddr = line
        .split_whitespace()
        .find_map(|field| field.strip_prefix("addr="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(http_get(addr, "/healthz").starts_with("HTTP/1.1 200 OK"));
    server.signal("INT");
    let (success, log) = server.wait_exit();
    assert!(success, "{}", log.join("\n"));
    assert!(
        log.iter().any(|l| l.contains("signal=\"SIGINT\"")),
        "{}",
        log.join("\n")
    );
}

#[test]
fn a_taken_port_is_a_clear_startup_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = run(&["-listen-addr=127.0.0.1", "-port", &port], &[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
}

/// HTTPS with `-tls-cert-path`/`-tls-key-path`: a rustls client that trusts
/// only the generated certificate gets `/healthz`.
#[test]
fn serves_https_with_the_configured_certificate() {
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let issued =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert_path = dir.path().join("tls.crt");
    let key_path = dir.path().join("tls.key");
    std::fs::write(&cert_path, issued.cert.pem()).unwrap();
    std::fs::write(&key_path, issued.signing_key.serialize_pem()).unwrap();

    let mut server = Server::start(
        &[
            "-listen-addr=127.0.0.1",
            "-port=0",
            "-log-format=json",
            "-tls-cert-path",
            cert_path.to_str().unwrap(),
            "-tls-key-path",
            key_path.to_str().unwrap(),
        ],
        &[],
    );
    let listening = server.wait_for("\"listening\"", |line| line.contains("\"listening\""));
    let event: serde_json::Value = serde_json::from_str(&listening).unwrap();
    assert_eq!(event["scheme"], "https");
    let addr: SocketAddr = event["addr"].as_str().unwrap().parse().unwrap();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(issued.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(client), name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    write!(
        tls,
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    // The server may close without close_notify after `Connection: close`;
    // what was read until then is the whole response.
    let _ = tls.read_to_end(&mut response);
    let response = String::from_utf8(response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.ends_with("\r\n\r\nok"), "{response}");

    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(addr).unwrap();
    plain.set_read_timeout(Some(WAIT)).unwrap();
    write!(plain, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP/1.1 200"),
        "served plain HTTP on the TLS port"
    );

    server.signal("TERM");
    let (success, log) = server.wait_exit();
    assert!(success, "{}", log.join("\n"));
}

#[test]
fn an_unusable_tls_key_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let issued = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let other = rcgen::KeyPair::generate().unwrap();
    let cert_path = dir.path().join("tls.crt");
    let key_path = dir.path().join("other.key");
    std::fs::write(&cert_path, issued.cert.pem()).unwrap();
    std::fs::write(&key_path, other.serialize_pem()).unwrap();
    let out = run(
        &[
            "-listen-addr=127.0.0.1",
            "-port=0",
            "-tls-cert-path",
            cert_path.to_str().unwrap(),
            "-tls-key-path",
            key_path.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("TLS setup failed"), "{stderr}");
    assert!(
        !stderr.contains("PRIVATE KEY"),
        "key material in the log: {stderr}"
    );
}
