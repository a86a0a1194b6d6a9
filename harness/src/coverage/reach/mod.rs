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

use simulator::observe::{Errno, Ret, Signal};
use simulator::program::Advice;
use simulator::KernelModel;

/// Every outcome a madvise step can have: success, each errno some kernel's madvise returns, and the
/// signals a step can end in. Chosen from the kernel sources (spec §2, §5), not from observations.
pub const OUTCOMES: [Ret; 15] = [
    Ret::Ok,
    Ret::Err(Errno::EINVAL),
    Ret::Err(Errno::ENOMEM),
    Ret::Err(Errno::EAGAIN),
    Ret::Err(Errno::EBADF),
    Ret::Err(Errno::EPERM),
    Ret::Err(Errno::EACCES),
    Ret::Err(Errno::EFAULT),
    Ret::Err(Errno::EINTR),
    Ret::Err(Errno::EIO),
    Ret::Err(Errno::EBUSY),
    Ret::Err(Errno::EOPNOTSUPP),
    Ret::Err(Errno::EHWPOISON),
    Ret::Signal(Signal::SIGSEGV),
    Ret::Signal(Signal::SIGBUS),
];

/// The row name of an advice value: its name, or `invalid` for a value no kernel names.
pub fn advice_row(a: Option<Advice>) -> String {
    a.map_or_else(|| "invalid".to_string(), |a| a.name().to_string())
}

/// Rows in table order: every named advice, then `invalid`.
pub fn advice_rows() -> Vec<Option<Advice>> {
    Advice::ALL.iter().copied().map(Some).chain([None]).collect()
}

/// What backs the VMA a range starts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backing {
    AnonPrivate,
    AnonShared,
    FilePrivateDisk,
    FilePrivateMemfd,
    FileSharedDisk,
    FileSharedMemfd,
    /// MAP_HUGETLB private / shared, and a hugetlbfs memfd mapped private / shared.
    HugetlbPrivate,
    HugetlbShared,
    FilePrivateHugetlb,
    FileSharedHugetlb,
}

impl Backing {
    pub const ALL: [Backing; 10] = [
        Backing::AnonPrivate,
        Backing::AnonShared,
        Backing::FilePrivateDisk,
        Backing::FilePrivateMemfd,
        Backing::FileSharedDisk,
        Backing::FileSharedMemfd,
        Backing::HugetlbPrivate,
        Backing::HugetlbShared,
        Backing::FilePrivateHugetlb,
        Backing::FileSharedHugetlb,
    ];
    fn hugetlb(self) -> bool {
        matches!(self, Backing::HugetlbPrivate | Backing::HugetlbShared | Backing::FilePrivateHugetlb | Backing::FileSharedHugetlb)
    }
    /// No vm_file: private anonymous memory (shared anonymous memory is shmem and has one).
    fn anonymous(self) -> bool {
        self == Backing::AnonPrivate
    }
    fn shared(self) -> bool {
        matches!(
            self,
            Backing::AnonShared | Backing::FileSharedDisk | Backing::FileSharedMemfd | Backing::HugetlbShared | Backing::FileSharedHugetlb
        )
    }
    /// A private mapping with a vm_file (MAP_HUGETLB private memory has one: a hugetlbfs file).
    fn private_file(self) -> bool {
        matches!(self, Backing::FilePrivateDisk | Backing::FilePrivateMemfd | Backing::HugetlbPrivate | Backing::FilePrivateHugetlb)
    }
}

/// Access rights of the VMA (`r-x` counts as `R`: what matters is whether it is readable and writable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    RW,
    R,
    None,
}

/// What a VMA looks like to the per-VMA checks of madvise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub backing: Backing,
    pub access: Access,
    /// VM_LOCKED (mlock, mlock2 on fault, MAP_LOCKED).
    pub locked: bool,
    /// VM_SEALED (mseal).
    pub sealed: bool,
    /// The `gu` flag, or guard markers in the range.
    pub guard: bool,
}

impl Shape {
    /// Every shape the scenario language can build on this kernel.
    pub fn all(m: &KernelModel) -> Vec<Shape> {
        let mut out = Vec::new();
        for backing in Backing::ALL {
            for access in [Access::RW, Access::R, Access::None] {
                for locked in [false, true] {
                    for sealed in [false, true] {
                        for guard in [false, true] {
                            let s = Shape { backing, access, locked, sealed, guard };
                            if s.possible(m) {
                                out.push(s);
                            }
                        }
                    }
                }
            }
        }
        out
    }

    fn possible(&self, m: &KernelModel) -> bool {
        // mseal(2) exists from 6.10 on 64-bit [S 6.12 mm/mseal.c]; guard markers from 6.13, on private
        // anonymous memory only before 6.15 (KernelModel::guard_any_vma).
        // hugetlb: only where a huge page fits the arena; never VM_LOCKED (mlock_fixup skips it) and
        // never guarded (GUARD_INSTALL refuses it) [S 6.12 mm/mlock.c:mlock_fixup; S 6.18
        // mm/madvise.c:is_valid_guard_vma].
        (!self.sealed || m.mseal)
            && (!self.guard || (m.guard_regions && (m.guard_any_vma || self.backing == Backing::AnonPrivate)))
            && (!self.backing.hugetlb() || (m.hugetlb_pages > 0 && !self.locked && !self.guard))
    }

