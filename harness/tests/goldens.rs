//! The golden test over the named corpus (`cases/corpus/*.json`), per kernel profile.
//!
//! For every case, through one `insta::glob!` over the corpus:
//! * (a) `host`: the case runs on this kernel; its rendering must equal
//!   `golden/snapshots/<profile>/host/<case>.snap`.
//! * `sim`: the simulator's rendering must equal `golden/snapshots/<profile>/sim/<case>.snap`.
//! * (b) for a case the model supports, the sim golden's body must equal the host golden's body.
//!
//! Every other profile directory (another kernel, recorded under qemu with `cargo xtask bless --kernel`,
//! holding `facts.json` with that kernel's detected KernelFacts): the recording must be complete (a host
//! and a sim golden for every case; an incomplete one fails), its sim goldens must be what the model
//! answers now for those facts, and for every case the model supports the host golden must equal that
//! answer. With `GOLDEN_RECORDED=<dir>` (set by `cargo xtask bless --kernel`) the test records such a
//! profile from a guest's emitted bodies instead of running the running kernel's cases.
//!
//! Plus: the corpus has at least 300 cases and every advice value appears in at least 5; no `.snap` file
//! (or other file but `<profile>/facts.json` and `<profile>/unsupported.json`) exists that no current case produces; a deliberately wrong
//! model (`Mutation::DontneedKeepsAnon`) fails the sim goldens with a readable diff.
//!
//! Bodies come from `harness::out::goldens` (see its module doc for the rule that makes host and sim bodies
//! comparable). Snapshot name = case id, no module prefix, the scenario JSON in the header's `info`.
//!
//! This test has its own `main` (harness = false) because the host backend re-executes the running
//! binary as `<binary> worker`. CI runs it with `INSTA_UPDATE=no`; `cargo xtask bless` runs it with
//! `INSTA_UPDATE=always INSTA_FORCE_PASS=1 GOLDEN_BLESS=1`, which also deletes unreferenced snapshots.

use harness::out::goldens::{self, BLESS_COMMAND};
use harness::host::Worker;
use simulator::kernel::Mutation;
use simulator::observe::Expect;
use simulator::program::{Advice, AdviceArg, Step, StepId, ARENA};
use simulator::{KernelFacts, KernelModel};
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Duration;

const MIN_CASES: usize = 300;
const MIN_PER_ADVICE: usize = 5;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}
fn corpus_dir() -> PathBuf {
    root().join("../cases/corpus")
}
fn snapshots() -> PathBuf {
    root().join("../golden/snapshots")
}
fn blessing() -> bool {
    std::env::var_os("GOLDEN_BLESS").is_some_and(|v| v == "1")
}

/// Why hugetlb cases cannot run here (set once by `main` when it reserves the pool).
static HUGETLB_UNAVAILABLE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// The host's model. Whether this test process got the hugetlb pool is not part of it (the model is
/// pure); `render` skips the host side of hugetlb cases when it did not.
fn model() -> KernelModel {
    let facts = harness::host::detect::detect_host().expect("detect the host kernel");
    KernelModel::from_facts(facts)
}

fn worker() -> Worker {
    let exe = std::env::current_exe().expect("the test binary");
    Worker::spawn(&exe, None).expect("start a worker (this binary, re-executed as `worker`)")
}

/// The corpus, by id.
fn corpus() -> BTreeMap<String, cases::Scenario> {
    cases::load_dir(&corpus_dir())
        .unwrap_or_else(|e| panic!("the corpus must load: {e}"))
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect()
}

fn advice_in(steps: &[Step], out: &mut BTreeSet<Advice>) {
    for s in steps {
        match s {
            Step::Madvise { advice: AdviceArg::Named(a), .. } => {
                out.insert(*a);
            }
            Step::Madvise { advice, .. } => {
                if let Some(a) = advice.advice() {
                    out.insert(a);
                }
            }
            Step::Fork { child } => advice_in(child, out),
            Step::InChild { step } => advice_in(std::slice::from_ref(&**step), out),
            _ => {}
        }
    }
}

