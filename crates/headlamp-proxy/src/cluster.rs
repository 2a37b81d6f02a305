//! Which clusters exist: every kubeconfig context (named after the context,
//! as Headlamp does) and the in-cluster configuration.
//!
//! Parsing and merging kubeconfig files is kube-client's (`config` feature):
//! [`Kubeconfig::read_from`] resolves relative paths against each file's
//! directory, [`Kubeconfig::merge`] applies kubectl's rules, and
//! [`Config::from_custom_kubeconfig`] resolves a context to its cluster, CA
//! and user. This module only decides what a cluster is for the proxy and
//! keeps a failing context, with its error, beside the working ones.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};

use kube_client::config::{AuthInfo, Config, KubeConfigOptions, Kubeconfig};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::Serialize;

use crate::error::{ProxyError, error_chain};

/// Service-account files every pod gets, see
/// <https://kubernetes.io/docs/tasks/run-application/access-api-from-pod/#directly-accessing-the-rest-api>.
const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Where a cluster's settings came from (`meta_data.source` in `/config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum ClusterSource {
    /// A kubeconfig context.
    #[serde(rename = "kubeconfig")]
    Kubeconfig,
    /// The pod's service account (`-in-cluster`).
    #[serde(rename = "incluster")]
    InCluster,
}

/// What the server needs to know about a cluster for `/config` and for
/// choosing its OIDC settings. Never holds a credential in printable form.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClusterInfo {
    /// The cluster name: the kubeconfig context name, or the in-cluster context name.
    pub name: String,
    /// The API server URL, when it is known.
    pub server: Option<String>,
    /// Where it came from.
    pub source: ClusterSource,
    /// The kubeconfig user's `auth-provider`, which is where Headlamp reads a
    /// context's OIDC settings (`client-id`, `idp-issuer-url`, ...).
    pub auth_provider: Option<AuthProvider>,
    /// Why the cluster cannot be used, when it cannot.
    pub error: Option<String>,
}

/// A kubeconfig `users[].user.auth-provider`.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthProvider {
    /// `oidc` for the settings Headlamp reads.
    pub name: String,
    /// Its `config` map (`client-id`, `client-secret`, `idp-issuer-url`, `scope`,
    /// `idp-certificate-authority`, `idp-certificate-authority-data`, ...).
    /// Values may be secrets (`client-secret`, `id-token`, `refresh-token`):
    /// `Debug` prints the keys only.
    pub config: BTreeMap<String, String>,
}

impl fmt::Debug for AuthProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthProvider")
            .field("name", &self.name)
            .field("config_keys", &self.config.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The kubeconfig files to read, in precedence order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeconfigFiles {
    paths: Vec<PathBuf>,
    skip_missing: bool,
}

impl KubeconfigFiles {
    /// One file named explicitly (`-kubeconfig`): a missing file is an error.
    pub fn explicit(path: impl Into<PathBuf>) -> Self {
        Self {
            paths: vec![path.into()],
            skip_missing: false,
        }
    }

    /// A `KUBECONFIG`-style list (`:`-separated on Unix). Empty entries are
    /// ignored and missing files skipped, as kubectl does
    /// (<https://kubernetes.io/docs/concepts/configuration/organize-cluster-access-kubeconfig/#merging-kubeconfig-files>).
    /// Unlike kube-client's `Kubeconfig::from_env`, a value holding a NUL
    /// byte cannot panic here; that path simply fails to open.
    pub fn from_path_list(value: &OsStr) -> Self {
        Self {
            paths: std::env::split_paths(value)
                .filter(|p| !p.as_os_str().is_empty())
                .collect(),
            skip_missing: true,
        }
    }

    /// `~/.kube/config`, skipped when it does not exist.
    pub fn home_default() -> Option<Self> {
        std::env::home_dir().map(|home| Self {
            paths: vec![home.join(".kube").join("config")],
            skip_missing: true,
        })
    }

    /// The files, first one wins.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// Reads and merges the files (first file wins for each named cluster,
    /// user and context, and for `current-context`).
    pub fn read(&self) -> Result<Kubeconfig, ProxyError> {
        let mut merged = Kubeconfig::default();
        for path in &self.paths {
            if self.skip_missing && !path.exists() {
                tracing::info!(path = %path.display(), "kubeconfig file does not exist; skipped");
                continue;
            }
            let file = Kubeconfig::read_from(path).map_err(|source| ProxyError::Kubeconfig {
                path: path.clone(),
                source,
            })?;
            merged = merged
                .merge(file)
                .map_err(|source| ProxyError::KubeconfigMerge { source })?;
        }
        Ok(merged)
    }
}

/// The in-cluster configuration: the API server from the
/// `KUBERNETES_SERVICE_HOST`/`_PORT` environment and the pod's service
/// account files. The paths are fields so tests can point them elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InClusterConfig {
    /// The cluster name (`-in-cluster-context-name`, Headlamp's default `main`).
    pub context_name: String,
    /// `KUBERNETES_SERVICE_HOST`.
    pub service_host: Option<String>,
    /// `KUBERNETES_SERVICE_PORT`.
    pub service_port: Option<String>,
    /// The service-account token, re-read when the kubelet rotates it.
    pub token_file: PathBuf,
    /// The cluster CA bundle.
    pub ca_file: PathBuf,
}

