//! Live renewal of the node's kubelet client and serving certificates: a task renews them
//! while the agent runs (same rule as at start: when less than a third of their life is left),
//! swaps the API client's identity under every loop that holds a clone of it, and publishes the
//! serving certificate through a `tokio::sync::watch` that a TLS server reads per handshake.

use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::sync::watch;

use crate::Error;

/// Longest single sleep before the renewal time is recomputed (guards against clock jumps).
const MAX_SLEEP: Duration = Duration::from_secs(3600);
/// Back-off between failed renewals.
const RETRY_MIN: Duration = Duration::from_secs(10);
const RETRY_MAX: Duration = Duration::from_secs(300);

/// The first unix second at which a certificate valid from `not_before` to `not_after` needs
/// renewal under [`skiff_pki::needs_renewal`] (less than a third of its life left).
pub fn renew_at(not_before: i64, not_after: i64) -> i64 {
    let life = not_after - not_before;
    if life <= 0 {
        return i64::MIN;
    }
    // (not_after - t) * 3 < life  <=>  t > not_after - life / 3
    let t = not_after - life / 3;
    if skiff_pki::needs_renewal(not_before, not_after, t) {
        t
    } else {
        t + 1
    }
}

/// When the earliest of `certs` (PEM, first certificate counts) needs renewal; an unreadable
/// certificate needs it now.
pub fn renewal_due(certs: &[&str]) -> i64 {
    certs
        .iter()
        .map(|pem| match skiff_pki::cert_validity(pem) {
            Ok((nb, na)) => renew_at(nb, na),
            Err(_) => i64::MIN,
        })
        .min()
        .unwrap_or(i64::MAX)
}

/// A kube client whose identity can be replaced while clones of it are in use: requests go to
/// whichever inner client is current when they are sent. Watches already streaming keep their
/// connection until they end (the old certificate is still valid then: it is renewed with a
/// third of its life left).
#[derive(Clone)]
pub struct ClientSwitch {
    current: Arc<RwLock<kube::Client>>,
}

impl ClientSwitch {
    /// Wraps `initial`; returns the client to hand out and the switch that replaces its inner.
    pub fn new(initial: kube::Client) -> (kube::Client, ClientSwitch) {
        let default_ns = initial.default_namespace().to_string();
        let switch = ClientSwitch {
            current: Arc::new(RwLock::new(initial)),
        };
        let current = switch.current.clone();
        let svc = tower::service_fn(move |req: http::Request<kube::client::Body>| {
            let client = current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            async move { client.send(req).await }
        });
        (kube::Client::new(svc, default_ns), switch)
    }

    /// Sends every later request through `client`.
    pub fn replace(&self, client: kube::Client) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = client;
    }
}

/// The kubelet serving certificate chain and its key (PEM).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServingCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl ServingCert {
    /// rustls's form of the pair.
    pub fn certified_key(&self) -> Result<CertifiedKey, Error> {
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            Error::Config(format!(
                "the kubelet serving {what} is unusable: {e}: delete it under <data>/agent/ and \
                 restart the agent to get a new one"
            ))
        };
        let certs = rustls_pemfile::certs(&mut self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad("certificate", &e))?;
        if certs.is_empty() {
            return Err(bad("certificate", &"no certificate in the PEM"));
        }
        let key = rustls_pemfile::private_key(&mut self.key_pem.as_bytes())
            .map_err(|e| bad("key", &e))?
            .ok_or_else(|| bad("key", &"no key in the PEM"))?;
        let key =
            rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| bad("key", &e))?;
        Ok(CertifiedKey::new(certs, key))
    }
}

/// A rustls server certificate resolver that always presents the newest serving certificate of
/// a watch (re-parsed only when it changed). Use it as
/// `ServerConfig::builder()….with_cert_resolver(Arc::new(ServingCertResolver::new(rx)))`.
#[derive(Debug)]
pub struct ServingCertResolver {
    rx: watch::Receiver<ServingCert>,
    parsed: Mutex<Option<(String, Arc<CertifiedKey>)>>,
}

