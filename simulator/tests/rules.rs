//! Table-driven tests of simulator rules. Each row is a small program and what the model must answer
//! after its last step: the return, the VMA layout with flags, and the page states.
//! Page legend: `.` absent, `z` zero page, `0` present zero bytes, `w` present written (Fill),
//! `f` present original file content.

use rstest::rstest;
use simulator::kernel::{KernelFacts, KernelModel};
use simulator::observe::{Content, Expect, Residency};
use simulator::program::{Program, ARENA};

fn model(profile: &str) -> KernelModel {
    KernelModel::from_facts(KernelFacts::profile(profile).unwrap())
}

fn prog(json: &str) -> Program {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("bad test program: {e}\n{json}"))
}

/// (ret, layout, pages) of the last observation point.
fn last(model: &KernelModel, p: &Program) -> (String, String, String) {
    let out = simulator::simulate(model, &ARENA, p);
    let (_, exp) = out.last().expect("no points");
    let a = match exp {
        Expect::Allowed(a) => a,
        Expect::Unsupported(w) => return ("unsupported".into(), w.clone(), String::new()),
    };
    let ret = a.ret.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("|");
    let layout = a
        .vmas
        .iter()
        .map(|v| format!("[{},{}) {} {}", v.start, v.end, v.perms, v.flags.join(" ")))
        .collect::<Vec<_>>()
        .join("; ");
    let pages = a
        .pages
        .iter()
        .map(|alts| {
            let p = alts[0];
            match (p.res, p.content) {
                (Residency::Absent, _) => '.',
                (Residency::ZeroPage, _) => 'z',
                (Residency::Swap, _) => 's',
                (_, Some(Content::Zero)) => '0',
                (_, Some(Content::Fill(_))) => 'w',
                (_, Some(Content::FilePage { .. })) => 'f',
                _ => '?',
            }
        })
        .collect();
    (ret, layout, pages)
}

const AP4: &str = r#"{"page":0,"pages":4,"prot":"rw-","kind":"anon_private"}"#;

#[rstest]
#[case::dontneed_zaps_anon(
    &format!(r#"{{"arena_pages":4,"maps":[{AP4}],"steps":[{{"op":"write","page":1,"fill":7}},{{"op":"madvise","page":1,"len_pages":1,"advice":"DONTNEED"}}]}}"#),
    "0", "[0,4) rw-p rd wr mr mw me ac", "....")]
#[case::read_after_dontneed_maps_zero_page(
    &format!(r#"{{"arena_pages":4,"maps":[{AP4}],"steps":[{{"op":"write","page":1,"fill":7}},{{"op":"madvise","page":1,"len_pages":1,"advice":"DONTNEED"}},{{"op":"read","page":1}}]}}"#),
    "0", "[0,4) rw-p rd wr mr mw me ac", ".z..")]
#[case::unaligned_start_is_einval(
    &format!(r#"{{"arena_pages":4,"maps":[{AP4}],"steps":[{{"op":"madvise","page":1,"offset":1,"len_pages":1,"advice":"DONTNEED"}}]}}"#),
    "EINVAL", "[0,4) rw-p rd wr mr mw me ac", "....")]
#[case::zero_len_is_ok_even_in_a_hole(
    &format!(r#"{{"arena_pages":8,"maps":[{AP4}],"steps":[{{"op":"madvise","page":6,"advice":"DONTNEED"}}]}}"#),
    "0", "[0,4) rw-p rd wr mr mw me ac", "........")]
#[case::invalid_advice_beats_enomem(
    r#"{"arena_pages":4,"maps":[],"steps":[{"op":"madvise","page":0,"len_pages":1,"advice":999}]}"#,
    "EINVAL", "", "....")]
#[case::len_minus_one_is_einval(
    &format!(r#"{{"arena_pages":4,"maps":[{AP4}],"steps":[{{"op":"madvise","page":0,"len_bytes":-1,"advice":"DONTNEED"}}]}}"#),
    "EINVAL", "[0,4) rw-p rd wr mr mw me ac", "....")]
#[case::hole_gives_enomem_but_advice_applies(
    r#"{"arena_pages":6,"maps":[{"page":0,"pages":2,"prot":"rw-","kind":"anon_private"},{"page":3,"pages":3,"prot":"rw-","kind":"anon_private"}],"steps":[{"op":"madvise","page":0,"len_pages":6,"advice":"RANDOM"}]}"#,
    "ENOMEM", "[0,2) rw-p rd wr mr mw me rr ac; [3,6) rw-p rd wr mr mw me rr ac", "......")]
#[case::random_middle_splits_in_three(
    &format!(r#"{{"arena_pages":4,"maps":[{AP4}],"steps":[{{"op":"madvise","page":1,"len_pages":2,"advice":"RANDOM"}}]}}"#),
    "0", "[0,1) rw-p rd wr mr mw me ac; [1,3) rw-p rd wr mr mw me rr ac; [3,4) rw-p rd wr mr mw me ac", "....")]
#[case::normal_remerges_split_halves(
    &format!(r#"{{"arena_pages":4,"maps":[{AP4}],"steps":[{{"op":"write","page":0,"fill":1}},{{"op":"madvise","page":1,"len_pages":2,"advice":"RANDOM"}},{{"op":"madvise","page":1,"len_pages":2,"advice":"NORMAL"}}]}}"#),
    "0", "[0,4) rw-p rd wr mr mw me ac", "w...")]
#[case::wipeonfork_on_shared_anon_is_einval(
    r#"{"arena_pages":4,"maps":[{"page":0,"pages":4,"prot":"rw-","kind":"anon_shared"}],"steps":[{"op":"madvise","page":0,"len_pages":4,"advice":"WIPEONFORK"}]}"#,
    "EINVAL", "[0,4) rw-s rd wr sh mr mw me ms", "....")]
#[case::dontneed_on_locked_is_einval(
    r#"{"arena_pages":2,"maps":[{"page":0,"pages":2,"prot":"rw-","kind":"anon_private","locked":true}],"steps":[{"op":"madvise","page":0,"len_pages":2,"advice":"DONTNEED"}]}"#,
    "EINVAL", "[0,2) rw-p rd wr mr mw me lo ac", "00")]
#[case::free_on_file_is_einval(
    r#"{"arena_pages":2,"files":[{"kind":"disk","pages":2}],"maps":[{"page":0,"pages":2,"prot":"rw-","kind":"file_private","file":0,"offset":0}],"steps":[{"op":"read","page":0},{"op":"madvise","page":0,"len_pages":2,"advice":"FREE"}]}"#,
    "EINVAL", "[0,2) rw-p rd wr mr mw me ac", "ff")]
#[case::dontneed_private_file_drops_cow_copy_and_fault_around_maps_neighbours(
    r#"{"arena_pages":2,"files":[{"kind":"memfd","pages":2}],"maps":[{"page":0,"pages":2,"prot":"rw-","kind":"file_private","file":0,"offset":0}],"steps":[{"op":"write","page":0,"fill":9},{"op":"madvise","page":0,"len_pages":2,"advice":"DONTNEED"},{"op":"read","page":0}]}"#,
    "0", "[0,2) rw-p rd wr mr mw me ac", "ff")]
#[case::remove_on_private_file_is_eacces(
    r#"{"arena_pages":2,"files":[{"kind":"disk","pages":2}],"maps":[{"page":0,"pages":2,"prot":"rw-","kind":"file_private","file":0,"offset":0}],"steps":[{"op":"madvise","page":0,"len_pages":2,"advice":"REMOVE"}]}"#,
    "EACCES", "[0,2) rw-p rd wr mr mw me ac", "..")]
#[case::remove_on_shared_memfd_punches_a_hole(
    r#"{"arena_pages":2,"files":[{"kind":"memfd","pages":2}],"maps":[{"page":0,"pages":2,"prot":"r--","kind":"file_shared","file":0,"offset":0,"populate":true}],"steps":[{"op":"madvise","page":1,"len_pages":1,"advice":"REMOVE"},{"op":"read","page":1}]}"#,
    "0", "[0,2) r--s rd sh mr mw me ms", "f0")]
#[case::remove_on_anon_is_einval(
    &format!(r#"{{"arena_pages":4,"maps":[{AP4}],"steps":[{{"op":"madvise","page":0,"len_pages":1,"advice":"REMOVE"}}]}}"#),
    "EINVAL", "[0,4) rw-p rd wr mr mw me ac", "....")]
#[case::write_to_read_only_is_sigsegv(
    r#"{"arena_pages":2,"maps":[{"page":0,"pages":2,"prot":"r--","kind":"anon_private"}],"steps":[{"op":"write","page":0,"fill":1}]}"#,
    "SIGSEGV", "", "")]
#[case::mprotect_write_adds_account_and_keeps_it(
    r#"{"arena_pages":2,"maps":[{"page":0,"pages":2,"prot":"r--","kind":"anon_private"}],"steps":[{"op":"mprotect","page":0,"pages":2,"prot":"rw-"},{"op":"write","page":0,"fill":1},{"op":"mprotect","page":0,"pages":2,"prot":"r--"}]}"#,
    "0", "[0,2) r--p rd mr mw me ac", "w.")]
#[case::guard_install_then_dontneed_keeps_marker(
    &format!(r#"{{"arena_pages":4,"maps":[{AP4}],"steps":[{{"op":"write","page":1,"fill":7}},{{"op":"madvise","page":1,"len_pages":2,"advice":"GUARD_INSTALL"}},{{"op":"madvise","page":0,"len_pages":4,"advice":"DONTNEED"}}]}}"#),
    "0", "[0,4) rw-p rd wr mr mw me gu ac", ".ss.")]
#[case::read_of_guard_marker_is_sigsegv(
    &format!(r#"{{"arena_pages":4,"maps":[{AP4}],"steps":[{{"op":"madvise","page":1,"len_pages":1,"advice":"GUARD_INSTALL"}},{{"op":"read","page":1}}]}}"#),
    "SIGSEGV", "", "")]
#[case::populate_over_guard_is_efault(
    &format!(r#"{{"arena_pages":4,"maps":[{AP4}],"steps":[{{"op":"madvise","page":2,"len_pages":1,"advice":"GUARD_INSTALL"}},{{"op":"madvise","page":0,"len_pages":4,"advice":"POPULATE_WRITE"}}]}}"#),
    "EFAULT", "[0,4) rw-p rd wr mr mw me gu ac", "00s.")]
#[case::pageout_discards_clean_lazyfree_pages(
    &format!(r#"{{"arena_pages":4,"maps":[{AP4}],"steps":[{{"op":"write","page":0,"fill":1}},{{"op":"write","page":1,"fill":2}},{{"op":"madvise","page":0,"len_pages":1,"advice":"FREE"}},{{"op":"madvise","page":0,"len_pages":2,"advice":"PAGEOUT"}}]}}"#),
    "0", "[0,4) rw-p rd wr mr mw me ac", ".w..")]
#[case::mseal_splits_and_prints_sl(
    &format!(r#"{{"arena_pages":4,"maps":[{AP4}],"steps":[{{"op":"mseal","page":1,"pages":2}}]}}"#),
    "0", "[0,1) rw-p rd wr mr mw me ac; [1,3) rw-p rd wr mr mw me ac sl; [3,4) rw-p rd wr mr mw me ac", "....")]
#[case::munmap_of_sealed_is_eperm(
    &format!(r#"{{"arena_pages":4,"maps":[{AP4}],"steps":[{{"op":"mseal","page":0,"pages":4}},{{"op":"munmap","page":0,"pages":2}}]}}"#),
    "EPERM", "[0,4) rw-p rd wr mr mw me ac sl", "....")]
#[case::dontneed_on_sealed_read_only_anon_is_eperm(
    r#"{"arena_pages":2,"maps":[{"page":0,"pages":2,"prot":"r--","kind":"anon_private","populate":true}],"steps":[{"op":"mseal","page":0,"pages":2},{"op":"madvise","page":0,"len_pages":2,"advice":"DONTNEED"}]}"#,
    "EPERM", "[0,2) r--p rd mr mw me sl", "zz")]
#[case::mlock_prot_none_is_enomem(
    r#"{"arena_pages":2,"maps":[{"page":0,"pages":2,"prot":"---","kind":"anon_private"}],"steps":[{"op":"mlock","page":0,"pages":2}]}"#,
    "ENOMEM", "[0,2) ---p mr mw me lo", "..")]
#[case::mremap_shrinking_move_may_cross_vma_boundaries(
    r#"{"arena_pages":8,"maps":[{"page":0,"pages":2,"prot":"rw-","kind":"anon_private"},{"page":2,"pages":2,"prot":"r--","kind":"anon_private"}],"steps":[{"op":"write","page":1,"fill":5},{"op":"mremap","page":0,"pages":4,"new_pages":2,"to":6}]}"#,
    "0", "[6,8) rw-p rd wr mr mw me ac", ".......w")]
#[case::mremap_growing_move_across_vma_boundary_is_efault(
    r#"{"arena_pages":8,"maps":[{"page":0,"pages":2,"prot":"rw-","kind":"anon_private"},{"page":2,"pages":2,"prot":"r--","kind":"anon_private"}],"steps":[{"op":"mremap","page":1,"pages":2,"new_pages":3,"to":5}]}"#,
    "EFAULT", "[0,2) rw-p rd wr mr mw me ac; [2,4) r--p rd mr mw me", "........")]
#[case::mremap_grown_file_mapping_write_past_eof_is_sigbus(
    r#"{"arena_pages":8,"files":[{"kind":"memfd","pages":2}],"maps":[{"page":0,"pages":2,"prot":"rw-","kind":"file_shared","file":0,"offset":0}],"steps":[{"op":"mremap","page":0,"pages":2,"new_pages":3,"to":4},{"op":"write","page":6,"fill":1}]}"#,
    "SIGBUS", "", "")]
#[case::mremap_grown_file_mapping_populate_past_eof_is_efault(
    r#"{"arena_pages":8,"files":[{"kind":"memfd","pages":2}],"maps":[{"page":0,"pages":2,"prot":"r--","kind":"file_shared","file":0,"offset":0}],"steps":[{"op":"mremap","page":0,"pages":2,"new_pages":3,"to":4},{"op":"madvise","page":4,"len_pages":3,"advice":"POPULATE_READ"}]}"#,
    "EFAULT", "[4,7) r--s rd sh mr mw me ms", "....ff..")]
#[case::mremap_growing_locked_prot_none_populates_nothing(
    r#"{"arena_pages":8,"maps":[{"page":0,"pages":2,"prot":"---","kind":"anon_private","locked":true}],"steps":[{"op":"mremap","page":0,"pages":1,"new_pages":2,"to":4}]}"#,
    "0", "[1,2) ---p mr mw me lo; [4,6) ---p mr mw me lo", "........")]
#[case::try_write_to_read_only_is_a_caught_sigsegv_that_changes_nothing(
    r#"{"arena_pages":2,"maps":[{"page":0,"pages":2,"prot":"r--","kind":"anon_private"}],"steps":[{"op":"try_write","page":0,"fill":1}]}"#,
    "SIGSEGV", "[0,2) r--p rd mr mw me", "..")]
#[case::try_read_of_a_guard_page_is_caught_and_the_next_step_runs(
    r#"{"arena_pages":2,"maps":[{"page":0,"pages":2,"prot":"rw-","kind":"anon_private"}],"steps":[{"op":"madvise","page":0,"len_pages":1,"advice":"GUARD_INSTALL"},{"op":"try_read","page":0},{"op":"write","page":1,"fill":2}]}"#,
    "0", "[0,2) rw-p rd wr mr mw me gu ac", "sw")]
#[case::try_write_that_does_not_fault_writes(
    r#"{"arena_pages":2,"maps":[{"page":0,"pages":2,"prot":"rw-","kind":"anon_private"}],"steps":[{"op":"try_write","page":1,"fill":3}]}"#,
    "0", "[0,2) rw-p rd wr mr mw me ac", ".w")]
