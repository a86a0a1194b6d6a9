//! # harness: everything that touches the host
//!
//! Detects the kernel model, runs scenarios in long-lived worker processes on the real kernel, runs the
//! same scenarios on the simulator, compares, and renders reports.
//!
//! The modules, lowest first; each imports only modules above it in this list, so the module graph has
//! no cycle (`coverage` and `host` import nothing of each other):
//! - `host`: the host backend (worker processes, observation, raw syscalls, detection, the hugetlb pool);
//! - `coverage`: the semantic-coverage cells a scenario reached, and the cell space (`coverage::reach`);
//! - `run`: the runner, the judge and the run report;
//! - `out`: renderers, KTAP and the goldens;
//! - `hunt`: regression hunting (shrink, C reproducers, recordings, `check`, observation sets and
//!   `compare`, the guest jobs of `bisect`);
//! - `cli` (argument parsing) and `init` (PID-1 mode) stand apart; `main.rs` ties everything together.

pub mod host;
pub mod coverage;
pub mod run;
pub mod out;
pub mod cli;
pub mod init;
pub mod hunt;