impl InClusterConfig {
    /// Reads the environment and uses the standard service-account paths.
    pub fn from_env(context_name: impl Into<String>) -> Self {
        Self {
            context_name: context_name.into(),
            service_host: std::env::var("KUBERNETES_SERVICE_HOST").ok(),
            service_port: std::env::var("KUBERNETES_SERVICE_PORT").ok(),
            token_file: Path::new(SERVICE_ACCOUNT_DIR).join("token"),
            ca_file: Path::new(SERVICE_ACCOUNT_DIR).join("ca.crt"),
        }
    }

    /// An explicit configuration (tests, or a pod with unusual mounts).
    pub fn new(
        context_name: impl Into<String>,
        server_host: impl Into<String>,
        server_port: u16,
        token_file: impl Into<PathBuf>,
        ca_file: impl Into<PathBuf>,
    ) -> Self {
        Self {
            context_name: context_name.into(),
            service_host: Some(server_host.into()),
            service_port: Some(server_port.to_string()),
            token_file: token_file.into(),
            ca_file: ca_file.into(),
        }
    }

    /// `https://host:port`, with IPv6 literals bracketed, as client-go builds it.
    fn server_url(&self) -> Result<String, String> {
        let (Some(host), Some(port)) = (&self.service_host, &self.service_port) else {
            return Err(
                "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must both be set \
                        (they are in every pod); not running in a cluster?"
                    .to_owned(),
            );
        };
        let port: u16 = port
            .parse()
            .map_err(|_| format!("KUBERNETES_SERVICE_PORT {port:?} is not a port number"))?;
        let host = match host.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
            _ => host.clone(),
        };
        Ok(format!("https://{host}:{port}"))
    }
}

/// Every place clusters come from.
#[derive(Debug, Clone, Default)]
pub struct ClusterSources {
    /// Kubeconfig files, merged.
    pub kubeconfig: Option<KubeconfigFiles>,
    /// Context names left out (`-skipped-kube-contexts`).
    pub skipped_contexts: Vec<String>,
    /// The in-cluster configuration (`-in-cluster`).
    pub in_cluster: Option<InClusterConfig>,
    /// Do not verify any API server's TLS certificate (Headlamp's
    /// `-insecure-ssl`), whatever the kubeconfig says. Only for throwaway
    /// clusters: anyone on the network path can then read every token.
    pub insecure_skip_tls_verify: bool,
}

/// Whose credentials a cluster has (used only in impersonate mode).
#[derive(Debug, Clone)]
pub(crate) enum UserSpec {
    /// A kubeconfig user.
    Kubeconfig(Box<AuthInfo>),
    /// The pod's service account.
    ServiceAccount { token_file: PathBuf },
}