#[case::droppable_map_sets_dp_wf_dd_nr_and_no_ac(
    r#"{"arena_pages":4,"maps":[{"page":0,"pages":4,"prot":"rw-","kind":"anon_droppable"}],"steps":[{"op":"write","page":1,"fill":7}]}"#,
    "0", "[0,4) rw-p rd wr mr mw me nr wf dd dp", ".w..")]
#[case::droppable_keeponfork_is_einval(
    r#"{"arena_pages":4,"maps":[{"page":0,"pages":4,"prot":"rw-","kind":"anon_droppable"}],"steps":[{"op":"madvise","page":0,"len_pages":4,"advice":"KEEPONFORK"}]}"#,
    "EINVAL", "[0,4) rw-p rd wr mr mw me nr wf dd dp", "....")]
#[case::droppable_dodump_is_einval(
    r#"{"arena_pages":4,"maps":[{"page":0,"pages":4,"prot":"rw-","kind":"anon_droppable"}],"steps":[{"op":"madvise","page":0,"len_pages":4,"advice":"DODUMP"}]}"#,
    "EINVAL", "[0,4) rw-p rd wr mr mw me nr wf dd dp", "....")]
#[case::droppable_mergeable_sets_no_flag(
    r#"{"arena_pages":4,"maps":[{"page":0,"pages":4,"prot":"rw-","kind":"anon_droppable"}],"steps":[{"op":"madvise","page":0,"len_pages":2,"advice":"MERGEABLE"}]}"#,
    "0", "[0,4) rw-p rd wr mr mw me nr wf dd dp", "....")]
#[case::droppable_pageout_drops_a_dirty_page(
    r#"{"arena_pages":4,"maps":[{"page":0,"pages":4,"prot":"rw-","kind":"anon_droppable"}],"steps":[{"op":"write","page":1,"fill":7},{"op":"write","page":2,"fill":8},{"op":"madvise","page":1,"len_pages":1,"advice":"PAGEOUT"}]}"#,
    "0", "[0,4) rw-p rd wr mr mw me nr wf dd dp", "..w.")]
#[case::anon_private_pageout_keeps_a_dirty_page_without_swap(
    r#"{"arena_pages":4,"maps":[{"page":0,"pages":4,"prot":"rw-","kind":"anon_private"}],"steps":[{"op":"write","page":1,"fill":7},{"op":"madvise","page":1,"len_pages":1,"advice":"PAGEOUT"}]}"#,
    "0", "[0,4) rw-p rd wr mr mw me ac", ".w..")]
#[case::droppable_mlock_populates_but_does_not_lock(
    r#"{"arena_pages":4,"maps":[{"page":0,"pages":4,"prot":"rw-","kind":"anon_droppable"}],"steps":[{"op":"mlock","page":1,"pages":2,"onfault":true}]}"#,
    "0", "[0,4) rw-p rd wr mr mw me nr wf dd dp", ".00.")]
#[case::droppable_mmap_locked_is_einval(
    r#"{"arena_pages":4,"maps":[],"steps":[{"op":"mmap","map":{"page":0,"pages":2,"prot":"rw-","kind":"anon_droppable","locked":true}}]}"#,
    "EINVAL", "", "....")]
fn rule(#[case] program: &str, #[case] ret: &str, #[case] layout: &str, #[case] pages: &str) {
    let m = model("6.18");
    let (r, l, p) = last(&m, &prog(program));
    assert_eq!((r.as_str(), l.as_str(), p.as_str()), (ret, layout, pages));
}

/// Fork: DONTFORK ranges are missing in the child, WIPEONFORK ranges are empty, and page tables of
/// VMAs without an anon_vma are not copied.
#[test]
fn fork_child_view() {
    let p = prog(
        r#"{"arena_pages":6,"maps":[{"page":0,"pages":2,"prot":"rw-","kind":"anon_private"},{"page":2,"pages":2,"prot":"rw-","kind":"anon_shared"},{"page":4,"pages":2,"prot":"rw-","kind":"anon_private"}],
            "steps":[{"op":"write","page":0,"fill":1},{"op":"write","page":2,"fill":2},{"op":"write","page":4,"fill":3},
                     {"op":"madvise","page":4,"len_pages":1,"advice":"DONTFORK"},
                     {"op":"madvise","page":0,"len_pages":2,"advice":"WIPEONFORK"},
                     {"op":"fork","child":[{"op":"read","page":2}]}]}"#,
    );
    let m = model("6.18");
    let out = simulator::simulate(&m, &ARENA, &p);
    let child0 = out.iter().find(|(id, _)| id.child == Some(0)).unwrap();
    let Expect::Allowed(a) = &child0.1 else { panic!() };
    // wf VMA [0,2) kept but empty; shmem [2,4) not copied; [4,5) dc missing; [5,6) copied (has anon_vma).
    let ranges: Vec<_> = a.vmas.iter().map(|v| (v.start, v.end)).collect();
    assert_eq!(ranges, vec![(0, 2), (2, 4), (5, 6)]);
    assert!(a.pages[0][0].content.is_none() && a.pages[2][0].content.is_none());
    let child1 = out.iter().find(|(id, _)| id.child == Some(1)).unwrap();
    let Expect::Allowed(a) = &child1.1 else { panic!() };
    assert_eq!(a.pages[2][0].content, Some(Content::Fill(2)), "shmem content is shared with the child");
}

/// Halves split in the parent do not re-merge in the child (fresh anon_vmas per child VMA).
#[test]
fn split_halves_do_not_remerge_after_fork() {
    let p = prog(
        r#"{"arena_pages":4,"maps":[{"page":0,"pages":4,"prot":"rw-","kind":"anon_private"}],
            "steps":[{"op":"write","page":0,"fill":1},{"op":"madvise","page":2,"len_pages":2,"advice":"RANDOM"},
                     {"op":"fork","child":[{"op":"madvise","page":2,"len_pages":2,"advice":"NORMAL"}]}]}"#,
    );
    let out = simulator::simulate(&model("6.18"), &ARENA, &p);
    let child1 = out.iter().find(|(id, _)| id.child == Some(1)).unwrap();
    let Expect::Allowed(a) = &child1.1 else { panic!() };
    assert_eq!(a.vmas.len(), 2);
}

/// Two anonymous VMAs whose anon_vmas were allocated separately never merge, even with equal flags.
#[test]
fn separate_anon_vmas_do_not_merge() {
    let p = prog(
        r#"{"arena_pages":4,"maps":[{"page":0,"pages":2,"prot":"rw-","kind":"anon_private"}],
            "steps":[{"op":"madvise","page":0,"len_pages":2,"advice":"DONTDUMP"},
                     {"op":"mmap","map":{"page":2,"pages":2,"prot":"rw-","kind":"anon_private"}},
                     {"op":"write","page":0,"fill":1},{"op":"write","page":2,"fill":2},
                     {"op":"madvise","page":0,"len_pages":2,"advice":"DODUMP"}]}"#,
    );
    let (_, l, _) = last(&model("6.18"), &p);
    assert_eq!(l, "[0,2) rw-p rd wr mr mw me ac; [2,4) rw-p rd wr mr mw me ac");
}

/// Version deltas, pinned per profile.
#[rstest]
#[case::wipeonfork_absent_in_4_5("4.5", 18, false)]
#[case::wipeonfork_in_6_1("6.1", 18, true)]
#[case::guard_install_absent_in_6_12("6.12", 102, false)]
#[case::guard_install_in_6_18("6.18", 102, true)]
#[case::cold_absent_in_4_5("4.5", 20, false)]
#[case::collapse_in_6_1("6.1", 25, true)]
#[case::unknown_value_never_valid("6.18", 26, false)]
fn advice_validity_per_version(#[case] profile: &str, #[case] value: i32, #[case] valid: bool) {
    assert_eq!(model(profile).advice_valid(value), valid);
}

#[rstest]
#[case::free_falls_back_in_4_5_without_swap("4.5", true)]
#[case::free_is_lazy_in_6_1("6.1", false)]
#[case::free_is_lazy_in_6_18("6.18", false)]
fn free_fallback_per_version(#[case] profile: &str, #[case] fallback: bool) {
    assert_eq!(model(profile).free_falls_back_to_dontneed, fallback);
    // On 4.5 without swap FREE is DONTNEED, file mappings included.
    let p = prog(
        r#"{"arena_pages":2,"files":[{"kind":"disk","pages":2}],"maps":[{"page":0,"pages":2,"prot":"rw-","kind":"file_private","file":0,"offset":0,"populate":true}],"steps":[{"op":"madvise","page":0,"len_pages":2,"advice":"FREE"}]}"#,
    );
    let (r, _, pages) = last(&model(profile), &p);
    if fallback {
        assert_eq!((r.as_str(), pages.as_str()), ("0", ".."));
    } else {
        assert_eq!((r.as_str(), pages.as_str()), ("EINVAL", "ff"));
    }
}

#[rstest]
#[case::remove_needs_write_in_4_5("4.5", "EACCES")]
#[case::remove_needs_maywrite_in_6_12("6.12", "0")]
fn remove_on_read_only_shared_mapping(#[case] profile: &str, #[case] ret: &str) {
    let p = prog(
        r#"{"arena_pages":2,"files":[{"kind":"disk","pages":2}],"maps":[{"page":0,"pages":2,"prot":"r--","kind":"file_shared","file":0,"offset":0}],"steps":[{"op":"madvise","page":0,"len_pages":2,"advice":"REMOVE"}]}"#,
    );
    assert_eq!(last(&model(profile), &p).0, ret);
}

#[test]
fn lockonfault_mnemonic_only_from_6_12() {
    let p = prog(
        r#"{"arena_pages":2,"maps":[{"page":0,"pages":2,"prot":"rw-","kind":"anon_private"}],"steps":[{"op":"mlock","page":0,"pages":2,"onfault":true}]}"#,
    );
    assert!(last(&model("6.12"), &p).1.contains(" lo lf ac"));
    assert!(last(&model("6.1"), &p).1.contains(" lo ?? ac"));
}

#[test]
fn mutation_dontneed_keeps_anon_changes_the_answer() {
    let mut m = model("6.18");
    let p = prog(&format!(
        r#"{{"arena_pages":4,"maps":[{AP4}],"steps":[{{"op":"write","page":1,"fill":7}},{{"op":"madvise","page":1,"len_pages":1,"advice":"DONTNEED"}}]}}"#
    ));
    assert_eq!(last(&m, &p).2, "....");
    m.mutations.push(simulator::kernel::Mutation::DontneedKeepsAnon);
    assert_eq!(last(&m, &p).2, ".w..");
}

/// A same-size MREMAP_FIXED move over two VMAs and the gap between them: 6.17+ moves each VMA and keeps
/// the gap (remap_move); 6.12 refuses a range that leaves the first VMA (vma_to_resize → EFAULT).
#[rstest]
#[case::mremap_multi_vma_move_in_6_18("6.18", "0", "[5,6) rw-p rd wr mr mw me ac; [7,8) r--p rd mr mw me", ".....w..")]
#[case::mremap_multi_vma_move_efault_in_6_12("6.12", "EFAULT", "[0,1) rw-p rd wr mr mw me ac sd; [2,3) r--p rd mr mw me sd", "w.......")]
fn mremap_multi_vma_move_per_version(#[case] profile: &str, #[case] ret: &str, #[case] layout: &str, #[case] pages: &str) {
    let p = prog(
        r#"{"arena_pages":8,"maps":[{"page":0,"pages":1,"prot":"rw-","kind":"anon_private"},{"page":2,"pages":1,"prot":"r--","kind":"anon_private"}],"steps":[{"op":"write","page":0,"fill":3},{"op":"mremap","page":0,"pages":3,"new_pages":3,"to":5}]}"#,
    );
    let (r, l, pg) = last(&model(profile), &p);
    assert_eq!((r.as_str(), l.as_str(), pg.as_str()), (ret, layout, pages));
}

/// The last point's VMA 0 counters and page fills, for the live-fork rules: `rss anon lazyfree_hi
/// locked | fills`, with fills one char per page (`.` absent, `s` guard, `z` zero page, `0` zero bytes,
/// `f` file page, else the fill byte as one hex digit of its low nibble).
fn live_last(p: &str) -> String {
    let p = prog(p);
    let out = simulator::simulate(&model("6.18"), &ARENA, &p);
    let (_, exp) = out.last().expect("no points");
    let a = match exp {
        Expect::Allowed(a) => a,
        Expect::Unsupported(w) => return format!("unsupported: {w}"),
    };
    if a.vmas.is_empty() {
        return a.ret.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("|");
    }
    let v = &a.vmas[0];
    let fills: String = a
        .pages
        .iter()
        .map(|alts| match (alts[0].res, alts[0].content) {
            (Residency::Absent, _) => '.',
            (Residency::Swap, _) => 's',
            (Residency::ZeroPage, _) => 'z',
            (_, Some(Content::Zero)) => '0',
            (_, Some(Content::FilePage { .. })) => 'f',
            (_, Some(Content::Fill(b))) => char::from_digit((b & 0xf) as u32, 16).unwrap(),
            _ => '?',
        })
        .collect();
    format!("{} {} {} {} | {fills}", v.rss.hi, v.anon.hi, v.lazyfree.hi, v.locked.hi)
}

const W1: &str = r#"{"op":"write","page":1,"fill":1}"#;
const W2: &str = r#"{"op":"write","page":2,"fill":2}"#;
const FREE12: &str = r#"{"op":"madvise","page":1,"len_pages":2,"advice":"FREE"}"#;
const PAGEOUT12: &str = r#"{"op":"madvise","page":1,"len_pages":2,"advice":"PAGEOUT"}"#;
const FORK_LIVE: &str = r#"{"op":"fork_live"}"#;
const EXIT: &str = r#"{"op":"child_exit"}"#;
const AP14: &str = r#"{"page":1,"pages":4,"prot":"rw-","kind":"anon_private"}"#;
const AP14L: &str = r#"{"page":1,"pages":4,"prot":"rw-","kind":"anon_private","locked":true}"#;

/// Rules for a fork child that stays alive (kernel citations are in machine.rs: sync_live,
/// live_child_gone, pageout, populate, expect; the live-fork corpus cases pin the same facts on the
/// real 6.18.44 kernel).
#[rstest]
// madvise_cold_or_pageout_pte_range skips a folio mapped by both processes: the lazy-free pages stay.
#[case::pageout_skips_lazy_page_shared_with_live_child(
    &format!(r#"{{"arena_pages":6,"maps":[{AP14}],"steps":[{W1},{W2},{FREE12},{FORK_LIVE},{PAGEOUT12}]}}"#),
    "2 2 2 0 | .12...")]
// After the child exits the folio is exclusive again: the same PAGEOUT discards the clean lazy pages.
#[case::pageout_discards_lazy_page_after_child_exit(
    &format!(r#"{{"arena_pages":6,"maps":[{AP14}],"steps":[{W1},{W2},{FREE12},{FORK_LIVE},{PAGEOUT12},{EXIT},{PAGEOUT12}]}}"#),
    "0 0 0 0 | ......")]
// madvise_free_pte_range marks a shared, not PG_dirty folio lazy-free too (only PG_dirty ones need an
// exclusive mapping); the child's own PTE stays dirty, so it shows no LazyFree.
#[case::free_marks_page_shared_with_live_child_lazy_in_the_parent(
    &format!(r#"{{"arena_pages":6,"maps":[{AP14}],"steps":[{W1},{W2},{FORK_LIVE},{FREE12}]}}"#),
    "2 2 2 0 | .12...")]
#[case::free_in_parent_leaves_the_childs_pte_dirty(
    &format!(r#"{{"arena_pages":6,"maps":[{AP14}],"steps":[{W1},{W2},{FORK_LIVE},{FREE12},{{"op":"in_child","step":{{"op":"read","page":1}}}}]}}"#),
    "2 2 0 0 | .12...")]
// A write on either side copies the shared page for the writer; the other keeps the old bytes.
#[case::parent_write_leaves_the_child_the_old_page(
    &format!(r#"{{"arena_pages":6,"maps":[{AP14}],"steps":[{W1},{FORK_LIVE},{{"op":"write","page":1,"fill":9}},{{"op":"in_child","step":{{"op":"read","page":1}}}}]}}"#),
    "1 1 0 0 | .1....")]
