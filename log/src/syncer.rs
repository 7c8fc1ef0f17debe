//! The background fsync of the `interval` policy: the writer asks, a
//! thread of its own fsyncs every dirty file, and the writer goes on
//! writing meanwhile, so an fsync that flushes megabytes never stalls
//! appends.

use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use crate::error::LogError;
use crate::shared::Shared;
use crate::stats::Counters;

#[derive(Default)]
struct State {
    /// An fsync was asked for and not started yet.
    requested: bool,
    /// Finish (after one last fsync if requested).
    stop: bool,
}

/// Asks the fsync thread for work.
pub struct Syncer {
    state: Arc<(Mutex<State>, Condvar)>,
    handle: Option<JoinHandle<()>>,
}

impl Syncer {
    /// Start the thread; `fail` is told of each fsync that failed (the
    /// paths stay dirty, and the writer's probe retries them).
    pub fn spawn(shared: Arc<Shared>, fail: impl Fn(LogError) + Send + 'static) -> Self {
        let state: Arc<(Mutex<State>, Condvar)> = Arc::default();
        let s = state.clone();
        let handle = std::thread::Builder::new()
            .name("wse-log-fsync".into())
            .spawn(move || run(&shared, &s, &fail))
            .ok();
        Self { state, handle }
    }

    /// Ask for an fsync of everything written so far (coalesced with a
    /// request not yet started).
    pub fn request(&self) {
        let (m, cv) = &*self.state;
        m.lock().requested = true;
        cv.notify_one();
    }

    /// Finish the thread (the writer then syncs what is left itself).
    pub fn stop(mut self) {
        {
            let (m, cv) = &*self.state;
            m.lock().stop = true;
            cv.notify_one();
        }
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn run(shared: &Shared, state: &(Mutex<State>, Condvar), fail: &dyn Fn(LogError)) {
    let (m, cv) = state;
    loop {
        {
            let mut s = m.lock();
            while !s.requested && !s.stop {
                cv.wait(&mut s);
            }
            if s.stop {
                return;
            }
            s.requested = false;
        }
        match shared.files.sync_dirty() {
            Ok(n) => Counters::add(&shared.counters.fsyncs, n as u64),
            Err((path, e)) => fail(LogError::io("fsync", path, e)),
        }
    }
}
