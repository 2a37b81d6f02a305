//! End-to-end tests against real components (the `oidc-provider` IdP, the test API server, kubectl, Chromium).
//!
//! [`server`] runs the built `headlamp-server` binary for tests that drive
//! it from outside ([`server::ServerProcess`]).
//!
//! [`stack`] starts the IdP and the test API server configured for a
//! `headlamp-server` that signs users in against them (the demo and the
//! browser tests).

pub mod server;
pub mod stack;
