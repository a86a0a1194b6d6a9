//! # cases: what madcheck runs
//!
//! A `Scenario` is data: hand-written, generated and shrunk scenarios are the same type, and every one
//! passes [`validate`] before it runs.
//!
//! Invariant: a scenario that passes [`validate`] is safe to run inside the worker's arena on every page
//! size madcheck supports (4 KiB, 16 KiB, 64 KiB): no mapping or step reaches outside the arena, and no
//! madvise call can reach the worker's own mappings (binary, heap, stack). Everything that builds a
//! scenario ([`load_scenario`], [`generate`]) returns only validated scenarios.
//!
//! | module | job |
//! |---|---|
//! | [`mod@load`] | JSON files → `Scenario`, with errors naming the file and the JSON path of the bad field |
//! | [`mod@validate`] | the safety and well-formedness rules (`cases/FORMAT.md` lists them) |
//! | [`mod@generate`] | the seeded generator, deterministic from `(seed, index)` alone |
//! | [`mod@fuzz`] | the fuzz harnesses (loader, simulator invariants), shared by `fuzz/` and the stable replay test |
//! | [`mod@shrink`] | the smaller candidates for a program that shows a difference (pure; the harness runs them) |

use serde::{Deserialize, Serialize};
use simulator::Program;
use std::fmt;

pub mod fuzz;
pub mod generate;
pub mod load;
pub mod shrink;
pub mod validate;

pub use generate::{generate, generate_many, GENERATED_ADVICE, GENERATED_INVALID_ADVICE};
pub use load::{load_dir, load_scenario, load_str};
pub use validate::{validate, PAGE_SIZES};

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

impl Scenario {
    /// What an error about this scenario should name first: its file, or its id when it has no file.
    pub fn origin(&self) -> &str {
        match &self.provenance {
            Provenance::File { path } => path,
            Provenance::Generated { .. } => &self.id,
        }
    }
}

/// A scenario that cannot be loaded or is not safe to run. Displays as `<origin>: <field>: <message>`,
/// where origin is the file (or the id of a scenario without one) and field is a JSON path such as
/// `steps[2].advice` (left out when the problem is the whole file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseError {
    pub origin: String,
    pub field: String,
    pub message: String,
}

impl CaseError {
    pub fn new(origin: impl Into<String>, field: impl Into<String>, message: impl Into<String>) -> Self {
        CaseError { origin: origin.into(), field: field.into(), message: message.into() }
    }
}

impl fmt::Display for CaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.origin, self.message)
        } else {
            write!(f, "{}: {}: {}", self.origin, self.field, self.message)
        }
    }
}

impl std::error::Error for CaseError {}
