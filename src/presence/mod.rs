//! Presence: who is in a topic, with what data.
//!
//! Every change is an operation of a CRDT ([`crdt`]), applied in memory and
//! appended to the topic's presence stream in the log ([`stream`]); the
//! presence of a topic is the fold of that stream. [`tracker`] maps
//! connections to their entries, enforces the limits, and turns changes
//! into frames and application events once per tick.
//!
//! - [`crdt`]: the state (observed-remove set with a causal context, LWW
//!   data registers) and its operations.
//! - [`clock`]: the hybrid logical clock stamping data writes.
//! - [`topic`]: one topic's state with O(1) stats and change reports.
//! - [`stream`]: the presence streams and the node's runs in the log.
//! - [`tracker`]: the server's presence.
//! - [`replicated`]: presence in a cluster: operations go through the
//!   cluster, every node folds the committed stream, and each node
//!   reconciles it with its own connections and the cluster's liveness.

pub mod clock;
pub mod crdt;
pub(crate) mod replicated;
pub mod stream;
pub mod topic;
pub(crate) mod tracker;

pub(crate) use tracker::Presence;
pub use tracker::PresenceError;
