//! `KernelModel`: the table of named behaviours that differ between kernel versions and configurations.
//!
//! Invariant: this is the only module that looks at a version number. Rules elsewhere ask for a named
//! behaviour (`model.free_falls_back_to_dontneed`), never `if version >= ...`. The facts come from the
//! host (harness::detect) or from a named profile (`KernelFacts::profile`), and are plain data.

use serde::{Deserialize, Serialize};

pub(crate) mod fork;

/// THP sysfs mode (`/sys/kernel/mm/transparent_hugepage/enabled`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThpMode {
    Always,
    Madvise,
    Never,
    /// CONFIG_TRANSPARENT_HUGEPAGE is off.
    Unavailable,
}

/// Raw facts about a kernel, as detected at start. Everything the model may depend on is here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelFacts {
    /// `uname -r`, e.g. `6.18.44-fc-v669`.
    pub release: String,
    /// `uname -v` (the version field of /proc/version), e.g. `#1 SMP PREEMPT_DYNAMIC Debian 6.1.190-1
    /// (2025-...)`. Empty when not detected (profiles and facts recorded before it was).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uname_version: String,
    /// The upstream `(major, minor, sublevel)`: from a `Debian X.Y.Z` token of `uname_version` when it
    /// names the same major.minor as `release` (Debian's 6.1 releases are `6.1.0-54-amd64`, with no
    /// sublevel), otherwise parsed from `release` (see `KernelFacts::upstream_version`).
    pub version: (u32, u32, u32),
    /// `uname -m`: `x86_64`, `aarch64`, `ppc64le`, `s390x`, ...
    pub arch: String,
    pub page_size: u64,
    /// Config options that matter, `None` when unknown (no /proc/config.gz and no override).
    pub config: KernelConfig,
    /// A swap device is active (/proc/swaps has an entry).
    pub swap_active: bool,
    pub thp: ThpMode,
    /// CAP_SYS_ADMIN in the effective set (pagemap PFNs, HWPOISON).
    pub cap_sys_admin: bool,
    /// pagemap shows PFNs (so the shared zero page can be told apart from other present pages).
    pub pfn_visible: bool,
    /// The stable backport of "mm: introduce VM_MAYBE_GUARD" (the `gu` VmFlag). Detected by probe.
    pub guard_vma_flag: bool,
    /// `vm.max_map_count`.
    pub max_map_count: u64,
    /// ksmd is running (`/sys/kernel/mm/ksm/run` = 1): pages in MERGEABLE VMAs may be merged at any time.
    #[serde(default)]
    pub ksm_running: bool,
    /// The readahead window (`read_ahead_kb` in pages, bdi->ra_pages) of the block device holding the
    /// scenario's disk files (the temp directory): every `struct file` starts with it as f_ra.ra_pages
    /// [S 6.12 mm/readahead.c:file_ra_state_init]. `None` when unknown (not a block device, or no
    /// /sys); readahead over a disk file then answers Unsupported.
    #[serde(default)]
    pub ra_pages: Option<u64>,
    /// The default huge page size in kB (/proc/meminfo `Hugepagesize`; 0 without hugetlbfs).
    #[serde(default)]
    pub hugepage_kb: u64,
    /// Base pages one PMD maps (`/sys/kernel/mm/transparent_hugepage/hpage_pmd_size` / page size), when
    /// the kernel says: 64-bit page tables of x86_64 and arm64 hold page_size / 8 entries, but ppc64's
    /// radix tables with 64K pages hold 32 (2 MiB PMDs) and its hash tables 256 (16 MiB)
    /// [S 7.2 arch/powerpc/include/asm/book3s/64/radix-64k.h RADIX_PTE_INDEX_SIZE 5, hash-64k.h
    /// H_PTE_INDEX_SIZE 8]. `None`: no THP sysfs; page_size / 8 is assumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pmd_pages: Option<u64>,
    /// `/sys/kernel/mm/transparent_hugepage/use_zero_page` (default 1): a read fault that may map a PMD
    /// THP maps the huge zero page instead of allocating one [S 6.18 mm/huge_memory.c:
    /// do_huge_pmd_anonymous_page]. `None`: not detected (no THP sysfs, or facts recorded before it was);
    /// the default is assumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thp_use_zero_page: Option<bool>,
    /// Why hugetlb scenarios cannot run here (no pool could be reserved, no hugetlbfs, ...); `None` when
    /// they can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hugetlb_unavailable: Option<String>,
    /// RLIMIT_MEMLOCK's soft limit in bytes (`getrlimit`), `None` for RLIM_INFINITY (also facts recorded
    /// before it was detected). The workers inherit it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memlock_limit: Option<u64>,
    /// CAP_IPC_LOCK in the effective set, which bypasses RLIMIT_MEMLOCK [S 6.12 mm/mlock.c:can_do_mlock,
    /// do_mlock; mm/mmap.c:mlock_future_ok]. `true` when not recorded (the profiles run as root).
    #[serde(default = "yes")]
    pub cap_ipc_lock: bool,
    /// CAP_SYS_NICE in the effective set: process_madvise on another process needs it (6.1: on any
    /// process) [S 6.1, 6.12 mm/madvise.c:SYSCALL_DEFINE5(process_madvise)]. `true` when not recorded.
    #[serde(default = "yes")]
    pub cap_sys_nice: bool,
    /// Why scenarios with a disk file cannot run here (the scratch directory, `$TMPDIR` or /tmp, is
    /// read-only, full, or missing: the error and the directory); `None` when they can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_files_unavailable: Option<String>,
    /// Why scenarios with a `tmpfs` file cannot run here (no writable tmpfs directory at the harness's
    /// `TMPFS_DIR`, /dev/shm, or one mounted noexec or with huge pages: the reason); `None` when they can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs_files_unavailable: Option<String>,
    /// A fresh anonymous mapping shows `sd` (VM_SOFTDIRTY) in its smaps VmFlags: the run-time answer of
    /// pgtable_supports_soft_dirty(), which since "mm: softdirty: add pgtable_supports_soft_dirty()"
    /// decides whether new VMAs get VM_SOFTDIRTY [S 7.2 mm/vma.c:__mmap_region, __install_special_mapping;
    /// include/linux/pgtable.h:pgtable_supports_soft_dirty]. CONFIG_MEM_SOFT_DIRTY is not enough: riscv64
    /// has soft-dirty only with the Svrsw60t59b extension (its PTE bits 59-60 for software), a run-time
    /// check [S 7.2 arch/riscv/include/asm/pgtable.h (pgtable_supports_soft_dirty:
    /// riscv_has_extension_unlikely(RISCV_ISA_EXT_SVRSW60T59B)); T Debian 7.2.13 riscv64 under qemu
    /// `-cpu rv64`: no `sd` with CONFIG_MEM_SOFT_DIRTY=y]. `None`: not probed (facts recorded before it
    /// was); CONFIG_MEM_SOFT_DIRTY decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vma_soft_dirty: Option<bool>,
    /// What pkey_alloc answered at start-up (the harness's `detect::pkeys`); `None`: not detected (facts
    /// recorded before it was), and every `pkey_*` step is Unsupported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkeys: Option<PkeyFacts>,
    /// `vm.overcommit_memory` (0 heuristic, 1 always, 2 never), read at start-up and never changed. Under
    /// 2 (OVERCOMMIT_NEVER) mmap ignores MAP_NORESERVE except on hugetlb files ("We honor MAP_NORESERVE if
    /// allowed to overcommit") [S 6.18 mm/mmap.c:do_mmap]. `None`: not detected (facts recorded before
    /// it was); 0, the default, is assumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overcommit_memory: Option<u8>,
}

