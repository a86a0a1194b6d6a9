//! Detect the host's `KernelFacts`: uname (release, and the version field for Debian's upstream
//! sublevel), page size, /proc/config.gz, swap, THP mode, capabilities,
//! whether ksmd runs, and two probes (pagemap PFN visibility, the `gu` guard VmFlag).
//!
//! Invariant: detection only reads, and each probe undoes what it maps. A fact that cannot be known is
//! `None` or a documented default; a file that must exist but cannot be read is an `Err` naming it.

use crate::host::sys;
use simulator::kernel::{KernelConfig, KernelFacts, ThpMode};
use std::io::Read;

pub fn detect_host() -> Result<KernelFacts, String> {
    detect_host_with(None)
}

/// As `detect_host`, but with the kernel's build config read from `kernel_config` (a plain `.config`, as
/// Debian ships in /boot/config-*) instead of /proc/config.gz, for kernels built without IKCONFIG_PROC.
pub fn detect_host_with(kernel_config: Option<&std::path::Path>) -> Result<KernelFacts, String> {
    let (release, uname_version, arch) = uname()?;
    let page_size = sys::page_size() as u64;
    let config = match kernel_config {
        Some(p) => parse_config(&std::fs::read_to_string(p).map_err(|e| format!("read {}: {e}", p.display()))?),
        None => read_config()?,
    };
    // No build config at all (no file given, no /proc/config.gz): Debian's 6.19.y-7.1.y packages lost
    // theirs from the archive (`xtask/src/debian.rs:parts`). Take what the running kernel shows instead.
    let config = if config == KernelConfig::default() { probe_config(page_size)? } else { config };
    let swaps = std::fs::read_to_string("/proc/swaps").map_err(|e| format!("read /proc/swaps: {e}"))?;
    let swap_active = swaps.lines().skip(1).any(|l| !l.trim().is_empty());
    let thp = match std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled") {
        Ok(s) => parse_thp(&s)
            .ok_or_else(|| format!("unexpected /sys/kernel/mm/transparent_hugepage/enabled: {:?}", s.trim()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ThpMode::Unavailable,
        Err(e) => return Err(format!("read /sys/kernel/mm/transparent_hugepage/enabled: {e}")),
    };
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| format!("read /proc/self/status: {e}"))?;
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .ok_or("no parsable CapEff line in /proc/self/status")?;
    let cap_sys_admin = cap_eff & (1 << 21) != 0;
    let cap_ipc_lock = cap_eff & (1 << 14) != 0;
    let cap_sys_nice = cap_eff & (1 << 23) != 0;
    // SAFETY: a zeroed rlimit is a valid out-parameter.
    let memlock_limit = unsafe {
        let mut rl: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut rl) != 0 {
            return Err(format!("getrlimit(RLIMIT_MEMLOCK): {}", sys::strerror(sys::errno())));
        }
        // rlim_t is 32 bits on 32-bit glibc without _FILE_OFFSET_BITS=64.
        (rl.rlim_cur != libc::RLIM_INFINITY).then_some(rl.rlim_cur as u64)
    };
    let pfn_visible = crate::host::observe::probe_zero_pfn(page_size as usize)?.is_some();
    let guard_vma_flag = probe_guard_flag(page_size)?;
    let vma_soft_dirty = Some(probe_soft_dirty(page_size)?);
    let mmc = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .map_err(|e| format!("read /proc/sys/vm/max_map_count: {e}"))?;
    let max_map_count =
        mmc.trim().parse().map_err(|_| format!("unparsable /proc/sys/vm/max_map_count: {:?}", mmc.trim()))?;
    // No KSM sysfs directory (CONFIG_KSM off) means ksmd cannot run.
    let ksm_running = match std::fs::read_to_string("/sys/kernel/mm/ksm/run") {
        Ok(s) => s.trim() == "1",
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(format!("read /sys/kernel/mm/ksm/run: {e}")),
    };
    let ra_pages = scratch_ra_pages(&std::env::temp_dir(), page_size);
    // hugetlbfs' default huge page size; no Hugepagesize line means no CONFIG_HUGETLBFS.
    let meminfo = std::fs::read_to_string("/proc/meminfo").map_err(|e| format!("read /proc/meminfo: {e}"))?;
    let hugepage_kb = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("Hugepagesize:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    // Entries per page table, from the PMD size THP reports (absent without CONFIG_TRANSPARENT_HUGEPAGE).
    let pmd_pages = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(|b| b / page_size)
        .filter(|&n| n > 0);
    let thp_use_zero_page = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/use_zero_page")
        .ok()
        .and_then(|s| s.trim().parse::<u8>().ok())
        .map(|v| v != 0);
    // vm.overcommit_memory, only read (MAP_NORESERVE is ignored under 2).
    let overcommit_memory = match std::fs::read_to_string("/proc/sys/vm/overcommit_memory") {
        Ok(s) => Some(
            s.trim().parse::<u8>().map_err(|_| format!("unparsable /proc/sys/vm/overcommit_memory: {:?}", s.trim()))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("read /proc/sys/vm/overcommit_memory: {e}")),
    };
    Ok(KernelFacts {
        overcommit_memory,
        hugepage_kb,
        pmd_pages,
        thp_use_zero_page,
        hugetlb_unavailable: None,
        memlock_limit,
        cap_ipc_lock,
        cap_sys_nice,
        disk_files_unavailable: scratch_unusable(&std::env::temp_dir(), page_size),
        tmpfs_files_unavailable: tmpfs_unusable(std::path::Path::new(TMPFS_DIR), page_size),
        vma_soft_dirty,
        version: KernelFacts::upstream_version(&release, &uname_version),
        release,
        uname_version,
        arch,
        page_size,
        config,
        swap_active,
        thp,
        cap_sys_admin,
        pfn_visible,
        guard_vma_flag,
        max_map_count,
        ksm_running,
        ra_pages,
        pkeys: Some(probe_pkeys()),
    })
}

