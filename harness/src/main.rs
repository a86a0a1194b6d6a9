//! `madcheck`: the command-line entry point. `madcheck worker` is the re-executed worker process.
//!
//! Invariant: this is the only place that prints or exits. Exit codes: 0 everything agrees (listed
//! expected divergences allowed), 1 a divergence, stale expected-divergence entry, timeout or
//! infrastructure error, 2 bad usage or bad input.

use harness::cli::{self, Command, RunArgs, UsageError};
use harness::out::render;
use harness::run::report::{self, ExpectedEntry, RunHeader};
use harness::run::judge;
use harness::run::unsupported;
use harness::run::runner::{self, Job, Jobs, Mode, Progress, RunConfig};
use simulator::program::ARENA;
use simulator::{KernelFacts, KernelModel};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn main() {
    // args_os: a non-UTF-8 argument (a file name) is bad input, not a panic.
    let args: Vec<String> = match std::env::args_os().skip(1).map(|a| a.into_string()).collect() {
        Ok(a) => a,
        Err(bad) => {
            eprintln!("madcheck: argument {bad:?} is not valid UTF-8 (madcheck takes UTF-8 paths and values)");
            std::process::exit(2);
        }
    };
    // The worker dispatch stays first: workers must not pay for (or be affected by) anything below.
    if args.first().map(String::as_str) == Some("worker") {
        std::process::exit(harness::host::worker_main());
    }
    // As /init of a bare initramfs: set the machine up, run the suite as a child, report, power off.
    // SAFETY: getpid has no preconditions.
    if unsafe { libc::getpid() } == 1 {
        harness::init::pid1_main();
    }
    // Bad input, not an infrastructure error: workers would each refuse it later.
    if let Err(e) = harness::host::procmem::check_env() {
        eprintln!("madcheck: {e}");
        std::process::exit(2);
    }
    // shrink, repro, record, check: the regression-hunting commands (harness/src/hunt).
    let env = harness::hunt::Env { detect_host, build_model, hugetlb_pool: hugetlb_pool_within };
    if let Some(code) = harness::hunt::main(&args, &env) {
        std::process::exit(code);
    }
    let code = match cli::parse(&args) {
        Err(e) => usage(e),
        Ok(Command::Help) => {
            out(&format!("{}\n{}\n", cli::USAGE, harness::hunt::USAGE));
            0
        }
        Ok(Command::Run(a)) => match harness::host::guest::refuse_destructive_here(a.destructive) {
            Ok(()) => cmd_run(&a),
            Err(e) => bad_input(e),
        },
        Ok(Command::Simulate(a)) => cmd_simulate(&a),
        Ok(Command::Detect) => cmd_detect(),
        Ok(Command::Bench(a)) => cmd_bench(&a),
    };
    std::process::exit(code);
}

/// Print to stdout, ignoring a closed pipe (`madcheck detect | head` must not panic).
fn out(s: &str) {
    let _ = std::io::stdout().lock().write_all(s.as_bytes());
}

fn usage(e: UsageError) -> i32 {
    eprintln!("madcheck: {e}\n(run `madcheck --help` for usage)");
    2
}

/// Bad input (a case file, a facts file): exit 2, naming what was wrong.
fn bad_input(msg: impl std::fmt::Display) -> i32 {
    eprintln!("madcheck: {msg}");
    2
}

/// The repository's expected-divergence list, found next to the sources this binary was built from.
fn default_expected_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../cases/expected_divergences.json")
}

fn load_expected(a: &RunArgs) -> Result<Vec<ExpectedEntry>, String> {
    match &a.expected {
        Some(p) => report::load_expected(p),
        None => {
            let p = default_expected_path();
            // A binary copied away from its checkout has no list; that is not an error.
            if p.exists() {
                report::load_expected(&p)
            } else {
                Ok(Vec::new())
            }
        }
    }
}

