//! Leader election on coordination.k8s.io/v1 Leases in `kube-system`, with client-go's
//! semantics: the holder renews `renewTime` every retry period and gives up leading when it
//! could not renew within the renew deadline; a candidate takes the lease over once the record
//! it observes has not changed for `leaseDurationSeconds` (measured on its own clock from when
//! it saw the record change, so clock skew between servers does not matter), bumping
//! `leaseTransitions`. Every write is a compare-and-swap on the Lease's resourceVersion.
//! Used when several servers share a datastore: only the holder of `skiff-controllers` runs
//! the controllers and only the holder of `skiff-scheduler` the scheduler.

use crate::rest::{self, Mutation, WriteOpts};
use crate::state::AppState;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The Lease names, as upstream's components use `kube-controller-manager` / `kube-scheduler`.
pub const CONTROLLERS_LEASE: &str = "skiff-controllers";
pub const SCHEDULER_LEASE: &str = "skiff-scheduler";
const NAMESPACE: &str = "kube-system";

/// Upstream's timing flags (`--leader-elect-lease-duration`, `-renew-deadline`,
/// `-retry-period`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

impl Timing {
    /// Upstream's constraints: lease duration > renew deadline > retry period (× 1.2 jitter).
    pub fn validate(&self) -> Result<(), String> {
        if self.lease_duration <= self.renew_deadline {
            return Err(format!(
                "--leader-elect-lease-duration ({:?}) must be greater than --leader-elect-renew-deadline ({:?})",
                self.lease_duration, self.renew_deadline
            ));
        }
        if self.renew_deadline.as_secs_f64() <= 1.2 * self.retry_period.as_secs_f64() {
            return Err(format!(
                "--leader-elect-renew-deadline ({:?}) must be greater than 1.2 × --leader-elect-retry-period ({:?})",
                self.renew_deadline, self.retry_period
            ));
        }
        if self.retry_period.is_zero() {
            return Err("--leader-elect-retry-period must be positive".into());
        }
        Ok(())
    }
}

/// The election-relevant part of a Lease's spec.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Record {
    pub holder: String,
    pub duration_secs: i64,
    pub acquire_time: Option<String>,
    pub renew_time: Option<String>,
    pub transitions: i64,
}

impl Record {
    fn from_lease(lease: &Value) -> Record {
        let spec = &lease["spec"];
        let s = |k: &str| spec.get(k).and_then(Value::as_str).map(String::from);
        Record {
            holder: s("holderIdentity").unwrap_or_default(),
            duration_secs: spec["leaseDurationSeconds"].as_i64().unwrap_or(0),
            acquire_time: s("acquireTime"),
            renew_time: s("renewTime"),
            transitions: spec["leaseTransitions"].as_i64().unwrap_or(0),
        }
    }

    fn spec(&self) -> Value {
        json!({
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.duration_secs,
            "acquireTime": self.acquire_time,
            "renewTime": self.renew_time,
            "leaseTransitions": self.transitions,
        })
    }
}

/// What a candidate does with the Lease it just read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No Lease yet: create it holding it.
    Create(Record),
    /// Write this record (a renewal by the holder, or a takeover) with CAS.
    Update(Record),
    /// Someone else holds a live lease: keep watching.
    Follow,
}

/// The pure decision: `current` is the stored record (None: no Lease), `unchanged_for` how
/// long this candidate has seen that record unchanged, `now` the MicroTime to write.
pub fn decide(
    me: &str,
    current: Option<&Record>,
    unchanged_for: Duration,
    lease_duration: Duration,
    now: &str,
) -> Decision {
    let secs = lease_duration.as_secs().max(1) as i64;
    let Some(cur) = current else {
        return Decision::Create(Record {
            holder: me.to_string(),
            duration_secs: secs,
            acquire_time: Some(now.to_string()),
            renew_time: Some(now.to_string()),
            transitions: 0,
        });
    };
    if cur.holder == me {
        return Decision::Update(Record {
            holder: me.to_string(),
            duration_secs: secs,
            acquire_time: cur.acquire_time.clone().or_else(|| Some(now.to_string())),
            renew_time: Some(now.to_string()),
            transitions: cur.transitions,
        });
    }
    // The record's own duration decides its expiry (what the holder promised), as upstream.
    let held_for = if cur.duration_secs > 0 {
        Duration::from_secs(cur.duration_secs as u64)
    } else {
        lease_duration
    };
    if !cur.holder.is_empty() && unchanged_for < held_for {
        return Decision::Follow;
    }
    Decision::Update(Record {
        holder: me.to_string(),
        duration_secs: secs,
        acquire_time: Some(now.to_string()),
        renew_time: Some(now.to_string()),
        transitions: cur.transitions + 1,
    })
}

