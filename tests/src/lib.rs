//! End-to-end tests against real components (the `oidc-provider` IdP, the test API server, kubectl, Chromium).
//!
//! [`server`] runs the built `headlamp-server` binary for tests that drive
//! it from outside ([`server::ServerProcess`]).

pub mod server;