/// Protection keys as the kernel showed them at start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PkeyFacts {
    /// `pkey_alloc(0, PKEY_DISABLE_WRITE)` returned a key (freed at once): the CPU has protection keys and
    /// the kernel uses them (x86: OSPKE). `false`: it failed with `alloc_errno`.
    pub available: bool,
    /// The errno of a second such call when keys are not available: ENOSYS without the pkey syscalls (an
    /// arch or config without CONFIG_ARCH_HAS_PKEYS), ENOSPC where the CPU lacks them [S 6.18
    /// mm/mprotect.c:pkey_alloc; arch/x86/include/asm/pkeys.h:mm_pkey_alloc].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alloc_errno: Option<crate::observe::Errno>,
    /// The errno of the process's first pkey_alloc where keys are not available. Where x86's
    /// mm_pkey_alloc does not check arch_pkeys_enabled(), the first call takes key 0 (the map is empty
    /// without OSPKE, arch_max_pkey() is 1), arch_set_user_pkey_access refuses it (EINVAL), and
    /// mm_pkey_free cannot give it back (key 0 is the mm's execute_only_pkey, zeroed), so the first call
    /// is EINVAL and every later one ENOSPC [S torvalds/linux 2555693dd85c arch/x86/include/asm/pkeys.h:
    /// mm_pkey_alloc, mm_pkey_free; T 6.18.44-fc-v1300 without PKU: strace of a fresh process shows
    /// `pkey_alloc(0, PKEY_DISABLE_WRITE) = -1 EINVAL` then `= -1 ENOSPC` for any rights]. Debian
    /// 6.12.118's mm_pkey_alloc returns -1 first (`if (!arch_pkeys_enabled())`): ENOSPC every time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_alloc_errno: Option<crate::observe::Errno>,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KernelConfig {
    pub swap: Option<bool>,
    pub ksm: Option<bool>,
    pub transparent_hugepage: Option<bool>,
    pub memory_failure: Option<bool>,
    pub anon_vma_name: Option<bool>,
    pub mem_soft_dirty: Option<bool>,
    pub userfaultfd: Option<bool>,
}

impl KernelFacts {
    /// Parse `6.18.44-fc-v669` → (6, 18, 44).
    pub fn parse_version(release: &str) -> (u32, u32, u32) {
        let mut it = release.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap_or(0));
        (it.next().unwrap_or(0), it.next().unwrap_or(0), it.next().unwrap_or(0))
    }

    /// The upstream version of a kernel from `uname -r` and `uname -v`. Debian's ABI name keeps the
    /// sublevel at 0 for a whole series (`6.1.0-54-amd64` is 6.1.190, `6.1.0-57-amd64` 6.1.192), and
    /// puts the upstream version in the version field: `#1 SMP PREEMPT_DYNAMIC Debian 6.1.190-1
    /// (2025-...)`, `Debian 6.12.43-1~bpo12+1`. A `Debian X.Y.Z` token is used whenever its major.minor
    /// is the release's; anything else (another distribution, a token for another series) falls back to
    /// `parse_version(release)`.
    pub fn upstream_version(release: &str, uname_version: &str) -> (u32, u32, u32) {
        let from_release = Self::parse_version(release);
        let mut words = uname_version.split_ascii_whitespace();
        while let Some(w) = words.next() {
            if w != "Debian" {
                continue;
            }
            let Some(next) = words.clone().next() else { break };
            let nums: Vec<&str> = next.splitn(4, '.').collect();
            if nums.len() < 3 {
                continue;
            }
            // The sublevel runs up to the Debian revision (`190-1`, `43-1~bpo12+1`).
            let sub: String = nums[2].chars().take_while(|c| c.is_ascii_digit()).collect();
            let (Ok(maj), Ok(min), Ok(sub)) = (nums[0].parse::<u32>(), nums[1].parse::<u32>(), sub.parse::<u32>()) else {
                continue;
            };
            if (maj, min) == (from_release.0, from_release.1) {
                return (maj, min, sub);
            }
        }
        from_release
    }

    /// Named profiles for kernels madcheck knows without a host: `4.5`, `6.1`, `6.12`, `6.18` (x86_64, 4K,
    /// root, no swap, THP madvise; configs as Debian ships them, the host's for 6.18).
    pub fn profile(name: &str) -> Option<KernelFacts> {
        // The 6.1 profile is Debian 6.1.0-57-amd64 (6.1.192): its release has no sublevel, the version
        // field names it.
        let (release, uname_version, mf, sd) = match name {
            "4.5" => ("4.5.0", "", true, true),
            "6.1" => ("6.1.0-57-amd64", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)", true, true),
            "6.12" => ("6.12.117+deb12-amd64", "", true, true),
            "6.18" => ("6.18.44-fc-v669", "", false, false),
            _ => return None,
        };
        let version = KernelFacts::upstream_version(release, uname_version);
        Some(KernelFacts {
            release: release.into(),
            uname_version: uname_version.into(),
            version,
            arch: "x86_64".into(),
            page_size: 4096,
            config: KernelConfig {
                swap: Some(true),
                ksm: Some(true),
                transparent_hugepage: Some(true),
                memory_failure: Some(mf),
                anon_vma_name: Some(false),
                mem_soft_dirty: Some(sd),
                userfaultfd: Some(true),
            },
            swap_active: false,
            thp: ThpMode::Madvise,
            cap_sys_admin: true,
            pfn_visible: true,
            guard_vma_flag: version >= (6, 18, 0) && name == "6.18",
            max_map_count: 65530,
            ksm_running: false,
            // Debian guests under qemu: virtio-blk reports no optimal I/O size, so the bdi keeps
            // VM_READAHEAD_PAGES (128 KiB) [S 6.12 block/blk-settings.c:blk_apply_bdi_limits]; the host's
            // /dev/vda has read_ahead_kb = 8192.
            ra_pages: Some(if name == "6.18" { 2048 } else { 32 }),
            hugepage_kb: 2048,
            hugetlb_unavailable: None,
            memlock_limit: None,
            cap_ipc_lock: true,
            cap_sys_nice: true,
            disk_files_unavailable: None,
            tmpfs_files_unavailable: None,
            pmd_pages: None,
            thp_use_zero_page: None,
            pkeys: None,
            vma_soft_dirty: None,
            overcommit_memory: None,
        })
    }
}