#[case::child_write_leaves_the_parent_the_old_page(
    &format!(r#"{{"arena_pages":6,"maps":[{AP14}],"steps":[{W1},{FORK_LIVE},{{"op":"in_child","step":{{"op":"write","page":1,"fill":9}}}},{{"op":"read","page":1}}]}}"#),
    "1 1 0 0 | .1....")]
// Once the child wrote (COW-broke) a FREEd page, the parent's copy is exclusive and PAGEOUT drops it.
#[case::pageout_drops_parent_lazy_page_after_child_cow_broke_it(
    &format!(r#"{{"arena_pages":6,"maps":[{AP14}],"steps":[{W1},{W2},{FREE12},{FORK_LIVE},{{"op":"in_child","step":{{"op":"write","page":1,"fill":9}}}},{PAGEOUT12}]}}"#),
    "1 1 1 0 | ..2...")]
// Locked is PSS: a locked page shared with the live child counts half (4 pages x 2 KiB = 2 pages).
#[case::locked_counts_half_of_pages_shared_with_live_child(
    &format!(r#"{{"arena_pages":6,"maps":[{AP14L}],"steps":[{W1},{W2},{FORK_LIVE}]}}"#),
    "4 4 0 2 | .1200.")]
// mlock in the child populates with FOLL_WRITE, which breaks COW: the parent's pages are whole again.
#[case::mlock_in_live_child_breaks_cow(
    &format!(r#"{{"arena_pages":6,"maps":[{AP14L}],"steps":[{W1},{W2},{FORK_LIVE},{{"op":"in_child","step":{{"op":"mlock","page":1,"pages":4}}}},{{"op":"read","page":1}}]}}"#),
    "4 4 0 4 | .1200.")]
// Page-cache mapcount counts the live child's PTEs: PAGEOUT of a clean shmem page both map is skipped.
#[case::pageout_skips_cache_page_mapped_by_live_child(
    r#"{"arena_pages":6,"files":[{"kind":"memfd","pages":4}],"maps":[{"page":1,"pages":4,"prot":"r--","kind":"file_shared","file":0}],"steps":[{"op":"read","page":1},{"op":"fork_live"},{"op":"in_child","step":{"op":"read","page":1}},{"op":"madvise","page":1,"len_pages":1,"advice":"PAGEOUT"}]}"#,
    "4 0 0 0 | .ffff.")]
// A hole the child punches (REMOVE) unmaps the parent's PTEs of it and reads back zero there.
#[case::remove_in_live_child_unmaps_the_parents_page(
    r#"{"arena_pages":6,"files":[{"kind":"memfd","pages":4}],"maps":[{"page":1,"pages":4,"prot":"rw-","kind":"file_shared","file":0}],"steps":[{"op":"read","page":1},{"op":"fork_live"},{"op":"in_child","step":{"op":"madvise","page":1,"len_pages":1,"advice":"REMOVE"}},{"op":"read","page":4}]}"#,
    "3 0 0 0 | ..fff.")]
// WIPEONFORK: the live child starts with the VMA empty.
#[case::wipeonfork_live_child_starts_empty(
    &format!(r#"{{"arena_pages":6,"maps":[{AP14}],"steps":[{W1},{{"op":"madvise","page":1,"len_pages":4,"advice":"WIPEONFORK"}},{FORK_LIVE},{{"op":"in_child","step":{{"op":"read","page":1}}}}]}}"#),
    "0 0 0 0 | .z....")]
// Guards are inherited; a child that touches one dies, and every later in_child point repeats that.
#[case::guard_kills_live_child_and_later_child_points_repeat_the_signal(
    &format!(r#"{{"arena_pages":6,"maps":[{AP14}],"steps":[{W1},{{"op":"madvise","page":2,"len_pages":1,"advice":"GUARD_INSTALL"}},{FORK_LIVE},{{"op":"in_child","step":{{"op":"read","page":2}}}},{{"op":"in_child","step":{{"op":"read","page":1}}}}]}}"#),
    "SIGSEGV")]
#[case::parent_goes_on_after_the_live_child_died(
    &format!(r#"{{"arena_pages":6,"maps":[{AP14}],"steps":[{W1},{{"op":"madvise","page":2,"len_pages":1,"advice":"GUARD_INSTALL"}},{FORK_LIVE},{{"op":"in_child","step":{{"op":"read","page":2}}}},{EXIT},{{"op":"write","page":3,"fill":3}}]}}"#),
    "2 2 0 0 | .1s3..")]
// A lazy-free page written again and paged out becomes PG_dirty (try_to_unmap_one); FREE skips such a
// folio while it is shared, so after the child exits PAGEOUT keeps it.
#[case::free_skips_pgdirty_page_shared_with_live_child(
    &format!(r#"{{"arena_pages":6,"maps":[{AP14}],"steps":[{W1},{{"op":"madvise","page":1,"len_pages":1,"advice":"FREE"}},{{"op":"write","page":1,"fill":2}},{{"op":"madvise","page":1,"len_pages":1,"advice":"PAGEOUT"}},{FORK_LIVE},{{"op":"madvise","page":1,"len_pages":1,"advice":"FREE"}},{EXIT},{{"op":"madvise","page":1,"len_pages":1,"advice":"PAGEOUT"}}]}}"#),
    "1 1 0 0 | .2....")]
// Exclusive again, the same FREE cleans PG_dirty and marks it lazy-free; PAGEOUT then discards it.
#[case::free_cleans_pgdirty_page_when_exclusive(
    &format!(r#"{{"arena_pages":6,"maps":[{AP14}],"steps":[{W1},{{"op":"madvise","page":1,"len_pages":1,"advice":"FREE"}},{{"op":"write","page":1,"fill":2}},{{"op":"madvise","page":1,"len_pages":1,"advice":"PAGEOUT"}},{{"op":"madvise","page":1,"len_pages":1,"advice":"FREE"}},{{"op":"madvise","page":1,"len_pages":1,"advice":"PAGEOUT"}}]}}"#),
    "0 0 0 0 | ......")]
fn live_fork_rule(#[case] program: &str, #[case] want: &str) {
    assert_eq!(live_last(program), want);
}

/// A shared mapping of an 8-page file (disk or memfd), with pages 2..6 punched by REMOVE, then `steps`.
fn punched(kind: &str, steps: &str) -> Program {
    prog(&format!(
        r#"{{"arena_pages":8,"files":[{{"kind":"{kind}","pages":8}}],"maps":[{{"page":0,"pages":8,"prot":"rw-","kind":"file_shared","file":0,"offset":0}}],"steps":[{{"op":"madvise","page":2,"len_pages":4,"advice":"REMOVE"}}{steps}]}}"#
    ))
}

/// A page-cache miss on a disk file reads around it (all of a small file with read_ahead_kb 8192) and the
/// retried fault's fault-around maps what readahead added; VM_RAND_READ reads only the faulted page and
/// VM_SEQ_READ reads forward from it; shmem has no readahead; WILLNEED reads exactly its range.
/// [S 6.12 mm/filemap.c:do_sync_mmap_readahead, filemap_fault; mm/readahead.c; T 6.18 seeds 1-3]
#[rstest]
#[case::disk_miss_reads_around_and_fault_around_maps_it("disk", r#",{"op":"read","page":3}"#, "ff0000ff")]
#[case::memfd_miss_allocates_one_page("memfd", r#",{"op":"read","page":3}"#, "ff.0..ff")]
#[case::random_disk_miss_reads_one_page(
    "disk",
    r#",{"op":"madvise","page":0,"len_pages":8,"advice":"RANDOM"},{"op":"read","page":3}"#,
    "ff.0..ff"
)]
#[case::sequential_disk_miss_reads_forward(
    "disk",
    r#",{"op":"madvise","page":0,"len_pages":8,"advice":"SEQUENTIAL"},{"op":"read","page":4}"#,
    "ff..00ff"
)]
#[case::willneed_reads_its_range_back(
    "disk",
    r#",{"op":"madvise","page":2,"len_pages":2,"advice":"WILLNEED"},{"op":"read","page":0}"#,
    "ff00..ff"
)]
#[case::write_fault_reads_around_but_maps_one_page(
    "disk",
    r#",{"op":"write","page":3,"fill":5},{"op":"read","page":0}"#,
    "ff0w00ff"
)]
fn readahead_after_remove(#[case] kind: &str, #[case] steps: &str, #[case] pages: &str) {
    // Nothing is mapped before the punch, so every page shown was mapped by the last steps.
    let (r, _, p) = last(&model("6.18"), &punched(kind, steps));
    assert_eq!((r.as_str(), p.as_str()), ("0", pages));
}

/// Without a known read_ahead_kb the miss answers Unsupported; with read_ahead_kb 0 there is no
/// readahead at all.
#[test]
fn readahead_needs_ra_pages() {
    let p = punched("disk", r#",{"op":"read","page":3}"#);
    let mut f = KernelFacts::profile("6.18").unwrap();
    f.ra_pages = None;
    assert_eq!(last(&KernelModel::from_facts(f.clone()), &p).0, "unsupported");
    f.ra_pages = Some(0);
    assert_eq!(last(&KernelModel::from_facts(f), &p).2, "ff.0..ff");
}

/// With read_ahead_kb 128 (32 pages) a 24-page punched file read at page 4 is read in whole, and the
/// page at the clipped end minus ra_pages/4 (page 16) gets PG_readahead on 6.1-6.15, so fault-around
/// from page 17 skips it; 6.16+ places the mark differently, which is not modelled.
/// [S 6.12 mm/readahead.c:do_page_cache_ra, page_cache_ra_unbounded]
#[rstest]
#[case::readahead_mark_clipped_in_6_12("6.12", "0000000000000000.0000000")]
#[case::readahead_mark_unmodelled_in_6_18("6.18", "unsupported")]
fn readahead_mark_per_version(#[case] profile: &str, #[case] pages: &str) {
    let p = prog(
        r#"{"arena_pages":24,"files":[{"kind":"disk","pages":24}],"maps":[{"page":0,"pages":24,"prot":"rw-","kind":"file_shared","file":0,"offset":0}],"steps":[{"op":"madvise","page":0,"len_pages":24,"advice":"REMOVE"},{"op":"read","page":4},{"op":"read","page":17}]}"#,
    );
    let mut f = KernelFacts::profile(profile).unwrap();
    f.ra_pages = Some(32);
    let (r, _, pg) = last(&KernelModel::from_facts(f), &p);
    assert_eq!(if r == "unsupported" { r } else { pg }, pages);
}

/// A populate past EOF of a grown disk-file mapping runs fault-around first; with no PTE table yet and
/// the file's last page first in the window, 6.12.117+ maps nothing (can_map_large), 6.1 maps it; once
/// a fault has built the table (and DONTNEED left it), 6.18 maps it too.
/// [S 6.12.117 mm/filemap.c:filemap_map_pages; T 6.18 probe, case gen-2-4992]
#[rstest]
#[case::fresh_table_maps_nothing_in_6_18("6.18", "", "...")]
#[case::fresh_table_maps_the_last_page_in_6_1("6.1", "", "f..")]
#[case::existing_table_maps_the_last_page_in_6_18(
    "6.18",
    r#"{"op":"read","page":0},{"op":"madvise","page":0,"len_pages":1,"advice":"DONTNEED"},"#,
    "f.."
)]
fn fault_around_past_eof_needs_a_table(#[case] profile: &str, #[case] before: &str, #[case] pages: &str) {
    let p = prog(&format!(
        r#"{{"arena_pages":3,"files":[{{"kind":"disk","pages":4}}],"maps":[{{"page":0,"pages":1,"prot":"r--","kind":"file_shared","file":0,"offset":3}}],"steps":[{before}{{"op":"mremap","page":0,"pages":1,"new_pages":3}},{{"op":"madvise","page":1,"len_pages":1,"advice":"POPULATE_READ"}}]}}"#
    ));
    let (r, _, pg) = last(&model(profile), &p);
    assert_eq!((r.as_str(), pg.as_str()), ("EFAULT", pages));
}

/// A fault on a PAGEOUT-flagged (PG_reclaim = PG_readahead) disk page after munmap freed the page table:
/// fault-around first finds only the file's last page uptodate and maps nothing; async readahead clears
/// the flag and drops the lock, so the retried fault-around maps both pages. Under VM_RAND_READ there is
/// no retry and only the faulted page is mapped.
/// [S 6.12 mm/filemap.c:do_async_mmap_readahead, filemap_fault (out_retry); T 6.18, case gen-1-84103]
#[rstest]
#[case::async_readahead_retries("", "ff")]
#[case::random_does_not_retry(r#"{"op":"madvise","page":0,"len_pages":2,"advice":"RANDOM"},"#, "f.")]
fn flagged_fault_in_a_fresh_table(#[case] advice: &str, #[case] pages: &str) {
    let m = r#"{"page":0,"pages":2,"prot":"r--","kind":"file_private","file":0,"offset":0}"#;
    let p = prog(&format!(
        r#"{{"arena_pages":2,"files":[{{"kind":"disk","pages":2}}],"maps":[{m}],"steps":[{{"op":"read","page":0}},{{"op":"madvise","page":0,"len_pages":2,"advice":"PAGEOUT"}},{{"op":"read","page":1}},{{"op":"munmap","page":0,"pages":2}},{{"op":"mmap","map":{m}}},{advice}{{"op":"read","page":0}}]}}"#
    ));
    let (r, _, pg) = last(&model("6.18"), &p);
    assert_eq!((r.as_str(), pg.as_str()), ("0", pages));
}

/// hugetlb rules, with the pool counters (free, rsvd) the model expects after the last step. The arena is
/// two 2 MiB huge pages of 4K pages; `profile` pins the per-version behaviours.
fn huge_last(profile: &str, json: &str) -> (String, String, (i64, i64)) {
    let m = model(profile);
    let p = prog(json);
    let out = simulator::simulate(&m, &ARENA, &p);
    let Some((_, Expect::Allowed(a))) = out.last() else { panic!("no supported point: {out:?}") };
    let ret = a.ret.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("|");
    let layout = a.vmas.iter().map(|v| format!("[{},{}) {}", v.start, v.end, v.flags.join(" "))).collect::<Vec<_>>().join("; ");
    let h = a.hugetlb.expect("a hugetlb program observes the pool");
    (ret, layout, (h.free, h.rsvd))
}

const HP2: &str = r#"{"page":0,"pages":1024,"prot":"rw-","kind":"hugetlb_private"}"#;

#[rstest]
// mmap reserves both huge pages; a write faults in one and consumes its reservation.
#[case::fault_consumes_the_reservation("6.18", &format!(r#"{{"arena_pages":1024,"maps":[{HP2}],"steps":[{{"op":"write","page":3,"fill":7}}]}}"#),
    "0", "[0,1024) rd wr mr mw me de ht", (-1, 1))]
// DONTNEED frees the page; 6.8+ gives the reservation back, 6.1 does not.
#[case::dontneed_restores_the_reservation_6_18("6.18", &format!(r#"{{"arena_pages":1024,"maps":[{HP2}],"steps":[{{"op":"write","page":3,"fill":7}},{{"op":"madvise","page":0,"len_pages":512,"advice":"DONTNEED"}}]}}"#),
    "0", "[0,1024) rd wr mr mw me de ht", (0, 2))]
#[case::dontneed_restores_the_reservation_6_12("6.12", &format!(r#"{{"arena_pages":1024,"maps":[{HP2}],"steps":[{{"op":"write","page":3,"fill":7}},{{"op":"madvise","page":0,"len_pages":512,"advice":"DONTNEED"}}]}}"#),
    "0", "[0,1024) rd wr mr mw me de ht sd", (0, 2))]
#[case::dontneed_keeps_the_reservation_consumed_6_1("6.1", &format!(r#"{{"arena_pages":1024,"maps":[{HP2}],"steps":[{{"op":"write","page":3,"fill":7}},{{"op":"madvise","page":0,"len_pages":512,"advice":"DONTNEED"}}]}}"#),
    "0", "[0,1024) rd wr mr mw me de ht sd", (0, 1))]
