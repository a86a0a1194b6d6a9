//! Regression hunting on this kernel: shrink a difference to a small named case, turn a case into a C
//! reproducer, record this kernel's observations, and check a case for `git bisect run`.
//!
//! Invariant: the candidates come from `cases::shrink` (pure); this module only runs them, on one
//! long-lived worker, and keeps a candidate only when the same kind of difference appears at the
//! corresponding point. A shrink result is re-run [`STABILITY_RUNS`] times before it is written, and a
//! result that does not reproduce every time is reported as flaky, never as a finding. Commands return
//! exit codes and never print from library code paths other than the command functions themselves
//! (which `main` calls, as it calls `cmd_run`).

pub mod csource;

/// Print a line to stdout, ignoring a closed pipe (`madcheck shrink ... | head` must not panic).
macro_rules! say {
    ($($t:tt)*) => { say_raw(&(format!($($t)*) + "\n")) };
}

fn say_raw(s: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(s.as_bytes());
}

mod guest;
pub mod observations;
pub mod recording;
pub mod shrink;

pub use guest::GUEST_MODES;
use guest::{cmd_findings, cmd_guest_run};
use observations::cmd_compare;
use recording::{cmd_check, cmd_record, cmd_repro};
use shrink::cmd_shrink;

use crate::cli::RunArgs;
use cases::{Provenance, Scenario};
use simulator::{KernelFacts, KernelModel};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The `kind` of an observation set (`madcheck run --record-observations`).
pub const OBSERVATION_SET: &str = "madcheck-observations";

/// What `main` lends the hunt commands (its model and pool setup), so both use one implementation.
pub struct Env {
    pub detect_host: fn(Option<&Path>) -> Result<KernelFacts, i32>,
    pub build_model: fn(&RunArgs, &KernelFacts) -> Result<KernelModel, String>,
    /// Reserve the pool, waiting up to the given time for another madcheck run to release it.
    pub hugetlb_pool: fn(&mut KernelModel, Duration) -> crate::host::hugepool::HugePool,
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("create {}: {e}", d.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("write {}: {e}", path.display()))
}

/// The default findings directory: `target/findings` of the checkout madcheck was built from.
pub fn default_findings_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/findings")
}

/// Own flags of the hunt commands, taken out before the rest goes through the `run` parser.
struct Own {
    out: Option<PathBuf>,
    expect: Option<String>,
    rest: Vec<String>,
}

fn split_own(args: &[String]) -> Result<Own, String> {
    let mut own = Own { out: None, expect: None, rest: vec!["run".into()] };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        if flag == "--out" || flag == "--expect" {
            let v = inline.or_else(|| it.next().cloned()).ok_or(format!("{flag} needs a value"))?;
            if flag == "--out" {
                own.out = Some(PathBuf::from(v));
            } else {
                own.expect = Some(v);
            }
        } else {
            own.rest.push(a.clone());
        }
    }
    Ok(own)
}

fn parse(sub: &str, args: &[String]) -> Result<(Own, RunArgs), String> {
    let own = split_own(args)?;
    match crate::cli::parse(&own.rest) {
        Ok(crate::cli::Command::Run(a)) => Ok((own, a)),
        Ok(_) => Err(format!("{sub}: unexpected arguments")),
        Err(e) => Err(format!("{sub}: {e}")),
    }
}

/// Write `text` to `to`, or print it when there is no file.
fn emit(to: Option<&Path>, text: &str) -> Result<(), String> {
    match to {
        Some(p) => write_file(p, text),
        None => {
            say_raw(text);
            Ok(())
        }
    }
}

/// The arguments of a one-scenario command and the scenario they name.
fn parse_one(sub: &str, args: &[String]) -> Result<(Own, RunArgs, Scenario), String> {
    let (own, a) = parse(sub, args)?;
    let s = one_scenario(sub, &a)?;
    Ok((own, a, s))
}

