//! The hand-written rules: `RULES` (whole cells) and `VMA_RULES` (what each advice gives on one VMA of a
//! given shape), each with its reason and citation.

use crate::coverage::reach::table::{Access, At, Backing, Rule, Shape, Why};
use simulator::observe::{Errno, Ret, Signal};
use simulator::program::Advice;
use simulator::KernelModel;

use Advice::*;

pub(super) const MEMORY_FAILURE: [Advice; 2] = [Hwpoison, SoftOffline];
/// Advice that changes vm_flags, so splits and merges VMAs (spec §1).
const FLAG_CHANGING: [Advice; 13] = [
    Normal, Random, Sequential, Dontfork, Dofork, Mergeable, Unmergeable, Hugepage, Nohugepage, Dontdump, Dodump,
    Wipeonfork, Keeponfork,
];
pub(super) const POPULATE: [Advice; 2] = [PopulateRead, PopulateWrite];
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
        reason: "COLLAPSE fails transiently (EAGAIN: a page locked, pinned or off the LRU) or on a memcg charge \
                 (EBUSY) only under conditions madcheck does not set up (other threads, GUP pins, memcg limits)",
        cite: "S 6.18 mm/khugepaged.c:madvise_collapse",
    },
    Rule {
        why: Why::Scope,
        when: |c| c.adv(&[Collapse]) && matches!(c.kind.at, At::AfterFork) && c.outcome == Ret::Ok,
        reason: "COLLAPSE succeeds only on a VMA holding an aligned PMD; only the THP generator maps one, and it \
                 does not fork (fork of a process mapping a THP is not modelled)",
        cite: "simulator mm/khugepaged.rs, simulate.rs FORK_THP; cases/src/generate.rs mod thp",
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

/// Can MADV_COLLAPSE return 0 on a VMA of this shape in some scenario madcheck runs?
fn collapse_may_succeed(s: &Shape, m: &KernelModel) -> bool {
    m.collapse
        && s.backing == Backing::AnonPrivate
        && !s.locked
        && !s.guard
        && !s.sealed
        && (s.access == Access::RW || m.collapse_needs_writable_pte == Some(false))
}

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
        on: |s, m| !collapse_may_succeed(s, m),
        first_only: false,
        why: Why::Scope,
        reason: "COLLAPSE succeeds only on a VMA that holds an aligned PMD; scenarios map such VMAs only as plain \
                 private anonymous memory (the THP generator: no mlock, guard markers or mseal there), file and \
                 shmem collapse is not modelled, and up to 6.12 a range without a writable PTE fails (SCAN_PAGE_RO)",
        cite: "S 6.12 mm/khugepaged.c:madvise_collapse, hpage_collapse_scan_pmd; simulator mm/khugepaged.rs",
    },
    VmaRule {
        advice: &[Collapse],
        errno: Errno::EINVAL,
        always: false,
        on: |s, m| collapse_may_succeed(s, m),
        first_only: false,
        why: Why::ThisKernel,
        reason: "COLLAPSE is EINVAL on a VMA too small for a PMD, without an anon_vma, for a range inside one PMD \
                 range, or when a PMD range has no page table",
        cite: "S 6.12 mm/khugepaged.c:madvise_collapse, madvise_collapse_errno; T 6.18 cases collapse_*",
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
        on: |s, m| !m.guard_any_vma && !s.backing.anonymous(),
        first_only: false,
        why: Why::ThisKernel,
        reason: "before 6.15 guard regions work on private anonymous memory only (vma_is_anonymous: droppable too)",
        cite: "S 6.13 mm/madvise.c:is_valid_guard_vma; simulator/src/kernel.rs guard_any_vma",
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
        advice: &[Dofork],
        errno: Errno::EINVAL,
        always: true,
        on: |s, m| m.dofork_refuses_special && s.backing.hugetlb(),
        first_only: false,
        why: Why::ThisKernel,
        reason: "DOFORK refuses VM_SPECIAL, which takes in hugetlb's VM_DONTEXPAND (KernelModel::dofork_refuses_special)",
        cite: "S 7.3.4 mm/madvise.c:madvise_vma_behavior",
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
        advice: &[Keeponfork, Dodump],
        errno: Errno::EINVAL,
        always: true,
        on: |s, _| s.backing == Backing::AnonDroppable,
        first_only: false,
        why: Why::ThisKernel,
        reason: "a droppable VMA keeps VM_WIPEONFORK and VM_DONTDUMP: KEEPONFORK and DODUMP are refused",
        cite: "S 6.12 mm/madvise.c:madvise_vma_behavior (VM_DROPPABLE); T 6.18.44",
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