    fn sealed_ro_anon(&self) -> bool {
        self.sealed && self.backing.anonymous() && self.access != Access::RW
    }
}

/// Where a range starts, as the coverage classifier names it (coverage::hits).
#[derive(Clone, Copy)]
pub enum At {
    /// Refused before any VMA is looked at (unaligned start, length that rounds to 0 or wraps).
    FrontEnd,
    /// Length 0.
    ZeroLength,
    /// Wholly in a hole.
    Hole,
    /// Starts in a hole and reaches a VMA.
    HoleThenMapped,
    /// In a forked child (any range).
    AfterFork,
    /// Starts on a VMA of one of these shapes.
    Start(fn(&Shape) -> bool),
}

/// A column of the matrix.
#[derive(Clone, Copy)]
pub struct Kind {
    pub name: &'static str,
    pub at: At,
}

/// The first VMA decides the kind in this order: hugetlb (whatever its state), sealed, guarded, locked,
/// PROT_NONE, read-only, then the backing (coverage::kind_from_observation).
fn plain(s: &Shape) -> bool {
    !s.backing.hugetlb() && !s.sealed && !s.guard && !s.locked && s.access == Access::RW
}

/// Every column, in table order. Extend here (and in `Backing`) for new mapping kinds.
pub const KINDS: [Kind; 20] = [
    Kind { name: "anon_private", at: At::Start(|s| plain(s) && s.backing == Backing::AnonPrivate) },
    Kind { name: "anon_shared", at: At::Start(|s| plain(s) && s.backing == Backing::AnonShared) },
    Kind { name: "file_private_disk", at: At::Start(|s| plain(s) && s.backing == Backing::FilePrivateDisk) },
    Kind { name: "file_private_memfd", at: At::Start(|s| plain(s) && s.backing == Backing::FilePrivateMemfd) },
    Kind { name: "file_shared_disk", at: At::Start(|s| plain(s) && s.backing == Backing::FileSharedDisk) },
    Kind { name: "file_shared_memfd", at: At::Start(|s| plain(s) && s.backing == Backing::FileSharedMemfd) },
    Kind { name: "hugetlb_private", at: At::Start(|s| s.backing == Backing::HugetlbPrivate) },
    Kind { name: "hugetlb_shared", at: At::Start(|s| s.backing == Backing::HugetlbShared) },
    Kind { name: "file_private_hugetlb", at: At::Start(|s| s.backing == Backing::FilePrivateHugetlb) },
    Kind { name: "file_shared_hugetlb", at: At::Start(|s| s.backing == Backing::FileSharedHugetlb) },
    Kind { name: "read_only", at: At::Start(|s| !s.backing.hugetlb() && !s.sealed && !s.guard && !s.locked && s.access == Access::R) },
    Kind { name: "prot_none", at: At::Start(|s| !s.backing.hugetlb() && !s.sealed && !s.guard && !s.locked && s.access == Access::None) },
    Kind { name: "locked", at: At::Start(|s| !s.backing.hugetlb() && !s.sealed && !s.guard && s.locked) },
    Kind { name: "guarded", at: At::Start(|s| !s.backing.hugetlb() && !s.sealed && s.guard) },
    Kind { name: "sealed", at: At::Start(|s| !s.backing.hugetlb() && s.sealed) },
    Kind { name: "after_fork", at: At::AfterFork },
    Kind { name: "hole", at: At::Hole },
    Kind { name: "hole_then_mapped", at: At::HoleThenMapped },
    Kind { name: "front_end", at: At::FrontEnd },
    Kind { name: "zero_length", at: At::ZeroLength },
];

pub fn kind_names() -> Vec<&'static str> {
    KINDS.iter().map(|k| k.name).collect()
}

/// Why a cell cannot be reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Why {
    /// No kernel madcheck models has a path to it.
    Never,
    /// This kernel's version or configuration rules it out (another kernel may reach it).
    ThisKernel,
    /// A kernel can reach it, but only under conditions madcheck's scenarios cannot (or must not) set up.
    Scope,
}

impl Why {
    pub fn label(self) -> &'static str {
        match self {
            Why::Never => "no kernel",
            Why::ThisKernel => "not this kernel",
            Why::Scope => "out of scope",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreachable {
    pub why: Why,
    pub reason: String,
    pub cite: &'static str,
}

/// What the classifier knows about one cell.
pub struct Ctx<'a> {
    pub m: &'a KernelModel,
    pub advice: Option<Advice>,
    pub kind: &'a Kind,
    pub outcome: Ret,
}

impl Ctx<'_> {
    fn adv(&self, set: &[Advice]) -> bool {
        self.advice.is_some_and(|a| set.contains(&a))
    }
    fn valid(&self) -> bool {
        self.advice.is_some_and(|a| self.m.advice_valid(a.value()))
    }
    fn err(&self, e: Errno) -> bool {
        self.outcome == Ret::Err(e)
    }
    /// The range reaches at least one VMA.
    fn has_vma(&self) -> bool {
        matches!(self.kind.at, At::Start(_) | At::HoleThenMapped | At::AfterFork)
    }
    fn before_walk(&self) -> bool {
        matches!(self.kind.at, At::FrontEnd | At::ZeroLength)
    }
}