// DONTNEED needs a huge-aligned start; the end is rounded down (to nothing here).
#[case::dontneed_unaligned_start_is_einval("6.18", &format!(r#"{{"arena_pages":1024,"maps":[{HP2}],"steps":[{{"op":"madvise","page":1,"len_pages":1,"advice":"DONTNEED"}}]}}"#),
    "EINVAL", "[0,1024) rd wr mr mw me de ht", (0, 2))]
#[case::dontneed_end_rounds_down("6.18", &format!(r#"{{"arena_pages":1024,"maps":[{HP2}],"steps":[{{"op":"write","page":600,"fill":7}},{{"op":"madvise","page":512,"len_pages":511,"advice":"DONTNEED"}}]}}"#),
    "0", "[0,1024) rd wr mr mw me de ht", (-1, 1))]
// A flag change that must split inside a huge page is EINVAL; at a boundary it splits, and never re-merges.
#[case::split_inside_a_huge_page_is_einval("6.18", &format!(r#"{{"arena_pages":1024,"maps":[{HP2}],"steps":[{{"op":"madvise","page":0,"len_pages":1,"advice":"RANDOM"}}]}}"#),
    "EINVAL", "[0,1024) rd wr mr mw me de ht", (0, 2))]
#[case::split_at_the_boundary_and_no_remerge("6.18", &format!(r#"{{"arena_pages":1024,"maps":[{HP2}],"steps":[{{"op":"madvise","page":512,"len_pages":512,"advice":"RANDOM"}},{{"op":"madvise","page":512,"len_pages":512,"advice":"NORMAL"}}]}}"#),
    "0", "[0,512) rd wr mr mw me de ht; [512,1024) rd wr mr mw me de ht", (0, 2))]
// mmap over part of a hugetlb VMA: the refused split is EINVAL on 6.12+, ENOMEM on 6.1.
#[case::mmap_over_part_is_einval_6_18("6.18", &format!(r#"{{"arena_pages":1024,"maps":[{HP2}],"steps":[{{"op":"mmap","map":{{"page":1,"pages":1,"prot":"rw-","kind":"anon_private"}}}}]}}"#),
    "EINVAL", "[0,1024) rd wr mr mw me de ht", (0, 2))]
#[case::mmap_over_part_is_enomem_6_1("6.1", &format!(r#"{{"arena_pages":1024,"maps":[{HP2}],"steps":[{{"op":"mmap","map":{{"page":1,"pages":1,"prot":"rw-","kind":"anon_private"}}}}]}}"#),
    "ENOMEM", "[0,1024) rd wr mr mw me de ht sd", (0, 2))]
// REMOVE on a private hugetlb mapping is EACCES; COLD refuses hugetlb.
#[case::remove_private_is_eacces("6.18", &format!(r#"{{"arena_pages":1024,"maps":[{HP2}],"steps":[{{"op":"madvise","page":0,"len_pages":512,"advice":"REMOVE"}}]}}"#),
    "EACCES", "[0,1024) rd wr mr mw me de ht", (0, 2))]
#[case::cold_is_einval("6.18", &format!(r#"{{"arena_pages":1024,"maps":[{HP2}],"steps":[{{"op":"madvise","page":0,"len_pages":512,"advice":"COLD"}}]}}"#),
    "EINVAL", "[0,1024) rd wr mr mw me de ht", (0, 2))]
// Shared: a punch frees a present page (no Rsvd change) and keeps a reserved, unfaulted one reserved.
#[case::punch_frees_present_and_keeps_reserved("6.18", r#"{"arena_pages":1024,"maps":[{"page":0,"pages":1024,"prot":"rw-","kind":"hugetlb_shared"}],"steps":[{"op":"write","page":0,"fill":1},{"op":"madvise","page":0,"len_pages":1024,"advice":"REMOVE"}]}"#,
    "0", "[0,1024) rd wr sh mr mw me ms de ht", (0, 1))]
// A hugetlbfs punch also drops private copies in private mappings of the file.
#[case::punch_drops_private_copies("6.18", r#"{"arena_pages":1024,"files":[{"kind":"hugetlb","pages":512}],"maps":[{"page":0,"pages":512,"prot":"rw-","kind":"file_private","file":0,"populate":true},{"page":512,"pages":512,"prot":"rw-","kind":"file_shared","file":0}],"steps":[{"op":"madvise","page":512,"len_pages":512,"advice":"REMOVE"}]}"#,
    "0", "[0,512) rd wr mr mw me de ht; [512,1024) rd wr sh mr mw me ms de ht", (0, 2))]
// mlock populates hugetlb but never sets VM_LOCKED.
#[case::mlock_populates_without_lo("6.18", &format!(r#"{{"arena_pages":1024,"maps":[{HP2}],"steps":[{{"op":"mlock","page":0,"pages":512}}]}}"#),
    "0", "[0,1024) rd wr mr mw me de ht", (-1, 1))]
fn hugetlb_rule(#[case] profile: &str, #[case] json: &str, #[case] ret: &str, #[case] layout: &str, #[case] pool: (i64, i64)) {
    let (r, l, h) = huge_last(profile, json);
    assert_eq!((r.as_str(), l.as_str(), h), (ret, layout, pool));
}

