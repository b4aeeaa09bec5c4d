//! The CronJob controller, as upstream's `cronjob_controllerv2.go`: Jobs named
//! `<cronjob>-<scheduled time in minutes since the epoch>` at each schedule time (in
//! `spec.timeZone`), `concurrencyPolicy` Allow/Forbid/Replace, `startingDeadlineSeconds`,
//! `suspend`, the successful/failed history limits, and status `active`/`lastScheduleTime`/
//! `lastSuccessfulTime`. The controller wakes itself for the next schedule time.

pub mod schedule;

use crate::controller::{Action, Controller};
use crate::events::Recorder;
use crate::informer::{Factory, Store};
use crate::util::{ignore_not_found, is_controlled_by, ObjectKey};
use crate::{Config, Error};
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams, PropagationPolicy};
use kube::Client;
use schedule::Cron;
use std::sync::Arc;
use std::time::Duration;

/// Annotation with the Job's scheduled time (RFC 3339 in the CronJob's time zone).
pub const SCHEDULED_TIMESTAMP_ANNOTATION: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// Upstream `nextScheduleDelta`.
const NEXT_SCHEDULE_DELTA_MS: u64 = 100;

/// How many schedule times were missed (upstream `missedSchedulesType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    None,
    Few,
    Many,
}

/// Upstream `mostRecentScheduleTime`: the earliest time considered, the most recent schedule
/// time not after `now` (if any), and how many were missed.
pub fn most_recent_schedule_time(
    cj: &CronJob,
    now: Timestamp,
    cron: &Cron,
    include_deadline: bool,
) -> Result<(Timestamp, Option<Timestamp>, Missed), String> {
    let created = cj
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0)
        .unwrap_or(now);
    let mut earliest = cj
        .status
        .as_ref()
        .and_then(|s| s.last_schedule_time.as_ref())
        .map(|t| t.0)
        .unwrap_or(created);
    if include_deadline {
        if let Some(sds) = cj.spec.as_ref().and_then(|s| s.starting_deadline_seconds) {
            let deadline = Timestamp::from_second(now.as_second() - sds).unwrap_or(now);
            if deadline > earliest {
                earliest = deadline;
            }
        }
    }
    let Some(t1) = cron.next(earliest) else {
        return Ok((earliest, None, Missed::None));
    };
    if now < t1 {
        return Ok((earliest, None, Missed::None));
    }
    let Some(t2) = cron.next(t1) else {
        return Ok((earliest, Some(t1), Missed::Few));
    };
    if now < t2 {
        return Ok((earliest, Some(t1), Missed::Few));
    }
    let between = t2.as_second() - t1.as_second();
    if between < 1 {
        return Err("time difference between two schedules is less than 1 second".into());
    }
    let elapsed = now.as_second() - t1.as_second();
    let missed = elapsed / between + 1;
    // Jump close to now, one interval back, then walk the real schedule forward (handles
    // irregular schedules such as `30 6-16/4 * * 1-5`).
    let potential = Timestamp::from_second(t1.as_second() + (missed - 2) * between).unwrap_or(t1);
    let mut most_recent = None;
    let mut t = cron.next(potential);
    while let Some(x) = t.filter(|x| *x <= now) {
        most_recent = Some(x);
        t = cron.next(x);
    }
    let kind = if missed > 100 {
        Missed::Many
    } else if missed > 0 {
        Missed::Few
    } else {
        Missed::None
    };
    Ok((earliest, most_recent, kind))
}

/// Upstream `nextScheduleTimeDuration`: how long until the schedule time after the most recent
/// one (plus 100 ms).
pub fn next_schedule_duration(cj: &CronJob, now: Timestamp, cron: &Cron) -> Duration {
    let delta = Duration::from_millis(NEXT_SCHEDULE_DELTA_MS);
    let Ok((earliest, recent, missed)) = most_recent_schedule_time(cj, now, cron, false) else {
        return delta;
    };
    let base = match (recent, missed) {
        (Some(t), _) => t,
        (None, Missed::None) => earliest,
        (None, _) => return delta,
    };
    let Some(next) = cron.next(base) else {
        // Nothing scheduled within five years: look again in a day.
        return Duration::from_secs(86_400);
    };
    let ms = next.as_millisecond() - now.as_millisecond();
    Duration::from_millis(u64::try_from(ms.max(0)).unwrap_or(0)) + delta
}

