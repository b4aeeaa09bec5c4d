//! Request options (which streams, which ports), terminal sizes and exit statuses, and the
//! exact `metav1.Status` JSON the kubelet writes on the error channel.

use serde::Deserialize;

/// Which standard streams an exec/attach session carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl StreamOptions {
    /// Reads the kubelet query as the apiserver writes it (`input=1&output=1&error=1&tty=1`);
    /// `stdin/stdout/stderr=true` (the pod subresource spelling) is accepted too. `Err` carries the
    /// 400 text. With tty, stderr is dropped (a terminal merges it into stdout).
    pub fn from_query(query: &str) -> Result<Self, String> {
        let mut o = StreamOptions::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let on = matches!(v, "1" | "true" | "True" | "TRUE");
            match k {
                "input" | "stdin" => o.stdin |= on,
                "output" | "stdout" => o.stdout |= on,
                "error" | "stderr" => o.stderr |= on,
                "tty" => o.tty |= on,
                _ => {}
            }
        }
        if o.tty && o.stderr {
            o.stderr = false;
        }
        if !o.stdin && !o.stdout && !o.stderr {
            return Err("you must specify at least 1 of stdin, stdout, stderr".to_string());
        }
        Ok(o)
    }
}

/// A terminal size sent by the client (channel 4 / the `resize` stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct TermSize {
    /// Columns (client-go's `TerminalSize` has no json tags, so the keys are `Width`/`Height`).
    #[serde(rename = "Width")]
    pub width: u16,
    #[serde(rename = "Height")]
    pub height: u16,
}

/// Splits a byte stream of concatenated JSON objects (`{"Width":80,"Height":24}` as client-go's
/// json.Encoder writes them) into sizes; keeps an incomplete tail for the next chunk and skips
/// objects that do not parse.
#[derive(Debug, Default)]
pub(crate) struct ResizeDecoder {
    buf: Vec<u8>,
}

impl ResizeDecoder {
    pub(crate) fn push(&mut self, data: &[u8]) -> Vec<TermSize> {
        self.buf.extend_from_slice(data);
        let mut sizes = Vec::new();
        let mut consumed = 0;
        {
            let mut it =
                serde_json::Deserializer::from_slice(&self.buf).into_iter::<serde_json::Value>();
            loop {
                match it.next() {
                    Some(Ok(v)) => {
                        consumed = it.byte_offset();
                        if let Ok(size) = serde_json::from_value::<TermSize>(v) {
                            sizes.push(size);
                        }
                    }
                    Some(Err(e)) if e.is_eof() => break,
                    Some(Err(_)) => {
                        // Garbage: drop everything buffered.
                        consumed = self.buf.len();
                        break;
                    }
                    None => {
                        consumed = self.buf.len();
                        break;
                    }
                }
            }
        }
        self.buf.drain(..consumed);
        sizes
    }
}

/// How the remote command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exit code 0.
    Success,
    /// The process exited with this non-zero code.
    Code(i32),
    /// Anything else (the runtime failed); sent as an InternalError Status.
    Error(String),
}

/// How the status is written on the error channel for the negotiated protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusFormat {
    /// v4/v5: JSON `metav1.Status`, also on success.
    Json,
    /// v1–v3: the error text on failure, nothing on success.
    Text,
}

/// The bytes written on the error channel, if any.
pub(crate) fn status_payload(status: &ExitStatus, format: StatusFormat) -> Option<Vec<u8>> {
    match format {
        StatusFormat::Json => Some(status_json(status).into_bytes()),
        StatusFormat::Text => match status {
            ExitStatus::Success => None,
            ExitStatus::Code(c) => Some(nonzero_message(*c).into_bytes()),
            ExitStatus::Error(e) => Some(internal_message(e).into_bytes()),
        },
    }
}

fn nonzero_message(code: i32) -> String {
    format!("command terminated with non-zero exit code: exit status {code}")
}

fn internal_message(err: &str) -> String {
    format!("Internal error occurred: {err}")
}