/// Whether a holder that last renewed `since_renew` ago still leads.
pub fn still_leading(since_renew: Duration, renew_deadline: Duration) -> bool {
    since_renew < renew_deadline
}

fn micro_time() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

fn opts() -> WriteOpts {
    WriteOpts {
        dry_run: false,
        field_manager: "skiff-leader-election".into(),
        field_validation: "Ignore".into(),
        apply: false,
    }
}

/// One candidate's view between rounds.
struct Candidate {
    observed: Option<(Record, Instant)>,
}

enum Round {
    Holding,
    NotHolding,
}

impl Candidate {
    async fn round(
        &mut self,
        st: &Arc<AppState>,
        name: &str,
        me: &str,
        timing: &Timing,
    ) -> Result<Round, String> {
        let res = skiff_api::registry::find("coordination.k8s.io", "v1", "leases")
            .ok_or("leases are not registered")?;
        let now = Instant::now();
        let current = match rest::get_object(st, res, Some(NAMESPACE), name).await {
            Ok(v) => Some(v),
            Err(e) if e.code == 404 => None,
            Err(e) => return Err(e.message),
        };
        let record = current.as_ref().map(Record::from_lease);
        if let Some(r) = &record {
            if self.observed.as_ref().is_none_or(|(o, _)| o != r) {
                self.observed = Some((r.clone(), now));
            }
        }
        let unchanged_for = self
            .observed
            .as_ref()
            .map(|(_, at)| now.duration_since(*at))
            .unwrap_or_default();
        let written = match decide(
            me,
            record.as_ref(),
            unchanged_for,
            timing.lease_duration,
            &micro_time(),
        ) {
            Decision::Follow => return Ok(Round::NotHolding),
            Decision::Create(rec) => {
                let body = json!({
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": name, "namespace": NAMESPACE},
                    "spec": rec.spec(),
                });
                match rest::create_object(st, res, Some(NAMESPACE), body, &opts()).await {
                    Ok(_) => rec,
                    Err(e) if e.code == 409 => return Ok(Round::NotHolding),
                    Err(e) => return Err(e.message),
                }
            }
            Decision::Update(rec) => {
                // The read object carries its resourceVersion: the replace is a CAS.
                let mut body = current.unwrap_or_default();
                body["spec"] = rec.spec();
                match rest::update_object(
                    st,
                    res,
                    Some(NAMESPACE),
                    name,
                    Mutation::Replace(body),
                    &opts(),
                    None,
                )
                .await
                {
                    Ok(_) => rec,
                    Err(e) if e.code == 409 || e.code == 404 => return Ok(Round::NotHolding),
                    Err(e) => return Err(e.message),
                }
            }
        };
        self.observed = Some((written, Instant::now()));
        Ok(Round::Holding)
    }
}

