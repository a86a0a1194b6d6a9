//! The runner: schedules scenarios onto host workers and the simulator, compares them point by point,
//! and gathers the results: the ones a report lists in full (`Keep`), the plain matches as counts and
//! coverage tallies, so a run of any length holds memory of the size of its findings.
//!
//! Invariant: one OS thread per job, each owning exactly one host backend (a `madcheck worker` process),
//! pulling scenario indexes from one shared atomic counter, so every scenario runs exactly once and
//! results never depend on scheduling. Judging (`judge::judge`) is a pure function of the model's expectations
//! and the host's observations; everything impure (processes, clocks, threads) stays in `run`.
//! The runner never prints: progress and checkpoints go through callbacks that `main` owns.

use crate::host::HostRun;
use crate::run::judge::{hugetlb_refusal, judge, Outcome, ScenarioResult};
use cases::Scenario;
use simulator::observe::Expect;
use simulator::program::{Program, StepId, ARENA};
use simulator::KernelModel;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Set (e.g. by a SIGINT handler) to stop handing out new scenarios; results gathered so far are kept.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// How many times a poisoned host run is retried before the scenario is counted as poisoned.
pub const POISON_RETRIES: usize = 3;

/// Where a scenario comes from. Generated ones are built inside the job threads, so a 10,000-scenario run
/// does not generate everything up front on one core.
#[derive(Clone, Debug)]
pub enum Job {
    /// `destructive`: `cases::generate_with(seed, index, true)` (only in a disposable guest).
    Generated { seed: u64, index: u64, destructive: bool },
    Given { scenario: Scenario, replay: String },
}

impl Job {
    pub fn scenario(&self) -> Scenario {
        match self {
            Job::Generated { seed, index, destructive } => cases::generate::generate_with(*seed, *index, *destructive),
            Job::Given { scenario, .. } => scenario.clone(),
        }
    }
    /// The exact command that reruns this one scenario.
    pub fn replay(&self) -> String {
        match self {
            Job::Generated { seed, index, destructive: false } => format!("cargo xtask run --seed {seed} --scenario {index}"),
            // Destructive scenarios run only in a disposable guest: replay in one of this kernel.
            Job::Generated { seed, index, destructive: true } => {
                format!("cargo xtask qemu --kernel <this kernel> --seed {seed} --scenario {index} --destructive")
            }
            Job::Given { replay, .. } => replay.clone(),
        }
    }
}

/// The scenarios of a run, in order: the listed jobs (named cases, `--scenario` indexes), then generated
/// scenarios `0..count` of one seed without the indexes already listed. The generated part is a range,
/// never a list, so a run of a million scenarios holds no per-scenario job.
#[derive(Clone, Debug, Default)]
pub struct Jobs {
    listed: Vec<Job>,
    seed: u64,
    destructive: bool,
    count: u64,
    /// Indexes below `count` that `listed` already holds, sorted.
    skip: Vec<u64>,
}

