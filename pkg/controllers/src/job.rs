//! The Job controller, as upstream's `pkg/controller/job` in Kubernetes 1.32: pods `<job>-xxxxx`
//! (or `<job>-<index>-xxxxx` for Indexed jobs) up to `parallelism` until `completions` succeed,
//! failures counted against `backoffLimit` (pod restarts for `restartPolicy: OnFailure`),
//! `activeDeadlineSeconds`, `suspend`, exponential back-off before recreating failed pods, and
//! exact counting through the `batch.kubernetes.io/job-tracking` pod finalizer with
//! `status.uncountedTerminatedPods`. Finishing goes through the interim `SuccessCriteriaMet` /
//! `FailureTarget` conditions; `Complete` / `Failed` follow once no pod is terminating (1.32
//! behaviour with JobPodReplacementPolicy and JobSuccessPolicy on).

use crate::controller::{Action, Controller};
use crate::informer::Factory;
use crate::util::{ignore_not_found, podutil, ObjectKey, Workload};
use crate::{Config, Error};
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// The finalizer that keeps a finished pod until the Job has counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// Annotation (and label) with an Indexed job pod's completion index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// Upstream `MaxPodCreateDeletePerSync`.
const MAX_PER_SYNC: usize = 500;
/// Upstream `MaxUncountedPods`.
const MAX_UNCOUNTED: usize = 500;
const BACKOFF_BASE_SECS: i64 = 10;
const BACKOFF_MAX_SECS: i64 = 360;

/// What one sync of a Job should do, in order: delete, create, write `status` (step 1), remove
/// the tracking finalizer from `release` (step 2), then count released pods and, when
/// `terminal` can be enacted, add it (step 3, see [`count_released`] and [`finish`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobPlan {
    pub status: JobStatus,
    /// Pods whose tracking finalizer may go: (name, uid).
    pub release: Vec<(String, String)>,
    /// The terminal condition (`Complete` / `Failed`) to add once everything is counted.
    pub terminal: Option<JobCondition>,
    /// Pods to create: their completion index (Indexed jobs) or `None`.
    pub create: Vec<Option<i32>>,
    /// Active pods to delete: (name, uid).
    pub delete: Vec<(String, String)>,
    /// Events: (type, reason, message).
    pub events: Vec<(&'static str, String, String)>,
    pub requeue_after: Option<Duration>,
}

fn cond_true<'a>(st: &'a JobStatus, t: &str) -> Option<&'a JobCondition> {
    st.conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == t && c.status == "True")
}

/// Whether the job has a `Complete` or `Failed` condition (upstream `IsJobFinished`).
pub fn is_finished(job: &Job) -> bool {
    job.status
        .as_ref()
        .is_some_and(|s| cond_true(s, "Complete").is_some() || cond_true(s, "Failed").is_some())
}

/// The terminal condition (`Failed` or `Complete`) an interim one leads to, with its reason
/// and message.
fn terminal_after(interim: &JobCondition, type_: &str, now: Timestamp) -> JobCondition {
    let reason = interim.reason.as_deref().unwrap_or("");
    new_condition(type_, reason, interim.message.as_deref().unwrap_or(""), now)
}

fn new_condition(t: &str, reason: &str, message: &str, now: Timestamp) -> JobCondition {
    JobCondition {
        type_: t.into(),
        status: "True".into(),
        reason: (!reason.is_empty()).then(|| reason.to_string()),
        message: (!message.is_empty()).then(|| message.to_string()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// Upstream `ensureJobConditionStatus`: sets or updates a condition; a `False` one is only
/// written over an existing condition. Returns whether anything changed.
fn ensure_condition(
    st: &mut JobStatus,
    t: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> bool {
    let list = st.conditions.get_or_insert_with(Vec::new);
    if let Some(c) = list.iter_mut().find(|c| c.type_ == t) {
        let same = c.status == status
            && c.reason.as_deref().unwrap_or("") == reason
            && c.message.as_deref().unwrap_or("") == message;
        if same {
            return false;
        }
        if c.status != status {
            c.last_transition_time = Some(Time(now));
        }
        c.status = status.into();
        c.reason = Some(reason.into());
        c.message = Some(message.into());
        c.last_probe_time = Some(Time(now));
        return true;
    }
    if status != "True" {
        if list.is_empty() {
            st.conditions = None;
        }
        return false;
    }
    list.push(new_condition(t, reason, message, now));
    true
}

fn spec_i32(
    job: &Job,
    f: impl Fn(&k8s_openapi::api::batch::v1::JobSpec) -> Option<i32>,
) -> Option<i32> {
    job.spec.as_ref().and_then(f)
}

fn is_indexed(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.completion_mode.as_deref()) == Some("Indexed")
}

fn suspended(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.suspend) == Some(true)
}

/// Upstream `onlyReplaceFailedPods`.
fn only_replace_failed(job: &Job) -> bool {
    let spec = job.spec.as_ref();
    spec.and_then(|s| s.pod_replacement_policy.as_deref()) == Some("Failed")
        || spec.is_some_and(|s| s.pod_failure_policy.is_some())
}

fn has_finalizer(p: &Pod) -> bool {
    p.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == TRACKING_FINALIZER))
}

