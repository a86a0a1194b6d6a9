//! # simulator: a pure executable model of Linux madvise(2)
//!
//! **Architecture invariant: the simulator is pure.** No I/O, no libc, no threads, no clocks. State is a
//! plain value (`Clone + PartialEq + Debug`), and every operation is a function
//! (state, call, kernel model) → (new state, allowed outcome). It depends on nothing but serde.
//!
//! This crate also owns the vocabulary every other crate speaks: the calls (`program`), what is observed
//! and allowed (`observe`), and the kernel's named behaviours (`kernel`).
//!
//! | Linux construct | modelled by |
//! |---|---|
//! | `vm_area_struct` | `machine::Vma` |
//! | the VMA tree (maple tree) | `machine::Machine::vmas`, a sorted `Vec<Vma>` |
//! | a PTE | `machine::Pte` |
//! | a PTE table (the page a PMD entry points to) | `machine::Machine::pte_tables`, exists or not |
//! | a page-cache page / shmem page | `machine::FileObj::pages`, `cached`, `flagged` (PG_readahead) |
//! | `file_ra_state` of a scenario file | `machine::FileObj::mmap_miss`, `kernel::KernelModel::ra_pages` |
//! | `anon_vma` | `machine::AnonVma` id, with whether it was inherited through fork |
//! | an anonymous folio's identity and mapcount (1, or 2 while COW-shared with a fork child) | `machine::Pte::Anon` `folio`, `shared` |
//! | a parent and its live fork child (two mms over the same page-cache objects) | two `Machine`s kept consistent by `Machine::sync_live` |
//! | a maps/smaps record | `observe::VmaObs` |
//! | a pagemap entry | `observe::PageObs` |
//! | kernel version and config | `kernel::KernelModel` |
//!
//! Where each rule lives, by the kernel file it models:
//!
//! | kernel | simulator |
//! |---|---|
//! | the state (`mm_struct`, VMAs, PTEs, page cache) | `machine` |
//! | mm/madvise.c | `mm/madvise.rs` (front end, walk, per-advice) |
//! | mm/vma.c, mm/rmap.c | `mm/vma.rs` (split, merge, flag changes), `mm/rmap.rs` (anon_vma) |
//! | mm/mmap.c, mm/mprotect.c, mm/mlock.c, mm/mseal.c, mm/mremap.c | `mm/mmap.rs`, `mm/mprotect.rs`, `mm/mlock.rs`, `mm/mseal.rs`, `mm/mremap.rs` |
//! | mm/memory.c | `mm/memory.rs` (faults, COW, zap, populate) |
//! | mm/filemap.c, mm/readahead.c | `mm/filemap.rs`, `mm/readahead.rs` |
//! | mm/truncate.c, mm/shmem.c hole punch | `mm/truncate.rs` |
//! | mm/vmscan.c | `mm/vmscan.rs` (COLD, PAGEOUT) |
//! | mm/huge_memory.c, mm/khugepaged.c, mm/ksm.c | `mm/huge_memory.rs`, `mm/khugepaged.rs`, `mm/ksm.rs` |
//! | mm/hugetlb.c | `mm/hugetlb.rs` |
//! | kernel/fork.c | `kernel/fork.rs` |
//! | the syscall entry | `simulate` |
//! | fs/proc/task_mmu.c (what an observation may show) | `observe/expect.rs` |

pub mod content;
pub mod kernel;
pub mod machine;
mod mm;
pub mod observe;
pub mod program;
mod simulate;

pub use kernel::{KernelFacts, KernelModel};
pub use observe::{compare, Allowed, Expect, Observation, Verdict};
pub use program::{Advice, AdviceArg, Program, Step, StepId};
pub use simulate::{environment_refusal, simulate};
