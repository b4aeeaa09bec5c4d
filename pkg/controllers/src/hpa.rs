//! The HorizontalPodAutoscaler controller (upstream's `podautoscaler` package): every 15 s per
//! HPA it reads the target's scale subresource, the pods its selector names (shared informer)
//! and their usage from the metrics API the server serves (`metrics.k8s.io/v1beta1`), computes
//! the desired replicas with upstream's replica calculator (`desired = ceil(ratio * pods)`,
//! tolerance 0.1, unready and missing pods handled conservatively), stabilizes and rate-limits
//! it (without `behavior`: the 300 s scale-down window and the `max(2x, 4)` scale-up limit;
//! with it: the stabilization windows and policies), writes the scale subresource, and reports
//! `AbleToScale`, `ScalingActive` and `ScalingLimited` conditions and events as upstream does.
//! Resource and ContainerResource metrics are supported; Pods, Object and External metrics need
//! a custom or external metrics API, which skiff does not serve (reported as such).

use crate::controller::{Action, Controller};
use crate::events::Recorder;
use crate::informer::{Change, Factory, Store};
use crate::util::{key_of, ObjectKey};
use chrono::{DateTime, Utc};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use serde_json::{json, Value};
use skiff_api::selector::LabelSelector;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often each HPA is looked at (`--horizontal-pod-autoscaler-sync-period`).
pub const SYNC_PERIOD: Duration = Duration::from_secs(15);
/// Ratios this close to 1.0 change nothing (`--horizontal-pod-autoscaler-tolerance`).
pub const TOLERANCE: f64 = 0.1;
/// The scale-down stabilization window without `behavior`
/// (`--horizontal-pod-autoscaler-downscale-stabilization`).
pub const DOWNSCALE_STABILIZATION: i64 = 300;
/// A pod this young may still be initializing its CPU (`--horizontal-pod-autoscaler-cpu-initialization-period`).
pub const CPU_INITIALIZATION_PERIOD: i64 = 300;
/// Readiness changes this soon after start are the initial one
/// (`--horizontal-pod-autoscaler-initial-readiness-delay`).
pub const INITIAL_READINESS_DELAY: i64 = 30;

/// What the calculator needs to know about one pod of the target.
#[derive(Debug, Clone, PartialEq)]
pub struct PodSample {
    pub name: String,
    /// Pending pods count as unready; Failed or deleting pods are ignored.
    pub phase: String,
    pub deleting: bool,
    pub start_time: Option<DateTime<Utc>>,
    /// The Ready condition: (status is True, lastTransitionTime).
    pub ready: Option<(bool, DateTime<Utc>)>,
    /// Sum of the containers' requests of the resource (milli-units); `None` when a container
    /// has none (utilization cannot be computed then).
    pub request: Option<i64>,
    /// Usage from the metrics API (milli-units), with the sample's timestamp and window.
    pub usage: Option<(i64, DateTime<Utc>, i64)>,
}

/// A metric target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Average utilization, percent of the pods' requests.
    Utilization(i64),
    /// Average value per pod (milli-units).
    AverageValue(i64),
}

/// The calculator's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proposal {
    pub replicas: i32,
    /// Current average utilization (percent), for utilization targets.
    pub utilization: Option<i64>,
    /// Current average value per pod (milli-units).
    pub average: i64,
}

#[derive(Default)]
struct Groups {
    ready: usize,
    unready: Vec<usize>,
    missing: Vec<usize>,
    /// index → usage, only for ready pods with a sample
    metrics: HashMap<usize, i64>,
}

/// Upstream's `groupPods`: which samples count.
fn group_pods(pods: &[PodSample], cpu: bool, now: DateTime<Utc>) -> Groups {
    let mut g = Groups::default();
    for (i, p) in pods.iter().enumerate() {
        if p.deleting || p.phase == "Failed" {
            continue;
        }
        if p.phase == "Pending" {
            g.unready.push(i);
            continue;
        }
        let Some((usage, ts, window)) = p.usage else {
            g.missing.push(i);
            continue;
        };
        if cpu {
            let unready = match (p.ready, p.start_time) {
                (Some((ready, transition)), Some(start)) => {
                    if start + chrono::Duration::seconds(CPU_INITIALIZATION_PERIOD) > now {
                        !ready || ts < transition + chrono::Duration::seconds(window)
                    } else {
                        !ready
                            && start + chrono::Duration::seconds(INITIAL_READINESS_DELAY)
                                > transition
                    }
                }
                _ => true,
            };
            if unready {
                g.unready.push(i);
                continue;
            }
        }
        g.ready += 1;
        g.metrics.insert(i, usage);
    }
    g
}

/// (usage ratio, utilization %, average milli) of `metrics` against the target.
fn ratio(
    pods: &[PodSample],
    metrics: &HashMap<usize, i64>,
    target: Target,
) -> Result<(f64, Option<i64>, i64), String> {
    let total: i64 = metrics.values().sum();
    let average = total / (metrics.len().max(1) as i64);
    match target {
        Target::Utilization(t) => {
            let mut used = 0i64;
            let mut requested = 0i64;
            for (i, u) in metrics {
                if let Some(r) = pods[*i].request {
                    used += u;
                    requested += r;
                }
            }
            if requested == 0 {
                return Err("no metrics returned matched known pods".into());
            }
            let utilization = used * 100 / requested;
            Ok((utilization as f64 / t as f64, Some(utilization), average))
        }
        Target::AverageValue(t) => Ok((average as f64 / t as f64, None, average)),
    }
}