/// Protection keys as this kernel and CPU answer: `pkey_alloc(0, PKEY_DISABLE_WRITE)` (a key is freed at
/// once), and where that fails a second call, since the first one of a process may differ (see
/// `PkeyFacts::first_alloc_errno`). This must be the process's first pkey_alloc; it runs before any
/// worker exists, and a key it allocated changes only this thread's PKRU bits for a key freed again.
pub fn probe_pkeys() -> simulator::kernel::PkeyFacts {
    use simulator::observe::Errno;
    // SAFETY (both): pkey_alloc/pkey_free with constant arguments touch only this process's key map.
    let alloc = |rights: libc::c_ulong| unsafe { libc::syscall(crate::host::sys::pkey_nr::ALLOC, 0 as libc::c_ulong, rights) };
    let free = |k: libc::c_long| unsafe { libc::syscall(crate::host::sys::pkey_nr::FREE, k) };
    let k = alloc(2);
    if k >= 0 {
        free(k);
        return simulator::kernel::PkeyFacts { available: true, alloc_errno: None, first_alloc_errno: None };
    }
    let first = Errno::from_raw(sys::errno());
    let k2 = alloc(2);
    if k2 >= 0 {
        free(k2);
        return simulator::kernel::PkeyFacts { available: true, alloc_errno: None, first_alloc_errno: Some(first) };
    }
    let again = Errno::from_raw(sys::errno());
    simulator::kernel::PkeyFacts { available: false, alloc_errno: Some(again), first_alloc_errno: Some(first) }
}

const TMPFS_MAGIC: i64 = 0x0102_1994;
const RAMFS_MAGIC: i64 = 0x8584_58f6;

/// `statfs(2)`'s f_type of `dir`, its low 32 bits (f_type is a signed word on 32-bit ARM and an unsigned
/// int on s390x, so 0x858458f6 reads negative on some).
fn fs_magic(dir: &std::path::Path) -> std::io::Result<i64> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: a zeroed statfs is a valid out-parameter; `c` is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((st.f_type as i64) & 0xffff_ffff)
}

/// The in-memory filesystem `dir` is on (tmpfs or ramfs); `None` for any other filesystem, or when
/// statfs fails (then the write probe decides).
fn memory_fs(dir: &std::path::Path) -> Option<&'static str> {
    match fs_magic(dir).ok()? {
        TMPFS_MAGIC => Some("tmpfs"),
        RAMFS_MAGIC => Some("ramfs"),
        _ => None,
    }
}

