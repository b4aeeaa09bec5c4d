//! Upgrade negotiation from request headers: WebSocket subprotocols and SPDY
//! `X-Stream-Protocol-Version`, with the kubelet's error statuses and texts.

use bytes::Bytes;
use http::{header, HeaderMap, Method, Response, StatusCode};
use http_body_util::Full;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

pub const HEADER_PROTOCOL_VERSION: &str = "X-Stream-Protocol-Version";
pub const HEADER_ACCEPTED_PROTOCOL_VERSIONS: &str = "X-Accepted-Stream-Protocol-Versions";

/// Exec/attach over SPDY, most preferred first (kubelet order).
pub const SPDY_EXEC_PROTOCOLS: [&str; 4] = [
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];
/// Port-forward over SPDY.
pub const SPDY_PORTFORWARD_PROTOCOLS: [&str; 1] = ["portforward.k8s.io"];
/// Exec/attach over WebSocket ("" = the client offered none).
pub const WS_EXEC_PROTOCOLS: [&str; 6] = [
    "",
    "channel.k8s.io",
    "base64.channel.k8s.io",
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
    "v5.channel.k8s.io",
];
/// SPDY tunnelled in WebSocket (client-go's `SPDY/3.1+` prefix).
pub const WS_SPDY_TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
/// Port-forward over WebSocket.
pub const WS_PORTFORWARD_PROTOCOLS: [&str; 4] = [
    WS_SPDY_TUNNEL_PROTOCOL,
    "",
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
];

pub type Resp = Response<Full<Bytes>>;

/// The outcome of an upgrade negotiation.
#[derive(Debug)]
pub enum Handshake {
    /// Send this 101; the chosen subprotocol/version.
    Accept(Resp, String),
    /// Send this error response; no upgrade.
    Reject(Resp),
}

impl Handshake {
    #[cfg(test)]
    fn unwrap(self) -> (Resp, String) {
        match self {
            Handshake::Accept(r, p) => (r, p),
            Handshake::Reject(r) => panic!("rejected with {}", r.status()),
        }
    }

    #[cfg(test)]
    fn unwrap_err(self) -> Resp {
        match self {
            Handshake::Accept(_, p) => panic!("accepted {p}"),
            Handshake::Reject(r) => r,
        }
    }
}

/// A plain-text error the way Go's `http.Error` writes it.
pub fn text_error(status: StatusCode, msg: &str) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(format!("{msg}\n"))));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        "x-content-type-options",
        header::HeaderValue::from_static("nosniff"),
    );
    r
}

fn values<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    headers.get_all(name).iter().filter_map(|v| v.to_str().ok())
}

/// Comma-separated values of all `name` headers, trimmed, empty ones dropped.
pub fn list(headers: &HeaderMap, name: &str) -> Vec<String> {
    values(headers, name)
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn connection_upgrade(headers: &HeaderMap) -> bool {
    values(headers, "connection").any(|v| {
        v.split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
    })
}

/// `Upgrade: websocket` with `Connection: upgrade`.
pub fn is_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
        && connection_upgrade(headers)
}

fn go_list<S: AsRef<str>>(v: &[S]) -> String {
    format!(
        "[{}]",
        v.iter().map(|s| s.as_ref()).collect::<Vec<_>>().join(" ")
    )
}

/// Picks the client's first subprotocol that we support; no offer means "".
pub fn choose_ws(offered: &[String], supported: &[&str]) -> Result<String, String> {
    if offered.is_empty() {
        return if supported.contains(&"") {
            Ok(String::new())
        } else {
            Err(format!(
                "requested protocol(s) are not supported: []; supports {}",
                go_list(supported)
            ))
        };
    }
    offered
        .iter()
        .find(|p| supported.contains(&p.as_str()))
        .cloned()
        .ok_or_else(|| {
            format!(
                "requested protocol(s) are not supported: {}; supports {}",
                go_list(offered),
                go_list(supported)
            )
        })
}

/// The WebSocket handshake: `Ok(101 response, chosen protocol)` or the error response.
pub fn websocket(method: &Method, headers: &HeaderMap, supported: &[&str]) -> Handshake {
    match websocket_inner(method, headers, supported) {
        Ok((r, p)) => Handshake::Accept(r, p),
        Err(r) => Handshake::Reject(*r),
    }
}

fn websocket_inner(
    method: &Method,
    headers: &HeaderMap,
    supported: &[&str],
) -> Result<(Resp, String), Box<Resp>> {
    if method != Method::GET {
        return Err(Box::new(text_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "websocket upgrades must use GET",
        )));
    }
    if headers
        .get("sec-websocket-version")
        .and_then(|v| v.to_str().ok())
        != Some("13")
    {
        let mut r = text_error(
            StatusCode::BAD_REQUEST,
            "unsupported websocket version: use Sec-WebSocket-Version 13",
        );
        r.headers_mut().insert(
            "sec-websocket-version",
            header::HeaderValue::from_static("13"),
        );
        return Err(Box::new(r));
    }
    let Some(key) = headers.get("sec-websocket-key") else {
        return Err(Box::new(text_error(
            StatusCode::BAD_REQUEST,
            "missing Sec-WebSocket-Key header",
        )));
    };
    let protocol = choose_ws(&list(headers, "sec-websocket-protocol"), supported)
        .map_err(|e| Box::new(text_error(StatusCode::FORBIDDEN, &e)))?;
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(
        header::UPGRADE,
        header::HeaderValue::from_static("websocket"),
    );
    h.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("Upgrade"),
    );
    let accept = derive_accept_key(key.as_bytes());
    h.insert(
        "sec-websocket-accept",
        header::HeaderValue::from_str(&accept).map_err(|_| {
            Box::new(text_error(
                StatusCode::BAD_REQUEST,
                "invalid Sec-WebSocket-Key header",
            ))
        })?,
    );
    if !protocol.is_empty() {
        if let Ok(v) = header::HeaderValue::from_str(&protocol) {
            h.insert("sec-websocket-protocol", v);
        }
    }
    Ok((r, protocol))
}