/// The named behaviours, computed once from the facts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelModel {
    pub facts: KernelFacts,
    /// e.g. `linux-6.18-x86_64-4k`.
    pub profile: String,
    pub page_size: u64,
    /// HWPOISON/SOFT_OFFLINE are handled before the validity and alignment checks, and need
    /// CAP_SYS_ADMIN even for len 0. [S 4.5 mm/madvise.c:SYSCALL_DEFINE3(madvise); moved in ~4.12]
    pub hwpoison_before_validation: bool,
    /// CONFIG_MEMORY_FAILURE: HWPOISON and SOFT_OFFLINE are valid advice.
    pub memory_failure: bool,
    /// CONFIG_KSM: MERGEABLE/UNMERGEABLE are valid (assumed on when the config is unknown: every profiled
    /// kernel has it) [S 6.18 mm/madvise.c:madvise_behavior_valid "#ifdef CONFIG_KSM"].
    pub ksm: bool,
    /// CONFIG_TRANSPARENT_HUGEPAGE: HUGEPAGE/NOHUGEPAGE (and COLLAPSE from 6.1) are valid.
    pub thp: bool,
    /// WIPEONFORK/KEEPONFORK exist (4.14+, d2cd9ede6e19).
    pub wipeonfork: bool,
    /// COLD/PAGEOUT exist (5.4+: 9c276cc65a58, 1a4e58cce84e) [spec §1].
    pub cold_pageout: bool,
    /// POPULATE_READ/WRITE exist (5.14+: 4ca9b3859dac) [spec §1].
    pub populate: bool,
    /// DONTNEED_LOCKED exists (5.18+: 9457056ac426) [spec §1].
    pub dontneed_locked: bool,
    /// COLLAPSE exists (6.1+ with THP: 7d8faaf15545) [spec §1].
    pub collapse: bool,
    /// GUARD_INSTALL/REMOVE exist (6.13+: 662df3e5c376) [spec §1].
    pub guard_regions: bool,
    /// MADV_FREE falls back to DONTNEED when no swap is active (4.5-4.11; 93e06c7a6453 removed it).
    pub free_falls_back_to_dontneed: bool,
    /// Without CONFIG_SWAP, WILLNEED on an anonymous VMA is EBADF [S mm/madvise.c:madvise_willneed].
    pub willneed_anon_ebadf: bool,
    /// REMOVE needs VM_SHARED|VM_MAYWRITE (6.7+, backported to 6.1.y/6.12.y) instead of VM_WRITE
    /// [S 6.1.192 and 6.12.117 mm/madvise.c:madvise_remove; T 6.18; mainline 6.1.0-6.6 test VM_WRITE, spec §5
    /// REMOVE]. The profile switch is at 6.1 because the 6.1 profile is Debian's 6.1.y.
    pub remove_needs_maywrite_only: bool,
    /// New VMAs carry VM_SOFTDIRTY (`sd`) (CONFIG_MEM_SOFT_DIRTY) [S mm/mmap.c:__mmap_region].
    pub softdirty_new_vmas: bool,
    /// smaps has a LazyFree field (4.12+; UNVERIFIED release) [spec §6.2].
    pub smaps_lazyfree: bool,
    /// The shared zero page can be told apart in pagemap (needs PFNs, so CAP_SYS_ADMIN).
    pub zero_page_visible: bool,
    /// VM_LOCKONFAULT prints `lf` (6.12+ show_smap_vma_flags; earlier it printed nothing).
    pub lockonfault_mnemonic: bool,
    /// 6.18.y backport / 6.19+: GUARD_INSTALL sets the sticky `gu` flag.
    pub guard_vma_flag: bool,
    /// 6.15+: guard regions work on any VMA that is not VM_SPECIAL or hugetlb; 6.13-6.14 only on
    /// private anonymous memory (man page MADV_GUARD_INSTALL).
    pub guard_any_vma: bool,
    pub max_map_count: u64,
    /// Read faults on file and shmem VMAs also map the cached neighbours in an aligned window of this
    /// many pages (fault_around_bytes = 64 KiB by default since 3.15) [S mm/memory.c:do_fault_around].
    pub fault_around_pages: u64,
    /// Entries in one page table (PTRS_PER_PTE): fault-around never crosses a page-table boundary, and a
    /// PMD-mapped THP covers this many pages. 64-bit page tables hold 8-byte entries, so page_size / 8
    /// [S arch/x86/include/asm/pgtable_64_types.h PTRS_PER_PTE 512; arch/arm64/include/asm/pgtable-hwdef.h
    /// PTRS_PER_PTE (1 << (PAGE_SHIFT - 3))].
    pub ptrs_per_pte: u64,
    /// MADV_POPULATE_(READ|WRITE) fault the range linearly outside the VMA walk and stop at the first
    /// hole or unsuitable VMA (631426ba1d45, v6.9; UNVERIFIED release); before, they ran per VMA inside
    /// the walk (holes → ENOMEM at the end) [S 6.1 mm/madvise.c:madvise_populate; S 6.12 same].
    pub populate_linear: bool,
    /// THP sysfs mode, which decides whether anonymous faults may allocate a PMD THP.
    pub thp_mode: crate::kernel::ThpMode,
    /// A read fault that may allocate a PMD THP maps the huge zero page (`KernelFacts::thp_use_zero_page`).
    pub thp_use_zero_page: bool,
    /// Splitting an anonymous large folio (split_folio, not split_huge_pmd) maps each zero-filled subpage
    /// to the shared zero page instead of keeping it, outside VM_LOCKED VMAs (6.12+) [S 6.12
    /// mm/huge_memory.c:__split_huge_page (remap_page with RMP_USE_SHARED_ZEROPAGE); mm/migrate.c:
    /// try_to_map_unused_to_zeropage; T 6.18 probe, case thp_free_inside_splits_folio_zero_subpages_become_zero_page].
    pub thp_split_maps_zero_subpages: bool,
    /// A write fault on a huge zero PMD allocates a whole PMD THP (`Some(true)`, verified on 6.18:
    /// do_huge_zero_wp_pmd) [S 6.18 mm/huge_memory.c:do_huge_pmd_wp_page; T 6.18 probe, case
    /// thp_write_after_read_replaces_huge_zero_page_with_thp]. `None`: not verified for this release
    /// (older ones split the PMD to small zero pages and copy one page), so such a step is Unsupported.
    pub thp_huge_zero_wp_allocates: Option<bool>,
    /// MADV_COLLAPSE fails a PMD range none of whose PTEs is writable (SCAN_PAGE_RO): `Some(true)` up to
    /// 6.12 [S 6.12 mm/khugepaged.c:hpage_collapse_scan_pmd ("if (!writable) result = SCAN_PAGE_RO")],
    /// `Some(false)` from 6.18 [T 6.18 probe: a range of empty PTEs, of zero pages, or in a read-only or
    /// PROT_NONE VMA collapses; cases collapse_of_a_range_of_only_zero_pages_succeeds,
    /// collapse_in_a_read_only_vma_succeeds]; `None` between (not verified).
    pub collapse_needs_writable_pte: Option<bool>,
    /// MADV_DONTNEED(_LOCKED) frees a PTE table it left empty when its range covered the table's whole
    /// PMD range (CONFIG_PT_RECLAIM, 6.14+, selected by x86_64 only through 6.18) [S 7.x
    /// mm/pt_reclaim.c:reclaim_pt_is_enabled, try_to_free_pte; mm/madvise.c:madvise_dontneed_single_vma
    /// (reclaim_pt); T 6.18, gen-2-17185: COLLAPSE after DONTNEED of a whole table finds no table].
    pub dontneed_reclaims_pte_tables: bool,
    /// MADV_COLLAPSE stops at a PMD range without a page table instead of going on to the next (6.18;
    /// 6.12 whitelists SCAN_PMD_NULL and goes on) [S 6.12 mm/khugepaged.c:madvise_collapse; T 6.18,
    /// gen-5-127: a page in the second range is not collapsed after an empty first one].
    pub collapse_stops_at_pmd_null: bool,
    /// smaps does not count a PMD-mapped anonymous THP in a PROT_NONE VMA (Rss, Anonymous,
    /// AnonHugePages, LazyFree, Pss): 6.1's smaps_pmd_entry uses follow_trans_huge_pmd(FOLL_DUMP), which
    /// answers NULL for a protnone PMD [S 6.1 fs/proc/task_mmu.c:smaps_pmd_entry; mm/huge_memory.c:
    /// follow_trans_huge_pmd; T Debian 6.1.192 x86_64 and arm64: rss 0 after mprotect(PROT_NONE) of a
    /// THP, case collapse_in_a_prot_none_vma_succeeds]. 6.12 counts it [T Debian 6.12.118, same case];
    /// the change lies between (Debian has no 6.2-6.11), modelled from 6.12.
    #[serde(default)]
    pub smaps_skips_protnone_pmd: bool,
    /// MADV_COLLAPSE of a range inside one PMD range that does not start on its boundary (hstart >
    /// hend) is EINVAL: the count of PMD ranges wraps and never equals the collapsed count [S 6.12
    /// mm/khugepaged.c:madvise_collapse; T 6.18.44 and Debian 6.1.192/6.12.118, case
    /// collapse_inside_one_pmd_range_is_einval]. Debian 7.3.4 returns 0 [T 7.3.4 x86_64, same case and
    /// gen-1-200]. Boundary from the x86_64 series: EINVAL on Debian 6.19.6 and 7.1.13 (1,000 generated
    /// scenarios of seed 5 plus the corpus) and 7.0.4 (the case), 0 on Debian 7.2.6 and 7.2.11 (the case);
    /// Debian has no 7.2.0-7.2.5, so modelled from 7.2.0 (a change of the 7.2 merge window).
    #[serde(default)]
    pub collapse_inverted_range_is_einval: bool,
    /// ksmd merges pages asynchronously.
    pub ksm_running: bool,
    /// mseal(2) exists (6.10+, 64-bit only: mm/Makefile builds mseal.o under CONFIG_64BIT, and every
    /// 64-bit arch's syscall table wires 462 to it) [S 6.12 mm/mseal.c, mm/Makefile; T 7.2.13 ppc64le 64K,
    /// case each_advice_from_each_kind_alone_and_up_to_a_hole: mseal returns 0 and prints `sl`].
    pub mseal: bool,
    /// A sealed read-only anonymous VMA refuses MADV_GUARD_INSTALL like the discard advice [T 6.18;
    /// S 7.2 mm/madvise.c; T Debian 6.16.3, 6.16.12 and 6.17.8 x86_64 (series run 2026-12-08), cases
    /// droppable_walks_on_into_refusing_vmas, each_discard_advice_from_each_kind_up_to_a_sealed_read_only_anon_vma:
    /// EPERM]. Taken from 6.16, the first release with guard regions that Debian's archive has; 6.13-6.15
    /// (guard regions without this check, or with it) are UNVERIFIED.
    pub mseal_refuses_guard_install: bool,
    /// mmap knows MAP_DROPPABLE (6.11+, 64-bit: VM_DROPPABLE is VM_NONE elsewhere, which answers
    /// EOPNOTSUPP; before 6.11 the map type 0x08 is EINVAL) [S 6.12 mm/mmap.c:do_mmap; include/linux/mm.h
    /// (VM_DROPPABLE under CONFIG_64BIT); T 6.18.44].
    pub map_droppable: bool,
    /// mremap validates the source VMA before unmapping a MREMAP_FIXED destination; before, the
    /// destination was unmapped first, also when the move then failed [S 6.12 mremap_to; T Debian 6.16.3
    /// and 6.16.12 (unmapped first: 14 generated mremap scenarios of seed 5 and
    /// mremap_dontunmap_leaves_pages_mlocked_so_pageout_skips_them diverged while this said 6.16) and
    /// 6.17.8 (checks first), series run 2026-12-08]. From 6.17, with the multi-VMA move (d23cb648e365).
    pub mremap_checks_first: bool,
    /// A same-size MREMAP_FIXED move may span several VMAs and gaps (d23cb648e365, 6.17).
    pub mremap_multi: bool,
    /// mprotect dropping PROT_WRITE from a private anonymous VMA with no anon_vma drops VM_ACCOUNT
    /// [S 6.12 mm/mprotect.c:mprotect_fixup]; 6.1 keeps it [T Debian 6.1.192: `rd mr mw me ac`]. Added by
    /// "mm/mprotect: allow unfaulted VMAs to be unaccounted on mprotect()", believed v6.6 (UNVERIFIED).
    pub mprotect_unaccounts_anon: bool,
    /// VMA merges judge anon_vma compatibility by the side that owns one ("mm/vma: fix incorrectly
    /// disallowed anonymous VMA merges", believed v6.16; UNVERIFIED); before, by the merge target's
    /// anon_vma_chain [S 6.12 mm/vma.c:is_mergeable_anon_vma; T Debian 6.12.117 and 6.18.44].
    pub anon_merge_by_owner: bool,
    /// mmap_region tries to expand the next VMA first and judges the previous one against the next's
    /// anon_vma (6.1-6.11, the maple-tree mmap_region; vma_merge_new_range from 6.12, UNVERIFIED
    /// boundary; 4.5 used plain vma_merge) [S 6.1 mm/mmap.c].
    pub mmap_expand_next_first: bool,
    /// copy_vma for MREMAP_DONTUNMAP of an unfaulted anonymous VMA does not merge at all when the
    /// destination touches the source (6.1.y stable form); 6.12 only leaves the source out
    /// [S 6.1.192 mm/mmap.c:copy_vma; S 6.12 mm/vma.c:copy_vma].
    pub mremap_kept_source_blocks_merge: bool,
    /// copy_vma leaves an unfaulted anonymous source kept by MREMAP_DONTUNMAP out of the merge at the
    /// destination ("If the original VMA is kept (MREMAP_DONTUNMAP), the source and destination VMA
    /// must be treated distinctly ... disallow a self-merge"). 6.12 got it in 6.12.115: Debian 6.12.113
    /// merges a one-page move to the adjacent page into one VMA, 6.12.115 keeps two [S 6.12.118
    /// mm/vma.c:copy_vma; T Debian 6.12.113/6.12.115 x86_64 (cargo xtask bisect --series 6.12, see
    /// docs/findings.md), case mremap_dontunmap_unfaulted_source_stays_apart_from_6_1_192_and_6_12_115]. 6.16+
    /// checks first and merges with it again [T 6.18, case gen-1-1475]. 6.1 got the stable form in
    /// 6.1.192 (see `mremap_kept_source_blocks_merge`); 6.1.0-6.1.191 merge [S 6.1.192 mm/mmap.c:copy_vma;
    /// T Debian 6.1.190/6.1.192 x86_64 (cargo xtask bisect --series 6.1), same case]. Debian 6.1
    /// kernels need `KernelFacts::uname_version` for the sublevel. The same guard reached the 7.2 stable
    /// series: Debian 7.2.9 merges, 7.2.11 keeps two [S 7.3.4 mm/vma.c:copy_vma; T Debian 7.2.9/7.2.11
    /// (cargo xtask bisect over 6.18.5 … 7.3.4), the same case].
    pub mremap_kept_source_stays_apart: bool,
    /// MADV_DOFORK refuses every VM_SPECIAL VMA (`if (new_flags & VM_SPECIAL) return -EINVAL`), which
    /// takes in hugetlb's VM_DONTEXPAND: DOFORK on hugetlb is EINVAL, while DONTFORK still succeeds
    /// there [S 7.3.4 mm/madvise.c:madvise_vma_behavior; T Debian 6.19.14 (old) and 7.0.4 (new) x86_64 by cargo xtask bisect, docs/findings.md; case
    /// dofork_hugetlb_refused_from_7_x]. Before, only VM_IO [S 6.18 mm/madvise.c:madvise_vma_behavior].
    #[serde(default)]
    pub dofork_refuses_special: bool,
    /// MREMAP_DONTUNMAP of an mlock()ed VMA splits the source around the range first, so only the moved
    /// range loses VM_LOCKED (needs_pre_split, prep_move_vma) [S 7.3.4 mm/mremap.c:prep_move_vma;
    /// T Debian 7.2.9 (old) and 7.2.11 (new), a 7.2 stable change; case mremap_dontunmap_locked_source_splits]. Before the 6.16 refactor
    /// move_vma split the same way [S 6.12 mm/mremap.c:move_vma]; 6.16 up to the fix did not split and
    /// the whole source VMA lost VM_LOCKED [T 6.18.44, case gen-1-114].
    #[serde(default)]
    pub mremap_dontunmap_splits_locked: bool,
    /// What an MREMAP_DONTUNMAP move of a VM_LOCKED range does to `mm->locked_vm` beyond the VM_LOCKED
    /// VMAs (`VmLck`). See `DontunmapLockedVm` [docs/findings.md item 6].
    #[serde(default)]
    pub mremap_dontunmap_locked_vm: DontunmapLockedVm,
    /// dontunmap_complete gives a fully moved-out, now unfaulted anonymous source an address-based
    /// pgoff again ("unfaulted anonymous VMAs have page offset equal to vma->vm_start >> PAGE_SHIFT")
    /// [S 7.3.4 mm/mremap.c:dontunmap_complete; T Debian 7.1.13 (old) and 7.2.6 (new); case
    /// mremap_dontunmap_source_pgoff_reset]. 6.12 did the same in move_vma [S 6.12 mm/mremap.c:move_vma];
    /// 6.16 up to the fix only unlinked the anon_vma [S 6.18 mm/mremap.c:dontunmap_complete; T 6.18,
    /// case gen-2-31058].
    #[serde(default)]
    pub mremap_dontunmap_resets_pgoff: bool,
    /// VMAs carry an anonymous page offset apart from vm_pgoff, and MAP_PRIVATE file VMAs merge (and
    /// share an anon_vma) only where it is contiguous too; a faulted private file VMA keeps the one of
    /// the address it was first mapped at when mremap moves it [S 7.3.4 mm/vma.c:can_vma_merge_before,
    /// can_vma_merge_after, anon_vma_compatible, copy_vma; T Debian 7.2.12 (old) and 7.3.4 (new); case
    /// file_private_moved_faulted_merge_needs_anon_pgoff]. Before, pgoff contiguity was enough
    /// [S 6.18 mm/vma.c; T 6.18.44, the same case merges].
    #[serde(default)]
    pub private_file_merge_needs_anon_pgoff: bool,
    /// bdi read_ahead_kb in pages for the scenario's disk files (see `KernelFacts::ra_pages`).
    pub ra_pages: Option<u64>,
    /// MADV_HUGEPAGE file faults read ahead with PMD-order folios (ra->order = HPAGE_PMD_ORDER honoured
    /// by page_cache_ra_order, and ext4 caches large folios): 6.16+ ("ext4: enable large folio for regular
    /// file", v6.16; T 6.18 probe: an order-3 folio for an 8-page hole). Before, ext4 has no
    /// large folios and the same window is read as order-0 pages [S 6.12 mm/readahead.c:
    /// page_cache_ra_order (fallback)].
    pub ra_hugepage_large_folios: bool,
    /// finish_fault maps the whole large folio of a file page (when it fits the VMA, the page table and
    /// i_size, and none of its PTEs is set), for every file, not only shmem (v6.18, Kiryl Shutsemau's
    /// large-folio mlock series; T 6.18, case gen-3-33983). Before, non-shmem files got one page.
    pub finish_fault_maps_whole_folio: bool,
    /// VM_EXEC file faults read ahead an exec_folio_order()-aligned window clipped to the VMA instead of
    /// the read-around window, even under VM_RAND_READ (6.16+, "mm/filemap: allow arch to request folio
    /// size for exec memory", the patch as posted to linux-mm; not probed: the generator maps no file
    /// PROT_EXEC).
    pub ra_exec_window: bool,
    /// Readahead flags PG_readahead on the page it adds at (EOF-clipped end of the window − async size):
    /// do_page_cache_ra clips nr_to_read to i_size before page_cache_ra_unbounded computes the mark
    /// [S 6.1, 6.12 mm/readahead.c]. 6.16+ marks an unclipped index in page_cache_ra_order's own loop and
    /// 4.5 in __do_page_cache_readahead; there a mark inside the file answers Unsupported.
    pub ra_mark_clipped: bool,
    /// Fault-around on a non-shmem file with no PTE table yet maps nothing when the first uptodate page
    /// of its window is the file's last ("mm/memory: do not populate page table entries beyond i_size",
    /// v6.18, backported to 6.12.y: in Debian 6.12.117, not in 6.1.192; UNVERIFIED for other 6.12.y)
    /// [S 6.12.117 mm/filemap.c:filemap_map_pages; S 6.1.192 mm/filemap.c:filemap_map_pmd]. Not in
    /// 6.13-6.16 (6.16 was end-of-life before it) nor in 6.17.8; in 6.17.13 [T Debian 6.16.3, 6.16.12,
    /// 6.17.8 (old: mmap_fixed_over_the_only_vma_frees_the_page_table_so_past_eof_fault_around_maps_nothing
    /// and populate_past_eof_of_a_grown_disk_mapping_in_a_fresh_page_table_maps_nothing map the page)
    /// and 6.17.13 (new), series run 2026-12-08; Debian has no 6.17.9-6.17.12, see FAULT_AROUND_EOF_6_17].
    pub fault_around_table_needs_folio_before_eof: bool,
    /// The default huge page in base pages when it fits the arena (2 MiB on 4K pages: 512); 0 otherwise
    /// (no hugetlbfs, or 32 MiB huge pages on 16K pages), which makes hugetlb scenarios unsupported.
    pub hugetlb_pages: u64,
    /// Zapping a private hugetlb page (DONTNEED) gives its reservation back ("mm/hugetlb: restore the
    /// reservation", believed v6.8, UNVERIFIED release) [S 6.12 mm/hugetlb.c:__unmap_hugepage_range;
    /// absent in S Debian 6.1.192; T 6.18].
    pub hugetlb_zap_restores_reservation: bool,
    /// mmap(MAP_FIXED) reports any failure to unmap what was there as ENOMEM (6.1 mmap_region); from the
    /// vms_gather_munmap_vmas rework (6.11/6.12, UNVERIFIED release) the unmap error itself (EINVAL for a
    /// refused hugetlb split, EPERM for a sealed VMA) [S 6.1 mm/mmap.c; S 6.12 mm/mmap.c:__mmap_region].
    pub mmap_unmap_error_is_enomem: bool,
    /// RLIMIT_MEMLOCK in pages when it applies (no CAP_IPC_LOCK and a finite limit); `None` when locking
    /// is unlimited. 0 makes mlock and MAP_LOCKED EPERM [S 6.12 mm/mlock.c:can_do_mlock]; otherwise
    /// mlock past it is ENOMEM [S 6.12 mm/mlock.c:do_mlock] and MAP_LOCKED past it EAGAIN
    /// [S 6.12 mm/mmap.c:do_mmap, mlock_future_ok].
    #[serde(default)]
    pub mlock_limit_pages: Option<u64>,
    /// process_madvise(2) exists (5.10+; ENOSYS before) [S 6.1 mm/madvise.c:SYSCALL_DEFINE5(process_madvise)].
    pub process_madvise: bool,
    /// process_madvise on the caller's own mm takes any advice, checked per element as madvise(2) does;
    /// only another process is limited to COLD, PAGEOUT, WILLNEED and COLLAPSE, checked after the pidfd
    /// and mm lookups (6.13+) [S 6.18 mm/madvise.c:process_madvise_remote_valid, SYSCALL_DEFINE5
    /// (process_madvise) `mm != current->mm`; T 6.18.44 process_madvise_self_takes_any_advice]. Before,
    /// every target was limited to that set, checked between the pidfd and the mm lookups [S 6.1, 6.12
    /// mm/madvise.c:process_madvise_behavior_valid].
    pub process_madvise_self_any_advice: bool,
    /// CAP_SYS_NICE is needed even for the caller's own mm (before 6.3: upstream "mm/madvise: process_madvise() drop
    /// capability check if same mm"; 6.1 has the check, 6.12 does not)
    /// [S 6.1 mm/madvise.c:SYSCALL_DEFINE5(process_madvise) `!capable(CAP_SYS_NICE)`; S 6.12 same with
    /// `mm != current->mm &&`].
    pub process_madvise_self_needs_cap: bool,
    /// `PIDFD_SELF` (-10000) names the calling thread in pidfd_get_task (6.15+; EBADF before, as any
    /// negative fd) [S 6.12 kernel/pid.c:pidfd_get_task (no sentinel); T 6.18.44 process_madvise_pidfd_self].
    pub pidfd_self: bool,
    /// An advice madvise(2) does not know is EINVAL for the caller's own mm too, even with nothing to walk
    /// (6.18.44 returns 0 there). Seen on Debian 7.3.4 (process_madvise_self_takes_any_advice). Boundary
    /// from the x86_64 series: 0 on Debian 6.19.6 and 7.1.13 (seed 5 plus the corpus) and 7.0.4 (the
    /// case), EINVAL on Debian 7.2.6 and 7.2.11 (the case); Debian has no 7.2.0-7.2.5, so modelled from
    /// 7.2.0. Where in the check order it sits is not pinned (modelled with the remote check, after the
    /// pidfd).
    pub process_madvise_self_checks_advice: bool,
    /// Rules broken on purpose, to prove the differential loop catches a wrong model (`--mutate`).
    #[serde(default)]
    pub mutations: Vec<Mutation>,
    /// A kernel built with THP on hardware without it (s390x without EDAT, as under qemu TCG) marks THP
    /// unsupported at boot and creates no sysfs directory. MADV_COLLAPSE stays a valid advice, so a range
    /// with no VMA in it is ENOMEM from the walk as everywhere, and every VMA it reaches is EINVAL:
    /// thp_vma_allowable_order fails on thp_disabled_by_hw() [S 7.2 mm/huge_memory.c:hugepage_init
    /// (TRANSPARENT_HUGEPAGE_UNSUPPORTED), __thp_vma_allowable_orders, include/linux/huge_mm.h:
    /// thp_disabled_by_hw; mm/khugepaged.c:madvise_collapse; T Debian 7.2.13 s390x: case
    /// each_advice_from_each_kind_alone_and_up_to_a_hole step 400 (hole only) ENOMEM, cases collapse_*
    /// EINVAL]. Taken as: the config says CONFIG_TRANSPARENT_HUGEPAGE=y and there is no THP sysfs.
    #[serde(default)]
    pub thp_disabled_by_hw: bool,
    /// Protection keys: how pkey_alloc, pkey_free, pkey_mprotect and PKRU behave here (`Pkeys`).
    #[serde(default)]
    pub pkeys: Pkeys,
    /// The kernel's word size in bits (`BITS_PER_LONG`: 64 under CONFIG_64BIT, else 32), from the
    /// detected `uname -m` ([`arch_is_64bit`]). madvise's `start` and `len_in` are `unsigned long` and
    /// `size_t`, and `PAGE_ALIGN(len_in)` and `start + len` wrap at this width, so on a 32-bit kernel a
    /// length of 0xfffff001 rounds to 0 (EINVAL) and one of 0xfffff000 from 0x10000000 wraps (EINVAL)
    /// [S 6.12 mm/madvise.c:do_madvise, madvise_should_skip in 6.18; include/linux/mm.h:PAGE_ALIGN].
    /// A program's raw arguments are reduced to this width ([`KernelModel::word`]), as the C ABI passes
    /// them; the harness casts them to `usize`, which is the same on a native (non-compat) process.
    #[serde(default = "word_bits_64")]
    pub word_bits: u32,
    /// mmap knows the MAP_DROPPABLE map type (6.11+) even where it cannot make one: a 32-bit kernel
    /// (VM_DROPPABLE is VM_NONE) answers EOPNOTSUPP, before the MAP_LOCKED check; before 6.11 the type
    /// is EINVAL [S 6.12 mm/mmap.c:do_mmap `case MAP_DROPPABLE`; T 7.2.13 armmp: gen-1-18 of seed 1,
    /// case droppable_mmap_is_eopnotsupp_on_a_32_bit_kernel].
    #[serde(default)]
    pub map_droppable_type_known: bool,
    /// Reclaim (MADV_PAGEOUT) of a clean lazy-free PMD-mapped THP discards it at PMD level:
    /// try_to_unmap_one hands it to unmap_huge_pmd_locked, whose __discard_anon_folio_pmd_locked
    /// clears the PMD and frees the deposited PTE table (zap_deposited_table), so the next fault maps
    /// a new THP [S 6.12.115 mm/rmap.c:try_to_unmap_one, mm/huge_memory.c:unmap_huge_pmd_locked; T
    /// Debian 6.12.113, 6.12.115, 6.16.3, 6.19.6, 7.1.13, 7.2.6, 7.2.9, 7.2.11 x86_64 and 7.2.13 riscv64,
    /// case thp_pageout_after_free_discards_the_whole_thp]. Otherwise the PMD is split
    /// (TTU_SPLIT_HUGE_PMD) and the PTEs are discarded one by one, which leaves the PTE table, so the
    /// next fault maps a 4K page [T Debian 6.1.192, 6.12.118, 7.3.4 x86_64, the 6.18.44 host]. From 6.11
    /// ("mm/vmscan: avoid split lazyfree THP during shrink_folio_list", UNVERIFIED boundary: Debian has
    /// no 6.2-6.11) until the stable change "mm/rmap: don't discard lazyfree THPs at PMD level", which
    /// removes the call again: 6.12.117 (Debian changelog of linux 6.12.117-1; S 6.12.118
    /// mm/rmap.c:try_to_unmap_one), a 6.18.y at or before 6.18.44 (the first one not pinned), 7.3
    /// (Debian has no 7.3.0-7.3.3; 7.2.13 riscv64 still discards). docs/findings.md item 13.
    #[serde(default)]
    pub lazyfree_thp_pmd_discard: bool,
    /// With `lazyfree_thp_pmd_discard`, a lazy-free PMD-mapped THP written again after FREE is not
    /// split: __discard_anon_folio_pmd_locked moves the PMD's dirty bit to the folio, sets
    /// PG_swapbacked and fails, and try_to_unmap_one aborts the walk (`goto walk_abort`), so the THP
    /// stays PMD-mapped [T Debian 6.16.3, 6.19.6, 7.1.13, 7.2.6, 7.2.9, 7.2.11 x86_64, 7.2.13 riscv64,
    /// case thp_pageout_after_free_and_a_write_splits_pmd_but_keeps_every_page: AnonHugePages 512 after
    /// PAGEOUT]. Before ("mm: avoid splitting pmd for lazyfree pmd-mapped THP in try_to_unmap", taken
    /// as 6.15, UNVERIFIED boundary: Debian 6.12.115 splits, 6.16.3 does not) the failed discard fell
    /// through to TTU_SPLIT_HUGE_PMD, as after the fix.
    #[serde(default)]
    pub lazyfree_thp_dirty_pmd_aborts: bool,
    /// MREMAP_DONTUNMAP clears VM_ACCOUNT on the kept source VMA, with VM_LOCKED_MASK ("We always clear
    /// VM_LOCKED[ONFAULT] | VM_ACCOUNT on the old vma", the 6.16 mremap refactor's dontunmap_complete):
    /// smaps drops `ac` from the whole source VMA, whose later faults go uncharged. 6.16.y only: 6.17.8
    /// and 6.18.44 keep `ac`, as 6.12 did (move_vma cleared VM_LOCKED_MASK alone) [T Debian 6.16.3 and
    /// 6.16.12 x86_64 (series run 2026-12-08: the five mremap_dontunmap_* named cases and gen-5-996 of
    /// seed 5, `rd wr mr mw me sd` where the model had `ac`), 6.17.8 (kept); S 6.12 mm/mremap.c:move_vma;
    /// docs/findings.md item 14].
    #[serde(default)]
    pub mremap_dontunmap_clears_source_account: bool,
    /// A MAP_SHARED|PROT_WRITE mmap of a memfd with F_SEAL_FUTURE_WRITE (and no F_SEAL_WRITE) fails EPERM
    /// in do_mmap, before a MAP_FIXED unmaps anything (6.12+: memfd_check_seals_mmap; the Debian 6.12.y
    /// source has it). Before, shmem_mmap/hugetlbfs_file_mmap refused it (seal_check_write) inside
    /// mmap_region, after the old range was unmapped, so the range is left a hole. With F_SEAL_WRITE the
    /// 6.1 refusal is mapping_map_writable in mmap_region, before the unmap, on both
    /// [S 6.1 (Debian) mm/mmap.c:mmap_region, mm/shmem.c:shmem_mmap; S 6.12 (Debian) mm/mmap.c:do_mmap,
    /// mm/memfd.c:memfd_check_seals_mmap].
    #[serde(default)]
    pub future_write_mmap_refused_before_unmap: bool,
    /// smaps LazyFree counts the lazy-free pages of a PMD-mapped THP exactly: all of them at once after
    /// FREE (a large folio never waits in the per-CPU lazyfree batch), none once a write dirtied the PMD
    /// [S 6.1 mm/swap.c:mark_page_lazyfree, folio_batch_add_and_move; S 6.12 mm/swap.c:
    /// __folio_batch_add_and_move, include/linux/swap.h:folio_may_be_lru_cached; fs/proc/task_mmu.c:
    /// smaps_pmd_entry (pmd_dirty), smaps_account; T 6.18.44: cases thp_free_then_a_read_keeps_the_whole_pmd_lazy_free
    /// (2048 kB) and thp_free_then_a_write_to_one_page_dirties_the_whole_pmd (0 kB)]. The 6.1 and 6.12
    /// sources are the same, but only 6.18 is measured: the guest profiles' goldens hold the range their
    /// recording allowed (0..=512), so the other releases keep the range until they are re-recorded.
    #[serde(default)]
    pub smaps_lazyfree_thp_exact: bool,
    /// MADV_UNMERGEABLE of a VMA that MADV_MERGEABLE marked clears VM_SEALED too: smaps loses `sl`, and
    /// mprotect and munmap of the "sealed" range then succeed (an mseal bypass). 6.16.y: Debian 6.16.3 and
    /// 6.16.12 drop it, 6.12.118, 6.17.8, 6.17.13, 6.18.x and 7.x keep it [T series run 2026-12-08, case
    /// each_advice_from_each_kind_alone_and_up_to_a_hole step 377; T Debian 6.16.12, C probe
    /// docs/repro/unmergeable_unseals.c: `rd wr mr mw me ac sd mg sl` -> `rd wr mr mw me ac sd`, mprotect 0,
    /// munmap 0; the 6.18.44 host: EPERM, EPERM]. UNMERGEABLE without VM_MERGEABLE returns before touching
    /// the flags (ksm_madvise), and keeps the seal there too. Suspected mechanism (not read in the 6.16
    /// source): `*vm_flags &= ~VM_MERGEABLE` with a 32-bit VM_MERGEABLE (0x80000000, an unsigned int)
    /// clears every flag above bit 31, VM_SEALED (bit 63) among them; only `sl` is observed here (a
    /// protection key in bits 32-35 was not tried). 6.13-6.15 are UNVERIFIED (not in Debian's archive);
    /// docs/findings.md item 15.
    #[serde(default)]
    pub unmergeable_clears_sealed: bool,
}

