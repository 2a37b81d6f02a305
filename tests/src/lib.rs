//! End-to-end tests against real components (the `oidc-provider` IdP, the test API server, kubectl, Chromium).
