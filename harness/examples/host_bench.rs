//! Throughput of the host backend: observed steps per second through real `Worker`s.
//!
//! `cargo run --release -p harness --example host_bench [-- SECONDS [WORKERS [SHAPE...]]]` needs the
//! `madcheck` binary built alongside (the same profile's target dir). Each worker is pinned to its own
//! CPU. A SHAPE is `rN` (N regions of 4 pages with 1-page holes, 3 pages of each written: mapping count)
//! or `pN` (one N-page region, every page written: arena size); default `r1 r4 r0` (`r1` is one 16-page
//! region, `r0` a program that dies by SIGSEGV). Every step of every shape is observed.

use harness::host::Worker;
use simulator::observe::Ret;
use simulator::program::{AdviceArg, Advice, Backing, MapSpec, Program, Prot, Step};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn region(page: u32, pages: u32) -> MapSpec {
    MapSpec { page, pages, prot: Prot::RW, backing: Backing::AnonPrivate, populate: false, locked: false, noreserve: false }
}

/// `regions` regions (0: a program that dies by SIGSEGV) of 4 pages with 1-page holes (or one 16-page region): write 12 pages, DONTNEED 2,
/// RANDOM on one page (a split), read one page. Every step is observed.
/// `pages` > 0: one region of that many pages, every page written, then the same three steps.
fn program_pages(regions: u32, pages: u32) -> Program {
    if pages > 0 {
        let mut steps: Vec<Step> = (0..pages).map(|p| Step::Write { page: p, fill: (p % 250 + 1) as u8 }).collect();
        let dn = |page: i64, advice| Step::Madvise { page, offset: 0, len_pages: 2, len_bytes: 0, advice: AdviceArg::Named(advice) };
        steps.push(dn(1, Advice::Dontneed));
        steps.push(dn(2, Advice::Random));
        steps.push(Step::Read { page: 1 });
        return Program { arena_pages: pages, files: vec![], maps: vec![region(0, pages)], steps, word_bits: None };
    }
    if regions == 0 {
        // Every scenario kills its worker: the cost of replacing one.
        let ro = MapSpec { prot: Prot::R, ..region(0, 2) };
        return Program { arena_pages: 2, files: vec![], maps: vec![ro], steps: vec![Step::Read { page: 0 }, Step::Write { page: 0, fill: 1 }], word_bits: None };
    }
    let (maps, pages): (Vec<MapSpec>, Vec<u32>) = if regions == 1 {
        (vec![region(0, 16)], (0..12).collect())
    } else {
        ((0..regions).map(|r| region(r * 5, 4)).collect(), (0..regions).flat_map(|r| (0..3).map(move |p| r * 5 + p)).collect())
    };
    let mut steps: Vec<Step> = pages.iter().map(|&p| Step::Write { page: p, fill: (p + 1) as u8 }).collect();
    let dn = |page: i64, advice| Step::Madvise { page, offset: 0, len_pages: 2, len_bytes: 0, advice: AdviceArg::Named(advice) };
    steps.push(dn(1, Advice::Dontneed));
    steps.push(dn(2, Advice::Random));
    steps.push(Step::Read { page: 1 });
    Program { arena_pages: (regions * 5).max(20), files: vec![], maps, steps, word_bits: None }
}

fn exe() -> PathBuf {
    let me = std::env::current_exe().expect("current_exe");
    // target/<profile>/examples/host_bench → target/<profile>/madcheck
    me.parent().and_then(|p| p.parent()).map(|p| p.join("madcheck")).expect("target dir")
}

fn bench(cpu: usize, regions: u32, pages: u32, secs: f64) -> (u64, u64, f64) {
    let mut w = Worker::spawn(&exe(), Some(cpu)).expect("spawn worker");
    let p = program_pages(regions, pages);
    // Warm-up and a correctness check.
    let r = w.run(&p, Duration::from_secs(10)).expect("run");
    assert_eq!(r.points.len(), p.steps.len());
    assert!(regions == 0 || r.points.iter().all(|(_, o)| o.ret == Ret::Ok));
    let t0 = Instant::now();
    let (mut scenarios, mut steps) = (0u64, 0u64);
    while t0.elapsed().as_secs_f64() < secs {
        let r = w.run(&p, Duration::from_secs(10)).expect("run");
        steps += r.points.len() as u64;
        scenarios += 1;
    }
    (scenarios, steps, t0.elapsed().as_secs_f64())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let secs: f64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let workers: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    let shapes: Vec<String> = if args.len() > 2 { args[2..].to_vec() } else { vec!["r1".into(), "r4".into(), "r0".into()] };
    for shape in shapes {
        let n: u32 = shape.get(1..).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("shape {shape:?}: rN or pN"));
        let (regions, pages) = match shape.as_bytes().first() {
            Some(b'r') => (n, 0),
            Some(b'p') if n > 0 => (1, n),
            _ => panic!("shape {shape:?}: rN or pN"),
        };
        let handles: Vec<_> = (0..workers).map(|cpu| std::thread::spawn(move || bench(cpu, regions, pages, secs))).collect();
        let (mut sc, mut st, mut t) = (0, 0, 0f64);
        for h in handles {
            let (a, b, c) = h.join().expect("bench thread");
            sc += a;
            st += b;
            t = t.max(c);
        }
        println!(
            "{shape} workers={workers}: {:.0} scenarios/s, {:.0} observed steps/s ({:.0} per worker, {:.1} µs/step)",
            sc as f64 / t,
            st as f64 / t,
            st as f64 / t / workers as f64,
            t * 1e6 * workers as f64 / st as f64
        );
    }
}