/// A hand-written rule: when `when` holds, the cell is unreachable for `reason`.
pub struct Rule {
    pub why: Why,
    pub when: fn(&Ctx) -> bool,
    pub reason: &'static str,
    pub cite: &'static str,
}

use Advice::*;

const MEMORY_FAILURE: [Advice; 2] = [Hwpoison, SoftOffline];
/// Advice that changes vm_flags, so splits and merges VMAs (spec §1).
const FLAG_CHANGING: [Advice; 13] = [
    Normal, Random, Sequential, Dontfork, Dofork, Mergeable, Unmergeable, Hugepage, Nohugepage, Dontdump, Dodump,
    Wipeonfork, Keeponfork,
];
const POPULATE: [Advice; 2] = [PopulateRead, PopulateWrite];
/// is_discard / can_madvise_modify's list (spec §5 mseal).
const DISCARD: [Advice; 6] = [Free, Dontneed, DontneedLocked, Remove, Dontfork, Wipeonfork];

/// The hand-written rules, in order. Keep each to one condition, one reason, one citation.
pub const RULES: &[Rule] = &[
    Rule {
        why: Why::Scope,
        when: |c| c.adv(&MEMORY_FAILURE) && matches!(c.kind.at, At::Start(_) | At::HoleThenMapped),
        reason: "madcheck runs HWPOISON/SOFT_OFFLINE only over zero-length ranges, unaligned starts and holes: \
                 over a mapped page a kernel with CONFIG_MEMORY_FAILURE would poison or migrate a real frame",
        cite: "cases/corpus/hwpoison_*, README (known gaps); cases/src/generate.rs NEVER_GENERATED",
    },
    Rule {
        why: Why::Scope,
        when: |c| {
            c.adv(&MEMORY_FAILURE)
                && c.m.memory_failure
                && (c.m.hwpoison_before_validation || c.outcome != Ret::Ok)
                && !(matches!(c.kind.at, At::FrontEnd) && c.err(Errno::EINVAL) && !c.m.hwpoison_before_validation)
                && !(matches!(c.kind.at, At::Hole | At::AfterFork) && c.err(Errno::EFAULT))
        },
        reason: "memory-failure injection is not modelled: with CONFIG_MEMORY_FAILURE only the front end \
                 (EINVAL), length 0 (0) and a hole (get_user_pages fails: EFAULT) are claimed",
        cite: "S 6.18 mm/madvise.c:madvise_inject_error; spec §5 HWPOISON",
    },
    Rule {
        why: Why::Never,
        when: |c| c.outcome == Ret::Signal(Signal::SIGSEGV),
        reason: "madvise never accesses the caller's memory itself; a fault inside GUP (POPULATE) comes back as \
                 EFAULT, not as a signal",
        cite: "S 6.18 mm/madvise.c:madvise_populate (-EFAULT for VM_FAULT_SIGSEGV)",
    },
    Rule {
        why: Why::Never,
        when: |c| c.outcome == Ret::Signal(Signal::SIGBUS) && !c.adv(&[Hwpoison]),
        reason: "only HWPOISON with MF_ACTION_REQUIRED signals the caller (SIGBUS when it maps the poisoned page)",
        cite: "S 6.18 mm/madvise.c:madvise_inject_error, mm/memory-failure.c:kill_accessing_process",
    },
    Rule {
        why: Why::Never,
        when: |c| c.advice.is_none() && c.outcome != Ret::Err(Errno::EINVAL),
        reason: "an advice value no kernel names is refused with EINVAL before anything else",
        cite: "S 6.18 mm/madvise.c:madvise_should_skip, is_valid_madvise; S 4.5 madvise_behavior_valid",
    },
    Rule {
        why: Why::ThisKernel,
        when: |c| c.advice.is_some() && !c.valid() && c.outcome != Ret::Err(Errno::EINVAL),
        reason: "this kernel does not know the advice (too old, or its CONFIG_ option is off; \
                 KernelModel::advice_valid), so every call is EINVAL",
        cite: "S 6.18 mm/madvise.c:is_valid_madvise; simulator/src/kernel.rs advice_valid",
    },
    Rule {
        why: Why::Never,
        when: |c| c.err(Errno::EINTR) && (!c.valid() || c.before_walk()),
        reason: "EINVAL and the len==0 shortcut are answered before mmap_lock is taken, so nothing can be interrupted",
        cite: "S 6.18 mm/madvise.c:madvise_should_skip, madvise_lock",
    },
    Rule {
        why: Why::Scope,
        when: |c| c.err(Errno::EINTR),
        reason: "EINTR needs a fatal signal while the call waits for mmap_lock (killable) or faults pages in; \
                 scenarios are single-threaded and nothing signals the worker during a call",
        cite: "S 6.18 mm/madvise.c:madvise_lock, madvise_populate; spec §4.8",
    },
    Rule {
        why: Why::Scope,
        when: |c| c.err(Errno::EAGAIN) && c.has_vma() && c.adv(&FLAG_CHANGING),
        reason: "EAGAIN comes only from a failed split or allocation on the flag-changing path (ENOMEM mapped to \
                 EAGAIN): vm.max_map_count (65530) is out of reach of a 1024-page arena, and madcheck neither \
                 changes sysctls nor exhausts memory",
        cite: "S 6.18 mm/madvise.c:madvise_vma_behavior (label out), mm/vma.c:split_vma; spec §3.3",
    },
    Rule {
        why: Why::Never,
        when: |c| c.err(Errno::EAGAIN) && !c.adv(&[Collapse]),
        reason: "only the flag-changing path (ENOMEM → EAGAIN) and MADV_COLLAPSE return EAGAIN",
        cite: "S 6.18 mm/madvise.c:madvise_vma_behavior, mm/khugepaged.c:madvise_collapse",
    },
    Rule {
        why: Why::Scope,
        when: |c| c.adv(&[Collapse]) && (c.err(Errno::EAGAIN) || c.err(Errno::EBUSY)),
        reason: "COLLAPSE fails transiently (EAGAIN) or on a memcg charge (EBUSY) only on a VMA that holds a \
                 PMD, which no scenario maps (README: COLLAPSE on such a VMA is a known gap)",
        cite: "S 6.18 mm/khugepaged.c:madvise_collapse",
    },
    Rule {
        why: Why::Never,
        when: |c| c.err(Errno::EBUSY) && !c.adv(&[Collapse, SoftOffline]),
        reason: "only COLLAPSE and SOFT_OFFLINE return EBUSY",
        cite: "S 6.18 mm/khugepaged.c:madvise_collapse, mm/memory-failure.c:soft_offline_page",
    },
    Rule {
        why: Why::Scope,
        when: |c| c.adv(&[Remove]) && (c.err(Errno::EIO) || c.err(Errno::EOPNOTSUPP)) && c.has_vma(),
        reason: "REMOVE passes the filesystem's fallocate(PUNCH_HOLE) error through; scenario files live on \
                 ext4 and tmpfs, which punch holes without I/O errors",
        cite: "S 6.18 mm/madvise.c:madvise_remove (vfs_fallocate); spec §4.6",
    },
    Rule {
        why: Why::Never,
        when: |c| (c.err(Errno::EIO) || c.err(Errno::EOPNOTSUPP)) && !c.adv(&[Remove, SoftOffline]),
        reason: "no path of this advice returns EIO or EOPNOTSUPP (WILLNEED ignores vfs_fadvise's result; \
                 only REMOVE's fallocate and SOFT_OFFLINE's migration pass such errors on)",
        cite: "S 6.18 mm/madvise.c:madvise_willneed, madvise_remove",
    },
    Rule {
        why: Why::Scope,
        when: |c| c.adv(&POPULATE) && c.err(Errno::EHWPOISON) && c.has_vma(),
        reason: "POPULATE returns EHWPOISON only on a hardware-poisoned page, which madcheck never makes",
        cite: "S 6.18 mm/madvise.c:madvise_populate",
    },
    Rule {
        why: Why::Never,
        when: |c| c.err(Errno::EHWPOISON) && !c.adv(&POPULATE),
        reason: "only POPULATE_(READ|WRITE) pass -EHWPOISON from GUP through",
        cite: "S 6.18 mm/madvise.c:madvise_populate",
    },
    Rule {
        why: Why::Never,
        when: |c| c.err(Errno::EACCES) && !c.adv(&[Remove]),
        reason: "only REMOVE returns EACCES (not a shared mapping that may be written)",
        cite: "S 6.18 mm/madvise.c:madvise_remove",
    },
    Rule {
        why: Why::Never,
        when: |c| c.err(Errno::EBADF) && !c.adv(&[Willneed]),
        reason: "only WILLNEED returns EBADF (anonymous VMA without CONFIG_SWAP)",
        cite: "S 6.18 mm/madvise.c:madvise_willneed",
    },
    Rule {
        why: Why::Never,
        when: |c| c.err(Errno::EFAULT) && !c.adv(&[PopulateRead, PopulateWrite, Hwpoison, SoftOffline]),
        reason: "only POPULATE (a fault that would SIGBUS/SIGSEGV) and memory-failure injection (GUP of an \
                 unmapped page) return EFAULT",
        cite: "S 6.18 mm/madvise.c:madvise_populate, madvise_inject_error",
    },
    Rule {
        why: Why::Never,
        when: |c| {
            c.err(Errno::EPERM)
                && !c.adv(&DISCARD)
                && !c.adv(&[GuardInstall, Hwpoison, SoftOffline])
        },
        reason: "EPERM comes from mseal (discard advice and, from 6.18, GUARD_INSTALL on a sealed read-only \
                 anonymous VMA), from REMOVE's fallocate, or from memory-failure injection without CAP_SYS_ADMIN",
        cite: "S 6.18 mm/madvise.c:can_madvise_modify, madvise_inject_error",
    },
    Rule {
        why: Why::ThisKernel,
        when: |c| c.kind.name == "sealed" && !c.m.mseal,
        reason: "no sealed VMA: mseal(2) exists from 6.10, 64-bit only",
        cite: "S 6.12 mm/mseal.c; simulator/src/kernel.rs mseal",
    },
    Rule {
        why: Why::ThisKernel,
        when: |c| c.kind.name == "guarded" && !c.m.guard_regions,
        reason: "no guard markers: MADV_GUARD_INSTALL exists from 6.13",
        cite: "spec §5 GUARD_INSTALL (662df3e5c376); simulator/src/kernel.rs guard_regions",
    },
];

