//! Sans-IO validation of OIDC JSON Web Tokens and extraction of a Kubernetes `Identity` from their claims.
#![forbid(unsafe_code)]

mod key_source;

pub use key_source::{FetchedKeySet, KeySource, KeySourceError, StaticKeySource};
