//! Constrained runs (issue 14): a read-only scratch directory, a full one, and a small RLIMIT_MEMLOCK
//! without CAP_IPC_LOCK. Each run must degrade to Unsupported with the reason (or to the kernel's own
//! answer the model predicts), never crash, never report a false divergence or an infrastructure error.
//!
//! The scratch directories are tmpfs mounts inside a private mount namespace of the madcheck process
//! (unshare(CLONE_NEWNS) and MS_PRIVATE in pre_exec): they vanish with its last process, so nothing
//! reaches the host's mount table, even when this test or madcheck crashes. The RLIMIT_MEMLOCK runs set
//! the limit and drop CAP_IPC_LOCK from the bounding set in pre_exec, so root loses it at exec.
//! All of it needs root; without it each test is skipped with a message.

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A directory removed on drop (also when an assertion fails).
struct Scratch(std::path::PathBuf);
impl Scratch {
    fn new(tag: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("madcheck-constrained-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("scratch")).expect("temp dir");
        Scratch(d)
    }
}
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn corpus(id: &str) -> String {
    format!("{}/../cases/corpus/{id}.json", env!("CARGO_MANIFEST_DIR"))
}

/// `madcheck run` with TMPDIR on a tmpfs mounted with `flags` and `opts` over `d/scratch`, in a private
/// mount namespace of the madcheck process.
fn run_on_tmpfs(d: &Scratch, flags: libc::c_ulong, opts: &str, args: &[&str]) -> Output {
    let target = CString::new(d.0.join("scratch").as_os_str().as_encoded_bytes()).unwrap();
    let opts = CString::new(opts).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_madcheck"));
    cmd.args(args).env("TMPDIR", d.0.join("scratch"));
    // SAFETY: only async-signal-safe calls between fork and exec, on CStrings built before the fork.
    unsafe {
        cmd.pre_exec(move || {
            let none = c"none".as_ptr();
            if libc::unshare(libc::CLONE_NEWNS) != 0
                || libc::mount(none, c"/".as_ptr(), std::ptr::null(), libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()) != 0
                || libc::mount(c"tmpfs".as_ptr(), target.as_ptr(), c"tmpfs".as_ptr(), flags, opts.as_ptr().cast()) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().expect("madcheck runs")
}

fn report(path: &std::path::Path, o: &Output) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!("no report ({e}); stdout:\n{}\nstderr:\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    });
    serde_json::from_str(&text).expect("report JSON")
}

/// The common promise: no crash, exit 0, no divergence, no infrastructure error, and the disk-file
/// scenarios (generated and named) unsupported with a reason naming the directory, `what` (said once on
/// stderr after the directory) and `error`.
fn assert_disk_files_unsupported(d: &Scratch, flags: libc::c_ulong, opts: &str, what: &str, error: &str) {
    let rep_path = d.0.join("r.json");
    let o = run_on_tmpfs(
        d,
        flags,
        opts,
        &[
            "run",
            "--generate",
            "300",
            "--seed",
            "1",
            "--case",
            &corpus("dontneed_locked_file_private_disk_restores_file_content"),
            "--case",
            &corpus("cold_locked_anon_is_einval"),
            "--findings",
            "none",
            "--quiet",
            "--wait-for-hugepool",
            "300",
            "--report",
            rep_path.to_str().unwrap(),
        ],
    );
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let rep = report(&rep_path, &o);
    let dir = d.0.join("scratch").display().to_string();
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(rep["verdicts"]["diverge"], 0, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(rep["verdicts"]["infra_error"], 0, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(rep["golden_mismatches"], 0, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(o.status.code(), Some(0), "stdout:\n{out}\nstderr:\n{err}");
    // Said once at the start, with the directory and the error.
    assert!(err.contains(&format!("scratch directory {dir} (TMPDIR) {what}")) && err.contains(error), "{err}");
    let reasons = rep["unsupported_by_reason"].as_object().expect("unsupported_by_reason").clone();
    let disk = reasons.iter().find(|(k, _)| k.contains(&dir) && k.contains(error));
    let Some((_, n)) = disk else { panic!("no unsupported reason naming {dir} and {error:?}: {reasons:?}") };
    // seed 1's first 300 scenarios have disk files, and so has the named case.
    assert!(n.as_u64().unwrap_or(0) >= 2, "{reasons:?}");
    // Everything else ran: the anonymous named case matched.
    assert!(rep["verdicts"]["match"].as_u64().unwrap_or(0) > 100, "{}", rep["verdicts"]);
}

/// A read-only scratch directory (a tmpfs mounted `ro`: a 0555 directory does not stop root).
/// Decision (README, Reliability contract): the run goes on; only scenarios with a disk file are
/// Unsupported, with the reason, because anonymous memory and memfds are most of the coverage and a
/// kernel CI machine with a read-only /tmp should still test them.
#[test]
fn a_read_only_scratch_directory_makes_disk_file_scenarios_unsupported() {
    if !is_root() {
        eprintln!("skipped: mounting a read-only tmpfs in a private mount namespace needs root");
        return;
    }
    let d = Scratch::new("ro");
    assert_disk_files_unsupported(&d, libc::MS_RDONLY, "size=1m", "cannot hold the disk files", "Read-only file system");
}

/// A full scratch directory: a tmpfs of 16 pages, which cannot hold one scenario's files.
#[test]
fn a_full_scratch_directory_makes_disk_file_scenarios_unsupported() {
    if !is_root() {
        eprintln!("skipped: mounting a tmpfs in a private mount namespace needs root");
        return;
    }
    let d = Scratch::new("full");
    assert_disk_files_unsupported(&d, 0, "size=64k", "cannot hold the disk files", "No space left on device");
}

/// A scratch directory on tmpfs that has room: its "disk files" would be shmem files (no readahead,
/// fault-around or write-back of a block device's page cache), so the disk-file scenarios are not run
/// against the model's disk-file rules. What a Debian 6.19.y-7.1.y guest without an ext4 module showed
/// before: 8 named disk-file cases diverging on its tmpfs scratch directory.
#[test]
fn a_tmpfs_scratch_directory_makes_disk_file_scenarios_unsupported() {
    if !is_root() {
        eprintln!("skipped: mounting a tmpfs in a private mount namespace needs root");
        return;
    }
    let d = Scratch::new("tmpfs");
    assert_disk_files_unsupported(&d, 0, "size=64m", "is on tmpfs", "not a disk filesystem");
}

/// Cases that lock past a 16-page RLIMIT_MEMLOCK (64 KiB on 4K pages; the arithmetic is in pages).
fn memlock_cases(d: &Scratch, ps: u64) -> Vec<String> {
    let lim = 65536 / ps; // 16 pages on 4K
    let cases = [
        (
            "mlock_up_to_and_past_the_memlock_limit",
            format!(
                r#"{{"id": "mlock_up_to_and_past_the_memlock_limit", "description": "mlock within RLIMIT_MEMLOCK, again over the same range (not counted twice), past it, then after munlock",
                "arena_pages": 64, "maps": [{{"page": 0, "pages": 48, "prot": "rw-", "kind": "anon_private"}}],
                "steps": [
                  {{"op": "mlock", "page": 0, "pages": {a}}},
                  {{"op": "mlock", "page": 2, "pages": {a}}},
                  {{"op": "mlock", "page": 30, "pages": 8}},
                  {{"op": "mlock", "page": 30, "pages": {rest}, "onfault": true}},
                  {{"op": "mlock", "page": 40, "pages": 1, "onfault": true}},
                  {{"op": "munlock", "page": 0, "pages": {a2}}},
                  {{"op": "mlock", "page": 30, "pages": {lim}}},
                  {{"op": "write", "page": 31, "fill": 7}}
                ]}}"#,
                a = lim * 3 / 4,
                a2 = lim * 3 / 4 + 2,
                rest = lim - (lim * 3 / 4 + 2),
                lim = lim
            ),
        ),
        (
            "map_locked_up_to_and_past_the_memlock_limit",
            format!(
                r#"{{"id": "map_locked_up_to_and_past_the_memlock_limit", "description": "MAP_LOCKED layout within RLIMIT_MEMLOCK, then MAP_LOCKED mmap steps past it, over the locked VMA (counted), and up to it",
                "arena_pages": 64, "maps": [{{"page": 0, "pages": {h}, "prot": "rw-", "kind": "anon_private", "locked": true}}],
                "steps": [
                  {{"op": "mmap", "map": {{"page": 20, "pages": {h1}, "prot": "rw-", "kind": "anon_private", "locked": true}}}},
                  {{"op": "mmap", "map": {{"page": 0, "pages": {lim}, "prot": "rw-", "kind": "anon_private", "locked": true}}}},
                  {{"op": "mmap", "map": {{"page": 20, "pages": {h}, "prot": "rw-", "kind": "anon_private", "locked": true}}}},
                  {{"op": "mmap", "map": {{"page": 40, "pages": 1, "prot": "rw-", "kind": "anon_private", "locked": true}}}},
                  {{"op": "read", "page": 21}}
                ]}}"#,
                h = lim / 2,
                h1 = lim / 2 + 1,
                lim = lim
            ),
        ),
        (
            "a_map_locked_layout_past_the_memlock_limit",
            format!(
                r#"{{"id": "a_map_locked_layout_past_the_memlock_limit", "description": "a MAP_LOCKED layout larger than RLIMIT_MEMLOCK cannot be set up",
                "arena_pages": 64, "maps": [{{"page": 0, "pages": {big}, "prot": "rw-", "kind": "anon_private", "locked": true}}],
                "steps": [{{"op": "read", "page": 1}}]}}"#,
                big = lim + 4
            ),
        ),
    ];
    cases
        .iter()
        .map(|(id, text)| {
            let p = d.0.join(format!("{id}.json"));
            std::fs::write(&p, text).unwrap();
            p.display().to_string()
        })
        .collect()
}

/// `madcheck ARGS` with RLIMIT_MEMLOCK at `bytes` and without CAP_IPC_LOCK.
fn with_memlock(bytes: u64, args: &[String]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_madcheck"));
    cmd.args(args);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let rl = libc::rlimit { rlim_cur: bytes as libc::rlim_t, rlim_max: bytes as libc::rlim_t };
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &rl) != 0 || libc::prctl(libc::PR_CAPBSET_DROP, 14, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().expect("madcheck runs")
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as u64 }
}

