//! The namespaces as creates see them (upstream's NamespaceLifecycle admission reads an
//! informer too): a create in a namespace the cache holds as active costs no store read; an
//! unknown or terminating namespace is read from the store, so a namespace created a moment ago
//! through another server, or one whose deletion this cache has not seen end, is judged on the
//! stored object.

use crate::follow::Change;
use crate::state::AppState;
use parking_lot::RwLock;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// Namespace name → terminating (`metadata.deletionTimestamp` set).
#[derive(Default)]
pub struct Namespaces {
    terminating: RwLock<HashMap<String, bool>>,
}

impl Namespaces {
    /// `Some(true)` for a namespace known to be active, `None` when the store must say.
    pub fn known_active(&self, name: &str) -> Option<bool> {
        match self.terminating.read().get(name) {
            Some(false) => Some(true),
            _ => None,
        }
    }

    /// Records what the store said of one namespace (`None`: it does not exist).
    pub fn note(&self, name: &str, object: Option<&Value>) {
        let mut m = self.terminating.write();
        match object {
            Some(o) => {
                m.insert(name.to_string(), is_terminating(o));
            }
            None => {
                m.remove(name);
            }
        }
    }

    fn apply(&self, prefix: &str, change: Change<'_>) {
        let name = |key: &str| key.strip_prefix(prefix).unwrap_or(key).to_string();
        let mut m = self.terminating.write();
        match change {
            Change::Reset { objects, .. } => {
                *m = objects
                    .into_iter()
                    .map(|(k, v)| (name(k), is_terminating(&v)))
                    .collect();
            }
            Change::Put { key, object, .. } => {
                m.insert(name(key), is_terminating(&object));
            }
            Change::Delete { key, .. } => {
                m.remove(&name(key));
            }
        }
    }
}

fn is_terminating(ns: &Value) -> bool {
    ns.pointer("/metadata/deletionTimestamp").is_some()
}

/// Re-reads one namespace after a write of it through this server.
pub async fn refresh(st: &AppState, name: &str) {
    let Some(res) = skiff_api::registry::find("", "v1", "namespaces") else {
        return;
    };
    match st
        .store
        .get(&crate::request::object_key(res, None, name))
        .await
    {
        Ok(kv) => {
            let object = kv.and_then(|kv| crate::objects::from_kv(&kv).ok());
            st.namespaces.note(name, object.as_ref());
        }
        // Unknown state: drop the entry so that creates read the store.
        Err(_) => st.namespaces.note(name, None),
    }
}

/// Follows the namespaces for as long as the server runs.
pub async fn run_namespace_watch(st: Arc<AppState>) {
    let Some(res) = skiff_api::registry::find("", "v1", "namespaces") else {
        return tracing::error!("namespace cache: namespaces not registered");
    };
    let prefix = res.key_prefix();
    crate::follow::follow(&st.store, "namespace cache", &prefix, |change| {
        st.namespaces.apply(&prefix, change)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_active_namespaces_skip_the_store() {
        let c = Namespaces::default();
        let p = "/registry/namespaces/";
        c.apply(
            p,
            Change::Reset {
                objects: vec![
                    ("/registry/namespaces/a", json!({"metadata": {"name": "a"}})),
                    (
                        "/registry/namespaces/t",
                        json!({"metadata": {"name": "t", "deletionTimestamp": "2026-01-01T00:00:00Z"}}),
                    ),
                ],
                revision: 5,
            },
        );
        assert_eq!(c.known_active("a"), Some(true));
        assert_eq!(c.known_active("t"), None, "terminating: the store decides");
        assert_eq!(c.known_active("new"), None, "unknown: the store decides");
        c.apply(
            p,
            Change::Put {
                key: "/registry/namespaces/a",
                object: json!({"metadata": {"name": "a", "deletionTimestamp": "x"}}),
                revision: 6,
            },
        );
        assert_eq!(c.known_active("a"), None);
        c.note("new", Some(&json!({"metadata": {"name": "new"}})));
        assert_eq!(c.known_active("new"), Some(true));
        c.apply(
            p,
            Change::Delete {
                key: "/registry/namespaces/new",
                revision: 7,
            },
        );
        assert_eq!(c.known_active("new"), None);
    }
}
