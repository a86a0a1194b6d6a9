//! khugepaged, the one kernel thread that changes a scenario's memory behind its back.
//!
//! A VM_HUGEPAGE VMA (MADV_HUGEPAGE, or THP `always`) registers the worker's mm with khugepaged
//! [S 6.18 mm/khugepaged.c:khugepaged_enter_vma, __khugepaged_enter]. The registration that finds
//! khugepaged's list empty wakes the thread at once (`if (wakeup) wake_up_interruptible(&khugepaged_wait)`),
//! and the thread scans right away; otherwise it scans every `scan_sleep_millisecs` (10 s)
//! [S 6.18 mm/khugepaged.c:khugepaged, khugepaged_wait_work]. A scan that meets a PMD range with at most
//! `max_ptes_none` (511) empty PTEs and a young one collapses it into a THP, filling the holes with zeroes
//! [S 6.18 mm/khugepaged.c:hpage_collapse_scan_pmd, collapse_huge_page]. When that lands between two steps
//! of a scenario the kernel's answer changes: a page that was absent is present, or (after a later split)
//! the shared zero page [S 6.18 mm/huge_memory.c:__split_huge_page, remap_page RMP_USE_SHARED_ZEROPAGE].
//! gen-7-139 (seed 7) diverged that way once in about forty runs of `harness/tests/cli.rs`: step 5's
//! MADV_FREE of pages 0..510 left page 511 on the zero page, which is exactly what a collapse of the
//! range after step 4 and a split at step 5 give. The model never runs khugepaged (a collapse by the
//! daemon is timing, not semantics; `simulator/src/mm/khugepaged.rs`).
//!
//! So the runner reads khugepaged's own collapse counter, `khugepaged/pages_collapsed` (only collapses
//! by the daemon count there; MADV_COLLAPSE does not [S 6.18 mm/khugepaged.c:khugepaged_scan_mm_slot
//! `++khugepaged_pages_collapsed`]), before a scenario and after it. A divergent scenario during which it
//! moved runs once more, and the report lists it under `reruns` with the counter's values; a divergence
//! that happens again is the verdict. The counter is system-wide, so another process's collapse can cost
//! a re-run too, never a verdict.
//!
//! Invariant: this never turns a divergence into a match by itself; it only earns a second run, the same
//! as a worker killed from outside. Without the file (no THP in the kernel, or sysfs unreadable) nothing
//! is retried for this reason.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::OnceLock;

const PAGES_COLLAPSED: &str = "/sys/kernel/mm/transparent_hugepage/khugepaged/pages_collapsed";

static COUNTER: OnceLock<Option<File>> = OnceLock::new();

/// khugepaged's collapse count now, or `None` where the kernel does not offer it.
pub fn pages_collapsed() -> Option<u64> {
    let f = COUNTER.get_or_init(|| File::open(PAGES_COLLAPSED).ok()).as_ref()?;
    let mut buf = [0u8; 32];
    let n = f.read_at(&mut buf, 0).ok()?;
    std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
}

/// Why a divergent run may have been changed by khugepaged: the counter read before it and after it.
pub fn moved(before: Option<u64>, after: Option<u64>) -> Option<String> {
    match (before, after) {
        (Some(b), Some(a)) if a != b => Some(format!(
            "khugepaged collapsed {} range(s) while the scenario ran ({PAGES_COLLAPSED} {b} -> {a}), and the divergence",
            a.wrapping_sub(b)
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moved_counter_is_a_reason_and_a_still_one_is_not() {
        assert!(moved(Some(3), Some(4)).unwrap().contains("collapsed 1 range(s)"));
        assert_eq!(moved(Some(3), Some(3)), None);
        assert_eq!(moved(None, Some(3)), None);
        assert_eq!(moved(Some(3), None), None);
    }

    #[test]
    fn the_counter_reads_as_a_number_where_the_kernel_has_it() {
        if std::path::Path::new(PAGES_COLLAPSED).exists() {
            assert!(pages_collapsed().is_some());
        }
    }
}