#[test]
fn hugetlb_needs_a_huge_page_that_fits_the_arena() {
    // 16K pages: the 32 MiB huge page is 2048 pages, wider than the 1024-page arena.
    let mut f = KernelFacts::profile("6.12").unwrap();
    f.arch = "aarch64".into();
    f.page_size = 16384;
    f.hugepage_kb = 32768;
    let m = KernelModel::from_facts(f);
    assert_eq!(m.hugetlb_pages, 0);
    let p = prog(&format!(r#"{{"arena_pages":1024,"maps":[{HP2}],"steps":[{{"op":"read","page":0}}]}}"#));
    let out = simulator::simulate(&m, &ARENA, &p);
    assert!(matches!(&out[0].1, Expect::Unsupported(w) if w.contains("does not fit")), "{out:?}");
}

#[rstest]
#[case::v6_1("6.1", true, false)]
#[case::v6_12("6.12", false, false)]
#[case::v6_18("6.18", false, true)]
fn mmap_error_and_finish_fault_per_version(#[case] profile: &str, #[case] enomem: bool, #[case] whole_folio: bool) {
    let m = model(profile);
    assert_eq!((m.mmap_unmap_error_is_enomem, m.finish_fault_maps_whole_folio), (enomem, whole_folio));
}

/// A one-page MREMAP_DONTUNMAP move of an unfaulted anonymous page to the page right after it: 6.12 up
/// to 6.12.114 merges the destination into the kept source, 6.12.115 (the stable "disallow a
/// self-merge" fix) keeps them apart, 6.16+ merges again; the boundary is the one `cargo xtask bisect
/// --series 6.12` found between Debian 6.12.113 and 6.12.115 (docs/findings.md). 6.1 got the stable fix
/// in 6.1.192 (`cargo xtask bisect --series 6.1`: Debian 6.1.190 merges, 6.1.192 keeps them apart; there
/// is no Debian 6.1.191).
#[rstest]
#[case::v6_1_170("6.1", (6, 1, 170), "[0,2) rw-p rd wr mr mw me ac sd")]
#[case::v6_1_190("6.1", (6, 1, 190), "[0,2) rw-p rd wr mr mw me ac sd")]
#[case::v6_1_192("6.1", (6, 1, 192), "[0,1) rw-p rd wr mr mw me ac sd; [1,2) rw-p rd wr mr mw me ac sd")]
#[case::v6_12_113("6.12", (6, 12, 113), "[0,2) rw-p rd wr mr mw me ac sd")]
#[case::v6_12_114("6.12", (6, 12, 114), "[0,2) rw-p rd wr mr mw me ac sd")]
#[case::v6_12_115("6.12", (6, 12, 115), "[0,1) rw-p rd wr mr mw me ac sd; [1,2) rw-p rd wr mr mw me ac sd")]
#[case::v6_12_117("6.12", (6, 12, 117), "[0,1) rw-p rd wr mr mw me ac sd; [1,2) rw-p rd wr mr mw me ac sd")]
#[case::v6_18("6.18", (6, 18, 0), "[0,2) rw-p rd wr mr mw me ac")]
fn mremap_dontunmap_unfaulted_source_merge_per_release(#[case] profile: &str, #[case] version: (u32, u32, u32), #[case] layout: &str) {
    let mut f = KernelFacts::profile(profile).unwrap();
    f.version = version;
    let m = KernelModel::from_facts(f);
    let p = prog(
        r#"{"arena_pages":2,"maps":[{"page":0,"pages":1,"prot":"rw-","kind":"anon_private"}],"steps":[{"op":"mremap","page":0,"pages":1,"new_pages":1,"to":1,"dontunmap":true}]}"#,
    );
    let (ret, got, _) = last(&m, &p);
    assert_eq!((ret.as_str(), got.as_str()), ("0", layout), "{version:?}");
}

/// One observation point of a hugetlb program (`point`: `2`, `1.child0`, ...): the return, Shared_Hugetlb
/// and Private_Hugetlb of VMA 0 (in pages), and the pool counters (free, rsvd).
fn huge_point(profile: &str, json: &str, point: &str) -> (String, (u64, u64), (i64, i64)) {
    let out = simulator::simulate(&model(profile), &ARENA, &prog(json));
    let Some((_, exp)) = out.iter().find(|(id, _)| id.to_string() == point) else { panic!("no point {point}: {out:?}") };
    let a = match exp {
        Expect::Allowed(a) => a,
        Expect::Unsupported(w) => panic!("unsupported at {point}: {w}"),
    };
    let ret = a.ret.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("|");
    let v0 = a.vmas.first().map(|v| (v.hugetlb_shared.lo, v.hugetlb_private.lo)).unwrap_or_default();
    let h = a.hugetlb.expect("a hugetlb program observes the pool");
    (ret, v0, (h.free, h.rsvd))
}

const HP1: &str = r#"{"page":0,"pages":512,"prot":"rw-","kind":"hugetlb_private"}"#;

// hugetlb and fork (destructive: only run in a qemu guest, `cargo xtask qemu --cases cases/destructive
// --destructive`). The child's private VMA owns no reservation; pages it shares are COW.
#[rstest]
// Right after fork the child maps the parent's private huge page COW-shared (Shared_Hugetlb).
#[case::child_sees_the_page_shared("6.12", r#"{"op":"fork","child":[]}"#, "1.child0", "0", (512, 0), (-1, 0))]
// The child's write copies the page from the unreserved pool; it is freed when the child exits.
#[case::child_write_copies_from_the_pool("6.12", r#"{"op":"fork","child":[{"op":"write","page":3,"fill":9}]}"#, "1.child1", "0", (0, 512), (-2, 0))]
#[case::child_copy_is_freed_at_exit("6.12", r#"{"op":"fork","child":[{"op":"write","page":3,"fill":9}]}"#, "1", "0", (0, 512), (-1, 0))]
// A read fault of an unfaulted private page in the child takes a page without a reservation, and the
// parent's reservation stays.
#[case::child_fault_has_no_reservation("6.1", r#"{"op":"fork","child":[{"op":"madvise","page":0,"len_pages":512,"advice":"DONTNEED"},{"op":"read","page":0}]}"#, "1.child2", "0", (0, 512), (-2, 0))]
// The live parent's write copies too (cow_from_owner avoids its reserves); the child then owns the old
// page alone and reuses it on its own write.
#[case::live_parent_write_copies("6.12", r#"{"op":"fork_live"},{"op":"write","page":3,"fill":9},{"op":"in_child","step":{"op":"write","page":4,"fill":10}}"#, "3", "0", (0, 512), (-2, 0))]
// 6.8+ restores the reservation of a zapped private page, but not of one the child still maps: neither
// at the DONTNEED nor when the child frees the page, and the parent's refault takes an unreserved page
// (T 6.12.118 guest); 6.1 restores nothing anyway. Once the child has let go, the restore happens.
#[case::live_dontneed_of_a_shared_page_restores_nothing_6_12("6.12", r#"{"op":"fork_live"},{"op":"madvise","page":0,"len_pages":512,"advice":"DONTNEED"},{"op":"child_exit"}"#, "3", "0", (0, 0), (0, 0))]
#[case::live_refault_after_dontneed_takes_an_unreserved_page_6_12("6.12", r#"{"op":"fork_live"},{"op":"madvise","page":0,"len_pages":512,"advice":"DONTNEED"},{"op":"read","page":3}"#, "3", "0", (0, 512), (-2, 0))]
#[case::live_dontneed_after_the_child_let_go_restores_6_12("6.12", r#"{"op":"fork_live"},{"op":"in_child","step":{"op":"madvise","page":0,"len_pages":512,"advice":"DONTNEED"}},{"op":"madvise","page":0,"len_pages":512,"advice":"DONTNEED"}"#, "3", "0", (0, 0), (0, 1))]
#[case::live_dontneed_restores_nothing_6_1("6.1", r#"{"op":"fork_live"},{"op":"madvise","page":0,"len_pages":512,"advice":"DONTNEED"},{"op":"child_exit"}"#, "3", "0", (0, 0), (0, 0))]
fn hugetlb_fork_rule(#[case] profile: &str, #[case] steps: &str, #[case] point: &str, #[case] ret: &str, #[case] vma0: (u64, u64), #[case] pool: (i64, i64)) {
    let json = format!(r#"{{"arena_pages":1024,"maps":[{HP1}],"steps":[{{"op":"write","page":3,"fill":7}},{steps}]}}"#);
    let (r, v, h) = huge_point(profile, &json, point);
    assert_eq!((r.as_str(), v, h), (ret, vma0, pool), "{json}");
}

// hugetlb mremap (destructive): lengths round up to whole huge pages; an unaligned address or growth is
// EINVAL before anything changes; a move takes the reservations along.
#[rstest]
#[case::grow_is_einval("6.12", r#"{"op":"mremap","page":0,"pages":512,"new_pages":513}"#, "EINVAL", "[0,512); [512,1024)", (-1, 1))]
#[case::unaligned_start_is_einval("6.1", r#"{"op":"mremap","page":1,"pages":511,"new_pages":511,"to":513}"#, "EINVAL", "[0,512); [512,1024)", (-1, 1))]
#[case::lengths_round_up_to_a_no_op("6.12", r#"{"op":"mremap","page":0,"pages":511,"new_pages":1}"#, "0", "[0,512); [512,1024)", (-1, 1))]
// Moving the faulted slot onto the other one: the destination's reservation is given back at its
// munmap, the page and the VMA move.
#[case::move_takes_the_page_along("6.12", r#"{"op":"mremap","page":0,"pages":512,"new_pages":512,"to":512}"#, "0", "[512,1024)", (-1, 0))]
// The moved VMA still owns its reservations: munmap gives back what it did not consume.
#[case::moved_vma_owns_its_reservation("6.1", r#"{"op":"mremap","page":512,"pages":512,"new_pages":512,"to":0},{"op":"munmap","page":0,"pages":512}"#, "0", "", (0, 0))]
// MREMAP_DONTUNMAP is EINVAL for hugetlb (VM_DONTEXPAND), after the destination was unmapped (6.1, 6.12).
#[case::dontunmap_unmaps_the_destination_then_einval("6.12", r#"{"op":"mremap","page":0,"pages":512,"new_pages":512,"to":512,"dontunmap":true}"#, "EINVAL", "[0,512)", (-1, 0))]
fn hugetlb_mremap_rule(#[case] profile: &str, #[case] step: &str, #[case] ret: &str, #[case] ranges: &str, #[case] pool: (i64, i64)) {
    // Two private hugetlb VMAs of one huge page each; the first one faulted.
    let json = format!(
        r#"{{"arena_pages":1024,"maps":[{HP1},{{"page":512,"pages":512,"prot":"rw-","kind":"hugetlb_private"}}],"steps":[{{"op":"write","page":3,"fill":7}},{step}]}}"#
    );
    let (r, l, h) = huge_last(profile, &json);
    let ranges_only: Vec<&str> = l.split("; ").map(|v| v.split(' ').next().unwrap_or("")).collect();
    assert_eq!((r.as_str(), ranges_only.join("; ").as_str(), h), (ret, ranges, pool), "{json}");
}

// A fork child's punch of a shared hugetlb mapping unmaps the parent's PTEs of the hole, and a page the
// child faults in again is mapped by it alone (T 6.12.118 guest, gen-2-1154, gen-2-2344 --destructive).
#[rstest]
#[case::the_child_refaults_a_private_page("0.child2", (0, 512))]
#[case::the_parent_lost_the_punched_huge_page("0", (0, 512))]
fn hugetlb_fork_child_punch(#[case] point: &str, #[case] vma0: (u64, u64)) {
    let json = r#"{"arena_pages":1024,"maps":[{"page":0,"pages":1024,"prot":"rw-","kind":"hugetlb_shared","populate":true}],
        "steps":[{"op":"fork","child":[{"op":"madvise","page":512,"len_pages":512,"advice":"REMOVE"},{"op":"write","page":1023,"fill":60}]}]}"#;
    let (r, v, _) = huge_point("6.12", json, point);
    assert_eq!((r.as_str(), v), ("0", vma0));
}

/// A Debian 6.1 kernel's release has no sublevel (`6.1.0-54-amd64` is 6.1.190, `6.1.0-57-amd64`
/// 6.1.192); the model takes it from the `Debian X.Y.Z` token of the version field, so the two kernels
/// around the MREMAP_DONTUNMAP self-merge fix get different models.
#[rstest]
#[case::debian_6_1_190("6.1.0-54-amd64", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.190-1 (2025-12-01)", (6, 1, 190), false)]
#[case::debian_6_1_192("6.1.0-57-amd64", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-01-10)", (6, 1, 192), true)]
#[case::debian_6_12_bpo("6.12.43+bpo-amd64", "#1 SMP PREEMPT_DYNAMIC Debian 6.12.43-1~bpo12+1 (2025-09-06)", (6, 12, 43), false)]
#[case::no_token("6.1.0-54-amd64", "#1 SMP PREEMPT_DYNAMIC", (6, 1, 0), false)]
#[case::other_series("6.1.0-54-amd64", "#1 SMP Debian 6.12.43-1", (6, 1, 0), false)]
#[case::release_has_it("6.18.44-fc-v669", "#1 SMP PREEMPT_DYNAMIC Thu Nov 20 2025", (6, 18, 44), false)]
fn debian_sublevel_from_uname_version(#[case] release: &str, #[case] uname_v: &str, #[case] version: (u32, u32, u32), #[case] apart: bool) {
    assert_eq!(KernelFacts::upstream_version(release, uname_v), version);
    let mut f = KernelFacts::profile(if version.1 == 12 { "6.12" } else if version.1 == 18 { "6.18" } else { "6.1" }).unwrap();
    f.release = release.into();
    f.uname_version = uname_v.into();
    f.version = KernelFacts::upstream_version(release, uname_v);
    assert_eq!(KernelModel::from_facts(f).mremap_kept_source_stays_apart, apart, "{release} / {uname_v}");
}

/// Facts recorded before `uname_version` existed (golden/snapshots/*/facts.json, `--profile-facts`) still
/// load, with an empty version field.
#[test]
fn facts_without_uname_version_load() {
    let mut v = serde_json::to_value(KernelFacts::profile("6.12").unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("uname_version");
    let f: KernelFacts = serde_json::from_value(v).unwrap();
    assert_eq!(f.uname_version, "");
    assert_eq!(f.version, (6, 12, 117));
}

// The boundaries `cargo xtask bisect` pinned over the trixie-backports point releases 6.18.5 … 7.3.4
// (docs/findings.md): the last release with the old behaviour and the first with the new one.
const DOFORK_LAST_OLD: (u32, u32, u32) = (6, 19, 14);
const DOFORK_FIRST_NEW: (u32, u32, u32) = (7, 0, 4);
const PRESPLIT_LAST_OLD: (u32, u32, u32) = (7, 2, 9);
const PRESPLIT_FIRST_NEW: (u32, u32, u32) = (7, 2, 11);
const PGOFF_LAST_OLD: (u32, u32, u32) = (7, 1, 13);
const PGOFF_FIRST_NEW: (u32, u32, u32) = (7, 2, 6);
const KEPT_LAST_OLD: (u32, u32, u32) = (7, 2, 9);
const KEPT_FIRST_NEW: (u32, u32, u32) = (7, 2, 11);
const ANON_PGOFF_LAST_OLD: (u32, u32, u32) = (7, 2, 12);
const ANON_PGOFF_FIRST_NEW: (u32, u32, u32) = (7, 3, 4);

/// The program of a case file (`cases/findings/*.json`): the scenario without its id and description.
fn case_prog(text: &str) -> Program {
    let mut v: serde_json::Value = serde_json::from_str(text).expect("case file is JSON");
    if let Some(o) = v.as_object_mut() {
        o.remove("id");
        o.remove("description");
    }
    serde_json::from_value(v).unwrap_or_else(|e| panic!("bad case program: {e}"))
}

/// The model of one release, from the 6.18 profile's facts with the version replaced (the behaviours
/// below depend on the version alone).
fn at(version: (u32, u32, u32)) -> KernelModel {
    let mut f = KernelFacts::profile("6.18").unwrap();
    f.version = version;
    KernelModel::from_facts(f)
}

/// MADV_DONTFORK then MADV_DOFORK on a MAP_HUGETLB mapping: DOFORK refuses VM_SPECIAL (hugetlb's
/// VM_DONTEXPAND) from the release `cargo xtask bisect` pinned, so `dc` stays set
/// (`dofork_refuses_special`, docs/findings.md).
#[rstest]
#[case::v6_18_44((6, 18, 44), "0", "[0,512) rw-p rd wr mr mw me de ht")]
#[case::last_old(DOFORK_LAST_OLD, "0", "[0,512) rw-p rd wr mr mw me de ht")]
#[case::first_new(DOFORK_FIRST_NEW, "EINVAL", "[0,512) rw-p rd wr mr mw me dc de ht")]
#[case::v7_3_4((7, 3, 4), "EINVAL", "[0,512) rw-p rd wr mr mw me dc de ht")]
fn dofork_on_hugetlb_per_release(#[case] version: (u32, u32, u32), #[case] ret: &str, #[case] layout: &str) {
    let p = case_prog(include_str!("../../cases/findings/dofork_hugetlb_refused_from_7_x.json"));
    let (got_ret, got, _) = last(&at(version), &p);
    assert_eq!((got_ret.as_str(), got.as_str()), (ret, layout), "{version:?}");
}

/// MREMAP_DONTUNMAP of the middle page of a locked anonymous VMA: before 6.16 and again from the
/// release with needs_pre_split the source is split and only the moved page loses `lo`; in between the
/// whole source does (`mremap_dontunmap_splits_locked`).
#[rstest]
#[case::v6_12((6, 12, 0), "[0,1) rw-p rd wr mr mw me lo ac; [1,2) rw-p rd wr mr mw me ac; [2,3) rw-p rd wr mr mw me lo ac; [5,6) rw-p rd wr mr mw me lo ac")]
#[case::v6_18_44((6, 18, 44), "[0,3) rw-p rd wr mr mw me ac; [5,6) rw-p rd wr mr mw me lo ac")]
#[case::last_old(PRESPLIT_LAST_OLD, "[0,3) rw-p rd wr mr mw me ac; [5,6) rw-p rd wr mr mw me lo ac")]
#[case::first_new(PRESPLIT_FIRST_NEW, "[0,1) rw-p rd wr mr mw me lo ac; [1,2) rw-p rd wr mr mw me ac; [2,3) rw-p rd wr mr mw me lo ac; [5,6) rw-p rd wr mr mw me lo ac")]
fn mremap_dontunmap_locked_source_per_release(#[case] version: (u32, u32, u32), #[case] layout: &str) {
    let p = case_prog(include_str!("../../cases/findings/mremap_dontunmap_locked_source_splits.json"));
    let (ret, got, _) = last(&at(version), &p);
    assert_eq!((ret.as_str(), got.as_str()), ("0", layout), "{version:?}");
}

/// A moved, faulted anonymous page sent away whole with MREMAP_DONTUNMAP, then a new anonymous page
/// mapped right after the kept source: it merges only where dontunmap_complete gave the source an
/// address-based pgoff again (`mremap_dontunmap_resets_pgoff`).
#[rstest]
#[case::v6_12((6, 12, 0), "[10,12) rw-p rd wr mr mw me ac; [20,21) rw-p rd wr mr mw me ac")]
#[case::v6_18_44((6, 18, 44), "[10,11) rw-p rd wr mr mw me ac; [11,12) rw-p rd wr mr mw me ac; [20,21) rw-p rd wr mr mw me ac")]
#[case::last_old(PGOFF_LAST_OLD, "[10,11) rw-p rd wr mr mw me ac; [11,12) rw-p rd wr mr mw me ac; [20,21) rw-p rd wr mr mw me ac")]
#[case::first_new(PGOFF_FIRST_NEW, "[10,12) rw-p rd wr mr mw me ac; [20,21) rw-p rd wr mr mw me ac")]
fn mremap_dontunmap_source_pgoff_per_release(#[case] version: (u32, u32, u32), #[case] layout: &str) {
    let p = case_prog(include_str!("../../cases/findings/mremap_dontunmap_source_pgoff_reset.json"));
    let (ret, got, _) = last(&at(version), &p);
    assert_eq!((ret.as_str(), got.as_str()), ("0", layout), "{version:?}");
}

/// The 6.12.115 "disallow a self-merge" behaviour again in mainline: a one-page MREMAP_DONTUNMAP of an
/// unfaulted page to the page right after it keeps two VMAs from the pinned release on.
#[rstest]
#[case::last_old(KEPT_LAST_OLD, "[0,2) rw-p rd wr mr mw me ac")]
#[case::first_new(KEPT_FIRST_NEW, "[0,1) rw-p rd wr mr mw me ac; [1,2) rw-p rd wr mr mw me ac")]
#[case::v7_3_4((7, 3, 4), "[0,1) rw-p rd wr mr mw me ac; [1,2) rw-p rd wr mr mw me ac")]
fn mremap_dontunmap_kept_source_apart_again(#[case] version: (u32, u32, u32), #[case] layout: &str) {
    let p = case_prog(include_str!("../../cases/corpus/mremap_dontunmap_unfaulted_source_stays_apart_from_6_1_192_and_6_12_115.json"));
    let (ret, got, _) = last(&at(version), &p);
    assert_eq!((ret.as_str(), got.as_str()), ("0", layout), "{version:?}");
}

/// A written private file page moved away by mremap keeps the anonymous page offset of where it was
/// first mapped; the next file page mapped right after it merges before the release with a separate
/// anonymous page offset, not from it (`private_file_merge_needs_anon_pgoff`).
#[rstest]
#[case::v6_18_44((6, 18, 44), "[5,7) rw-p rd wr mr mw me ac")]
#[case::last_old(ANON_PGOFF_LAST_OLD, "[5,7) rw-p rd wr mr mw me ac")]
#[case::first_new(ANON_PGOFF_FIRST_NEW, "[5,6) rw-p rd wr mr mw me ac; [6,7) rw-p rd wr mr mw me ac")]
fn private_file_merge_anon_pgoff_per_release(#[case] version: (u32, u32, u32), #[case] layout: &str) {
    let p = case_prog(include_str!("../../cases/findings/file_private_moved_faulted_merge_needs_anon_pgoff.json"));
    let (ret, got, _) = last(&at(version), &p);
    assert_eq!((ret.as_str(), got.as_str()), ("0", layout), "{version:?}");
}

/// `mm->locked_vm` (VmLck) at each point of a program, as the model answers it.
fn locked_vm_points(model: &KernelModel, p: &Program) -> Vec<Option<u64>> {
    simulator::simulate(model, &ARENA, p)
        .into_iter()
        .map(|(_, e)| match e {
            Expect::Allowed(a) => a.locked_vm,
            Expect::Unsupported(w) => panic!("unsupported: {w}"),
        })
        .collect()
}

/// MREMAP_DONTUNMAP of a locked range, then munmap of everything: what `mm->locked_vm` keeps per
/// release (`mremap_dontunmap_locked_vm`, docs/findings.md item 6). The 6.16 rework counts the moved
/// length twice and never uncounts the unsplit source VMA; 7.2.9 stopped the double count but still
/// left the source's unmoved pages counted; 7.2.11 splits the source first, and is exact again.
#[rstest]
#[case::v6_12((6, 12, 118), [4, 0], [4, 0])]
#[case::v6_16((6, 16, 3), [8, 4], [5, 4])]
#[case::v6_18_44((6, 18, 44), [8, 4], [5, 4])]
#[case::last_double_count((7, 2, 6), [8, 4], [5, 4])]
#[case::first_not_added((7, 2, 9), [4, 0], [4, 3])]
#[case::first_split((7, 2, 11), [4, 0], [4, 0])]
#[case::v7_3_4((7, 3, 4), [4, 0], [4, 0])]
fn mremap_dontunmap_locked_vm_per_release(#[case] version: (u32, u32, u32), #[case] whole: [u64; 2], #[case] one_page: [u64; 2]) {
    let m = at(version);
    let w = case_prog(include_str!("../../cases/corpus/mremap_dontunmap_locked_vma_leaves_locked_vm_counted.json"));
    let o = case_prog(include_str!("../../cases/corpus/mremap_dontunmap_locked_page_leaves_rest_counted.json"));
    // The points: after the mremap, after the munmap.
    let got_w = locked_vm_points(&m, &w);
    let got_o = locked_vm_points(&m, &o);
    assert_eq!(got_w, whole.iter().map(|&n| Some(n)).collect::<Vec<_>>(), "whole VMA, {version:?}");
    assert_eq!(got_o, one_page.iter().map(|&n| Some(n)).collect::<Vec<_>>(), "one page, {version:?}");
}

/// MAP_DROPPABLE exists from 6.11 (64-bit): an mmap step is EINVAL before, and a droppable layout map
/// makes the scenario unsupported there (the worker could not set it up).
#[rstest]
#[case::v6_10("6.12", (6, 10, 14), "EINVAL")]
#[case::v6_11("6.12", (6, 11, 0), "0")]
#[case::v6_1("6.1", (6, 1, 192), "EINVAL")]
fn map_droppable_from_6_11(#[case] profile: &str, #[case] version: (u32, u32, u32), #[case] ret: &str) {
    let mut f = KernelFacts::profile(profile).unwrap();
    f.version = version;
    let m = KernelModel::from_facts(f);
    let step = prog(
        r#"{"arena_pages":2,"maps":[],"steps":[{"op":"mmap","map":{"page":0,"pages":2,"prot":"rw-","kind":"anon_droppable"}}]}"#,
    );
    assert_eq!(last(&m, &step).0, ret, "{version:?}");
    let layout = prog(r#"{"arena_pages":2,"maps":[{"page":0,"pages":2,"prot":"rw-","kind":"anon_droppable"}],"steps":[{"op":"read","page":0}]}"#);
    assert_eq!(last(&m, &layout).0 == "unsupported", ret == "EINVAL", "{version:?}");
}

/// LazyFree of droppable memory is exact right after FREE (never swap-backed: no folio batch lag);
/// private anonymous memory keeps the range.
#[test]
fn droppable_lazyfree_is_exact() {
    let m = model("6.18");
    let lazy = |kind: &str| {
        let p = prog(&format!(
            r#"{{"arena_pages":4,"maps":[{{"page":0,"pages":4,"prot":"rw-","kind":"{kind}"}}],"steps":[{{"op":"write","page":0,"fill":1}},{{"op":"write","page":1,"fill":2}},{{"op":"madvise","page":0,"len_pages":4,"advice":"FREE"}}]}}"#
        ));
        match simulator::simulate(&m, &ARENA, &p).last().unwrap().1.clone() {
            Expect::Allowed(a) => (a.vmas[0].lazyfree.lo, a.vmas[0].lazyfree.hi),
            Expect::Unsupported(w) => panic!("{w}"),
        }
    };
    assert_eq!(lazy("anon_droppable"), (2, 2));
    assert_eq!(lazy("anon_private"), (0, 2));
}

/// process_madvise per version: absent before 5.10 (ENOSYS, before any other check); on 6.1 and 6.12
/// every target takes only COLD, PAGEOUT, WILLNEED and COLLAPSE, checked after the pidfd; from 6.13 the
/// caller's own mm takes any advice per element; PIDFD_SELF from 6.15 (EBADF before); CAP_SYS_NICE for
/// the caller's own mm only before 6.3.
/// [S 6.1, 6.12, 6.18 mm/madvise.c:SYSCALL_DEFINE5(process_madvise); T 6.18.44 process_madvise_* cases]
#[rstest]
#[case::absent_on_4_5("4.5", "self_pidfd", "DONTNEED", "null", 5, true, "ENOSYS")]
#[case::enosys_before_flags("4.5", "bad_fd", "COLD", "[]", 1, true, "ENOSYS")]
#[case::self_dontneed_refused_on_6_1("6.1", "self_pidfd", "DONTNEED", PM_ONE, 0, true, "EINVAL")]
#[case::self_dontneed_refused_on_6_12("6.12", "self_pidfd", "DONTNEED", PM_ONE, 0, true, "EINVAL")]
#[case::self_dontneed_on_6_18("6.18", "self_pidfd", "DONTNEED", PM_ONE, 0, true, "4096 bytes")]
#[case::self_invalid_empty_on_6_12("6.12", "self_pidfd", "99", "[]", 0, true, "EINVAL")]
#[case::self_invalid_empty_on_6_18("6.18", "self_pidfd", "99", "[]", 0, true, "0 bytes")]
#[case::self_cold_on_6_12("6.12", "self_pidfd", "COLD", PM_ONE, 0, true, "4096 bytes")]
#[case::pidfd_self_ebadf_on_6_12("6.12", "pidfd_self", "COLD", PM_ONE, 0, true, "EBADF")]
#[case::pidfd_self_on_6_18("6.18", "pidfd_self", "COLD", PM_ONE, 0, true, "4096 bytes")]
#[case::bad_fd_before_advice_on_6_12("6.12", "bad_fd", "DONTNEED", PM_ONE, 0, true, "EBADF")]
#[case::exited_before_advice_on_6_1("6.1", "exited_child", "DONTNEED", PM_ONE, 0, true, "ESRCH")]
#[case::flags_first("6.18", "bad_fd", "COLD", "null", 1, true, "EINVAL")]
#[case::null_before_fd("6.18", "bad_fd", "COLD", "null", 0, true, "EFAULT")]
#[case::self_needs_cap_on_6_1("6.1", "self_pidfd", "COLD", PM_ONE, 0, false, "EPERM")]
#[case::self_no_cap_needed_on_6_12("6.12", "self_pidfd", "COLD", PM_ONE, 0, false, "4096 bytes")]
#[case::self_no_cap_needed_on_6_18("6.18", "pidfd_self", "DONTNEED", PM_ONE, 0, false, "4096 bytes")]
fn process_madvise_per_version(
    #[case] profile: &str,
    #[case] target: &str,
    #[case] advice: &str,
    #[case] iov: &str,
    #[case] flags: u32,
    #[case] cap_sys_nice: bool,
    #[case] ret: &str,
) {
    let mut facts = KernelFacts::profile(profile).unwrap();
    facts.cap_sys_nice = cap_sys_nice;
    let m = KernelModel::from_facts(facts);
    let advice = if advice.parse::<i32>().is_ok() { advice.to_string() } else { format!("\"{advice}\"") };
    let vlen = if iov == "null" && flags == 0 && target == "bad_fd" { r#","vlen":1"# } else { "" };
    let p = prog(&format!(
        r#"{{"arena_pages":4,"maps":[{AP4}],"steps":[{{"op":"write","page":1,"fill":7}},{{"op":"process_madvise","target":"{target}","iov":{iov}{vlen},"advice":{advice},"flags":{flags}}}]}}"#
    ));
    assert_eq!(last(&m, &p).0, ret, "{profile} {target} {advice} {iov} flags {flags} cap_sys_nice {cap_sys_nice}");
}

const PM_ONE: &str = r#"[{"page":1,"len_pages":1}]"#;

/// A remote live child: the advice set, CAP_SYS_NICE, and the child's view.
#[rstest]
#[case::remote_dontneed_refused("6.18", "DONTNEED", "[]", true, "EINVAL")]
#[case::remote_cold_empty("6.18", "COLD", "[]", true, "0 bytes")]
#[case::remote_pageout("6.18", "PAGEOUT", PM_ONE, true, "4096 bytes")]
#[case::remote_needs_cap("6.18", "COLD", PM_ONE, false, "EPERM")]
#[case::remote_needs_cap_on_6_12("6.12", "COLD", PM_ONE, false, "EPERM")]
#[case::remote_dontneed_refused_on_6_12("6.12", "DONTNEED", "[]", true, "EINVAL")]
fn process_madvise_live_child_per_version(
    #[case] profile: &str,
    #[case] advice: &str,
    #[case] iov: &str,
    #[case] cap_sys_nice: bool,
    #[case] ret: &str,
) {
    let mut facts = KernelFacts::profile(profile).unwrap();
    facts.cap_sys_nice = cap_sys_nice;
    let m = KernelModel::from_facts(facts);
    let p = prog(&format!(
        r#"{{"arena_pages":4,"maps":[{AP4}],"steps":[{{"op":"fork_live"}},{{"op":"in_child","step":{{"op":"write","page":1,"fill":7}}}},{{"op":"process_madvise","target":"live_child","iov":{iov},"advice":"{advice}"}}]}}"#
    ));
    let out = simulator::simulate(&m, &ARENA, &p);
    let Some((_, Expect::Allowed(a))) = out.last() else { panic!("no allowed last point: {out:?}") };
    assert_eq!(a.ret.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("|"), ret);
    // The point is the child's view: its written page is there.
    assert!(a.pages[1].iter().any(|p| p.content == Some(Content::Fill(7))), "not the child's view: {:?}", a.pages[1]);
}

/// 7.x: an advice madvise(2) does not know is EINVAL on the caller's own mm even with nothing to walk
/// (6.18.44: 0 bytes) [T Debian 7.3.4 process_madvise_self_takes_any_advice; the series boundary: 0 bytes
/// on 6.19.6, 7.0.4 and 7.1.13, EINVAL from 7.2.6].
#[rstest]
#[case::v6_18_44((6, 18, 44), "0 bytes")]
#[case::v6_19_6((6, 19, 6), "0 bytes")]
#[case::v7_0_4((7, 0, 4), "0 bytes")]
#[case::v7_1_13((7, 1, 13), "0 bytes")]
#[case::v7_2_6((7, 2, 6), "EINVAL")]
#[case::v7_2_11((7, 2, 11), "EINVAL")]
#[case::v7_3_4((7, 3, 4), "EINVAL")]
fn process_madvise_self_invalid_advice_with_nothing_to_walk_per_release(#[case] version: (u32, u32, u32), #[case] ret: &str) {
    let mut f = KernelFacts::profile("6.18").unwrap();
    f.version = version;
    let p = prog(&format!(
        r#"{{"arena_pages":4,"maps":[{AP4}],"steps":[{{"op":"process_madvise","target":"self_pidfd","iov":[],"advice":99}}]}}"#
    ));
    assert_eq!(last(&KernelModel::from_facts(f), &p).0, ret, "{version:?}");
}

/// PMD THP rules: (ret, AnonHugePages of each VMA, number of shared-zero-page PTEs) after the last step.
/// The arena is two 512-page PMD ranges of 4K pages in THP mode madvise.
fn thp_last(profile: &str, steps: &str) -> (String, Vec<u64>, usize) {
    let m = model(profile);
    let p = prog(&format!(
        r#"{{"arena_pages":1088,"maps":[{{"page":0,"pages":1024,"prot":"rw-","kind":"anon_private"}}],"steps":[{steps}]}}"#
    ));
    let out = simulator::simulate(&m, &ARENA, &p);
    let Some((_, exp)) = out.last() else { panic!("no points") };
    let a = match exp {
        Expect::Allowed(a) => a,
        Expect::Unsupported(w) => return ("unsupported".into(), vec![], w.len()),
    };
    let ret = a.ret.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("|");
    let zero = a.pages.iter().filter(|alts| alts[0].res == Residency::ZeroPage).count();
    (ret, a.vmas.iter().map(|v| v.anon_huge.hi).collect(), zero)
}

const HUGE: &str = r#"{"op":"madvise","page":0,"len_pages":1024,"advice":"HUGEPAGE"}"#;

#[rstest]
// A write fault maps a THP; without VM_HUGEPAGE in madvise mode it is 4K.
#[case::write_maps_thp("6.18", &format!(r#"{HUGE},{{"op":"write","page":5,"fill":7}}"#), "0", vec![512], 0)]
#[case::no_hugepage_is_4k("6.18", r#"{"op":"write","page":5,"fill":7}"#, "0", vec![0], 0)]
// split_folio maps zero-filled subpages to the shared zero page from 6.12, not on 6.1.
#[case::split_zero_remap_6_12("6.12", &format!(r#"{HUGE},{{"op":"write","page":0,"fill":7}},{{"op":"madvise","page":1,"len_pages":1,"advice":"FREE"}}"#), "0", vec![0], 511)]
#[case::split_keeps_subpages_6_1("6.1", &format!(r#"{HUGE},{{"op":"write","page":0,"fill":7}},{{"op":"madvise","page":1,"len_pages":1,"advice":"FREE"}}"#), "0", vec![0], 0)]
// COLLAPSE of a table of zero pages: 6.18 collapses it, 6.12 and 6.1 refuse it (SCAN_PAGE_RO).
#[case::collapse_zero_pages_6_18("6.18", r#"{"op":"write","page":0,"fill":7},{"op":"read","page":1},{"op":"madvise","page":0,"len_pages":1,"advice":"DONTNEED"},{"op":"madvise","page":0,"len_pages":512,"advice":"COLLAPSE"}"#, "0", vec![512], 0)]
#[case::collapse_zero_pages_6_12("6.12", r#"{"op":"write","page":0,"fill":7},{"op":"read","page":1},{"op":"madvise","page":0,"len_pages":1,"advice":"DONTNEED"},{"op":"madvise","page":0,"len_pages":512,"advice":"COLLAPSE"}"#, "EINVAL", vec![0], 1)]
#[case::collapse_zero_pages_6_1("6.1", r#"{"op":"write","page":0,"fill":7},{"op":"read","page":1},{"op":"madvise","page":0,"len_pages":1,"advice":"DONTNEED"},{"op":"madvise","page":0,"len_pages":512,"advice":"COLLAPSE"}"#, "EINVAL", vec![0], 1)]
// COLLAPSE exists from 6.1: 4.5 does not know the advice.
#[case::collapse_unknown_on_4_5("4.5", r#"{"op":"write","page":0,"fill":7},{"op":"madvise","page":0,"len_pages":512,"advice":"COLLAPSE"}"#, "EINVAL", vec![0], 0)]
// DONTNEED of a whole table frees it (PT_RECLAIM, 6.14+ x86_64), so COLLAPSE then finds no table.
#[case::pt_reclaim_6_18("6.18", r#"{"op":"write","page":0,"fill":7},{"op":"madvise","page":0,"len_pages":512,"advice":"DONTNEED"},{"op":"madvise","page":0,"len_pages":512,"advice":"COLLAPSE"}"#, "EINVAL", vec![0], 0)]
#[case::no_pt_reclaim_6_12("6.12", r#"{"op":"write","page":0,"fill":7},{"op":"madvise","page":0,"len_pages":1,"advice":"DONTNEED"},{"op":"write","page":0,"fill":7},{"op":"madvise","page":0,"len_pages":512,"advice":"COLLAPSE"}"#, "0", vec![512], 0)]
fn thp_rule(#[case] profile: &str, #[case] steps: &str, #[case] ret: &str, #[case] anon_huge: Vec<u64>, #[case] zero: usize) {
    assert_eq!(thp_last(profile, steps), (ret.to_string(), anon_huge, zero));
}

/// A write on the huge zero page is only verified on 6.18 (a THP); older kernels answer Unsupported.
#[rstest]
#[case("6.18", false)]
#[case("6.12", true)]
fn write_on_huge_zero_page_per_version(#[case] profile: &str, #[case] unsupported: bool) {
    let (ret, _, _) = thp_last(profile, &format!(r#"{HUGE},{{"op":"read","page":0}},{{"op":"write","page":3,"fill":4}}"#));
    assert_eq!(ret == "unsupported", unsupported, "{ret}");
}

/// A written THP, then mprotect(PROT_NONE) of its whole PMD range: 6.1's smaps counts nothing there (a
/// protnone PMD: follow_trans_huge_pmd gives NULL), 6.12 counts the 512 pages
/// (`smaps_skips_protnone_pmd`; Debian 6.1.192 and 6.12.118 under qemu, x86_64 and arm64).
#[rstest]
#[case::v6_1("6.1", (6, 1, 192), [0, 0, 0])]
#[case::v6_12("6.12", (6, 12, 118), [512, 512, 512])]
#[case::v6_18("6.18", (6, 18, 44), [512, 512, 512])]
fn smaps_of_a_protnone_thp_per_release(#[case] profile: &str, #[case] version: (u32, u32, u32), #[case] want: [u64; 3]) {
    let mut f = KernelFacts::profile(profile).unwrap();
    f.version = version;
    // Debian's kernels default to THP `always` (the guests); the host runs `madvise`.
    f.thp = simulator::kernel::ThpMode::Always;
    let m = KernelModel::from_facts(f);
    let p = case_prog(include_str!("../../cases/corpus/collapse_in_a_prot_none_vma_succeeds.json"));
    let out = simulator::simulate(&m, &ARENA, &p);
    let Expect::Allowed(a) = &out[1].1 else { panic!("unsupported: {:?}", out[1].1) };
    let v = &a.vmas[0];
    assert_eq!([v.rss.lo, v.anon.lo, v.anon_huge.lo], want, "{version:?}");
}

/// MADV_COLLAPSE of one page inside a PMD range (not on its start) after a fault: EINVAL through
/// 6.18 (the wrapped PMD count), 0 on Debian 7.3.4 (`collapse_inverted_range_is_einval`); the series
/// boundary: EINVAL on 6.19.6, 7.0.4 and 7.1.13, 0 from 7.2.6.
#[rstest]
#[case::v6_12((6, 12, 118), "EINVAL")]
#[case::v6_18_44((6, 18, 44), "EINVAL")]
#[case::v6_19_6((6, 19, 6), "EINVAL")]
#[case::v7_0_4((7, 0, 4), "EINVAL")]
#[case::v7_1_13((7, 1, 13), "EINVAL")]
#[case::v7_2_6((7, 2, 6), "0")]
#[case::v7_2_11((7, 2, 11), "0")]
#[case::v7_3_4((7, 3, 4), "0")]
fn collapse_inside_one_pmd_range_per_release(#[case] version: (u32, u32, u32), #[case] ret: &str) {
    let p = case_prog(include_str!("../../cases/corpus/collapse_inside_one_pmd_range_is_einval.json"));
    let out = simulator::simulate(&at(version), &ARENA, &p);
    let Expect::Allowed(a) = &out[1].1 else { panic!("unsupported: {:?}", out[1].1) };
    assert_eq!(a.ret.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("|"), ret, "{version:?}");
}

/// A 6.18 x86_64 model whose CPU has protection keys (`available`), or has none (`first`: the errno of
/// the first pkey_alloc, EINVAL where key 0 leaks as on 6.18.44-fc, ENOSPC as on Debian 6.12).
fn pkey_model(available: bool, first: simulator::observe::Errno) -> KernelModel {
    let mut f = KernelFacts::profile("6.18").unwrap();
    f.pkeys = Some(simulator::kernel::PkeyFacts {
        available,
        alloc_errno: (!available).then_some(simulator::observe::Errno::ENOSPC),
        first_alloc_errno: Some(first),
    });
    KernelModel::from_facts(f)
}

/// The returns of every point, and the last point's VMAs with their keys.
fn pkey_run(m: &KernelModel, steps: &str) -> String {
    let p = prog(&format!(r#"{{"arena_pages":8,"maps":[{{"page":0,"pages":6,"prot":"rw-","kind":"anon_private"}}],"steps":[{steps}]}}"#));
    let out = simulator::simulate(m, &ARENA, &p);
    let mut rets = Vec::new();
    let mut vmas = String::new();
    for (_, e) in &out {
        match e {
            Expect::Allowed(a) => {
                rets.push(a.ret.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("|"));
                vmas = a.vmas.iter().map(|v| format!("[{},{}) {}", v.start, v.end, v.pkey.map_or("-".into(), |k| k.to_string()))).collect::<Vec<_>>().join(" ");
            }
            Expect::Unsupported(w) => rets.push(format!("unsupported: {w}")),
        }
    }
    format!("{} / {vmas}", rets.join(", "))
}

const ALLOC_WD: &str = r#"{"op":"pkey_alloc","rights":"disable_write"}"#;
const ALLOC_AD: &str = r#"{"op":"pkey_alloc","rights":"disable_access"}"#;
const ALLOC_EN: &str = r#"{"op":"pkey_alloc","rights":"enabled"}"#;
const KEY1_ALL: &str = r#"{"op":"pkey_mprotect","page":0,"pages":6,"prot":"rw-","pkey":1}"#;
const SEAL_ALL: &str = r#"{"op":"mseal","page":0,"pages":6}"#;
const DONTNEED_0: &str = r#"{"op":"madvise","page":0,"len_pages":1,"advice":"DONTNEED"}"#;

#[rstest]
#[case::alloc_lowest_free_key_and_reuse(true, &format!(r#"{ALLOC_WD},{ALLOC_AD},{{"op":"pkey_free","pkey":1}},{{"op":"pkey_free","pkey":1}},{ALLOC_EN}"#),
    "key 1, key 2, 0, EINVAL, key 1 / [0,6) 0")]
#[case::key_zero_can_be_freed_with_pku(true, r#"{"op":"pkey_free","pkey":0},{"op":"pkey_alloc","rights":"enabled"}"#, "0, key 0 / [0,6) 0")]
#[case::mprotect_with_a_key_splits_and_merges(true, &format!(r#"{ALLOC_EN},{{"op":"pkey_mprotect","page":1,"pages":2,"prot":"rw-","pkey":1}},{{"op":"pkey_mprotect","page":3,"pages":1,"prot":"rw-","pkey":1}},{{"op":"pkey_mprotect","page":0,"pages":6,"prot":"rw-","pkey":0}}"#),
    "key 1, 0, 0, 0 / [0,6) 0")]
#[case::mprotect_with_a_key_split_layout(true, &format!(r#"{ALLOC_EN},{{"op":"pkey_mprotect","page":1,"pages":2,"prot":"rw-","pkey":1}}"#),
    "key 1, 0 / [0,1) 0 [1,3) 1 [3,6) 0")]
#[case::unallocated_key_is_einval(true, r#"{"op":"pkey_mprotect","page":0,"pages":1,"prot":"rw-","pkey":3}"#, "EINVAL / [0,6) 0")]
#[case::write_disabled_key_faults_writes(true, &format!(r#"{ALLOC_WD},{KEY1_ALL},{{"op":"try_read","page":1}},{{"op":"try_write","page":1,"fill":3}}"#),
    "key 1, 0, 0, SIGSEGV / [0,6) 1")]
#[case::access_disabled_key_faults_reads(true, &format!(r#"{ALLOC_AD},{KEY1_ALL},{{"op":"try_read","page":1}}"#), "key 1, 0, SIGSEGV / [0,6) 1")]
#[case::populate_write_on_write_disabled_key_is_einval(true, &format!(r#"{ALLOC_WD},{KEY1_ALL},{{"op":"madvise","page":0,"len_pages":1,"advice":"POPULATE_WRITE"}},{{"op":"madvise","page":0,"len_pages":1,"advice":"POPULATE_READ"}}"#),
    "key 1, 0, EINVAL, 0 / [0,6) 1")]