/// A per-VMA outcome of one advice, in the kernel's check order.
pub struct VmaRule {
    pub advice: &'static [Advice],
    pub errno: Errno,
    /// `true`: the advice always fails this way on such a VMA. `false`: it may (state the shape does not
    /// capture decides).
    pub always: bool,
    pub on: fn(&Shape, &KernelModel) -> bool,
    /// Only where the range starts: the check depends on where the range enters the VMA (a VMA met
    /// later is entered at its start).
    pub first_only: bool,
    /// `Scope` when the rule holds only because madcheck never sets up the case where it would not.
    pub why: Why,
    pub reason: &'static str,
    pub cite: &'static str,
}

pub const VMA_RULES: &[VmaRule] = &[
    VmaRule {
        advice: &DISCARD,
        errno: Errno::EPERM,
        always: true,
        on: |s, m| m.mseal && s.sealed_ro_anon(),
        first_only: false,
        why: Why::ThisKernel,
        reason: "discard advice on a sealed read-only anonymous VMA is refused (checked first, per VMA)",
        cite: "S 6.12 mm/mseal.c:can_modify_vma_madv; S 6.18 mm/madvise.c:can_madvise_modify",
    },
    VmaRule {
        advice: &[GuardInstall],
        errno: Errno::EPERM,
        always: true,
        on: |s, m| m.mseal_refuses_guard_install && s.sealed_ro_anon(),
        first_only: false,
        why: Why::ThisKernel,
        reason: "GUARD_INSTALL counts as discard advice for mseal",
        cite: "T 6.18 spec §5 GUARD_INSTALL; S 7.2 mm/madvise.c:is_discard",
    },
    VmaRule {
        advice: &[Willneed],
        errno: Errno::EBADF,
        always: true,
        on: |s, m| m.willneed_anon_ebadf && s.backing.anonymous(),
        first_only: false,
        why: Why::ThisKernel,
        reason: "WILLNEED on an anonymous VMA without CONFIG_SWAP",
        cite: "S 6.18 mm/madvise.c:madvise_willneed",
    },
    VmaRule {
        advice: &[Dontneed, Free, Cold, Pageout, Remove],
        errno: Errno::EINVAL,
        always: true,
        on: |s, _| s.locked,
        first_only: false,
        why: Why::ThisKernel,
        reason: "VM_LOCKED is refused",
        cite: "S 6.18 mm/madvise.c:madvise_dontneed_free_valid_vma, can_madv_lru_vma, madvise_remove",
    },
    VmaRule {
        advice: &[Free],
        errno: Errno::EINVAL,
        always: true,
        on: |s, m| !m.free_falls_back_to_dontneed && !s.backing.anonymous(),
        first_only: false,
        why: Why::ThisKernel,
        reason: "FREE works on anonymous private memory only",
        cite: "S 6.18 mm/madvise.c:madvise_free_single_vma (vma_is_anonymous)",
    },
    VmaRule {
        advice: &[Remove],
        errno: Errno::EINVAL,
        always: true,
        on: |s, _| s.backing.anonymous(),
        first_only: false,
        why: Why::ThisKernel,
        reason: "REMOVE needs a VMA with a file (shmem counts)",
        cite: "S 6.18 mm/madvise.c:madvise_remove",
    },
    VmaRule {
        advice: &[Remove],
        errno: Errno::EACCES,
        always: true,
        on: |s, m| s.backing.private_file() || (!m.remove_needs_maywrite_only && s.access != Access::RW),
        first_only: false,
        why: Why::ThisKernel,
        reason: "REMOVE needs a shared mapping that may be written (VM_SHARED|VM_MAYWRITE; VM_WRITE before 6.7)",
        cite: "S 6.18 mm/madvise.c:madvise_remove (vma_is_shared_maywrite)",
    },
    VmaRule {
        advice: &[PopulateRead],
        errno: Errno::EINVAL,
        always: true,
        on: |s, _| s.access == Access::None,
        first_only: false,
        why: Why::ThisKernel,
        reason: "POPULATE_READ needs VM_READ (check_vma_flags -EFAULT, reported as EINVAL)",
        cite: "S 6.12 mm/gup.c:check_vma_flags; S 6.18 mm/madvise.c:madvise_populate",
    },
    VmaRule {
        advice: &[PopulateWrite],
        errno: Errno::EINVAL,
        always: true,
        on: |s, _| s.access != Access::RW,
        first_only: false,
        why: Why::ThisKernel,
        reason: "POPULATE_WRITE needs VM_WRITE (check_vma_flags -EFAULT, reported as EINVAL)",
        cite: "S 6.12 mm/gup.c:check_vma_flags; S 6.18 mm/madvise.c:madvise_populate",
    },
    VmaRule {
        advice: &POPULATE,
        errno: Errno::EFAULT,
        always: false,
        // madcheck never maps a hugetlb file past its end.
        on: |s, _| s.guard || (!s.backing.anonymous() && !s.backing.hugetlb()),
        first_only: false,
        why: Why::ThisKernel,
        reason: "a guard marker, or a page past EOF of a file or shmem object, fails the fault (SIGSEGV/SIGBUS → EFAULT)",
        cite: "S 6.18 mm/madvise.c:madvise_populate; simulator machine.rs past_eof",
    },
    VmaRule {
        advice: &[Collapse],
        errno: Errno::EINVAL,
        always: true,
        on: |_, _| true,
        first_only: false,
        why: Why::Scope,
        reason: "COLLAPSE on a VMA that cannot hold an aligned PMD is EINVAL, and no scenario maps one that can \
                 (README: COLLAPSE on a PMD-sized VMA is a known gap)",
        cite: "S 6.12 mm/khugepaged.c:madvise_collapse, mm/huge_memory.c:__thp_vma_allowable_orders",
    },
    VmaRule {
        advice: &[GuardInstall],
        errno: Errno::EINVAL,
        always: true,
        on: |s, _| s.locked,
        first_only: false,
        why: Why::ThisKernel,
        reason: "GUARD_INSTALL refuses VM_LOCKED",
        cite: "S 6.18 mm/madvise.c:is_valid_guard_vma",
    },
    VmaRule {
        advice: &[GuardInstall, GuardRemove],
        errno: Errno::EINVAL,
        always: true,
        on: |s, m| !m.guard_any_vma && s.backing != Backing::AnonPrivate,
        first_only: false,
        why: Why::ThisKernel,
        reason: "before 6.15 guard regions work on private anonymous memory only",
        cite: "man MADV_GUARD_INSTALL (UNVERIFIED in code); simulator/src/kernel.rs guard_any_vma",
    },
    VmaRule {
        advice: &[Cold, Pageout, GuardInstall, GuardRemove],
        errno: Errno::EINVAL,
        always: true,
        on: |s, _| s.backing.hugetlb(),
        first_only: false,
        why: Why::ThisKernel,
        reason: "COLD, PAGEOUT and guard regions refuse hugetlb VMAs",
        cite: "S 6.18 mm/madvise.c:can_madv_lru_vma, is_valid_guard_vma",
    },
    VmaRule {
        advice: &[Dontneed, DontneedLocked],
        errno: Errno::EINVAL,
        always: false,
        on: |s, _| s.backing.hugetlb(),
        first_only: true,
        why: Why::ThisKernel,
        reason: "DONTNEED on hugetlb needs a huge-page-aligned start",
        cite: "S 6.12 mm/madvise.c:madvise_dontneed_free_valid_vma",
    },
    VmaRule {
        advice: &[Normal, Random, Sequential, Dontfork, Dofork, Hugepage, Nohugepage, Dontdump, Dodump],
        errno: Errno::EINVAL,
        always: false,
        on: |s, _| s.backing.hugetlb(),
        first_only: false,
        why: Why::ThisKernel,
        reason: "a flag change that must split a hugetlb VMA inside a huge page is refused",
        cite: "S 6.12 mm/hugetlb.c:hugetlb_vm_op_split",
    },
    VmaRule {
        advice: &[Wipeonfork],
        errno: Errno::EINVAL,
        always: true,
        on: |s, _| !s.backing.anonymous() || s.backing.shared(),
        first_only: false,
        why: Why::ThisKernel,
        reason: "WIPEONFORK is only supported on private anonymous memory",
        cite: "S 6.18 mm/madvise.c:madvise_vma_behavior (MADV_WIPEONFORK)",
    },
];

