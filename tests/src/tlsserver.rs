//! A loopback HTTPS server for tests that play a remote party of the API server (admission
//! webhooks, aggregated APIs): a CA and a leaf certificate of its own (rcgen), plain rustls on
//! threads, one thread per keep-alive connection; stopped on drop.

use base64::Engine;
use std::io::BufReader;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// One accepted connection's TLS stream, buffered for reading request lines.
pub type TlsStream = BufReader<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>;

/// Serves one connection until the client leaves or `stop` is set.
pub type Handler = fn(TlsStream, Arc<AtomicBool>);

/// How long a connection may wait for its next request before it is closed.
const IDLE: Duration = Duration::from_secs(30);

pub struct TlsServer {
    pub port: u16,
    /// The CA that signed the server's certificate, PEM.
    pub ca_pem: String,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl TlsServer {
    /// Listens on 127.0.0.1 (a free port) with a certificate for `san`, signed by a new CA
    /// named `ca_name`; every connection is handed to `handler` on its own thread.
    pub fn start(ca_name: &str, san: &str, handler: Handler) -> TlsServer {
        let ca_key = rcgen::KeyPair::generate().expect("ca key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, ca_name);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("ca");
        let key = rcgen::KeyPair::generate().expect("key");
        let leaf = rcgen::CertificateParams::new(vec![san.to_string()])
            .expect("params")
            .signed_by(&key, &ca)
            .expect("leaf");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .expect("server config");
        let cfg = Arc::new(cfg);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(tcp) = conn else { continue };
                let cfg = cfg.clone();
                let stop3 = stop2.clone();
                std::thread::spawn(move || {
                    let _ = tcp.set_read_timeout(Some(IDLE));
                    if let Ok(conn) = rustls::ServerConnection::new(cfg) {
                        handler(BufReader::new(rustls::StreamOwned::new(conn, tcp)), stop3);
                    }
                });
            }
        });
        TlsServer {
            port,
            ca_pem: ca.pem(),
            stop,
            accept: Some(accept),
        }
    }

    /// The CA as a `caBundle` field wants it (base64 of the PEM).
    pub fn ca_bundle(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.ca_pem)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}