/// Upstream's replica calculator for a resource metric (`GetResourceReplicas` and, for
/// average values, `GetRawResourceReplicas`): the desired replica count for `current`
/// replicas. `cpu` turns on the CPU readiness rules.
pub fn resource_replicas(
    current: i32,
    target: Target,
    pods: &[PodSample],
    cpu: bool,
    now: DateTime<Utc>,
) -> Result<Proposal, String> {
    if pods.is_empty() {
        return Err("no pods returned by selector while calculating replica count".into());
    }
    let g = group_pods(pods, cpu, now);
    if g.metrics.is_empty() {
        return Err("did not receive metrics for targeted pods (pods might be unready)".into());
    }
    if let Target::Utilization(_) = target {
        if let Some(p) = pods.iter().find(|p| p.request.is_none()) {
            return Err(format!(
                "missing request for {} in a container of Pod {}",
                if cpu { "cpu" } else { "the resource" },
                p.name
            ));
        }
    }
    let (usage_ratio, utilization, average) = ratio(pods, &g.metrics, target)?;
    let answer = |replicas: i32| Proposal {
        replicas,
        utilization,
        average,
    };
    let scale_up_with_unready = !g.unready.is_empty() && usage_ratio > 1.0;
    if !scale_up_with_unready && g.missing.is_empty() {
        if (1.0 - usage_ratio).abs() <= TOLERANCE {
            return Ok(answer(current));
        }
        return Ok(answer((usage_ratio * g.ready as f64).ceil() as i32));
    }
    let mut metrics = g.metrics.clone();
    if !g.missing.is_empty() {
        for &i in &g.missing {
            let fill = if usage_ratio < 1.0 {
                // Scaling down: a pod without a sample counts as using its share in full.
                match target {
                    Target::Utilization(t) => pods[i].request.unwrap_or(0) * t.max(100) / 100,
                    Target::AverageValue(t) => t,
                }
            } else {
                // Scaling up: as using nothing.
                0
            };
            metrics.insert(i, fill);
        }
    }
    if scale_up_with_unready {
        for &i in &g.unready {
            metrics.insert(i, 0);
        }
    }
    let (new_ratio, _, _) = ratio(pods, &metrics, target)?;
    if (1.0 - new_ratio).abs() <= TOLERANCE
        || (usage_ratio < 1.0 && new_ratio > 1.0)
        || (usage_ratio > 1.0 && new_ratio < 1.0)
    {
        return Ok(answer(current));
    }
    let replicas = (new_ratio * metrics.len() as f64).ceil() as i32;
    if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
        return Ok(answer(current));
    }
    Ok(answer(replicas))
}

/// One `HPAScalingPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub percent: bool,
    pub value: i32,
    pub period: i64,
}

/// One direction of `behavior` (`HPAScalingRules`), defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub window: i64,
    /// `Max`, `Min` or `Disabled`.
    pub select: String,
    pub policies: Vec<Policy>,
}

impl Rules {
    fn from_json(v: &Value, default_window: i64, up: bool) -> Rules {
        let policies = v["policies"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .map(|p| Policy {
                        percent: p["type"] == "Percent",
                        value: p["value"].as_i64().unwrap_or(0) as i32,
                        period: p["periodSeconds"].as_i64().unwrap_or(15),
                    })
                    .collect()
            })
            .unwrap_or_else(|| {
                if up {
                    vec![
                        Policy {
                            percent: false,
                            value: 4,
                            period: 15,
                        },
                        Policy {
                            percent: true,
                            value: 100,
                            period: 15,
                        },
                    ]
                } else {
                    vec![Policy {
                        percent: true,
                        value: 100,
                        period: 15,
                    }]
                }
            });
        Rules {
            window: v["stabilizationWindowSeconds"]
                .as_i64()
                .unwrap_or(default_window),
            select: v["selectPolicy"].as_str().unwrap_or("Max").to_string(),
            policies,
        }
    }
}

/// A past rescale: when, and by how many replicas (always positive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaleEvent {
    pub at: DateTime<Utc>,
    pub change: i32,
}

/// What the controller remembers per HPA between syncs (upstream keeps it in memory too).
#[derive(Debug, Clone, Default)]
pub struct History {
    /// (when, recommendation) of past syncs.
    pub recommendations: Vec<(DateTime<Utc>, i32)>,
    pub scale_up: Vec<ScaleEvent>,
    pub scale_down: Vec<ScaleEvent>,
}

fn changed_in_period(events: &[ScaleEvent], period: i64, now: DateTime<Utc>) -> i32 {
    let cutoff = now - chrono::Duration::seconds(period);
    events
        .iter()
        .filter(|e| e.at > cutoff)
        .map(|e| e.change)
        .sum()
}

/// Upstream's `calculateScaleUpLimitWithScalingRules`.
pub fn scale_up_limit(
    current: i32,
    events: &[ScaleEvent],
    rules: &Rules,
    now: DateTime<Utc>,
) -> i32 {
    policy_limit(current, events, rules, now, true)
}

/// Upstream's `calculateScaleDownLimitWithBehaviors`.
pub fn scale_down_limit(
    current: i32,
    events: &[ScaleEvent],
    rules: &Rules,
    now: DateTime<Utc>,
) -> i32 {
    policy_limit(current, events, rules, now, false)
}

/// The replica limit the rules' policies allow in one direction: each policy proposes a bound
/// from the replicas at the start of its period (scale-ups round up, scale-downs truncate, as
/// upstream); `selectPolicy: Min` takes the proposal that changes least, `Max` the one that
/// changes most, `Disabled` keeps `current`.
fn policy_limit(
    current: i32,
    events: &[ScaleEvent],
    rules: &Rules,
    now: DateTime<Utc>,
    up: bool,
) -> i32 {
    if rules.select == "Disabled" {
        return current;
    }
    // Least change: the lowest bound going up, the highest going down.
    let lowest = (rules.select == "Min") == up;
    let mut result = if lowest { i32::MAX } else { i32::MIN };
    for p in &rules.policies {
        let changed = changed_in_period(events, p.period, now);
        let proposed = if up {
            let start = current - changed;
            if p.percent {
                (start as f64 * (1.0 + p.value as f64 / 100.0)).ceil() as i32
            } else {
                start + p.value
            }
        } else {
            let start = current + changed;
            if p.percent {
                (start as f64 * (1.0 - p.value as f64 / 100.0)) as i32
            } else {
                start - p.value
            }
        };
        result = if lowest {
            result.min(proposed)
        } else {
            result.max(proposed)
        };
    }
    result
}

