//! What a new user meets first: bad paths and arguments are exit 2 with the file or flag named, never a
//! green run or a panic; `--help` runs nothing; `madcheck detect` output is accepted back; a run as an
//! unprivileged user works in the reduced mode; ^C on a terminal interrupts the run without false
//! divergences.

use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Output};

fn madcheck(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_madcheck")).args(args).output().expect("madcheck runs")
}

fn s(x: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(x)
}

/// A scratch directory removed on drop (also when an assertion fails).
struct Scratch(std::path::PathBuf);
impl Scratch {
    fn new(tag: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("madcheck-newuser-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        Scratch(d)
    }
}
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn assert_bad_input(o: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "stderr:\n{err}\nstdout:\n{}", String::from_utf8_lossy(&o.stdout));
    assert!(err.contains(needle), "{needle:?} not in stderr:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn help_prints_usage_and_runs_nothing() {
    for sub in ["run", "simulate", "detect", "bench"] {
        for h in ["--help", "-h"] {
            let o = madcheck(&[s(sub), s(h)]);
            assert_eq!(o.status.code(), Some(0), "{sub} {h}");
            let out = String::from_utf8_lossy(&o.stdout);
            assert!(out.starts_with("usage:") && !out.contains("scenarios/s"), "{sub} {h}: {out}");
        }
    }
}

#[test]
fn a_non_utf8_argument_is_bad_input_not_a_panic() {
    let bad = std::ffi::OsStr::from_bytes(b"/tmp/\xff\xfe.json");
    assert_bad_input(&madcheck(&[s("run"), s("--case"), bad]), "not valid UTF-8");
}

#[test]
fn an_empty_cases_folder_is_bad_input() {
    let d = Scratch::new("empty");
    assert_bad_input(&madcheck(&[s("run"), s("--cases"), d.0.as_os_str()]), "no case files");
}

#[test]
fn a_goldens_folder_without_a_profile_is_bad_input() {
    let d = Scratch::new("goldens");
    let case = concat!(env!("CARGO_MANIFEST_DIR"), "/../cases/corpus/child_write_after_fork_copies_the_page.json");
    assert_bad_input(&madcheck(&[s("run"), s("--case"), s(case), s("--goldens"), d.0.as_os_str()]), "no profile in it");
}

#[test]
fn an_unwritable_report_is_refused_before_the_run() {
    let o = madcheck(&[s("run"), s("--generate"), s("50"), s("--report"), s("/proc/madcheck-cannot-write-here.json")]);
    assert_bad_input(&o, "--report /proc/madcheck-cannot-write-here.json: cannot write there");
    assert!(!String::from_utf8_lossy(&o.stdout).contains("match"), "the run must not start");
}

#[test]
fn a_scenario_past_the_size_limits_is_bad_input() {
    let d = Scratch::new("limits");
    let steps: Vec<String> = (0..5000).map(|_| r#"{"op": "read", "page": 0}"#.to_string()).collect();
    let case = d.0.join("too_many_steps.json");
    let text = format!(
        r#"{{"id": "too_many_steps", "description": "x", "arena_pages": 2, "maps": [{{"page": 0, "pages": 1, "prot": "rw-", "kind": "anon_private"}}], "steps": [{}]}}"#,
        steps.join(",")
    );
    std::fs::write(&case, text).unwrap();
    assert_bad_input(&madcheck(&[s("run"), s("--case"), case.as_os_str()]), "at most 4096 per scenario");
}

#[test]
fn detect_output_is_accepted_by_profile_facts() {
    let d = Scratch::new("detect");
    let o = madcheck(&[s("detect")]);
    assert_eq!(o.status.code(), Some(0));
    let facts = d.0.join("detect.json");
    std::fs::write(&facts, &o.stdout).unwrap();
    let o = madcheck(&[s("simulate"), s("--scenario"), s("3"), s("--profile-facts"), facts.as_os_str()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
}

/// As uid 65534 (needs root to switch; skipped with a message otherwise): the worker must be able to read
/// its own /proc/self files, so the run has no infrastructure errors.
#[test]
fn an_unprivileged_run_has_no_infrastructure_errors() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc_geteuid() } != 0 {
        eprintln!("skipped: switching to uid 65534 needs root");
        return;
    }
    let d = Scratch::new("nobody");
    std::fs::set_permissions(&d.0, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    // The checkout (and so the built binary) may sit below a directory only root can enter (mktemp -d is
    // 0700): run a copy from the scratch directory, with a goldens root there that holds a profile.
    let exe = d.0.join("madcheck");
    std::fs::copy(env!("CARGO_BIN_EXE_madcheck"), &exe).expect("copy madcheck");
    let goldens = d.0.join("goldens");
    std::fs::create_dir_all(goldens.join("some-profile/host")).unwrap();
    let report = d.0.join("r.json");
    let o = Command::new(&exe)
        .args(["run", "--generate", "200", "--seed", "1", "--quiet", "--goldens"])
        .arg(&goldens)
        .arg("--report")
        .arg(&report)
        .env("TMPDIR", &d.0)
        .current_dir(&d.0)
        .uid(65534)
        .gid(65534)
        .output()
        .expect("madcheck runs");
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("/proc/self"), "{err}");
    assert!(out.contains("infra-error 0"), "stdout:\n{out}\nstderr:\n{err}");
    // hugetlb needs root to reserve the pool: unsupported here with the reason, which the profile's
    // expected unsupported set does not count against the model.
    assert_eq!(o.status.code(), Some(0), "stdout:\n{out}\nstderr:\n{err}");
}

use std::os::unix::process::CommandExt;

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