impl Jobs {
    /// `listed` first, then `generate(seed, 0..count)` without the generated indexes `listed` holds for
    /// the same seed and mode.
    pub fn new(listed: Vec<Job>, seed: u64, destructive: bool, count: u64) -> Jobs {
        let mut skip: Vec<u64> = listed
            .iter()
            .filter_map(|j| match j {
                Job::Generated { seed: s, index, destructive: d } if *s == seed && *d == destructive && *index < count => Some(*index),
                _ => None,
            })
            .collect::<BTreeSet<u64>>()
            .into_iter()
            .collect();
        skip.dedup();
        Jobs { listed, seed, destructive, count, skip }
    }
    pub fn from_vec(listed: Vec<Job>) -> Jobs {
        Jobs { listed, ..Jobs::default() }
    }
    pub fn len(&self) -> usize {
        self.listed.len() + (self.count - self.skip.len() as u64) as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Job `i` of the run.
    pub fn get(&self, i: usize) -> Option<Cow<'_, Job>> {
        if let Some(j) = self.listed.get(i) {
            return Some(Cow::Borrowed(j));
        }
        let mut index = (i - self.listed.len()) as u64;
        // The k-th index of 0..count that is not in `skip` (sorted).
        for &s in &self.skip {
            if s <= index {
                index += 1;
            } else {
                break;
            }
        }
        (index < self.count).then_some(Cow::Owned(Job::Generated { seed: self.seed, index, destructive: self.destructive }))
    }
    /// Whether any generated scenario runs.
    pub fn has_generated(&self) -> bool {
        self.count > self.skip.len() as u64 || self.listed.iter().any(|j| matches!(j, Job::Generated { .. }))
    }
    /// The named cases, in order.
    pub fn given(&self) -> impl Iterator<Item = &Scenario> {
        self.listed.iter().filter_map(|j| if let Job::Given { scenario, .. } = j { Some(scenario) } else { None })
    }
}

/// Which results a run keeps whole. A plain match (no re-run) is counted, its coverage tallied, and then
/// dropped, so memory stays flat however many scenarios run; every result a report lists is kept.
#[derive(Clone, Debug, Default)]
pub struct Keep {
    /// Keep every result (KTAP lists every scenario).
    pub all: bool,
    /// Keep the results of these scenario ids even when they match: an expected-divergence or
    /// unsupported-set entry names them, and a match makes that entry stale.
    pub ids: BTreeSet<String>,
}

/// What a run counted of the plain matches it did not keep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Elided {
    pub matched: u64,
    pub steps: u64,
}

/// Counts over every result of a run, kept or not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub scenarios: u64,
    pub steps: u64,
    pub infra_errors: u64,
}

/// What the job threads do with each scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Host and simulator, compared.
    Full,
    /// Host backend only (bench).
    HostOnly,
    /// Simulator only (bench); no workers are spawned.
    SimOnly,
}

/// The host side of the seam: what the runner needs from a worker.
pub trait HostBackend {
    fn submit(&mut self, prog: &Program) -> Result<(), String>;
    /// `submit`, asking for the program to run in a fork()ed child of the worker (`Worker::submit_with`):
    /// a cheaper way for a program that ends by a signal than replacing the killed worker.
    fn submit_forked(&mut self, prog: &Program) -> Result<(), String> {
        self.submit(prog)
    }
    fn collect(&mut self, prog: &Program, timeout: Duration) -> Result<HostRun, String>;
}

impl HostBackend for crate::host::Worker {
    fn submit(&mut self, prog: &Program) -> Result<(), String> {
        crate::host::Worker::submit(self, prog)
    }
    fn submit_forked(&mut self, prog: &Program) -> Result<(), String> {
        crate::host::Worker::submit_with(self, prog, true)
    }
    fn collect(&mut self, prog: &Program, timeout: Duration) -> Result<HostRun, String> {
        crate::host::Worker::collect(self, prog, timeout)
    }
}

/// Spawn the real worker for job thread `j`: re-execute this binary, pinned to CPU `j % ncpu`.
pub fn spawn_worker(j: usize) -> Result<Box<dyn HostBackend>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the madcheck executable: {e}"))?;
    let cpu = j % available_cpus();
    crate::host::Worker::spawn(&exe, Some(cpu))
        .map(|w| Box::new(w) as Box<dyn HostBackend>)
        .map_err(|e| format!("cannot start worker {j} ({}): {e}", exe.display()))
}

pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

pub struct RunConfig {
    pub jobs: usize,
    pub timeout: Duration,
    pub mode: Mode,
    /// Run-wide flags a replay needs too (` --mutate X`, ` --profile-facts F`), appended to every replay
    /// command so it reproduces the same model.
    pub replay_extra: String,
    pub keep: Keep,
}