/// Upstream `isPodFailed`: failed, or (unless only failed pods are replaced) deleted before
/// succeeding.
pub fn is_pod_failed(p: &Pod, job: &Job) -> bool {
    if podutil::phase(p) == "Failed" {
        return true;
    }
    if only_replace_failed(job) {
        return false;
    }
    podutil::is_terminating(p) && podutil::phase(p) != "Succeeded"
}

fn completion_index(p: &Pod) -> Option<i32> {
    p.metadata
        .annotations
        .as_ref()?
        .get(COMPLETION_INDEX)?
        .parse()
        .ok()
}

/// When a pod finished (latest container termination, else deletion, else creation).
fn finish_time(p: &Pod) -> i64 {
    let containers = p
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref());
    let latest = containers
        .into_iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(|t| t.0.as_second())
        .max();
    latest
        .or_else(|| {
            p.metadata
                .deletion_timestamp
                .as_ref()
                .map(|t| t.0.as_second())
        })
        .unwrap_or_else(|| podutil::created(&p.metadata))
}

/// Seconds to wait before creating pods again after failures (upstream's pod failure backoff:
/// 10 s doubling per failure since the last success, at most 6 minutes).
pub fn backoff_remaining(job: &Job, pods: &[&Pod], now: Timestamp) -> i64 {
    let last_success = pods
        .iter()
        .filter(|p| podutil::phase(p) == "Succeeded")
        .map(|p| finish_time(p))
        .max()
        .unwrap_or(i64::MIN);
    let failures: Vec<i64> = pods
        .iter()
        .filter(|p| is_pod_failed(p, job))
        .map(|p| finish_time(p))
        .filter(|t| *t > last_success)
        .collect();
    let Some(last) = failures.iter().max() else {
        return 0;
    };
    let exp = u32::try_from(failures.len().saturating_sub(1))
        .unwrap_or(u32::MAX)
        .min(10);
    let backoff = (BACKOFF_BASE_SECS << exp).min(BACKOFF_MAX_SECS);
    (backoff - (now.as_second() - last)).max(0)
}

/// Upstream `pastBackoffLimitOnFailure`: container restarts of running/pending pods count.
fn past_backoff_limit_on_failure(job: &Job, pods: &[&Pod]) -> bool {
    let restart = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.restart_policy.as_deref());
    if restart != Some("OnFailure") {
        return false;
    }
    let limit = spec_i32(job, |s| s.backoff_limit).unwrap_or(6);
    let restarts: i32 = pods
        .iter()
        .filter(|p| matches!(podutil::phase(p), "Running" | "Pending"))
        .filter_map(|p| p.status.as_ref())
        .flat_map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
        })
        .map(|c| c.restart_count)
        .sum();
    if limit == 0 {
        restarts > 0
    } else {
        restarts >= limit
    }
}

/// Upstream `controller.ActivePods` ordering: the pods to delete first come first
/// (unscheduled, pending, not ready, newest).
fn sort_for_deletion(pods: &mut [&Pod]) {
    let rank = |p: &Pod| {
        let bound = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty());
        let phase = match podutil::phase(p) {
            "Pending" => 0,
            "Unknown" => 1,
            "Running" => 2,
            _ => 0,
        };
        (
            bound,
            phase,
            podutil::is_ready(p),
            std::cmp::Reverse(podutil::created(&p.metadata)),
        )
    };
    pods.sort_by_key(|p| rank(p));
}

/// Formats sorted indexes as upstream's interval list (`1,3-5,7`).
pub fn format_indexes(ix: &BTreeSet<i32>) -> String {
    let mut out: Vec<String> = vec![];
    let mut it = ix.iter().copied().peekable();
    while let Some(start) = it.next() {
        let mut end = start;
        while it.peek() == Some(&(end + 1)) {
            end += 1;
            it.next();
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    out.join(",")
}

/// Parses an interval list (`1,3-5`), ignoring malformed parts.
pub fn parse_indexes(s: &str) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
                    out.extend(a..=b);
                }
            }
            None => {
                if let Ok(a) = part.parse() {
                    out.insert(a);
                }
            }
        }
    }
    out
}

fn pod_id(p: &Pod) -> (String, String) {
    (
        p.metadata.name.clone().unwrap_or_default(),
        p.metadata.uid.clone().unwrap_or_default(),
    )
}

