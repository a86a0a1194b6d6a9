//! What a new user meets first: bad paths and arguments are exit 2 with the file or flag named, never a
//! green run or a panic; `--help` runs nothing; `madcheck detect` output is accepted back; a run as an
//! unprivileged user works in the reduced mode; ^C on a terminal interrupts the run without false
//! divergences.

mod support;

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

fn case_with(maps: usize, files: usize) -> String {
    let files: Vec<String> = (0..files).map(|_| r#"{"kind": "memfd", "pages": 1}"#.to_string()).collect();
    let maps: Vec<String> = (0..maps).map(|i| format!(r#"{{"page": {i}, "pages": 1, "prot": "rw-", "kind": "anon_private"}}"#)).collect();
    format!(
        r#"{{"id": "over_the_limits", "description": "x", "arena_pages": 128, "files": [{}], "maps": [{}], "steps": [{{"op": "read", "page": 0}}]}}"#,
        files.join(","),
        maps.join(",")
    )
}

#[test]
fn too_many_maps_or_files_are_bad_input() {
    let d = Scratch::new("limits-maps");
    let case = d.0.join("over_the_limits.json");
    std::fs::write(&case, case_with(65, 0)).unwrap();
    assert_bad_input(&madcheck(&[s("run"), s("--case"), case.as_os_str()]), "65 maps: at most 64 per scenario");
    std::fs::write(&case, case_with(1, 17)).unwrap();
    assert_bad_input(&madcheck(&[s("run"), s("--case"), case.as_os_str()]), "17 files: at most 16 per scenario");
    // At the limits the case is accepted (simulate reads and validates it the same way).
    std::fs::write(&case, case_with(64, 16)).unwrap();
    let o = madcheck(&[s("simulate"), s("--case"), case.as_os_str()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn a_case_file_over_4_mib_is_refused_before_it_is_parsed() {
    let d = Scratch::new("limits-bytes");
    let case = d.0.join("huge.json");
    // Not even JSON: the size alone must refuse it, before any parsing.
    std::fs::write(&case, vec![b' '; (4 << 20) + 1]).unwrap();
    assert_bad_input(&madcheck(&[s("run"), s("--case"), case.as_os_str()]), "4194305 bytes: a case file is at most 4194304 bytes");
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

/// A pseudo-terminal: the master side (this test's end) and the path of the slave side.
fn open_pty() -> (std::fs::File, std::path::PathBuf) {
    use std::os::fd::FromRawFd;
    // SAFETY: posix_openpt/grantpt/unlockpt/ptsname_r on a descriptor we own, with a sized buffer.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(m >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        assert_eq!(libc::grantpt(m), 0, "grantpt: {}", std::io::Error::last_os_error());
        assert_eq!(libc::unlockpt(m), 0, "unlockpt: {}", std::io::Error::last_os_error());
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0, "ptsname_r");
        let slave = std::ffi::CStr::from_ptr(name.as_ptr()).to_string_lossy().into_owned();
        (std::fs::File::from_raw_fd(m), slave.into())
    }
}

/// ^C typed on the terminal a run was started from: the terminal sends SIGINT to its foreground process
/// group, which is the run's. Before issue 16 the workers were in that group too and died of it, so the
/// interrupted run reported `observed signal 2` divergences. Now only the runner gets it: it stops
/// handing out scenarios and ends with the report marked interrupted and exit code 1 (scenarios not run).
#[test]
fn ctrl_c_on_the_terminal_interrupts_the_run_without_divergences() {
    use std::io::{Read, Write};
    let d = Scratch::new("ctrl-c");
    let report = d.0.join("r.json");
    let (mut master, slave_path) = open_pty();
    let slave = || std::fs::OpenOptions::new().read(true).write(true).open(&slave_path).expect("open the pty slave");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_madcheck"));
    cmd.args(["run", "--generate", "200000", "--seed", "1", "--findings", "none", "--report"])
        .arg(&report)
        .stdin(slave())
        .stdout(slave())
        .stderr(slave());
    // A new session whose controlling terminal is the pty: madcheck is its foreground process group, as
    // in a shell on a terminal.
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut run = cmd.spawn().expect("madcheck starts on the pty");
    // Close this side's slave descriptors: the master reads EIO once madcheck has closed its own.
    drop(cmd);
    // The terminal's output (progress bar, summary) until the slave side is closed (EIO).
    let mut reader = master.try_clone().unwrap();
    let screen = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    // Wait until scenarios run on the workers.
    let start = std::time::Instant::now();
    let workers = loop {
        // Workers: the runner's children (each lives about 0.1 s: a scenario that ends in a signal on
        // purpose replaces it).
        let w = support::children(run.id());
        if !w.is_empty() && start.elapsed() > std::time::Duration::from_millis(1500) {
            break w;
        }
        assert!(matches!(run.try_wait(), Ok(None)), "madcheck ended before ^C");
        assert!(start.elapsed() < std::time::Duration::from_secs(120), "no workers after 120 s");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    // SAFETY: tcgetpgrp on the master we own.
    let foreground = unsafe { libc::tcgetpgrp(std::os::fd::AsRawFd::as_raw_fd(&master)) };
    assert_eq!(foreground as u32, run.id(), "madcheck is the terminal's foreground process group");
    for w in &workers {
        let pgrp = support::stat(*w).map(|s| s.2);
        assert!(pgrp != Some(foreground as u32), "worker {w} is in the terminal's foreground group {foreground}");
    }
    master.write_all(b"\x03").expect("type ^C");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(st) = run.try_wait().expect("wait") {
            break st;
        }
        assert!(std::time::Instant::now() < deadline, "madcheck did not end within 60 s of ^C");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    drop(master);
    let screen = screen.join().unwrap();
    // The summary at the end, not the progress bar's redraws.
    let screen = screen.rfind("madcheck: ").map(|i| screen[i..].to_string()).unwrap_or(screen);
    let text = std::fs::read_to_string(&report).unwrap_or_else(|e| panic!("no report ({e}); terminal:\n{screen}"));
    let rep: serde_json::Value = serde_json::from_str(&text).expect("report JSON");
    assert_eq!(status.code(), Some(1), "an interrupted run exits 1 (README); terminal:\n{screen}");
    assert_eq!((rep["interrupted"].as_bool(), rep["complete"].as_bool()), (Some(true), Some(false)), "{screen}");
    assert!(rep["not_run"].as_u64().unwrap_or(0) > 0, "{screen}");
    assert!(screen.contains("NOT RUN:") && screen.contains("(interrupted)"), "the summary says so:\n{screen}");
    assert_eq!(rep["verdicts"]["diverge"], 0, "{screen}");
    assert!(!screen.contains("observed signal 2") && !screen.contains("Other(2)"), "{screen}");
    // Not even a disturbed worker that was re-run: the SIGINT must not reach the workers at all.
    assert_eq!(rep["reruns"].as_array().map(|r| r.len()), Some(0), "{}", rep["reruns"]);
    assert_eq!(rep["verdicts"]["infra_error"], 0, "{screen}");
}

use std::os::unix::process::CommandExt;

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