/// The one scenario `--case FILE` or `--seed S --scenario I` names.
fn one_scenario(sub: &str, a: &RunArgs) -> Result<Scenario, String> {
    match (a.cases.as_slice(), a.scenarios.as_slice()) {
        ([f], []) => {
            let s = cases::load_scenario(f).map_err(|e| e.to_string())?;
            cases::validate(&s).map_err(|e| e.to_string())?;
            Ok(s)
        }
        ([], [i]) => Ok(cases::generate_with(a.seed, *i, a.destructive)),
        _ => Err(format!("{sub} needs exactly one --case FILE or --seed S --scenario I")),
    }
}

pub const USAGE: &str = "\
  madcheck shrink (--case FILE | --seed S --scenario I) [--out DIR] [--mutate NAME]... [--profile-facts P]
  madcheck repro --case FILE | --seed S --scenario I [--expect model|FILE] [--out FILE.c] [--mutate NAME]...
  madcheck record (--case FILE | --seed S --scenario I) [--out FILE]
  madcheck check (--case FILE | --cases DIR) [--expect golden|model|FILE]
  madcheck run --record-observations digest|full [run flags] --report FILE   (an observation set)
  madcheck compare A.json B.json [--report FILE]   (two observation sets, point by point)
  madcheck findings REPORT [--out DIR]   (the cases of a guest's `run --hunt-shrink` report, as files)";

/// Dispatch a hunt subcommand; `None` when `args` is not one.
pub fn main(args: &[String], env: &Env) -> Option<i32> {
    let sub = args.first()?.as_str();
    let rest = &args[1..];
    let r = match sub {
        "shrink" => cmd_shrink(rest, env),
        "repro" => cmd_repro(rest, env),
        "record" => cmd_record(rest, env),
        "check" => cmd_check(rest, env),
        "compare" => cmd_compare(rest),
        "findings" => cmd_findings(rest),
        // A run that records this kernel's observations instead of judging them (what a guest does for
        // `cargo xtask compare` and `bisect`): the report is an observation set.
        "run" if rest.iter().any(|a| GUEST_MODES.iter().any(|m| a.split('=').next() == Some(*m))) => cmd_guest_run(rest, env),
        _ => return None,
    };
    Some(match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("madcheck: {e}");
            2
        }
    })
}

/// What a hunt command runs on: this kernel's facts, the model, one worker judged against it, and the
/// hugetlb pool reserved for the command (restored when the session drops, after the worker).
pub(super) struct Session {
    pub host: KernelFacts,
    pub model: KernelModel,
    pub target: shrink::HostTarget,
    _pool: crate::host::hugepool::HugePool,
}

/// The session, or the exit code to leave with (1: cannot detect the kernel; 2: bad --profile-facts).
fn setup(a: &RunArgs, env: &Env) -> Result<Result<Session, i32>, String> {
    let host = match (env.detect_host)(a.kernel_config.as_deref()) {
        Ok(h) => h,
        Err(code) => return Ok(Err(code)),
    };
    let mut model = match (env.build_model)(a, &host) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("madcheck: {e}");
            return Ok(Err(2));
        }
    };
    let pool = (env.hugetlb_pool)(&mut model, Duration::from_secs(a.wait_for_hugepool_s));
    let target = shrink::HostTarget::new(model.clone(), Duration::from_millis(a.timeout_ms))?;
    Ok(Ok(Session { host, model, target, _pool: pool }))
}

fn provenance_of(s: &Scenario) -> serde_json::Value {
    match &s.provenance {
        Provenance::Generated { seed, index } => serde_json::json!({ "seed": seed, "index": index }),
        Provenance::File { path } => serde_json::json!({ "path": path }),
    }
}
/// The selected scenarios of a run: case files, directories, `--scenario` indexes, then generated.
fn selected(a: &RunArgs) -> Result<Vec<Scenario>, String> {
    let mut list: Vec<Scenario> = Vec::new();
    for f in &a.cases {
        list.push(cases::load_scenario(f).map_err(|e| e.to_string())?);
    }
    for d in &a.case_dirs {
        list.extend(cases::load_dir(d).map_err(|e| e.to_string())?);
    }
    let mut seen = std::collections::BTreeSet::new();
    for &i in a.scenarios.iter().chain(&(0..a.generate_count()).collect::<Vec<_>>()) {
        if seen.insert(i) {
            list.push(cases::generate_with(a.seed, i, a.destructive));
        }
    }
    Ok(list)
}

