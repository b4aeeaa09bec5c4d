//! Restart and image-pull back-off with the kubelet's semantics: 10 s doubling to 300 s per
//! key, measured from the last failure, forgotten after 10 min without one.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// First delay after a failure.
pub const INITIAL: Duration = Duration::from_secs(10);
/// Largest delay (`MaxContainerBackOff`).
pub const MAX: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy)]
struct Entry {
    delay: Duration,
    last_update: Instant,
}

/// Back-off state per key (a container name or an image reference).
#[derive(Debug, Default, Clone)]
pub struct Backoff {
    entries: HashMap<String, Entry>,
}

impl Backoff {
    fn expired(e: &Entry, now: Instant) -> bool {
        now.saturating_duration_since(e.last_update) > 2 * MAX
    }

    /// The time left before `key` may be retried when its last failure happened at
    /// `failed_at`, or `None` when it may be retried now.
    pub fn remaining(&self, key: &str, failed_at: Instant, now: Instant) -> Option<Duration> {
        let e = self.entries.get(key)?;
        if Self::expired(e, now) {
            return None;
        }
        let since = now.saturating_duration_since(failed_at);
        (since < e.delay).then(|| e.delay - since)
    }

    /// The current delay of `key` (what the waiting message reports), 0 when none.
    pub fn delay(&self, key: &str) -> Duration {
        self.entries.get(key).map(|e| e.delay).unwrap_or_default()
    }

    /// Records a retry at `now`: the first one (or one after 10 min of quiet) gets
    /// [`INITIAL`], each further one doubles the delay up to [`MAX`].
    pub fn next(&mut self, key: &str, now: Instant) {
        let entry = self.entries.entry(key.to_string()).or_insert(Entry {
            delay: Duration::ZERO,
            last_update: now,
        });
        entry.delay = if entry.delay.is_zero() || Self::expired(entry, now) {
            INITIAL
        } else {
            (entry.delay * 2).min(MAX)
        };
        entry.last_update = now;
    }

    /// Forgets `key` (e.g. after a successful image pull).
    pub fn reset(&mut self, key: &str) {
        self.entries.remove(key);
    }
}

/// `40s`, `5m0s`: Go's `time.Duration.String()` for whole seconds, as in back-off messages.
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s / 60) % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec}s"),
        (h, m, sec) => format!("{h}h{m}m{sec}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_failure_restarts_at_once_then_doubles_to_the_cap() {
        let t0 = Instant::now();
        let mut b = Backoff::default();
        assert_eq!(b.remaining("web", t0, t0), None);
        b.next("web", t0);
        assert_eq!(b.delay("web"), INITIAL);
        // failed again 1 s after the restart: 10 s from that failure
        let failed = t0 + Duration::from_secs(1);
        let now = failed + Duration::from_secs(4);
        assert_eq!(
            b.remaining("web", failed, now),
            Some(Duration::from_secs(6))
        );
        assert_eq!(b.remaining("web", failed, failed + INITIAL), None);
        let mut delays = Vec::new();
        let mut t = t0;
        for _ in 0..7 {
            t += Duration::from_secs(1);
            b.next("web", t);
            delays.push(b.delay("web").as_secs());
        }
        assert_eq!(delays, vec![20, 40, 80, 160, 300, 300, 300]);
    }

    #[test]
    fn ten_quiet_minutes_reset_the_delay() {
        let t0 = Instant::now();
        let mut b = Backoff::default();
        b.next("web", t0);
        b.next("web", t0 + Duration::from_secs(10));
        assert_eq!(b.delay("web"), Duration::from_secs(20));
        let later = t0 + Duration::from_secs(10 + 601);
        assert_eq!(b.remaining("web", later, later), None);
        b.next("web", later);
        assert_eq!(b.delay("web"), INITIAL);
    }

    #[test]
    fn keys_are_independent_and_reset_forgets() {
        let t0 = Instant::now();
        let mut b = Backoff::default();
        b.next("a", t0);
        assert!(b.remaining("a", t0, t0).is_some());
        assert_eq!(b.remaining("b", t0, t0), None);
        b.reset("a");
        assert_eq!(b.remaining("a", t0, t0), None);
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(go_duration(Duration::from_secs(40)), "40s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
        assert_eq!(go_duration(Duration::from_secs(160)), "2m40s");
    }
}
