//! Shared vocabulary of headlamp-auth.
//!
//! Everything here is a type or trait that more than one layer must agree on,
//! and nothing more: no I/O, no HTTP client, no parsing of tokens.
//!
//! - [`Identity`]: who a verified token says the caller is. It can only be
//!   built through [`Identity::new`], which refuses values that must never
//!   become an `Impersonate-*` header (empty, control characters, `system:`).
//! - [`Secret`] / [`BearerToken`]: strings whose `Debug` and `Display` print
//!   `[redacted]`, so a token or client secret cannot reach a log line by
//!   accident.
//! - [`Clock`]: time is injected, so token expiry logic is testable without
//!   sleeping ([`SystemClock`] in production, [`FakeClock`] in tests).
//! - [`Authenticate`]: the one question the proxy asks ("who is this bearer
//!   token?"); headlamp-jwt answers it, and so can any embedder's own type.
//! - [`Status`]: the Kubernetes `Status` object every API error is sent as.
#![forbid(unsafe_code)]

mod authenticate;
mod clock;
mod identity;
#[cfg(feature = "rustls")]
pub mod insecure_tls;
mod secret;
mod status;

pub use authenticate::{Authenticate, AuthenticationError, AuthenticationErrorKind};
pub use clock::{Clock, FakeClock, SystemClock, UnixTime};
pub use identity::RESERVED_PREFIX;
pub use identity::{Identity, IdentityError};
pub use secret::{BearerToken, Secret};
pub use status::Status;
