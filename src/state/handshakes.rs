//! The pending sockets: accepted, not yet upgraded (nor authenticated).
//! Bounded twice, so that idle sockets cannot lock clients out:
//!
//! - per address (`max_pending_handshakes_per_ip`): a socket from an
//!   address that already has that many pending is closed at accept, so
//!   one host cannot take every pending place;
//! - in all (`max_pending_handshakes`): when every place is taken, a new
//!   socket takes the place of the oldest one still reading its request,
//!   whose task closes it. A client that sends its request at once is
//!   pending for about a round trip; a socket that has sent nothing for
//!   longest is the likeliest to be idle. Refusing the newest instead (as
//!   before) let anyone holding that many silent sockets keep every new
//!   client out, one `handshake_timeout` after another.
//!
//! Addresses are compared by [`address_key`]: an IPv6 host is its /64,
//! since one host usually has the whole prefix to pick addresses from.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::oneshot;

/// The pending sockets of a server and their limits.
pub(crate) struct Handshakes {
    /// Pending sockets at most (`max_pending_handshakes`, at least 1).
    max: usize,
    /// Pending sockets at most per address key (0: no cap).
    max_per_address: usize,
    /// Who is pending; held only for map updates, never across an await.
    pending: Mutex<Pending>,
}

/// The pending sockets, by age and by address.
#[derive(Default)]
struct Pending {
    /// The next socket's number: numbers grow in accept order, so the
    /// first entry of `reading` is the oldest.
    next: u64,
    /// Sockets still reading their request, oldest first, with their
    /// address key and the sender that tells their task to close.
    reading: BTreeMap<u64, (IpAddr, oneshot::Sender<()>)>,
    /// Sockets past their request, finishing the upgrade: counted, but
    /// never closed for room (they no longer wait on the peer).
    finishing: usize,
    /// Pending sockets per address key (no zero entries).
    per_address: HashMap<IpAddr, usize>,
}

impl Pending {
    /// One socket of `address` is no longer pending.
    fn release(&mut self, address: IpAddr) {
        if let Some(n) = self.per_address.get_mut(&address) {
            *n -= 1;
            if *n == 0 {
                self.per_address.remove(&address);
            }
        }
    }
}

/// What [`Handshakes::admit`] decided for a new socket.
pub(crate) enum Admission {
    /// Pending now; `evicted` when it took the place of the oldest
    /// pending socket (whose task closes it).
    Admitted {
        /// Its place, given back when dropped.
        slot: HandshakeSlot,
        /// It took the oldest pending socket's place.
        evicted: bool,
    },
    /// Its address already has `max_per_address` pending.
    AddressFull,
    /// Every place is taken by sockets finishing their upgrade.
    Full,
}

impl Handshakes {
    /// Room for `max` pending sockets, `max_per_address` from one address
    /// (0: no per-address cap).
    pub(crate) fn new(max: usize, max_per_address: usize) -> Self {
        Self {
            max: max.max(1),
            max_per_address,
            pending: Mutex::default(),
        }
    }

    /// A place for a socket from `peer`, or why not.
    pub(crate) fn admit(self: &Arc<Self>, peer: IpAddr) -> Admission {
        let address = address_key(peer);
        let mut p = self.pending.lock();
        let from_address = p.per_address.get(&address).copied().unwrap_or(0);
        if self.max_per_address > 0 && from_address >= self.max_per_address {
            return Admission::AddressFull;
        }
        let evicted = p.reading.len() + p.finishing >= self.max;
        if evicted {
            let Some((_, (oldest, close))) = p.reading.pop_first() else {
                return Admission::Full;
            };
            p.release(oldest);
            // Its task may have ended already (the receiver dropped).
            let _ = close.send(());
        }
        let id = p.next;
        p.next += 1;
        let (close, closed) = oneshot::channel();
        p.reading.insert(id, (address, close));
        *p.per_address.entry(address).or_default() += 1;
        drop(p);
        let slot = HandshakeSlot {
            handshakes: self.clone(),
            id,
            address,
            closed: Some(closed),
            finishing: false,
        };
        Admission::Admitted { slot, evicted }
    }

    /// Sockets pending now.
    #[cfg(test)]
    fn pending(&self) -> usize {
        let p = self.pending.lock();
        p.reading.len() + p.finishing
    }
}

/// One pending socket's place; dropping it gives the place back.
pub(crate) struct HandshakeSlot {
    handshakes: Arc<Handshakes>,
    /// Its number, in accept order.
    id: u64,
    /// Its address key.
    address: IpAddr,
    /// Fires when a newer socket took this place (taken once awaited).
    closed: Option<oneshot::Receiver<()>>,
    /// Past its request (counted in `finishing`, no longer in `reading`).
    finishing: bool,
}