/// A snapshot for the progress display.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    pub divergences: u64,
    pub steps: u64,
    pub elapsed: Duration,
    pub finished: bool,
}

/// Everything a run produced. `results` are in job order: the results `RunConfig::keep` keeps (every
/// one that is not a plain match, and the listed ids); `elided` counts the others.
#[derive(Debug)]
pub struct RunOutcome {
    pub results: Vec<ScenarioResult>,
    pub elided: Elided,
    pub summary: Summary,
    /// The semantic-coverage cells of every result, with the number of scenarios that reached each.
    pub coverage: BTreeMap<crate::coverage::Cell, u64>,
    /// Infrastructure errors not tied to one scenario (a worker that could not be started).
    pub errors: Vec<String>,
    /// Scenarios never run (interrupted, or every job thread lost its worker).
    pub not_run: usize,
    pub interrupted: bool,
    pub elapsed: Duration,
}

/// The results a run has gathered so far.
#[derive(Default)]
struct Gathered {
    kept: Vec<ScenarioResult>,
    elided: Elided,
    summary: Summary,
    coverage: BTreeMap<crate::coverage::Cell, u64>,
}

impl Gathered {
    fn add(&mut self, mut r: ScenarioResult, keep: &Keep) {
        self.summary.scenarios += 1;
        self.summary.steps += r.steps;
        self.summary.infra_errors += u64::from(matches!(r.outcome, Outcome::InfraError(_)));
        for c in r.coverage.drain(..) {
            *self.coverage.entry(c).or_insert(0) += 1;
        }
        if keep.all || !matches!(r.outcome, Outcome::Match) || r.rerun.is_some() || keep.ids.contains(&r.id) {
            self.kept.push(r);
        } else {
            self.elided.matched += 1;
            self.elided.steps += r.steps;
        }
    }
}

