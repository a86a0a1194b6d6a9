//! Real-kernel facts the host backend must reproduce. Each test runs programs in a fresh worker process
//! (the `madcheck` binary) and checks observations that a broken worker, observer or kernel would get
//! wrong.

use harness::host::{HostRun, Worker};
use simulator::observe::{Content, Errno, Observation, PageObs, Residency, Ret, Signal, VmaBacking};
use simulator::program::{Program, StepId};
use std::path::Path;
use std::time::Duration;

fn worker() -> Worker {
    Worker::spawn(Path::new(env!("CARGO_BIN_EXE_madcheck")), None).expect("spawn worker")
}

fn prog(json: &str) -> Program {
    serde_json::from_str(json).expect("program json")
}

fn run(w: &mut Worker, p: &Program) -> HostRun {
    let r = w.run(p, Duration::from_secs(20)).expect("host run");
    assert!(!r.timed_out, "timed out: {r:?}");
    r
}

fn obs(r: &HostRun, step: u32, child: Option<u32>) -> &Observation {
    &r.points.iter().find(|(id, _)| *id == StepId { step, child, grandchild: None }).unwrap_or_else(|| panic!("no point {step}/{child:?} in {r:#?}")).1
}

fn page(o: &Observation, p: usize) -> PageObs {
    o.pages[p]
}

#[test]
fn dontneed_private_anon_then_read_is_zero_page() {
    let mut w = worker();
    let r = run(
        &mut w,
        &prog(
            r#"{"arena_pages":4,"maps":[{"page":0,"pages":4,"prot":"rw-","kind":"anon_private"}],"steps":[
            {"op":"write","page":1,"fill":7},
            {"op":"madvise","page":1,"len_pages":1,"advice":"DONTNEED"},
            {"op":"read","page":1}]}"#,
        ),
    );
    assert_eq!(r.points.len(), 3);
    let o = obs(&r, 0, None);
    assert_eq!(page(o, 1), PageObs { res: Residency::Present, content: Some(Content::Fill(7)) });
    assert_eq!(page(o, 0), PageObs::ABSENT);
    assert_eq!((o.vmas.len(), o.vmas[0].rss, o.vmas[0].anon), (1, 1, 1));
    let o = obs(&r, 1, None);
    assert_eq!(o.ret, Ret::Ok);
    assert_eq!(page(o, 1), PageObs::ABSENT);
    assert_eq!(o.vmas[0].rss, 0);
    let o = obs(&r, 2, None);
    assert_eq!(page(o, 1), PageObs { res: Residency::ZeroPage, content: Some(Content::Zero) });
    // The zero page is not counted in Rss.
    assert_eq!(o.vmas[0].rss, 0);
}

#[test]
fn unaligned_start_is_einval_and_hole_is_enomem_but_zaps() {
    let mut w = worker();
    let r = run(
        &mut w,
        &prog(
            r#"{"arena_pages":6,"maps":[
              {"page":0,"pages":2,"prot":"rw-","kind":"anon_private"},
              {"page":3,"pages":2,"prot":"rw-","kind":"anon_private"}],"steps":[
            {"op":"madvise","page":0,"offset":1,"len_pages":1,"advice":"DONTNEED"},
            {"op":"write","page":0,"fill":1},
            {"op":"write","page":4,"fill":2},
            {"op":"madvise","page":0,"len_pages":5,"advice":"DONTNEED"}]}"#,
        ),
    );
    assert_eq!(obs(&r, 0, None).ret, Ret::Err(Errno::EINVAL));
    let o = obs(&r, 2, None);
    assert_eq!(page(o, 4).content, Some(Content::Fill(2)));
    let o = obs(&r, 3, None);
    assert_eq!(o.ret, Ret::Err(Errno::ENOMEM));
    assert_eq!(page(o, 0), PageObs::ABSENT);
    assert_eq!(page(o, 4), PageObs::ABSENT);
    assert_eq!(o.vmas.iter().map(|v| (v.start, v.end)).collect::<Vec<_>>(), vec![(0, 2), (3, 5)]);
}

#[test]
fn random_in_the_middle_splits_into_three() {
    let mut w = worker();
    let r = run(
        &mut w,
        &prog(
            r#"{"arena_pages":8,"maps":[{"page":0,"pages":8,"prot":"rw-","kind":"anon_private"}],"steps":[
            {"op":"madvise","page":3,"len_pages":2,"advice":"RANDOM"}]}"#,
        ),
    );
    let o = obs(&r, 0, None);
    assert_eq!(o.ret, Ret::Ok);
    assert_eq!(o.vmas.iter().map(|v| (v.start, v.end)).collect::<Vec<_>>(), vec![(0, 3), (3, 5), (5, 8)]);
    assert!(o.vmas[1].flags.iter().any(|f| f == "rr"), "{:?}", o.vmas[1].flags);
    assert!(!o.vmas[0].flags.iter().any(|f| f == "rr"));
    assert_eq!(o.vmas[0].perms, "rw-p");
    assert_eq!(o.vmas[0].backing, VmaBacking::Anon);
}

