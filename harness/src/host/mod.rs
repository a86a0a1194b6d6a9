//! The host backend: long-lived, single-threaded worker processes that run scenarios on the real kernel,
//! and what else reads or changes the host (kernel detection, the hugetlb pool).
//!
//! Public interface (fixed; the implementation lives in `pool.rs`, `worker/` and `observe.rs`):
//! - `Worker::spawn(exe, cpu)` starts `exe worker` (never fork without exec: the runner is
//!   multi-threaded), optionally pinned to a CPU.
//! - `Worker::submit(&Program)` sends one framed scenario without waiting, so the caller can run the
//!   simulator meanwhile; `Worker::collect(&Program, timeout) -> Result<HostRun, String>` then gathers
//!   its observations (`Err` only for infrastructure failure). `Worker::run` = submit + collect.
//!   A worker that died or hung is replaced transparently (from a pre-started spare once one died).
//! - `worker_main()` is what `madcheck worker` calls: it serves scenarios from stdin until EOF.
//! - `reap_orphans()` reaps the zombies of what dead workers forked (the process that starts workers
//!   is their subreaper); `Worker`'s drop and the runner's progress tick call it.
//!
//! Invariant: this is the bottom layer of the crate. Nothing in `host/` imports the run, the coverage
//! or the outputs; they use the host only through this interface (and `detect`, `hugepool`).

/// Raw syscall wrappers and the frame codec.
pub(crate) mod sys;
pub mod hugepool;
pub mod khugepaged;
pub mod journal;
mod observe;
pub mod procmem;
mod worker;
mod pool;
pub mod detect;
pub mod guest;
pub mod floor;
pub mod pkru;

pub use pool::{check_program, reap_orphans, HostRun, Worker};
pub use worker::{worker_main, FAULT_DIR_ENV};
