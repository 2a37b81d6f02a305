//! Sans-IO validation of OIDC JSON Web Tokens and extraction of a Kubernetes `Identity` from their claims.
