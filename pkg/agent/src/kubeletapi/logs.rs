//! `GET /containerLogs/{ns}/{pod}/{container}`: the query (upstream's PodLogOptions), the CRI
//! log file format (`<RFC3339Nano> <stdout|stderr> <F|P> <msg>`), tail/since/limit selection
//! and the follow loop that streams a container's log file as it grows.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

/// How often a followed log file is polled for new bytes.
const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// How often a followed container's state is asked from the runtime.
const FOLLOW_STATE_CHECK: Duration = Duration::from_secs(1);
/// Bytes read from the log file at once.
const READ_CHUNK: usize = 256 * 1024;

/// What the client asked for (upstream's `v1.PodLogOptions` as the kubelet reads it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogOptions {
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    /// Lines older than this are skipped (`sinceSeconds` resolved against the request time,
    /// or `sinceTime`).
    pub since: Option<DateTime<Utc>>,
    /// Only the last N lines of the file.
    pub tail: Option<u64>,
    /// Stop after this many bytes.
    pub limit_bytes: Option<u64>,
}

/// A refused query: 400 when it cannot be decoded, 422 when it is invalid (upstream's bodies).
#[derive(Debug, Clone, PartialEq)]
pub enum QueryError {
    Decode,
    Invalid,
}

impl QueryError {
    pub fn status(&self) -> http::StatusCode {
        match self {
            QueryError::Decode => http::StatusCode::BAD_REQUEST,
            QueryError::Invalid => http::StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    pub fn text(&self) -> &'static str {
        match self {
            QueryError::Decode => r#"{"message": "Unable to decode query."}"#,
            QueryError::Invalid => r#"{"message": "Invalid request."}"#,
        }
    }
}

/// apimachinery's query → bool conversion: absent, `0` and `false` are false, anything else
/// is true.
pub fn query_bool(v: &str) -> bool {
    !(v == "0" || v.eq_ignore_ascii_case("false"))
}

/// Parses the containerLogs query as the kubelet does (`tail=` is the old `tailLines=`,
/// `tail=all` means no limit), validating like `ValidatePodLogOptions`.
pub fn parse_query(
    pairs: &[(String, String)],
    now: DateTime<Utc>,
) -> Result<LogOptions, QueryError> {
    let mut o = LogOptions::default();
    let mut since_seconds: Option<i64> = None;
    let mut since_time: Option<DateTime<Utc>> = None;
    let mut tail_lines: Option<i64> = None;
    let mut limit: Option<i64> = None;
    let int = |v: &str| v.trim().parse::<i64>().map_err(|_| QueryError::Decode);
    // The old `tail` overrides `tailLines`; read it first so the loop can skip it.
    let old_tail = pairs.iter().find(|(k, v)| k == "tail" && !v.is_empty());
    for (k, v) in pairs {
        match k.as_str() {
            "follow" => o.follow = query_bool(v),
            "previous" => o.previous = query_bool(v),
            "timestamps" => o.timestamps = query_bool(v),
            "sinceSeconds" => since_seconds = Some(int(v)?),
            "sinceTime" => {
                since_time = Some(
                    DateTime::parse_from_rfc3339(v)
                        .map_err(|_| QueryError::Decode)?
                        .with_timezone(&Utc),
                )
            }
            "tailLines" if old_tail.is_none() => tail_lines = Some(int(v)?),
            "limitBytes" => limit = Some(int(v)?),
            _ => {}
        }
    }
    if let Some((_, t)) = old_tail {
        tail_lines = if t == "all" { None } else { Some(int(t)?) };
    }
    if since_seconds.is_some() && since_time.is_some() {
        return Err(QueryError::Invalid);
    }
    if let Some(s) = since_seconds {
        if s < 1 {
            return Err(QueryError::Invalid);
        }
        o.since = Some(now - chrono::Duration::seconds(s));
    }
    if let Some(t) = since_time {
        o.since = Some(t);
    }
    if let Some(t) = tail_lines {
        if t < 0 {
            return Err(QueryError::Invalid);
        }
        o.tail = Some(t as u64);
    }
    if let Some(l) = limit {
        if l < 1 {
            return Err(QueryError::Invalid);
        }
        o.limit_bytes = Some(l as u64);
    }
    Ok(o)
}

/// One line of a CRI log file.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine<'a> {
    /// The RFC 3339 time field, parsed only when needed (see [`LogLine::time`]): most reads
    /// neither filter by time nor print it, and parsing is the bulk of the per-line cost.
    pub time_raw: &'a [u8],
    pub stderr: bool,
    /// `P`: a piece of a longer line; the rest follows in the next lines up to an `F`.
    pub partial: bool,
    pub msg: &'a [u8],
}