/// How to reach a cluster's API server.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionSpec {
    pub(crate) server: http::Uri,
    /// `None`: the system trust store.
    pub(crate) root_certs: Option<Vec<CertificateDer<'static>>>,
    pub(crate) insecure_skip_tls_verify: bool,
    pub(crate) tls_server_name: Option<String>,
    pub(crate) user: UserSpec,
}

/// One cluster as loaded: its public description and how to reach it, or
/// why it cannot be reached.
#[derive(Debug)]
pub(crate) struct ClusterSpec {
    pub(crate) info: ClusterInfo,
    pub(crate) connection: Result<ConnectionSpec, String>,
}

/// Loads every cluster: in-cluster first, then kubeconfig contexts in file
/// order. Only an unreadable or unparseable kubeconfig file is an error;
/// a broken context becomes a cluster with an error.
pub(crate) async fn load(sources: &ClusterSources) -> Result<Vec<ClusterSpec>, ProxyError> {
    let mut clusters = Vec::new();
    if let Some(in_cluster) = &sources.in_cluster {
        clusters.push(load_in_cluster(in_cluster));
    }
    if let Some(files) = &sources.kubeconfig {
        let kubeconfig = files.read()?;
        let skipped: HashSet<&str> = sources
            .skipped_contexts
            .iter()
            .map(String::as_str)
            .collect();
        for named in &kubeconfig.contexts {
            if skipped.contains(named.name.as_str()) {
                tracing::info!(context = %named.name, "kubeconfig context skipped");
                continue;
            }
            clusters.push(load_context(&kubeconfig, &named.name).await);
        }
    }
    let mut seen = HashSet::new();
    clusters.retain(|c| {
        let first = seen.insert(c.info.name.clone());
        if !first {
            tracing::warn!(cluster = %c.info.name, "a second cluster with this name is ignored; rename the kubeconfig context");
        }
        first
    });
    if sources.insecure_skip_tls_verify {
        tracing::warn!(
            "-insecure-ssl is set: no API server's TLS certificate is verified, so anyone on the \
             network path can impersonate the API server and read every token sent to it"
        );
        for connection in clusters
            .iter_mut()
            .filter_map(|c| c.connection.as_mut().ok())
        {
            connection.insecure_skip_tls_verify = true;
        }
    }
    Ok(clusters)
}

fn load_in_cluster(config: &InClusterConfig) -> ClusterSpec {
    let server = config.server_url();
    let connection = server.clone().and_then(|server| {
        let uri = parse_server(&server)?;
        let pem = std::fs::read(&config.ca_file).map_err(|e| {
            format!(
                "cannot read the service-account CA file {}: {e}",
                config.ca_file.display()
            )
        })?;
        let certs = parse_certificates(&pem)
            .map_err(|e| format!("CA file {}: {e}", config.ca_file.display()))?;
        Ok(ConnectionSpec {
            server: uri,
            root_certs: Some(certs),
            insecure_skip_tls_verify: false,
            tls_server_name: None,
            user: UserSpec::ServiceAccount {
                token_file: config.token_file.clone(),
            },
        })
    });
    ClusterSpec {
        info: ClusterInfo {
            name: config.context_name.clone(),
            server: server.ok(),
            source: ClusterSource::InCluster,
            auth_provider: None,
            error: connection.as_ref().err().cloned(),
        },
        connection,
    }
}

