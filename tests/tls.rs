//! TLS on the client port through real sockets: `wss://` clients that
//! trust a test CA, large messages and a client that does not read over
//! TLS, what a plain client and an expired certificate come to, start
//! errors, and certificate reloads (explicit, on file change, refused)
//! while clients are connected and receiving.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, date_time_ymd};
use rustls::pki_types::pem::PemObject;
use serde_json::Value;
use support::*;
use tokio_tungstenite::Connector;
use wse::tls::TlsFiles;
use wse::{ServerConfig, ServerError};

/// A test certificate authority.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let pem = params.self_signed(&key).unwrap().pem();
        Self {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for 127.0.0.1 and localhost, written as `cert.pem`
    /// and `key.pem` under `dir`; `expired`: valid for one day in 2020.
    fn issue(&self, dir: &Path, expired: bool) -> TlsFiles {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "wse test");
        if expired {
            params.not_before = date_time_ymd(2020, 1, 1);
            params.not_after = date_time_ymd(2020, 1, 2);
        }
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        std::fs::create_dir_all(dir).unwrap();
        let files = TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        write_atomically(&files.cert, cert.pem().as_bytes());
        write_atomically(&files.key, key.serialize_pem().as_bytes());
        files
    }

    /// A client configuration that trusts this CA alone.
    fn client(&self) -> Connector {
        let mut roots = rustls::RootCertStore::empty();
        let der = rustls::pki_types::CertificateDer::from_pem_slice(self.pem.as_bytes()).unwrap();
        roots.add(der).unwrap();
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Connector::Rustls(Arc::new(config))
    }
}

/// Replace `path` as deployment tools do: a new file renamed over it.
fn write_atomically(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A server with TLS from `files`, recovery and core subscriptions on.
fn tls_server(files: &TlsFiles, reload_every: Duration) -> TestServer {
    TestServer::start(ServerConfig {
        tls: Some(files.clone()),
        tls_reload_interval: reload_every,
        ..standalone()
    })
}

fn wss(ts: &TestServer) -> String {
    format!("wss://{}/wse", ts.addr)
}

/// A `wss://` client trusting `ca`, or the handshake's error.
async fn try_wss(
    ts: &TestServer,
    ca: &Ca,
) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
    let r = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::connect_async_tls_with_config(wss(ts), None, false, Some(ca.client())),
    )
    .await
    .expect("connect timed out");
    r.map(|(ws, _)| Client::from_ws(ws))
}

/// Subscribe `c` to `topic` with the client protocol and wait for the
/// reply.
async fn subscribe(c: &mut Client, topic: &str) {
    c.send_json(&serde_json::json!({
        "t": "subscription_update",
        "p": {"action": "subscribe", "topics": [topic]}
    }))
    .await;
    c.expect_type("subscription_update").await;
}

/// The next published message (one with a `p.n`), skipping other frames.
async fn next_published(c: &mut Client) -> Value {
    loop {
        let v: Value = c.next_json().await;
        if v["p"]["n"].is_u64() {
            return v;
        }
    }
}

