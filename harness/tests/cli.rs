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