/// What the model expects for one case under the limit (`madcheck simulate` detects the same host).
fn simulated(bytes: u64, case: &str) -> String {
    let o = with_memlock(bytes, &["simulate".into(), "--case".into(), case.into()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn memlock_run(tag: &str, bytes: u64) -> (Scratch, Vec<String>, serde_json::Value) {
    let d = Scratch::new(tag);
    let cases = memlock_cases(&d, page_size());
    let rep_path = d.0.join("r.json");
    let mut args: Vec<String> = ["run", "--generate", "2000", "--seed", "1", "--findings", "none", "--quiet", "--wait-for-hugepool", "300"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for c in &cases {
        args.push("--case".into());
        args.push(c.clone());
    }
    args.push("--report".into());
    args.push(rep_path.display().to_string());
    let o = with_memlock(bytes, &args);
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let rep = report(&rep_path, &o);
    assert!(!err.contains("panicked"), "{err}");
    // The limit and the missing capability are facts of the run.
    let facts = &rep["model"]["facts"];
    assert_eq!((facts["memlock_limit"].as_u64(), facts["cap_ipc_lock"].as_bool()), (Some(bytes), Some(false)), "{facts}");
    assert_eq!(rep["model"]["mlock_limit_pages"].as_u64(), Some(bytes / page_size()));
    assert_eq!(rep["verdicts"]["diverge"], 0, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(rep["verdicts"]["infra_error"], 0, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(o.status.code(), Some(0), "stdout:\n{out}\nstderr:\n{err}");
    // The layout that cannot be set up is unsupported with the reason, not an infrastructure error.
    let reasons = rep["unsupported_by_reason"].as_object().expect("unsupported_by_reason");
    assert!(
        reasons.keys().any(|k| k.starts_with("layout map 0 (MAP_LOCKED") && k.contains("RLIMIT_MEMLOCK")),
        "{reasons:?}"
    );
    (d, cases, rep)
}

/// RLIMIT_MEMLOCK 64 KiB without CAP_IPC_LOCK: mlock past the limit is ENOMEM, MAP_LOCKED past it
/// EAGAIN, both predicted by the model (the run matches the kernel, and the model's answers are those).
#[test]
fn a_small_memlock_limit_is_modelled() {
    if !is_root() {
        eprintln!("skipped: dropping CAP_IPC_LOCK from the bounding set needs root");
        return;
    }
    let bytes = 65536;
    let (_d, cases, rep) = memlock_run("memlock", bytes);
    // Both cases that lock matched the kernel, and the model's answers there are the limit's errors.
    assert!(rep["verdicts"]["match"].as_u64().unwrap_or(0) > 1000, "{}", rep["verdicts"]);
    let mlock = simulated(bytes, &cases[0]);
    // The third mlock (8 more pages) and the fifth (one page past a full limit); the one over a locked
    // range and the last one (after munlock) are within it.
    assert_eq!(mlock.matches("ENOMEM").count(), 2, "{mlock}");
    let map = simulated(bytes, &cases[1]);
    // One page past the limit, over the locked VMA (which still counts), and one page past a full limit.
    assert_eq!(map.matches("EAGAIN").count(), 3, "{map}");
}

/// RLIMIT_MEMLOCK 0 without CAP_IPC_LOCK: can_do_mlock fails, so mlock, mlock2 and MAP_LOCKED are EPERM.
#[test]
fn a_zero_memlock_limit_is_modelled() {
    if !is_root() {
        eprintln!("skipped: dropping CAP_IPC_LOCK from the bounding set needs root");
        return;
    }
    let (_d, cases, rep) = memlock_run("memlock0", 0);
    assert!(rep["verdicts"]["match"].as_u64().unwrap_or(0) > 1000, "{}", rep["verdicts"]);
    let mlock = simulated(0, &cases[0]);
    // Six mlock/mlock2 calls, each EPERM; munlock is 0.
    assert_eq!(mlock.matches("EPERM").count(), 6, "{mlock}");
}