/// Run every job. `progress` is called about ten times a second and once at the end; `checkpoint` gets
/// the results gathered so far (the kept ones and the count of the others) about every
/// `checkpoint_every`, so a report survives a crash or ^C.
pub fn run(
    model: &KernelModel,
    jobs: &Jobs,
    cfg: &RunConfig,
    spawn: &(dyn Fn(usize) -> Result<Box<dyn HostBackend>, String> + Sync),
    progress: &mut dyn FnMut(&Progress),
    checkpoint: &mut dyn FnMut(&[ScenarioResult], Elided, Duration),
    checkpoint_every: Duration,
) -> RunOutcome {
    let start = Instant::now();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let divergences = AtomicU64::new(0);
    let steps = AtomicU64::new(0);
    // No more threads (and worker processes) than scenarios.
    let nthreads = cfg.jobs.max(1).min(jobs.len());
    let live_threads = AtomicUsize::new(nthreads);
    let results: Mutex<Gathered> = Mutex::new(Gathered::default());
    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let snapshot = |finished: bool| Progress {
        done: done.load(Ordering::Relaxed),
        total: jobs.len(),
        divergences: divergences.load(Ordering::Relaxed),
        steps: steps.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
        finished,
    };

    std::thread::scope(|s| {
        for j in 0..nthreads {
            let (next, done, divergences, steps, results, errors, live) =
                (&next, &done, &divergences, &steps, &results, &errors, &live_threads);
            s.spawn(move || {
                if cfg.mode != Mode::SimOnly {
                    crate::host::sys::no_wakeup_preemption();
                }
                let mut backend = match cfg.mode {
                    Mode::SimOnly => None,
                    _ => match spawn(j) {
                        Ok(b) => Some(b),
                        Err(e) => {
                            errors.lock().unwrap().push(e);
                            live.fetch_sub(1, Ordering::Relaxed);
                            return;
                        }
                    },
                };
                loop {
                    if STOP.load(Ordering::Relaxed) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let r = run_one(model, &job, i, cfg, backend.as_deref_mut());
                    if matches!(r.outcome, Outcome::Diverge(_)) {
                        divergences.fetch_add(1, Ordering::Relaxed);
                    }
                    steps.fetch_add(r.steps, Ordering::Relaxed);
                    results.lock().unwrap_or_else(|p| p.into_inner()).add(r, &cfg.keep);
                    done.fetch_add(1, Ordering::Relaxed);
                }
                live.fetch_sub(1, Ordering::Relaxed);
            });
        }
        // The calling thread only watches: progress ~10×/s, checkpoints now and then.
        // It polls finely so a short run is not padded to a whole progress tick.
        let mut last_checkpoint = Instant::now();
        let mut last_tick = Instant::now();
        while live_threads.load(Ordering::Relaxed) > 0 {
            std::thread::sleep(Duration::from_millis(5));
            if last_tick.elapsed() < Duration::from_millis(100) {
                continue;
            }
            last_tick = Instant::now();
            if cfg.mode != Mode::SimOnly {
                crate::host::reap_orphans();
            }
            progress(&snapshot(false));
            if last_checkpoint.elapsed() >= checkpoint_every {
                let (copy, elided) = {
                    let g = results.lock().unwrap_or_else(|p| p.into_inner());
                    (g.kept.clone(), g.elided)
                };
                checkpoint(&copy, elided, start.elapsed());
                last_checkpoint = Instant::now();
            }
        }
    });
    progress(&snapshot(true));
    let Gathered { kept: mut results, elided, summary, coverage } = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by_key(|r| r.ordinal);
    RunOutcome {
        not_run: jobs.len() - summary.scenarios as usize,
        results,
        elided,
        summary,
        coverage,
        errors: errors.into_inner().unwrap_or_else(|p| p.into_inner()),
        interrupted: STOP.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
    }
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

/// One scenario, end to end. Panics in the generator or simulator become infrastructure errors of this
/// scenario, so one model bug does not take the run down.
fn run_one(
    model: &KernelModel,
    job: &Job,
    ordinal: usize,
    cfg: &RunConfig,
    backend: Option<&mut (dyn HostBackend + 'static)>,
) -> ScenarioResult {
    let replay = job.replay() + &cfg.replay_extra;
    let scenario = match catch_unwind(AssertUnwindSafe(|| job.scenario())) {
        Ok(s) => s,
        Err(p) => {
            let id = match job {
                Job::Generated { seed, index, .. } => format!("gen-{seed}-{index}"),
                Job::Given { scenario, .. } => scenario.id.clone(),
            };
            let outcome = Outcome::InfraError(format!("generating the scenario panicked: {}", panic_message(p)));
            return ScenarioResult { ordinal, id, replay, steps: 0, outcome, coverage: Vec::new(), rerun: None };
        }
    };
    let prog = &scenario.program;
    let result = |steps: u64, outcome: Outcome| ScenarioResult {
        ordinal,
        id: scenario.id.clone(),
        replay: replay.clone(),
        steps,
        outcome,
        coverage: Vec::new(),
        rerun: None,
    };
    let simulate = || {
        catch_unwind(AssertUnwindSafe(|| simulator::simulate(model, &ARENA, prog)))
            .map_err(|p| format!("the simulator panicked: {}", panic_message(p)))
    };

    // A program this environment cannot set up (a disk file without a usable scratch directory, a
    // MAP_LOCKED layout past RLIMIT_MEMLOCK) never goes to a worker: the model answers it Unsupported.
    if backend.is_some() {
        if let Some(why) = simulator::environment_refusal(model, &ARENA, prog) {
            let what = if Some(&why) == model.facts.disk_files_unavailable.as_ref() {
                "disk file"
            } else if Some(&why) == model.facts.tmpfs_files_unavailable.as_ref() {
                "tmpfs file"
            } else if why.starts_with("pkey_set") {
                "pkey_set"
            } else if why.contains("(word_bits)") {
                "word size"
            } else if why.starts_with("a MAP_DROPPABLE layout") {
                "droppable layout"
            } else {
                "mlock"
            };
            return result(0, Outcome::Unsupported { reason: why, advice: what.into() });
        }
    }
    // hugetlb scenarios observe the global HugePages_* counters, so they run one at a time; and some are
    // never run on the host at all.
    let huge = prog.uses_hugetlb();
    if huge && backend.is_some() {
        if let Some((why, what)) = hugetlb_refusal(model, prog, crate::host::guest::disposable_guest()) {
            return result(0, Outcome::Unsupported { reason: why, advice: what.into() });
        }
    }
    let _one_at_a_time = (huge && backend.is_some()).then(|| HUGETLB_ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner()));

    let Some(backend) = backend else {
        // Simulator only.
        return match simulate() {
            Ok(exp) => result(exp.len() as u64, Outcome::Match),
            Err(e) => result(0, Outcome::InfraError(e)),
        };
    };

    let mut expect: Option<Result<Vec<(StepId, Expect)>, String>> = None;
    let mut last_poison = String::new();
    let mut suspect: Option<String> = None;
    let mut poisoned_runs = 0;
    while poisoned_runs <= POISON_RETRIES {
        let collapsed_before = crate::host::khugepaged::pages_collapsed();
        // The model runs first (it is deterministic, so once is enough): a program it expects to end the
        // worker by a signal runs in a fork()ed child of the worker, so a fork replaces the exec of a new
        // worker (about 2.5 ms of CPU). Only where the program goes changes, not what is observed.
        if cfg.mode == Mode::Full && expect.is_none() {
            expect = Some(simulate());
        }
        let submitted = match &expect {
            Some(Ok(exp)) if expects_worker_signal(prog, exp) => backend.submit_forked(prog),
            _ => backend.submit(prog),
        };
        if let Err(e) = submitted {
            return result(0, Outcome::InfraError(format!("submit: {e}")));
        }
        let host = match backend.collect(prog, cfg.timeout) {
            Ok(h) => h,
            // A worker that exited mid-scenario (or sent garbage) may have been broken from outside: the
            // scenario runs once more on the fresh worker the pool started; a second failure is the verdict.
            Err(e) if suspect.is_none() => {
                suspect = Some(format!("the worker failed: {e}"));
                continue;
            }
            Err(e) => return result(0, Outcome::InfraError(format!("collect: {e}"))),
        };
        let steps = host.points.len() as u64;
        if cfg.mode == Mode::HostOnly {
            return result(steps, Outcome::Match);
        }
        if let Some(why) = &host.poisoned {
            last_poison = why.clone();
            poisoned_runs += 1;
            continue;
        }
        let mut r = match expect.as_ref().expect("simulated above") {
            Ok(exp) => result(steps, judge(prog, exp, &host, cfg.timeout)),
            Err(e) => result(steps, Outcome::InfraError(e.clone())),
        };
        // A divergence by a signal the model did not expect, or by a hang, may come from outside (a
        // worker killed or stopped by someone else; the pool has replaced it by now): run it once more on
        // the fresh worker. Only a signal or hang that happens again is the kernel's.
        // So may one during which khugepaged collapsed a range (`host/khugepaged.rs`).
        if suspect.is_none() {
            let why = outside_event(&r.outcome, &host).or_else(|| {
                matches!(r.outcome, Outcome::Diverge(_))
                    .then(|| crate::host::khugepaged::moved(collapsed_before, crate::host::khugepaged::pages_collapsed()))
                    .flatten()
            });
            if let Some(why) = why {
                suspect = Some(why);
                continue;
            }
        }
        r.rerun = suspect.take().filter(|_| !matches!(r.outcome, Outcome::Diverge(_)));
        r.coverage = crate::coverage::hits(prog, &host.points, model.page_size);
        return r;
    }
    result(0, Outcome::Poisoned(last_poison))
}

/// Does the model allow a signal as the answer of one of the program's own steps that would end the
/// worker (not a fork or live child's, which end another process, and not a `try_read`/`try_write`,
/// whose fault the worker catches)?
fn expects_worker_signal(prog: &Program, exp: &[(StepId, Expect)]) -> bool {
    exp.iter().any(|(id, e)| {
        id.child.is_none()
            && !matches!(prog.steps.get(id.step as usize), Some(simulator::Step::TryRead { .. } | simulator::Step::TryWrite { .. }))
            && matches!(e, Expect::Allowed(a) if a.ret.iter().any(|r| matches!(r, simulator::observe::Ret::Signal(_))))
    })
}

/// Why a divergent host run may have been disturbed from outside: it hung, or its process was ended by a
/// signal at the divergent point.
fn outside_event(outcome: &Outcome, host: &HostRun) -> Option<String> {
    let Outcome::Diverge(d) = outcome else { return None };
    if host.timed_out {
        return Some("the worker hung (timeout)".into());
    }
    // A death point carries no layout or pages; a caught fault (`try_*`) carries both, the process
    // having survived it.
    match d.observed.as_ref() {
        Some(o) if o.vmas.is_empty() && o.pages.is_empty() => match o.ret {
            simulator::observe::Ret::Signal(sig) => Some(format!("the host run ended by signal {sig:?}")),
            _ => None,
        },
        _ => None,
    }
}

/// Held while a hugetlb scenario runs on the host.
static HUGETLB_ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::judge::tests::{host, obs, prog};
    use simulator::observe::Ret;

    /// A fake worker: poisoned `poison` times, then echoes a fixed observation.
    struct Fake {
        poison: usize,
    }
    impl HostBackend for Fake {
        fn submit(&mut self, _: &Program) -> Result<(), String> {
            Ok(())
        }
        fn collect(&mut self, prog: &Program, _: Duration) -> Result<HostRun, String> {
            if self.poison > 0 {
                self.poison -= 1;
                return Ok(HostRun { points: vec![], poisoned: Some("reclaim".into()), timed_out: false });
            }
            Ok(host(prog.step_ids().into_iter().map(|i| (i, obs(Ret::Ok))).collect()))
        }
    }

    #[test]
    fn poisoned_runs_are_retried_then_counted() {
        let model = KernelModel::from_facts(simulator::KernelFacts::profile("6.18").unwrap());
        let scenario = Scenario {
            id: "t".into(),
            description: String::new(),
            provenance: cases::Provenance::File { path: "t.json".into() },
            program: prog(),
        };
        let job = Job::Given { scenario, replay: "x".into() };
        let cfg = RunConfig { jobs: 1, timeout: Duration::from_secs(1), mode: Mode::HostOnly, replay_extra: String::new(), keep: Keep::default() };
        let mut f = Fake { poison: POISON_RETRIES };
        let r = run_one(&model, &job, 0, &cfg, Some(&mut f));
        assert!(matches!(r.outcome, Outcome::Match), "{:?}", r.outcome);
        let mut f = Fake { poison: POISON_RETRIES + 1 };
        let cfg = RunConfig { mode: Mode::Full, ..cfg };
        let r = run_one(&model, &job, 0, &cfg, Some(&mut f));
        assert!(matches!(r.outcome, Outcome::Poisoned(_)), "{:?}", r.outcome);
    }

    /// `n` named jobs `s0`, `s1`, ... of the same small program.
    fn given_jobs(n: usize) -> Vec<Job> {
        (0..n)
            .map(|i| Job::Given {
                scenario: Scenario {
                    id: format!("s{i}"),
                    description: String::new(),
                    provenance: cases::Provenance::File { path: "t.json".into() },
                    program: prog(),
                },
                replay: format!("replay {i}"),
            })
            .collect()
    }

    #[test]
    fn run_executes_every_job_once_in_order() {
        let model = KernelModel::from_facts(simulator::KernelFacts::profile("6.18").unwrap());
        let jobs = given_jobs(50);
        let cfg = RunConfig { jobs: 3, timeout: Duration::from_secs(1), mode: Mode::HostOnly, replay_extra: String::new(), keep: Keep { all: true, ..Keep::default() } };
        let spawn = |_j: usize| Ok(Box::new(Fake { poison: 0 }) as Box<dyn HostBackend>);
        let mut ticks = 0;
        let jobs = Jobs::from_vec(jobs);
        let out = run(&model, &jobs, &cfg, &spawn, &mut |_| ticks += 1, &mut |_, _, _| {}, Duration::from_secs(60));
        assert_eq!(out.results.len(), 50);
        assert_eq!(out.not_run, 0);
        assert!(out.results.iter().enumerate().all(|(i, r)| r.ordinal == i && r.id == format!("s{i}")));
        assert_eq!(out.results.iter().map(|r| r.steps).sum::<u64>(), 100);
        assert!(ticks >= 1);
    }

    #[test]
    fn a_worker_that_cannot_start_leaves_scenarios_not_run() {
        let model = KernelModel::from_facts(simulator::KernelFacts::profile("6.18").unwrap());
        let jobs = vec![Job::Given {
            scenario: Scenario {
                id: "s".into(),
                description: String::new(),
                provenance: cases::Provenance::File { path: "t.json".into() },
                program: prog(),
            },
            replay: String::new(),
        }];
        let cfg = RunConfig { jobs: 2, timeout: Duration::from_secs(1), mode: Mode::Full, replay_extra: String::new(), keep: Keep::default() };
        let spawn = |_j: usize| Err::<Box<dyn HostBackend>, String>("no exe".into());
        let jobs = Jobs::from_vec(jobs);
        let out = run(&model, &jobs, &cfg, &spawn, &mut |_| {}, &mut |_, _, _| {}, Duration::from_secs(60));
        assert_eq!((out.results.len(), out.not_run, out.errors.len()), (0, 1, 1));
    }

    #[test]
    fn jobs_list_first_then_the_generated_range_without_listed_indexes() {
        let g = |index| Job::Generated { seed: 7, index, destructive: false };
        let jobs = Jobs::new(vec![g(3), g(0), g(12)], 7, false, 6);
        let got: Vec<u64> = (0..jobs.len())
            .map(|i| match jobs.get(i).unwrap().into_owned() {
                Job::Generated { index, .. } => index,
                Job::Given { .. } => unreachable!(),
            })
            .collect();
        assert_eq!(got, vec![3, 0, 12, 1, 2, 4, 5]);
        assert!(jobs.get(jobs.len()).is_none());
        assert!(jobs.has_generated());
        assert_eq!(Jobs::new(vec![], 1, false, 0).len(), 0);
    }

    #[test]
    fn plain_matches_are_counted_not_kept() {
        let model = KernelModel::from_facts(simulator::KernelFacts::profile("6.18").unwrap());
        let jobs = given_jobs(20);
        let keep = Keep { all: false, ids: ["s4".to_string()].into_iter().collect() };
        let cfg = RunConfig { jobs: 2, timeout: Duration::from_secs(1), mode: Mode::HostOnly, replay_extra: String::new(), keep };
        let spawn = |_j: usize| Ok(Box::new(Fake { poison: 0 }) as Box<dyn HostBackend>);
        let jobs = Jobs::from_vec(jobs);
        let out = run(&model, &jobs, &cfg, &spawn, &mut |_| {}, &mut |_, _, _| {}, Duration::from_secs(60));
        assert_eq!(out.results.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), vec!["s4"]);
        assert_eq!(out.elided, Elided { matched: 19, steps: 38 });
        assert_eq!(out.summary, Summary { scenarios: 20, steps: 40, infra_errors: 0 });
        assert_eq!(out.not_run, 0);
    }
}
