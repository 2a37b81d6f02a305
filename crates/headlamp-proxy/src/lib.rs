//! The Kubernetes API proxy as tower layers: sanitize, authenticate, impersonate or pass through, forward (streams and upgrades included).