fn word_bits_64() -> u32 {
    64
}

/// The protection-key behaviour of a kernel on its CPU.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pkeys {
    /// Not known (facts without `pkeys`, or keys on an architecture the model does not cover): every
    /// `pkey_*` step is Unsupported with this reason.
    #[default]
    Unknown,
    NotModelled(String),
    /// No keys: pkey_alloc fails with `alloc`, except the mm's first call when `first_takes_key0` (it
    /// takes key 0 for good and fails EINVAL, `PkeyFacts::first_alloc_errno`); pkey_mprotect accepts only
    /// -1 on x86 (key 0 is not "allocated": execute_only_pkey is 0 without OSPKE) [S 6.12
    /// arch/x86/include/asm/pkeys.h:mm_pkey_is_allocated; arch/x86/include/asm/mmu_context.h:
    /// init_new_context; include/linux/pkeys.h for arches without keys; T 6.18.44 without PKU].
    Absent { alloc: crate::observe::Errno, first_takes_key0: bool, syscalls: bool },
    /// x86 PKU with OSPKE: 16 keys, key 0 allocated at mm creation, PKRU per thread starting at
    /// init_pkru_value (keys 1-15 access-disabled), smaps prints `ProtectionKey:` [S 6.12
    /// arch/x86/include/asm/pkeys.h, arch/x86/mm/pkeys.c:init_pkru_value, arch/x86/kernel/setup.c:
    /// arch_show_smap].
    X86,
}