/// Upstream `getJobName`: `<cronjob>-<minutes since the epoch>`.
pub fn job_name(cj: &CronJob, scheduled: Timestamp) -> String {
    format!(
        "{}-{}",
        cj.metadata.name.as_deref().unwrap_or(""),
        scheduled.as_second().div_euclid(60)
    )
}

/// The Job for a schedule time (upstream `getJobFromTemplate2`).
pub fn job_for(cj: &CronJob, scheduled: Timestamp, cron: &Cron) -> Job {
    let jt = cj
        .spec
        .as_ref()
        .map(|s| s.job_template.clone())
        .unwrap_or_default();
    let tm = jt.metadata.unwrap_or_default();
    let mut annotations = tm.annotations.clone().unwrap_or_default();
    let local = scheduled.to_zoned(cron.tz.clone());
    annotations.insert(
        SCHEDULED_TIMESTAMP_ANNOTATION.into(),
        local
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
            .replace("+00:00", "Z"),
    );
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(cj, scheduled)),
            annotations: Some(annotations),
            // upstream copies labels and annotations only
            finalizers: None,
            ..crate::util::child_meta(cj, Some(&tm))
        },
        spec: jt.spec,
        status: None,
    }
}

/// The finished condition of a job (`Complete` or `Failed`, status True).
pub fn finished_condition(job: &Job) -> Option<&str> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .map(|c| c.type_.as_str())
}

/// A reference to a job for `status.active`.
pub fn job_ref(job: &Job) -> ObjectReference {
    crate::util::object_ref(job)
}

/// What one sync of a CronJob should do.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CjPlan {
    /// The status (without the job about to be created: the reconcile adds it with its uid).
    pub status: CronJobStatus,
    /// A job to create and its schedule time.
    pub create: Option<(Job, Timestamp)>,
    /// Jobs to delete (background propagation): Replace policy and history limits.
    pub delete: Vec<String>,
    /// Events: (type, reason, message).
    pub events: Vec<(&'static str, String, String)>,
    pub requeue_after: Option<Duration>,
}

impl CjPlan {
    fn event(&mut self, type_: &'static str, reason: &str, message: &str) {
        self.events
            .push((type_, reason.to_string(), message.to_string()));
    }

    /// This plan with a warning and nothing else to do.
    fn warn(mut self, reason: &str, message: &str) -> Self {
        self.event("Warning", reason, message);
        self
    }
}

fn remove_active(st: &mut CronJobStatus, uid: Option<&str>) {
    if let Some(a) = st.active.as_mut() {
        a.retain(|r| r.uid.as_deref() != uid);
        if a.is_empty() {
            st.active = None;
        }
    }
}

