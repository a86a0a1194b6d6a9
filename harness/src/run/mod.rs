//! The run: scheduling scenarios onto host workers and the simulator, judging each one, and folding the
//! results into the run report.
//!
//! Invariant: the run depends on the host backend and the coverage classifier, never on the outputs;
//! everything here returns data (results, a `Report`) and prints nothing.

pub mod call;
pub mod faults;
pub mod judge;
pub mod report;
pub mod runner;
pub mod unsupported;