impl ServingCertResolver {
    pub fn new(rx: watch::Receiver<ServingCert>) -> ServingCertResolver {
        ServingCertResolver {
            rx,
            parsed: Mutex::new(None),
        }
    }

    /// The current certificate (parsed once per change).
    pub fn current(&self) -> Option<Arc<CertifiedKey>> {
        let cur = self.rx.borrow().clone();
        let mut parsed = self
            .parsed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((pem, key)) = parsed.as_ref() {
            if *pem == cur.cert_pem {
                return Some(key.clone());
            }
        }
        match cur.certified_key() {
            Ok(k) => {
                let k = Arc::new(k);
                *parsed = Some((cur.cert_pem, k.clone()));
                Some(k)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot use the renewed serving certificate");
                parsed.as_ref().map(|(_, k)| k.clone())
            }
        }
    }
}

impl ResolvesServerCert for ServingCertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}

/// What one renewal produced.
pub struct Renewed {
    /// A client presenting `client_cert_pem`.
    pub client: kube::Client,
    pub client_cert_pem: String,
    pub serving: ServingCert,
}

/// Renews the node certificates for ever: sleeps until the earlier of the two needs renewal,
/// calls `obtain` (the join flow, which renews what is due and reuses the rest), swaps the
/// client behind `switch` when its certificate changed and publishes a changed serving
/// certificate on `serving`. Failures are retried with back-off.
pub async fn renew_loop<F, Fut>(
    mut client_cert_pem: String,
    switch: ClientSwitch,
    serving: watch::Sender<ServingCert>,
    mut obtain: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Renewed, Error>>,
{
    let mut retry = RETRY_MIN;
    loop {
        let due = renewal_due(&[&client_cert_pem, &serving.borrow().cert_pem]);
        let now = chrono::Utc::now().timestamp();
        if due > now {
            let wait = Duration::from_secs(due.saturating_sub(now) as u64);
            tokio::time::sleep(wait.min(MAX_SLEEP)).await;
            continue;
        }
        tracing::info!("renewing the node certificates");
        match obtain().await {
            Ok(r) => {
                if r.client_cert_pem != client_cert_pem {
                    switch.replace(r.client);
                    client_cert_pem = r.client_cert_pem;
                    tracing::info!("node client certificate renewed; the API client uses it now");
                }
                let changed = serving.send_if_modified(|cur| {
                    let changed = *cur != r.serving;
                    if changed {
                        *cur = r.serving;
                    }
                    changed
                });
                if changed {
                    tracing::info!("kubelet serving certificate renewed");
                }
                let still_due = renewal_due(&[&client_cert_pem, &serving.borrow().cert_pem]);
                if still_due <= chrono::Utc::now().timestamp() {
                    tracing::warn!(
                        retry_s = retry.as_secs(),
                        "the server answered certificates that are already due for renewal: \
                         check the clocks of server and node"
                    );
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(RETRY_MAX);
                } else {
                    retry = RETRY_MIN;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_s = retry.as_secs(),
                    "node certificate renewal failed, retrying");
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(RETRY_MAX);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CA-signed leaf valid from `nb` to `na` (unix seconds): (chain PEM, key PEM).
    fn leaf(nb: i64, na: i64) -> ServingCert {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "test-ca");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(vec!["node-a".to_string()]).unwrap();
        let epoch = rcgen::date_time_ymd(1970, 1, 1);
        p.not_before = epoch + Duration::from_secs(nb as u64);
        p.not_after = epoch + Duration::from_secs(na as u64);
        let cert = p.signed_by(&key, &issuer).unwrap();
        ServingCert {
            cert_pem: format!("{}{}", cert.pem(), ca_cert.pem()),
            key_pem: key.serialize_pem(),
        }
    }

    /// A client whose every answer is `body` (no network).
    fn canned_client(body: &'static str) -> kube::Client {
        let svc = tower::service_fn(move |_req: http::Request<kube::client::Body>| async move {
            Ok::<_, std::convert::Infallible>(
                http::Response::builder()
                    .status(200)
                    .body(kube::client::Body::from(body.as_bytes().to_vec()))
                    .unwrap(),
            )
        });
        kube::Client::new(svc, "default")
    }

    async fn ask(client: &kube::Client) -> String {
        client
            .request_text(http::Request::get("/version").body(Vec::new()).unwrap())
            .await
            .unwrap()
    }

    #[test]
    fn renewal_time_is_when_a_third_of_the_life_is_left() {
        let (nb, na) = (1_000, 1_900);
        let t = renew_at(nb, na);
        assert_eq!(t, 1_601);
        assert!(skiff_pki::needs_renewal(nb, na, t));
        assert!(!skiff_pki::needs_renewal(nb, na, t - 1));
        // One year: renewed four months before expiry.
        let year = 365 * 86_400;
        assert_eq!(renew_at(0, year), year - year / 3 + 1);
        assert_eq!(renew_at(10, 10), i64::MIN);
    }

    #[test]
    fn earliest_certificate_decides_and_garbage_is_due_now() {
        let a = leaf(1_000_000_000, 1_000_000_900);
        let b = leaf(1_000_000_000, 1_000_003_000);
        assert_eq!(
            renewal_due(&[&b.cert_pem, &a.cert_pem]),
            renew_at(1_000_000_000, 1_000_000_900)
        );
        assert_eq!(renewal_due(&[&a.cert_pem, "not a cert"]), i64::MIN);
    }

    #[tokio::test]
    async fn switch_sends_later_requests_through_the_new_client() {
        let (client, switch) = ClientSwitch::new(canned_client("old"));
        let held = client.clone();
        assert_eq!(ask(&held).await, "old");
        switch.replace(canned_client("new"));
        assert_eq!(ask(&held).await, "new");
        assert_eq!(ask(&client).await, "new");
    }

    #[test]
    fn resolver_follows_the_watch() {
        let now = chrono::Utc::now().timestamp();
        let first = leaf(now - 10, now + 3_600);
        let (tx, rx) = watch::channel(first.clone());
        let resolver = ServingCertResolver::new(rx);
        let a = resolver.current().unwrap();
        assert_eq!(
            a.cert[0].as_ref(),
            first.certified_key().unwrap().cert[0].as_ref()
        );
        // Same certificate: the parsed key is reused.
        assert!(Arc::ptr_eq(&a, &resolver.current().unwrap()));
        let second = leaf(now - 10, now + 7_200);
        tx.send_replace(second.clone());
        let b = resolver.current().unwrap();
        assert_eq!(
            b.cert[0].as_ref(),
            second.certified_key().unwrap().cert[0].as_ref()
        );
        // A broken update keeps the last good certificate.
        tx.send_replace(ServingCert {
            cert_pem: "junk".into(),
            key_pem: "junk".into(),
        });
        assert!(Arc::ptr_eq(&b, &resolver.current().unwrap()));
    }

    #[tokio::test]
    async fn short_lived_certificates_are_renewed_while_running() {
        let now = chrono::Utc::now().timestamp();
        // Valid for 3 s: due 2 s from now.
        let client_cert = leaf(now, now + 3);
        let serving = leaf(now, now + 3);
        let (client, switch) = ClientSwitch::new(canned_client("old identity"));
        let (tx, mut rx) = watch::channel(serving.clone());
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let fresh_client = leaf(now, now + 3_600);
        let fresh_serving = leaf(now, now + 3_600);
        let task = {
            let calls = calls.clone();
            let (fc, fs) = (fresh_client.clone(), fresh_serving.clone());
            tokio::spawn(renew_loop(
                client_cert.cert_pem.clone(),
                switch,
                tx,
                move || {
                    calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let r = Renewed {
                        client: canned_client("new identity"),
                        client_cert_pem: fc.cert_pem.clone(),
                        serving: fs.clone(),
                    };
                    async move { Ok(r) }
                },
            ))
        };
        assert_eq!(ask(&client).await, "old identity");
        tokio::time::timeout(Duration::from_secs(6), rx.changed())
            .await
            .expect("the serving certificate was not renewed within 6 s")
            .unwrap();
        assert_eq!(*rx.borrow(), fresh_serving);
        assert!(chrono::Utc::now().timestamp() >= now + 2);
        assert_eq!(ask(&client).await, "new identity");
        // Renewed once; the new certificates are far from due.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        task.abort();
    }
}
