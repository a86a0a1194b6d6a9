//! mm/vma.c (mm/mmap.c before 6.10): VMA split and merge, and the one "change the flags of a range"
//! path every flag-changing call uses (vma_modify, vma_merge_existing_range, vma_merge_new_range).
//!
//! Invariants: `Machine::vmas` stays sorted and non-overlapping; a merge never joins VMAs whose flags,
//! file, pgoff or anon_vma are incompatible; a split keeps the anon_vma on both halves.

use crate::kernel::KernelModel;
use crate::machine::{vmf, AnonVma, Machine, Vma};
use crate::observe::Errno;

impl Machine {
    /// split_vma at `page` (which lies strictly inside vmas[i]); both halves keep the anon_vma
    /// [S 6.18 mm/vma.c:__split_vma].
    pub(crate) fn split(&mut self, i: usize, page: i64) {
        let v = self.vmas[i];
        debug_assert!(v.start < page && page < v.end);
        let mut right = v;
        right.start = page;
        right.pgoff = v.pgoff + (page - v.start);
        right.anon_pgoff = v.anon_pgoff + (page - v.start);
        self.vmas[i].end = page;
        self.vmas.insert(i + 1, right);
    }

    /// Flags that do not stop a merge: VM_SOFTDIRTY always [S 4.5..6.18 mm/vma.c:is_mergeable_vma];
    /// VM_MAYBE_GUARD on kernels with the sticky guard flag [T 6.18.44].
    pub(crate) fn ignore_merge(model: &KernelModel) -> u64 {
        vmf::SOFTDIRTY | if model.guard_vma_flag { vmf::MAYBE_GUARD } else { 0 }
    }

    /// is_mergeable_vma: same flags (bar the ignored ones) and same file [S 6.18 mm/vma.c].
    pub(crate) fn flags_file_match(model: &KernelModel, a: &Vma, flags: u64, obj: Option<usize>) -> bool {
        (a.flags ^ flags) & !Self::ignore_merge(model) == 0 && a.obj == obj
    }

    /// needs_adjacent_anon_pgoff: on kernels with a separate anonymous page offset a MAP_PRIVATE file
    /// range merges only where its anonymous page offset continues the neighbour's, as its vm_pgoff must
    /// ("This is only required for MAP_PRIVATE-file backed mappings as the page offset for pure
    /// anonymous VMAs is equal to the anonymous page offset") [S 7.3.4 mm/vma.c:can_vma_merge_before,
    /// can_vma_merge_after, needs_adjacent_anon_pgoff; T Debian 7.2.12 (old) and 7.3.4 (new); case
    /// file_private_moved_faulted_merge_needs_anon_pgoff]. `lo_end` is the anonymous page offset just
    /// past the lower VMA, `hi_start` the higher one's first.
    pub(crate) fn anon_pgoff_adjacent(model: &KernelModel, flags: u64, obj: Option<usize>, lo_end: i64, hi_start: i64) -> bool {
        !model.private_file_merge_needs_anon_pgoff || obj.is_none() || flags & vmf::SHARED != 0 || lo_end == hi_start
    }

    /// is_mergeable_anon_vma for merging `src` (the range's anon_vma) into the neighbour `tgt`.
    /// 6.16+ (UNVERIFIED release) [S 7.x mm/vma.c]: equal, or one side has none and the side that has
    /// one was not inherited through fork. Before [S 6.12/6.1 mm/vma.c, mm/mmap.c]: when either is
    /// missing, only a target whose own anon_vma_chain is a single entry accepts, so a target with no
    /// anon_vma at all never takes a source that has one [T Debian 6.12.117, case gen-3-524].
    pub(crate) fn anon_compatible_m(model: &KernelModel, tgt: Option<AnonVma>, src: Option<AnonVma>) -> bool {
        if model.anon_merge_by_owner {
            return Self::anon_compatible(tgt, src);
        }
        match (tgt, src) {
            (Some(t), None) => !t.forked,
            (None, Some(_)) => false,
            (None, None) => true,
            (Some(t), Some(s)) => t.id == s.id,
        }
    }

    /// are_anon_vmas_compatible(prev, next) for a merge on both sides: before 6.16 any missing side is fine.
    pub(crate) fn anon_pair_compatible(model: &KernelModel, a: Option<AnonVma>, b: Option<AnonVma>) -> bool {
        if model.anon_merge_by_owner {
            return Self::anon_compatible(a, b);
        }
        match (a, b) {
            (Some(x), Some(y)) => x.id == y.id,
            _ => true,
        }
    }