/// The scenarios a run/simulate/bench invocation selects: given case files and directories first, then
/// `--scenario` indexes, then `generate(seed, 0..N)` (indexes already listed are not repeated).
fn select_jobs(a: &RunArgs) -> Result<Jobs, String> {
    let mut jobs = Vec::new();
    let mut given = Vec::new();
    for f in &a.cases {
        let s = cases::load_scenario(f).map_err(|e| e.to_string())?;
        given.push((s, format!("cargo xtask run --case {}", f.display())));
    }
    for d in &a.case_dirs {
        let found = cases::load_dir(d).map_err(|e| e.to_string())?;
        if found.is_empty() {
            return Err(format!("--cases {}: no case files (*.json) in it", d.display()));
        }
        for s in found {
            let replay = format!("cargo xtask run --case {}", s.origin());
            given.push((s, replay));
        }
    }
    for (scenario, replay) in given {
        cases::validate(&scenario).map_err(|e| e.to_string())?;
        jobs.push(Job::Given { scenario, replay });
    }
    let mut seen = std::collections::BTreeSet::new();
    for &index in &a.scenarios {
        if seen.insert(index) {
            jobs.push(Job::Generated { seed: a.seed, index, destructive: a.destructive });
        }
    }
    // 0..N follows as a range (`Jobs`), never as a list.
    Ok(Jobs::new(jobs, a.seed, a.destructive, a.generate_count()))
}

