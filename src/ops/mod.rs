//! What can be done to a running server: subscribe and unsubscribe,
//! recover, send and broadcast, and the client messages the core answers
//! itself. The public [`crate::Server`] and the connection tasks both call
//! these.

pub mod broadcast;
pub mod client;
pub(crate) mod ledger;
pub(crate) mod publish_ids;
pub mod recovery;
pub mod send;
pub mod subscribe;
