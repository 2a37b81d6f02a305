//! The OpenID Connect authorization-code flow: discovery, PKCE, sealed stateless login state, code exchange and refresh.
