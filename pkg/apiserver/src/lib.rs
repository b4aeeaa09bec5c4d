//! skiff's HTTPS Kubernetes API server: REST verbs, watch, discovery, OpenAPI, authn/authz, admission.