/// The planning core (upstream `syncCronJob` + `cleanupFinishedJobs`). `jobs` are the Jobs the
/// CronJob controls; `missing` the active references confirmed gone from the API.
pub fn plan(cj: &CronJob, jobs: &[&Job], missing: &[String], now: Timestamp) -> CjPlan {
    let mut out = CjPlan::default();
    let mut st = cj.status.clone().unwrap_or_default();
    let in_active = |st: &CronJobStatus, uid: Option<&str>| {
        st.active
            .iter()
            .flatten()
            .any(|r| r.uid.is_some() && r.uid.as_deref() == uid)
    };
    for j in jobs {
        let uid = j.metadata.uid.as_deref();
        let jname = j.metadata.name.clone().unwrap_or_default();
        let found = in_active(&st, uid);
        let fin = finished_condition(j);
        match (found, fin) {
            (false, None) => out.event(
                "Warning",
                "UnexpectedJob",
                &format!("Saw a job that the controller did not create or forgot: {jname}"),
            ),
            (true, Some(c)) => {
                remove_active(&mut st, uid);
                out.event(
                    "Normal",
                    "SawCompletedJob",
                    &format!("Saw completed job: {jname}, condition: {c}"),
                );
            }
            _ => {}
        }
        if fin == Some("Complete") {
            if let Some(ct) = j.status.as_ref().and_then(|s| s.completion_time.as_ref()) {
                if st.last_successful_time.as_ref().is_none_or(|l| l.0 < ct.0) {
                    st.last_successful_time = Some(ct.clone());
                }
            }
        }
    }
    for m in missing {
        let uid = st
            .active
            .iter()
            .flatten()
            .find(|r| r.name.as_deref() == Some(m.as_str()))
            .and_then(|r| r.uid.clone());
        if uid.is_some() {
            out.event(
                "Normal",
                "MissingJob",
                &format!("Active job went missing: {m}"),
            );
            remove_active(&mut st, uid.as_deref());
        }
    }
    // History limits (upstream cleanupFinishedJobs).
    let spec = cj.spec.clone().unwrap_or_default();
    for (want, limit) in [
        ("Complete", spec.successful_jobs_history_limit),
        ("Failed", spec.failed_jobs_history_limit),
    ] {
        let Some(limit) = limit else {
            continue;
        };
        let mut done: Vec<&Job> = jobs
            .iter()
            .copied()
            .filter(|j| finished_condition(j) == Some(want))
            .collect();
        let excess = done
            .len()
            .saturating_sub(usize::try_from(limit.max(0)).unwrap_or(0));
        if excess == 0 {
            continue;
        }
        // Oldest start first; jobs without a start time last.
        done.sort_by_key(|j| {
            let start = j
                .status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .map(|t| t.0.as_second());
            (start.is_none(), start, j.metadata.name.clone())
        });
        for j in done.into_iter().take(excess) {
            let jname = j.metadata.name.clone().unwrap_or_default();
            remove_active(&mut st, j.metadata.uid.as_deref());
            out.event(
                "Normal",
                "SuccessfulDelete",
                &format!("Deleted job {jname}"),
            );
            out.delete.push(jname);
        }
    }
    out.status = st.clone();
    if cj.metadata.deletion_timestamp.is_some() || spec.suspend == Some(true) {
        return out;
    }
    let cron = match schedule::parse(&spec.schedule, spec.time_zone.as_deref()) {
        Ok(c) => c,
        Err(schedule::ScheduleError::Location(z)) if spec.time_zone.is_some() => {
            return out.warn(
                "UnknownTimeZone",
                &format!("invalid timeZone: {z:?}: unknown time zone {z}"),
            );
        }
        Err(e) => {
            return out.warn(
                "UnparseableSchedule",
                &format!("unparseable schedule: {:?} : {e}", spec.schedule),
            );
        }
    };
    let scheduled = match most_recent_schedule_time(cj, now, &cron, true) {
        Err(e) => {
            return out.warn(
                "InvalidSchedule",
                &format!("invalid schedule: {} : {e}", spec.schedule),
            );
        }
        Ok((_, t, missed)) => {
            if missed == Missed::Many {
                out.event("Warning", "TooManyMissedTimes", "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew");
            }
            t
        }
    };
    let mut view = cj.clone();
    view.status = Some(st.clone());
    out.requeue_after = Some(next_schedule_duration(&view, now, &cron));
    let Some(scheduled) = scheduled else {
        return out;
    };
    if let Some(sds) = spec.starting_deadline_seconds {
        if scheduled.as_second() + sds < now.as_second() {
            let rfc1123z = scheduled
                .to_zoned(k8s_openapi::jiff::tz::TimeZone::UTC)
                .strftime("%a, %d %b %Y %H:%M:%S %z")
                .to_string();
            return out.warn(
                "MissSchedule",
                &format!("Missed scheduled time to start a job: {rfc1123z}"),
            );
        }
    }
    let jname = job_name(cj, scheduled);
    let processed = st
        .active
        .iter()
        .flatten()
        .any(|r| r.name.as_deref() == Some(jname.as_str()))
        || st.last_schedule_time.as_ref().map(|t| t.0) == Some(scheduled);
    if processed {
        return out;
    }
    let policy = spec.concurrency_policy.as_deref().unwrap_or("Allow");
    let active_now = st.active.as_ref().map_or(0, Vec::len);
    if policy == "Forbid" && active_now > 0 {
        out.event(
            "Normal",
            "JobAlreadyActive",
            "Not starting job because prior execution is running and concurrency policy is Forbid",
        );
        return out;
    }
    if policy == "Replace" {
        for r in st.active.iter().flatten() {
            if let Some(n) = &r.name {
                out.event("Normal", "SuccessfulDelete", &format!("Deleted job {n}"));
                out.delete.push(n.clone());
            }
        }
        st.active = None;
        out.status = st.clone();
    }
    out.create = Some((job_for(cj, scheduled, &cron), scheduled));
    // The requeue is computed as if the job was created (lastScheduleTime moved).
    let mut view = cj.clone();
    let mut vst = st;
    vst.last_schedule_time = Some(Time(scheduled));
    view.status = Some(vst);
    out.requeue_after = Some(next_schedule_duration(&view, now, &cron));
    out
}

struct Ctx {
    client: Client,
    cjs: Arc<Store<CronJob>>,
    jobs: Arc<Store<Job>>,
    recorder: Recorder,
}