/// ≥300 named cases; every advice value in ≥5 of them; every case validates and its id is its stem.
fn corpus_counts() {
    let c = corpus();
    assert!(c.len() >= MIN_CASES, "the corpus has {} cases; at least {MIN_CASES} are required", c.len());
    let mut per: BTreeMap<Advice, usize> = Advice::ALL.iter().map(|a| (*a, 0)).collect();
    for s in c.values() {
        cases::validate(s).unwrap_or_else(|e| panic!("{e}"));
        assert!(!s.description.trim().is_empty(), "{}: every case needs a one-line description", s.id);
        assert!(!s.description.contains('\n'), "{}: the description must be one line", s.id);
        let mut seen = BTreeSet::new();
        advice_in(&s.program.steps, &mut seen);
        for a in seen {
            *per.get_mut(&a).unwrap() += 1;
        }
    }
    let thin: Vec<String> = per.iter().filter(|(_, n)| **n < MIN_PER_ADVICE).map(|(a, n)| format!("{} ({n})", a.name())).collect();
    assert!(thin.is_empty(), "advice values in fewer than {MIN_PER_ADVICE} cases: {}", thin.join(", "));
    println!("corpus: {} cases; cases per advice: {}", c.len(), per.iter().map(|(a, n)| format!("{} {n}", a.name())).collect::<Vec<_>>().join(", "));
}

/// Every `.snap` under golden/snapshots must be `<profile>/{host,sim}/<current case id>.snap`. When
/// blessing, unreferenced ones are deleted instead.
fn no_unreferenced_snapshots() {
    let ids: BTreeSet<String> = corpus().into_keys().collect();
    let mut bad = Vec::new();
    let mut stack = vec![snapshots()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p.strip_prefix(snapshots()).unwrap().to_path_buf();
            let parts: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
            let ok = (parts.len() == 3
                && (parts[1] == "host" || parts[1] == "sim")
                && parts[2].strip_suffix(".snap").is_some_and(|id| ids.contains(id)))
                || (parts.len() == 2 && (parts[1] == "facts.json" || parts[1] == "unsupported.json"));
            if !ok {
                bad.push(p);
            }
        }
    }
    if blessing() {
        for p in &bad {
            std::fs::remove_file(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            println!("bless: removed unreferenced snapshot {}", p.display());
        }
        return;
    }
    assert!(
        bad.is_empty(),
        "snapshot files that no current case produces (a renamed or deleted case?):\n  {}\nrun `{BLESS_COMMAND}` to remove them",
        bad.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join("\n  ")
    );
}

/// The insta settings shared by both sides: no module prefix, no suffix (the glob's file name would be
/// one), the scenario in `info`, snapshots under `golden/snapshots/<profile>/<side>`.
fn settings(profile: &str, side: &str, s: &cases::Scenario) -> insta::Settings {
    let mut st = insta::Settings::clone_current();
    st.set_prepend_module_to_snapshot(false);
    st.remove_snapshot_suffix();
    st.set_snapshot_path(format!("../../golden/snapshots/{profile}/{side}"));
    st.set_description(s.description.clone());
    st.set_omit_expression(true);
    let json = std::fs::read_to_string(match &s.provenance {
        cases::Provenance::File { path } => PathBuf::from(path),
        cases::Provenance::Generated { .. } => unreachable!("the corpus is files"),
    })
    .expect("read the case again");
    let v: serde_json::Value = serde_json::from_str(&json).expect("the case is JSON");
    st.set_info(&v);
    st
}

/// The sim golden and the host golden of one case, as rendered now.
struct Rendered {
    sim: String,
    /// `None`: not run here (a hugetlb case while this process has no pool).
    host: Option<String>,
    unsupported: bool,
}

fn render(model: &KernelModel, w: &mut Worker, s: &cases::Scenario) -> Rendered {
    let exp: Vec<(StepId, Expect)> = simulator::simulate(model, &ARENA, &s.program);
    let mut clean = model.clone();
    clean.mutations.clear();
    let clean_exp = simulator::simulate(&clean, &ARENA, &s.program);
    if let (true, Some(Some(why))) = (s.program.uses_hugetlb(), HUGETLB_UNAVAILABLE.get()) {
        println!("goldens: host side of {} not checked: {why}", s.id);
        return Rendered { sim: goldens::render_sim(&s.program, &exp), host: None, unsupported: goldens::sim_is_unsupported(&exp) };
    }
    if let Some(host) = goldens::not_run_body(&clean, &s.program) {
        // Never run on this kernel (no huge page that fits the arena): the recording says so.
        return Rendered { sim: goldens::render_sim(&s.program, &exp), host: Some(host), unsupported: goldens::sim_is_unsupported(&exp) };
    }
    let mut run = None;
    for _ in 0..3 {
        let r = w.run(&s.program, Duration::from_secs(20)).unwrap_or_else(|e| panic!("{}: host run: {e}", s.id));
        assert!(!r.timed_out, "{}: the worker timed out", s.id);
        if r.poisoned.is_none() {
            run = Some(r);
            break;
        }
    }
    let run = run.unwrap_or_else(|| panic!("{}: host runs poisoned three times (reclaim by someone else?)", s.id));
    Rendered {
        sim: goldens::render_sim(&s.program, &exp),
        // The host side is projected through the unmutated model: a model bug must not move host goldens.
        host: Some(goldens::render_host(&s.program, &run.points, &clean_exp)),
        unsupported: goldens::sim_is_unsupported(&exp),
    }
}