/// Pages a probe writes into the scratch directory: two scenarios' worth of the largest disk files the
/// generator makes, so that a directory with only a few pages left is found here, not mid-run.
const SCRATCH_PROBE_PAGES: u64 = 256;

/// Why the scratch directory (where workers create the scenario's disk files, `std::env::temp_dir()`:
/// `$TMPDIR` or /tmp) cannot hold them: a directory and a file are created there, written and removed.
/// `None` when it works. The message names the directory and the error (read-only, no space, ...).
pub fn scratch_unusable(dir: &std::path::Path, page_size: u64) -> Option<String> {
    use std::io::Write;
    let probe = dir.join(format!("madcheck-probe-{}", std::process::id()));
    let why = |what: &str, e: std::io::Error| {
        Some(format!(
            "scratch directory {} (TMPDIR) cannot hold the disk files: {what}: {e}; disk-file scenarios are unsupported",
            dir.display()
        ))
    };
    if let Err(e) = std::fs::create_dir(&probe) {
        return why("create a directory", e);
    }
    let r = (|| {
        let file = probe.join("f");
        let mut f = std::fs::File::create(&file).map_err(|e| ("create a file", e))?;
        let page = vec![0x5au8; page_size as usize];
        for _ in 0..SCRATCH_PROBE_PAGES {
            f.write_all(&page).map_err(|e| ("write to a file", e))?;
        }
        Ok::<(), (&str, std::io::Error)>(())
    })();
    let _ = std::fs::remove_dir_all(&probe);
    if let Err((what, e)) = r {
        return why(what, e);
    }
    if let Some(fs) = memory_fs(dir) {
        // A "disk file" on tmpfs is a shmem file: no readahead, no fault-around of a block device's page
        // cache, no write-back on PAGEOUT, no large folios of the disk filesystem. The model's disk-file
        // rules would be checked against shmem behaviour, so the scenarios are not run (seen in Debian
        // 6.19.y-7.1.y guests, whose archive has no modules package and so no ext4 scratch disk).
        Some(format!(
            "scratch directory {} (TMPDIR) is on {fs}, not a disk filesystem; disk-file scenarios are unsupported (set TMPDIR to a directory on a disk filesystem)",
            dir.display()
        ))
    } else {
        None
    }
}

/// Where workers create the scenario's `tmpfs` files (opened by path, then unlinked at once). /dev/shm is
/// a tmpfs mount on most systems; madcheck never mounts one.
pub const TMPFS_DIR: &str = "/dev/shm";

/// Why `dir` cannot hold the scenario's tmpfs files: not a tmpfs mount (statfs f_type TMPFS_MAGIC),
/// mounted noexec (mmap with PROT_EXEC would be EPERM and VM_MAYEXEC dropped [S 6.18 mm/mmap.c:do_mmap,
/// path_noexec]) or with `huge=` other than never (large shmem folios are not modelled), or a file cannot
/// be created and written there. `None` when it works.
pub fn tmpfs_unusable(dir: &std::path::Path, page_size: u64) -> Option<String> {
    use std::io::Write;
    let why = |what: String| Some(format!("tmpfs directory {}: {what}; tmpfs-file scenarios are unsupported", dir.display()));
    let c = match std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) {
        Ok(c) => c,
        Err(_) => return why("the path contains NUL".into()),
    };
    match fs_magic(dir) {
        Err(e) => return why(format!("statfs: {e}")),
        Ok(TMPFS_MAGIC) => {}
        Ok(t) => return why(format!("not a tmpfs mount (f_type {t:#x})")),
    }
    // SAFETY: a zeroed statvfs is a valid out-parameter; `c` is NUL-terminated.
    let mut vfs: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut vfs) } != 0 {
        return why(format!("statvfs: {}", std::io::Error::last_os_error()));
    }
    if vfs.f_flag & libc::ST_NOEXEC != 0 {
        return why("mounted noexec".into());
    }
    // The mount's options: the last /proc/self/mounts line for this directory wins.
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let opts = mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_ascii_whitespace();
            let (_, at, _, opts) = (f.next()?, f.next()?, f.next()?, f.next()?);
            (std::path::Path::new(at) == dir).then(|| opts.to_string())
        })
        .last()
        .unwrap_or_default();
    if let Some(h) = opts.split(',').find_map(|o| o.strip_prefix("huge=")) {
        if h != "never" {
            return why(format!("mounted with huge={h} (large shmem folios are not modelled)"));
        }
    }
    let probe = dir.join(format!("madcheck-probe-{}", std::process::id()));
    let r = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&probe).map_err(|e| ("create a file", e))?;
        f.write_all(&vec![0x5au8; page_size as usize]).map_err(|e| ("write to a file", e))
    })();
    let _ = std::fs::remove_file(&probe);
    match r {
        Ok(()) => None,
        Err((what, e)) => why(format!("{what}: {e}")),
    }
}

