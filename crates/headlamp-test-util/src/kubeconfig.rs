//! Kubeconfig files for tests: point kubectl, headlamp-server or a
//! kube-client `Config` at the test API server.
//!
//! The format is the `v1` `Config` kind described in
//! <https://kubernetes.io/docs/concepts/configuration/organize-cluster-access-kubeconfig/>
//! and <https://kubernetes.io/docs/reference/config-api/kubeconfig.v1/>.
//! Certificate data is embedded (`*-data` fields, base64 of the PEM) so a
//! kubeconfig stays valid wherever the test copies it.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::TestBedError;

/// A cluster entry (`clusters[].cluster`).
#[derive(Debug, Clone, Default)]
pub struct KubeCluster {
    /// The API server URL, e.g. `https://127.0.0.1:34567`.
    pub server: String,
    /// CA certificate(s), PEM, written as `certificate-authority-data`.
    pub ca_pem: Option<String>,
    /// `insecure-skip-tls-verify`.
    pub insecure_skip_tls_verify: bool,
}

/// The `auth-provider: {name: oidc}` user configuration Headlamp reads
/// OIDC settings from (see `users[].user.auth-provider.config` in
/// docs/headlamp-compat.md).
#[derive(Debug, Clone, Default)]
pub struct OidcAuthProvider {
    /// `client-id`.
    pub client_id: String,
    /// `client-secret`.
    pub client_secret: Option<String>,
    /// `idp-issuer-url`.
    pub idp_issuer_url: String,
    /// `idp-certificate-authority-data` (PEM; base64-encoded on write).
    pub idp_ca_pem: Option<String>,
    /// `id-token`.
    pub id_token: Option<String>,
    /// `refresh-token`.
    pub refresh_token: Option<String>,
    /// Any further keys, written as given (e.g. `scope` = `"groups,email"`).
    pub extra: BTreeMap<String, String>,
}

/// How a kubeconfig user authenticates (`users[].user`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum KubeUser {
    /// No credentials.
    Anonymous,
    /// `token: <bearer token>`.
    Token(String),
    /// `client-certificate-data` / `client-key-data`, PEM.
    ClientCert {
        /// The certificate, PEM.
        cert_pem: String,
        /// The private key, PEM.
        key_pem: String,
    },
    /// `auth-provider: {name: oidc, config: {...}}`.
    Oidc(OidcAuthProvider),
}

/// A kubeconfig document built up entry by entry.
///
/// ```
/// use headlamp_test_util::kubeconfig::{KubeCluster, KubeUser, Kubeconfig};
/// let yaml = Kubeconfig::new()
///     .cluster("testbed", KubeCluster { server: "https://127.0.0.1:6443".into(), ..Default::default() })
///     .user("sa", KubeUser::Token("t0ken".into()))
///     .context("testbed", "testbed", "sa", Some("default"))
///     .current_context("testbed")
///     .to_yaml()
///     .unwrap();
/// assert!(yaml.contains("current-context: testbed"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Kubeconfig {
    clusters: Vec<(String, KubeCluster)>,
    users: Vec<(String, KubeUser)>,
    contexts: Vec<(String, String, String, Option<String>)>,
    current_context: Option<String>,
}

impl Kubeconfig {
    /// An empty kubeconfig.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a cluster.
    pub fn cluster(mut self, name: impl Into<String>, cluster: KubeCluster) -> Self {
        self.clusters.push((name.into(), cluster));
        self
    }

    /// Adds a user.
    pub fn user(mut self, name: impl Into<String>, user: KubeUser) -> Self {
        self.users.push((name.into(), user));
        self
    }

    /// Adds a context joining a cluster and a user, with an optional default namespace.
    pub fn context(
        mut self,
        name: impl Into<String>,
        cluster: impl Into<String>,
        user: impl Into<String>,
        namespace: Option<&str>,
    ) -> Self {
        self.contexts.push((
            name.into(),
            cluster.into(),
            user.into(),
            namespace.map(str::to_owned),
        ));
        self
    }

    /// Sets `current-context`.
    pub fn current_context(mut self, name: impl Into<String>) -> Self {
        self.current_context = Some(name.into());
        self
    }

    /// The document as a JSON value (kubeconfig field names).
    pub fn to_value(&self) -> Value {
        let clusters: Vec<Value> = self
            .clusters
            .iter()
            .map(|(name, c)| {
                let mut cluster = json!({ "server": c.server });
                if let Some(ca) = &c.ca_pem {
                    cluster["certificate-authority-data"] = json!(STANDARD.encode(ca));
                }
                if c.insecure_skip_tls_verify {
                    cluster["insecure-skip-tls-verify"] = json!(true);
                }
                json!({ "name": name, "cluster": cluster })
            })
            .collect();
        let users: Vec<Value> = self
            .users
            .iter()
            .map(|(name, u)| json!({ "name": name, "user": user_value(u) }))
            .collect();
        let contexts: Vec<Value> = self
            .contexts
            .iter()
            .map(|(name, cluster, user, namespace)| {
                let mut context = json!({ "cluster": cluster, "user": user });
                if let Some(ns) = namespace {
                    context["namespace"] = json!(ns);
                }
                json!({ "name": name, "context": context })
            })
            .collect();
        json!({
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": clusters,
            "users": users,
            "contexts": contexts,
            "current-context": self.current_context.clone().unwrap_or_default(),
        })
    }

