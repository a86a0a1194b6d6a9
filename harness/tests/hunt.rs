//! The regression-hunting commands end to end on this kernel: `madcheck shrink` cuts a padded case down
//! to the difference, `madcheck repro` writes C that compiles with plain gcc (and Debian's
//! aarch64-linux-gnu-gcc) and exits 0 on a matching kernel and 1 against a wrong expectation, and
//! `madcheck check` exits 0/1/125 for `git bisect run`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn madcheck(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_madcheck")).args(args).output().expect("madcheck runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A scratch directory, removed when the guard drops: on success, and on a failed assertion too (the
/// panic unwinds through the test's locals).
struct Tmp(PathBuf);

impl std::ops::Deref for Tmp {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tmp(name: &str) -> Tmp {
    let d = std::env::temp_dir().join(format!("madcheck-hunt-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Tmp(d)
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../cases/corpus")
}

/// Ten steps around one DONTNEED of a written private anonymous page; everything else is noise.
const PADDED: &str = r#"{
  "description": "one DONTNEED in ten steps over two maps and a file",
  "arena_pages": 16,
  "files": [ { "kind": "memfd", "pages": 4 } ],
  "maps": [
    { "page": 2, "pages": 4, "prot": "rw-", "kind": "anon_private" },
    { "page": 8, "pages": 4, "prot": "rw-", "kind": "file_shared", "file": 0 }
  ],
  "steps": [
    { "op": "read", "page": 8 },
    { "op": "write", "page": 9, "fill": 5 },
    { "op": "write", "page": 3, "fill": 171 },
    { "op": "madvise", "page": 8, "len_pages": 2, "advice": "COLD" },
    { "op": "mprotect", "page": 10, "pages": 2, "prot": "r--" },
    { "op": "write", "page": 4, "fill": 7 },
    { "op": "madvise", "page": 2, "len_pages": 4, "advice": "DONTNEED" },
    { "op": "read", "page": 11 },
    { "op": "madvise", "page": 8, "len_pages": 4, "advice": "WILLNEED" },
    { "op": "read", "page": 3 }
  ]
}"#;

#[test]
fn shrink_cuts_a_padded_case_to_the_difference() {
    let dir = tmp("shrink");
    let case = dir.join("padded_dontneed.json");
    std::fs::write(&case, PADDED).unwrap();
    let out = dir.join("findings");
    let o = madcheck(&["shrink", "--case", case.to_str().unwrap(), "--mutate", "dontneed-keeps-anon", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let files: Vec<PathBuf> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().path()).collect();
    let json = files.iter().find(|p| p.extension().is_some_and(|e| e == "json")).expect("a finding JSON");
    assert!(files.iter().any(|p| p.extension().is_some_and(|e| e == "c")), "a C reproducer next to it: {files:?}");
    let s = cases::load_scenario(json).expect("the finding loads as a case");
    // The difference needs a write and the DONTNEED (or just a populated map and the DONTNEED).
    assert!(s.program.steps.len() <= 2, "{:#?}", s.program);
    assert_eq!(s.program.maps.len(), 1, "{:#?}", s.program);
    assert!(s.program.files.is_empty(), "{:#?}", s.program);
    let raw: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let prov = &raw["provenance"];
    assert_eq!(prov["stable_runs"], 3);
    assert!(prov["page_size"].as_u64().is_some_and(|ps| ps >= 4096), "{prov}");
    assert!(prov["kernel"].as_str().is_some_and(|k| !k.is_empty()));
    assert!(prov["differed"].as_array().is_some_and(|d| !d.is_empty()));
    // Still the same difference against the mutated model, and none against the real one.
    let j = json.to_str().unwrap();
    assert_eq!(madcheck(&["run", "--case", j, "--mutate", "dontneed-keeps-anon", "--quiet"]).status.code(), Some(1));
    let o = madcheck(&["run", "--case", j, "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn shrink_of_an_agreeing_case_finds_nothing() {
    let case = corpus().join("dontneed_private_anon_reads_zero.json");
    let agree = tmp("agree");
    let o = madcheck(&["shrink", "--case", case.to_str().unwrap(), "--out", agree.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("nothing to shrink"), "{}", text(&o));
}

fn compile(cc: &str, src: &Path, exe: &Path) -> Result<(), String> {
    let o = Command::new(cc)
        .args(["-std=c99", "-O2", "-static", "-Wall", "-Werror", "-o"])
        .arg(exe)
        .arg(src)
        .output()
        .map_err(|e| format!("cannot run {cc}: {e}"))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!("{cc} {}: {}", src.display(), text(&o)))
    }
}

/// `madcheck repro` of `case` into `dir`, compiled with gcc, run: it must say every point matches.
fn repro_matches(dir: &Path, case: &Path, id: &str) -> PathBuf {
    let src = dir.join(format!("{id}.c"));
    let o = madcheck(&["repro", "--case", case.to_str().unwrap(), "--out", src.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let exe = dir.join(id);
    compile("gcc", &src, &exe).unwrap();
    let o = Command::new(&exe).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{id}: {}", text(&o));
    assert!(text(&o).contains("every point matches"), "{}", text(&o));
    src
}

fn have(cc: &str) -> bool {
    Command::new(cc).arg("--version").output().is_ok_and(|o| o.status.success())
}

#[test]
fn corpus_reproducers_compile_and_match_this_kernel() {
    let dir = tmp("repro");
    let mut ids: Vec<PathBuf> =
        std::fs::read_dir(corpus()).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
    ids.sort();
    let cross = have("aarch64-linux-gnu-gcc");
    let mut ran = 0;
    for case in ids {
        let s = cases::load_scenario(&case).unwrap();
        // hugetlb cases need a reserved pool, which a C file does not set up (it says 125 without one).
        if s.program.uses_hugetlb() {
            continue;
        }
        let src = repro_matches(&dir, &case, &s.id);
        if cross && ran < 10 {
            compile("aarch64-linux-gnu-gcc", &src, &dir.join(format!("{}.arm64", s.id))).unwrap();
        }
        ran += 1;
        if ran == 60 {
            break;
        }
    }
    assert_eq!(ran, 60);
    // The arm64 compile needs a cross compiler a machine set up only for Rust lacks: skipped with a
    // message there, required in CI (.ci/run installs it and sets MADCHECK_REQUIRE_ALL_TOOLS=1).
    if !cross {
        let why = "Debian's aarch64-linux-gnu-gcc is not installed (apt-get install gcc-aarch64-linux-gnu): \
                   the arm64 compile of the reproducers was not checked";
        assert!(std::env::var_os("MADCHECK_REQUIRE_ALL_TOOLS").is_none_or(|v| v != "1"), "MADCHECK_REQUIRE_ALL_TOOLS=1: {why}");
        // Straight to stderr: libtest captures eprintln! of a passing test, and a skip must be seen.
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "skipped part of corpus_reproducers_compile_and_match_this_kernel: {why}");
    }
}

/// The caught-fault cases (`try_write`/`try_read`, outside the first 60 above): the C catches the
/// signals with sigsetjmp where the worker uses a CLONE_VM task, and both must give the same points.
#[test]
fn caught_fault_reproducers_compile_and_match_this_kernel() {
    let dir = tmp("repro-caught");
    let mut n = 0;
    for e in std::fs::read_dir(corpus()).unwrap() {
        let case = e.unwrap().path();
        if !case.file_name().is_some_and(|f| f.to_string_lossy().starts_with("try_access_")) {
            continue;
        }
        let s = cases::load_scenario(&case).unwrap();
        repro_matches(&dir, &case, &s.id);
        n += 1;
    }
    assert!(n >= 3, "expected the try_access_* corpus cases, found {n}");
}

/// The cases with a grandchild (a fork inside a fork child, outside the first 60 above): the C forks
/// twice, as the worker does, and checks the grandchild's points, including one killed by a fault.
#[test]
fn grandchild_reproducers_compile_and_match_this_kernel() {
    use simulator::program::Step;
    let dir = tmp("repro-grandchild");
    let mut n = 0;
    for e in std::fs::read_dir(corpus()).unwrap() {
        let case = e.unwrap().path();
        if case.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let s = cases::load_scenario(&case).unwrap();
        let nested = s.program.steps.iter().any(|st| matches!(st, Step::Fork { child } if child.iter().any(|c| matches!(c, Step::Fork { .. }))));
        if !nested || s.program.uses_hugetlb() {
            continue;
        }
        repro_matches(&dir, &case, &s.id);
        n += 1;
    }
    assert!(n >= 7, "expected the grandchild corpus cases, found {n}");
}

#[test]
fn a_wrong_expectation_exits_1_in_madchecks_words() {
    let dir = tmp("wrong");
    let case = corpus().join("dontneed_private_anon_reads_zero.json");
    let src = dir.join("wrong.c");
    let o = madcheck(&["repro", "--case", case.to_str().unwrap(), "--mutate", "dontneed-keeps-anon", "--out", src.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let exe = dir.join("wrong");
    compile("gcc", &src, &exe).unwrap();
    let o = Command::new(&exe).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("DIVERGENCE dontneed_private_anon_reads_zero at 1"), "{t}");
    assert!(t.contains("vma[0].rss:\n    expected  1\n    observed  0"), "{t}");
}

#[test]
fn a_recording_round_trips_through_repro_and_check() {
    let dir = tmp("record");
    let case = corpus().join("dontneed_private_anon_reads_zero.json");
    let c = case.to_str().unwrap();
    let rec = dir.join("rec.json");
    let o = madcheck(&["record", "--case", c, "--out", rec.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let src = dir.join("rec.c");
    assert_eq!(madcheck(&["repro", "--case", c, "--expect", rec.to_str().unwrap(), "--out", src.to_str().unwrap()]).status.code(), Some(0));
    compile("gcc", &src, &dir.join("rec")).unwrap();
    let o = Command::new(dir.join("rec")).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = madcheck(&["check", "--case", c, "--expect", rec.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // A recording of another behaviour: the last read failed with EINVAL.
    let t = std::fs::read_to_string(&rec).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&t).unwrap();
    let last = v["points"].as_array_mut().unwrap().last_mut().unwrap();
    last["obs"]["ret"] = serde_json::json!({ "Err": "EINVAL" });
    let bad = dir.join("bad.json");
    std::fs::write(&bad, v.to_string()).unwrap();
    let o = madcheck(&["check", "--case", c, "--expect", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("ret:\n    expected  EINVAL\n    observed  0"), "{}", text(&o));
    let src = dir.join("bad.c");
    assert_eq!(madcheck(&["repro", "--case", c, "--expect", bad.to_str().unwrap(), "--out", src.to_str().unwrap()]).status.code(), Some(0));
    compile("gcc", &src, &dir.join("bad")).unwrap();
    assert_eq!(Command::new(dir.join("bad")).output().unwrap().status.code(), Some(1));
}

#[test]
fn check_exits_0_1_or_125() {
    let c = corpus().join("dontneed_private_anon_reads_zero.json");
    let c = c.to_str().unwrap();
    let o = madcheck(&["check", "--case", c]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = madcheck(&["check", "--case", c, "--mutate", "dontneed-keeps-anon"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // No goldens recorded for this profile under an empty root: nothing could be tested.
    let empty = tmp("nogoldens");
    let o = madcheck(&["check", "--case", c, "--expect", "golden", "--goldens", empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(125), "{}", text(&o));
    let o = madcheck(&["check"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn a_run_shrinks_its_divergences_into_findings() {
    let dir = tmp("autoshrink");
    let o = madcheck(&["run", "--generate", "1000", "--mutate", "dontneed-keeps-anon", "--findings", dir.to_str().unwrap(), "--quiet"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("shrunk gen-1-"), "{}", text(&o));
    let json: Vec<PathBuf> =
        std::fs::read_dir(&*dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
    assert!(!json.is_empty(), "no finding written");
    for f in &json {
        let s = cases::load_scenario(f).expect("a finding loads as a case");
        assert!(f.with_extension("c").exists(), "{} has no reproducer", f.display());
        // The finding reproduces the divergence against the mutated model, and the real model agrees.
        let j = f.to_str().unwrap();
        assert_eq!(madcheck(&["run", "--case", j, "--mutate", "dontneed-keeps-anon", "--findings", "none", "--quiet"]).status.code(), Some(1));
        assert_eq!(madcheck(&["run", "--case", j, "--quiet"]).status.code(), Some(0), "{}", s.id);
    }
}

/// The shrunk case of the MREMAP_DONTUNMAP finding (docs/findings.md), now in the corpus, answers `check`
/// as `git bisect run` wants it on this kernel: 0, the model predicts it. Findings not yet in the corpus
/// (`cases/findings/*.json`, waiting for their goldens) are checked the same way.
#[test]
fn the_bisect_findings_agree_with_the_model_on_this_kernel() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let case = root.join("cases/corpus/mremap_dontunmap_unfaulted_source_stays_apart_from_6_1_192_and_6_12_115.json");
    let o = madcheck(&["check", "--case", case.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let dir = root.join("cases/findings");
    if std::fs::read_dir(&dir).unwrap().any(|e| e.unwrap().path().extension().is_some_and(|x| x == "json")) {
        let o = madcheck(&["check", "--cases", dir.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
}