/// bdi->ra_pages of the block device holding `dir` (where workers create the scenario's disk files):
/// `/sys/class/bdi/MAJ:MIN/read_ahead_kb` of its device, or of the whole disk when it is a partition.
/// `None` when `dir` is not on a block device with a bdi in sysfs (tmpfs, overlay, no /sys).
fn scratch_ra_pages(dir: &std::path::Path, page_size: u64) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(dir).ok()?.dev();
    let (maj, min) = (libc::major(dev), libc::minor(dev));
    let kb = |id: &str| -> Option<u64> {
        std::fs::read_to_string(format!("/sys/class/bdi/{id}/read_ahead_kb")).ok()?.trim().parse().ok()
    };
    let id = format!("{maj}:{min}");
    let kb = kb(&id).or_else(|| {
        // A partition's bdi is its disk's: /sys/dev/block/MAJ:MIN is the partition's directory, inside
        // the disk's.
        let part = std::path::PathBuf::from(format!("/sys/dev/block/{id}"));
        if !part.join("partition").exists() {
            return None;
        }
        let disk = std::fs::read_to_string(part.join("../dev")).ok()?;
        kb(disk.trim())
    })?;
    Some(kb * 1024 / page_size)
}

/// `uname -r`, `uname -v`, `uname -m`.
fn uname() -> Result<(String, String, String), String> {
    // SAFETY: a zeroed utsname is a valid out-parameter; the kernel NUL-terminates every field.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return Err(format!("uname: {}", sys::strerror(sys::errno())));
        }
        let s = |f: &[libc::c_char]| std::ffi::CStr::from_ptr(f.as_ptr()).to_string_lossy().into_owned();
        Ok((s(&u.release), s(&u.version), s(&u.machine)))
    }
}

/// The bracketed word of the THP `enabled` file.
fn parse_thp(s: &str) -> Option<ThpMode> {
    let word = s.split_ascii_whitespace().find_map(|w| w.strip_prefix('[')?.strip_suffix(']'))?;
    match word {
        "always" => Some(ThpMode::Always),
        "madvise" => Some(ThpMode::Madvise),
        "never" => Some(ThpMode::Never),
        _ => None,
    }
}

/// /proc/config.gz; all `None` when the kernel does not provide it (CONFIG_IKCONFIG_PROC off).
fn read_config() -> Result<KernelConfig, String> {
    let f = match std::fs::File::open("/proc/config.gz") {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(KernelConfig::default()),
        Err(e) => return Err(format!("open /proc/config.gz: {e}")),
    };
    let mut text = String::new();
    flate2::read::GzDecoder::new(f).read_to_string(&mut text).map_err(|e| format!("decompress /proc/config.gz: {e}"))?;
    Ok(parse_config(&text))
}

pub(crate) fn parse_config(text: &str) -> KernelConfig {
    // `=y` is on; absent or `is not set` is off (a config.gz lists every option it was built with). `=m`
    // does not occur for these options; treat it as on.
    let get = |name: &str| -> Option<bool> {
        let on = text.lines().any(|l| {
            l.strip_prefix(name).and_then(|r| r.strip_prefix('=')).is_some_and(|v| v == "y" || v == "m")
        });
        Some(on)
    };
    KernelConfig {
        swap: get("CONFIG_SWAP"),
        ksm: get("CONFIG_KSM"),
        transparent_hugepage: get("CONFIG_TRANSPARENT_HUGEPAGE"),
        memory_failure: get("CONFIG_MEMORY_FAILURE"),
        anon_vma_name: get("CONFIG_ANON_VMA_NAME"),
        mem_soft_dirty: get("CONFIG_MEM_SOFT_DIRTY"),
        userfaultfd: get("CONFIG_USERFAULTFD"),
    }
}