/// Facts for the model: from `--profile-facts` (a JSON file of KernelFacts, or a named profile such as
/// `6.12`), else the host's.
fn model_facts(a: &RunArgs, host: &KernelFacts) -> Result<KernelFacts, String> {
    let Some(pf) = &a.profile_facts else { return Ok(host.clone()) };
    let path = Path::new(pf);
    if !path.exists() {
        if let Some(f) = KernelFacts::profile(pf) {
            return Ok(f);
        }
        return Err(format!("--profile-facts: {pf}: no such file, and not a known profile (4.5, 6.1, 6.12, 6.18)"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{pf}: cannot read: {e}"))?;
    // Either a KernelFacts object or what `madcheck detect` prints ({"facts": ..., "model": ...}).
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{pf}: not JSON: {e}"))?;
    let facts = match value.get("facts") {
        Some(f) if value.get("model").is_some() => f.clone(),
        _ => value,
    };
    serde_json::from_value(facts).map_err(|e| format!("{pf}: not a valid KernelFacts JSON (or `madcheck detect` output): {e}"))
}

fn build_model(a: &RunArgs, host: &KernelFacts) -> Result<KernelModel, String> {
    let mut facts = model_facts(a, host)?;
    // Another kernel's facts still run on this machine: its limits and scratch directory are the host's.
    facts.memlock_limit = host.memlock_limit;
    facts.cap_ipc_lock = host.cap_ipc_lock;
    facts.cap_sys_nice = host.cap_sys_nice;
    facts.disk_files_unavailable = host.disk_files_unavailable.clone();
    facts.tmpfs_files_unavailable = host.tmpfs_files_unavailable.clone();
    let mut model = KernelModel::from_facts(facts);
    model.mutations = a.mutate.clone();
    Ok(model)
}

/// The host's kernel facts (with `--kernel-config FILE` when given), or the exit code after saying why
/// they could not be detected: that is an infrastructure error (1), not bad input.
fn detect_host(kernel_config: Option<&Path>) -> Result<KernelFacts, i32> {
    harness::host::detect::detect_host_with(kernel_config).map_err(|e| {
        eprintln!("madcheck: infrastructure error: cannot detect the host kernel: {e}");
        1
    })
}

/// Reserve the hugetlb pool for a run that uses the host (the guard restores `vm.nr_hugepages` when
/// dropped; where no pool can be had, the model is told why and hugetlb scenarios become unsupported),
/// waiting up to `wait` for another madcheck run to release the pool.
fn hugetlb_pool_within(model: &mut KernelModel, wait: Duration) -> harness::host::hugepool::HugePool {
    if model.hugetlb_pages == 0 {
        return harness::host::hugepool::HugePool::default();
    }
    let (pool, why) = harness::host::hugepool::HugePool::prepare_within(harness::host::hugepool::want_unreserved(model.hugetlb_pages), wait);
    for line in &pool.restored {
        eprintln!("madcheck: {line}");
    }
    if let Some(why) = why {
        eprintln!("madcheck: {why}; hugetlb scenarios are unsupported in this run");
        model.facts.hugetlb_unavailable = Some(why);
    }
    pool
}

fn stderr_is_tty() -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(2) == 1 }
}

/// The signal that stopped the run (0: none).
static STOPPED_BY: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn on_sigint(sig: libc::c_int) {
    STOPPED_BY.store(sig, std::sync::atomic::Ordering::Relaxed);
    runner::STOP.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// First ^C stops handing out scenarios (the report keeps what finished); the second kills as usual.
/// SIGTERM (a CI timeout) and SIGHUP (the terminal or ssh session gone) do the same, so the run ends
/// through the normal path: the report is written with `complete: false` and the global knobs restored.
fn install_sigint() {
    // SAFETY: the handler only stores to atomics, which is async-signal-safe.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESETHAND;
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// The name of the signal that stopped the run, if one did.
fn stopped_by() -> Option<String> {
    let name = match STOPPED_BY.load(std::sync::atomic::Ordering::Relaxed) {
        0 => return None,
        libc::SIGINT => "SIGINT".to_string(),
        libc::SIGTERM => "SIGTERM".to_string(),
        libc::SIGHUP => "SIGHUP".to_string(),
        n => format!("signal {n}"),
    };
    Some(name)
}

/// Progress on stderr: a redrawn bar on a terminal, a plain line every few seconds otherwise.
struct ProgressPrinter {
    tty: bool,
    quiet: bool,
    last_line: Instant,
    label: &'static str,
}

impl ProgressPrinter {
    fn new(quiet: bool, label: &'static str) -> Self {
        ProgressPrinter { tty: stderr_is_tty(), quiet, last_line: Instant::now(), label }
    }
    fn show(&mut self, p: &Progress) {
        if self.quiet {
            return;
        }
        let secs = p.elapsed.as_secs_f64().max(1e-9);
        let rate = p.done as f64 / secs;
        let mut err = std::io::stderr().lock();
        if self.tty {
            let width = 30;
            let filled = if p.total == 0 { width } else { p.done * width / p.total };
            let _ = write!(
                err,
                "\r\x1b[2K{} [{}{}] {}/{} {:.0}/s diverge {}",
                self.label,
                "#".repeat(filled),
                ".".repeat(width - filled),
                p.done,
                p.total,
                rate,
                p.divergences
            );
            if p.finished {
                let _ = write!(err, "\r\x1b[2K");
            }
            let _ = err.flush();
        } else if !p.finished && self.last_line.elapsed() >= Duration::from_secs(2) {
            self.last_line = Instant::now();
            let _ = writeln!(err, "{}: {}/{} scenarios, {:.0}/s, {} divergences", self.label, p.done, p.total, rate, p.divergences);
        }
    }
}

/// The run-wide flags that change what a scenario is compared against, for replay commands.
fn replay_extra(a: &RunArgs) -> String {
    let mut s = String::new();
    for m in &a.mutate {
        s += &format!(" --mutate {}", m.name());
    }
    if let Some(p) = &a.profile_facts {
        s += &format!(" --profile-facts {p}");
    }
    if a.timeout_ms != 10_000 {
        s += &format!(" --timeout-ms {}", a.timeout_ms);
    }
    s
}

/// A `--goldens DIR` must hold at least one profile (`DIR/<profile>/host/`): a wrong path would otherwise
/// leave every named case unchecked and the run green.
fn check_golden_root(g: &Path) -> Result<(), String> {
    let rd = std::fs::read_dir(g).map_err(|e| format!("--goldens {}: cannot list: {e}", g.display()))?;
    if rd.filter_map(|e| e.ok()).any(|e| e.path().join("host").is_dir()) {
        Ok(())
    } else {
        Err(format!("--goldens {}: no profile in it (expected <profile>/host/<case>.snap, e.g. golden/snapshots)", g.display()))
    }
}

/// Refuse an unwritable `--report` path before the run, not after it: create (or open) it for appending,
/// which changes nothing in an existing file, and remove it again if it was created.
fn check_writable(p: &Path) -> std::io::Result<()> {
    let existed = p.exists();
    std::fs::OpenOptions::new().append(true).create(true).open(p)?;
    if !existed {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

/// The scenarios an unsupported set recorded from this run speaks for.
fn run_scope(a: &RunArgs, jobs: &Jobs) -> unsupported::Scope {
    let generated = jobs.has_generated();
    let cases = jobs.given().map(|s| s.id.clone()).collect();
    unsupported::Scope { seed: generated.then_some(a.seed), generated: a.generate_count(), cases, destructive: a.destructive }
}

fn cmd_run(a: &RunArgs) -> i32 {
    // Set up before anything else, so a bad value is bad input; dropped (tokens removed) on every return.
    let faults = match harness::run::faults::FaultPlan::from_env() {
        Ok(f) => f,
        Err(e) => return bad_input(e),
    };
    let expected = match load_expected(a) {
        Ok(e) => e,
        Err(e) => return bad_input(e),
    };
    let jobs = match select_jobs(a) {
        Ok(j) => j,
        Err(e) => return bad_input(e),
    };
    let host = match detect_host(a.kernel_config.as_deref()) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let mut model = match build_model(a, &host) {
        Ok(m) => m,
        Err(e) => return bad_input(e),
    };
    let expected = report::for_profile(expected, &model.profile);
    let golden_root = a.goldens.clone().unwrap_or_else(harness::out::goldens::snapshot_root);
    if let Some(g) = &a.goldens {
        if let Err(e) = check_golden_root(g) {
            return bad_input(e);
        }
    }
    if let Some(r) = &a.report {
        if let Err(e) = check_writable(r) {
            return bad_input(format!("--report {}: cannot write there: {e}", r.display()));
        }
    }
    let unsupported_path = unsupported::set_path(&golden_root, &model.profile);
    let unsupported_set = match unsupported::load(&unsupported_path) {
        Ok(s) => s,
        Err(e) => return bad_input(e),
    };
    if let Some(why) = &model.facts.disk_files_unavailable {
        eprintln!("madcheck: {why}");
    }
    if let Some(why) = &model.facts.tmpfs_files_unavailable {
        eprintln!("madcheck: {why}");
    }
    // Dropped when cmd_run returns (also after ^C or SIGTERM, which end the run early).
    let _pool = hugetlb_pool_within(&mut model, Duration::from_secs(a.wait_for_hugepool_s));
    let header = RunHeader {
        kernel: host.release.clone(),
        arch: host.arch.clone(),
        page_size: host.page_size,
        model: model.clone(),
        seed: jobs.has_generated().then_some(a.seed),
        planned: jobs.len(),
    };
    let cfg = RunConfig {
        jobs: a.jobs.unwrap_or_else(runner::available_cpus),
        timeout: Duration::from_millis(a.timeout_ms),
        mode: Mode::Full,
        replay_extra: replay_extra(a),
        // Plain matches are counted and dropped (memory stays flat); KTAP lists every scenario, and a
        // scenario an expected-divergence or unsupported-set entry names must be seen to have run.
        keep: runner::Keep {
            all: a.ktap,
            ids: expected
                .iter()
                .map(|e| e.scenario.clone())
                .chain(unsupported_set.iter().flat_map(|s| s.entries.iter().map(|e| e.scenario.clone())))
                .collect(),
        },
    };
    install_sigint();
    let mut printer = ProgressPrinter::new(a.quiet, "madcheck");
    let mut checkpoint_failed = false;
    let mut checkpoint = |results: &[judge::ScenarioResult], elided: runner::Elided, elapsed: Duration| {
        if let Some(path) = &a.report {
            let r = report::build(&header, results, elided, &expected, &[], elapsed, false, false);
            if let Err(e) = report::write_json(path, &r) {
                if !checkpoint_failed {
                    eprintln!("madcheck: warning: checkpoint report: {e}");
                    checkpoint_failed = true;
                }
            }
        }
    };
    let out = runner::run(
        &model,
        &jobs,
        &cfg,
        &runner::spawn_worker,
        &mut |p| printer.show(p),
        &mut checkpoint,
        Duration::from_secs(5),
    );
    let mut rep = report::build(&header, &out.results, out.elided, &expected, &out.errors, out.elapsed, !out.interrupted, out.interrupted);
    rep.stopped_by = stopped_by();
    if let Some(f) = &faults {
        let done = f.finish();
        eprintln!("madcheck: faults injected ({}): {}", harness::run::faults::INJECT_ENV, done.join("; "));
        rep.fault_injection = Some(done);
    }
    if let Some(sig) = &rep.stopped_by {
        eprintln!(
            "madcheck: stopped by {sig}: {} of {} scenarios have a verdict; the report says complete: false",
            out.summary.scenarios,
            jobs.len()
        );
    }
    // Named cases are also checked against the host goldens recorded for this kernel profile.
    let named: Vec<&cases::Scenario> = jobs.given().collect();
    let goldens = match (out.interrupted, std::env::current_exe()) {
        (false, Ok(exe)) => harness::out::goldens::check_host(&model, &named, &golden_root, &exe, cfg.timeout),
        _ => harness::out::goldens::GoldenCheck::default(),
    };
    harness::out::goldens::add_goldens(&mut rep, &goldens);
    if !out.interrupted {
        let env = unsupported::env_reasons(&model);
        unsupported::add_to_report(
            &mut rep,
            &unsupported_path,
            unsupported_set.as_ref(),
            &out.results,
            a.destructive,
            a.allow_unsupported,
            &env,
        );
    }
    if a.record_unsupported {
        rep.unsupported_record = Some(unsupported::record(&model.profile, run_scope(a, &jobs), &out.results));
    }
    if a.emit_goldens && !out.interrupted {
        let emitted = std::env::current_exe().map_err(|e| e.to_string()).and_then(|exe| {
            harness::out::goldens::emit_host_goldens(&model, &named, &exe, cfg.timeout, &mut std::io::stdout().lock())
        });
        match emitted {
            Ok(0) => {}
            Ok(n) => {
                eprintln!("madcheck: --emit-goldens: {n} cases could not be rendered (MADCHECK-GOLDEN-ERROR lines)");
                rep.exit_code = 1;
            }
            Err(e) => {
                eprintln!("madcheck: infrastructure error: --emit-goldens: {e}");
                rep.exit_code = 1;
            }
        }
    }

    // Print the divergences first, so the summary is the last screen the user sees.
    let mut stdout = std::io::stdout().lock();
    const SHOWN: usize = 20;
    // How many divergence signatures a run shrinks into findings.
    const SHRUNK_MAX: usize = 3;
    if a.ktap {
        // KTAP on stdout, the human summary after it as KTAP diagnostic lines.
        let program_of = |r: &judge::ScenarioResult| jobs.get(r.ordinal).map(|j| j.scenario().program);
        let _ = write!(stdout, "{}", harness::out::ktap::render(&rep, &out.results, &expected, &program_of));
        for l in render::render_summary(&rep, SHOWN).lines() {
            let _ = writeln!(stdout, "# {l}");
        }
    }
    let mut shown = 0;
    for r in out.results.iter().filter(|_| !a.ktap) {
        if let report::Class::Diverge(d) = report::classify(r, &expected) {
            if shown < SHOWN {
                let _ = writeln!(stdout, "{}", render::render_divergence(r, d));
            }
            shown += 1;
        }
    }
    if shown > SHOWN {
        let _ = writeln!(stdout, "({} more divergent scenarios are listed in the report)\n", shown - SHOWN);
    }
    // Every divergence is shrunk to a named case with a C reproducer (one per signature, a few at most).
    if shown > 0 && !out.interrupted && a.findings.as_deref() != Some(std::path::Path::new("none")) {
        let divergent: Vec<cases::Scenario> = out
            .results
            .iter()
            .filter(|r| matches!(report::classify(r, &expected), report::Class::Diverge(_)))
            .filter_map(|r| jobs.get(r.ordinal).map(|j| j.scenario()))
            .collect();
        let dir = a.findings.clone().unwrap_or_else(harness::hunt::default_findings_dir);
        for l in harness::hunt::shrink::shrink_divergences(&model, &host, &divergent, &dir, cfg.timeout, SHRUNK_MAX) {
            let _ = writeln!(stdout, "{l}");
        }
    }
    if !a.ktap {
        let _ = write!(stdout, "{}", harness::out::goldens::render_check(&goldens, SHOWN));
    let _ = write!(stdout, "{}", render::render_summary(&rep, SHOWN));
    let _ = write!(stdout, "{}", harness::out::goldens::render_check_summary(&goldens));
    let _ = write!(stdout, "{}", unsupported::render(&rep, SHOWN));
    }
    let mut code = rep.exit_code;
    if let Some(path) = &a.coverage {
        let m = out.coverage.clone();
        // The cells count what the host kernel did, so they are classified on the host's model, not on a
        // --profile-facts model.
        let summary = harness::coverage::summarize(&KernelModel::from_facts(host.clone()), &m);
        let _ = write!(stdout, "{}", harness::coverage::render(&m, &summary));
        // A reached cell the rules call unreachable means a reason is wrong: that fails the run whatever
        // its size. Reachable cells at zero are printed as gaps; only the default suite is expected to
        // have none (harness/tests/coverage.rs), so they do not change the exit code.
        if summary.wrong() && !out.interrupted {
            eprintln!("madcheck: coverage: a reached cell is classified unreachable or lies outside the cell space");
            code = code.max(1);
        }
        let json = serde_json::to_string_pretty(&harness::coverage::to_json(&m, &summary)).unwrap_or_default();
        match std::fs::write(path, json + "\n") {
            Ok(()) => {
                let _ = writeln!(stdout, "  coverage: {}", path.display());
            }
            Err(e) => {
                eprintln!("madcheck: infrastructure error: write {}: {e}", path.display());
                code = 1;
            }
        }
    }
    if let Some(path) = &a.report {
        match report::write_json(path, &rep) {
            Ok(()) => {
                let _ = writeln!(stdout, "{}  report: {}", if a.ktap { "#" } else { "" }, path.display());
            }
            Err(e) => {
                eprintln!("madcheck: infrastructure error: {e}");
                code = 1;
            }
        }
    }
    code
}

fn one_scenario(a: &RunArgs) -> Result<cases::Scenario, String> {
    if let Some(f) = a.cases.first() {
        let s = cases::load_scenario(f).map_err(|e| e.to_string())?;
        cases::validate(&s).map_err(|e| e.to_string())?;
        return Ok(s);
    }
    Ok(cases::generate_with(a.seed, a.scenarios[0], a.destructive))
}

fn cmd_simulate(a: &RunArgs) -> i32 {
    let scenario = match one_scenario(a) {
        Ok(s) => s,
        Err(e) => return bad_input(e),
    };
    // Simulation needs no kernel when the facts are given; otherwise it models this host.
    let host = match &a.profile_facts {
        Some(_) => KernelFacts::profile("6.18").expect("known profile"),
        None => match detect_host(a.kernel_config.as_deref()) {
            Ok(f) => f,
            Err(code) => return code,
        },
    };
    let model = match build_model(a, &host) {
        Ok(m) => m,
        Err(e) => return bad_input(e),
    };
    let exp = simulator::simulate(&model, &ARENA, &scenario.program);
    out(&format!("scenario {} ({}), model {}\n", scenario.id, scenario.description, model.profile));
    out(&render::render_expectations(&scenario.program, &exp));
    0
}

fn cmd_detect() -> i32 {
    match detect_host(None) {
        Ok(facts) => {
            let model = KernelModel::from_facts(facts.clone());
            // How workers read their own pages in unreadable VMAs (not a kernel fact the model uses).
            let proc_mem = match harness::host::procmem::choose(facts.page_size as usize) {
                Ok((path, why)) => serde_json::json!({ "path": path.name(), "why": why }),
                Err(e) => {
                    eprintln!("madcheck: infrastructure error: {e}");
                    return 1;
                }
            };
            let v = serde_json::json!({ "facts": facts, "model": model, "proc_mem": proc_mem });
            out(&format!("{}\n", serde_json::to_string_pretty(&v).expect("plain data serialises")));
            0
        }
        Err(code) => code,
    }
}

#[derive(serde::Serialize)]
struct Throughput {
    scenarios: u64,
    steps: u64,
    elapsed_s: f64,
    scenarios_per_s: f64,
    steps_per_s: f64,
    errors: u64,
}

fn render_bench(title: &str, rows: &[(&str, Throughput)]) -> String {
    let mut s = format!("madcheck bench: {title}\n");
    s += &format!("{:<14} {:>10} {:>10} {:>9} {:>13} {:>13} {:>7}\n", "", "scenarios", "steps", "seconds", "scenarios/s", "steps/s", "errors");
    for (name, t) in rows {
        s += &format!(
            "{:<14} {:>10} {:>10} {:>9.3} {:>13.0} {:>13.0} {:>7}\n",
            name, t.scenarios, t.steps, t.elapsed_s, t.scenarios_per_s, t.steps_per_s, t.errors
        );
    }
    s
}

fn cmd_bench(a: &RunArgs) -> i32 {
    use harness::host::floor;
    let jobs = match select_jobs(a) {
        Ok(j) => j,
        Err(e) => return bad_input(e),
    };
    if let Some(f) = &a.floor {
        if !f.is_file() {
            return bad_input(format!("--floor {}: no such file (`cargo xtask bench` builds bench/floor/scen_min.c)", f.display()));
        }
    }
    let host = match detect_host(a.kernel_config.as_deref()) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let mut model = KernelModel::from_facts(host.clone());
    // Only a part that uses the host takes the hugetlb pool.
    let uses_host = a.bench_parts.is_empty() || a.bench_parts.iter().any(|p| p != "simulator");
    let _pool = uses_host.then(|| hugetlb_pool_within(&mut model, Duration::from_secs(a.wait_for_hugepool_s)));
    let njobs = a.jobs.unwrap_or_else(runner::available_cpus);
    let ncpu = runner::available_cpus();
    let floor_secs = a.floor_ms.unwrap_or(3000) as f64 / 1000.0;
    let load_before = floor::loadavg();
    let floor_failed = std::cell::Cell::new(false);
    // The floor right before and right after madcheck, on every CPU at once.
    let measure_floor = |when: &str| -> Option<floor::Floor> {
        let exe = a.floor.as_ref()?;
        match floor::run_floor(exe, ncpu, floor_secs) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("madcheck: infrastructure error: the C floor {when}: {e}");
                floor_failed.set(true);
                None
            }
        }
    };
    let floor_before = measure_floor("before");
    let mut failed = false;
    let mut rows = Vec::new();
    for (part, name, mode) in [("host", "host backend", Mode::HostOnly), ("simulator", "simulator", Mode::SimOnly), ("whole", "whole run", Mode::Full)] {
        if !a.bench_parts.is_empty() && !a.bench_parts.iter().any(|p| p == part) {
            continue;
        }
        let cfg = RunConfig { jobs: njobs, timeout: Duration::from_millis(a.timeout_ms), mode, replay_extra: String::new(), keep: runner::Keep::default() };
        let mut printer = ProgressPrinter::new(a.quiet, "bench");
        let out = runner::run(&model, &jobs, &cfg, &runner::spawn_worker, &mut |p| printer.show(p), &mut |_, _, _| {}, Duration::MAX);
        let steps = out.summary.steps;
        let errors = out.errors.len() as u64 + out.summary.infra_errors;
        failed |= errors > 0 || out.not_run > 0;
        let secs = out.elapsed.as_secs_f64().max(1e-9);
        let n = out.summary.scenarios;
        rows.push((
            name,
            Throughput { scenarios: n, steps, elapsed_s: secs, scenarios_per_s: n as f64 / secs, steps_per_s: steps as f64 / secs, errors },
        ));
    }
    let floor_after = measure_floor("after");
    failed |= floor_failed.get();
    let rss_kb = floor::peak_rss_kb();
    let load_after = floor::loadavg();
    let mut text = render_bench(&format!("{} scenarios (seed {}), {} jobs, {} {}", jobs.len(), a.seed, njobs, host.release, host.arch), &rows);
    text += &format!("peak RSS of the runner (all three parts): {:.1} MB\n", rss_kb as f64 / 1024.0);
    let floor_mean = match (&floor_before, &floor_after) {
        (Some(b), Some(f)) => Some((b.total + f.total) / 2.0),
        _ => None,
    };
    if let (Some(b), Some(f), Some(mean)) = (&floor_before, &floor_after, floor_mean) {
        text += &format!(
            "C floor (scen_min, worker L4 lean, {ncpu} CPUs, {floor_secs} s each): before {:.0}, after {:.0}, mean {:.0} observed calls/s\n",
            b.total, f.total, mean
        );
        for (name, t) in &rows {
            text += &format!("ratio to the floor, {name}: {:.2}\n", t.steps_per_s / mean);
        }
    }
    text += &format!("load average: before {load_before}, after {load_after}\n");
    out(&text);
    if let Some(path) = &a.report {
        let ratio = |t: &Throughput| floor_mean.map(|m| t.steps_per_s / m);
        let row = |name: &str| rows.iter().find(|(n, _)| *n == name).map(|(_, t)| t);
        let v = serde_json::json!({
            "kernel": host.release, "arch": host.arch, "page_size": host.page_size, "profile": model.profile,
            "seed": a.seed, "jobs": njobs,
            "host": row("host backend"), "simulator": row("simulator"), "whole_run": row("whole run"),
            "floor_before": floor_before, "floor_after": floor_after, "floor_mean": floor_mean,
            "ratio": { "host": row("host backend").and_then(ratio), "simulator": row("simulator").and_then(ratio), "whole_run": row("whole run").and_then(ratio) },
            "peak_rss_kb": rss_kb,
            "loadavg": { "before": load_before, "after": load_after },
        });
        if let Err(e) = report::write_json(path, &v) {
            eprintln!("madcheck: infrastructure error: {e}");
            return 1;
        }
    }
    i32::from(failed)
}