#[test]
fn write_to_readonly_page_is_sigsegv_and_the_worker_recovers() {
    let mut w = worker();
    let p = prog(
        r#"{"arena_pages":2,"maps":[{"page":0,"pages":2,"prot":"r--","kind":"anon_private"}],"steps":[
        {"op":"read","page":0},
        {"op":"write","page":0,"fill":9},
        {"op":"read","page":1}]}"#,
    );
    let first = w.pid();
    let r = run(&mut w, &p);
    assert_eq!(r.points.len(), 2, "{r:?}");
    assert_eq!(r.points[1].0, StepId { step: 1, child: None, grandchild: None });
    assert_eq!(r.points[1].1, Observation { ret: Ret::Signal(Signal::SIGSEGV), vmas: vec![], pages: vec![], hugetlb: None, locked_vm: None });
    // The same Worker replaces its process and runs the next program.
    let ok = prog(
        r#"{"arena_pages":2,"maps":[{"page":0,"pages":2,"prot":"rw-","kind":"anon_private"}],"steps":[
        {"op":"write","page":0,"fill":3}]}"#,
    );
    let r = run(&mut w, &ok);
    assert_eq!(page(obs(&r, 0, None), 0).content, Some(Content::Fill(3)));
    assert_ne!(w.pid(), first);
}

#[test]
fn a_program_submitted_to_fork_is_observed_the_same_and_the_worker_stays() {
    // What the runner does for a program the model expects to end by a signal (`submit_with(.., true)`):
    // the same points as in the worker itself, and the worker is not replaced.
    let p = prog(
        r#"{"arena_pages":3,"maps":[{"page":0,"pages":2,"prot":"rw-","kind":"anon_private"},{"page":2,"pages":1,"prot":"r--","kind":"anon_private"}],"steps":[
        {"op":"write","page":0,"fill":5},
        {"op":"madvise","page":0,"len_pages":1,"advice":"DONTNEED"},
        {"op":"read","page":2},
        {"op":"write","page":2,"fill":9},
        {"op":"read","page":1}]}"#,
    );
    let mut plain = worker();
    let expected = run(&mut plain, &p);
    assert_eq!(expected.points.len(), 4, "{expected:?}");
    assert_eq!(obs(&expected, 3, None).ret, Ret::Signal(Signal::SIGSEGV));
    let mut w = worker();
    let first = w.pid();
    for _ in 0..2 {
        w.submit_with(&p, true).expect("submit");
        let r = w.collect(&p, Duration::from_secs(20)).expect("collect");
        assert!(!r.timed_out);
        assert_eq!(r.points, expected.points);
        assert_eq!(w.pid(), first, "a program submitted to fork runs in a child of the worker");
    }
    // A program that ends normally is observed the same forked too.
    let ok = prog(
        r#"{"arena_pages":2,"maps":[{"page":0,"pages":2,"prot":"rw-","kind":"anon_private"}],"steps":[
        {"op":"write","page":0,"fill":3},{"op":"madvise","page":0,"len_pages":2,"advice":"DONTNEED"}]}"#,
    );
    let plain_ok = run(&mut plain, &ok);
    w.submit_with(&ok, true).expect("submit");
    let r = w.collect(&ok, Duration::from_secs(20)).expect("collect");
    assert_eq!(r.points, plain_ok.points);
    assert_eq!(w.pid(), first);
}