/// The options the model uses, from what the running kernel shows, for a kernel whose `.config` is not
/// to be had. Each answer is a file or flag that exists exactly when the option is built in:
/// * CONFIG_SWAP: /proc/swaps [mm/swapfile.c:procswaps_init];
/// * CONFIG_KSM: /sys/kernel/mm/ksm [mm/ksm.c:ksm_init, sysfs_create_group(mm_kobj, &ksm_attr_group)];
/// * CONFIG_MEMORY_FAILURE: /proc/sys/vm/memory_failure_early_kill [mm/memory-failure.c:memory_failure_init
///   (6.8+), kernel/sysctl.c vm_table before];
/// * CONFIG_TRANSPARENT_HUGEPAGE: /sys/kernel/mm/transparent_hugepage when present; when absent the option
///   stays unknown, since a kernel built with THP on hardware without it has no directory either
///   (mm/huge_memory.c:hugepage_init), and the model already goes by `thp` then;
/// * CONFIG_MEM_SOFT_DIRTY: `sd` in the VmFlags of a fresh private anonymous mapping, which is the
///   model's very question (`softdirty_new_vmas`) [mm/vma.c:__mmap_region sets VM_SOFTDIRTY,
///   fs/proc/task_mmu.c:show_smap_vma_flags prints it only under CONFIG_MEM_SOFT_DIRTY].
/// CONFIG_ANON_VMA_NAME and CONFIG_USERFAULTFD stay unknown: the model does not use them.
pub(crate) fn probe_config(ps: u64) -> Result<KernelConfig, String> {
    let exists = |p: &str| std::path::Path::new(p).exists();
    Ok(KernelConfig {
        swap: Some(exists("/proc/swaps")),
        ksm: Some(exists("/sys/kernel/mm/ksm")),
        memory_failure: Some(exists("/proc/sys/vm/memory_failure_early_kill")),
        transparent_hugepage: exists("/sys/kernel/mm/transparent_hugepage").then_some(true),
        mem_soft_dirty: Some(probe_new_vma_flag(ps, "sd")?),
        anon_vma_name: None,
        userfaultfd: None,
    })
}