/// A deliberate model bug, for testing that divergences are caught and reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mutation {
    /// DONTNEED keeps private anonymous contents instead of zapping them.
    DontneedKeepsAnon,
    /// RANDOM does not set `rr`.
    RandomSetsNoFlag,
    /// COLLAPSE's EINVAL on a VMA too small for a PMD becomes Unsupported: a lost answer, no divergence.
    CollapseSmallUnsupported,
}

impl Mutation {
    pub const ALL: [Mutation; 3] = [Mutation::DontneedKeepsAnon, Mutation::RandomSetsNoFlag, Mutation::CollapseSmallUnsupported];
    pub fn name(self) -> &'static str {
        match self {
            Mutation::DontneedKeepsAnon => "dontneed-keeps-anon",
            Mutation::RandomSetsNoFlag => "random-sets-no-flag",
            Mutation::CollapseSmallUnsupported => "collapse-small-unsupported",
        }
    }
    pub fn from_name(s: &str) -> Option<Mutation> {
        Mutation::ALL.into_iter().find(|m| m.name() == s)
    }
}

/// Is `uname -m` a 64-bit architecture (CONFIG_64BIT)? The kernel's own names: `ppc64le`/`ppc64` for
/// powerpc64, `s390x`, `riscv64`; 32-bit ARM is `armv7l` [S arch/*/Makefile UTS_MACHINE].
pub fn arch_is_64bit(arch: &str) -> bool {
    matches!(arch, "x86_64" | "aarch64" | "ppc64le" | "ppc64" | "s390x" | "riscv64")
}

