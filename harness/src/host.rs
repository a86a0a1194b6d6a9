//! The host backend: long-lived, single-threaded worker processes that run scenarios on the real kernel.
//!
//! Public interface (fixed; the implementation lives in `worker.rs` / `observe_host.rs`):
//! - `Worker::spawn()` re-executes the current binary as `madcheck worker` (never fork without exec:
//!   the runner is multi-threaded).
//! - `Worker::spawn(exe, cpu)` starts a worker (optionally pinned to a CPU).
//! - `Worker::submit(&Program)` sends one framed scenario without waiting, so the caller can run the
//!   simulator meanwhile; `Worker::collect(&Program, timeout) -> Result<HostRun, String>` then gathers
//!   its observations (`Err` only for infrastructure failure). `Worker::run` = submit + collect.
//!   A worker that died or hung is replaced transparently at the next submit.
//! - `worker_main()` is what `madcheck worker` calls: it serves scenarios from stdin until EOF.

use simulator::observe::Observation;
use simulator::program::StepId;

/// What one scenario produced on the host.
#[derive(Debug, Clone)]
pub struct HostRun {
    /// One observation per point reached, in `Program::step_ids` order. When the worker (or a forked
    /// child) died by a signal at a point, that point is present with `ret: Signal(..)` and empty
    /// vmas/pages, and nothing after it (for a child: nothing after it in that child).
    pub points: Vec<(StepId, Observation)>,
    /// The host left the model's scope (e.g. reclaim by someone else during the scenario): do not compare.
    pub poisoned: Option<String>,
    /// The worker hung and was killed after the timeout; `points` holds what arrived before.
    pub timed_out: bool,
}

/// Entry point of `madcheck worker` (implementation pending): serve scenarios from stdin until EOF.
pub fn worker_main() -> i32 {
    0
}
