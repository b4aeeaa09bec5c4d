//! Raw HTTP requests to the server with curl, as the admin, anonymously or with a token.

use crate::cluster::Cluster;
use crate::command::{run_command, COMMAND_TIMEOUT};
use std::process::Command;

/// An HTTP answer from the server (via curl).
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl HttpResponse {
    /// Parses the body as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!("HTTP {} body is not JSON ({e}): {}", self.status, self.body)
        })
    }
}

/// Who an HTTP request is sent as.
#[derive(Debug, Clone)]
pub enum Auth {
    /// The admin client certificate from the kubeconfig.
    Admin,
    /// No credentials at all.
    Anonymous,
    /// A bearer token.
    Token(String),
}

impl Cluster {
    /// Sends one HTTP request with curl. `content_type` None sends no Content-Type header.
    pub fn http(
        &self,
        auth: Auth,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> HttpResponse {
        let n = REQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let body_out = self.dir.join(format!("curl-{n}.out"));
        let mut c = Command::new("curl");
        // HTTP/1.1: curl aborts an HTTP/2 upload the server answers early (413) without
        // reporting the answer, which kubectl (Go) does see.
        c.args(["-sS", "--http1.1", "--max-time", "30", "-X", method])
            .arg("--cacert")
            .arg(&self.creds.ca)
            .arg("-o")
            .arg(&body_out)
            .args(["-w", "%{http_code} %{content_type}"]);
        match &auth {
            Auth::Admin => {
                c.arg("--cert").arg(&self.creds.cert);
                c.arg("--key").arg(&self.creds.key);
            }
            Auth::Anonymous => {}
            Auth::Token(t) => {
                c.arg("-H").arg(format!("Authorization: Bearer {t}"));
            }
        }
        // curl adds its own Content-Type for --data-binary unless told otherwise.
        match content_type {
            Some(ct) => {
                c.arg("-H").arg(format!("Content-Type: {ct}"));
            }
            None => {
                c.arg("-H").arg("Content-Type:");
            }
        }
        c.args(["-H", "Accept: application/json"]);
        if let Some(b) = body {
            let f = self.dir.join(format!("curl-{n}.in"));
            std::fs::write(&f, b).expect("write request body");
            c.arg("--data-binary").arg(format!("@{}", f.display()));
        }
        c.arg(format!("{}{}", self.creds.server, path));
        let out = run_command(c, None, COMMAND_TIMEOUT);
        assert_eq!(out.code, 0, "curl failed:\n{out}");
        let (status, ct) = out.stdout.split_once(' ').unwrap_or((&out.stdout, ""));
        let body = std::fs::read(&body_out).unwrap_or_default();
        HttpResponse {
            status: status.trim().parse().unwrap_or(0),
            content_type: ct.trim().to_string(),
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }
}

static REQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
