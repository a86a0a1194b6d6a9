//! Throughput of the host backend: observed steps per second through real `Worker`s.
//!
//! `cargo run --release -p harness --example host_bench [-- SECONDS [WORKERS]]` needs the `madcheck`
//! binary built alongside (the same profile's target dir). Each worker is pinned to its own CPU.

use harness::host::Worker;
use simulator::observe::Ret;
use simulator::program::{AdviceArg, Advice, Backing, MapSpec, Program, Prot, Step};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn region(page: u32, pages: u32) -> MapSpec {
    MapSpec { page, pages, prot: Prot::RW, backing: Backing::AnonPrivate, populate: false, locked: false }
}

/// `regions` regions (0: a program that dies by SIGSEGV) of 4 pages with 1-page holes (or one 16-page region): write 12 pages, DONTNEED 2,
/// RANDOM on one page (a split), read one page. Every step is observed.
fn program(regions: u32) -> Program {
    if regions == 0 {
        // Every scenario kills its worker: the cost of replacing one.
        let ro = MapSpec { prot: Prot::R, ..region(0, 2) };
        return Program { arena_pages: 2, files: vec![], maps: vec![ro], steps: vec![Step::Read { page: 0 }, Step::Write { page: 0, fill: 1 }] };
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
    Program { arena_pages: 20, files: vec![], maps, steps }
}

fn exe() -> PathBuf {
    let me = std::env::current_exe().expect("current_exe");
    // target/<profile>/examples/host_bench → target/<profile>/madcheck
    me.parent().and_then(|p| p.parent()).map(|p| p.join("madcheck")).expect("target dir")
}

fn bench(cpu: usize, regions: u32, secs: f64) -> (u64, u64, f64) {
    let mut w = Worker::spawn(&exe(), Some(cpu)).expect("spawn worker");
    let p = program(regions);
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
    for regions in [1, 4, 0] {
        let handles: Vec<_> = (0..workers).map(|cpu| std::thread::spawn(move || bench(cpu, regions, secs))).collect();
        let (mut sc, mut st, mut t) = (0, 0, 0f64);
        for h in handles {
            let (a, b, c) = h.join().expect("bench thread");
            sc += a;
            st += b;
            t = t.max(c);
        }
        println!(
            "regions={regions} workers={workers}: {:.0} scenarios/s, {:.0} observed steps/s ({:.0} per worker, {:.1} µs/step)",
            sc as f64 / t,
            st as f64 / t,
            st as f64 / t / workers as f64,
            t * 1e6 * workers as f64 / st as f64
        );
    }
}
