//! The table: its rows (`advice_rows`), columns (`KINDS`) and outcomes (`OUTCOMES`), and the vocabulary
//! the rules are written in (`Shape`, `Ctx`, `Rule`, `Why`, `Unreachable`).

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
    /// MAP_DROPPABLE|MAP_ANONYMOUS (6.11+): private anonymous memory with VM_DROPPABLE.
    AnonDroppable,
}

impl Backing {
    pub const ALL: [Backing; 11] = [
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
        Backing::AnonDroppable,
    ];
    pub(super) fn hugetlb(self) -> bool {
        matches!(self, Backing::HugetlbPrivate | Backing::HugetlbShared | Backing::FilePrivateHugetlb | Backing::FileSharedHugetlb)
    }
    /// No vm_file: private anonymous memory, droppable or not (shared anonymous memory is shmem and has
    /// one).
    pub(super) fn anonymous(self) -> bool {
        matches!(self, Backing::AnonPrivate | Backing::AnonDroppable)
    }
    pub(super) fn shared(self) -> bool {
        matches!(
            self,
            Backing::AnonShared | Backing::FileSharedDisk | Backing::FileSharedMemfd | Backing::HugetlbShared | Backing::FileSharedHugetlb
        )
    }
    /// A private mapping with a vm_file (MAP_HUGETLB private memory has one: a hugetlbfs file).
    pub(super) fn private_file(self) -> bool {
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
        // droppable: only where mmap knows MAP_DROPPABLE, and never VM_LOCKED (MAP_LOCKED is EINVAL,
        // mlock_fixup skips it) [S 6.12 mm/mmap.c:do_mmap, mm/mlock.c:mlock_fixup; T 6.18.44].
        (!self.sealed || m.mseal)
            && (!self.guard || (m.guard_regions && (m.guard_any_vma || self.backing.anonymous())))
            && (!self.backing.hugetlb() || (m.hugetlb_pages > 0 && !self.locked && !self.guard))
            && (self.backing != Backing::AnonDroppable || (m.map_droppable && !self.locked))
    }

    pub(super) fn sealed_ro_anon(&self) -> bool {
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
pub const KINDS: [Kind; 21] = [
    Kind { name: "anon_private", at: At::Start(|s| plain(s) && s.backing == Backing::AnonPrivate) },
    Kind { name: "anon_droppable", at: At::Start(|s| plain(s) && s.backing == Backing::AnonDroppable) },
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
    pub(super) fn adv(&self, set: &[Advice]) -> bool {
        self.advice.is_some_and(|a| set.contains(&a))
    }
    pub(super) fn valid(&self) -> bool {
        self.advice.is_some_and(|a| self.m.advice_valid(a.value()))
    }
    pub(super) fn err(&self, e: Errno) -> bool {
        self.outcome == Ret::Err(e)
    }
    /// The range reaches at least one VMA.
    pub(super) fn has_vma(&self) -> bool {
        matches!(self.kind.at, At::Start(_) | At::HoleThenMapped | At::AfterFork)
    }
    pub(super) fn before_walk(&self) -> bool {
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
