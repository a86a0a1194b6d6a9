//! The `madcheck` command line end to end: usage errors and bad input exit 2 with a message naming what
//! is wrong; a clean generated run exits 0.

use std::process::{Command, Output};

fn madcheck(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_madcheck")).args(args).output().expect("madcheck runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let o = madcheck(&["run", "--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--no-such-flag"), "{}", stderr(&o));
}

#[test]
fn bad_number_and_bad_mutation_are_usage_errors() {
    let o = madcheck(&["run", "--generate", "lots"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--generate"), "{}", stderr(&o));
    let o = madcheck(&["run", "--mutate", "no-such-mutation"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no-such-mutation"), "{}", stderr(&o));
    let o = madcheck(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn malformed_case_file_names_file_and_field() {
    let dir = std::env::temp_dir().join(format!("madcheck-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad_advice_name.json");
    // Valid JSON, one bad field: an advice name that does not exist.
    std::fs::write(
        &path,
        r#"{
  "id": "bad_advice_name",
  "provenance": { "kind": "file", "path": "bad_advice_name.json" },
  "arena_pages": 4,
  "maps": [ { "page": 0, "pages": 4, "prot": "rw-", "kind": "anon_private" } ],
  "steps": [ { "op": "madvise", "page": 0, "len_pages": 1, "advice": "DONTNEEDX" } ]
}"#,
    )
    .unwrap();
    let o = madcheck(&["run", "--case", path.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("bad_advice_name.json"), "names the file: {err}");
    assert!(err.contains("advice"), "names the field: {err}");
    assert!(!err.contains("panicked"), "{err}");

    let missing = dir.join("missing.json");
    let o = madcheck(&["run", "--case", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing.json"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Needs the simulator and the host backend to agree on every generated scenario: until the simulator
/// models anything this fails, on purpose.
#[test]
fn generated_run_agrees() {
    let o = madcheck(&["run", "--generate", "200", "--seed", "7", "--quiet"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
}

/// `madcheck bench` with the vendored C floor: every part, the floor before and after, the ratios and the
/// peak RSS are printed and in the JSON; a missing floor is bad input.
#[test]
fn bench_runs_the_floor_before_and_after() {
    let o = madcheck(&["bench", "--generate", "5", "--floor", "/nonexistent/scen_min"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--floor /nonexistent/scen_min"), "{}", stderr(&o));

    let dir = std::env::temp_dir().join(format!("madcheck-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let floor_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/floor");
    let exe = dir.join("scen_min");
    let cc = Command::new("cc")
        .arg("-O2")
        .arg("-I")
        .arg(&floor_dir)
        .arg("-o")
        .arg(&exe)
        .arg(floor_dir.join("scen_min.c"))
        .status()
        .expect("cc runs (build-essential)");
    assert!(cc.success(), "building the vendored floor failed");
    let report = dir.join("bench.json");
    let o = madcheck(&[
        "bench",
        "--generate",
        "40",
        "--floor",
        exe.to_str().unwrap(),
        "--floor-secs",
        "0.3",
        "--parts",
        "simulator,whole",
        "--wait-for-hugepool",
        "600",
        "--quiet",
        "--report",
        report.to_str().unwrap(),
    ]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    for want in ["simulator", "whole run", "peak RSS of the runner", "C floor (scen_min", "ratio to the floor, whole run:", "load average:"] {
        assert!(out.contains(want), "{want:?} missing from:\n{out}");
    }
    assert!(!out.contains("host backend"), "--parts left the host part out:\n{out}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert!(v["floor_before"]["total"].as_f64().unwrap() > 0.0 && v["floor_after"]["total"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["ratio"]["whole_run"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["host"].is_null() && v["whole_run"]["scenarios"] == 40, "{v}");
    assert!(v["peak_rss_kb"].as_u64().unwrap() > 0, "{v}");
    let _ = std::fs::remove_dir_all(&dir);
}