/// The planning core: one sync of a Job over its pods (upstream `syncJob`, `manageJob` and the
/// first half of `trackJobStatusAndRemoveFinalizers`).
pub fn plan(job: &Job, pods: &[&Pod], now: Timestamp) -> JobPlan {
    let mut out = JobPlan::default();
    let mut st = job.status.clone().unwrap_or_default();
    out.status = st.clone();
    if is_finished(job) {
        return out;
    }
    let uncounted = st.uncounted_terminated_pods.clone().unwrap_or_default();
    let unc_succeeded: HashSet<String> = uncounted
        .succeeded
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let unc_failed: HashSet<String> = uncounted
        .failed
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let indexed = is_indexed(job);
    let completions = spec_i32(job, |s| s.completions);
    let parallelism = spec_i32(job, |s| s.parallelism).unwrap_or(1).max(0);
    let backoff_limit = spec_i32(job, |s| s.backoff_limit).unwrap_or(6);

    let mut active: Vec<&Pod> = pods
        .iter()
        .copied()
        .filter(|p| podutil::is_active(p))
        .collect();
    let mut ready =
        i32::try_from(active.iter().filter(|p| podutil::is_ready(p)).count()).unwrap_or(0);
    let mut terminating = i32::try_from(
        pods.iter()
            .filter(|p| podutil::is_terminating(p) && !podutil::is_terminal(p))
            .count(),
    )
    .unwrap_or(0);
    // Newly finished pods, not yet in the uncounted lists.
    fn uid(p: &Pod) -> String {
        p.metadata.uid.clone().unwrap_or_default()
    }
    let new_succeeded = pods
        .iter()
        .filter(|p| has_finalizer(p) && podutil::phase(p) == "Succeeded")
        .filter(|p| !unc_succeeded.contains(&uid(p)) && !unc_failed.contains(&uid(p)))
        .count();
    let new_failed = pods
        .iter()
        .filter(|p| has_finalizer(p) && podutil::phase(p) != "Succeeded" && is_pod_failed(p, job))
        .filter(|p| !unc_succeeded.contains(&uid(p)) && !unc_failed.contains(&uid(p)))
        .count();
    let to_i32 = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let mut succeeded =
        st.succeeded.unwrap_or(0) + to_i32(new_succeeded) + to_i32(unc_succeeded.len());
    let failed = st.failed.unwrap_or(0) + to_i32(new_failed) + to_i32(unc_failed.len());

    if st.start_time.is_none() && !suspended(job) {
        st.start_time = Some(Time(now));
    }

    // Indexed bookkeeping.
    let mut succeeded_ix: BTreeSet<i32> = BTreeSet::new();
    if indexed {
        let total = completions.unwrap_or(0);
        succeeded_ix = parse_indexes(st.completed_indexes.as_deref().unwrap_or(""));
        succeeded_ix.extend(
            pods.iter()
                .filter(|p| podutil::phase(p) == "Succeeded")
                .filter_map(|p| completion_index(p)),
        );
        succeeded_ix.retain(|i| *i >= 0 && *i < total);
        succeeded = to_i32(succeeded_ix.len());
    }

    // Finished already decided in an earlier sync, or now?
    let mut finished: Option<JobCondition> = None;
    if let Some(c) = cond_true(&st, "SuccessCriteriaMet") {
        finished = Some(c.clone());
    } else if let Some(c) = cond_true(&st, "FailureTarget") {
        finished = Some(new_condition(
            "Failed",
            c.reason.as_deref().unwrap_or(""),
            c.message.as_deref().unwrap_or(""),
            now,
        ));
    }
    if finished.is_none() {
        if failed > backoff_limit || past_backoff_limit_on_failure(job, pods) {
            finished = Some(new_condition(
                "FailureTarget",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
                now,
            ));
        } else if let (Some(ads), Some(start), false) = (
            job.spec.as_ref().and_then(|s| s.active_deadline_seconds),
            st.start_time.as_ref(),
            suspended(job),
        ) {
            let left = start.0.as_second() + ads - now.as_second();
            if left <= 0 {
                finished = Some(new_condition(
                    "FailureTarget",
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline",
                    now,
                ));
            } else {
                out.requeue_after = Some(Duration::from_secs(left.unsigned_abs()));
            }
        }
    }

    let mut delete: Vec<&Pod> = vec![];
    if finished.is_some() {
        delete.extend(active.iter().copied());
    } else {
        // manageJob
        if suspended(job) {
            delete.extend(active.iter().copied());
        } else {
            let want = if indexed {
                (completions.unwrap_or(0) - succeeded)
                    .min(parallelism)
                    .max(0)
            } else {
                match completions {
                    None if succeeded > 0 => to_i32(active.len()),
                    None => parallelism,
                    Some(c) => (c - succeeded).min(parallelism).max(0),
                }
            };
            let mut keep: Vec<&Pod> = active.clone();
            if indexed {
                // Pods without a valid index, for succeeded indexes, or duplicates go first.
                let total = completions.unwrap_or(0);
                let mut seen: BTreeSet<i32> = BTreeSet::new();
                let mut sorted = active.clone();
                sort_for_deletion(&mut sorted);
                sorted.reverse();
                keep.clear();
                for p in sorted {
                    match completion_index(p) {
                        Some(i)
                            if i < total
                                && i >= 0
                                && !succeeded_ix.contains(&i)
                                && seen.insert(i) =>
                        {
                            keep.push(p)
                        }
                        _ => delete.push(p),
                    }
                }
            }
            let excess = keep
                .len()
                .saturating_sub(usize::try_from(want).unwrap_or(0));
            if excess > 0 {
                sort_for_deletion(&mut keep);
                delete.extend(keep.iter().copied().take(excess));
                keep.drain(..excess).for_each(drop);
            }
            if delete.is_empty() {
                let busy = if only_replace_failed(job) {
                    terminating
                } else {
                    0
                };
                let diff = want - busy - to_i32(keep.len());
                if diff > 0 {
                    let wait = backoff_remaining(job, pods, now);
                    if wait > 0 {
                        let d = Duration::from_secs(wait.unsigned_abs());
                        out.requeue_after = Some(out.requeue_after.map_or(d, |r| r.min(d)));
                    } else {
                        let n = usize::try_from(diff).unwrap_or(0).min(MAX_PER_SYNC);
                        if indexed {
                            let busy_ix: BTreeSet<i32> =
                                keep.iter().filter_map(|p| completion_index(p)).collect();
                            out.create = (0..completions.unwrap_or(0))
                                .filter(|i| !succeeded_ix.contains(i) && !busy_ix.contains(i))
                                .take(n)
                                .map(Some)
                                .collect();
                        } else {
                            out.create = vec![None; n];
                        }
                    }
                }
            }
        }
    }
    // Deleted pods stop being active and start terminating.
    delete.truncate(MAX_PER_SYNC);
    let deleted_uids: HashSet<String> = delete.iter().map(|p| uid(p)).collect();
    let deleted_ready = to_i32(delete.iter().filter(|p| podutil::is_ready(p)).count());
    active.retain(|p| !deleted_uids.contains(&uid(p)));
    ready -= deleted_ready;
    terminating += to_i32(delete.len());
    out.delete = delete.iter().map(|p| pod_id(p)).collect();
    let created = to_i32(out.create.len());

    if finished.is_none() {
        let active_after = to_i32(active.len()) + created;
        let complete = if indexed {
            succeeded >= completions.unwrap_or(0) && active_after == 0
        } else {
            match completions {
                None => succeeded > 0 && active_after == 0,
                Some(c) => succeeded >= c && active_after == 0,
            }
        };
        if complete {
            finished = Some(new_condition(
                "SuccessCriteriaMet",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                now,
            ));
        } else if suspended(job) {
            if ensure_condition(
                &mut st,
                "Suspended",
                "True",
                "JobSuspended",
                "Job suspended",
                now,
            ) {
                out.events
                    .push(("Normal", "Suspended".into(), "Job suspended".into()));
            }
        } else if ensure_condition(
            &mut st,
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed",
            now,
        ) {
            out.events
                .push(("Normal", "Resumed".into(), "Job resumed".into()));
            st.start_time = Some(Time(now));
        }
    }
    st.active = Some(to_i32(active.len()) + created);
    st.ready = Some(ready.max(0));
    st.terminating = Some(terminating);
    if indexed {
        st.completed_indexes = Some(format_indexes(&succeeded_ix));
    }

    // trackJobStatusAndRemoveFinalizers, step 1: record finished pods as uncounted.
    let finished_failing = finished
        .as_ref()
        .is_some_and(|c| c.type_ != "SuccessCriteriaMet" && c.type_ != "Complete");
    let mut unc = UncountedTerminatedPods {
        succeeded: Some(uncounted.succeeded.clone().unwrap_or_default()),
        failed: Some(uncounted.failed.clone().unwrap_or_default()),
    };
    let job_deleting = job.metadata.deletion_timestamp.is_some();
    for p in pods.iter().copied().filter(|p| has_finalizer(p)) {
        let considered_failed = is_pod_failed(p, job);
        let succeeded_pod = podutil::phase(p) == "Succeeded";
        if !(job_deleting || finished.is_some() || succeeded_pod || considered_failed) {
            continue;
        }
        out.release.push(pod_id(p));
        let u = uid(p);
        if succeeded_pod && !unc_failed.contains(&u) {
            if !indexed && !unc_succeeded.contains(&u) {
                unc.succeeded.get_or_insert_with(Vec::new).push(u);
            }
        } else if (considered_failed || finished_failing)
            && !unc_failed.contains(&u)
            && !unc_succeeded.contains(&u)
        {
            unc.failed.get_or_insert_with(Vec::new).push(u);
        }
        let n =
            unc.succeeded.as_ref().map_or(0, Vec::len) + unc.failed.as_ref().map_or(0, Vec::len);
        if n >= MAX_UNCOUNTED {
            break;
        }
    }
    // Empty lists are left out, as upstream's `omitempty` writes them (`{}`).
    unc.succeeded = unc.succeeded.filter(|l| !l.is_empty());
    unc.failed = unc.failed.filter(|l| !l.is_empty());
    st.uncounted_terminated_pods = Some(unc);
    if indexed {
        st.succeeded = Some(succeeded);
    }
    // Interim conditions are written before finalizers go; the terminal one comes after.
    if let Some(c) = &finished {
        match c.type_.as_str() {
            "FailureTarget" => {
                st.conditions.get_or_insert_with(Vec::new).push(c.clone());
                out.terminal = Some(terminal_after(c, "Failed", now));
            }
            "SuccessCriteriaMet" => {
                if cond_true(&st, "SuccessCriteriaMet").is_none() {
                    st.conditions.get_or_insert_with(Vec::new).push(c.clone());
                }
                out.terminal = Some(terminal_after(c, "Complete", now));
            }
            _ => out.terminal = Some(c.clone()),
        }
    }
    out.status = st;
    out
}