/// `KernelModel::mremap_dontunmap_locked_vm`: how much of `mm->locked_vm` an MREMAP_DONTUNMAP move of a
/// VM_LOCKED range leaves counted for pages no VM_LOCKED VMA holds any more, until the process exits
/// (munmap subtracts only what VM_LOCKED VMAs cover) [docs/findings.md item 6; reproducer
/// docs/repro/mremap_dontunmap_locked_leaks_locked_vm.c].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DontunmapLockedVm {
    /// Exact: before the 6.16 refactor, move_vma returned before `mm->locked_vm += new_len` and split
    /// the source so only the moved range lost VM_LOCKED [S 6.12 mm/mremap.c:move_vma; T Debian
    /// 6.12.118]; from 7.2.11 the same again (needs_pre_split and the fixed accounting) [T Debian
    /// 7.2.11, 7.3.4].
    #[default]
    Exact,
    /// 6.16 up to 7.2.6: move_vma's vrm_stat_account adds the moved length for the new VMA, and
    /// dontunmap_complete clears VM_LOCKED on the whole, unsplit source VMA without subtracting it
    /// ("Because we won't unmap we don't need to touch locked_vm"): the source VMA's whole length stays
    /// counted [S 6.18 mm/mremap.c:move_vma, vrm_stat_account, dontunmap_complete; T Debian 6.16.3,
    /// 7.2.6 and the 6.18.44 host, full and partial moves].
    CountsSourceVma,
    /// 7.2.9: the moved length is no longer added, but the source is still not split, so what of the
    /// unsplit source VMA lies outside the moved range stays counted [T Debian 7.2.9: a 4-page locked
    /// VMA, its page 1 moved, VmLck 12 kB after munmap of everything; the whole VMA moved, 0 kB].
    CountsSourceRest,
}