/// The `n` of the next published message.
async fn next_n(c: &mut Client) -> u64 {
    next_published(c).await["p"]["n"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wss_client_that_trusts_the_ca_subscribes_and_receives_large_messages() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let files = ca.issue(dir.path(), false);
    let ts = tls_server(&files, Duration::ZERO);
    let mut c = try_wss(&ts, &ca).await.expect("wss connect");
    subscribe(&mut c, "big").await;
    // Larger than a TLS record (16 KiB) and than rustls's send limit, so
    // one message takes many records and several socket writes.
    let body = "x".repeat(300_000);
    for n in 0..5u64 {
        ts.server
            .publish(
                "big",
                &format!(r#"{{"t":"m","p":{{"n":{n},"body":"{body}"}}}}"#),
            )
            .unwrap();
    }
    for n in 0..5u64 {
        let v = next_published(&mut c).await;
        assert_eq!(v["p"]["n"], n);
        assert_eq!(v["p"]["body"].as_str().unwrap().len(), body.len());
    }
    // And the client's own messages arrive: a heartbeat the server
    // answers.
    c.send_json(&serde_json::json!({"t": "ping", "p": {"timestamp": 7}}))
        .await;
    let pong = c.expect_type("PONG").await;
    assert_eq!(pong["p"]["client_timestamp"], 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_over_tls_does_not_hold_back_another() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let files = ca.issue(dir.path(), false);
    let ts = tls_server(&files, Duration::ZERO);
    let mut stuck = try_wss(&ts, &ca).await.unwrap();
    subscribe(&mut stuck, "t").await;
    let mut reader = try_wss(&ts, &ca).await.unwrap();
    subscribe(&mut reader, "t").await;
    // About 8 MiB: more than the socket buffers and rustls hold, so the
    // stuck client's session is blocked on its socket throughout.
    let body = "y".repeat(64 * 1024);
    for n in 0..128u64 {
        ts.server
            .publish(
                "t",
                &format!(r#"{{"t":"m","p":{{"n":{n},"body":"{body}"}}}}"#),
            )
            .unwrap();
        assert_eq!(next_n(&mut reader).await, n);
    }
    // The stuck one still gets everything, in order, once it reads.
    for n in 0..128u64 {
        assert_eq!(next_n(&mut stuck).await, n);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_client_on_the_tls_port_is_refused_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let files = ca.issue(dir.path(), false);
    let ts = tls_server(&files, Duration::ZERO);
    let r = Client::try_connect(&ts.url(""), &[]).await;
    assert!(r.is_err(), "a ws:// upgrade on the TLS port must fail");
    wait_until("the failed handshake is counted", || {
        ts.server.health().tls_handshake_failures == 1
    })
    .await;
    // The port still serves TLS clients.
    try_wss(&ts, &ca).await.expect("wss after a plain attempt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_is_refused_by_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let files = ca.issue(dir.path(), true);
    let ts = tls_server(&files, Duration::ZERO);
    let err = match try_wss(&ts, &ca).await {
        Ok(_) => panic!("a client must refuse an expired certificate"),
        Err(e) => e.to_string(),
    };
    assert!(err.to_lowercase().contains("expired"), "{err}");
    wait_until("the refused handshake is counted", || {
        ts.server.health().tls_handshake_failures == 1
    })
    .await;
}

#[test]
fn missing_or_mismatched_files_stop_the_start_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let a = ca.issue(&dir.path().join("a"), false);
    let b = ca.issue(&dir.path().join("b"), false);
    let start = |files: TlsFiles| {
        wse::Server::new(ServerConfig {
            host: "127.0.0.1".into(),
            port: 0,
            tls: Some(files),
            ..standalone()
        })
        .unwrap()
        .start()
    };
    let missing = start(TlsFiles {
        cert: dir.path().join("nope.pem"),
        key: a.key.clone(),
    })
    .unwrap_err();
    assert!(matches!(missing, ServerError::Tls(_)), "{missing:?}");
    assert!(
        missing.to_string().contains("nope.pem"),
        "the message names the file: {missing}"
    );
    let mismatched = start(TlsFiles {
        cert: a.cert.clone(),
        key: b.key,
    })
    .unwrap_err();
    assert!(
        mismatched.to_string().contains("does not fit"),
        "{mismatched}"
    );
    let no_key = start(TlsFiles {
        cert: a.cert.clone(),
        key: a.cert,
    })
    .unwrap_err();
    assert!(
        no_key.to_string().contains("no PEM private key"),
        "{no_key}"
    );
}

/// Clients subscribed over TLS while publishes flow; returns them and the
/// publisher, which publishes `{"n": 0..}` until told to stop and then
/// says how many it published.
async fn under_load(
    ts: &Arc<TestServer>,
    ca: &Ca,
    clients: usize,
) -> (
    Vec<Client>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<u64>,
) {
    let mut cs = Vec::new();
    for _ in 0..clients {
        let mut c = try_wss(ts, ca).await.unwrap();
        subscribe(&mut c, "load").await;
        cs.push(c);
    }
    let (stop, mut stopped) = tokio::sync::oneshot::channel();
    let server = ts.clone();
    let publisher = tokio::task::spawn_blocking(move || {
        let mut n = 0u64;
        while stopped.try_recv().is_err() {
            server
                .server
                .publish("load", &format!(r#"{{"t":"m","p":{{"n":{n}}}}}"#))
                .unwrap();
            n += 1;
        }
        n
    });
    (cs, stop, publisher)
}

/// Every client received `0..published`, in order, none missing.
async fn all_received(cs: &mut [Client], published: u64) {
    for c in cs.iter_mut() {
        for n in 0..published {
            assert_eq!(next_n(c).await, n, "a message was lost or reordered");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_under_load_changes_the_certificate_and_drops_no_connection() {
    let dir = tempfile::tempdir().unwrap();
    let (old_ca, new_ca) = (Ca::new("old CA"), Ca::new("new CA"));
    let files = old_ca.issue(dir.path(), false);
    let ts = Arc::new(tls_server(&files, Duration::ZERO));
    let (mut cs, stop, publisher) = under_load(&ts, &old_ca, 4).await;
    assert!(
        try_wss(&ts, &new_ca).await.is_err(),
        "before the reload the new CA's clients do not trust the server"
    );

    new_ca.issue(dir.path(), false);
    ts.server.reload_tls().unwrap();
    assert_eq!(ts.server.health().tls_reloads, 1);
    try_wss(&ts, &new_ca)
        .await
        .expect("after the reload the server presents the new certificate");
    assert!(try_wss(&ts, &old_ca).await.is_err());

    let _ = stop.send(());
    let published = publisher.await.unwrap();
    assert!(published > 0);
    all_received(&mut cs, published).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_files_are_picked_up_and_a_bad_pair_is_refused_keeping_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (old_ca, new_ca) = (Ca::new("old CA"), Ca::new("new CA"));
    let files = old_ca.issue(dir.path(), false);
    let ts = Arc::new(tls_server(&files, Duration::from_millis(20)));
    let (mut cs, stop, publisher) = under_load(&ts, &old_ca, 2).await;

    // A key that is not a key: refused, and the certificate in force
    // stays.
    let good_key = std::fs::read(&files.key).unwrap();
    write_atomically(&files.key, b"not a key");
    wait_until("the bad pair is refused", || {
        ts.server.health().tls_reload_failures >= 1
    })
    .await;
    let refused = ts.server.reload_tls().unwrap_err();
    assert!(refused.to_string().contains("key.pem"), "{refused}");
    try_wss(&ts, &old_ca)
        .await
        .expect("the certificate in force stays after a refused reload");
    write_atomically(&files.key, &good_key);
    wait_until("the restored pair is taken", || {
        ts.server.health().tls_reloads == 1
    })
    .await;

    // New files, written one after the other: the watcher may see the
    // certificate before its key (a refused pair), but takes the pair
    // once both have landed, without a call.
    new_ca.issue(dir.path(), false);
    wait_until("the new pair is taken", || {
        ts.server.health().tls_reloads == 2
    })
    .await;
    try_wss(&ts, &new_ca)
        .await
        .expect("the server presents the new certificate");

    let _ = stop.send(());
    let published = publisher.await.unwrap();
    all_received(&mut cs, published).await;
}
