//! # cases: what madcheck runs
//!
//! A `Scenario` is data: hand-written, generated and shrunk scenarios are the same type, and every one
//! passes `validate` before it runs. (Generator and loader being written.)

use serde::{Deserialize, Serialize};
use simulator::Program;

/// Where a scenario came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Provenance {
    /// `generate(seed, index)`.
    Generated { seed: u64, index: u64 },
    /// A file in the named corpus (or given on the command line).
    File { path: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scenario {
    /// snake_case sentence of behaviour for named cases; `gen-<seed>-<index>` for generated ones.
    pub id: String,
    /// One line: what this scenario shows.
    #[serde(default)]
    pub description: String,
    pub provenance: Provenance,
    #[serde(flatten)]
    pub program: Program,
}
