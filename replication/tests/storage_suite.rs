//! openraft's storage test suite over our log store and state machine.

use openraft::StorageError;
use openraft::testing::{StoreBuilder, Suite};
use std::sync::Arc;
use tempfile::TempDir;
use wse_log::{Log, LogConfig};
use wse_replication::{LogStore, NodeId, StateMachine, TypeConfig};

/// Builds a fresh store and state machine in a temp dir (the guard).
struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(Log::open(dir.path().join("log"), LogConfig::default()).unwrap());
        let store = LogStore::open(dir.path().join("raft")).unwrap();
        let sm = StateMachine::open(
            dir.path().join("raft"),
            log,
            wse_replication::shard::verbatim(),
            0,
        )
        .unwrap();
        Ok((dir, store, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(Builder).unwrap();
}
