//! The first bytes of a peer connection, before any frame.
//!
//! ```text
//! connecting side:  "WSEPEER" | version u16 | node id u64 | name length u16 | cluster name (UTF-8)
//! accepting side:   status u8 (0 ok, 1 refused) | reason length u16 | reason (UTF-8)
//! ```
//!
//! All integers big-endian. The version comes right after the magic, so a
//! node of another version is refused with a reason before we try to read
//! the rest of a hello whose layout may have changed. It is not framed:
//! the frame format may change with the version. Node id 0 is a tool
//! (`wse cluster status`), not a node.

use crate::types::NodeId;
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What a peer connection starts with, so that a stray client (an HTTP
/// probe, a WebSocket client on the wrong port) is told apart at once.
pub(crate) const MAGIC: &[u8; 7] = b"WSEPEER";

/// The protocol version this build speaks.
pub(crate) const VERSION: u16 = 1;

/// The longest cluster name, so a hello is small and bounded.
const MAX_NAME: usize = 255;

/// The longest refusal reason read back.
const MAX_REASON: usize = 1024;

const OK: u8 = 0;
const REFUSED: u8 = 1;

/// Why an incoming handshake was not accepted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandshakeError {
    /// Not a peer: the first bytes are not the magic.
    #[error("not a WSE peer (wrong magic bytes)")]
    Magic,
    /// A peer of another protocol version.
    #[error("protocol version {theirs}, this node speaks {VERSION}")]
    Version {
        /// The version the peer offered.
        theirs: u16,
    },
    /// A node of another cluster.
    #[error("cluster {theirs:?}, this node is in cluster {ours:?}")]
    Cluster {
        /// The peer's cluster name.
        theirs: String,
        /// Ours.
        ours: String,
    },
    /// A cluster name that is too long or not UTF-8.
    #[error("invalid cluster name")]
    Name,
    /// Reading or answering failed.
    #[error("handshake i/o: {0}")]
    Io(#[from] io::Error),
}

/// Introduce ourselves as `me` of `cluster`; `Ok(Err(reason))` if the peer
/// refused.
pub(crate) async fn offer<S>(s: &mut S, me: NodeId, cluster: &str) -> io::Result<Result<(), String>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if cluster.len() > MAX_NAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cluster name longer than {MAX_NAME} bytes"),
        ));
    }
    let mut hello = Vec::with_capacity(MAGIC.len() + 2 + 8 + 2 + cluster.len());
    hello.extend_from_slice(MAGIC);
    hello.extend_from_slice(&VERSION.to_be_bytes());
    hello.extend_from_slice(&me.to_be_bytes());
    hello.extend_from_slice(&(cluster.len() as u16).to_be_bytes());
    hello.extend_from_slice(cluster.as_bytes());
    s.write_all(&hello).await?;
    s.flush().await?;
    let status = s.read_u8().await?;
    let reason = read_string(s, MAX_REASON).await?;
    match (status, reason) {
        (OK, _) => Ok(Ok(())),
        (_, Some(reason)) => Ok(Err(reason)),
        (_, None) => Ok(Err("refused (unreadable reason)".to_owned())),
    }
}

/// Read a hello and answer it; the peer's node id if it is one of ours.
/// A refusal is sent (with its reason) before the error is returned; a
/// stream without the magic gets no answer.
pub(crate) async fn accept<S>(s: &mut S, cluster: &str) -> Result<NodeId, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut magic = [0u8; MAGIC.len()];
    s.read_exact(&mut magic).await?;
    if &magic != MAGIC {
        return Err(HandshakeError::Magic);
    }
    let verdict = read_hello(s, cluster).await;
    match &verdict {
        Ok(_) => answer(s, OK, "").await?,
        Err(HandshakeError::Io(_)) => {}
        Err(refusal) => answer(s, REFUSED, &refusal.to_string()).await?,
    }
    verdict
}

/// The rest of a hello after the magic.
async fn read_hello<S>(s: &mut S, cluster: &str) -> Result<NodeId, HandshakeError>
where
    S: AsyncRead + Unpin,
{
    let version = s.read_u16().await?;
    if version != VERSION {
        return Err(HandshakeError::Version { theirs: version });
    }
    let node = s.read_u64().await?;
    let theirs = read_string(s, MAX_NAME)
        .await?
        .ok_or(HandshakeError::Name)?;
    if theirs != cluster {
        return Err(HandshakeError::Cluster {
            theirs,
            ours: cluster.to_owned(),
        });
    }
    Ok(node)
}

async fn answer<S: AsyncWrite + Unpin>(s: &mut S, status: u8, reason: &str) -> io::Result<()> {
    let reason = &reason.as_bytes()[..reason.len().min(MAX_REASON)];
    let mut bytes = vec![status];
    bytes.extend_from_slice(&(reason.len() as u16).to_be_bytes());
    bytes.extend_from_slice(reason);
    s.write_all(&bytes).await?;
    s.flush().await
}

/// A `u16`-length-prefixed string; `None` if longer than `max` or not
/// UTF-8 (then the stream is not read further).
async fn read_string<S: AsyncRead + Unpin>(s: &mut S, max: usize) -> io::Result<Option<String>> {
    let len = usize::from(s.read_u16().await?);
    if len > max {
        return Ok(None);
    }
    let mut bytes = vec![0u8; len];
    s.read_exact(&mut bytes).await?;
    Ok(String::from_utf8(bytes).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run both sides over an in-memory pipe.
    async fn meet(
        ours: &str,
        theirs: &str,
    ) -> (
        io::Result<Result<(), String>>,
        Result<NodeId, HandshakeError>,
    ) {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let ours = ours.to_owned();
        let server = tokio::spawn(async move { accept(&mut b, &ours).await });
        let client = offer(&mut a, 9, theirs).await;
        (client, server.await.unwrap())
    }

    #[tokio::test]
    async fn same_cluster_is_accepted() {
        let (client, server) = meet("wse", "wse").await;
        assert_eq!(client.unwrap(), Ok(()));
        assert_eq!(server.unwrap(), 9);
    }

    #[tokio::test]
    async fn another_cluster_is_refused_with_a_reason() {
        let (client, server) = meet("wse", "other").await;
        let reason = client.unwrap().unwrap_err();
        assert!(reason.contains("\"other\""), "{reason}");
        assert!(matches!(server, Err(HandshakeError::Cluster { .. })));
    }

    #[tokio::test]
    async fn another_version_is_refused_with_a_reason() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let server = tokio::spawn(async move { accept(&mut b, "wse").await });
        a.write_all(MAGIC).await.unwrap();
        a.write_all(&2u16.to_be_bytes()).await.unwrap();
        assert_eq!(a.read_u8().await.unwrap(), REFUSED);
        let reason = read_string(&mut a, MAX_REASON).await.unwrap().unwrap();
        assert!(reason.contains("version 2"), "{reason}");
        let err = server.await.unwrap().unwrap_err();
        assert!(matches!(err, HandshakeError::Version { theirs: 2 }));
    }

    #[tokio::test]
    async fn wrong_magic_gets_no_answer() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        a.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let err = accept(&mut b, "wse").await.unwrap_err();
        assert!(matches!(err, HandshakeError::Magic));
    }
}
