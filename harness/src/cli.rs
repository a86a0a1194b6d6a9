//! Command-line parsing for `madcheck`: hand-written, so every error message is ours.
//!
//! Invariant: parsing never panics and never touches the filesystem; any mistake is a `UsageError` whose
//! message names the flag or value at fault, and `main` turns it into exit code 2.

use simulator::kernel::Mutation;
use std::fmt;
use std::path::PathBuf;

pub const USAGE: &str = "\
usage:
  madcheck run [--generate N] [--seed S] [--scenario INDEX]... [--case FILE]... [--cases DIR]...
               [--report FILE] [--jobs N] [--timeout-ms MS] [--mutate NAME]... [--profile-facts FILE|PROFILE]
               [--expected FILE] [--quiet] [--format human|ktap] [--kernel-config FILE]
               [--goldens DIR] [--emit-goldens] [--coverage FILE] [--allow-unsupported] [--record-unsupported]
               [--wait-for-hugepool SECS] [--destructive]
  madcheck simulate [--seed S] (--scenario INDEX | --case FILE) [--mutate NAME]... [--profile-facts FILE|PROFILE]
                    [--destructive]
  madcheck detect
  madcheck bench [--generate N] [--seed S] [--jobs N] [--timeout-ms MS] [--report FILE]
                 [--floor EXE] [--floor-secs S] [--parts host,simulator,whole] [--wait-for-hugepool SECS]

run: generated scenarios (default 10000 with seed 1, unless --scenario/--case/--cases choose others) run on
the host kernel and on the simulator, and every observation point is compared. Exit 0: all agree (listed
expected divergences allowed); 1: a divergence, a stale expected-divergence entry, a timeout or an
infrastructure error; 2: bad usage or bad input.
--format ktap writes KTAP v1 (one test per scenario, one subtest per observation point) to stdout
instead of the human report. --kernel-config FILE reads the kernel's build config from FILE (a plain
`.config`, e.g. /boot/config-*) when the kernel has no /proc/config.gz.
Named cases are checked against the host goldens of this kernel's profile under --goldens DIR (default:
golden/snapshots of the checkout madcheck was built from). --emit-goldens prints every named case's host
golden body on stdout, marker-delimited (what `cargo xtask bless --kernel` records from a qemu guest).
--coverage FILE writes the semantic coverage matrix (advice x mapping kind x outcome, with the number of
scenarios that reached each cell on this kernel, checked against the cells this kernel can reach) as JSON
and prints it; a reached cell the rules call unreachable makes the run exit 1.
Unsupported scenarios are checked against the profile's expected unsupported set
(DIR/<profile>/unsupported.json under the goldens root): one inside the set's scope (its seed, count and
named cases) that the set does not list, or an entry that is answered now, makes the run exit 1.
--allow-unsupported lists them without failing (exploratory runs). --record-unsupported puts the set this
run would record into the JSON report (`unsupported_record`; `cargo xtask bless` writes it).
One madcheck run at a time owns the hugetlb pool; a run started meanwhile runs its hugetlb scenarios as
unsupported, or with --wait-for-hugepool SECS waits up to SECS seconds for the pool first (the tests do).
--destructive also draws the scenario classes that can damage the kernel's global state (hugetlb with
fork or mremap: leaked huge pages, pool counters that stay wrong until reboot). Only a disposable qemu
guest runs them (madcheck as /init under `cargo xtask qemu`); elsewhere --destructive is a usage error
(exit 2) and such a scenario from a case file is reported unsupported, never run.
bench: the same scenarios three times (host backend alone, simulator alone, the whole differential run),
then observed steps/s of each and the peak RSS. --floor EXE runs the compiled C floor (bench/floor,
`cargo xtask bench` builds it) on every CPU for --floor-secs S (default 3) before and after, and prints
madcheck's steps/s as a ratio of it. --parts runs only the listed parts (comma-separated).";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunArgs {
    /// `None`: 10000 when nothing else is selected, else 0.
    pub generate: Option<u64>,
    pub seed: u64,
    pub scenarios: Vec<u64>,
    pub cases: Vec<PathBuf>,
    pub case_dirs: Vec<PathBuf>,
    pub report: Option<PathBuf>,
    /// `--coverage FILE`: write the semantic coverage matrix (advice x mapping kind x outcome) as JSON
    /// and print it.
    pub coverage: Option<PathBuf>,
    pub jobs: Option<usize>,
    pub timeout_ms: u64,
    pub mutate: Vec<Mutation>,
    pub profile_facts: Option<String>,
    /// Override of the expected-divergence list (default: the repository's).
    pub expected: Option<PathBuf>,
    pub quiet: bool,
    /// `--format ktap`: KTAP on stdout instead of the human report.
    pub ktap: bool,
    /// `--kernel-config FILE`: the kernel's `.config`, for kernels without /proc/config.gz.
    pub kernel_config: Option<PathBuf>,
    /// `--goldens DIR`: the golden snapshot root (`DIR/<profile>/host/<case>.snap`).
    pub goldens: Option<PathBuf>,
    /// `--emit-goldens`: print the host golden body of every named case (see `goldens::EMIT_PREFIX`).
    pub emit_goldens: bool,
    /// `--findings DIR|none`: where divergences are shrunk to (default target/findings), or not at all.
    pub findings: Option<PathBuf>,
    /// `--allow-unsupported`: unexpected or stale unsupported scenarios do not fail the run.
    pub allow_unsupported: bool,
    /// `--record-unsupported`: the report carries the unsupported set this run records.
    pub record_unsupported: bool,
    /// `--wait-for-hugepool SECS`: wait up to SECS seconds for another run to release the hugetlb pool
    /// instead of running hugetlb scenarios as unsupported at once (0, the default: do not wait).
    pub wait_for_hugepool_s: u64,
    /// `--destructive`: generated hugetlb scenarios also draw fork and mremap (`cases::generate_with`);
    /// only in a disposable qemu guest.
    pub destructive: bool,
    /// `--floor EXE` (bench): the compiled C floor (`bench/floor/scen_min.c`), run on every CPU before
    /// and after madcheck.
    pub floor: Option<PathBuf>,
    /// `--floor-secs S` (bench): how long each floor measurement runs, in ms (default 3 s).
    pub floor_ms: Option<u64>,
    /// `--parts LIST` (bench): which of host, simulator, whole to run (default all three).
    pub bench_parts: Vec<String>,
}