async fn load_context(kubeconfig: &Kubeconfig, context: &str) -> ClusterSpec {
    let options = KubeConfigOptions {
        context: Some(context.to_owned()),
        ..Default::default()
    };
    let raw_cluster = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .and_then(|ctx| kubeconfig.clusters.iter().find(|c| c.name == ctx.cluster))
        .and_then(|c| c.cluster.as_ref());
    let server = raw_cluster.and_then(|c| c.server.clone());
    let loaded = Config::from_custom_kubeconfig(kubeconfig.clone(), &options)
        .await
        .map_err(|e| format!("context {context:?}: {}", error_chain(&e)));
    let auth_provider = loaded
        .as_ref()
        .ok()
        .and_then(|c| c.auth_info.auth_provider.as_ref())
        .map(|p| AuthProvider {
            name: p.name.clone(),
            config: p
                .config
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        });
    let connection = loaded.and_then(|config| {
        if raw_cluster.and_then(|c| c.proxy_url.as_ref()).is_some() {
            return Err(format!(
                "context {context:?}: the cluster sets proxy-url, which this proxy does not \
                 support; reach the API server directly"
            ));
        }
        let server = parse_server(&config.cluster_url.to_string())?;
        let root_certs = config.root_cert.map(|certs| {
            certs
                .into_iter()
                .map(CertificateDer::from)
                .collect::<Vec<_>>()
        });
        if config.accept_invalid_certs {
            tracing::warn!(
                cluster = %context,
                "insecure-skip-tls-verify is set: the API server's identity is not checked, so \
                 anyone on the network path can impersonate it and read the tokens sent to it"
            );
        }
        Ok(ConnectionSpec {
            server,
            root_certs,
            insecure_skip_tls_verify: config.accept_invalid_certs,
            tls_server_name: config.tls_server_name,
            user: UserSpec::Kubeconfig(Box::new(config.auth_info)),
        })
    });
    ClusterSpec {
        info: ClusterInfo {
            name: context.to_owned(),
            server,
            source: ClusterSource::Kubeconfig,
            auth_provider,
            error: connection.as_ref().err().cloned(),
        },
        connection,
    }
}

/// A server URL must be absolute `http(s)://host[:port][/prefix]`.
fn parse_server(server: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = server
        .parse()
        .map_err(|e| format!("server URL {server:?} is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("https" | "http") if uri.authority().is_some() => Ok(uri),
        _ => Err(format!(
            "server URL {server:?} must start with https:// (or http://) and name a host"
        )),
    }
}

/// PEM `CERTIFICATE` blocks; anything else in the bundle is ignored, as Go's
/// `AppendCertsFromPEM` does.
pub(crate) fn parse_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("not a PEM certificate bundle: {e}"))?;
    if certs.is_empty() {
        return Err("holds no PEM CERTIFICATE block".to_owned());
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        path
    }

    const FIRST: &str = r#"
apiVersion: v1
kind: Config
current-context: alpha
clusters:
- name: shared
  cluster: { server: "https://first.example:6443", insecure-skip-tls-verify: true }
users:
- name: u
  user:
    token: first-token
    auth-provider:
      name: oidc
      config: { client-id: headlamp, idp-issuer-url: "https://idp.example", client-secret: s3cret }
contexts:
- name: alpha
  context: { cluster: shared, user: u }
- name: broken
  context: { cluster: does-not-exist, user: u }
- name: hidden
  context: { cluster: shared, user: u }
"#;
    const SECOND: &str = r#"
apiVersion: v1
kind: Config
current-context: beta
clusters:
- name: shared
  cluster: { server: "https://second.example:6443" }
- name: other
  cluster: { server: "https://other.example", certificate-authority: ca.pem }
users:
- name: u
  user: { token: second-token }
contexts:
- name: alpha
  context: { cluster: other, user: u }
- name: beta
  context: { cluster: other, user: u }
