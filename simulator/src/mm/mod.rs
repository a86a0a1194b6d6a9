//! The rules, laid out like the kernel's mm/: each file is an `impl Machine` block (or free functions)
//! for the kernel file of the same name, and its first lines name that file and the invariants it keeps.
//! The state the rules act on is in `crate::machine`; the step dispatcher is `crate::simulate`, the
//! observation the model expects is `crate::observe::expect`, fork is `crate::kernel::fork`.
//!
//! Every rule cites its source: `S <version> <kernel file>:<function>` for source read, `T <version>`
//! with a probe or a madcheck case for behaviour tested on a live kernel.
mod rmap;
mod vma;
mod memory;
mod filemap;
mod readahead;
mod mmap;
mod mprotect;
mod mlock;
mod mseal;
pub(crate) mod pkeys;
mod mremap;
pub(crate) mod madvise;
mod huge_memory;
mod khugepaged;
mod ksm;
mod vmscan;
mod truncate;
mod memfd;
mod hugetlb;