    /// The 6.16+ rule (see `anon_compatible_m`).
    pub(crate) fn anon_compatible(tgt: Option<AnonVma>, src: Option<AnonVma>) -> bool {
        match (tgt, src) {
            (None, Some(s)) => !s.forked,
            (Some(t), None) => !t.forked,
            (None, None) => true,
            (Some(t), Some(s)) => t.id == s.id,
        }
    }

    /// vma_modify_flags on [s, e) inside vmas[i] (6.18 mm/vma.c:vma_merge_existing_range, then
    /// split_vma at the edges when no merge happened). Returns the index of the VMA now covering
    /// [s, e). `new_flags` is what the caller wants on the range.
    pub(crate) fn modify_flags(&mut self, model: &KernelModel, i: usize, s: i64, e: i64, new_flags: u64) -> usize {
        let mid = self.vmas[i];
        debug_assert!(mid.start <= s && e <= mid.end && s < e);
        let left_side = s == mid.start;
        let right_side = e == mid.end;
        let pgoff = mid.pgoff + (s - mid.start);
        let anon_pgoff = mid.anon_pgoff + (s - mid.start);
        let special = new_flags & vmf::SPECIAL != 0;
        // can_vma_merge_left / can_vma_merge_after.
        let merge_left = !special
            && left_side
            && i > 0
            && {
                let p = self.vmas[i - 1];
                p.end == s
                    && Self::flags_file_match(model, &p, new_flags, mid.obj)
                    && Self::anon_compatible_m(model, p.anon_vma, mid.anon_vma)
                    && p.pgoff + p.pages() == pgoff
                    && Self::anon_pgoff_adjacent(model, new_flags, mid.obj, p.anon_pgoff + p.pages(), anon_pgoff)
            };
        // can_vma_merge_right / can_vma_merge_before; with a left merge, prev and next must also be
        // compatible with each other [S 6.18 mm/vma.c:can_vma_merge_right].
        let merge_right = !special
            && right_side
            && i + 1 < self.vmas.len()
            && {
                let n = self.vmas[i + 1];
                n.start == e
                    && Self::flags_file_match(model, &n, new_flags, mid.obj)
                    && Self::anon_compatible_m(model, n.anon_vma, mid.anon_vma)
                    && n.pgoff == pgoff + (e - s)
                    && Self::anon_pgoff_adjacent(model, new_flags, mid.obj, anon_pgoff + (e - s), n.anon_pgoff)
                    && (!merge_left || {
                        let p = self.vmas[i - 1];
                        Self::anon_pair_compatible(model, p.anon_vma, n.anon_vma)
                    })
            };
        let sticky = |a: u64| if model.guard_vma_flag { a & vmf::MAYBE_GUARD } else { 0 };
        let anon_of = |a: Option<AnonVma>, b: Option<AnonVma>| a.or(b);
        match (merge_left, merge_right) {
            (true, true) => {
                // prev absorbs middle and next.
                let n = self.vmas[i + 1];
                let p = &mut self.vmas[i - 1];
                p.end = n.end;
                p.flags = new_flags | sticky(p.flags | n.flags | mid.flags);
                p.anon_vma = anon_of(anon_of(p.anon_vma, mid.anon_vma), n.anon_vma);
                self.vmas.drain(i..i + 2);
                i - 1
            }
            (true, false) => {
                let p = &mut self.vmas[i - 1];
                p.end = e;
                p.flags = new_flags | sticky(p.flags | mid.flags);
                p.anon_vma = anon_of(p.anon_vma, mid.anon_vma);
                if right_side {
                    self.vmas.remove(i);
                } else {
                    self.vmas[i].start = e;
                    self.vmas[i].pgoff = mid.pgoff + (e - mid.start);
                    self.vmas[i].anon_pgoff = mid.anon_pgoff + (e - mid.start);
                }
                i - 1
            }
            (false, true) => {
                let n = &mut self.vmas[i + 1];
                n.start = s;
                n.pgoff = pgoff;
                n.anon_pgoff = anon_pgoff;
                n.flags = new_flags | sticky(n.flags | mid.flags);
                n.anon_vma = anon_of(n.anon_vma, mid.anon_vma);
                if left_side {
                    self.vmas.remove(i);
                    i
                } else {
                    self.vmas[i].end = s;
                    i + 1
                }
            }
            (false, false) => {
                let mut i = i;
                if s > mid.start {
                    self.split(i, s);
                    i += 1;
                }
                if e < self.vmas[i].end {
                    self.split(i, e);
                }
                self.vmas[i].flags = new_flags;
                i
            }
        }
    }