/// Step 3 (upstream `cleanUncountedPodsWithoutFinalizers`): uncounted pods that no longer carry
/// the finalizer (`still_tracked` holds the uids that do) move into the counters.
pub fn count_released(st: &mut JobStatus, still_tracked: &HashSet<String>) -> bool {
    let Some(unc) = st.uncounted_terminated_pods.as_mut() else {
        return false;
    };
    let mut changed = false;
    for (list, counter) in [
        (&mut unc.succeeded, &mut st.succeeded),
        (&mut unc.failed, &mut st.failed),
    ] {
        let Some(l) = list.as_mut() else {
            continue;
        };
        let before = l.len();
        l.retain(|u| still_tracked.contains(u));
        let moved = before - l.len();
        if moved > 0 {
            changed = true;
            *counter = Some(counter.unwrap_or(0) + i32::try_from(moved).unwrap_or(0));
        }
        if l.is_empty() {
            *list = None;
        }
    }
    changed
}

/// Upstream `enactJobFinished`: adds the terminal condition once nothing is uncounted and no
/// pod is terminating; `Complete` also sets `completionTime`. Returns whether it did.
pub fn finish(st: &mut JobStatus, terminal: &JobCondition) -> bool {
    let unc = st.uncounted_terminated_pods.as_ref();
    let pending = unc.map_or(0, |u| {
        u.succeeded.as_ref().map_or(0, Vec::len) + u.failed.as_ref().map_or(0, Vec::len)
    });
    if pending > 0 || st.terminating.unwrap_or(0) > 0 {
        return false;
    }
    let now = terminal
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
        .unwrap_or_else(Timestamp::now);
    ensure_condition(
        st,
        &terminal.type_,
        "True",
        terminal.reason.as_deref().unwrap_or(""),
        terminal.message.as_deref().unwrap_or(""),
        now,
    );
    if terminal.type_ == "Complete" {
        st.completion_time = Some(Time(now));
    }
    true
}