    /// The document as YAML.
    pub fn to_yaml(&self) -> Result<String, serde_yaml::Error> {
        serde_yaml::to_string(&self.to_value())
    }

    /// Writes the document as YAML to `path` (mode 0600 on Unix, as kubectl
    /// warns about group/world-readable kubeconfigs holding credentials).
    pub fn write(&self, path: &Path) -> Result<(), TestBedError> {
        let yaml = self.to_yaml().map_err(|source| TestBedError::Kubeconfig {
            path: path.to_path_buf(),
            source,
        })?;
        std::fs::write(path, yaml)
            .map_err(|e| TestBedError::io(format!("writing kubeconfig {}", path.display()), e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
                |e| TestBedError::io(format!("restricting kubeconfig {}", path.display()), e),
            )?;
        }
        Ok(())
    }
}

fn user_value(user: &KubeUser) -> Value {
    match user {
        KubeUser::Anonymous => json!({}),
        KubeUser::Token(token) => json!({ "token": token }),
        KubeUser::ClientCert { cert_pem, key_pem } => json!({
            "client-certificate-data": STANDARD.encode(cert_pem),
            "client-key-data": STANDARD.encode(key_pem),
        }),
        KubeUser::Oidc(p) => {
            let mut config = serde_json::Map::new();
            config.insert("client-id".into(), json!(p.client_id));
            config.insert("idp-issuer-url".into(), json!(p.idp_issuer_url));
            if let Some(secret) = &p.client_secret {
                config.insert("client-secret".into(), json!(secret));
            }
            if let Some(ca) = &p.idp_ca_pem {
                config.insert(
                    "idp-certificate-authority-data".into(),
                    json!(STANDARD.encode(ca)),
                );
            }
            if let Some(token) = &p.id_token {
                config.insert("id-token".into(), json!(token));
            }
            if let Some(token) = &p.refresh_token {
                config.insert("refresh-token".into(), json!(token));
            }
            for (k, v) in &p.extra {
                config.insert(k.clone(), json!(v));
            }
            json!({ "auth-provider": { "name": "oidc", "config": config } })
        }
    }
}

/// Writes a one-context kubeconfig (cluster, user and context all named
/// `name`, namespace `default`) pointing at `server` with `ca_pem` as the
/// trusted CA.
pub fn write_kubeconfig(
    path: &Path,
    name: &str,
    server: &str,
    ca_pem: Option<&str>,
    user: KubeUser,
) -> Result<(), TestBedError> {
    Kubeconfig::new()
        .cluster(
            name,
            KubeCluster {
                server: server.to_owned(),
                ca_pem: ca_pem.map(str::to_owned),
                insecure_skip_tls_verify: false,
            },
        )
        .user(name, user)
        .context(name, name, name, Some("default"))
        .current_context(name)
        .write(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_every_user_kind() {
        let config = Kubeconfig::new()
            .cluster(
                "c",
                KubeCluster {
                    server: "https://127.0.0.1:1".into(),
                    ca_pem: Some("PEM".into()),
                    insecure_skip_tls_verify: false,
                },
            )
            .user("t", KubeUser::Token("tok".into()))
            .user(
                "x",
                KubeUser::ClientCert {
                    cert_pem: "C".into(),
                    key_pem: "K".into(),
                },
            )
            .user(
                "o",
                KubeUser::Oidc(OidcAuthProvider {
                    client_id: "headlamp".into(),
                    idp_issuer_url: "http://127.0.0.1:2".into(),
                    extra: [("scope".to_owned(), "groups".to_owned())].into(),
                    ..Default::default()
                }),
            )
            .context("c", "c", "t", None)
            .current_context("c");
        let v = config.to_value();
        assert_eq!(
            v["clusters"][0]["cluster"]["certificate-authority-data"],
            "UEVN"
        );
        assert_eq!(v["users"][0]["user"]["token"], "tok");
        assert_eq!(v["users"][1]["user"]["client-key-data"], "Sw==");
        assert_eq!(v["users"][2]["user"]["auth-provider"]["name"], "oidc");
        assert_eq!(
            v["users"][2]["user"]["auth-provider"]["config"]["scope"],
            "groups"
        );
        let yaml = config.to_yaml().unwrap();
        let back: Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(back, v);
    }
}
