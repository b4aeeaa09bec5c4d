//! Child processes that die with the bench (kill on drop, also when unwinding from a panic),
//! free loopback ports, and /proc readings (RSS, CPU time, load, machine facts).

use crate::error::{BenchError, Result};
use serde::Serialize;
use std::collections::HashMap;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A spawned child process that is killed (SIGKILL) and reaped when dropped.
pub struct ChildGuard {
    child: Option<Child>,
    name: String,
    log: PathBuf,
}

impl ChildGuard {
    /// Spawns `program args…` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, program: &Path, args: &[String], log: &Path) -> Result<ChildGuard> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(BenchError::io(format!("opening log {}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(BenchError::io(format!("opening log {}", log.display())))?;
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|source| BenchError::Spawn {
                program: program.display().to_string(),
                source,
            })?;
        Ok(ChildGuard {
            child: Some(child),
            name: name.to_string(),
            log: log.to_path_buf(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Fails with the exit status if the child has already exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(c) = self.child.as_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                return Err(BenchError::Exited {
                    what: self.name.clone(),
                    status: status.to_string(),
                    log: self.log.clone(),
                });
            }
        }
        Ok(())
    }

    /// Kills the child with SIGKILL (no graceful shutdown, like a crash) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(BenchError::io("finding a free port"))?;
    let port = l
        .local_addr()
        .map_err(BenchError::io("finding a free port"))?
        .port();
    Ok(port)
}

/// Resident set size of a process in KiB (VmRSS), if readable.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&s, "VmRSS:")
}

/// Peak resident set size of a process in KiB (VmHWM), if readable.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&s, "VmHWM:")
}

fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Memory of a process split by kind (KiB), and its thread count, from /proc/<pid>/status.
#[derive(Debug, Clone, Copy, Serialize, Default, PartialEq)]
pub struct MemBreakdown {
    pub rss_kib: u64,
    pub anon_kib: u64,
    pub file_kib: u64,
    pub shmem_kib: u64,
    pub threads: u64,
}

/// Reads the RSS breakdown of `pid`.
pub fn mem_breakdown(pid: u32) -> Option<MemBreakdown> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(MemBreakdown {
        rss_kib: parse_status_kib(&s, "VmRSS:")?,
        anon_kib: parse_status_kib(&s, "RssAnon:").unwrap_or(0),
        file_kib: parse_status_kib(&s, "RssFile:").unwrap_or(0),
        shmem_kib: parse_status_kib(&s, "RssShmem:").unwrap_or(0),
        threads: parse_status_kib(&s, "Threads:").unwrap_or(0),
    })
}

/// CPU time used so far by each thread name (`comm`) of a process, summed per name.
pub fn thread_cpu(pid: u32) -> HashMap<String, Duration> {
    let mut out = HashMap::new();
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let name = stat
            .find('(')
            .zip(stat.rfind(')'))
            .map(|(a, b)| stat[a + 1..b].to_string())
            .unwrap_or_default();
        if let Some(t) = parse_stat_ticks(&stat) {
            *out.entry(name).or_insert(Duration::ZERO) +=
                Duration::from_secs_f64(t as f64 / clock_ticks() as f64);
        }
    }
    out
}

/// CPU seconds per thread name between two [`thread_cpu`] snapshots, busiest first.
pub fn thread_cpu_delta(
    before: &HashMap<String, Duration>,
    after: &HashMap<String, Duration>,
) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = after
        .iter()
        .map(|(k, a)| {
            let b = before.get(k).copied().unwrap_or(Duration::ZERO);
            (k.clone(), a.saturating_sub(b).as_secs_f64())
        })
        .filter(|(_, s)| *s > 0.0)
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    v
}

/// User+system CPU time a process has used so far.
pub fn cpu_time(pid: &str) -> Option<Duration> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = parse_stat_ticks(&s)?;
    Some(Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64))
}

fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')' come: state(3) ppid(4) … utime(14) stime(15), so utime is index 11.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .filter(|&t: &u64| t > 0)
            .unwrap_or(100)
    })
}

/// The 1, 5 and 15 minute load averages.
pub fn loadavg() -> Option<[f64; 3]> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = s.split_whitespace().map(|x| x.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// Facts about the machine the figures were taken on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub mem_total_mib: u64,
    pub date_utc: String,
}

/// Reads nproc, the CPU model, the kernel release, total memory and the date.
pub fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_total_mib = parse_status_kib(&meminfo, "MemTotal:").unwrap_or(0) / 1024;
    Machine {
        nproc: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        cpu_model,
        kernel,
        mem_total_mib,
        date_utc: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

/// Total size in bytes of the regular files under `dir`.
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vmrss_from_status() {
        let s = "Name:\tx\nVmHWM:\t  9000 kB\nVmRSS:\t   1234 kB\n";
        assert_eq!(parse_status_kib(s, "VmRSS:"), Some(1234));
        assert_eq!(parse_status_kib(s, "VmHWM:"), Some(9000));
        assert_eq!(parse_status_kib(s, "VmSwap:"), None);
    }

    #[test]
    fn parses_cpu_ticks_after_odd_command_names() {
        let s = "42 (a b) c)) S 1 2 3 4 5 6 7 8 9 10 70 30 0 0 20 0 1 0";
        assert_eq!(parse_stat_ticks(s), Some(100));
    }

    #[test]
    fn thread_cpu_delta_sorts_busiest_first() {
        let mut a = HashMap::new();
        a.insert("w".to_string(), Duration::from_millis(100));
        let mut b = a.clone();
        b.insert("w".to_string(), Duration::from_millis(300));
        b.insert("x".to_string(), Duration::from_millis(500));
        b.insert("idle".to_string(), Duration::ZERO);
        let d = thread_cpu_delta(&a, &b);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].0, "x");
        assert!((d[1].1 - 0.2).abs() < 1e-9);
    }

    #[test]
    fn own_process_is_readable() {
        let m = mem_breakdown(std::process::id()).unwrap();
        assert!(m.rss_kib > 0 && m.threads >= 1);
        assert!(!thread_cpu(std::process::id()).is_empty());
        let pid = std::process::id();
        assert!(rss_kib(pid).unwrap_or(0) > 0);
        assert!(cpu_time("self").is_some());
        assert!(loadavg().is_some());
        assert!(machine().nproc >= 1);
    }

    #[test]
    fn child_guard_kills_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let g = ChildGuard::spawn("sleep", Path::new("sleep"), &["30".into()], &log).unwrap();
        let pid = g.pid();
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        drop(g);
        // Reaped: the pid is gone (or reused by something that is not our sleep).
        let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(!cmd.starts_with("sleep"));
    }

    #[test]
    fn free_port_is_bindable() {
        let p = free_port().unwrap();
        assert!(p > 0);
        TcpListener::bind(("127.0.0.1", p)).unwrap();
    }
}
