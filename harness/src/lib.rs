//! # harness: everything that touches the host
//!
//! Detects the kernel model, runs scenarios in long-lived worker processes on the real kernel, runs the
//! same scenarios on the simulator, compares, and renders reports.

pub mod coverage;
pub mod reach;
pub mod detect;
pub mod host;
pub mod hugepool;
mod observe_host;
mod worker;
pub mod runner;
pub mod report;
pub mod render;
pub mod cli;
pub mod goldens;
pub mod init;
pub mod ktap;
pub mod hunt;
