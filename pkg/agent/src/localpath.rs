//! (being written) node side of the local-path provisioner.