/// `GOLDEN_RECORDED=<dir>` (set by `cargo xtask bless --kernel`): a qemu guest's emitted goldens,
/// `<dir>/facts.json` (its KernelFacts) and `<dir>/host/<case>.body`.
fn recorded_dir() -> Option<PathBuf> {
    std::env::var_os("GOLDEN_RECORDED").filter(|v| !v.is_empty()).map(PathBuf::from)
}

fn read_facts(path: &Path) -> KernelFacts {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not a KernelFacts JSON: {e}", path.display()))
}

/// Record another kernel's goldens from a guest's emitted bodies: host = the guest's bodies, sim = the
/// simulator for the guest's facts, and the facts as `snapshots/<profile>/facts.json`. Then (b) as for
/// the running kernel.
fn record_from_guest(dir: &Path, mutations: &[Mutation]) {
    let facts = read_facts(&dir.join("facts.json"));
    let mut model = KernelModel::from_facts(facts.clone());
    model.mutations = mutations.to_vec();
    let profile = model.profile.clone();
    let pdir = snapshots().join(&profile);
    let updating = std::env::var("INSTA_UPDATE").is_ok_and(|v| v == "always" || v == "new");
    if blessing() {
        std::fs::create_dir_all(&pdir).unwrap_or_else(|e| panic!("{}: {e}", pdir.display()));
        let json = serde_json::to_string_pretty(&facts).expect("facts serialise") + "\n";
        std::fs::write(pdir.join("facts.json"), json).unwrap_or_else(|e| panic!("{}: {e}", pdir.display()));
    }
    println!("goldens: recording profile {profile} from {}", dir.display());
    let c = corpus();
    let mut b_failures = Vec::new();
    insta::glob!("../../cases/corpus", "*.json", |path| {
        let id = path.file_stem().unwrap().to_string_lossy().into_owned();
        let s = &c[&id];
        let body = dir.join("host").join(format!("{id}.body"));
        let host = std::fs::read_to_string(&body)
            .unwrap_or_else(|e| panic!("{id}: the guest's golden {} is missing ({e}): the recording is incomplete", body.display()));
        let exp = simulator::simulate(&model, &ARENA, &s.program);
        let sim = goldens::render_sim(&s.program, &exp);
        settings(&profile, "host", s).bind(|| insta::assert_snapshot!(id.clone(), host.clone()));
        settings(&profile, "sim", s).bind(|| insta::assert_snapshot!(id.clone(), sim.clone()));
        if !goldens::sim_is_unsupported(&exp) && !updating && !goldens::same_body(&host, &sim) {
            b_failures.push(format!("{profile} {id}: sim golden differs from host golden (- host, + sim):\n{}", goldens::line_diff(&host, &sim)));
        }
    });
    assert!(b_failures.is_empty(), "{} cases where the model is not the recorded kernel:\n{}", b_failures.len(), b_failures.join("\n"));
}