/// The release boundaries of the post-6.18 behaviours, pinned by `cargo xtask bisect` over the Debian
/// trixie-backports point releases 6.18.5 … 7.3.4 (docs/findings.md). Debian skips 7.0.0-7.0.3,
/// 7.2.0-7.2.5, 7.2.10 and 7.3.0-7.3.3: a boundary at a series' first Debian release is taken from its
/// .0 (a merge-window change), and 7.2.11 (a stable backport) holds for every later release.
///
/// First release where copy_vma again keeps a DONTUNMAP-kept unfaulted source out of the merge
/// (`mremap_kept_source_stays_apart`) [T Debian 7.2.9 (old) and 7.2.11 (new)].
const KEPT_SOURCE_APART_AGAIN: (u32, u32, u32) = (7, 2, 11);
/// First 6.17.y with "mm/memory: do not populate page table entries beyond i_size"
/// (`fault_around_table_needs_folio_before_eof`): Debian 6.17.8 lacks it and 6.17.13 has it, with no
/// Debian release between; taken as 6.17.9, the next stable release (UNVERIFIED).
const FAULT_AROUND_EOF_6_17: (u32, u32, u32) = (6, 17, 9);
/// First release whose MADV_DOFORK refuses VM_SPECIAL (`dofork_refuses_special`).
const DOFORK_REFUSES_SPECIAL: (u32, u32, u32) = (7, 0, 0);
/// First release with needs_pre_split (`mremap_dontunmap_splits_locked`).
const DONTUNMAP_PRESPLIT_AGAIN: (u32, u32, u32) = (7, 2, 11);
/// First release whose move_vma no longer adds the moved length of an MREMAP_DONTUNMAP move to
/// `mm->locked_vm` (`mremap_dontunmap_locked_vm`) [T Debian 7.2.6 (old) and 7.2.9 (new); Debian has no
/// 7.2.7/7.2.8].
const DONTUNMAP_LOCKED_VM_NOT_ADDED: (u32, u32, u32) = (7, 2, 9);
/// First release whose dontunmap_complete resets the anonymous pgoff (`mremap_dontunmap_resets_pgoff`).
const DONTUNMAP_PGOFF_RESET_AGAIN: (u32, u32, u32) = (7, 2, 0);
/// First release with a separate anonymous page offset (`private_file_merge_needs_anon_pgoff`).
const ANON_PGOFF: (u32, u32, u32) = (7, 3, 0);
/// First release whose reclaim discards a clean lazy-free THP at PMD level (`lazyfree_thp_pmd_discard`,
/// UNVERIFIED: Debian has no 6.2-6.11; 6.1.192 splits, 6.12.113 discards).
const LAZYFREE_PMD_DISCARD: (u32, u32, u32) = (6, 11, 0);
/// First release whose failed PMD-level discard of a re-dirtied lazy-free THP aborts without a split
/// (`lazyfree_thp_dirty_pmd_aborts`, UNVERIFIED: Debian 6.12.115 splits, 6.16.3 aborts).
const LAZYFREE_PMD_DIRTY_ABORTS: (u32, u32, u32) = (6, 15, 0);
/// "mm/rmap: don't discard lazyfree THPs at PMD level": the releases that have it. 6.12.117 [Debian
/// changelog of linux 6.12.117-1; T Debian 6.12.115 (old), 6.12.118 (new)]; 6.18.44 is the only 6.18.y
/// measured (the host, new), the first 6.18.y with it is not pinned; 7.3 [T riscv64 7.2.13 (old), Debian
/// 7.3.4 (new); Debian has no 7.3.0-7.3.3].
fn lazyfree_pmd_discard_removed(v: (u32, u32, u32)) -> bool {
    (v >= (6, 12, 117) && v < (6, 13, 0)) || (v >= (6, 18, 44) && v < (6, 19, 0)) || v >= (7, 3, 0)
}