/// Registers the CronJob controller's handlers on the shared informers and spawns its workers
/// (they start once the caches have synced).
pub fn start(factory: &Factory, _cfg: Arc<Config>) {
    let client = factory.client();
    let ctx = Arc::new(Ctx {
        recorder: Recorder::new(client.clone(), "cronjob-controller"),
        client,
        cjs: factory.store::<CronJob>(),
        jobs: factory.store::<Job>(),
    });
    Controller::new(factory, "cronjob")
        .reconciles::<CronJob>()
        .owns::<Job>("CronJob")
        .workers(2)
        .resync(Duration::from_secs(60))
        .run(ctx, reconcile);
}

async fn reconcile(ctx: Arc<Ctx>, key: ObjectKey) -> Result<Action, Error> {
    let Some(cj) = ctx.cjs.get(&key.namespace, &key.name) else {
        return Ok(Action::Done);
    };
    let ns = key.namespace.clone();
    let uid = cj.metadata.uid.clone().unwrap_or_default();
    let jobs: Vec<Arc<Job>> = ctx
        .jobs
        .list_filter(&ns, |j| is_controlled_by(&j.metadata, &uid));
    let job_api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    // Active jobs the cache does not have: ask the API before calling them missing.
    let mut missing = vec![];
    for r in cj.status.iter().flat_map(|s| s.active.iter().flatten()) {
        if jobs.iter().any(|j| j.metadata.uid == r.uid) {
            continue;
        }
        let Some(n) = r.name.as_deref() else {
            continue;
        };
        match job_api.get_opt(n).await? {
            None => missing.push(n.to_string()),
            Some(j) if j.metadata.uid != r.uid => missing.push(n.to_string()),
            Some(_) => {}
        }
    }
    let refs: Vec<&Job> = jobs.iter().map(|j| j.as_ref()).collect();
    let now = Timestamp::now();
    let p = plan(&cj, &refs, &missing, now);
    for (t, reason, msg) in &p.events {
        ctx.recorder.record(cj.as_ref(), t, reason, msg).await;
    }
    let bg = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    for n in &p.delete {
        match job_api.delete(n, &bg).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut status = p.status.clone();
    if let Some((job, scheduled)) = &p.create {
        let jname = job.metadata.name.clone().unwrap_or_default();
        let created = match job_api.create(&PostParams::default(), job).await {
            Ok(j) => {
                ctx.recorder
                    .record(
                        cj.as_ref(),
                        "Normal",
                        "SuccessfulCreate",
                        &format!("Created job {jname}"),
                    )
                    .await;
                Some(j)
            }
            Err(kube::Error::Api(e)) if e.code == 409 => {
                let existing = job_api.get(&jname).await?;
                let ours = is_controlled_by(&existing.metadata, &uid);
                let listed = status
                    .active
                    .iter()
                    .flatten()
                    .any(|r| r.uid == existing.metadata.uid);
                (ours && !listed).then_some(existing)
            }
            Err(e) => {
                ctx.recorder
                    .record(
                        cj.as_ref(),
                        "Warning",
                        "FailedCreate",
                        &format!("Error creating job: {e}"),
                    )
                    .await;
                write_status(&ctx, &cj, &status).await?;
                return Err(e.into());
            }
        };
        if let Some(j) = created {
            status.active.get_or_insert_with(Vec::new).push(job_ref(&j));
            status.last_schedule_time = Some(Time(*scheduled));
        }
    }
    write_status(&ctx, &cj, &status).await?;
    Ok(Action::after(p.requeue_after))
}

async fn write_status(ctx: &Ctx, cj: &CronJob, status: &CronJobStatus) -> Result<(), Error> {
    let cur = cj.status.clone().unwrap_or_default();
    let uids = |s: &CronJobStatus| -> Vec<Option<String>> {
        s.active.iter().flatten().map(|r| r.uid.clone()).collect()
    };
    if uids(&cur) == uids(status)
        && cur.last_schedule_time == status.last_schedule_time
        && cur.last_successful_time == status.last_successful_time
    {
        return Ok(());
    }
    let api: Api<CronJob> = Api::namespaced(
        ctx.client.clone(),
        cj.metadata.namespace.as_deref().unwrap_or(""),
    );
    let mut obj = cj.clone();
    obj.status = Some(status.clone());
    let name = cj.metadata.name.as_deref().unwrap_or("");
    ignore_not_found(api.replace_status(name, &PostParams::default(), &obj).await)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::podutil::tests::at;
    use k8s_openapi::api::batch::v1::{CronJobSpec, JobCondition, JobStatus, JobTemplateSpec};

    fn cj(schedule: &str, policy: &str) -> CronJob {
        CronJob {
            metadata: ObjectMeta {
                name: Some("hello".into()),
                namespace: Some("default".into()),
                uid: Some("cj-uid".into()),
                creation_timestamp: Some(Time(at("2024-01-01T10:00:30Z"))),
                ..Default::default()
            },
            spec: Some(CronJobSpec {
                schedule: schedule.into(),
                concurrency_policy: Some(policy.into()),
                successful_jobs_history_limit: Some(3),
                failed_jobs_history_limit: Some(1),
                job_template: JobTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some([("team".to_string(), "a".to_string())].into()),
                        ..Default::default()
                    }),
                    spec: None,
                },
                ..Default::default()
            }),
            status: None,
        }
    }

    fn job(name: &str, uid: &str, cond: Option<&str>, start: &str) -> Job {
        Job {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(uid.into()),
                ..Default::default()
            },
            spec: None,
            status: Some(JobStatus {
                start_time: Some(Time(at(start))),
                completion_time: (cond == Some("Complete")).then(|| Time(at(start))),
                conditions: cond.map(|c| {
                    vec![JobCondition {
                        type_: c.into(),
                        status: "True".into(),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
        }
    }

    fn active(c: &mut CronJob, j: &Job) {
        c.status
            .get_or_insert_with(Default::default)
            .active
            .get_or_insert_with(Vec::new)
            .push(job_ref(j));
    }

    #[test]
    fn creates_the_job_of_the_most_recent_time() {
        let c = cj("*/5 * * * *", "Allow");
        let p = plan(&c, &[], &[], at("2024-01-01T10:03:00Z"));
        assert!(p.create.is_none(), "10:05 has not come yet");
        assert_eq!(p.requeue_after, Some(Duration::from_millis(120_100)));
        let p = plan(&c, &[], &[], at("2024-01-01T10:12:00Z"));
        let (j, t) = p.create.unwrap();
        assert_eq!(t, at("2024-01-01T10:10:00Z"));
        assert_eq!(j.metadata.name.as_deref(), Some("hello-28401730"));
        assert_eq!(j.metadata.labels.as_ref().unwrap()["team"], "a");
        assert_eq!(
            j.metadata.annotations.as_ref().unwrap()[SCHEDULED_TIMESTAMP_ANNOTATION],
            "2024-01-01T10:10:00Z"
        );
        let r = &j.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((r.kind.as_str(), r.controller), ("CronJob", Some(true)));
        // Next wake-up: 10:15 + 100 ms.
        assert_eq!(p.requeue_after, Some(Duration::from_millis(180_100)));
    }

    #[test]
    fn already_processed_times_are_skipped() {
        let mut c = cj("*/5 * * * *", "Allow");
        c.status = Some(CronJobStatus {
            last_schedule_time: Some(Time(at("2024-01-01T10:10:00Z"))),
            ..Default::default()
        });
        assert!(plan(&c, &[], &[], at("2024-01-01T10:12:00Z"))
            .create
            .is_none());
    }

    #[test]
    fn concurrency_policies() {
        let running = job("hello-1", "j1", None, "2024-01-01T10:05:00Z");
        let mut c = cj("*/5 * * * *", "Forbid");
        active(&mut c, &running);
        let p = plan(&c, &[&running], &[], at("2024-01-01T10:12:00Z"));
        assert!(p.create.is_none());
        assert_eq!(p.events[0].1, "JobAlreadyActive");
        let mut c = cj("*/5 * * * *", "Replace");
        active(&mut c, &running);
        let p = plan(&c, &[&running], &[], at("2024-01-01T10:12:00Z"));
        assert_eq!(p.delete, vec!["hello-1".to_string()]);
        assert!(p.create.is_some());
        assert!(p.status.active.is_none());
        let mut c = cj("*/5 * * * *", "Allow");
        active(&mut c, &running);
        let p = plan(&c, &[&running], &[], at("2024-01-01T10:12:00Z"));
        assert!(p.delete.is_empty() && p.create.is_some());
    }

    #[test]
    fn finished_jobs_leave_active_and_history_is_trimmed() {
        let mut c = cj("*/5 * * * *", "Allow");
        let done = job("hello-2", "j2", Some("Complete"), "2024-01-01T10:05:00Z");
        active(&mut c, &done);
        let olds: Vec<Job> = (0..4)
            .map(|i| {
                job(
                    &format!("hello-old{i}"),
                    &format!("o{i}"),
                    Some("Complete"),
                    &format!("2024-01-01T0{i}:00:00Z"),
                )
            })
            .collect();
        let f1 = job("hello-f1", "f1", Some("Failed"), "2024-01-01T01:00:00Z");
        let f2 = job("hello-f2", "f2", Some("Failed"), "2024-01-01T02:00:00Z");
        let mut all: Vec<&Job> = olds.iter().collect();
        all.extend([&done, &f1, &f2]);
        let p = plan(&c, &all, &[], at("2024-01-01T10:07:00Z"));
        assert!(p.status.active.is_none());
        assert_eq!(
            p.events[0].2,
            "Saw completed job: hello-2, condition: Complete"
        );
        assert_eq!(
            p.status.last_successful_time.as_ref().map(|t| t.0),
            Some(at("2024-01-01T10:05:00Z"))
        );
        assert_eq!(p.delete, vec!["hello-old0", "hello-old1", "hello-f1"]);
    }

    #[test]
    fn suspend_deadline_and_bad_input() {
        let mut c = cj("*/5 * * * *", "Allow");
        c.spec.as_mut().unwrap().suspend = Some(true);
        assert!(plan(&c, &[], &[], at("2024-01-01T10:12:00Z"))
            .create
            .is_none());
        let mut c = cj("*/5 * * * *", "Allow");
        c.spec.as_mut().unwrap().starting_deadline_seconds = Some(60);
        let p = plan(&c, &[], &[], at("2024-01-01T10:12:00Z"));
        assert!(p.create.is_none(), "10:10 is more than 60 s ago");
        assert!(
            p.events.is_empty(),
            "nothing falls inside the deadline window"
        );
        let p = plan(&c, &[], &[], at("2024-01-01T10:10:30Z"));
        assert!(p.create.is_some());
        let mut c = cj("*/5 * * * *", "Allow");
        c.spec.as_mut().unwrap().time_zone = Some("Nowhere/City".into());
        assert_eq!(
            plan(&c, &[], &[], at("2024-01-01T10:12:00Z")).events[0].1,
            "UnknownTimeZone"
        );
        let c = cj("not a schedule", "Allow");
        assert_eq!(
            plan(&c, &[], &[], at("2024-01-01T10:12:00Z")).events[0].1,
            "UnparseableSchedule"
        );
    }

    #[test]
    fn missed_schedules() {
        let c = cj("0 * * * *", "Allow");
        let cron = schedule::parse("0 * * * *", None).unwrap();
        let (_, t, m) =
            most_recent_schedule_time(&c, at("2024-01-01T15:30:00Z"), &cron, true).unwrap();
        assert_eq!(t, Some(at("2024-01-01T15:00:00Z")));
        assert_eq!(m, Missed::Few);
        let (_, t, m) =
            most_recent_schedule_time(&c, at("2024-02-01T15:30:00Z"), &cron, true).unwrap();
        assert_eq!(t, Some(at("2024-02-01T15:00:00Z")));
        assert_eq!(m, Missed::Many);
        // Irregular schedule: 06:30, 10:30, 14:30 on weekdays.
        let c = cj("30 6-16/4 * * 1-5", "Allow");
        let cron = schedule::parse("30 6-16/4 * * 1-5", None).unwrap();
        let (_, t, _) =
            most_recent_schedule_time(&c, at("2024-01-05T12:00:00Z"), &cron, true).unwrap();
        assert_eq!(t, Some(at("2024-01-05T10:30:00Z")));
        // A time zone moves the wall clock.
        let cron = schedule::parse("0 9 * * *", Some("Europe/Berlin")).unwrap();
        let j = job_for(&c, at("2024-01-02T08:00:00Z"), &cron);
        assert_eq!(
            j.metadata.annotations.as_ref().unwrap()[SCHEDULED_TIMESTAMP_ANNOTATION],
            "2024-01-02T09:00:00+01:00"
        );
    }

    #[test]
    fn missing_active_jobs_are_dropped() {
        let mut c = cj("*/5 * * * *", "Forbid");
        let gone = job("hello-9", "j9", None, "2024-01-01T10:05:00Z");
        active(&mut c, &gone);
        let p = plan(
            &c,
            &[],
            &["hello-9".to_string()],
            at("2024-01-01T10:12:00Z"),
        );
        assert_eq!(p.events[0].1, "MissingJob");
        assert!(p.create.is_some(), "Forbid no longer blocks");
    }
}
