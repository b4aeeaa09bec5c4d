//! skiff's PKI: CAs and certificates (rcgen), kubeconfig writer, node token.