impl LogLine<'_> {
    /// The line's time; `None` when the field is not RFC 3339.
    pub fn time(&self) -> Option<DateTime<FixedOffset>> {
        DateTime::parse_from_rfc3339(std::str::from_utf8(self.time_raw).ok()?).ok()
    }
}

/// Splits one CRI log line (without its `\n`); `None` when it is not in that format (the time
/// field is only checked to start with a digit; [`LogLine::time`] parses it).
pub fn parse_line(line: &[u8]) -> Option<LogLine<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let time_raw = parts.next()?;
    if !time_raw.first()?.is_ascii_digit() {
        return None;
    }
    let stderr = match parts.next()? {
        b"stdout" => false,
        b"stderr" => true,
        _ => return None,
    };
    // Tags are `:`-separated; the first says full or partial.
    let tags = parts.next()?;
    let partial = match tags.split(|b| *b == b':').next()? {
        b"F" => false,
        b"P" => true,
        _ => return None,
    };
    Some(LogLine {
        time_raw,
        stderr,
        partial,
        msg: parts.next().unwrap_or_default(),
    })
}

/// The kubelet's `timestamps=true` prefix: RFC 3339 with exactly nine fraction digits.
pub fn format_timestamp(t: &DateTime<FixedOffset>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Turns CRI log lines into what the client reads: message bytes (a `\n` after each full
/// line), the timestamp prefix at the start of each line, the since filter and the byte limit.
#[derive(Debug)]
pub struct LogWriter {
    timestamps: bool,
    since: Option<DateTime<Utc>>,
    remain: Option<u64>,
    at_line_start: bool,
}

impl LogWriter {
    pub fn new(opts: &LogOptions) -> LogWriter {
        LogWriter {
            timestamps: opts.timestamps,
            since: opts.since,
            remain: opts.limit_bytes,
            at_line_start: true,
        }
    }

    /// Appends the output for one raw file line (without `\n`) to `out`. Returns false once
    /// the byte limit is reached (nothing more may be written). Unparsable lines are skipped.
    pub fn push(&mut self, raw: &[u8], out: &mut Vec<u8>) -> bool {
        if self.remain == Some(0) {
            return false;
        }
        let Some(line) = parse_line(raw) else {
            return true;
        };
        let prefix = self.timestamps && self.at_line_start;
        let time = if prefix || self.since.is_some() {
            match line.time() {
                Some(t) => Some(t),
                None => return true,
            }
        } else {
            None
        };
        self.at_line_start = !line.partial;
        if let (Some(since), Some(t)) = (self.since, time) {
            if t < since {
                return true;
            }
        }
        let start = out.len();
        if let (true, Some(t)) = (prefix, time) {
            out.extend_from_slice(format_timestamp(&t).as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(line.msg);
        if !line.partial {
            out.push(b'\n');
        }
        if let Some(remain) = self.remain.as_mut() {
            let written = (out.len() - start) as u64;
            if written >= *remain {
                out.truncate(start + *remain as usize);
                *remain = 0;
                return false;
            }
            *remain -= written;
        }
        true
    }
}

/// The offset where the last `n` lines of `r` start (a final `\n` ends the last line; an
/// unterminated last piece counts as a line), like upstream's `tail.FindTailLineStartIndex`.
pub fn tail_start<R: Read + Seek>(r: &mut R, n: u64) -> std::io::Result<u64> {
    let size = r.seek(SeekFrom::End(0))?;
    if n == 0 {
        return Ok(size);
    }
    const BLOCK: u64 = 64 * 1024;
    let mut buf = vec![0u8; BLOCK as usize];
    let mut end = size;
    let mut seen = 0u64;
    let mut skip_final_newline = true;
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        let len = (end - start) as usize;
        r.seek(SeekFrom::Start(start))?;
        r.read_exact(&mut buf[..len])?;
        for i in (0..len).rev() {
            if buf[i] != b'\n' {
                skip_final_newline = false;
                continue;
            }
            if skip_final_newline {
                skip_final_newline = false;
                continue;
            }
            seen += 1;
            if seen == n {
                return Ok(start + i as u64 + 1);
            }
        }
        end = start;
    }
    Ok(0)
}

/// Why a log stream ended early.
#[derive(Debug, thiserror::Error)]
pub enum StreamEnd {
    #[error("failed to read log file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Streams the log file at `path` into `tx` as `opts` asks: tail and since selection, byte
/// limit, and with `follow` new lines as they are written until `running` says the container
/// exited and the file is drained, or the client went away (`tx` closed).
pub async fn stream_file<F, Fut>(
    path: PathBuf,
    opts: LogOptions,
    mut running: F,
    tx: mpsc::Sender<Bytes>,
) -> Result<(), StreamEnd>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let err = |source| StreamEnd::Read {
        path: path.display().to_string(),
        source,
    };
    let start = match opts.tail {
        None => 0,
        Some(n) => {
            let p = path.clone();
            tokio::task::spawn_blocking(move || {
                let mut f = std::fs::File::open(&p)?;
                tail_start(&mut f, n)
            })
            .await
            .map_err(|e| err(std::io::Error::other(e)))?
            .map_err(err)?
        }
    };
    let mut file = tokio::fs::File::open(&path).await.map_err(err)?;
    file.seek(SeekFrom::Start(start)).await.map_err(err)?;
    let mut writer = LogWriter::new(&opts);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut pending: Vec<u8> = Vec::new();
    let mut exited = false;
    let mut last_check = tokio::time::Instant::now();
    loop {
        let n = file.read(&mut buf).await.map_err(err)?;
        if n == 0 {
            // A followed container that is still running: wait for more.
            if opts.follow && !exited {
                if tx.is_closed() {
                    return Ok(());
                }
                tokio::time::sleep(FOLLOW_POLL).await;
                if last_check.elapsed() >= FOLLOW_STATE_CHECK {
                    exited = !running().await;
                    last_check = tokio::time::Instant::now();
                }
                continue;
            }
            // Done: an unterminated last piece is still shown, as upstream does.
            if !pending.is_empty() {
                let mut out = Vec::new();
                writer.push(&pending, &mut out);
                if !out.is_empty() {
                    let _ = tx.send(Bytes::from(out)).await;
                }
            }
            return Ok(());
        }
        pending.extend_from_slice(&buf[..n]);
        let mut out = Vec::with_capacity(n + n / 4);
        let mut consumed = 0;
        let mut more = true;
        while let Some(i) = pending[consumed..].iter().position(|b| *b == b'\n') {
            more = writer.push(&pending[consumed..consumed + i], &mut out);
            consumed += i + 1;
            if !more {
                break;
            }
        }
        pending.drain(..consumed);
        if !out.is_empty() && tx.send(Bytes::from(out)).await.is_err() {
            return Ok(());
        }
        if !more {
            return Ok(());
        }
    }
}

/// The newest attempt's log file under `<log_dir>/<container>/` (`<restartCount>.log`), for
/// a container whose runtime record is gone.
pub fn newest_attempt_file(log_dir: &Path, container: &str) -> Option<(u32, PathBuf)> {
    let dir = log_dir.join(container);
    std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.strip_suffix(".log")?.parse::<u32>().ok()?;
            Some((n, e.path()))
        })
        .max_by_key(|(n, _)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        q.split('&')
            .filter(|s| !s.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-07T02:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn query_is_read_like_the_kubelet() {
        let o = parse_query(
            &pairs(
                "follow=true&previous=1&timestamps=true&sinceSeconds=60&tailLines=5&limitBytes=10",
            ),
            now(),
        )
        .unwrap();
        assert!(o.follow && o.previous && o.timestamps);
        assert_eq!(o.since.unwrap().to_rfc3339(), "2026-12-07T01:59:00+00:00");
        assert_eq!((o.tail, o.limit_bytes), (Some(5), Some(10)));
        assert_eq!(
            parse_query(&pairs("follow=false"), now()).unwrap(),
            LogOptions::default()
        );
        // the old `tail=` wins, `all` means everything
        assert_eq!(
            parse_query(&pairs("tailLines=3&tail=7"), now())
                .unwrap()
                .tail,
            Some(7)
        );
        assert_eq!(
            parse_query(&pairs("tailLines=3&tail=all"), now())
                .unwrap()
                .tail,
            None
        );
        let t = parse_query(&pairs("sinceTime=2026-12-07T01:00:00Z"), now()).unwrap();
        assert_eq!(t.since.unwrap().to_rfc3339(), "2026-12-07T01:00:00+00:00");
        assert_eq!(
            parse_query(&pairs("tailLines=x"), now()),
            Err(QueryError::Decode)
        );
        assert_eq!(
            parse_query(&pairs("tailLines=-1"), now()),
            Err(QueryError::Invalid)
        );
        assert_eq!(
            parse_query(&pairs("limitBytes=0"), now()),
            Err(QueryError::Invalid)
        );
        assert_eq!(
            parse_query(
                &pairs("sinceSeconds=5&sinceTime=2026-12-07T01:00:00Z"),
                now()
            ),
            Err(QueryError::Invalid)
        );
        assert_eq!(QueryError::Invalid.status(), 422);
    }

    #[test]
    fn cri_lines_parse() {
        let l = parse_line(b"2026-12-07T01:02:03.123456789Z stdout F hello world").unwrap();
        assert!(!l.stderr && !l.partial);
        assert_eq!(l.msg, b"hello world");
        let l = parse_line(b"2026-12-07T01:02:03.1Z stderr P part").unwrap();
        assert!(l.stderr && l.partial);
        assert_eq!(
            parse_line(b"2026-12-07T01:02:03Z stdout F ").unwrap().msg,
            b""
        );
        assert_eq!(
            parse_line(b"2026-12-07T01:02:03Z stdout F").unwrap().msg,
            b""
        );
        assert!(parse_line(b"garbage").is_none());
        assert!(parse_line(b"2026-13-99Tx stdout F x")
            .unwrap()
            .time()
            .is_none());
        assert!(parse_line(b"2026-12-07T01:02:03Z stdin F x").is_none());
        assert_eq!(
            format_timestamp(
                &parse_line(b"2026-12-07T01:02:03.5Z stdout F x")
                    .unwrap()
                    .time()
                    .unwrap()
            ),
            "2026-12-07T01:02:03.500000000Z"
        );
    }

    fn render(opts: &LogOptions, lines: &[&str]) -> String {
        let mut w = LogWriter::new(opts);
        let mut out = Vec::new();
        for l in lines {
            if !w.push(l.as_bytes(), &mut out) {
                break;
            }
        }
        String::from_utf8(out).unwrap()
    }

    const LINES: [&str; 4] = [
        "2026-12-07T01:00:00Z stdout F one",
        "2026-12-07T01:00:01Z stdout P tw",
        "2026-12-07T01:00:02Z stdout F o",
        "2026-12-07T01:00:03Z stderr F three",
    ];

    #[test]
    fn partial_lines_join_and_timestamps_prefix_each_line_once() {
        assert_eq!(render(&LogOptions::default(), &LINES), "one\ntwo\nthree\n");
        let ts = LogOptions {
            timestamps: true,
            ..Default::default()
        };
        assert_eq!(
            render(&ts, &LINES),
            "2026-12-07T01:00:00.000000000Z one\n2026-12-07T01:00:01.000000000Z two\n\
             2026-12-07T01:00:03.000000000Z three\n"
        );
    }

    #[test]
    fn since_and_limit_select() {
        let since = LogOptions {
            since: Some(
                DateTime::parse_from_rfc3339("2026-12-07T01:00:02Z")
                    .unwrap()
                    .with_timezone(&Utc),
            ),
            ..Default::default()
        };
        assert_eq!(render(&since, &LINES), "o\nthree\n");
        let limit = LogOptions {
            limit_bytes: Some(6),
            ..Default::default()
        };
        assert_eq!(render(&limit, &LINES), "one\ntw");
        let exact = LogOptions {
            limit_bytes: Some(4),
            ..Default::default()
        };
        assert_eq!(render(&exact, &LINES), "one\n");
    }

    #[test]
    fn tail_finds_the_last_lines() {
        let text = b"a\nbb\nccc\n";
        let mut c = std::io::Cursor::new(&text[..]);
        assert_eq!(tail_start(&mut c, 0).unwrap(), 9);
        assert_eq!(tail_start(&mut c, 1).unwrap(), 5);
        assert_eq!(tail_start(&mut c, 2).unwrap(), 2);
        assert_eq!(tail_start(&mut c, 3).unwrap(), 0);
        assert_eq!(tail_start(&mut c, 10).unwrap(), 0);
        let unterminated = b"a\nbb\nccc";
        let mut c = std::io::Cursor::new(&unterminated[..]);
        assert_eq!(tail_start(&mut c, 1).unwrap(), 5);
        // across block boundaries
        let long: Vec<u8> = (0..50_000)
            .flat_map(|i| format!("{i:05}\n").into_bytes())
            .collect();
        let mut c = std::io::Cursor::new(&long[..]);
        let at = tail_start(&mut c, 20_000).unwrap() as usize;
        assert_eq!(&long[at..at + 6], b"30000\n");
    }

    #[tokio::test]
    async fn follow_streams_new_lines_until_the_container_exits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(&path, format!("{}\n{}\n", LINES[0], LINES[1])).unwrap();
        let (tx, mut rx) = mpsc::channel(8);
        let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let r = running.clone();
        let opts = LogOptions {
            follow: true,
            tail: Some(1),
            ..Default::default()
        };
        let task = tokio::spawn(stream_file(
            path.clone(),
            opts,
            move || {
                let r = r.clone();
                async move { r.load(std::sync::atomic::Ordering::SeqCst) }
            },
            tx,
        ));
        assert_eq!(rx.recv().await.unwrap(), Bytes::from_static(b"tw"));
        {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap();
            writeln!(f, "{}", LINES[2]).unwrap();
            write!(f, "{}", &LINES[3][..20]).unwrap();
            f.flush().unwrap();
            assert_eq!(rx.recv().await.unwrap(), Bytes::from_static(b"o\n"));
            writeln!(f, "{}", &LINES[3][20..]).unwrap();
        }
        assert_eq!(rx.recv().await.unwrap(), Bytes::from_static(b"three\n"));
        running.store(false, std::sync::atomic::Ordering::SeqCst);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("follow ends once the container exited")
            .unwrap()
            .unwrap();
        assert!(rx.recv().await.is_none());
    }

    #[test]
    fn newest_attempt_is_the_highest_number() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("c")).unwrap();
        for n in ["0.log", "2.log", "10.log", "x.log"] {
            std::fs::write(dir.path().join("c").join(n), "").unwrap();
        }
        let (n, p) = newest_attempt_file(dir.path(), "c").unwrap();
        assert_eq!(n, 10);
        assert!(p.ends_with("c/10.log"));
        assert!(newest_attempt_file(dir.path(), "missing").is_none());
    }
}