#[test]
fn fork_child_lacks_dontfork_range_and_child_signal_is_recorded() {
    let mut w = worker();
    let r = run(
        &mut w,
        &prog(
            r#"{"arena_pages":6,"maps":[{"page":0,"pages":6,"prot":"rw-","kind":"anon_private"}],"steps":[
            {"op":"write","page":0,"fill":5},
            {"op":"madvise","page":2,"len_pages":2,"advice":"DONTFORK"},
            {"op":"fork","child":[{"op":"write","page":0,"fill":6},{"op":"write","page":2,"fill":1},{"op":"read","page":0}]},
            {"op":"read","page":5}]}"#,
        ),
    );
    let ids: Vec<StepId> = r.points.iter().map(|p| p.0).collect();
    let sid = |step, child| StepId { step, child, grandchild: None };
    assert_eq!(ids, vec![sid(0, None), sid(1, None), sid(2, Some(0)), sid(2, Some(1)), sid(2, Some(2)), sid(2, None), sid(3, None)]);
    let c0 = obs(&r, 2, Some(0));
    assert_eq!(c0.vmas.iter().map(|v| (v.start, v.end)).collect::<Vec<_>>(), vec![(0, 2), (4, 6)]);
    assert_eq!(page(c0, 0).content, Some(Content::Fill(5)));
    assert_eq!(page(obs(&r, 2, Some(1)), 0).content, Some(Content::Fill(6)));
    assert_eq!(obs(&r, 2, Some(2)).ret, Ret::Signal(Signal::SIGSEGV));
    let parent = obs(&r, 2, None);
    assert_eq!(parent.ret, Ret::Ok);
    assert_eq!(page(parent, 0).content, Some(Content::Fill(5)));
    assert_eq!(parent.vmas.len(), 3);
    assert!(parent.vmas[1].flags.iter().any(|f| f == "dc"));
}

#[test]
fn shared_file_pages_read_as_file_pages() {
    let mut w = worker();
    for kind in ["disk", "memfd"] {
        let r = run(
            &mut w,
            &prog(&format!(
                r#"{{"arena_pages":4,"files":[{{"kind":"{kind}","pages":6}}],"maps":[
                  {{"page":0,"pages":3,"prot":"rw-","kind":"file_shared","file":0,"offset":2}},
                  {{"page":3,"pages":1,"prot":"r--","kind":"file_private","file":0,"offset":0}}],"steps":[
                {{"op":"read","page":1}},
                {{"op":"read","page":3}},
                {{"op":"mprotect","page":3,"pages":1,"prot":"---"}}]}}"#
            )),
        );
        let o = obs(&r, 0, None);
        assert_eq!(page(o, 1), PageObs { res: Residency::Present, content: Some(Content::FilePage { file: 0, page: 3 }) }, "{kind}");
        // A present PROT_NONE page is read through /proc/self/mem.
        let o = obs(&r, 2, None);
        assert_eq!(page(o, 3).content, Some(Content::FilePage { file: 0, page: 0 }), "{kind}: {o:?}");
        assert_eq!((o.vmas[0].backing, o.vmas[0].offset, o.vmas[0].perms.as_str()), (VmaBacking::File(0), 2, "rw-s"));
        assert_eq!((o.vmas[1].backing, o.vmas[1].perms.as_str()), (VmaBacking::File(0), "---p"));
    }
}

#[test]
fn shared_anon_is_shmem_and_mlock_onfault_sets_lf() {
    let mut w = worker();
    let r = run(
        &mut w,
        &prog(
            r#"{"arena_pages":4,"maps":[{"page":0,"pages":2,"prot":"rw-","kind":"anon_shared"},
                {"page":2,"pages":2,"prot":"rw-","kind":"anon_private"}],"steps":[
            {"op":"mlock","page":2,"pages":2,"onfault":true},
            {"op":"write","page":3,"fill":4},
            {"op":"mmap","map":{"page":0,"pages":1,"prot":"rw-","kind":"anon_private"}},
            {"op":"munmap","page":1,"pages":1}]}"#,
        ),
    );
    let o = obs(&r, 1, None);
    assert_eq!(o.vmas[0].backing, VmaBacking::Shmem);
    assert!(o.vmas[1].flags.iter().any(|f| f == "lo") && o.vmas[1].flags.iter().any(|f| f == "lf"), "{:?}", o.vmas[1]);
    assert_eq!((o.vmas[1].rss, o.vmas[1].locked), (1, 1));
    let o = obs(&r, 3, None);
    assert_eq!(o.vmas.iter().map(|v| (v.start, v.end, v.backing)).collect::<Vec<_>>(), vec![(0, 1, VmaBacking::Anon), (2, 4, VmaBacking::Anon)]);
}