/// The per-VMA outcomes of `a` on a VMA of shape `s`: the errors (each with its rule), and whether the
/// advice can succeed there.
fn on_vma(m: &KernelModel, a: Advice, s: &Shape) -> (Vec<(Errno, &'static VmaRule)>, bool) {
    let mut errs = Vec::new();
    for r in VMA_RULES {
        if r.advice.contains(&a) && (r.on)(s, m) {
            errs.push((r.errno, r));
            if r.always {
                return (errs, false);
            }
        }
    }
    (errs, true)
}

/// The outcomes the walk can give for a range starting on `kind` (already past the front end).
fn walk_outcomes(m: &KernelModel, a: Advice, kind: &Kind) -> Vec<Ret> {
    let mut shapes = Shape::all(m);
    if matches!(kind.at, At::AfterFork) {
        // A fork with hugetlb mappings is never run (the model does not know it; runner::hugetlb_refusal).
        shapes.retain(|s| !s.backing.hugetlb());
    }
    let later: Vec<Ret> = shapes
        .iter()
        .flat_map(|s| on_vma(m, a, s).0)
        .filter(|(_, r)| !r.first_only)
        .map(|(e, _)| Ret::Err(e))
        .collect();
    let mut out = Vec::new();
    let start = |pred: fn(&Shape) -> bool, out: &mut Vec<Ret>| {
        for s in shapes.iter().filter(|s| pred(s)) {
            let (errs, ok) = on_vma(m, a, s);
            out.extend(errs.iter().map(|(e, _)| Ret::Err(*e)));
            if ok {
                // It may succeed here and go on into a hole or any other VMA.
                out.extend([Ret::Ok, Ret::Err(Errno::ENOMEM)]);
                out.extend(later.iter().copied());
            }
        }
    };
    let populate_stops = POPULATE.contains(&a) && m.populate_linear;
    // After a hole the walk returns ENOMEM only if every VMA it then meets lets the advice through.
    let any_ok = shapes.iter().any(|s| on_vma(m, a, s).1);
    match kind.at {
        At::Start(pred) => start(pred, &mut out),
        At::Hole => out.push(Ret::Err(Errno::ENOMEM)),
        At::HoleThenMapped => {
            if populate_stops {
                out.push(Ret::Err(Errno::ENOMEM));
            } else {
                out.extend(later.iter().copied());
                if any_ok {
                    out.push(Ret::Err(Errno::ENOMEM));
                }
            }
        }
        At::AfterFork => {
            start(|_| true, &mut out);
            out.push(Ret::Err(Errno::ENOMEM));
            if !populate_stops {
                out.extend(later.iter().copied());
            }
        }
        At::FrontEnd | At::ZeroLength => {}
    }
    out.sort();
    out.dedup();
    out
}

/// Classify one cell on this kernel: `None` when reachable.
pub fn classify(m: &KernelModel, advice: Option<Advice>, kind: &Kind, outcome: Ret) -> Option<Unreachable> {
    let c = Ctx { m, advice, kind, outcome };
    if let Some(r) = RULES.iter().find(|r| (r.when)(&c)) {
        return Some(Unreachable { why: r.why, reason: r.reason.to_string(), cite: r.cite });
    }
    // Past the rules, an advice this kernel refuses has outcome EINVAL, which every kind reaches.
    let a = advice.filter(|_| c.valid())?;
    if MEMORY_FAILURE.contains(&a) {
        // What the memory-failure rule above leaves: front end, len 0, hole, a child's hole.
        return None;
    }
    let front = |what: &str| Unreachable {
        why: Why::Never,
        reason: format!("{what} before any VMA is looked at"),
        cite: "S 6.18 mm/madvise.c:madvise_should_skip; spec §2",
    };
    match kind.at {
        At::FrontEnd if outcome != Ret::Err(Errno::EINVAL) => {
            return Some(front("an unaligned start or a length that rounds to 0 or wraps is EINVAL"))
        }
        At::ZeroLength if outcome != Ret::Ok => return Some(front("a length of 0 returns 0")),
        At::FrontEnd | At::ZeroLength => return None,
        _ => {}
    }
    let outs = walk_outcomes(m, a, kind);
    if outs.contains(&outcome) {
        return None;
    }
    Some(explain(m, a, kind, outcome))
}

/// Why the walk cannot give `outcome` for `a` on `kind`.
fn explain(m: &KernelModel, a: Advice, kind: &Kind, outcome: Ret) -> Unreachable {
    let walk = "S 6.18 mm/madvise.c:madvise_walk_vmas";
    match kind.at {
        At::Hole => Unreachable {
            why: Why::Never,
            reason: "no VMA in the range: the walk returns ENOMEM".into(),
            cite: walk,
        },
        At::HoleThenMapped if outcome == Ret::Ok => Unreachable {
            why: Why::Never,
            reason: "the range starts in a hole, so the call cannot return 0 (ENOMEM unless a VMA's error beats it)"
                .into(),
            cite: walk,
        },
        At::HoleThenMapped if outcome == Ret::Err(Errno::ENOMEM) => Unreachable {
            why: Why::ThisKernel,
            reason: format!("{} fails on every VMA, and a VMA's error beats the hole's ENOMEM", a.name()),
            cite: walk,
        },
        At::HoleThenMapped if POPULATE.contains(&a) && m.populate_linear => Unreachable {
            why: Why::ThisKernel,
            reason: "POPULATE faults linearly and stops at the first hole with ENOMEM (6.9+)".into(),
            cite: "S 6.12 mm/madvise.c:madvise_populate; simulator/src/kernel.rs populate_linear",
        },
        At::Start(pred) => {
            // Every shape of the kind fails at once: name the rule that stops the first of them.
            let shapes: Vec<Shape> = Shape::all(m).into_iter().filter(pred).collect();
            let stops: Vec<Option<&VmaRule>> = shapes
                .iter()
                .map(|s| match on_vma(m, a, s) {
                    (errs, false) => errs.last().map(|(_, r)| *r),
                    (_, true) => None,
                })
                .collect();
            match stops.first() {
                Some(Some(r)) if stops.iter().all(Option::is_some) => Unreachable {
                    why: r.why,
                    reason: format!(
                        "{} fails on the first VMA with {:?} ({}), and the walk returns the first VMA's error at once",
                        a.name(),
                        r.errno,
                        r.reason
                    ),
                    cite: r.cite,
                },
                _ => no_vma_gives(a, outcome),
            }
        }
        _ => no_vma_gives(a, outcome),
    }
}

fn no_vma_gives(a: Advice, outcome: Ret) -> Unreachable {
    Unreachable {
        why: Why::ThisKernel,
        reason: format!("{} returns {outcome} on no VMA madcheck can map here (reason::VMA_RULES)", a.name()),
        cite: "S 6.18 mm/madvise.c:madvise_vma_behavior",
    }
}

/// The whole cell space on this kernel: (row, kind, outcome, classification).
pub fn space(m: &KernelModel) -> Vec<(String, &'static str, Ret, Option<Unreachable>)> {
    let mut out = Vec::new();
    for a in advice_rows() {
        for k in &KINDS {
            for o in OUTCOMES {
                out.push((advice_row(a), k.name, o, classify(m, a, k, o)));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use simulator::KernelFacts;

    fn model(p: &str) -> KernelModel {
        KernelModel::from_facts(KernelFacts::profile(p).unwrap())
    }

    fn reach(m: &KernelModel, a: Option<Advice>, k: &str, o: Ret) -> bool {
        let kind = KINDS.iter().find(|x| x.name == k).unwrap();
        classify(m, a, kind, o).is_none()
    }

    #[test]
    fn pinned_cells_on_6_18() {
        let m = model("6.18");
        let e = |x| Ret::Err(x);
        assert!(reach(&m, Some(Dontneed), "anon_private", Ret::Ok));
        assert!(!reach(&m, Some(Dontneed), "locked", Ret::Ok));
        assert!(reach(&m, Some(Dontneed), "locked", e(Errno::EINVAL)));
        assert!(reach(&m, Some(Dontneed), "anon_shared", e(Errno::EPERM)), "via a sealed read-only VMA later");
        assert!(!reach(&m, Some(Free), "anon_shared", Ret::Ok));
        assert!(!reach(&m, Some(Free), "anon_shared", e(Errno::ENOMEM)));
        assert!(!reach(&m, Some(Free), "anon_private", e(Errno::EACCES)));
        assert!(reach(&m, Some(Remove), "anon_shared", e(Errno::EACCES)), "a private file VMA later");
        assert!(!reach(&m, Some(Willneed), "anon_private", e(Errno::EBADF)), "CONFIG_SWAP=y");
        assert!(!reach(&m, Some(Hwpoison), "anon_private", e(Errno::EINVAL)), "never run over a mapping");
        assert!(reach(&m, Some(Hwpoison), "hole", e(Errno::EINVAL)));
        assert!(!reach(&m, Some(PopulateRead), "hole_then_mapped", e(Errno::EINVAL)), "stops at the hole");
        assert!(reach(&m, None, "sealed", e(Errno::EINVAL)));
        assert!(!reach(&m, None, "sealed", Ret::Ok));
        assert!(!reach(&m, Some(Normal), "anon_private", e(Errno::EAGAIN)));
    }

    #[test]
    fn version_gates() {
        let m61 = model("6.1");
        assert!(!reach(&m61, Some(GuardInstall), "anon_private", Ret::Ok));
        assert!(!reach(&m61, Some(Dontneed), "sealed", Ret::Ok));
        assert!(reach(&m61, Some(PopulateRead), "hole_then_mapped", Ret::Err(Errno::EINVAL)), "per VMA in the walk");
        let m45 = model("4.5");
        assert!(reach(&m45, Some(Free), "anon_shared", Ret::Ok), "FREE falls back to DONTNEED");
        assert!(!reach(&m45, Some(Cold), "anon_private", Ret::Ok));
    }

    #[test]
    fn every_kind_and_outcome_is_classified_without_panicking() {
        for p in ["4.5", "6.1", "6.12", "6.18"] {
            let s = space(&model(p));
            assert_eq!(s.len(), advice_rows().len() * KINDS.len() * OUTCOMES.len());
            assert!(s.iter().any(|c| c.3.is_none()));
        }
    }
}