/// `metav1.Status` as the kubelet serializes it (Go field order, empty metadata kept).
pub(crate) fn status_json(status: &ExitStatus) -> String {
    let v = match status {
        ExitStatus::Success => serde_json::json!({"metadata": {}, "status": "Success"}),
        ExitStatus::Code(c) => serde_json::json!({
            "metadata": {},
            "status": "Failure",
            "message": nonzero_message(*c),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": c.to_string()}]},
        }),
        ExitStatus::Error(e) => serde_json::json!({
            "metadata": {},
            "status": "Failure",
            "message": internal_message(e),
            "reason": "InternalError",
            "details": {"causes": [{"message": e}]},
            "code": 500,
        }),
    };
    v.to_string()
}

/// Parses repeated `port=` values (each may be a comma list) the way the kubelet does for
/// WebSocket port-forward. `Err` is the 400 text.
pub fn ports_from_query(query: &str) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    let mut seen = false;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k != "port" {
            continue;
        }
        seen = true;
        if v.is_empty() {
            return Err("query parameter \"port\" cannot be empty".to_string());
        }
        let v = v.replace("%2C", ",").replace("%2c", ",");
        for p in v.split(',') {
            let port: u16 = p
                .parse()
                .map_err(|e| format!("unable to parse \"{v}\" as a port: {e}"))?;
            if port < 1 {
                return Err(format!("port \"{v}\" must be > 0"));
            }
            ports.push(port);
        }
    }
    if !seen {
        return Err("query parameter \"port\" is required".to_string());
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_from_kubelet_query() {
        let o =
            StreamOptions::from_query("command=sh&command=-c&input=1&output=1&error=1").unwrap();
        assert_eq!(
            o,
            StreamOptions {
                stdin: true,
                stdout: true,
                stderr: true,
                tty: false
            }
        );
        let o = StreamOptions::from_query("stdout=true&stderr=true&tty=true").unwrap();
        assert_eq!(
            o,
            StreamOptions {
                stdin: false,
                stdout: true,
                stderr: false,
                tty: true
            }
        );
        assert_eq!(
            StreamOptions::from_query("command=ls&tty=1").unwrap_err(),
            "you must specify at least 1 of stdin, stdout, stderr"
        );
    }

    #[test]
    fn status_json_matches_kubelet() {
        assert_eq!(
            status_json(&ExitStatus::Success),
            r#"{"metadata":{},"status":"Success"}"#
        );
        assert_eq!(
            status_json(&ExitStatus::Code(3)),
            r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit status 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#
        );
        let e = status_json(&ExitStatus::Error("boom".into()));
        assert!(
            e.contains(r#""reason":"InternalError""#) && e.ends_with(r#""code":500}"#),
            "{e}"
        );
        assert_eq!(
            status_payload(&ExitStatus::Success, StatusFormat::Text),
            None
        );
        assert_eq!(
            status_payload(&ExitStatus::Code(2), StatusFormat::Text).unwrap(),
            b"command terminated with non-zero exit code: exit status 2"
        );
    }

    #[test]
    fn resize_stream_decoding() {
        let mut d = ResizeDecoder::default();
        assert_eq!(
            d.push(b"{\"Width\":80,\"Height\":24}\n{\"Width\":1"),
            vec![TermSize {
                width: 80,
                height: 24
            }]
        );
        assert_eq!(
            d.push(b"00,\"Height\":50}\n"),
            vec![TermSize {
                width: 100,
                height: 50
            }]
        );
        assert!(d.push(b"not json").is_empty());
        assert_eq!(
            d.push(b"{\"Width\":1,\"Height\":2}"),
            vec![TermSize {
                width: 1,
                height: 2
            }]
        );
    }

    #[test]
    fn ports_query() {
        assert_eq!(
            ports_from_query("port=80,443&port=8080").unwrap(),
            vec![80, 443, 8080]
        );
        assert_eq!(
            ports_from_query("x=1").unwrap_err(),
            "query parameter \"port\" is required"
        );
        assert!(ports_from_query("port=0")
            .unwrap_err()
            .contains("must be > 0"));
        assert!(ports_from_query("port=abc")
            .unwrap_err()
            .starts_with("unable to parse"));
    }
}
