//! Peer replication of WSE log appends.
//!
//! This crate will own the peer links (TCP + mTLS), the peer frame codec,
//! membership and gossip, interest routing, and shipping/applying log
//! appends (see `docs/ARCHITECTURE.md`). It ships the record encoding of
//! `wse-log` unchanged: one encoding on disk, in memory and on the peer wire.
//!
//! Nothing is implemented yet; the crate exists so the dependency arrow
//! `log <- src <- replication <- pybind/tools` is fixed from the start.