/// A condition to set: (type, status, reason, message).
pub type Cond = (&'static str, bool, &'static str, String);

/// The normalized decision: replicas plus the AbleToScale and ScalingLimited conditions.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    pub replicas: i32,
    pub able: Cond,
    pub limited: Cond,
}

/// Stabilizes and limits a proposal (`normalizeDesiredReplicas` without `behavior`,
/// `normalizeDesiredReplicasWithBehaviors` with it), recording it in `history`.
pub fn normalize(
    history: &mut History,
    behavior: Option<&Value>,
    current: i32,
    proposed: i32,
    min: i32,
    max: i32,
    now: DateTime<Utc>,
) -> Normalized {
    let (up, down) = match behavior {
        Some(b) => (
            Some(Rules::from_json(&b["scaleUp"], 0, true)),
            Rules::from_json(&b["scaleDown"], DOWNSCALE_STABILIZATION, false),
        ),
        None => (
            None,
            Rules::from_json(&Value::Null, DOWNSCALE_STABILIZATION, false),
        ),
    };
    // Stabilize: the highest recommendation within the down window (and, with behavior, the
    // lowest within the up window).
    let up_window = up.as_ref().map_or(0, |u| u.window);
    let up_cut = now - chrono::Duration::seconds(up_window);
    let down_cut = now - chrono::Duration::seconds(down.window);
    let mut up_rec = proposed;
    let mut down_rec = proposed;
    for (at, r) in &history.recommendations {
        if up.is_some() && *at > up_cut {
            up_rec = up_rec.min(*r);
        }
        if *at > down_cut {
            down_rec = down_rec.max(*r);
        }
    }
    let stabilized = if up.is_some() {
        current.max(up_rec).min(down_rec)
    } else {
        down_rec
    };
    let keep = up_window.max(down.window);
    history
        .recommendations
        .retain(|(at, _)| *at > now - chrono::Duration::seconds(keep));
    history.recommendations.push((now, proposed));
    let able = if stabilized < proposed {
        ("AbleToScale", true, "ScaleUpStabilized", "recent recommendations were lower than current one, applying the lowest recent recommendation".to_string())
    } else if stabilized > proposed {
        ("AbleToScale", true, "ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest recent recommendation".to_string())
    } else {
        (
            "AbleToScale",
            true,
            "ReadyForNewScale",
            "recommended size matches current size".to_string(),
        )
    };
    let too_many = (
        "TooManyReplicas",
        "the desired replica count is more than the maximum replica count",
    );
    let up_limit = (
        "ScaleUpLimit",
        "the desired replica count is increasing faster than the maximum scale rate",
    );
    let too_few = (
        "TooFewReplicas",
        "the desired replica count is less than the minimum replica count",
    );
    let within = (
        "DesiredWithinRange",
        "the desired count is within the acceptable range",
    );
    let (replicas, (reason, message)) = match &up {
        None => {
            let limit = (current * 2).max(4);
            let (max_allowed, why) = if max > limit {
                (limit, up_limit)
            } else {
                (max, too_many)
            };
            if stabilized < min {
                (min, too_few)
            } else if stabilized > max_allowed {
                (max_allowed, why)
            } else {
                (stabilized, within)
            }
        }
        Some(up) => {
            if stabilized > current {
                let limit = scale_up_limit(current, &history.scale_up, up, now).max(current);
                let (max_allowed, why) = if max > limit {
                    (limit, up_limit)
                } else {
                    (max, too_many)
                };
                if stabilized > max_allowed {
                    (max_allowed, why)
                } else {
                    (stabilized, within)
                }
            } else if stabilized < current {
                let limit = scale_down_limit(current, &history.scale_down, &down, now).min(current);
                let (min_allowed, why) = if min < limit {
                    (limit, ("ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate"))
                } else {
                    (min, too_few)
                };
                if stabilized < min_allowed {
                    (min_allowed, why)
                } else {
                    (stabilized, within)
                }
            } else {
                (stabilized, within)
            }
        }
    };
    let limited = (
        "ScalingLimited",
        replicas != stabilized,
        reason,
        message.to_string(),
    );
    Normalized {
        replicas,
        able,
        limited,
    }
}

/// Records a rescale in the history (upstream's `storeScaleEvent`), forgetting events older
/// than the longest policy period.
pub fn record_scale(history: &mut History, from: i32, to: i32, now: DateTime<Utc>) {
    let keep = |events: &mut Vec<ScaleEvent>| {
        events.retain(|e| e.at > now - chrono::Duration::seconds(1800));
    };
    keep(&mut history.scale_up);
    keep(&mut history.scale_down);
    if to > from {
        history.scale_up.push(ScaleEvent {
            at: now,
            change: to - from,
        });
    } else if to < from {
        history.scale_down.push(ScaleEvent {
            at: now,
            change: from - to,
        });
    }
}

/// Sets a condition in a status's list, keeping `lastTransitionTime` when the status is the same.
pub fn set_condition(conditions: &mut Vec<Value>, c: &Cond, now: DateTime<Utc>) {
    let status = if c.1 { "True" } else { "False" };
    let ts = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    if let Some(existing) = conditions.iter_mut().find(|x| x["type"] == c.0) {
        if existing["status"] != status {
            existing["lastTransitionTime"] = json!(ts);
        }
        existing["status"] = json!(status);
        existing["reason"] = json!(c.2);
        existing["message"] = json!(c.3);
    } else {
        conditions.push(
            json!({"type": c.0, "status": status, "lastTransitionTime": ts,
            "reason": c.2, "message": c.3}),
        );
    }
}

/// A milli-quantity as the API prints it (`250m`, `1`, `64Mi` stays decimal: `67108864`).
pub fn format_milli(milli: i64) -> String {
    if milli % 1000 != 0 {
        return format!("{milli}m");
    }
    let mut v = milli / 1000;
    if v == 0 {
        return "0".into();
    }
    for suffix in ["", "k", "M", "G", "T", "P", "E"] {
        if v % 1000 != 0 || suffix == "E" {
            return format!("{v}{suffix}");
        }
        v /= 1000;
    }
    unreachable!("the loop returns at the last suffix")
}

