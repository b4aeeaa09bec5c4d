//! The service accounts as pod admission sees them (upstream's ServiceAccount admission reads
//! an informer too, and looks an account up live when the informer does not hold it yet): a pod
//! create whose account the cache holds costs no store read; an unknown account is read from the
//! store, so one created a moment ago (through any server) is found.

use crate::follow::{Change, FromKv};
use crate::lenient::Lenient;
use crate::state::AppState;
use parking_lot::RwLock;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

/// What admission reads of a service account.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct AccountView {
    /// `automountServiceAccountToken` (absent, null or not a bool: unset).
    pub automount_service_account_token: Lenient<bool>,
}

impl FromKv for AccountView {
    fn from_kv(kv: &skiff_store::KeyValue) -> Option<Self> {
        serde_json::from_slice(&kv.value).ok()
    }
}

/// `<namespace>/<name>` → the account's automount setting.
#[derive(Default)]
pub struct ServiceAccounts {
    accounts: RwLock<HashMap<String, Option<bool>>>,
}

impl ServiceAccounts {
    /// `Some(automount)` for an account the cache holds, `None` when the store must say.
    pub fn get(&self, ns: &str, name: &str) -> Option<Option<bool>> {
        self.accounts.read().get(&format!("{ns}/{name}")).copied()
    }

    fn apply(&self, prefix: &str, change: Change<'_, AccountView>) {
        let id = |key: &str| key.strip_prefix(prefix).unwrap_or(key).to_string();
        let automount = |a: &AccountView| a.automount_service_account_token.get().copied();
        let mut m = self.accounts.write();
        match change {
            Change::Reset { objects, .. } => {
                *m = objects
                    .into_iter()
                    .map(|(k, a)| (id(k), automount(&a)))
                    .collect();
            }
            Change::Put { key, object, .. } => {
                m.insert(id(key), automount(&object));
            }
            Change::Delete { key, .. } => {
                m.remove(&id(key));
            }
        }
    }
}

/// Follows the service accounts for as long as the server runs.
pub async fn run_service_account_watch(st: Arc<AppState>) {
    let Some(res) = skiff_api::registry::find("", "v1", "serviceaccounts") else {
        return tracing::error!("service account cache: serviceaccounts not registered");
    };
    let prefix = res.key_prefix();
    crate::follow::follow(&st.store, "service account cache", &prefix, |change| {
        st.service_accounts.apply(&prefix, change)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(json: &str) -> AccountView {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn automount_is_read_leniently() {
        let on = r#"{"metadata":{"name":"a"},"automountServiceAccountToken":true}"#;
        assert_eq!(view(on).automount_service_account_token.get(), Some(&true));
        let off = r#"{"automountServiceAccountToken":false,"secrets":[{"name":"x"}]}"#;
        assert_eq!(
            view(off).automount_service_account_token.get(),
            Some(&false)
        );
        for unset in [
            r#"{"metadata":{"name":"a"}}"#,
            r#"{"automountServiceAccountToken":null}"#,
            r#"{"automountServiceAccountToken":"yes"}"#,
            r#"{"automountServiceAccountToken":{"a":[1,2]}}"#,
        ] {
            assert_eq!(
                view(unset).automount_service_account_token.get(),
                None,
                "{unset}"
            );
        }
    }

    #[test]
    fn cache_follows_puts_and_deletes() {
        let c = ServiceAccounts::default();
        let p = "/registry/serviceaccounts/";
        c.apply(
            p,
            Change::Reset {
                objects: vec![
                    ("/registry/serviceaccounts/d/default", view("{}")),
                    (
                        "/registry/serviceaccounts/d/off",
                        view(r#"{"automountServiceAccountToken":false}"#),
                    ),
                ],
                revision: 3,
            },
        );
        assert_eq!(c.get("d", "default"), Some(None));
        assert_eq!(c.get("d", "off"), Some(Some(false)));
        assert_eq!(c.get("d", "new"), None, "unknown: the store decides");
        assert_eq!(c.get("e", "default"), None);
        c.apply(
            p,
            Change::Put {
                key: "/registry/serviceaccounts/d/default",
                object: view(r#"{"automountServiceAccountToken":true}"#),
                revision: 4,
            },
        );
        assert_eq!(c.get("d", "default"), Some(Some(true)));
        c.apply(
            p,
            Change::Delete {
                key: "/registry/serviceaccounts/d/off",
                revision: 5,
            },
        );
        assert_eq!(c.get("d", "off"), None);
    }
}