#[case::populate_read_on_access_disabled_key_is_einval(true, &format!(r#"{ALLOC_AD},{KEY1_ALL},{{"op":"madvise","page":0,"len_pages":1,"advice":"POPULATE_READ"}}"#),
    "key 1, 0, EINVAL / [0,6) 1")]
#[case::sealed_discard_on_write_disabled_key_is_eperm(true, &format!(r#"{ALLOC_WD},{KEY1_ALL},{SEAL_ALL},{DONTNEED_0}"#), "key 1, 0, 0, EPERM / [0,6) 1")]
#[case::sealed_discard_on_access_disabled_key_is_eperm(true, &format!(r#"{ALLOC_AD},{KEY1_ALL},{SEAL_ALL},{DONTNEED_0}"#), "key 1, 0, 0, EPERM / [0,6) 1")]
#[case::sealed_discard_on_enabled_key_is_allowed(true, &format!(r#"{ALLOC_EN},{KEY1_ALL},{SEAL_ALL},{DONTNEED_0}"#), "key 1, 0, 0, 0 / [0,6) 1")]
#[case::unsealed_discard_on_write_disabled_key_is_allowed(true, &format!(r#"{ALLOC_WD},{KEY1_ALL},{DONTNEED_0}"#), "key 1, 0, 0 / [0,6) 1")]
#[case::sealed_discard_follows_pkey_set(true, &format!(r#"{ALLOC_WD},{KEY1_ALL},{SEAL_ALL},{{"op":"pkey_set","pkey":1,"rights":"enabled"}},{DONTNEED_0},{{"op":"pkey_set","pkey":1,"rights":"disable_write"}},{DONTNEED_0}"#),
    "key 1, 0, 0, 0, 0, 0, EPERM / [0,6) 1")]
