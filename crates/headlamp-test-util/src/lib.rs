//! Test fixtures shared by the workspace: a protocol-faithful test Kubernetes API server, key material, and process harnesses for the real IdP.
//!
//! - [`apiserver`]: [`apiserver::TestApiServer`], an in-process HTTPS
//!   server that authenticates, impersonates, authorizes and serves like
//!   kube-apiserver, and records every request it gets.
//! - [`tls`]: a throw-away CA and the certificates it issues.
//! - [`kubeconfig`]: kubeconfig files pointing at the test API server.
//! - [`idp`]: the real OpenID provider (npm `oidc-provider`) and scripted logins.

pub mod apiserver;
mod error;
pub mod idp;
pub mod kubeconfig;
pub mod process;
pub mod tls;

pub use error::TestBedError;