impl HandshakeSlot {
    /// Resolves when a newer socket took this place: the socket must be
    /// closed. Never resolves after [`Self::request_read`] or a first
    /// wait.
    pub(crate) async fn evicted(&mut self) {
        // A dropped sender (the slot left `reading`) is no eviction.
        let evicted = match self.closed.take() {
            Some(closed) => closed.await.is_ok(),
            None => false,
        };
        if !evicted {
            std::future::pending::<()>().await;
        }
    }

    /// The request is read: from now on the place is not given to a newer
    /// socket. False when it already was (the socket must be closed).
    pub(crate) fn request_read(&mut self) -> bool {
        let mut p = self.handshakes.pending.lock();
        if p.reading.remove(&self.id).is_none() {
            return false;
        }
        p.finishing += 1;
        self.finishing = true;
        self.closed = None;
        true
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        let mut p = self.handshakes.pending.lock();
        if self.finishing {
            p.finishing -= 1;
        } else if p.reading.remove(&self.id).is_none() {
            // Evicted: its place was released then.
            return;
        }
        p.release(self.address);
    }
}

/// What the per-address cap counts by: an IPv4 address (IPv4-mapped IPv6
/// included) as is, an IPv6 address by its /64.
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !(u128::from(u64::MAX));
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn slot(a: Admission) -> (HandshakeSlot, bool) {
        match a {
            Admission::Admitted { slot, evicted } => (slot, evicted),
            Admission::AddressFull => panic!("refused: address full"),
            Admission::Full => panic!("refused: full"),
        }
    }

    #[test]
    fn an_address_past_its_cap_is_refused_and_others_are_not() {
        let h = Arc::new(Handshakes::new(10, 2));
        let a1 = slot(h.admit(ip("10.0.0.1"))).0;
        let _a2 = slot(h.admit(ip("10.0.0.1"))).0;
        assert!(matches!(h.admit(ip("10.0.0.1")), Admission::AddressFull));
        let _b = slot(h.admit(ip("10.0.0.2"))).0;
        drop(a1);
        assert!(matches!(
            h.admit(ip("10.0.0.1")),
            Admission::Admitted { evicted: false, .. }
        ));
    }

    #[tokio::test]
    async fn the_oldest_reading_socket_makes_room_and_is_told() {
        let h = Arc::new(Handshakes::new(2, 0));
        let (mut oldest, _) = slot(h.admit(ip("10.0.0.1")));
        let (mut second, _) = slot(h.admit(ip("10.0.0.1")));
        assert!(second.request_read(), "second is past its request");
        let (_third, evicted) = slot(h.admit(ip("10.0.0.1")));
        assert!(evicted);
        assert_eq!(h.pending(), 2);
        oldest.evicted().await;
        assert!(!oldest.request_read(), "its place is gone");
        drop(oldest);
        assert_eq!(h.pending(), 2, "an evicted slot gives nothing back twice");
        // Third reads and second finishes: third goes next; with only
        // finishing sockets left, a new one is refused.
        let (mut fourth, evicted) = slot(h.admit(ip("10.0.0.2")));
        assert!(evicted);
        assert!(fourth.request_read());
        assert!(matches!(h.admit(ip("10.0.0.3")), Admission::Full));
        drop(second);
        drop(fourth);
        assert_eq!(h.pending(), 0);
        assert!(h.pending.lock().per_address.is_empty());
    }

    #[test]
    fn eviction_gives_back_the_evicted_address_place() {
        let h = Arc::new(Handshakes::new(1, 1));
        let (_a, _) = slot(h.admit(ip("10.0.0.1")));
        let (_b, evicted) = slot(h.admit(ip("10.0.0.2")));
        assert!(evicted);
        // 10.0.0.1 has nothing pending any more.
        let (_c, evicted) = slot(h.admit(ip("10.0.0.1")));
        assert!(evicted);
    }

    #[test]
    fn ipv6_hosts_are_their_64_and_mapped_ipv4_is_ipv4() {
        assert_eq!(
            address_key(ip("2001:db8:1:2:aaaa::1")),
            address_key(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            address_key(ip("2001:db8:1:2::1")),
            address_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(address_key(ip("::ffff:10.1.2.3")), ip("10.1.2.3"));
        assert_eq!(address_key(ip("127.0.0.2")), ip("127.0.0.2"));
    }
}