/// The SPDY handshake (`httpstream.Handshake` + the upgrader's header check):
/// `Ok(101 response, chosen protocol)` or the kubelet's error response.
pub fn spdy(headers: &HeaderMap, supported: &[&str]) -> Handshake {
    let offered = list(headers, HEADER_PROTOCOL_VERSION);
    if offered.is_empty() {
        return Handshake::Reject(text_error(
            StatusCode::BAD_REQUEST,
            &format!("unable to upgrade: {HEADER_PROTOCOL_VERSION} is required"),
        ));
    }
    let Some(chosen) = offered
        .iter()
        .find(|p| supported.contains(&p.as_str()))
        .cloned()
    else {
        let mut r = text_error(
            StatusCode::FORBIDDEN,
            &format!(
                "unable to upgrade: unable to negotiate protocol: client supports {}, server accepts {}",
                go_list(&offered),
                go_list(supported)
            ),
        );
        for p in supported {
            if let Ok(v) = header::HeaderValue::from_str(p) {
                r.headers_mut().append(HEADER_ACCEPTED_PROTOCOL_VERSIONS, v);
            }
        }
        return Handshake::Reject(r);
    };
    let upgrade = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !connection_upgrade(headers) || !upgrade.to_ascii_lowercase().contains("spdy/3.1") {
        let conn = values(headers, "connection").collect::<Vec<_>>().join(", ");
        return Handshake::Reject(text_error(
            StatusCode::BAD_REQUEST,
            &format!(
                "unable to upgrade: missing upgrade headers in request: Connection: {conn:?}, Upgrade: {upgrade:?}; \
                 send Connection: Upgrade and Upgrade: SPDY/3.1"
            ),
        ));
    }
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("Upgrade"),
    );
    h.insert(
        header::UPGRADE,
        header::HeaderValue::from_static("SPDY/3.1"),
    );
    if let Ok(v) = header::HeaderValue::from_str(&chosen) {
        h.insert(HEADER_PROTOCOL_VERSION, v);
    }
    Handshake::Accept(r, chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hm(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, header::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn websocket_handshake() {
        let h = hm(&[
            ("upgrade", "websocket"),
            ("connection", "keep-alive, Upgrade"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-protocol", "v5.channel.k8s.io"),
        ]);
        assert!(is_websocket(&h));
        let (r, p) = websocket(&Method::GET, &h, &WS_EXEC_PROTOCOLS).unwrap();
        assert_eq!(p, "v5.channel.k8s.io");
        assert_eq!(r.status(), StatusCode::SWITCHING_PROTOCOLS);
        // RFC 6455 §1.3 example
        assert_eq!(
            r.headers()["sec-websocket-accept"],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(r.headers()["sec-websocket-protocol"], "v5.channel.k8s.io");
    }

    #[test]
    fn websocket_protocol_choice() {
        let offered = vec![
            "v6.channel.k8s.io".to_string(),
            "v4.channel.k8s.io".to_string(),
        ];
        assert_eq!(
            choose_ws(&offered, &WS_EXEC_PROTOCOLS).unwrap(),
            "v4.channel.k8s.io"
        );
        assert_eq!(choose_ws(&[], &WS_EXEC_PROTOCOLS).unwrap(), "");
        let err = choose_ws(&["v6.channel.k8s.io".to_string()], &WS_EXEC_PROTOCOLS).unwrap_err();
        assert!(
            err.starts_with(
                "requested protocol(s) are not supported: [v6.channel.k8s.io]; supports ["
            ),
            "{err}"
        );
        let h = hm(&[
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-protocol", "v9.channel.k8s.io"),
        ]);
        assert_eq!(
            websocket(&Method::GET, &h, &WS_EXEC_PROTOCOLS)
                .unwrap_err()
                .status(),
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn spdy_handshake() {
        let h = hm(&[
            ("connection", "Upgrade"),
            ("upgrade", "SPDY/3.1"),
            ("x-stream-protocol-version", "v4.channel.k8s.io"),
            ("x-stream-protocol-version", "v3.channel.k8s.io"),
        ]);
        assert!(!is_websocket(&h));
        let (r, p) = spdy(&h, &SPDY_EXEC_PROTOCOLS).unwrap();
        assert_eq!(p, "v4.channel.k8s.io");
        assert_eq!(
            r.headers()["x-stream-protocol-version"],
            "v4.channel.k8s.io"
        );
        assert_eq!(r.headers()["upgrade"], "SPDY/3.1");

        let none = hm(&[("connection", "Upgrade"), ("upgrade", "SPDY/3.1")]);
        assert_eq!(
            spdy(&none, &SPDY_EXEC_PROTOCOLS).unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );

        let bad = hm(&[
            ("connection", "Upgrade"),
            ("upgrade", "SPDY/3.1"),
            ("x-stream-protocol-version", "v9"),
        ]);
        let r = spdy(&bad, &SPDY_EXEC_PROTOCOLS).unwrap_err();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            r.headers()
                .get_all(HEADER_ACCEPTED_PROTOCOL_VERSIONS)
                .iter()
                .count(),
            4
        );

        let no_upgrade = hm(&[("x-stream-protocol-version", "v4.channel.k8s.io")]);
        assert_eq!(
            spdy(&no_upgrade, &SPDY_EXEC_PROTOCOLS)
                .unwrap_err()
                .status(),
            StatusCode::BAD_REQUEST
        );
    }
}
