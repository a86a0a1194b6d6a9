//! Hostile input: every bad scenario file makes `madcheck run` exit 2 with a message that names the file
//! and the field, and never panics. The committed corpus is `cases/tests/bad/NAME.json`, each with the
//! message fragments it must produce in `NAME.expect`; inputs too big to commit or impossible to commit
//! (10^6 steps, a fifo, a non-UTF-8 file name, ...) are made here at run time, in a scratch directory
//! removed at the end, pass or fail.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn bad_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../cases/tests/bad")
}

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("madcheck-bad-input-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("create the scratch directory");
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `madcheck run ARGS` with a time limit (a hostile file must not hang the run either) and returns
/// (exit code, stderr).
fn madcheck_run(args: &[&OsStr]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_madcheck"))
        .arg("run")
        .args(["--quiet", "--findings", "none"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("madcheck starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if child.try_wait().expect("wait for madcheck").is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("madcheck run {args:?} still running after 30 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let o = child.wait_with_output().expect("madcheck output");
    (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// The contract for one bad input: exit 2, the file named, every fragment present, no panic.
fn check(what: &str, args: &[&OsStr], names: &str, fragments: &[&str]) -> Result<(), String> {
    let (code, err) = madcheck_run(args);
    let mut problems = Vec::new();
    if code != Some(2) {
        problems.push(format!("exit code {code:?}, not 2"));
    }
    if err.contains("panicked") || err.contains("RUST_BACKTRACE") {
        problems.push("it panicked".into());
    }
    if !err.contains(names) {
        problems.push(format!("the message does not name {names:?}"));
    }
    for f in fragments {
        if !err.contains(f) {
            problems.push(format!("the message lacks {f:?}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{what}: {}\n  stderr: {}", problems.join("; "), err.trim_end()))
    }
}

#[test]
fn every_committed_bad_case_exits_2_naming_the_file_and_field() {
    let dir = bad_dir();
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir).expect("cases/tests/bad").map(|e| e.unwrap().path()).collect();
    names.sort();
    let mut failures = Vec::new();
    let mut checked = 0;
    for p in &names {
        match p.extension().and_then(OsStr::to_str) {
            Some("json") => {
                let expect = p.with_extension("expect");
                let Ok(text) = std::fs::read_to_string(&expect) else {
                    failures.push(format!("{}: no {} next to it", p.display(), expect.display()));
                    continue;
                };
                let fragments: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
                assert!(!fragments.is_empty(), "{} is empty", expect.display());
                let path = p.display().to_string();
                if let Err(e) = check(&path, &[OsStr::new("--case"), p.as_os_str()], &format!("{path}: "), &fragments) {
                    failures.push(e);
                }
                checked += 1;
            }
            Some("expect") if !p.with_extension("json").exists() => {
                failures.push(format!("{}: no .json case next to it", p.display()));
            }
            _ => {}
        }
    }
    assert!(checked >= 50, "only {checked} bad cases in {}", dir.display());
    assert!(failures.is_empty(), "{} of {checked} bad cases broke the contract:\n{}", failures.len(), failures.join("\n"));
}

/// `n` copies of `item` as a JSON array.
fn repeated(item: &str, n: usize) -> String {
    let mut s = String::with_capacity(n * (item.len() + 1) + 2);
    s.push('[');
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push_str(item);
    }
    s.push(']');
    s
}

#[test]
fn inputs_made_at_test_time_exit_2_naming_the_file() {
    let scratch = Scratch::new("generated");
    let d = &scratch.0;
    let mut failures = Vec::new();
    let mut run = |what: &str, path: &Path, fragments: &[&str]| {
        let shown = path.display().to_string();
        if let Err(e) = check(what, &[OsStr::new("--case"), path.as_os_str()], &format!("{shown}: "), fragments) {
            failures.push(e);
        }
    };
    let write = |name: &str, text: &str| {
        let p = d.join(name);
        std::fs::write(&p, text).expect("write a generated case");
        p
    };
    let read = r#"{"op":"read","page":0}"#;
    let map = r#"{"page":0,"pages":1,"prot":"rw-","kind":"anon_private"}"#;

    // 10^6 steps and 10^6 maps: refused by size before parsing (27 MB and 56 MB of JSON).
    let p = write("million_steps.json", &format!(r#"{{"arena_pages":8,"maps":[],"steps":{}}}"#, repeated(read, 1_000_000)));
    run("10^6 steps", &p, &["bytes: a case file is at most 4194304 bytes"]);
    let p = write("million_maps.json", &format!(r#"{{"arena_pages":8,"maps":{},"steps":[]}}"#, repeated(map, 1_000_000)));
    run("10^6 maps", &p, &["bytes: a case file is at most 4194304 bytes"]);
    // Under the size limit but over the count limits: refused by validation, naming the field.
    let p = write("many_steps.json", &format!(r#"{{"arena_pages":8,"maps":[{map}],"steps":{}}}"#, repeated(read, 5000)));
    run("5,000 steps", &p, &["steps: 5000 steps (fork children's and grandchildren's included): at most 4096 per scenario"]);
    let p = write("many_maps.json", &format!(r#"{{"arena_pages":8,"maps":{},"steps":[]}}"#, repeated(map, 100)));
    run("100 maps", &p, &["maps: 100 maps: at most 64 per scenario"]);
    // A fork whose child has 10^4 steps counts them.
    let p = write(
        "big_fork_child.json",
        &format!(r#"{{"arena_pages":8,"maps":[{map}],"steps":[{{"op":"fork","child":{}}}]}}"#, repeated(read, 10_000)),
    );
    run("a fork child of 10^4 steps", &p, &["steps: 10001 steps (fork children's and grandchildren's included)"]);

    // Things that are not files.
    let p = d.join("a_directory.json");
    std::fs::create_dir(&p).unwrap();
    run("a directory", &p, &["cannot read: is a directory"]);
    run("a missing file", &d.join("missing.json"), &["cannot read: No such file or directory"]);
    let p = d.join("a_fifo.json");
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    run("a fifo (reading it would block forever)", &p, &["not a regular file"]);
    run("a device that never ends", Path::new("/dev/zero"), &["not a regular file"]);
    let p = d.join("loop.json");
    std::os::unix::fs::symlink(&p, &p).unwrap();
    run("a symlink loop", &p, &["cannot read: Too many levels of symbolic links"]);

    // A non-UTF-8 file name, given directly: refused as an argument, named (escaped).
    let name = OsStr::from_bytes(b"bad_\xff_name.json");
    let p = d.join(name);
    std::fs::write(&p, r#"{"arena_pages": 8, "maps": [], "steps": []}"#).unwrap();
    if let Err(e) = check("a non-UTF-8 name given to --case", &[OsStr::new("--case"), p.as_os_str()], "bad_\\xFF_name.json", &["is not valid UTF-8"]) {
        failures.push(e);
    }
    // The same file found in a --cases directory: its stem cannot be an id.
    let sub = d.join("dir_with_a_bad_name");
    std::fs::create_dir(&sub).unwrap();
    std::fs::rename(&p, sub.join(name)).unwrap();
    let args = [OsStr::new("--cases"), sub.as_os_str()];
    if let Err(e) = check("a non-UTF-8 name in --cases", &args, "bad_\u{FFFD}_name.json: ", &["the file name has no UTF-8 stem"]) {
        failures.push(e);
    }
    assert!(failures.is_empty(), "{} generated bad inputs broke the contract:\n{}", failures.len(), failures.join("\n"));
}