fn milli(q: &str) -> Option<i64> {
    skiff_api::validation::parse_quantity(q).map(|v| (v * 1000.0).round() as i64)
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()?.parse().ok()
}

/// The samples for `pods` from the metrics API's PodMetrics, for `resource` (and one
/// container when `container` is given).
pub fn samples(
    pods: &[Value],
    metrics: &[Value],
    resource: &str,
    container: Option<&str>,
) -> Vec<PodSample> {
    pods.iter()
        .map(|p| {
            let name = p["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let mut request = Some(0i64);
            for c in p["spec"]["containers"].as_array().into_iter().flatten() {
                if container.is_some_and(|want| c["name"] != want) {
                    continue;
                }
                request = match (
                    request,
                    c["resources"]["requests"][resource]
                        .as_str()
                        .and_then(milli),
                ) {
                    (Some(sum), Some(r)) => Some(sum + r),
                    _ => None,
                };
            }
            let ready = p["status"]["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
                .map(|c| {
                    (
                        c["status"] == "True",
                        time(&c["lastTransitionTime"]).unwrap_or_default(),
                    )
                });
            let usage = metrics
                .iter()
                .find(|m| m["metadata"]["name"] == name.as_str())
                .and_then(|m| {
                    let mut sum = 0;
                    for c in m["containers"].as_array()? {
                        if container.is_some_and(|want| c["name"] != want) {
                            continue;
                        }
                        sum += c["usage"][resource].as_str().and_then(milli)?;
                    }
                    let window = m["window"]
                        .as_str()
                        .and_then(|w| w.strip_suffix('s'))
                        .and_then(|w| w.parse::<f64>().ok())
                        .unwrap_or(15.0) as i64;
                    Some((sum, time(&m["timestamp"]).unwrap_or_default(), window))
                });
            PodSample {
                name,
                phase: p["status"]["phase"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                deleting: p["metadata"]["deletionTimestamp"].is_string(),
                start_time: time(&p["status"]["startTime"]),
                ready,
                request,
                usage,
            }
        })
        .collect()
}

struct Ctx {
    client: kube::Client,
    pods: Arc<Store<Pod>>,
    recorder: Recorder,
    history: Mutex<HashMap<ObjectKey, History>>,
    kinds: Mutex<HashMap<(String, String), ApiResource>>,
}

/// Errors of one sync (the status says the rest).
#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error("{0}")]
    Kube(#[from] kube::Error),
}

/// Registers the controller.
pub fn start(factory: &Factory, _cfg: Arc<crate::Config>) {
    let ctx = Arc::new(Ctx {
        client: factory.client(),
        pods: factory.store::<Pod>(),
        recorder: Recorder::new(factory.client(), "horizontal-pod-autoscaler"),
        history: Mutex::new(HashMap::new()),
        kinds: Mutex::new(HashMap::new()),
    });
    Controller::new(factory, "horizontal-pod-autoscaler")
        // Every HPA requeues itself each SYNC_PERIOD; a change queues it early unless only its
        // status changed (the controller's own writes), as upstream's rate-limited updates.
        .watches::<HorizontalPodAutoscaler, _>(|c| match c {
            Change::Applied {
                old: Some(old),
                new,
            } if old.spec == new.spec => None,
            c => Some(key_of(c.object().as_ref())),
        })
        .reads::<Pod>()
        .workers(2)
        .run(ctx, reconcile);
}

const METRICS_AR: fn() -> ApiResource = || ApiResource {
    group: "metrics.k8s.io".into(),
    version: "v1beta1".into(),
    api_version: "metrics.k8s.io/v1beta1".into(),
    kind: "PodMetrics".into(),
    plural: "pods".into(),
};

/// The HPA's target API and its scale subresource (`Err`: why it cannot be read, for the event).
async fn target_scale(
    ctx: &Ctx,
    namespace: &str,
    target_ref: &Value,
) -> Result<(Api<DynamicObject>, k8s_openapi::api::autoscaling::v1::Scale), String> {
    let ar = resolve(
        ctx,
        target_ref["apiVersion"].as_str().unwrap_or("apps/v1"),
        target_ref["kind"].as_str().unwrap_or_default(),
    )
    .await?;
    let api = Api::<DynamicObject>::namespaced_with(ctx.client.clone(), namespace, &ar);
    let scale = api
        .get_scale(target_ref["name"].as_str().unwrap_or_default())
        .await
        .map_err(|e| crate::util::api_message(&e))?;
    Ok((api, scale))
}

async fn resolve(ctx: &Ctx, api_version: &str, kind: &str) -> Result<ApiResource, String> {
    let key = (api_version.to_string(), kind.to_string());
    if let Some(ar) = ctx.kinds.lock().ok().and_then(|m| m.get(&key).cloned()) {
        return Ok(ar);
    }
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let (ar, _) =
        kube::discovery::pinned_kind(&ctx.client, &GroupVersionKind::gvk(group, version, kind))
            .await
            .map_err(|e| format!("no kind {kind} in {api_version}: {e}"))?;
    if let Ok(mut m) = ctx.kinds.lock() {
        m.insert(key, ar.clone());
    }
    Ok(ar)
}

/// One metric's result: (proposal, status entry, description) or the failure
/// (condition reason, message).
type MetricResult = Result<(i32, Value, String), (&'static str, String)>;

fn compute_metric(
    spec: &Value,
    current: i32,
    pods: &[Value],
    pod_metrics: &Result<Vec<Value>, String>,
    now: DateTime<Utc>,
) -> MetricResult {
    let t = spec["type"].as_str().unwrap_or_default();
    let key = match t {
        "Resource" => "resource",
        "ContainerResource" => "containerResource",
        "Pods" => return Err(("FailedGetPodsMetric", format!("unable to get metric {}: the custom metrics API (custom.metrics.k8s.io) is not served", spec["pods"]["metric"]["name"].as_str().unwrap_or_default()))),
        "Object" => return Err(("FailedGetObjectMetric", format!("unable to get metric {}: the custom metrics API (custom.metrics.k8s.io) is not served", spec["object"]["metric"]["name"].as_str().unwrap_or_default()))),
        "External" => return Err(("FailedGetExternalMetric", format!("unable to get external metric {}: the external metrics API (external.metrics.k8s.io) is not served", spec["external"]["metric"]["name"].as_str().unwrap_or_default()))),
        other => return Err(("InvalidMetricSourceType", format!("unknown metric source type {other:?}"))),
    };
    let reason = if t == "Resource" {
        "FailedGetResourceMetric"
    } else {
        "FailedGetContainerResourceMetric"
    };
    let s = &spec[key];
    let resource = s["name"].as_str().unwrap_or_default();
    let container = s["container"].as_str();
    let target = &s["target"];
    let target = match (target["averageUtilization"].as_i64(), target["averageValue"].as_str().and_then(milli)) {
        (Some(u), _) => Target::Utilization(u),
        (None, Some(v)) => Target::AverageValue(v),
        _ => {
            return Err((reason, format!("invalid {resource} metric source: neither a utilization target nor a value target was set")))
        }
    };
    let what = match target {
        Target::Utilization(_) => format!("{resource} utilization"),
        Target::AverageValue(_) => format!("{resource} usage"),
    };
    let metrics = pod_metrics.as_ref().map_err(|e| {
        (
            reason,
            format!("failed to get {what}: unable to get metrics for resource {resource}: {e}"),
        )
    })?;
    if metrics.is_empty() {
        return Err((reason, format!("failed to get {what}: unable to get metrics for resource {resource}: no metrics returned from resource metrics API")));
    }
    let samples = samples(pods, metrics, resource, container);
    let p = resource_replicas(current, target, &samples, resource == "cpu", now)
        .map_err(|e| (reason, format!("failed to get {what}: {e}")))?;
    let mut cur = serde_json::Map::new();
    if let Some(u) = p.utilization {
        cur.insert("averageUtilization".into(), json!(u));
    }
    cur.insert("averageValue".into(), json!(format_milli(p.average)));
    let mut st = json!({"name": resource, "current": cur});
    if let Some(c) = container {
        st["container"] = json!(c);
    }
    let status = json!({"type": t, key: st});
    let desc = match (t, target) {
        ("Resource", Target::Utilization(_)) => {
            format!("{resource} resource utilization (percentage of request)")
        }
        ("Resource", _) => format!("{resource} resource"),
        (_, Target::Utilization(_)) => {
            format!("{resource} container resource utilization (percentage of request)")
        }
        _ => format!("{resource} container resource"),
    };
    Ok((p.replicas, status, desc))
}

async fn reconcile(ctx: Arc<Ctx>, key: ObjectKey) -> Result<Action, SyncError> {
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let hpa = match api.get_opt(&key.name).await? {
        Some(h) => h,
        None => {
            if let Ok(mut h) = ctx.history.lock() {
                h.remove(&key);
            }
            return Ok(Action::Done);
        }
    };
    let obj = serde_json::to_value(&hpa).unwrap_or_default();
    let now = Utc::now();
    let old_status = obj["status"].clone();
    let mut conditions: Vec<Value> = old_status["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let spec = &obj["spec"];
    let min = spec["minReplicas"].as_i64().unwrap_or(1) as i32;
    let max = spec["maxReplicas"].as_i64().unwrap_or(1) as i32;
    let target_ref = &spec["scaleTargetRef"];
    let reference = format!(
        "{}/{}",
        target_ref["kind"].as_str().unwrap_or_default(),
        target_ref["name"].as_str().unwrap_or_default()
    );
    let mut status = serde_json::Map::new();
    for k in [
        "currentReplicas",
        "desiredReplicas",
        "lastScaleTime",
        "currentMetrics",
    ] {
        if let Some(v) = old_status.get(k).filter(|v| !v.is_null()) {
            status.insert(k.into(), v.clone());
        }
    }
    if let Some(g) = hpa.metadata.generation {
        status.insert("observedGeneration".into(), json!(g));
    }

    let (scale_api, scale) = match target_scale(&ctx, &key.namespace, target_ref).await {
        Ok(s) => s,
        Err(e) => {
            let msg =
                format!("the HPA controller was unable to get the target's current scale: {e}");
            set_condition(
                &mut conditions,
                &("AbleToScale", false, "FailedGetScale", msg),
                now,
            );
            ctx.recorder
                .record(&hpa, "Warning", "FailedGetScale", &e)
                .await;
            finish(&ctx, &api, &key, &old_status, status, conditions).await?;
            return Ok(Action::RequeueAfter(SYNC_PERIOD));
        }
    };
    set_condition(
        &mut conditions,
        &(
            "AbleToScale",
            true,
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale".into(),
        ),
        now,
    );
    let spec_replicas = scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let current = scale.status.as_ref().map_or(0, |s| s.replicas);
    let selector = scale
        .status
        .as_ref()
        .and_then(|s| s.selector.clone())
        .unwrap_or_default();
    status.insert("currentReplicas".into(), json!(current));

    let mut desired = 0;
    let mut rescale_reason = String::new();
    let rescale;
    if spec_replicas == 0 && min != 0 {
        set_condition(
            &mut conditions,
            &(
                "ScalingActive",
                false,
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero".into(),
            ),
            now,
        );
        rescale = false;
    } else if current > max {
        rescale_reason = "Current number of replicas above Spec.MaxReplicas".into();
        desired = max;
        rescale = desired != current;
    } else if current < min {
        rescale_reason = "Current number of replicas below Spec.MinReplicas".into();
        desired = min;
        rescale = desired != current;
    } else {
        if selector.is_empty() {
            let msg = "the HPA target's scale is missing a selector".to_string();
            set_condition(
                &mut conditions,
                &("ScalingActive", false, "InvalidSelector", msg.clone()),
                now,
            );
            ctx.recorder
                .record(&hpa, "Warning", "SelectorRequired", "selector is required")
                .await;
            finish(&ctx, &api, &key, &old_status, status, conditions).await?;
            return Ok(Action::RequeueAfter(SYNC_PERIOD));
        }
        let sel = match LabelSelector::parse(&selector) {
            Ok(s) => s,
            Err(e) => {
                let msg = format!(
                    "couldn't convert selector into a corresponding internal selector object: {e}"
                );
                set_condition(
                    &mut conditions,
                    &("ScalingActive", false, "InvalidSelector", msg.clone()),
                    now,
                );
                ctx.recorder
                    .record(&hpa, "Warning", "InvalidSelector", &msg)
                    .await;
                finish(&ctx, &api, &key, &old_status, status, conditions).await?;
                return Ok(Action::RequeueAfter(SYNC_PERIOD));
            }
        };
        let pods: Vec<Value> = ctx
            .pods
            .list(&key.namespace)
            .iter()
            .filter_map(|p| serde_json::to_value(p.as_ref()).ok())
            .filter(|p| sel.matches(p["metadata"]["labels"].as_object()))
            .collect();
        let pod_metrics: Result<Vec<Value>, String> = Api::<DynamicObject>::namespaced_with(
            ctx.client.clone(),
            &key.namespace,
            &METRICS_AR(),
        )
        .list(&ListParams::default().labels(&selector))
        .await
        .map(|l| {
            l.items
                .into_iter()
                .filter_map(|o| serde_json::to_value(o).ok())
                .collect()
        })
        .map_err(|e| crate::util::api_message(&e));
        let mut statuses = Vec::new();
        let mut best: Option<(i32, String)> = None;
        let mut failure: Option<(&'static str, String)> = None;
        for m in spec["metrics"].as_array().into_iter().flatten() {
            match compute_metric(m, current, &pods, &pod_metrics, now) {
                Ok((r, st, desc)) => {
                    statuses.push(st);
                    if best.as_ref().is_none_or(|(b, _)| r > *b) {
                        best = Some((r, desc));
                    }
                }
                Err(f) => {
                    statuses.push(json!({"type": ""}));
                    if failure.is_none() {
                        failure = Some(f);
                    }
                }
            }
        }
        let statuses: Vec<Value> = statuses.into_iter().filter(|s| s["type"] != "").collect();
        if !statuses.is_empty() || status.contains_key("currentMetrics") {
            status.insert("currentMetrics".into(), json!(statuses));
        }
        if let Some((reason, msg)) = &failure {
            ctx.recorder.record(&hpa, "Warning", reason, msg).await;
        }
        let Some((proposal, desc)) = best else {
            let (reason, msg) =
                failure.unwrap_or(("InvalidMetricSourceType", "no metrics to scale on".into()));
            set_condition(
                &mut conditions,
                &(
                    "ScalingActive",
                    false,
                    reason,
                    format!("the HPA was unable to compute the replica count: {msg}"),
                ),
                now,
            );
            ctx.recorder
                .record(
                    &hpa,
                    "Warning",
                    "FailedComputeMetricsReplicas",
                    &format!(
                        "invalid metrics ({} invalid out of {}), first error is: {msg}",
                        spec["metrics"].as_array().map_or(0, Vec::len),
                        spec["metrics"].as_array().map_or(0, Vec::len)
                    ),
                )
                .await;
            finish(&ctx, &api, &key, &old_status, status, conditions).await?;
            return Ok(Action::RequeueAfter(SYNC_PERIOD));
        };
        set_condition(
            &mut conditions,
            &(
                "ScalingActive",
                true,
                "ValidMetricFound",
                format!("the HPA was able to successfully calculate a replica count from {desc}"),
            ),
            now,
        );
        if proposal > current {
            rescale_reason = format!("{desc} above target");
        } else if proposal < current {
            rescale_reason = "All metrics below target".into();
        }
        let behavior = spec.get("behavior").filter(|b| b.is_object());
        let n = {
            let mut hist = ctx.history.lock().unwrap_or_else(|p| p.into_inner());
            let h = hist.entry(key.clone()).or_default();
            normalize(h, behavior, current, proposal, min, max, now)
        };
        set_condition(&mut conditions, &n.able, now);
        set_condition(&mut conditions, &n.limited, now);
        desired = n.replicas;
        rescale = desired != current;
    }
    if rescale {
        let patch = json!({"spec": {"replicas": desired}});
        match scale_api
            .patch_scale(
                target_ref["name"].as_str().unwrap_or_default(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => {
                set_condition(
                    &mut conditions,
                    &(
                        "AbleToScale",
                        true,
                        "SucceededRescale",
                        format!(
                            "the HPA controller was able to update the target scale to {desired}"
                        ),
                    ),
                    now,
                );
                ctx.recorder
                    .record(
                        &hpa,
                        "Normal",
                        "SuccessfulRescale",
                        &format!("New size: {desired}; reason: {rescale_reason}"),
                    )
                    .await;
                if let Ok(mut hist) = ctx.history.lock() {
                    record_scale(hist.entry(key.clone()).or_default(), current, desired, now);
                }
                status.insert(
                    "lastScaleTime".into(),
                    json!(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                );
                tracing::info!(hpa = %key, reference, from = current, to = desired, reason = %rescale_reason, "rescaled");
            }
            Err(e) => {
                let e = crate::util::api_message(&e);
                ctx.recorder
                    .record(
                        &hpa,
                        "Warning",
                        "FailedRescale",
                        &format!("New size: {desired}; reason: {rescale_reason}; error: {e}"),
                    )
                    .await;
                set_condition(
                    &mut conditions,
                    &(
                        "AbleToScale",
                        false,
                        "FailedUpdateScale",
                        format!("the HPA controller was unable to update the target scale: {e}"),
                    ),
                    now,
                );
                status.insert("desiredReplicas".into(), json!(desired));
                finish(&ctx, &api, &key, &old_status, status, conditions).await?;
                return Ok(Action::RequeueAfter(SYNC_PERIOD));
            }
        }
    }
    status.insert(
        "desiredReplicas".into(),
        json!(if rescale || desired != 0 {
            desired
        } else {
            current
        }),
    );
    finish(&ctx, &api, &key, &old_status, status, conditions).await?;
    Ok(Action::RequeueAfter(SYNC_PERIOD))
}

/// Writes the status when it changed.
async fn finish(
    _ctx: &Ctx,
    api: &Api<HorizontalPodAutoscaler>,
    key: &ObjectKey,
    old: &Value,
    mut status: serde_json::Map<String, Value>,
    conditions: Vec<Value>,
) -> Result<(), SyncError> {
    status.insert("conditions".into(), Value::Array(conditions));
    let new = Value::Object(status);
    if &new == old {
        return Ok(());
    }
    api.patch_status(
        &key.name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": new})),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    /// A running, long-Ready pod requesting `request` milli-CPU and using `usage`.
    fn pod(name: &str, request: i64, usage: Option<i64>) -> PodSample {
        PodSample {
            name: name.into(),
            phase: "Running".into(),
            deleting: false,
            start_time: Some(t(-3600)),
            ready: Some((true, t(-3500))),
            request: Some(request),
            usage: usage.map(|u| (u, t(-10), 15)),
        }
    }

    fn calc(current: i32, target: Target, pods: &[PodSample]) -> Proposal {
        resource_replicas(current, target, pods, true, t(0)).unwrap()
    }

    // The cases below are upstream's replica_calculator_test.go scenarios, recomputed by hand.
    #[test]
    fn scale_up_and_down_on_cpu_utilization() {
        let pods = [
            pod("a", 1000, Some(300)),
            pod("b", 1000, Some(500)),
            pod("c", 1000, Some(700)),
        ];
        let p = calc(3, Target::Utilization(30), &pods);
        assert_eq!((p.replicas, p.utilization), (5, Some(50)));
        let pods: Vec<_> = [100, 300, 500, 250, 250]
            .iter()
            .enumerate()
            .map(|(i, u)| pod(&format!("p{i}"), 1000, Some(*u)))
            .collect();
        let p = calc(5, Target::Utilization(50), &pods);
        assert_eq!((p.replicas, p.utilization), (3, Some(28)));
    }

    #[test]
    fn within_tolerance_nothing_changes() {
        // The documented example: 200m against 100m doubles, 50m halves; 0.1 tolerance.
        let p = calc(
            2,
            Target::AverageValue(100),
            &[pod("a", 1000, Some(200)), pod("b", 1000, Some(200))],
        );
        assert_eq!(p.replicas, 4);
        let p = calc(
            2,
            Target::AverageValue(100),
            &[pod("a", 1000, Some(50)), pod("b", 1000, Some(50))],
        );
        assert_eq!(p.replicas, 1);
        let p = calc(
            2,
            Target::AverageValue(100),
            &[pod("a", 1000, Some(108)), pod("b", 1000, Some(108))],
        );
        assert_eq!(p.replicas, 2, "1.08 is within 0.1 of 1.0");
        let pods = [
            pod("a", 1000, Some(1050)),
            pod("b", 1000, Some(1050)),
            pod("c", 1000, Some(1050)),
        ];
        assert_eq!(calc(3, Target::Utilization(100), &pods).replicas, 3);
    }

    #[test]
    fn unready_pods_damp_a_scale_up() {
        let mut pods = vec![
            pod("a", 1000, Some(300)),
            pod("b", 1000, Some(500)),
            pod("c", 1000, Some(700)),
        ];
        pods[0].ready = Some((false, t(-3500)));
        pods[0].start_time = Some(t(-60)); // still initializing
        let p = calc(3, Target::Utilization(30), &pods);
        // Ready pods: 1200/2000 = 60%; with the unready one at 0: 1200/3000 = 40% → ceil(1.33*3).
        assert_eq!((p.replicas, p.utilization), (4, Some(60)));
        // A pending pod is unready too.
        pods[0] = pod("a", 1000, None);
        pods[0].phase = "Pending".into();
        assert_eq!(calc(3, Target::Utilization(30), &pods).replicas, 4);
    }

    #[test]
    fn missing_metrics_are_conservative() {
        // Scale down: the pod without a sample counts as at 100% of its request.
        let pods = [
            pod("a", 1000, Some(400)),
            pod("b", 1000, Some(95)),
            pod("c", 1000, None),
            pod("d", 1000, Some(305)),
        ];
        let p = calc(4, Target::Utilization(50), &pods);
        // Without c: 800/3000 = 26% (ratio 0.52); with c at 1000: 1800/4000 = 45% → ceil(0.9*4) = 4.
        assert_eq!((p.replicas, p.utilization), (4, Some(26)));
        // Scale up: the missing pod counts as 0.
        let pods = [
            pod("a", 1000, Some(900)),
            pod("b", 1000, Some(900)),
            pod("c", 1000, None),
        ];
        let p = calc(3, Target::Utilization(50), &pods);
        // 1800/2000 = 90% (1.8); with c at 0: 1800/3000 = 60% (1.2) → ceil(1.2*3) = 4.
        assert_eq!(p.replicas, 4);
        // A ratio that flips across 1.0 once filled in keeps the current count.
        let pods = [pod("a", 1000, Some(560)), pod("b", 1000, None)];
        assert_eq!(calc(2, Target::Utilization(50), &pods).replicas, 2);
    }

    #[test]
    fn errors_say_why() {
        let mut pods = [pod("a", 1000, Some(100))];
        pods[0].request = None;
        let e = resource_replicas(1, Target::Utilization(50), &pods, true, t(0)).unwrap_err();
        assert!(e.starts_with("missing request for cpu"), "{e}");
        let e = resource_replicas(
            1,
            Target::Utilization(50),
            &[pod("a", 1000, None)],
            true,
            t(0),
        )
        .unwrap_err();
        assert_eq!(
            e,
            "did not receive metrics for targeted pods (pods might be unready)"
        );
        let e = resource_replicas(1, Target::Utilization(50), &[], true, t(0)).unwrap_err();
        assert!(e.starts_with("no pods returned"), "{e}");
    }

    #[test]
    fn without_behavior_scale_down_is_stabilized_for_300s_and_up_limited() {
        let mut h = History::default();
        let n = normalize(&mut h, None, 5, 8, 1, 10, t(0));
        assert_eq!(n.replicas, 8);
        assert_eq!(n.able.2, "ReadyForNewScale");
        assert_eq!((n.limited.1, n.limited.2), (false, "DesiredWithinRange"));
        // A lower recommendation within 300 s: the highest recent one wins.
        let n = normalize(&mut h, None, 8, 3, 1, 10, t(60));
        assert_eq!((n.replicas, n.able.2), (8, "ScaleDownStabilized"));
        let n = normalize(&mut h, None, 8, 3, 1, 10, t(400));
        assert_eq!(n.replicas, 3, "the 8 is older than 300 s");
        // Scale-up limit max(2x, 4) and min/max.
        let mut h = History::default();
        let n = normalize(&mut h, None, 2, 20, 1, 50, t(0));
        assert_eq!(
            (n.replicas, n.limited.1, n.limited.2),
            (4, true, "ScaleUpLimit")
        );
        let n = normalize(&mut History::default(), None, 10, 30, 1, 15, t(0));
        assert_eq!((n.replicas, n.limited.2), (15, "TooManyReplicas"));
        let n = normalize(&mut History::default(), None, 3, 1, 2, 15, t(0));
        assert_eq!((n.replicas, n.limited.2), (2, "TooFewReplicas"));
    }

    #[test]
    fn behavior_policies_like_the_documented_example() {
        // scaleDown: 4 pods or 10% per 60 s, the larger change (selectPolicy Max), no window.
        let b = json!({"scaleDown": {"stabilizationWindowSeconds": 0, "policies": [
            {"type": "Pods", "value": 4, "periodSeconds": 60},
            {"type": "Percent", "value": 10, "periodSeconds": 60}]}});
        let mut h = History::default();
        let n = normalize(&mut h, Some(&b), 80, 10, 1, 100, t(0));
        assert_eq!(
            (n.replicas, n.limited.2),
            (72, "ScaleDownLimit"),
            "10% of 80 = 8"
        );
        record_scale(&mut h, 80, 72, t(0));
        let n = normalize(&mut h, Some(&b), 72, 10, 1, 100, t(30));
        assert_eq!(n.replicas, 72, "nothing more within the same 60 s period");
        let n = normalize(&mut h, Some(&b), 72, 10, 1, 100, t(61));
        assert_eq!(n.replicas, 64, "10% of 72 = 7.2, rounded up to 8");
        // Below 40 replicas the 4-pod policy allows more.
        let n = normalize(&mut History::default(), Some(&b), 30, 10, 1, 100, t(0));
        assert_eq!(n.replicas, 26);
        // selectPolicy Disabled: no scale-down at all.
        let off = json!({"scaleDown": {"selectPolicy": "Disabled"}});
        assert_eq!(
            normalize(&mut History::default(), Some(&off), 5, 1, 1, 10, t(0)).replicas,
            5
        );
        // Default scale-up rules: 4 pods or 100% per 15 s.
        let up = json!({"scaleUp": {}});
        assert_eq!(
            normalize(&mut History::default(), Some(&up), 2, 50, 1, 100, t(0)).replicas,
            6
        );
        assert_eq!(
            normalize(&mut History::default(), Some(&up), 10, 50, 1, 100, t(0)).replicas,
            20
        );
        // A scale-up window keeps the lowest recent recommendation.
        let w = json!({"scaleUp": {"stabilizationWindowSeconds": 60}});
        let mut h = History::default();
        normalize(&mut h, Some(&w), 2, 3, 1, 10, t(0));
        let n = normalize(&mut h, Some(&w), 2, 6, 1, 10, t(30));
        assert_eq!((n.replicas, n.able.2), (3, "ScaleUpStabilized"));
    }

    #[test]
    fn conditions_keep_transition_times() {
        let mut cs = Vec::new();
        set_condition(&mut cs, &("AbleToScale", true, "A", "m".into()), t(0));
        set_condition(&mut cs, &("AbleToScale", true, "B", "n".into()), t(10));
        assert_eq!(cs[0]["lastTransitionTime"], "2023-11-14T22:13:20Z");
        assert_eq!(cs[0]["reason"], "B");
        set_condition(&mut cs, &("AbleToScale", false, "C", "o".into()), t(20));
        assert_eq!(cs[0]["lastTransitionTime"], "2023-11-14T22:13:40Z");
    }

    #[test]
    fn samples_from_pods_and_pod_metrics() {
        let pods = vec![json!({"metadata": {"name": "a"}, "spec": {"containers": [
                {"name": "x", "resources": {"requests": {"cpu": "200m"}}},
                {"name": "y", "resources": {"requests": {"cpu": "0.3"}}}]},
            "status": {"phase": "Running", "startTime": "2024-01-01T00:00:00Z",
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:05Z"}]}})];
        let metrics = vec![
            json!({"metadata": {"name": "a"}, "timestamp": "2024-01-01T01:00:00Z", "window": "15.2s",
            "containers": [{"name": "x", "usage": {"cpu": "150000000n"}}, {"name": "y", "usage": {"cpu": "100m"}}]}),
        ];
        let s = samples(&pods, &metrics, "cpu", None);
        assert_eq!(s[0].request, Some(500));
        assert_eq!(s[0].usage.map(|u| (u.0, u.2)), Some((250, 15)));
        assert_eq!(s[0].ready.map(|r| r.0), Some(true));
        let s = samples(&pods, &metrics, "cpu", Some("y"));
        assert_eq!(
            (s[0].request, s[0].usage.map(|u| u.0)),
            (Some(300), Some(100))
        );
        assert_eq!(format_milli(250), "250m");
        assert_eq!(format_milli(2000), "2");
        assert_eq!(format_milli(64_000_000_000), "64M");
    }
}