/// Campaigns for Lease `kube-system/<name>` as `identity` until the process ends; the
/// returned receiver is `true` while this server leads.
pub fn spawn(
    st: Arc<AppState>,
    name: &'static str,
    identity: String,
    timing: Timing,
) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut candidate = Candidate { observed: None };
        let mut last_renew: Option<Instant> = None;
        loop {
            let started = Instant::now();
            let outcome = candidate.round(&st, name, &identity, &timing).await;
            let leading = *tx.borrow();
            match outcome {
                Ok(Round::Holding) => {
                    last_renew = Some(started);
                    if !leading {
                        tracing::info!(lease = %name, identity = %identity, "became leader");
                        tx.send_replace(true);
                    }
                }
                Ok(Round::NotHolding) => {
                    if leading {
                        tracing::warn!(lease = %name, identity = %identity, "lost the lease to another server; stopping");
                        tx.send_replace(false);
                    }
                }
                Err(e) => {
                    tracing::warn!(lease = %name, error = %e, "leader election round failed");
                    let renewed_recently = last_renew.is_some_and(|t| {
                        still_leading(Instant::now().duration_since(t), timing.renew_deadline)
                    });
                    if leading && !renewed_recently {
                        tracing::warn!(lease = %name, identity = %identity, "could not renew the lease within the renew deadline; stopping");
                        tx.send_replace(false);
                    }
                }
            }
            if tx.is_closed() {
                return;
            }
            // client-go waits the retry period with up to 20% jitter.
            let jitter = rand::random::<f64>() * 0.2;
            tokio::time::sleep(timing.retry_period.mul_f64(1.0 + jitter)).await;
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Duration = Duration::from_secs(15);

    fn held_by(holder: &str) -> Record {
        Record {
            holder: holder.into(),
            duration_secs: 15,
            acquire_time: Some("t0".into()),
            renew_time: Some("t1".into()),
            transitions: 3,
        }
    }

    #[test]
    fn no_lease_is_created_holding_it() {
        match decide("a", None, Duration::ZERO, D, "now") {
            Decision::Create(r) => {
                assert_eq!(r.holder, "a");
                assert_eq!(r.duration_secs, 15);
                assert_eq!(r.acquire_time.as_deref(), Some("now"));
                assert_eq!(r.renew_time.as_deref(), Some("now"));
                assert_eq!(r.transitions, 0);
            }
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn the_holder_renews_keeping_acquire_time_and_transitions() {
        let cur = held_by("a");
        let d = decide("a", Some(&cur), Duration::from_secs(100), D, "now");
        assert_eq!(
            d,
            Decision::Update(Record {
                holder: "a".into(),
                duration_secs: 15,
                acquire_time: Some("t0".into()),
                renew_time: Some("now".into()),
                transitions: 3,
            })
        );
    }

    #[test]
    fn a_live_lease_of_another_is_followed() {
        let cur = held_by("a");
        assert_eq!(
            decide("b", Some(&cur), Duration::from_secs(14), D, "now"),
            Decision::Follow
        );
    }

    #[test]
    fn an_expired_lease_is_taken_over_with_a_transition() {
        let cur = held_by("a");
        match decide("b", Some(&cur), Duration::from_secs(15), D, "now") {
            Decision::Update(r) => {
                assert_eq!(r.holder, "b");
                assert_eq!(r.acquire_time.as_deref(), Some("now"));
                assert_eq!(r.transitions, 4);
            }
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn the_records_own_duration_decides_expiry() {
        let mut cur = held_by("a");
        cur.duration_secs = 60;
        assert_eq!(
            decide("b", Some(&cur), Duration::from_secs(30), D, "now"),
            Decision::Follow
        );
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        let mut cur = held_by("a");
        cur.holder.clear();
        assert!(matches!(
            decide("b", Some(&cur), Duration::ZERO, D, "now"),
            Decision::Update(r) if r.holder == "b" && r.transitions == 4
        ));
    }

    #[test]
    fn leading_ends_at_the_renew_deadline() {
        let deadline = Duration::from_secs(10);
        assert!(still_leading(Duration::from_secs(9), deadline));
        assert!(!still_leading(Duration::from_secs(10), deadline));
    }

    #[test]
    fn timing_constraints_are_upstreams() {
        assert!(Timing::default().validate().is_ok());
        let t = Timing {
            lease_duration: Duration::from_secs(10),
            ..Default::default()
        };
        assert!(t.validate().unwrap_err().contains("lease-duration"));
        let t = Timing {
            retry_period: Duration::from_secs(9),
            ..Default::default()
        };
        assert!(t.validate().unwrap_err().contains("retry-period"));
    }
}
