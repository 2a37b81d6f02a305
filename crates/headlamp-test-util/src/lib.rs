//! Test fixtures shared by the workspace: a protocol-faithful test Kubernetes API server, key material, and process harnesses for the real IdP.