impl KernelModel {
    pub fn from_facts(f: KernelFacts) -> KernelModel {
        let v = f.version;
        let at_least = |maj: u32, min: u32| v >= (maj, min, 0);
        let cfg = |o: Option<bool>, default: bool| o.unwrap_or(default);
        let thp_cfg = cfg(f.config.transparent_hugepage, f.thp != ThpMode::Unavailable);
        let profile = format!("linux-{}.{}-{}-{}k", v.0, v.1, f.arch, f.page_size / 1024);
        KernelModel {
            profile,
            page_size: f.page_size,
            hwpoison_before_validation: !at_least(4, 12),
            memory_failure: cfg(f.config.memory_failure, false),
            ksm: cfg(f.config.ksm, true),
            thp: thp_cfg,
            wipeonfork: at_least(4, 14),
            cold_pageout: at_least(5, 4),
            populate: at_least(5, 14),
            dontneed_locked: at_least(5, 18),
            // The advice is known wherever the kernel is built with THP, also where THP was marked
            // unsupported at boot (see `thp_disabled_by_hw`) [S 7.2 mm/madvise.c:madvise_behavior_valid].
            collapse: at_least(6, 1) && thp_cfg,
            guard_regions: at_least(6, 13),
            free_falls_back_to_dontneed: !at_least(4, 12) && !f.swap_active,
            willneed_anon_ebadf: !cfg(f.config.swap, true),
            remove_needs_maywrite_only: at_least(6, 1),
            softdirty_new_vmas: f.vma_soft_dirty.unwrap_or(cfg(f.config.mem_soft_dirty, false)),
            smaps_lazyfree: at_least(4, 12),
            zero_page_visible: f.pfn_visible,
            lockonfault_mnemonic: at_least(6, 12),
            guard_vma_flag: f.guard_vma_flag,
            guard_any_vma: at_least(6, 15),
            max_map_count: f.max_map_count,
            mseal: at_least(6, 10) && arch_is_64bit(&f.arch),
            mseal_refuses_guard_install: at_least(6, 16),
            map_droppable: at_least(6, 11) && arch_is_64bit(&f.arch),
            mremap_checks_first: at_least(6, 17),
            mremap_multi: at_least(6, 17),
            mprotect_unaccounts_anon: at_least(6, 6),
            anon_merge_by_owner: at_least(6, 16),
            mmap_expand_next_first: at_least(6, 1) && !at_least(6, 12),
            mremap_kept_source_blocks_merge: !at_least(6, 12),
            mremap_kept_source_stays_apart: (!at_least(6, 16)
                && !(at_least(6, 12) && v < (6, 12, 115))
                && !(at_least(6, 1) && !at_least(6, 2) && v < (6, 1, 192)))
                || v >= KEPT_SOURCE_APART_AGAIN,
            dofork_refuses_special: v >= DOFORK_REFUSES_SPECIAL,
            mremap_dontunmap_splits_locked: !at_least(6, 16) || v >= DONTUNMAP_PRESPLIT_AGAIN,
            mremap_dontunmap_resets_pgoff: !at_least(6, 16) || v >= DONTUNMAP_PGOFF_RESET_AGAIN,
            mremap_dontunmap_locked_vm: if !at_least(6, 16) || v >= DONTUNMAP_PRESPLIT_AGAIN {
                DontunmapLockedVm::Exact
            } else if v >= DONTUNMAP_LOCKED_VM_NOT_ADDED {
                DontunmapLockedVm::CountsSourceRest
            } else {
                DontunmapLockedVm::CountsSourceVma
            },
            private_file_merge_needs_anon_pgoff: v >= ANON_PGOFF,
            mutations: Vec::new(),
            ra_pages: f.ra_pages,
            ra_hugepage_large_folios: at_least(6, 16),
            finish_fault_maps_whole_folio: at_least(6, 18),
            ra_exec_window: at_least(6, 16),
            fault_around_table_needs_folio_before_eof: (at_least(6, 12) && !at_least(6, 13))
                || (v >= FAULT_AROUND_EOF_6_17 && !at_least(6, 18))
                || at_least(6, 18),
            ra_mark_clipped: at_least(6, 1) && !at_least(6, 16),
            fault_around_pages: (65536 / f.page_size).max(1),
            populate_linear: at_least(6, 9),
            thp_mode: f.thp,
            thp_use_zero_page: f.thp_use_zero_page.unwrap_or(true),
            thp_split_maps_zero_subpages: at_least(6, 12),
            thp_huge_zero_wp_allocates: if at_least(6, 18) { Some(true) } else { None },
            dontneed_reclaims_pte_tables: at_least(6, 14) && f.arch == "x86_64",
            collapse_stops_at_pmd_null: at_least(6, 18),
            smaps_skips_protnone_pmd: !at_least(6, 12),
            collapse_inverted_range_is_einval: !at_least(7, 2),
            collapse_needs_writable_pte: if at_least(6, 18) {
                Some(false)
            } else if at_least(6, 13) {
                None
            } else {
                Some(true)
            },
            ksm_running: f.ksm_running,
            ptrs_per_pte: f.pmd_pages.unwrap_or(f.page_size / 8),
            hugetlb_pages: {
                let n = f.hugepage_kb * 1024 / f.page_size;
                if n > 0 && n * 2 <= crate::program::HUGETLB_ARENA_PAGES as u64 { n } else { 0 }
            },
            hugetlb_zap_restores_reservation: at_least(6, 8),
            mmap_unmap_error_is_enomem: !at_least(6, 12),
            process_madvise: at_least(5, 10),
            process_madvise_self_any_advice: at_least(6, 13),
            process_madvise_self_needs_cap: !at_least(6, 3),
            pidfd_self: at_least(6, 15),
            process_madvise_self_checks_advice: at_least(7, 2),
            mlock_limit_pages: if f.cap_ipc_lock { None } else { f.memlock_limit.map(|b| b / f.page_size) },
            pkeys: match f.pkeys {
                None => Pkeys::Unknown,
                Some(p) if p.available && f.arch == "x86_64" => Pkeys::X86,
                Some(p) if p.available => Pkeys::NotModelled(format!(
                    "protection keys on {} (pkey_alloc succeeds there) are not modelled; only x86 PKU is",
                    f.arch
                )),
                Some(p) => {
                    let alloc = p.alloc_errno.unwrap_or(crate::observe::Errno::ENOSPC);
                    Pkeys::Absent {
                        alloc,
                        first_takes_key0: f.arch == "x86_64"
                            && alloc == crate::observe::Errno::ENOSPC
                            && p.first_alloc_errno == Some(crate::observe::Errno::EINVAL),
                        syscalls: alloc != crate::observe::Errno::ENOSYS,
                    }
                }
            },
            thp_disabled_by_hw: thp_cfg && f.thp == ThpMode::Unavailable,
            word_bits: if arch_is_64bit(&f.arch) { 64 } else { 32 },
            map_droppable_type_known: at_least(6, 11),
            lazyfree_thp_pmd_discard: v >= LAZYFREE_PMD_DISCARD && !lazyfree_pmd_discard_removed(v),
            lazyfree_thp_dirty_pmd_aborts: v >= LAZYFREE_PMD_DIRTY_ABORTS && !lazyfree_pmd_discard_removed(v),
            mremap_dontunmap_clears_source_account: at_least(6, 16) && !at_least(6, 17),
            future_write_mmap_refused_before_unmap: at_least(6, 12),
            smaps_lazyfree_thp_exact: v >= (6, 18, 0) && v < (6, 19, 0),
            unmergeable_clears_sealed: at_least(6, 16) && !at_least(6, 17),
            facts: f,
        }
    }

    /// `x` reduced to the kernel's word ([`KernelModel::word_bits`]): what an `unsigned long` or `size_t`
    /// argument holds when the program computed it in wrapping 64-bit arithmetic.
    pub fn word(&self, x: u64) -> u64 {
        if self.word_bits >= 64 { x } else { x & ((1u64 << self.word_bits) - 1) }
    }

    /// Is `len` negative as the kernel's `ssize_t` (import_iovec refuses such an iovec length)?
    pub fn ssize_negative(&self, len: u64) -> bool {
        (self.word(len) >> (self.word_bits.min(64) - 1)) & 1 == 1
    }

    /// Is this raw advice value accepted by `madvise_behavior_valid` / `is_valid_madvise`?
    /// [S 6.18 mm/madvise.c:madvise_behavior_valid; S 4.5 same; version gates above]
    pub fn advice_valid(&self, value: i32) -> bool {
        use crate::program::Advice::*;
        let Some(a) = crate::program::Advice::from_value(value) else { return false };
        match a {
            Normal | Random | Sequential | Willneed | Dontneed | Free | Remove | Dontfork | Dofork | Dontdump
            | Dodump => true,
            Mergeable | Unmergeable => self.ksm,
            Hugepage | Nohugepage => self.thp,
            Wipeonfork | Keeponfork => self.wipeonfork,
            Cold | Pageout => self.cold_pageout,
            PopulateRead | PopulateWrite => self.populate,
            DontneedLocked => self.dontneed_locked,
            Collapse => self.collapse,
            Hwpoison | SoftOffline => self.memory_failure,
            GuardInstall | GuardRemove => self.guard_regions,
        }
    }
}
