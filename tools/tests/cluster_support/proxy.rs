//! A TCP proxy in front of a node's peer listener that the tests control:
//! it learns which node connects from the peer handshake (`WSEPEER`,
//! version, node id) and cuts links per (from, to) pair.
//!
//! A peer connection carries the connecting node's requests and the
//! answers to them, so cutting `from → to` stops `from`'s requests to `to`
//! (and their answers): open connections of that pair are closed, new ones
//! are refused until the link is healed. `to`'s own requests to `from` go
//! through `from`'s proxy and are untouched: a one-direction cut.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Bytes of the handshake up to and including the node id.
const HELLO_PREFIX: usize = 7 + 2 + 8;

/// The links cut, shared by every proxy of a cluster.
#[derive(Clone, Default)]
pub struct Links {
    cut: Arc<Mutex<BTreeSet<(u64, u64)>>>,
    /// Bumped at every change, so open connections re-check.
    changed: Arc<Mutex<Option<watch::Sender<u64>>>>,
}

impl Links {
    fn watch(&self) -> watch::Receiver<u64> {
        let mut g = self.changed.lock();
        g.get_or_insert_with(|| watch::channel(0).0).subscribe()
    }

    fn bump(&self) {
        if let Some(tx) = self.changed.lock().as_ref() {
            tx.send_modify(|v| *v += 1);
        }
    }

    fn is_cut(&self, from: u64, to: u64) -> bool {
        self.cut.lock().contains(&(from, to))
    }

    /// Cut `from → to`.
    pub fn cut(&self, from: u64, to: u64) {
        self.cut.lock().insert((from, to));
        self.bump();
    }

    /// Cut every link between `node` and each of `others`, both ways.
    pub fn isolate(&self, node: u64, others: &[u64]) {
        {
            let mut c = self.cut.lock();
            for &o in others.iter().filter(|&&o| o != node) {
                c.insert((node, o));
                c.insert((o, node));
            }
        }
        self.bump();
    }

    /// Restore every link.
    pub fn heal(&self) {
        self.cut.lock().clear();
        self.bump();
    }
}

/// Serve `listen` forever (until the runtime ends), forwarding to node
/// `to`'s real peer listener at `target`.
pub async fn run(listener: TcpListener, to: u64, target: SocketAddr, links: Links) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(relay(client, to, target, links.clone()));
    }
}

/// One connection: read the hello's prefix to learn who connects, then
/// copy both ways until either side closes or the link is cut.
async fn relay(mut client: TcpStream, to: u64, target: SocketAddr, links: Links) {
    let mut hello = [0u8; HELLO_PREFIX];
    if client.read_exact(&mut hello).await.is_err() {
        return;
    }
    let from = u64::from_be_bytes(hello[9..17].try_into().unwrap());
    if links.is_cut(from, to) {
        return;
    }
    let Ok(mut server) = TcpStream::connect(target).await else {
        return;
    };
    if server.write_all(&hello).await.is_err() {
        return;
    }
    let mut changes = links.watch();
    let copy = tokio::io::copy_bidirectional(&mut client, &mut server);
    tokio::pin!(copy);
    loop {
        tokio::select! {
            _ = &mut copy => return,
            r = changes.changed() => {
                if r.is_err() || links.is_cut(from, to) {
                    return; // dropping both sockets closes the link
                }
            }
        }
    }
}