#[test]
fn bad_layout_is_an_infrastructure_error_and_the_worker_goes_on() {
    let mut w = worker();
    // Overlapping layout maps: MAP_FIXED_NOREPLACE refuses the second.
    let bad = prog(
        r#"{"arena_pages":4,"maps":[{"page":0,"pages":2,"prot":"rw-","kind":"anon_private"},
            {"page":1,"pages":2,"prot":"rw-","kind":"anon_private"}],"steps":[{"op":"read","page":0}]}"#,
    );
    let e = w.run(&bad, Duration::from_secs(20)).unwrap_err();
    assert!(e.contains("map 1") && e.contains("File exists"), "{e}");
    let outside = prog(r#"{"arena_pages":4,"maps":[],"steps":[{"op":"madvise","page":-70,"len_pages":10,"advice":"DONTNEED"}]}"#);
    assert!(w.run(&outside, Duration::from_secs(20)).is_err());
    let ok = prog(r#"{"arena_pages":4,"maps":[{"page":0,"pages":2,"prot":"rw-","kind":"anon_private"}],"steps":[{"op":"read","page":0}]}"#);
    assert_eq!(run(&mut w, &ok).points.len(), 1);
}

#[test]
fn detect_host_facts() {
    let f = harness::host::detect::detect_host().expect("detect");
    assert_eq!(f.page_size, 4096);
    assert!(f.release.starts_with("6."), "{}", f.release);
    assert_eq!(f.arch, "x86_64");
    assert!(f.max_map_count > 0);
}

#[test]
fn zero_timeout_kills_the_worker_and_the_next_run_works() {
    let mut w = worker();
    let p = prog(r#"{"arena_pages":2,"maps":[{"page":0,"pages":2,"prot":"rw-","kind":"anon_private"}],"steps":[{"op":"write","page":0,"fill":1}]}"#);
    let before = w.pid();
    let r = w.run(&p, Duration::ZERO).expect("run");
    assert!(r.timed_out);
    assert_ne!(w.pid(), before);
    let r = run(&mut w, &p);
    assert_eq!(page(obs(&r, 0, None), 0).content, Some(Content::Fill(1)));
}

#[test]
fn free_then_cold_counts_lazyfree() {
    let mut w = worker();
    let r = run(
        &mut w,
        &prog(
            r#"{"arena_pages":4,"maps":[{"page":0,"pages":4,"prot":"rw-","kind":"anon_private"}],"steps":[
            {"op":"write","page":0,"fill":1},{"op":"write","page":1,"fill":2},
            {"op":"madvise","page":0,"len_pages":4,"advice":"FREE"},
            {"op":"madvise","page":0,"len_pages":4,"advice":"COLD"}]}"#,
        ),
    );
    // Reclaim anywhere on the host poisons the run; only an unpoisoned run says something.
    if r.poisoned.is_none() {
        let o = obs(&r, 3, None);
        assert_eq!((o.vmas[0].rss, o.vmas[0].anon, o.vmas[0].lazyfree), (2, 2, 2), "{o:?}");
        assert_eq!(page(o, 1).content, Some(Content::Fill(2)));
    }
}