#[case::fork_child_inherits_keys_and_rights(true, &format!(r#"{ALLOC_WD},{KEY1_ALL},{{"op":"fork","child":[{{"op":"try_write","page":0,"fill":1}},{ALLOC_EN}]}}"#),
    "key 1, 0, 0, SIGSEGV, key 2, 0 / [0,6) 1")]
#[case::no_keys_first_alloc_takes_key0(false, &format!(r#"{ALLOC_WD},{ALLOC_WD},{{"op":"pkey_free","pkey":0}},{{"op":"pkey_mprotect","page":0,"pages":1,"prot":"rw-","pkey":0}},{{"op":"pkey_mprotect","page":0,"pages":1,"prot":"r--","pkey":-1}}"#),
    "EINVAL, ENOSPC, EINVAL, EINVAL, 0 / [0,1) - [1,6) -")]
#[case::no_keys_pkey_set_is_unsupported(false, r#"{"op":"pkey_set","pkey":1,"rights":"enabled"}"#, "unsupported: pkey_set needs x86 protection keys (PKU with OSPKE); this kernel's CPU has none usable (x86_64, pkey_alloc: ENOSPC) / ")]
fn pkey_rule(#[case] available: bool, #[case] steps: &str, #[case] want: &str) {
    let m = pkey_model(available, simulator::observe::Errno::EINVAL);
    assert_eq!(pkey_run(&m, steps), want);
}

/// Without the key-0 leak (Debian 6.12's mm_pkey_alloc checks arch_pkeys_enabled first): ENOSPC every time.
#[test]
fn pkey_alloc_without_keys_and_without_the_leak_is_enospc() {
    let m = pkey_model(false, simulator::observe::Errno::ENOSPC);
    assert_eq!(pkey_run(&m, &format!("{ALLOC_WD},{ALLOC_EN}")), "ENOSPC, ENOSPC / [0,6) -");
}