"#;

    #[tokio::test]
    async fn merges_files_like_kubectl_and_keeps_broken_contexts() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a.yaml", FIRST);
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let b = write(&sub, "b.yaml", SECOND);
        let list =
            std::env::join_paths([a.clone(), dir.path().join("missing.yaml"), b.clone()]).unwrap();
        let files = KubeconfigFiles::from_path_list(&list);
        let merged = files.read().unwrap();
        // kubectl: the first file to set current-context wins.
        assert_eq!(merged.current_context.as_deref(), Some("alpha"));

        let sources = ClusterSources {
            kubeconfig: Some(files),
            skipped_contexts: vec!["hidden".into()],
            in_cluster: None,
            insecure_skip_tls_verify: false,
        };
        let clusters = load(&sources).await.unwrap();
        let names: Vec<_> = clusters.iter().map(|c| c.info.name.as_str()).collect();
        assert_eq!(names, ["alpha", "broken", "beta"]);

        // "alpha" and "shared" come from the first file, whole.
        let alpha = &clusters[0];
        assert_eq!(
            alpha.info.server.as_deref(),
            Some("https://first.example:6443")
        );
        let conn = alpha.connection.as_ref().unwrap();
        assert!(conn.insecure_skip_tls_verify);
        let UserSpec::Kubeconfig(user) = &conn.user else {
            panic!("kubeconfig user expected")
        };
        use secrecy::ExposeSecret;
        assert_eq!(user.token.as_ref().unwrap().expose_secret(), "first-token");
        let provider = alpha.info.auth_provider.as_ref().unwrap();
        assert_eq!(provider.name, "oidc");
        assert_eq!(provider.config["client-id"], "headlamp");
        assert!(!format!("{provider:?}").contains("s3cret"));

        // A broken context is kept with its error.
        let broken = &clusters[1];
        assert!(broken.connection.is_err());
        assert!(
            broken.info.error.as_ref().unwrap().contains("broken"),
            "{:?}",
            broken.info.error
        );

        // "beta" uses the second file's "other" cluster, whose relative CA
        // path resolves against the second file's directory; the CA file does
        // not exist, so the context carries that error.
        let beta = &clusters[2];
        let error = beta.info.error.as_ref().unwrap();
        assert!(
            error.contains(&sub.join("ca.pem").display().to_string()),
            "{error}"
        );
    }

    #[tokio::test]
    async fn an_explicit_missing_file_is_an_error() {
        let files = KubeconfigFiles::explicit("/nonexistent/kubeconfig");
        let sources = ClusterSources {
            kubeconfig: Some(files),
            ..Default::default()
        };
        let err = load(&sources).await.unwrap_err();
        assert!(err.to_string().contains("/nonexistent/kubeconfig"), "{err}");
    }

    #[tokio::test]
    async fn in_cluster_reads_ca_and_reports_missing_environment() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let ca = rcgen::CertificateParams::new(vec!["kubernetes.default.svc".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let ca_file = write(dir.path(), "ca.crt", &ca.pem());
        let config = InClusterConfig::new("main", "::1", 443, dir.path().join("token"), ca_file);
        let sources = ClusterSources {
            in_cluster: Some(config),
            ..Default::default()
        };
        let clusters = load(&sources).await.unwrap();
        assert_eq!(clusters[0].info.name, "main");
        assert_eq!(clusters[0].info.source, ClusterSource::InCluster);
        assert_eq!(
            clusters[0].info.server.as_deref(),
            Some("https://[::1]:443")
        );
        assert_eq!(
            clusters[0]
                .connection
                .as_ref()
                .unwrap()
                .root_certs
                .as_ref()
                .unwrap()
                .len(),
            1
        );

        let mut missing = InClusterConfig::from_env("main");
        missing.service_host = None;
        let spec = load_in_cluster(&missing);
        assert!(spec.info.error.unwrap().contains("KUBERNETES_SERVICE_HOST"));
    }

    #[tokio::test]
    async fn insecure_ssl_turns_off_verification_for_every_cluster() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let ca = rcgen::CertificateParams::new(vec!["kubernetes.default.svc".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let ca_file = write(dir.path(), "ca.crt", &ca.pem());
        let config =
            InClusterConfig::new("main", "127.0.0.1", 443, dir.path().join("token"), ca_file);
        let mut sources = ClusterSources {
            in_cluster: Some(config),
            ..Default::default()
        };
        let verified = load(&sources).await.unwrap();
        assert!(
            !verified[0]
                .connection
                .as_ref()
                .unwrap()
                .insecure_skip_tls_verify
        );
        sources.insecure_skip_tls_verify = true;
        let insecure = load(&sources).await.unwrap();
        assert!(
            insecure[0]
                .connection
                .as_ref()
                .unwrap()
                .insecure_skip_tls_verify
        );
    }
}