/// Every other profile under snapshots/ (recorded from a qemu guest with `cargo xtask bless --kernel`):
/// its recording is complete (facts.json and a host and a sim golden for every case), its sim goldens are
/// what the model answers now for its facts, and for every case the model supports the host golden equals
/// the model's answer. When blessing, the sim goldens are rewritten from the model instead (host goldens
/// of another kernel can only be recorded on that kernel).
fn recorded_profiles_agree(mutations: &[Mutation]) {
    let running = model().profile;
    let skip = recorded_dir().map(|d| KernelModel::from_facts(read_facts(&d.join("facts.json"))).profile);
    let mut profiles: Vec<String> = std::fs::read_dir(snapshots())
        .map(|rd| rd.flatten().filter(|e| e.path().is_dir()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    profiles.retain(|p| *p != running && Some(p) != skip.as_ref());
    profiles.sort();
    if profiles.is_empty() {
        println!("goldens: no other kernel profiles recorded (record one with `cargo xtask bless --kernel 6.1 --arch x86_64`)");
        return;
    }
    let c = corpus();
    let mut failures: Vec<String> = Vec::new();
    for profile in &profiles {
        let pdir = snapshots().join(profile);
        let facts_path = pdir.join("facts.json");
        if !facts_path.is_file() {
            failures.push(format!(
                "{profile}: no facts.json, so the model for this profile is unknown; record it with `cargo xtask bless --kernel ...`"
            ));
            continue;
        }
        let mut model = KernelModel::from_facts(read_facts(&facts_path));
        model.mutations = mutations.to_vec();
        if model.profile != *profile {
            failures.push(format!("{profile}: facts.json describes profile {}", model.profile));
            continue;
        }
        let read = |side: &str, id: &str| {
            let p = pdir.join(side).join(format!("{id}.snap"));
            std::fs::read_to_string(&p).ok().and_then(|t| goldens::snap_body(&t).map(str::to_string))
        };
        let missing: Vec<String> =
            c.keys().flat_map(|id| ["host", "sim"].map(|side| (side, id))).filter(|(side, id)| read(side, id).is_none()).map(|(side, id)| format!("{side}/{id}.snap")).collect();
        if !missing.is_empty() {
            failures.push(format!(
                "{profile}: the recording is incomplete, {} goldens are missing or not snapshots (e.g. {}); re-record it with `cargo xtask bless --kernel ...`",
                missing.len(),
                missing.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
            ));
            continue;
        }
        let (mut checked, mut unsupported, mut agree) = (0, 0, 0);
        if blessing() {
            insta::glob!("../../cases/corpus", "*.json", |path| {
                let id = path.file_stem().unwrap().to_string_lossy().into_owned();
                let s = &c[&id];
                let sim = goldens::render_sim(&s.program, &simulator::simulate(&model, &ARENA, &s.program));
                settings(profile, "sim", s).bind(|| insta::assert_snapshot!(id.clone(), sim));
            });
        }
        for (id, s) in &c {
            let exp = simulator::simulate(&model, &ARENA, &s.program);
            let sim = goldens::render_sim(&s.program, &exp);
            let (host, sim_golden) = (read("host", id).unwrap(), read("sim", id).unwrap());
            if !goldens::same_body(&sim_golden, &sim) {
                failures.push(format!(
                    "{profile} {id}: the model's answer changed from its sim golden (- golden, + model now):\n{}",
                    goldens::line_diff(&sim_golden, &sim)
                ));
            }
            if goldens::sim_is_unsupported(&exp) {
                unsupported += 1;
                continue;
            }
            checked += 1;
            if goldens::same_body(&host, &sim) {
                agree += 1;
            } else {
                failures.push(format!(
                    "{profile} {id}: the model is not the recorded kernel (- host golden, + model):\n{}",
                    goldens::line_diff(&host, &sim)
                ));
            }
        }
        println!(
            "goldens: profile {profile}: {checked} supported cases, host golden == model in {agree}; {unsupported} unsupported by the model"
        );
    }
    assert!(
        failures.is_empty(),
        "{} problems with the recorded kernel profiles:\n{}\nfix the model, or if the goldens are stale run `{BLESS_COMMAND}` (sim) or `cargo xtask bless --kernel ...` (host)",
        failures.len(),
        failures.join("\n")
    );
}

/// (a) host == host golden, sim == sim golden, (b) sim body == host body where the model supports the case.
fn goldens_match(mutations: &[Mutation]) {
    if let Some(dir) = recorded_dir() {
        return record_from_guest(&dir, mutations);
    }
    let mut model = model();
    model.mutations = mutations.to_vec();
    let profile = model.profile.clone();
    let dir = snapshots().join(&profile);
    let updating = std::env::var("INSTA_UPDATE").is_ok_and(|v| v == "always" || v == "new");
    if !dir.is_dir() && !updating {
        println!("goldens: none recorded for profile {profile} ({}); record them with `{BLESS_COMMAND}`", dir.display());
        return;
    }
    let c = corpus();
    let mut w = worker();
    let mut b_failures = Vec::new();
    insta::glob!("../../cases/corpus", "*.json", |path| {
        let id = path.file_stem().unwrap().to_string_lossy().into_owned();
        let s = &c[&id];
        let r = render(&model, &mut w, s);
        if let Some(host) = r.host {
            settings(&profile, "host", s).bind(|| insta::assert_snapshot!(id.clone(), host));
        }
        settings(&profile, "sim", s).bind(|| insta::assert_snapshot!(id.clone(), r.sim));
        // (b): compared with what is recorded, so a stale golden on either side shows up here too.
        if !r.unsupported && !updating {
            let read = |side: &str| {
                let p = dir.join(side).join(format!("{id}.snap"));
                std::fs::read_to_string(&p).ok().and_then(|t| goldens::snap_body(&t).map(str::to_string))
            };
            if let (Some(h), Some(m)) = (read("host"), read("sim")) {
                if !goldens::same_body(&h, &m) {
                    b_failures.push(format!("{id}: sim golden differs from host golden (- host, + sim):\n{}", goldens::line_diff(&h, &m)));
                }
            }
        }
    });
    assert!(
        b_failures.is_empty(),
        "{} cases where the model's golden is not the kernel's:\n{}\nfix the model, or if the goldens are stale run `{BLESS_COMMAND}`",
        b_failures.len(),
        b_failures.join("\n")
    );
}

/// A wrong model must fail the sim goldens, with a diff a person can read: the mutated DONTNEED keeps
/// private anonymous contents, so the ruler shows the old fill where the golden has a zero page.
fn mutation_fails_with_a_readable_diff() {
    let mut model = model();
    let dir = snapshots().join(&model.profile).join("sim");
    if !dir.is_dir() {
        println!("mutation check: no sim goldens for {}; skipped", model.profile);
        return;
    }
    model.mutations = vec![Mutation::DontneedKeepsAnon];
    let c = corpus();
    let s = &c["dontneed_private_anon_reads_zero"];
    let exp = simulator::simulate(&model, &ARENA, &s.program);
    let now = goldens::render_sim(&s.program, &exp);
    let text = std::fs::read_to_string(dir.join("dontneed_private_anon_reads_zero.snap")).expect("recorded sim golden");
    let recorded = goldens::snap_body(&text).expect("an insta snapshot");
    assert!(!goldens::same_body(recorded, &now), "the mutated model renders the recorded golden: the golden sees nothing");
    let diff = goldens::line_diff(recorded, &now);
    // The zapped page (3) was `0`-or-absent in the golden and is the 0xAB fill under the mutation.
    assert!(diff.lines().any(|l| l.starts_with("- ") && l.contains("data")), "diff:\n{diff}");
    assert!(diff.lines().any(|l| l.starts_with("+ ") && l.contains("data") && l.contains('A')), "diff:\n{diff}");
    println!("mutation dontneed-keeps-anon changes the sim golden of dontneed_private_anon_reads_zero:\n{diff}");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("worker") {
        std::process::exit(harness::host::worker_main());
    }
    // `GOLDEN_MUTATE=dontneed-keeps-anon` runs the golden test against a deliberately wrong model.
    let mutations: Vec<Mutation> = std::env::var("GOLDEN_MUTATE")
        .ok()
        .map(|v| v.split(',').filter(|s| !s.is_empty()).map(|s| Mutation::from_name(s).expect("a known mutation")).collect())
        .unwrap_or_default();
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    // The hugetlb cases need a few free huge pages; the guard puts vm.nr_hugepages back when dropped.
    let (pool, why) = harness::host::hugepool::HugePool::prepare(harness::host::hugepool::want_unreserved_here());
    let _ = HUGETLB_UNAVAILABLE.set(why);
    type Test = (&'static str, Box<dyn Fn()>);
    let tests: Vec<Test> = vec![
        ("corpus_counts", Box::new(corpus_counts)),
        ("no_unreferenced_snapshots", Box::new(no_unreferenced_snapshots)),
        ("goldens_match", Box::new({
            let m = mutations.clone();
            move || goldens_match(&m)
        })),
        ("recorded_profiles_agree", Box::new(move || recorded_profiles_agree(&mutations))),
        ("mutation_fails_with_a_readable_diff", Box::new(mutation_fails_with_a_readable_diff)),
    ];
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, f) in &tests {
        if !filters.is_empty() && !filters.iter().any(|x| name.contains(x.as_str())) {
            continue;
        }
        ran += 1;
        println!("test {name} ...");
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(()) => println!("test {name} ... ok"),
            Err(p) => {
                let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
                println!("test {name} ... FAILED\n{}", msg.unwrap_or_default());
                failed.push(*name);
            }
        }
    }
    drop(pool);
    println!("\ngolden test result: {}. {} passed; {} failed", if failed.is_empty() { "ok" } else { "FAILED" }, ran - failed.len(), failed.len());
    if !failed.is_empty() {
        println!("failed: {}\nif the new behaviour is right, re-record with `{BLESS_COMMAND}`", failed.join(", "));
        std::process::exit(1);
    }
}