/// The pod a Job creates (upstream `GetPodFromTemplate` + tracking finalizer + index).
pub fn job_pod(job: &Job, index: Option<i32>) -> Pod {
    let template = job
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let name = job.metadata.name.as_deref().unwrap_or("job");
    let mut pod = crate::util::pod_control::pod_from_template(job, &template, name);
    let meta = &mut pod.metadata;
    meta.finalizers
        .get_or_insert_with(Vec::new)
        .push(TRACKING_FINALIZER.into());
    let spec = pod.spec.get_or_insert_with(Default::default);
    if let Some(i) = index {
        meta.annotations
            .get_or_insert_with(Default::default)
            .insert(COMPLETION_INDEX.into(), i.to_string());
        meta.labels
            .get_or_insert_with(Default::default)
            .insert(COMPLETION_INDEX.into(), i.to_string());
        meta.generate_name = Some(format!("{name}-{i}-"));
        spec.hostname = Some(format!("{name}-{i}"));
        let env = EnvVar {
            name: "JOB_COMPLETION_INDEX".into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: format!("metadata.labels['{COMPLETION_INDEX}']"),
                    api_version: None,
                }),
                ..Default::default()
            }),
            value: None,
        };
        for c in spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten())
        {
            let envs = c.env.get_or_insert_with(Vec::new);
            if !envs.iter().any(|e| e.name == env.name) {
                envs.push(env.clone());
            }
        }
    }
    pod
}

type Ctx = Workload<Job>;

/// Registers the Job controller's handlers on the shared informers and spawns its workers
/// (they start once the caches have synced).
pub fn start(factory: &Factory, _cfg: Arc<Config>) {
    let ctx = Arc::new(Workload::new(factory, "job-controller"));
    Controller::new(factory, "job")
        .reconciles::<Job>()
        .owns::<Pod>("Job")
        .workers(4)
        .resync(Duration::from_secs(30))
        .run(ctx, reconcile);
}

