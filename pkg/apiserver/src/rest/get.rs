//! GET of one object.

use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::objects::from_kv;
use crate::request;
use crate::state::AppState;
use serde_json::Value;
use skiff_api::registry::ResourceInfo;

/// GET of one object.
pub async fn get_object(
    st: &AppState,
    res: &'static ResourceInfo,
    ns: Option<&str>,
    name: &str,
) -> ApiResult<Value> {
    let key = request::object_key(res, ns, name);
    match st.store.get(&key).await? {
        Some(kv) => from_kv(&kv).map(|o| convert::from_storage(res, o)),
        None => Err(ApiError::not_found(res.group, res.plural, name)),
    }
}
