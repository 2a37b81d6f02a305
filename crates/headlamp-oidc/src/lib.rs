//! The OpenID Connect authorization-code flow: discovery, PKCE, sealed
//! stateless login state, code exchange and refresh.
#![forbid(unsafe_code)]

mod client;
mod discovery;
mod error;
mod http_client;
mod key_source;
mod login;
mod seal;
mod settings;
mod token;

pub use client::{OidcClient, OidcRegistry, TokenSet};
pub use discovery::{DiscoveryStatus, ProviderEndpoints, TokenEndpointAuth};
pub use error::OidcError;
pub use http_client::{HttpLimits, IdpHttpClient, IdpTls};
pub use key_source::IdpKeySource;
pub use login::{
    CallbackParams, CsrfState, DEFAULT_LOGIN_LIFETIME, LoginCookie, LoginStart, LoginState, Nonce,
    PkceCodeVerifier, cookie_value,
};
pub use seal::{MIN_KEY_MATERIAL, SessionKey};
pub use settings::{OPENID_SCOPE, OidcProviderSettings, split_scopes};

#[cfg(test)]
mod fake_idp;
#[cfg(test)]
mod tests;