    /// `modify_flags` with the hugetlb split rule: vma_modify splits at the start first and then at the
    /// end, so a refused end split leaves the start split made (hugetlb VMAs never merge: VM_SPECIAL)
    /// [S 6.18 mm/vma.c:vma_modify; 6.1 mm/madvise.c:madvise_update_vma; mm/mprotect.c:mprotect_fixup].
    pub(crate) fn modify_flags_checked(&mut self, model: &KernelModel, i: usize, s: i64, e: i64, nf: u64) -> Result<usize, Errno> {
        let v = self.vmas[i];
        if v.flags & vmf::HUGETLB == 0 {
            return Ok(self.modify_flags(model, i, s, e, nf));
        }
        let mut i = i;
        if s > v.start {
            if self.huge_split_refused(&v, s) {
                return Err(Errno::EINVAL);
            }
            if e < v.end && self.huge_split_refused(&v, e) {
                self.split(i, s);
                return Err(Errno::EINVAL);
            }
        } else if e < v.end && self.huge_split_refused(&v, e) {
            return Err(Errno::EINVAL);
        }
        if s > v.start {
            self.split(i, s);
            i += 1;
        }
        if e < self.vmas[i].end {
            self.split(i, e);
        }
        self.vmas[i].flags = nf;
        Ok(i)
    }

    /// Apply `f(old_flags) -> Result<new_flags>` to every VMA in [s, e), as mprotect/mlock/madvise do.
    /// Returns the first error; a gap gives ENOMEM (at once for mprotect/mlock, which stop at the
    /// first hole; madvise has its own walk).
    pub(crate) fn for_each_vma_in(&mut self, s: i64, e: i64) -> Vec<(i64, i64)> {
        self.vmas
            .iter()
            .filter(|v| v.end > s && v.start < e)
            .map(|v| (v.start.max(s), v.end.min(e)))
            .collect()
    }

    /// vma_merge_new_range for the just-inserted vmas[i] (an mmap: it has no anon_vma).
    pub(crate) fn merge_new(&mut self, model: &KernelModel, i: usize) -> usize {
        // "Special VMAs are unmergeable" (hugetlb carries VM_DONTEXPAND; its flags are set by the
        // hugetlbfs mmap hook, after the first merge attempt, so they never match a neighbour either)
        // [S 6.12 mm/vma.c:vma_merge_new_range; T spec §3.2].
        if self.vmas[i].flags & vmf::SPECIAL != 0 {
            return i;
        }
        if model.mmap_expand_next_first {
            return self.merge_new_pre_612(model, i);
        }
        self.merge_inserted(model, i, None)
    }

    /// mmap_region before 6.12: try the next VMA (with no anon_vma), then the previous one judged
    /// against the anon_vma of the next if that matched, then vma_expand over both
    /// [S 6.1 mm/mmap.c:mmap_region "Attempt to expand an old mapping"; T Debian 6.1.192, gen-3-1472].
    pub(crate) fn merge_new_pre_612(&mut self, model: &KernelModel, i: usize) -> usize {
        let v = self.vmas[i];
        let right = i + 1 < self.vmas.len() && {
            let n = self.vmas[i + 1];
            n.start == v.end
                && Self::flags_file_match(model, &n, v.flags, v.obj)
                && Self::anon_compatible_m(model, n.anon_vma, None)
                && n.pgoff == v.pgoff + v.pages()
        };
        let src = if right { self.vmas[i + 1].anon_vma } else { None };
        let left = i > 0 && {
            let p = self.vmas[i - 1];
            p.end == v.start
                && Self::flags_file_match(model, &p, v.flags, v.obj)
                && Self::anon_compatible_m(model, p.anon_vma, src)
                && p.pgoff + p.pages() == v.pgoff
        };
        match (left, right) {
            (true, true) => {
                let n = self.vmas[i + 1];
                let p = &mut self.vmas[i - 1];
                p.end = n.end;
                p.anon_vma = p.anon_vma.or(n.anon_vma);
                self.vmas.drain(i..i + 2);
                i - 1
            }
            (true, false) => {
                self.vmas[i - 1].end = v.end;
                self.vmas.remove(i);
                i - 1
            }
            (false, true) => {
                let n = &mut self.vmas[i + 1];
                n.start = v.start;
                n.pgoff = v.pgoff;
                n.anon_pgoff = v.anon_pgoff;
                self.vmas.remove(i);
                i
            }
            (false, false) => i,
        }
    }
}
