//! The coverage cell space (advice × mapping kind × outcome) and which of its cells a kernel can reach.
//!
//! Invariant: this module is the one place that lists the rows (`advice_rows`), the columns (`KINDS`),
//! the outcomes (`OUTCOMES`) and the reachability rules. Reachability is decided from the `KernelModel`
//! (version and config as named behaviours), never from what a run observed, so a run can check it in both
//! directions: every reachable cell is reached by the default suite, and no unreachable cell is reached.
//!
//! How a cell is classified, first answer wins:
//! 1. `RULES`: hand-written rules, each with a reason and a citation, for cells no kernel reaches
//!    (`Why::Never`), cells this kernel's version or config rules out (`Why::ThisKernel`), and cells a
//!    kernel reaches only under conditions madcheck's scenario language cannot set up (`Why::Scope`: a
//!    fatal signal during the call, vm.max_map_count, memory pressure, a poisoned frame).
//! 2. The walk: `VMA_RULES` say which errors each advice gives on one VMA of a given `Shape` (in the
//!    kernel's check order; `always` errors stop the advice there, `may` errors depend on state a shape
//!    does not capture, such as a guard marker or a page past EOF inside the range). A kind is a set of
//!    shapes the range may start on; the outcomes of a kind follow from madvise_walk_vmas: the first VMA's
//!    error returns at once, a VMA that can succeed lets the range go on into a hole (ENOMEM) or into any
//!    other VMA (its errors) [S 6.18 mm/madvise.c:madvise_walk_vmas; spec §2.3].
//!
//! Adding a mapping kind (hugetlb, say) is a `Backing` variant, its `Shape`s, a `KINDS` entry and the
//! `VMA_RULES` that mention it.
//!
//! Files, lowest first: `table` (rows, columns, outcomes and the rule vocabulary), `rules` (the rule
//! tables), `walk` (the classifier and the space).

mod table;
mod rules;
mod walk;
pub mod pm;

pub use rules::{VmaRule, RULES, VMA_RULES};
pub use table::{
    advice_row, advice_rows, kind_names, Access, At, Backing, Ctx, Kind, Rule, Shape, Unreachable, Why, KINDS, OUTCOMES,
};
pub use walk::{classify, space};