impl RunArgs {
    /// How many scenarios to generate from the seed.
    pub fn generate_count(&self) -> u64 {
        match self.generate {
            Some(n) => n,
            None if self.scenarios.is_empty() && self.cases.is_empty() && self.case_dirs.is_empty() => 10_000,
            None => 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Run(RunArgs),
    Simulate(RunArgs),
    Detect,
    Bench(RunArgs),
    Help,
}

fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, UsageError> {
    v.parse().map_err(|_| UsageError(format!("{flag}: {v:?} is not a valid non-negative number")))
}

/// Parse everything after the program name.
pub fn parse(args: &[String]) -> Result<Command, UsageError> {
    let Some(sub) = args.first() else {
        return Err(UsageError("missing subcommand (run, simulate, detect or bench)".into()));
    };
    let rest = &args[1..];
    match sub.as_str() {
        _ if rest.iter().any(|a| a == "-h" || a == "--help") && matches!(sub.as_str(), "run" | "simulate" | "detect" | "bench") => {
            Ok(Command::Help)
        }
        "run" => parse_run(rest, &ALL_RUN).map(Command::Run),
        "simulate" => {
            let a = parse_run(rest, &["--seed", "--scenario", "--case", "--mutate", "--profile-facts", "--destructive"])?;
            if a.scenarios.len() + a.cases.len() != 1 {
                return Err(UsageError("simulate needs exactly one --scenario INDEX or --case FILE".into()));
            }
            Ok(Command::Simulate(a))
        }
        "detect" => {
            if let Some(a) = rest.first() {
                return Err(UsageError(format!("detect takes no arguments (got {a:?})")));
            }
            Ok(Command::Detect)
        }
        "bench" => parse_run(
            rest,
            &["--generate", "--seed", "--jobs", "--timeout-ms", "--report", "--quiet", "--floor", "--floor-secs", "--parts", "--wait-for-hugepool"],
        )
        .map(Command::Bench),
        "-h" | "--help" | "help" => Ok(Command::Help),
        other => Err(UsageError(format!("unknown subcommand {other:?} (expected run, simulate, detect or bench)"))),
    }
}

const ALL_RUN: [&str; 23] = [
    "--generate",
    "--seed",
    "--scenario",
    "--case",
    "--cases",
    "--report",
    "--coverage",
    "--jobs",
    "--timeout-ms",
    "--mutate",
    "--profile-facts",
    "--expected",
    "--quiet",
    "--help",
    "--format",
    "--kernel-config",
    "--goldens",
    "--emit-goldens",
    "--findings",
    "--allow-unsupported",
    "--record-unsupported",
    "--wait-for-hugepool",
    "--destructive",
];

/// The run flags that take no value.
const SWITCHES: [&str; 6] = ["--quiet", "--help", "--emit-goldens", "--allow-unsupported", "--record-unsupported", "--destructive"];

fn parse_run(args: &[String], allowed: &[&str]) -> Result<RunArgs, UsageError> {
    let mut a = RunArgs { seed: 1, timeout_ms: 10_000, ..RunArgs::default() };
    let mut i = 0;
    while i < args.len() {
        let raw = &args[i];
        i += 1;
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match raw.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (raw.clone(), None),
        };
        if !flag.starts_with("--") {
            return Err(UsageError(format!("unexpected argument {raw:?}")));
        }
        if !allowed.contains(&flag.as_str()) {
            return Err(UsageError(format!("unknown flag {flag}")));
        }
        if SWITCHES.contains(&flag.as_str()) {
            if inline.is_some() {
                return Err(UsageError(format!("{flag} takes no value")));
            }
            a.quiet |= flag == "--quiet";
            a.emit_goldens |= flag == "--emit-goldens";
            a.allow_unsupported |= flag == "--allow-unsupported";
            a.record_unsupported |= flag == "--record-unsupported";
            a.destructive |= flag == "--destructive";
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => {
                let v = args.get(i).ok_or_else(|| UsageError(format!("{flag} needs a value")))?;
                i += 1;
                v.clone()
            }
        };
        match flag.as_str() {
            "--generate" => a.generate = Some(num(&flag, &value)?),
            "--seed" => a.seed = num(&flag, &value)?,
            "--scenario" => a.scenarios.push(num(&flag, &value)?),
            "--case" => a.cases.push(PathBuf::from(value)),
            "--cases" => a.case_dirs.push(PathBuf::from(value)),
            "--report" => a.report = Some(PathBuf::from(value)),
            "--coverage" => a.coverage = Some(PathBuf::from(value)),
            "--jobs" => {
                let n: usize = num(&flag, &value)?;
                if n == 0 {
                    return Err(UsageError("--jobs: must be at least 1".into()));
                }
                a.jobs = Some(n);
            }
            "--timeout-ms" => {
                let n: u64 = num(&flag, &value)?;
                if n == 0 {
                    return Err(UsageError("--timeout-ms: must be at least 1".into()));
                }
                a.timeout_ms = n;
            }
            "--mutate" => {
                let m = Mutation::from_name(&value).ok_or_else(|| {
                    let known: Vec<&str> = Mutation::ALL.iter().map(|m| m.name()).collect();
                    UsageError(format!("--mutate: unknown mutation {value:?} (known: {})", known.join(", ")))
                })?;
                if !a.mutate.contains(&m) {
                    a.mutate.push(m);
                }
            }
            "--profile-facts" => a.profile_facts = Some(value),
            "--expected" => a.expected = Some(PathBuf::from(value)),
            "--format" => {
                a.ktap = match value.as_str() {
                    "ktap" => true,
                    "human" => false,
                    _ => return Err(UsageError(format!("--format: {value:?} is not a format (human or ktap)"))),
                }
            }
            "--kernel-config" => a.kernel_config = Some(PathBuf::from(value)),
            "--wait-for-hugepool" => a.wait_for_hugepool_s = num(&flag, &value)?,
            "--floor" => a.floor = Some(PathBuf::from(value)),
            "--parts" => {
                for part in value.split(',') {
                    if !["host", "simulator", "whole"].contains(&part) {
                        return Err(UsageError(format!("--parts: unknown part {part:?} (known: host, simulator, whole)")));
                    }
                    if !a.bench_parts.iter().any(|p| p == part) {
                        a.bench_parts.push(part.to_string());
                    }
                }
            }
            "--floor-secs" => {
                let s: f64 = value.parse().map_err(|_| UsageError(format!("--floor-secs: {value:?} is not a number of seconds")))?;
                if !(s > 0.0 && s <= 600.0) {
                    return Err(UsageError(format!("--floor-secs: {value} is outside (0, 600]")));
                }
                a.floor_ms = Some((s * 1000.0).round().max(1.0) as u64);
            }
            "--goldens" => a.goldens = Some(PathBuf::from(value)),
            "--findings" => a.findings = Some(PathBuf::from(value)),
            _ => unreachable!("every allowed flag is handled"),
        }
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Command, UsageError> {
        parse(&s.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    #[test]
    fn run_defaults() {
        let Command::Run(a) = p("run").unwrap() else { panic!() };
        assert_eq!((a.generate_count(), a.seed, a.timeout_ms), (10_000, 1, 10_000));
        let Command::Run(a) = p("run --seed=3 --scenario 5 --scenario 9").unwrap() else { panic!() };
        assert_eq!((a.generate_count(), a.seed, a.scenarios), (0, 3, vec![5, 9]));
    }

    #[test]
    fn destructive_is_a_switch_of_run_and_simulate() {
        let Command::Run(a) = p("run --destructive --generate 5").unwrap() else { panic!() };
        assert!(a.destructive);
        let Command::Run(a) = p("run").unwrap() else { panic!() };
        assert!(!a.destructive);
        assert!(p("run --destructive=1").unwrap_err().0.contains("takes no value"));
        assert!(matches!(p("simulate --scenario 3 --destructive").unwrap(), Command::Simulate(a) if a.destructive));
        assert!(p("bench --destructive").is_err());
    }

    #[test]
    fn bench_takes_the_floor_and_parts() {
        let Command::Bench(a) = p("bench --floor /x/scen_min --floor-secs 0.5 --parts whole,host,whole --wait-for-hugepool 9").unwrap() else {
            panic!()
        };
        assert_eq!((a.floor.as_deref(), a.floor_ms, a.bench_parts.clone()), (Some(std::path::Path::new("/x/scen_min")), Some(500), vec!["whole".to_string(), "host".to_string()]));
        assert_eq!(a.wait_for_hugepool_s, 9);
        assert!(p("bench --parts sim").unwrap_err().0.contains("--parts"));
        assert!(p("bench --floor-secs 0").unwrap_err().0.contains("--floor-secs"));
        assert!(p("bench --floor-secs soon").unwrap_err().0.contains("--floor-secs"));
        assert!(p("run --floor /x").unwrap_err().0.contains("--floor"));
    }

    #[test]
    fn mistakes_are_usage_errors() {
        assert!(p("run --bogus").unwrap_err().0.contains("--bogus"));
        assert!(p("run --generate ten").unwrap_err().0.contains("--generate"));
        assert!(p("run --seed").unwrap_err().0.contains("needs a value"));
        assert!(p("run --mutate nope").unwrap_err().0.contains("dontneed-keeps-anon"));
        assert!(p("simulate --seed 1").is_err());
        assert!(p("bench --mutate dontneed-keeps-anon").is_err());
        assert!(p("").is_err());
        assert!(p("run --format xml").unwrap_err().0.contains("--format"));
        let Command::Run(a) = p("run --format ktap --kernel-config /c").unwrap() else { panic!() };
        assert!(a.ktap && a.kernel_config == Some(PathBuf::from("/c")));
    }

    #[test]
    fn help_on_any_subcommand_prints_usage_and_runs_nothing() {
        for s in ["run --help", "run -h", "run --generate 5 --help", "simulate --help", "detect -h", "bench --help"] {
            assert_eq!(p(s), Ok(Command::Help), "{s}");
        }
    }
}
