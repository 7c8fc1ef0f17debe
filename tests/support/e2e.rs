//! A client that negotiates end-to-end encryption the way the `wse-client`
//! packages do (CLIENT_PROTOCOL.md §13), written against the RustCrypto
//! crates directly rather than the server's own `e2e`/`crypto` modules.

use aes_gcm::aead::{Aead, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::SinkExt;
use hkdf::Hkdf;
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::{PublicKey, SecretKey};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio_tungstenite::tungstenite::Message;

use super::Client;

/// A `client_hello` asking for encryption with `public_key` (base64).
pub fn client_hello(public_key: &str) -> Value {
    json!({"c": "WSE", "t": "client_hello", "p": {
        "client_version": "2.5.1", "protocol_version": 1,
        "features": {"compression": true, "encryption": true},
        "encryption_public_key": public_key}, "v": 1})
}

/// A connection with an agreed key.
pub struct E2eClient {
    pub c: Client,
    cipher: Aes256Gcm,
    /// The `server_hello` that carried the server's key.
    pub hello: Value,
}

impl E2eClient {
    /// Connect to `url`, wait for `server_ready`, and agree on a key.
    pub async fn connect(url: &str) -> Self {
        Self::connect_with(url, &[]).await
    }

    /// [`E2eClient::connect`] with extra request headers (a token).
    pub async fn connect_with(url: &str, headers: &[(&str, &str)]) -> Self {
        let mut c = Client::connect(url, headers).await;
        c.expect_type("server_ready").await;
        Self::agree(c).await
    }

    /// Agree on a key over an open connection.
    pub async fn agree(mut c: Client) -> Self {
        let secret = SecretKey::random(&mut OsRng);
        let public = BASE64.encode(secret.public_key().to_encoded_point(false).as_bytes());
        c.send_json(&client_hello(&public)).await;
        let hello = c.expect_type("server_hello").await;
        assert_eq!(hello["p"]["features"]["encryption"], true, "{hello}");
        let server_key = BASE64
            .decode(hello["p"]["encryption_public_key"].as_str().unwrap())
            .unwrap();
        let server = PublicKey::from_sec1_bytes(&server_key).unwrap();
        let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), server.as_affine());
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(None, shared.raw_secret_bytes())
            .expand(b"wse-encryption/aes-gcm-key", &mut key)
            .unwrap();
        Self {
            c,
            cipher: Aes256Gcm::new(&key.into()),
            hello,
        }
    }

    /// Seal `plaintext` into an `E:` frame body.
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let iv: [u8; 12] = rand::random();
        let mut out = b"E:".to_vec();
        out.extend_from_slice(&iv);
        out.extend(self.cipher.encrypt(&Nonce::from(iv), plaintext).unwrap());
        out
    }

    /// Open an `E:` frame body; panics when it is not one or fails.
    pub fn open(&self, body: &[u8]) -> Vec<u8> {
        assert!(body.starts_with(b"E:"), "not an E: frame: {body:?}");
        let (iv, sealed) = body[2..].split_at(12);
        self.cipher
            .decrypt(&Nonce::from(<[u8; 12]>::try_from(iv).unwrap()), sealed)
            .expect("the frame opens with the agreed key")
    }

    /// Send `text` sealed, as the Python client sends everything.
    pub async fn send_sealed(&mut self, text: &str) {
        let body = self.seal(text.as_bytes());
        self.c.ws.send(Message::binary(body)).await.unwrap();
    }

    /// The next data frame, which must be sealed: its plaintext. Server
    /// pings (plaintext by design) are skipped.
    pub async fn next_sealed(&mut self) -> Vec<u8> {
        match self.c.next_data().await {
            Message::Binary(b) => self.open(&b),
            Message::Text(t) => panic!("plaintext data frame on an E2E connection: {t}"),
            other => panic!("expected a data frame, got {other:?}"),
        }
    }

    /// The next sealed frame parsed as JSON.
    pub async fn next_sealed_json(&mut self) -> Value {
        let plain = self.next_sealed().await;
        serde_json::from_slice(&plain)
            .unwrap_or_else(|e| panic!("sealed frame is not JSON ({e}): {plain:?}"))
    }

    /// The next plaintext JSON frame (protocol frames: errors, hellos).
    pub async fn next_plain_json(&mut self) -> Value {
        self.c.next_text_json().await
    }

    /// Subscribe with a sealed `subscription_update`: the sealed reply,
    /// and the sealed messages that came before it (a recovery's first
    /// page precedes its reply).
    pub async fn subscribe(
        &mut self,
        topics: &[&str],
        recovery: Option<Value>,
    ) -> (Value, Vec<Value>) {
        let mut p = json!({"action": "subscribe", "topics": topics});
        if let Some(r) = recovery {
            p["recover"] = Value::Bool(true);
            p["recovery"] = r;
        }
        let msg = json!({"c": "WSE", "t": "subscription_update", "p": p});
        self.send_sealed(&msg.to_string()).await;
        let mut before = Vec::new();
        loop {
            let v = self.next_sealed_json().await;
            if v["t"] == "subscription_update" {
                return (v, before);
            }
            before.push(v);
        }
    }
}
