//! systemd readiness: `READY=1` over `$NOTIFY_SOCKET` (a unix datagram, sd_notify's protocol).
//!
//! Hand-written instead of a crate: the protocol is one datagram to one socket path, and the
//! standard library already speaks unix datagrams (including Linux abstract addresses).

use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// The log message after which an agent counts as ready (the node object is registered).
const AGENT_READY_MESSAGE: &str = "node registered";

static SENT: AtomicBool = AtomicBool::new(false);

/// Where the datagram goes for a `$NOTIFY_SOCKET` value: a path, or (leading `@`) a Linux
/// abstract socket name. `None` when the variable is unset or empty: not run by systemd.
fn target(var: Option<&str>) -> Option<(bool, &str)> {
    match var? {
        "" => None,
        v => Some(match v.strip_prefix('@') {
            Some(name) => (true, name),
            None => (false, v),
        }),
    }
}

/// Tells systemd the service is ready, once per process; does nothing without `$NOTIFY_SOCKET`.
/// Errors are logged, never fatal: readiness is a courtesy to the service manager.
pub fn ready() {
    let var = std::env::var("NOTIFY_SOCKET").ok();
    let Some((abstract_name, name)) = target(var.as_deref()) else {
        return;
    };
    if SENT.swap(true, Ordering::SeqCst) {
        return;
    }
    match send(abstract_name, name, b"READY=1\n") {
        Ok(()) => tracing::debug!(socket = %name, "told systemd we are ready"),
        Err(e) => tracing::warn!(socket = %name, error = %e, "could not send READY=1 to systemd; \
            check NOTIFY_SOCKET or use Type=simple"),
    }
}

fn send(abstract_name: bool, name: &str, msg: &[u8]) -> std::io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    if abstract_name {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        sock.send_to_addr(msg, &addr)?;
    } else {
        sock.send_to(msg, name)?;
    }
    Ok(())
}

/// A tracing layer that calls [`ready`] when the agent logs that its node is registered: the
/// agent library reports that moment only in its log, and this keeps it free of systemd.
pub struct AgentReadyLayer;

struct MessageIs(bool);

impl Visit for MessageIs {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" && value == AGENT_READY_MESSAGE {
            self.0 = true;
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" && format!("{value:?}") == AGENT_READY_MESSAGE {
            self.0 = true;
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for AgentReadyLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if SENT.load(Ordering::Relaxed) || !event.metadata().target().starts_with("skiff_agent") {
            return;
        }
        let mut m = MessageIs(false);
        event.record(&mut m);
        if m.0 {
            ready();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_targets() {
        assert_eq!(target(None), None);
        assert_eq!(target(Some("")), None);
        assert_eq!(
            target(Some("/run/systemd/notify")),
            Some((false, "/run/systemd/notify"))
        );
        assert_eq!(target(Some("@sd-notify")), Some((true, "sd-notify")));
    }

    #[test]
    fn sends_one_datagram_to_a_path() {
        let path = std::env::temp_dir().join(format!("skiff-notify-test-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let rx = UnixDatagram::bind(&path).unwrap();
        send(false, path.to_str().unwrap(), b"READY=1\n").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(&buf[..n], b"READY=1\n");
    }

    #[test]
    fn the_agent_is_ready_once_its_node_is_registered() {
        use tracing_subscriber::layer::SubscriberExt;
        let path = std::env::temp_dir().join(format!("skiff-notify-layer-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let rx = UnixDatagram::bind(&path).unwrap();
        rx.set_nonblocking(true).unwrap();
        // Only this test reads NOTIFY_SOCKET (the other test sends to its own path directly).
        std::env::set_var("NOTIFY_SOCKET", &path);
        let subscriber = tracing_subscriber::registry().with(AgentReadyLayer);
        let mut buf = [0u8; 64];
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "skiff_agent::realagent", "pod network configured");
            tracing::info!(target: "other", "node registered");
            assert!(
                rx.recv(&mut buf).is_err(),
                "READY=1 before the node was registered"
            );
            tracing::info!(target: "skiff_agent::realagent", node = "n1", "node registered");
        });
        let n = rx.recv(&mut buf).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(&buf[..n], b"READY=1\n");
    }
}