#[test]
fn process_wide_advice_runs_in_a_scenario_child_and_the_worker_stays() {
    let mut w = worker();
    let p = prog(
        r#"{"arena_pages":2,"maps":[{"page":0,"pages":2,"prot":"rw-","kind":"anon_private"}],"steps":[
        {"op":"madvise","page":0,"len_pages":2,"advice":"MERGEABLE"}]}"#,
    );
    let first = w.pid();
    let r = run(&mut w, &p);
    assert_eq!(obs(&r, 0, None).ret, Ret::Ok);
    assert!(obs(&r, 0, None).vmas[0].flags.iter().any(|f| f == "mg"));
    // The program ran in a fork()ed child (registered with ksmd, gone with it): no replacement by exec.
    assert_eq!(w.pid(), first, "a program with a process-wide advice runs in a child of the worker");
    let r = run(&mut w, &prog(r#"{"arena_pages":1,"maps":[],"steps":[{"op":"madvise","page":0,"len_pages":1,"advice":"NORMAL"}]}"#));
    assert_eq!(obs(&r, 0, None).ret, Ret::Err(Errno::ENOMEM));
    assert_eq!(w.pid(), first);
}

#[test]
fn a_scenario_child_killed_by_a_fault_is_recorded_as_a_dead_worker_and_the_worker_stays() {
    let mut w = worker();
    let first = w.pid();
    // mseal makes this a forked program; the write to the read-only page kills the scenario child.
    let p = prog(
        r#"{"arena_pages":4,"maps":[{"page":0,"pages":2,"prot":"r--","kind":"anon_private"}],"steps":[
        {"op":"mseal","page":0,"pages":2},
        {"op":"fork","child":[{"op":"read","page":0}]},
        {"op":"write","page":0,"fill":1},
        {"op":"read","page":1}]}"#,
    );
    let r = run(&mut w, &p);
    assert_eq!(obs(&r, 0, None).ret, Ret::Ok);
    assert_eq!(obs(&r, 1, Some(1)).ret, Ret::Ok);
    assert_eq!(obs(&r, 1, None).ret, Ret::Ok);
    assert_eq!(r.points.last().map(|p| p.0), Some(StepId { step: 2, child: None, grandchild: None }), "{r:?}");
    assert_eq!(obs(&r, 2, None), &Observation { ret: Ret::Signal(Signal::SIGSEGV), vmas: vec![], pages: vec![], hugetlb: None, locked_vm: None });
    assert_eq!(w.pid(), first);
    // The worker's arena is still unmapped: the same layout maps again.
    let r = run(&mut w, &prog(r#"{"arena_pages":2,"maps":[{"page":0,"pages":2,"prot":"rw-","kind":"anon_private"}],"steps":[{"op":"write","page":0,"fill":3}]}"#));
    assert_eq!(page(obs(&r, 0, None), 0).content, Some(Content::Fill(3)));
    assert_eq!(w.pid(), first);
}

#[test]
fn live_child_sees_cow_pages_dies_on_a_guard_and_the_parent_goes_on() {
    let mut w = worker();
    let r = run(
        &mut w,
        &prog(
            r#"{"arena_pages":6,"maps":[{"page":1,"pages":4,"prot":"rw-","kind":"anon_private"}],"steps":[
            {"op":"write","page":1,"fill":1},
            {"op":"madvise","page":2,"len_pages":1,"advice":"GUARD_INSTALL"},
            {"op":"fork_live"},
            {"op":"write","page":1,"fill":9},
            {"op":"in_child","step":{"op":"read","page":1}},
            {"op":"in_child","step":{"op":"write","page":2,"fill":2}},
            {"op":"in_child","step":{"op":"read","page":1}},
            {"op":"write","page":3,"fill":3},
            {"op":"child_exit"}]}"#,
        ),
    );
    let ids: Vec<String> = r.points.iter().map(|(id, _)| id.to_string()).collect();
    assert_eq!(ids, ["0", "1", "2.child0", "2", "3", "4", "5", "6", "7", "8"]);
    // The child kept the pre-fork page while the parent wrote its own copy.
    assert_eq!(page(obs(&r, 4, None), 1).content, Some(Content::Fill(1)));
    assert_eq!(page(obs(&r, 3, None), 1).content, Some(Content::Fill(9)));
    // The inherited guard killed the child; the later in_child point repeats the signal.
    assert_eq!(obs(&r, 5, None).ret, Ret::Signal(Signal::SIGSEGV));
    assert_eq!(obs(&r, 6, None).ret, Ret::Signal(Signal::SIGSEGV));
    let o = obs(&r, 8, None);
    assert_eq!((o.ret, page(o, 1).content, page(o, 3).content), (Ret::Ok, Some(Content::Fill(9)), Some(Content::Fill(3))));
    // The same worker runs the next program.
    let r = run(&mut w, &prog(r#"{"arena_pages":2,"maps":[],"steps":[{"op":"fork_live"},{"op":"child_exit"}]}"#));
    assert_eq!(r.points.len(), 3);
}

#[test]
fn a_live_child_left_alive_is_killed_at_teardown_and_the_worker_goes_on() {
    let mut w = worker();
    let pid = w.pid();
    let p = prog(
        r#"{"arena_pages":4,"maps":[{"page":0,"pages":4,"prot":"rw-","kind":"anon_private"}],"steps":[
        {"op":"write","page":0,"fill":1},
        {"op":"fork_live"},
        {"op":"in_child","step":{"op":"write","page":0,"fill":2}}]}"#,
    );
    for _ in 0..3 {
        let r = run(&mut w, &p);
        assert_eq!(r.points.len(), 4);
        assert_eq!(page(obs(&r, 2, None), 0).content, Some(Content::Fill(2)));
    }
    assert_eq!(w.pid(), pid, "the worker was replaced");
}

#[test]
fn a_parent_that_dies_with_a_live_child_is_recorded_and_replaced() {
    let mut w = worker();
    let r = run(
        &mut w,
        &prog(
            r#"{"arena_pages":4,"maps":[{"page":0,"pages":2,"prot":"r--","kind":"anon_private"}],"steps":[
            {"op":"fork_live"},
            {"op":"write","page":0,"fill":1}]}"#,
        ),
    );
    assert_eq!(obs(&r, 1, None).ret, Ret::Signal(Signal::SIGSEGV));
    let r = run(&mut w, &prog(r#"{"arena_pages":2,"maps":[],"steps":[{"op":"fork_live"},{"op":"child_exit"}]}"#));
    assert_eq!(r.points.len(), 3);
}
