//! The one implementation of each object matcher the API server, the controllers and the
//! scheduler share: label requirements and selectors (`labels`), taints against tolerations
//! (`taints`) and node selectors / required node affinity (`affinity`).

pub mod affinity;
pub mod labels;
pub mod taints;