/// pkey_free without keys: EPERM on powerpc (its mm_pkey_free returns -1 before the allocation check),
/// EINVAL on x86_64 and arm64 (Debian 7.2.13 powerpc64le-64k under the hash MMU).
#[rstest]
#[case::ppc64le("ppc64le", "EPERM")]
#[case::x86_64("x86_64", "EINVAL")]
#[case::aarch64("aarch64", "EINVAL")]
fn pkey_free_without_keys_per_arch(#[case] arch: &str, #[case] want: &str) {
    let mut f = KernelFacts::profile("6.18").unwrap();
    f.arch = arch.into();
    f.pkeys = Some(simulator::kernel::PkeyFacts {
        available: false,
        alloc_errno: Some(simulator::observe::Errno::ENOSPC),
        first_alloc_errno: Some(simulator::observe::Errno::ENOSPC),
    });
    let m = KernelModel::from_facts(f);
    assert_eq!(pkey_run(&m, r#"{"op":"pkey_free","pkey":2}"#), format!("{want} / [0,6) -"));
}

/// A kernel built with THP where THP was marked unsupported at boot (s390x without EDAT, as under qemu
/// TCG: no THP sysfs): MADV_COLLAPSE is still a valid advice, so a range with no VMA is ENOMEM from the
/// walk, and a range over a faulted anonymous VMA holding a whole PMD range is EINVAL
/// (`thp_disabled_by_hw`; Debian 7.2.13 s390x, case each_advice_from_each_kind_alone_and_up_to_a_hole
/// step 400). With THP available the same VMA collapses (0).
#[rstest]
#[case::hole_thp_off_at_boot(true, r#"{"op":"madvise","page":600,"len_pages":8,"advice":"COLLAPSE"}"#, "ENOMEM")]
#[case::vma_thp_off_at_boot(true, r#"{"op":"write","page":0,"fill":7},{"op":"madvise","page":0,"len_pages":512,"advice":"COLLAPSE"}"#, "EINVAL")]
#[case::vma_thp_available(false, r#"{"op":"write","page":0,"fill":7},{"op":"madvise","page":0,"len_pages":512,"advice":"COLLAPSE"}"#, "0")]
fn collapse_where_thp_is_off_at_boot(#[case] off_at_boot: bool, #[case] steps: &str, #[case] ret: &str) {
    let mut f = KernelFacts::profile("6.18").unwrap();
    f.version = (7, 2, 13);
    if off_at_boot {
        f.thp = simulator::kernel::ThpMode::Unavailable;
        f.pmd_pages = None;
    }
    assert_eq!(f.config.transparent_hugepage, Some(true));
    let m = KernelModel::from_facts(f);
    assert_eq!(m.thp_disabled_by_hw, off_at_boot);
    let p = prog(&format!(r#"{{"arena_pages":1024,"maps":[{{"page":0,"pages":512,"prot":"rw-","kind":"anon_private"}}],"steps":[{steps}]}}"#));
    assert_eq!(last(&m, &p).0, ret);
}

/// VM_SOFTDIRTY on new VMAs follows the run-time probe (`KernelFacts::vma_soft_dirty`: riscv64 without
/// Svrsw60t59b has CONFIG_MEM_SOFT_DIRTY=y and no `sd`), and CONFIG_MEM_SOFT_DIRTY where it was not
/// probed (Debian 7.2.13 riscv64 under qemu `-cpu rv64`: every VMA without `sd`).
#[rstest]
#[case::config_only(None, true)]
#[case::probed_without(Some(false), false)]
#[case::probed_with(Some(true), true)]
fn soft_dirty_on_new_vmas_follows_the_probe(#[case] probed: Option<bool>, #[case] sd: bool) {
    let mut f = KernelFacts::profile("6.12").unwrap();
    assert_eq!(f.config.mem_soft_dirty, Some(true));
    f.vma_soft_dirty = probed;
    let p = prog(&format!(r#"{{"arena_pages":4,"maps":[{AP4}],"steps":[{{"op":"write","page":1,"fill":7}}]}}"#));
    let (_, layout, _) = last(&KernelModel::from_facts(f), &p);
    assert_eq!(layout.split(' ').any(|fl| fl == "sd"), sd, "{layout}");
}

/// A 32-bit kernel (armhf, `uname -m` armv7l): madvise's `size_t` arithmetic wraps at 2^32
/// (KernelModel::word_bits), so lengths past 4 GiB lose their high bits and 0xfffff001 page-aligns to 0
/// [S 6.12 mm/madvise.c:do_madvise; include/linux/mm.h:PAGE_ALIGN]. The same programs on a 64-bit
/// model mean 4 GiB ranges (ENOMEM at the first hole). Cases madvise_len_*_on_a_32_bit_kernel.
#[rstest]
#[case::len_0xfffff001_rounds_to_zero(0xfffff001, "EINVAL", "ENOMEM", "w...")]
#[case::len_0xfffff000_wraps(0xfffff000, "EINVAL", "ENOMEM", "w...")]
#[case::len_4_gib_is_zero(0x1_0000_0000, "0", "ENOMEM", "w...")]
#[case::len_4_gib_plus_a_page_is_one_page(0x1_0000_1000, "0", "ENOMEM", "....")]
#[case::negative_len_wraps_on_both(-4096, "EINVAL", "EINVAL", "w...")]
fn madvise_length_wraps_at_the_kernel_word(#[case] len: i64, #[case] ret32: &str, #[case] ret64: &str, #[case] pages32: &str) {
    let p = prog(&format!(
        r#"{{"arena_pages":4,"maps":[{AP4}],"steps":[{{"op":"write","page":0,"fill":7}},{{"op":"madvise","page":0,"len_bytes":{len},"advice":"DONTNEED"}}]}}"#
    ));
    let mut f = KernelFacts::profile("6.18").unwrap();
    assert_eq!(KernelModel::from_facts(f.clone()).word_bits, 64);
    assert_eq!(last(&KernelModel::from_facts(f.clone()), &p).0, ret64, "64-bit");
    f.arch = "armv7l".into();
    let m32 = KernelModel::from_facts(f);
    assert_eq!(m32.word_bits, 32);
    let (ret, _, pages) = last(&m32, &p);
    assert_eq!((ret.as_str(), pages.as_str()), (ret32, pages32), "32-bit");
}

/// A program written for one word size (`word_bits`) is Unsupported on the other, before it runs.
#[test]
fn word_bits_scenario_is_unsupported_on_the_other_word_size() {
    let p = prog(&format!(r#"{{"word_bits":32,"arena_pages":4,"maps":[{AP4}],"steps":[{{"op":"read","page":0}}]}}"#));
    let (ret, why, _) = last(&model("6.18"), &p);
    assert_eq!(ret, "unsupported");
    assert!(why.contains("32-bit kernel"), "{why}");
    let mut f = KernelFacts::profile("6.18").unwrap();
    f.arch = "armv7l".into();
    assert_eq!(last(&KernelModel::from_facts(f), &p).0, "0");
}

/// On a 32-bit kernel an iov_len with the top bit set is a negative ssize_t: EINVAL for the whole call
/// [S 6.12 lib/iov_iter.c:iovec_from_user/copy_iovec_from_user]. Case
/// process_madvise_iov_len_of_2_gib_is_einval_on_a_32_bit_kernel.
#[test]
fn process_madvise_iov_len_sign_is_the_kernel_word() {
    let p = prog(&format!(
        r#"{{"arena_pages":4,"maps":[{AP4}],"steps":[{{"op":"process_madvise","target":"self_pidfd","iov":[{{"page":0,"len_pages":1}},{{"page":1,"len_bytes":2147483648}}],"advice":"COLD"}}]}}"#
    ));
    let mut f = KernelFacts::profile("6.18").unwrap();
    f.arch = "armv7l".into();
    assert_eq!(last(&KernelModel::from_facts(f), &p).0, "EINVAL");
}

/// An mmap step of MAP_DROPPABLE: EINVAL before 6.11 (unknown map type), EOPNOTSUPP on a 32-bit 6.11+
/// kernel (no VM_DROPPABLE), 0 on a 64-bit one [S 6.12 mm/mmap.c:do_mmap; T 7.2.13 armmp]. Case
/// mmap_droppable_step_is_eopnotsupp_on_a_32_bit_kernel.
#[rstest]
#[case::x86_64_6_18("6.18", "x86_64", "0")]
#[case::armv7l_6_18("6.18", "armv7l", "EOPNOTSUPP")]
#[case::armv7l_6_1("6.1", "armv7l", "EINVAL")]
fn droppable_mmap_step_per_word_size(#[case] profile: &str, #[case] arch: &str, #[case] want: &str) {
    let p = prog(&format!(
        r#"{{"arena_pages":4,"maps":[{AP4}],"steps":[{{"op":"mmap","map":{{"page":1,"pages":2,"prot":"rw-","kind":"anon_droppable"}}}}]}}"#
    ));
    let mut f = KernelFacts::profile(profile).unwrap();
    f.arch = arch.into();
    assert_eq!(last(&KernelModel::from_facts(f), &p).0, want);
}

/// PAGEOUT of a lazy-free PMD-mapped THP (docs/findings.md item 13): where reclaim discards it at PMD
/// level (`lazyfree_thp_pmd_discard`) the clean one goes with its PTE table, so the next write maps a
/// new THP (rss 512, AnonHugePages 512) instead of one 4K page; where a failed discard of a re-dirtied
/// one aborts (`lazyfree_thp_dirty_pmd_aborts`) it stays PMD-mapped (AnonHugePages 512) instead of
/// being split. Each release below was booted with both cases (Debian x86_64 guests, riscv64 7.2.13,
/// the 6.18.44 host); 6.15 and 6.11 are the UNVERIFIED boundaries taken from the source history.
#[rstest]
#[case::v6_1_192((6, 1, 192), [1, 0], [512, 0])]
#[case::v6_11_0((6, 11, 0), [512, 512], [512, 0])]
#[case::v6_12_113((6, 12, 113), [512, 512], [512, 0])]
#[case::v6_12_115_last_old((6, 12, 115), [512, 512], [512, 0])]
#[case::v6_12_117_first_new((6, 12, 117), [1, 0], [512, 0])]
#[case::v6_12_118((6, 12, 118), [1, 0], [512, 0])]
#[case::v6_15_0((6, 15, 0), [512, 512], [512, 512])]
#[case::v6_16_3((6, 16, 3), [512, 512], [512, 512])]
#[case::v6_18_43((6, 18, 43), [512, 512], [512, 512])]
#[case::v6_18_44((6, 18, 44), [1, 0], [512, 0])]
#[case::v6_19_6((6, 19, 6), [512, 512], [512, 512])]
#[case::v7_1_13((7, 1, 13), [512, 512], [512, 512])]
#[case::v7_2_11((7, 2, 11), [512, 512], [512, 512])]
#[case::v7_2_13_last_old((7, 2, 13), [512, 512], [512, 512])]
#[case::v7_3_0_first_new((7, 3, 0), [1, 0], [512, 0])]
#[case::v7_3_4((7, 3, 4), [1, 0], [512, 0])]
fn lazyfree_thp_pageout_per_release(#[case] version: (u32, u32, u32), #[case] clean: [u64; 2], #[case] redirtied: [u64; 2]) {
    let m = at(version);
    for (text, want) in [
        (include_str!("../../cases/corpus/thp_pageout_after_free_discards_the_whole_thp.json"), clean),
        (include_str!("../../cases/corpus/thp_pageout_after_free_and_a_write_splits_pmd_but_keeps_every_page.json"), redirtied),
    ] {
        let p = case_prog(text);
        let out = simulator::simulate(&m, &ARENA, &p);
        let Expect::Allowed(a) = &out.last().unwrap().1 else { panic!("unsupported: {:?}", out.last().unwrap().1) };
        let v = &a.vmas[0];
        assert_eq!([v.rss.lo, v.anon_huge.lo], want, "{version:?}");
        assert_eq!([v.rss.hi, v.anon_huge.hi], want, "{version:?}");
    }
}

/// mremap(MREMAP_MAYMOVE|MREMAP_FIXED) of a source that runs into a hole, grown, onto a mapped
/// destination: EFAULT either way, but before 6.17 the destination was unmapped first
/// (`mremap_checks_first`) [T Debian 6.16.3/6.16.12 (unmapped) and 6.17.8 (kept), series run 2026-12-08].
#[rstest]
#[case::v6_12((6, 12, 118), "[0,4) rw-p rd wr mr mw me ac")]
#[case::last_unmaps_first((6, 16, 12), "[0,4) rw-p rd wr mr mw me ac")]
#[case::first_checks_first((6, 17, 0), "[0,4) rw-p rd wr mr mw me ac; [6,9) rw-p rd wr mr mw me ac")]
#[case::v6_18_44((6, 18, 44), "[0,4) rw-p rd wr mr mw me ac; [6,9) rw-p rd wr mr mw me ac")]
fn mremap_fixed_failure_keeps_the_destination_per_release(#[case] version: (u32, u32, u32), #[case] layout: &str) {
    let p = prog(
        r#"{"arena_pages":12,"maps":[{"page":0,"pages":4,"prot":"rw-","kind":"anon_private"},{"page":6,"pages":3,"prot":"rw-","kind":"anon_private"}],
            "steps":[{"op":"mremap","page":3,"pages":2,"new_pages":3,"to":6}]}"#,
    );
    let (ret, got, _) = last(&at(version), &p);
    assert_eq!((ret.as_str(), got.as_str()), ("EFAULT", layout), "{version:?}");
}

/// MADV_GUARD_INSTALL on a sealed read-only private anonymous VMA: EPERM like the discard advice from
/// 6.16, the first release with guard regions in Debian's archive (`mseal_refuses_guard_install`)
/// [T Debian 6.16.3, 6.16.12, 6.17.8, 6.17.13 and the 6.18.44 host]; 6.13-6.15 are UNVERIFIED.
#[rstest]
#[case::before((6, 15, 11), "0")]
#[case::first((6, 16, 0), "EPERM")]
#[case::v6_16_3((6, 16, 3), "EPERM")]
#[case::v6_18_44((6, 18, 44), "EPERM")]
fn guard_install_on_a_sealed_read_only_anon_vma_per_release(#[case] version: (u32, u32, u32), #[case] ret: &str) {
    let p = prog(
        r#"{"arena_pages":4,"maps":[{"page":0,"pages":4,"prot":"r--","kind":"anon_private"}],
            "steps":[{"op":"mseal","page":0,"pages":4},{"op":"madvise","page":0,"len_pages":4,"advice":"GUARD_INSTALL"}]}"#,
    );
    let (got, _, _) = last(&at(version), &p);
    assert_eq!(got, ret, "{version:?}");
}

/// MREMAP_DONTUNMAP of a whole private anonymous VMA: the kept source loses `ac` on 6.16.y only
/// (`mremap_dontunmap_clears_source_account`) [T Debian 6.16.3/6.16.12 (cleared), 6.17.8 (kept)].
#[rstest]
#[case::v6_12((6, 12, 118), "[0,2) rw-p rd wr mr mw me ac; [8,10) rw-p rd wr mr mw me ac")]
#[case::first_cleared((6, 16, 0), "[0,2) rw-p rd wr mr mw me; [8,10) rw-p rd wr mr mw me ac")]
#[case::last_cleared((6, 16, 12), "[0,2) rw-p rd wr mr mw me; [8,10) rw-p rd wr mr mw me ac")]
#[case::kept_again((6, 17, 0), "[0,2) rw-p rd wr mr mw me ac; [8,10) rw-p rd wr mr mw me ac")]
fn mremap_dontunmap_source_account_per_release(#[case] version: (u32, u32, u32), #[case] layout: &str) {
    let p = prog(
        r#"{"arena_pages":12,"maps":[{"page":0,"pages":2,"prot":"rw-","kind":"anon_private"}],
            "steps":[{"op":"write","page":0,"fill":1},{"op":"mremap","page":0,"pages":2,"new_pages":2,"to":8,"dontunmap":true}]}"#,
    );
    let (ret, got, _) = last(&at(version), &p);
    assert_eq!((ret.as_str(), got.as_str()), ("0", layout), "{version:?}");
}

/// POPULATE_READ of the page past EOF of a grown disk mapping with no PTE table yet: fault-around maps
/// the file's last page only without "mm/memory: do not populate page table entries beyond i_size"
/// (`fault_around_table_needs_folio_before_eof`): in 6.12.y (Debian 6.12.117+), 6.17.9+ (Debian
/// 6.17.13; 6.17.8 lacks it) and 6.18, not in 6.13-6.16 [T series run 2026-12-08].
#[rstest]
#[case::v6_12((6, 12, 118), 0)]
#[case::v6_16_12((6, 16, 12), 1)]
#[case::last_old_6_17((6, 17, 8), 1)]
#[case::first_new_6_17((6, 17, 9), 0)]
#[case::v6_17_13((6, 17, 13), 0)]
#[case::v6_18((6, 18, 0), 0)]
fn fault_around_past_eof_per_release(#[case] version: (u32, u32, u32), #[case] rss: u64) {
    let p = case_prog(include_str!("../../cases/corpus/populate_past_eof_of_a_grown_disk_mapping_in_a_fresh_page_table_maps_nothing.json"));
    let out = simulator::simulate(&at(version), &ARENA, &p);
    let got = match &out.last().expect("points").1 {
        Expect::Allowed(a) => a.vmas.iter().map(|v| v.rss.to_string()).collect::<Vec<_>>().join(" "),
        Expect::Unsupported(w) => panic!("unsupported: {w}"),
    };
    assert_eq!(got, rss.to_string(), "{version:?}");
}

/// A write-sealed memfd: a MAP_FIXED shared writable mmap over an anonymous page is EPERM. Under
/// F_SEAL_WRITE the old page stays on every release (mapping_map_writable before the unmap on 6.1,
/// memfd_check_seals_mmap in do_mmap on 6.12+); under F_SEAL_FUTURE_WRITE alone 6.1 refuses in
/// shmem_mmap after the unmap, leaving a hole [S 6.1 (Debian), 6.12 (Debian) mm/mmap.c; T 6.18.44].
#[rstest]
#[case::write_6_1("6.1", "write", "[0,1) rw-p rd wr mr mw me ac", "w")]
#[case::write_6_18("6.18", "write", "[0,1) rw-p rd wr mr mw me ac", "w")]
#[case::future_write_6_1("6.1", "future_write", "", ".")]
#[case::future_write_6_12("6.12", "future_write", "[0,1) rw-p rd wr mr mw me ac", "w")]
fn sealed_shared_writable_mmap_per_version(#[case] profile: &str, #[case] seal: &str, #[case] layout: &str, #[case] pages: &str) {
    let p = prog(&format!(
        r#"{{"arena_pages":1,"files":[{{"kind":"memfd","pages":1,"sealing":true}}],"maps":[{{"page":0,"pages":1,"prot":"rw-","kind":"anon_private"}}],"steps":[{{"op":"write","page":0,"fill":1}},{{"op":"seal","file":0,"seals":["{seal}"]}},{{"op":"mmap","map":{{"page":0,"pages":1,"prot":"rw-","kind":"file_shared","file":0}}}}]}}"#
    ));
    let (ret, l, pg) = last(&model(profile), &p);
    assert_eq!(ret, "EPERM");
    let l = l.replace(" sd", "");
    assert_eq!((l.as_str(), pg.as_str()), (layout, pages));
}

/// F_ADD_SEALS answers: sealable memfd 0; without MFD_ALLOW_SEALING and on tmpfs EPERM (F_SEAL_SEAL);
/// disk EINVAL; O_RDONLY EPERM first; F_SEAL_WRITE under a read-only MAP_SHARED mapping EBUSY
/// [S 6.18 mm/memfd.c:memfd_add_seals; T 6.18.44 probe].
#[rstest]
#[case::sealable(r#"{"kind":"memfd","pages":1,"sealing":true}"#, "", "0")]
#[case::not_sealable(r#"{"kind":"memfd","pages":1}"#, "", "EPERM")]
#[case::tmpfs(r#"{"kind":"tmpfs","pages":1}"#, "", "EPERM")]
#[case::disk(r#"{"kind":"disk","pages":1}"#, "", "EINVAL")]
#[case::readonly_disk(r#"{"kind":"disk","pages":1,"readonly":true}"#, "", "EPERM")]
#[case::busy(r#"{"kind":"memfd","pages":1,"sealing":true}"#, r#"{"page":0,"pages":1,"prot":"r--","kind":"file_shared","file":0}"#, "EBUSY")]
#[case::private_not_busy(r#"{"kind":"memfd","pages":1,"sealing":true}"#, r#"{"page":0,"pages":1,"prot":"rw-","kind":"file_private","file":0}"#, "0")]
fn add_write_seal(#[case] file: &str, #[case] map: &str, #[case] ret: &str) {
    let p = prog(&format!(
        r#"{{"arena_pages":1,"files":[{file}],"maps":[{map}],"steps":[{{"op":"seal","file":0,"seals":["write"]}}]}}"#
    ));
    assert_eq!(last(&model("6.18"), &p).0, ret);
}

/// smaps LazyFree of a PMD-mapped THP after FREE: exact where measured (6.18: all 512 pages after a read,
/// none after a write, which dirties the PMD), the recorded range elsewhere
/// (`KernelModel::smaps_lazyfree_thp_exact`).
#[rstest]
#[case((6, 18, 44), [512, 512], [0, 0])]
#[case((6, 12, 118), [0, 512], [0, 511])]
#[case((6, 1, 192), [0, 512], [0, 511])]
fn lazyfree_of_a_pmd_thp_per_release(#[case] version: (u32, u32, u32), #[case] read: [u64; 2], #[case] written: [u64; 2]) {
    let m = at(version);
    for (text, want) in [
        (include_str!("../../cases/corpus/thp_free_then_a_read_keeps_the_whole_pmd_lazy_free.json"), read),
        (include_str!("../../cases/corpus/thp_free_then_a_write_to_one_page_dirties_the_whole_pmd.json"), written),
    ] {
        let p = case_prog(text);
        let out = simulator::simulate(&m, &ARENA, &p);
        let Expect::Allowed(a) = &out.last().unwrap().1 else { panic!("unsupported: {:?}", out.last().unwrap().1) };
        let v = &a.vmas[0];
        assert_eq!([v.lazyfree.lo, v.lazyfree.hi], want, "{version:?}");
        assert_eq!([v.rss.lo, v.anon_huge.lo], [512, 512], "{version:?}");
    }
}

/// MERGEABLE then UNMERGEABLE of a sealed anonymous VMA: 6.16.y loses the seal with VM_MERGEABLE, so the
/// later munmap succeeds; 6.12 and 6.17+ keep it (`unmergeable_clears_sealed`, docs/findings.md item 15)
/// [T Debian 6.16.3/6.16.12 (lost), 6.17.8 and the 6.18.44 host (kept)].
#[rstest]
#[case::v6_12((6, 12, 118), "EPERM", "[0,2) rw-p rd wr mr mw me ac sl; [4,6) rw-p rd wr mr mw me ac sl")]
#[case::first_lost((6, 16, 0), "0", "[4,6) rw-p rd wr mr mw me ac sl")]
#[case::last_lost((6, 16, 12), "0", "[4,6) rw-p rd wr mr mw me ac sl")]
#[case::kept_again((6, 17, 0), "EPERM", "[0,2) rw-p rd wr mr mw me ac sl; [4,6) rw-p rd wr mr mw me ac sl")]
fn unmergeable_of_a_sealed_vma_per_release(#[case] version: (u32, u32, u32), #[case] munmap: &str, #[case] layout: &str) {
    let mut p = case_prog(include_str!("../../cases/corpus/unmergeable_of_a_mergeable_sealed_vma_drops_the_seal_on_6_16.json"));
    // Up to the munmap of the first VMA (step 9): its answer, and the layout after it.
    p.steps.truncate(10);
    let (ret, got, _) = last(&at(version), &p);
    assert_eq!((ret.as_str(), got.as_str()), (munmap, layout), "{version:?}");
}
