//! Latency samples and their summaries (percentiles in milliseconds).

use serde::Serialize;
use std::time::Duration;

/// A summary of latency samples.
#[derive(Debug, Clone, Copy, Serialize, Default, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

/// The `q`-quantile (0..=1) of sorted samples, nearest-rank.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Summarizes samples given in microseconds.
pub fn summarize(mut micros: Vec<u64>) -> Summary {
    if micros.is_empty() {
        return Summary::default();
    }
    micros.sort_unstable();
    let ms = |us: u64| us as f64 / 1000.0;
    let sum: u128 = micros.iter().map(|&x| x as u128).sum();
    Summary {
        count: micros.len(),
        p50_ms: ms(quantile(&micros, 0.50)),
        p90_ms: ms(quantile(&micros, 0.90)),
        p99_ms: ms(quantile(&micros, 0.99)),
        max_ms: ms(*micros.last().unwrap_or(&0)),
        mean_ms: sum as f64 / micros.len() as f64 / 1000.0,
    }
}

/// Microseconds of a duration, saturating.
pub fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The median of durations (upper median for even counts), in milliseconds.
pub fn median_ms(v: &[Duration]) -> Option<f64> {
    let mut s: Vec<u64> = v.iter().map(|d| us(*d)).collect();
    s.sort_unstable();
    (!s.is_empty()).then(|| quantile(&s, 0.5) as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), 50);
        assert_eq!(quantile(&v, 0.99), 99);
        assert_eq!(quantile(&v, 1.0), 100);
        assert_eq!(quantile(&v, 0.0), 1);
        assert_eq!(quantile(&[], 0.5), 0);
    }

    #[test]
    fn summary_reports_milliseconds() {
        let s = summarize(vec![3000, 1000, 2000]);
        assert_eq!(s.count, 3);
        assert_eq!(s.p50_ms, 2.0);
        assert_eq!(s.p99_ms, 3.0);
        assert_eq!(s.max_ms, 3.0);
        assert_eq!(s.mean_ms, 2.0);
        assert_eq!(summarize(vec![]), Summary::default());
    }

    #[test]
    fn median_of_durations() {
        let v = [
            Duration::from_millis(30),
            Duration::from_millis(10),
            Duration::from_millis(20),
        ];
        assert_eq!(median_ms(&v), Some(20.0));
        assert_eq!(median_ms(&[]), None);
    }
}