async fn reconcile(ctx: Arc<Ctx>, key: ObjectKey) -> Result<Action, Error> {
    let Some((job, pods)) = ctx.load(&key, |_| true) else {
        return Ok(Action::Done);
    };
    if is_finished(&job) {
        return Ok(Action::Done);
    }
    let ns = key.namespace.clone();
    let refs: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).collect();
    let now = Timestamp::now();
    let p = plan(&job, &refs, now);
    let pod_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let job_api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);

    let deleted = match ctx.control.delete_pods(job.as_ref(), &ns, &p.delete).await {
        Ok(d) => d,
        Err((e, deleted)) => {
            ctx.exp.expect(&key, vec![], deleted);
            return Err(e.into());
        }
    };
    let new_pods: Vec<Pod> = p.create.iter().map(|ix| job_pod(&job, *ix)).collect();
    let outcome = ctx.control.create_pods(job.as_ref(), &ns, &new_pods).await;
    let created = outcome.names();
    let create_err = outcome.error;
    ctx.exp.expect(&key, created.clone(), deleted);
    for (t, reason, msg) in &p.events {
        ctx.control
            .recorder()
            .record(job.as_ref(), t, reason, msg)
            .await;
    }
    let mut status = p.status.clone();
    if create_err.is_some() {
        // Only the pods that exist are active.
        let failed_creates = i32::try_from(p.create.len() - created.len()).unwrap_or(0);
        status.active = Some(status.active.unwrap_or(0) - failed_creates);
    }
    // Step 1: flush uncounted pods and interim conditions.
    let mut current = job.as_ref().clone();
    if job.status.as_ref() != Some(&status) {
        current = write_status(&job_api, &job, &status).await?;
    }
    // Step 2: release finalizers.
    let mut still_tracked: HashSet<String> = pods
        .iter()
        .filter(|p| has_finalizer(p))
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    for (name, puid) in &p.release {
        let Some(pod) = pods
            .iter()
            .find(|x| x.metadata.uid.as_deref() == Some(puid.as_str()))
        else {
            continue;
        };
        match remove_finalizer(&pod_api, name, pod).await {
            Ok(()) => {
                still_tracked.remove(puid);
            }
            Err(e) => {
                tracing::warn!(pod = %name, error = %e, "removing the job tracking finalizer failed")
            }
        }
    }
    // Step 3: count and finish.
    let mut status = current.status.clone().unwrap_or_default();
    let mut changed = count_released(&mut status, &still_tracked);
    let mut finished = false;
    if let Some(t) = &p.terminal {
        if finish(&mut status, t) {
            changed = true;
            finished = true;
        }
    }
    if changed {
        write_status(&job_api, &current, &status).await?;
    }
    if finished {
        if let Some(t) = &p.terminal {
            if t.type_ == "Complete" {
                ctx.control
                    .recorder()
                    .record(job.as_ref(), "Normal", "Completed", "Job completed")
                    .await;
            } else {
                ctx.control
                    .recorder()
                    .record(
                        job.as_ref(),
                        "Warning",
                        t.reason.as_deref().unwrap_or("Failed"),
                        t.message.as_deref().unwrap_or(""),
                    )
                    .await;
            }
        }
    }
    if let Some(e) = create_err {
        return Err(e.into());
    }
    Ok(Action::after(p.requeue_after))
}

async fn write_status(api: &Api<Job>, job: &Job, status: &JobStatus) -> Result<Job, Error> {
    let mut j = job.clone();
    j.status = Some(status.clone());
    let name = job.metadata.name.clone().unwrap_or_default();
    Ok(api
        .replace_status(&name, &PostParams::default(), &j)
        .await?)
}