/// Maps one private anonymous page with `prot`, runs `f` on its address, and unmaps it. `what` names the
/// probe in errors.
fn with_probe_page<T>(ps: u64, prot: libc::c_int, what: &str, f: impl FnOnce(*mut libc::c_void) -> Result<T, String>) -> Result<T, String> {
    // SAFETY: a fresh private mapping that only `f` sees, unmapped before returning.
    unsafe {
        let p = libc::mmap(std::ptr::null_mut(), ps as usize, prot, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
        if p == libc::MAP_FAILED {
            return Err(format!("{what} probe: mmap: {}", sys::strerror(sys::errno())));
        }
        let r = f(p);
        libc::munmap(p, ps as usize);
        r
    }
}

/// Does the smaps record of the VMA holding `p` list `flag`?
fn smaps_flag_at(p: *mut libc::c_void, flag: &str, what: &str) -> Result<bool, String> {
    std::fs::read_to_string("/proc/self/smaps")
        .map_err(|e| format!("{what} probe: read /proc/self/smaps: {e}"))
        .map(|text| vma_has_flag(&text, p as u64, flag))
}

/// Does a fresh private anonymous mapping show `flag` in its smaps VmFlags?
fn probe_new_vma_flag(ps: u64, flag: &str) -> Result<bool, String> {
    with_probe_page(ps, libc::PROT_READ | libc::PROT_WRITE, flag, |p| smaps_flag_at(p, flag, flag))
}

/// Does MADV_GUARD_INSTALL set the `gu` VmFlag? Maps one private anonymous page, installs a guard,
/// looks for the page's smaps record, unmaps. EINVAL (no guard regions at all) means no.
fn probe_guard_flag(ps: u64) -> Result<bool, String> {
    with_probe_page(ps, libc::PROT_READ | libc::PROT_WRITE, "guard", |p| {
        // SAFETY: the probe's own page.
        if unsafe { libc::madvise(p, ps as usize, 102) } != 0 {
            let e = sys::errno();
            if e == libc::EINVAL {
                Ok(false)
            } else {
                Err(format!("guard probe: madvise(GUARD_INSTALL): {}", sys::strerror(e)))
            }
        } else {
            smaps_flag_at(p, "gu", "guard")
        }
    })
}

/// Do new VMAs carry VM_SOFTDIRTY (`sd`)? Maps one private anonymous read-only page, looks for its
/// smaps record, unmaps. Whether they do is pgtable_supports_soft_dirty() at run time, not only
/// CONFIG_MEM_SOFT_DIRTY (riscv64 needs the Svrsw60t59b extension; see KernelFacts::vma_soft_dirty).
fn probe_soft_dirty(ps: u64) -> Result<bool, String> {
    with_probe_page(ps, libc::PROT_READ, "soft-dirty", |p| smaps_flag_at(p, "sd", "soft-dirty"))
}

/// Whether the smaps record of the VMA that contains `addr` lists `flag` in its VmFlags. The probe's
/// mapping may have merged with an anonymous neighbour, and a flag like VM_MAYBE_GUARD is set on the
/// whole VMA without a split (6.18+ mm/madvise.c:madvise_guard_install), so the record can start below
/// `addr`: looking for a record that starts at `addr` found none there, which made the probe answer
/// "no `gu`" on some boots of 7.3.4 depending on where the kernel placed the mapping.
fn vma_has_flag(smaps: &str, addr: u64, flag: &str) -> bool {
    let mut inside = false;
    for l in smaps.lines() {
        if let Some(flags) = l.strip_prefix("VmFlags:") {
            if inside {
                return flags.split_ascii_whitespace().any(|f| f == flag);
            }
        } else if !l.split(' ').next().unwrap_or("").ends_with(':') {
            let range = l.split(' ').next().unwrap_or("");
            inside = range
                .split_once('-')
                .and_then(|(a, b)| Some((u64::from_str_radix(a, 16).ok()?, u64::from_str_radix(b, 16).ok()?)))
                .is_some_and(|(a, b)| a <= addr && addr < b);
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_and_thp_parse() {
        let c = parse_config("CONFIG_SWAP=y\n# CONFIG_KSM is not set\nCONFIG_SWAP_X=y\nCONFIG_USERFAULTFD=y\n");
        assert_eq!(c.swap, Some(true));
        assert_eq!(c.ksm, Some(false));
        assert_eq!(c.memory_failure, Some(false));
        assert_eq!(c.userfaultfd, Some(true));
        assert_eq!(parse_thp("always [madvise] never\n"), Some(ThpMode::Madvise));
        assert_eq!(parse_thp("[never] x"), Some(ThpMode::Never));
        assert_eq!(parse_thp("always madvise never"), None);
    }

    /// The probes a config-less guest uses must say what the build config says, on a kernel that has
    /// both (this host's /proc/config.gz; skipped with a message where there is none).
    #[test]
    fn config_probes_agree_with_the_build_config() {
        let c = read_config().unwrap();
        if c == KernelConfig::default() {
            eprintln!("skipped: no /proc/config.gz on this kernel to check the probes against");
            return;
        }
        let p = probe_config(sys::page_size() as u64).unwrap();
        assert_eq!((p.swap, p.ksm, p.memory_failure, p.mem_soft_dirty), (c.swap, c.ksm, c.memory_failure, c.mem_soft_dirty));
        if p.transparent_hugepage.is_some() {
            assert_eq!(p.transparent_hugepage, c.transparent_hugepage);
        }
    }

    #[test]
    fn smaps_flag_lookup() {
        let t = "7f0000000000-7f0000001000 rw-p 00000000 00:00 0 \nRss: 0 kB\nVmFlags: rd wr gu ac \n\
                 7f0000001000-7f0000002000 rw-p 00000000 00:00 0 \nVmFlags: rd wr \n";
        assert!(vma_has_flag(t, 0x7f00_0000_0000, "gu"));
        assert!(!vma_has_flag(t, 0x7f00_0000_1000, "gu"));
        // The probe's page inside a merged VMA that starts below it.
        let merged = "7f0000000000-7f0000003000 rw-p 00000000 00:00 0 \nRss: 0 kB\nVmFlags: rd wr gu ac \n";
        assert!(vma_has_flag(merged, 0x7f00_0000_2000, "gu"));
        assert!(!vma_has_flag(merged, 0x7f00_0000_3000, "gu"));
    }
}