async fn remove_finalizer(api: &Api<Pod>, name: &str, pod: &Pod) -> Result<(), Error> {
    let Some(list) = pod.metadata.finalizers.as_ref() else {
        return Ok(());
    };
    if !list.iter().any(|x| x == TRACKING_FINALIZER) {
        return Ok(());
    }
    let rest: Vec<&String> = list.iter().filter(|x| *x != TRACKING_FINALIZER).collect();
    // The resourceVersion makes the merge patch conditional: a concurrent finalizer change
    // is not lost (409, retried on the next sync).
    let finalizers = crate::util::list_or_null(&rest);
    let patch = json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": pod.metadata.resource_version,
    }});
    let pp = PatchParams::default();
    ignore_not_found(api.patch(name, &pp, &Patch::Merge(&patch)).await)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::podutil::tests::{pod, ts};
    use k8s_openapi::api::batch::v1::JobSpec;
    use k8s_openapi::api::core::v1::{ContainerStatus, PodSpec, PodTemplateSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn condition_types(st: &JobStatus) -> Vec<&str> {
        let conditions = st.conditions.iter().flatten();
        conditions.map(|c| c.type_.as_str()).collect()
    }

    fn job(completions: Option<i32>, parallelism: i32, backoff: i32) -> Job {
        Job {
            metadata: ObjectMeta {
                name: Some("pi".into()),
                namespace: Some("default".into()),
                uid: Some("job-uid".into()),
                ..Default::default()
            },
            spec: Some(JobSpec {
                completions,
                parallelism: Some(parallelism),
                backoff_limit: Some(backoff),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some([("job-name".to_string(), "pi".to_string())].into()),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        restart_policy: Some("Never".into()),
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            status: None,
        }
    }

    fn jpod(name: &str, phase: &str) -> Pod {
        let mut p = pod(name, phase, (phase == "Running").then_some(100));
        p.metadata.finalizers = Some(vec![TRACKING_FINALIZER.into()]);
        p
    }

    fn refs(p: &[Pod]) -> Vec<&Pod> {
        p.iter().collect()
    }

    /// Applies a plan as the reconcile would when every API call succeeds.
    fn settle(j: &Job, plan: &JobPlan) -> JobStatus {
        let mut st = plan.status.clone();
        count_released(&mut st, &HashSet::new());
        if let Some(t) = &plan.terminal {
            finish(&mut st, t);
        }
        let _ = j;
        st
    }

    #[test]
    fn starts_parallelism_pods_bounded_by_completions() {
        let j = job(Some(5), 2, 6);
        let p = plan(&j, &[], ts(1000));
        assert_eq!(p.create, vec![None, None]);
        assert_eq!(p.status.active, Some(2));
        assert!(p.status.start_time.is_some());
        let j = job(Some(1), 3, 6);
        assert_eq!(plan(&j, &[], ts(1000)).create.len(), 1);
    }

    #[test]
    fn succeeded_pods_are_counted_through_uncounted_then_complete() {
        let j = job(Some(2), 2, 6);
        let pods = [jpod("a", "Succeeded"), jpod("b", "Running")];
        let p = plan(&j, &refs(&pods), ts(1000));
        let unc = p.status.uncounted_terminated_pods.as_ref().unwrap();
        assert_eq!(unc.succeeded.as_deref(), Some(&["uid-a".to_string()][..]));
        assert_eq!(p.release, vec![("a".into(), "uid-a".into())]);
        assert!(
            p.create.is_empty(),
            "one succeeded, one running: nothing to add"
        );
        assert!(p.terminal.is_none());
        let st = settle(&j, &p);
        assert_eq!(st.succeeded, Some(1));

        let mut j2 = j.clone();
        j2.status = Some(st);
        let pods = [jpod("b", "Succeeded")];
        let p = plan(&j2, &refs(&pods), ts(1010));
        let types = condition_types(&p.status);
        assert_eq!(types, vec!["SuccessCriteriaMet"]);
        let c = &p.status.conditions.as_ref().unwrap()[0];
        assert_eq!(c.reason.as_deref(), Some("CompletionsReached"));
        let st = settle(&j2, &p);
        assert_eq!(st.succeeded, Some(2));
        let types = condition_types(&st);
        assert_eq!(types, vec!["SuccessCriteriaMet", "Complete"]);
        assert!(st.completion_time.is_some());
    }

    #[test]
    fn failures_back_off_then_exceed_the_limit() {
        let j = job(Some(1), 1, 1);
        let mut f1 = jpod("f1", "Failed");
        f1.metadata.creation_timestamp = Some(Time(ts(990)));
        let p = plan(&j, &refs(&[f1.clone()]), ts(995));
        assert!(p.create.is_empty(), "within the 10 s backoff");
        assert_eq!(p.requeue_after, Some(Duration::from_secs(5)));
        assert_eq!(backoff_remaining(&j, &refs(&[f1.clone()]), ts(995)), 5);
        assert_eq!(plan(&j, &refs(&[f1.clone()]), ts(1001)).create.len(), 1);
        let mut f2 = jpod("f2", "Failed");
        f2.metadata.creation_timestamp = Some(Time(ts(1001)));
        assert_eq!(
            backoff_remaining(&j, &refs(&[f1.clone(), f2.clone()]), ts(1001)),
            20
        );
        // Two failures > backoffLimit 1: FailureTarget now, Failed once counted.
        let p = plan(&j, &refs(&[f1, f2]), ts(1002));
        let c = &p.status.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (c.type_.as_str(), c.reason.as_deref()),
            ("FailureTarget", Some("BackoffLimitExceeded"))
        );
        assert_eq!(
            c.message.as_deref(),
            Some("Job has reached the specified backoff limit")
        );
        let st = settle(&j, &p);
        assert_eq!(st.failed, Some(2));
        assert_eq!(st.conditions.as_ref().unwrap()[1].type_, "Failed");
        assert!(st.completion_time.is_none());
    }

    #[test]
    fn on_failure_restarts_count() {
        let mut j = job(Some(1), 1, 2);
        j.spec
            .as_mut()
            .unwrap()
            .template
            .spec
            .as_mut()
            .unwrap()
            .restart_policy = Some("OnFailure".into());
        let mut r = jpod("r", "Running");
        r.status.as_mut().unwrap().container_statuses = Some(vec![ContainerStatus {
            name: "c".into(),
            restart_count: 2,
            ..Default::default()
        }]);
        let p = plan(&j, &refs(&[r]), ts(1000));
        assert_eq!(
            p.delete,
            vec![("r".into(), "uid-r".into())],
            "active pods go when failing"
        );
        assert_eq!(p.status.terminating, Some(1));
        let st = settle(&j, &p);
        assert_eq!(st.failed, Some(1));
        // A pod is still terminating: Failed waits.
        assert_eq!(st.conditions.as_ref().unwrap().len(), 1);
    }

    #[test]
    fn active_deadline_and_suspend() {
        let mut j = job(Some(1), 1, 6);
        j.spec.as_mut().unwrap().active_deadline_seconds = Some(30);
        j.status = Some(JobStatus {
            start_time: Some(Time(ts(1000))),
            ..Default::default()
        });
        let p = plan(&j, &[], ts(1010));
        assert_eq!(p.requeue_after, Some(Duration::from_secs(20)));
        let p = plan(&j, &[], ts(1031));
        assert_eq!(
            p.status.conditions.as_ref().unwrap()[0].reason.as_deref(),
            Some("DeadlineExceeded")
        );
        let mut s = job(Some(1), 1, 6);
        s.spec.as_mut().unwrap().suspend = Some(true);
        let pods = [jpod("a", "Running")];
        let p = plan(&s, &refs(&pods), ts(1000));
        assert_eq!(p.delete.len(), 1);
        assert_eq!(p.status.active, Some(0));
        assert!(p.status.start_time.is_none());
        assert_eq!(p.events[0].1, "Suspended");
    }

    #[test]
    fn no_completions_finishes_on_first_success_when_others_end() {
        let j = job(None, 2, 6);
        let pods = [jpod("a", "Succeeded"), jpod("b", "Running")];
        let p = plan(&j, &refs(&pods), ts(1000));
        assert!(p.create.is_empty() && p.delete.is_empty());
        assert!(p.terminal.is_none());
        let pods = [jpod("a", "Succeeded"), jpod("b", "Succeeded")];
        let p = plan(&j, &refs(&pods), ts(1000));
        assert_eq!(p.terminal.as_ref().unwrap().type_, "Complete");
    }

    #[test]
    fn indexed_jobs_fill_missing_indexes() {
        let mut j = job(Some(4), 2, 6);
        j.spec.as_mut().unwrap().completion_mode = Some("Indexed".into());
        let mut done = jpod("pi-0-aaaaa", "Succeeded");
        done.metadata.annotations = Some([(COMPLETION_INDEX.to_string(), "0".to_string())].into());
        let mut run1 = jpod("pi-1-bbbbb", "Running");
        run1.metadata.annotations = Some([(COMPLETION_INDEX.to_string(), "1".to_string())].into());
        let p = plan(&j, &refs(&[done, run1]), ts(1000));
        assert_eq!(p.create, vec![Some(2)]);
        assert_eq!(p.status.completed_indexes.as_deref(), Some("0"));
        assert_eq!(p.status.succeeded, Some(1));
        let pod = job_pod(&j, Some(2));
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("pi-2-"));
        assert_eq!(pod.spec.as_ref().unwrap().hostname.as_deref(), Some("pi-2"));
        assert_eq!(format_indexes(&parse_indexes("0,1,2,5,7-8")), "0-2,5,7-8");
    }

    #[test]
    fn job_pods_carry_template_labels_finalizer_and_owner() {
        let p = job_pod(&job(Some(1), 1, 6), None);
        assert_eq!(p.metadata.generate_name.as_deref(), Some("pi-"));
        assert_eq!(p.metadata.labels.as_ref().unwrap()["job-name"], "pi");
        assert_eq!(
            p.metadata.finalizers.as_deref(),
            Some(&[TRACKING_FINALIZER.to_string()][..])
        );
        let r = &p.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((r.kind.as_str(), r.controller), ("Job", Some(true)));
    }

    #[test]
    fn deleted_pods_count_as_failed_and_finished_jobs_are_left_alone() {
        let j = job(Some(1), 1, 6);
        let mut d = jpod("d", "Running");
        d.metadata.deletion_timestamp = Some(Time(ts(999)));
        let p = plan(&j, &refs(&[d]), ts(1000));
        assert_eq!(
            p.status
                .uncounted_terminated_pods
                .as_ref()
                .unwrap()
                .failed
                .as_ref()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(p.status.terminating, Some(1));
        let mut fin = j.clone();
        fin.status = Some(JobStatus {
            conditions: Some(vec![new_condition("Complete", "", "", ts(1))]),
            ..Default::default()
        });
        assert_eq!(
            plan(&fin, &[], ts(1000)),
            JobPlan {
                status: fin.status.clone().unwrap(),
                ..Default::default()
            }
        );
    }
}
