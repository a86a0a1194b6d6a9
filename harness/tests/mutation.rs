//! Proof that the differential loop catches a wrong model: with a deliberate bug in the simulator
//! (`--mutate dontneed-keeps-anon`), a generated run must fail and the report must name a divergence in
//! page or VMA state.

use std::process::Command;

#[test]
fn dontneed_mutation_is_caught() {
    let report = std::env::temp_dir().join(format!("madcheck-mutation-{}.json", std::process::id()));
    let o = Command::new(env!("CARGO_BIN_EXE_madcheck"))
        // 2000 scenarios: with ~27 advice values drawn, a few hundred need not contain a DONTNEED of a
        // written private anonymous page.
        .args(["run", "--generate", "2000", "--seed", "1", "--quiet", "--mutate", "dontneed-keeps-anon", "--report"])
        .arg(&report)
        .output()
        .expect("madcheck runs");
    let stdout = String::from_utf8_lossy(&o.stdout);
    // Read and remove the report before any assertion, so a failing run leaves nothing in /tmp.
    let text = std::fs::read_to_string(&report);
    let _ = std::fs::remove_file(&report);
    assert_eq!(o.status.code(), Some(1), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&o.stderr));
    let text = text.expect("the report is written");
    let v: serde_json::Value = serde_json::from_str(&text).expect("the report is JSON");
    assert_eq!(v["model"]["mutations"][0], "dontneed-keeps-anon");
    let divs = v["divergences"].as_array().expect("divergences is a list");
    assert!(
        divs.iter().any(|d| {
            let f = d["field"].as_str().unwrap_or("");
            f.starts_with("page[") || f.starts_with("vma[")
        }),
        "no page/vma divergence in {divs:#?}"
    );
}

/// The same mutation, on one hand-written case that must show it: a written private anonymous page,
/// DONTNEED, then the page must be absent; the mutated model keeps it.
#[test]
fn dontneed_mutation_is_caught_on_a_named_case() {
    let dir = std::env::temp_dir().join(format!("madcheck-mutation-case-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let case = dir.join("dontneed_private_anon_drops_written_page.json");
    std::fs::write(
        &case,
        r#"{"description":"DONTNEED drops a written private anonymous page","arena_pages":4,
            "maps":[{"page":0,"pages":4,"prot":"rw-","kind":"anon_private"}],
            "steps":[{"op":"write","page":1,"fill":7},{"op":"madvise","page":1,"len_pages":1,"advice":"DONTNEED"}]}"#,
    )
    .unwrap();
    let run = |mutate: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_madcheck"));
        c.args(["run", "--quiet", "--case"]).arg(&case);
        if mutate {
            c.args(["--mutate", "dontneed-keeps-anon"]);
        }
        c.output().expect("madcheck runs")
    };
    let honest = run(false);
    assert_eq!(honest.status.code(), Some(0), "{}", String::from_utf8_lossy(&honest.stdout));
    let mutated = run(true);
    let out = String::from_utf8_lossy(&mutated.stdout);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(mutated.status.code(), Some(1), "{out}");
    assert!(out.contains("page[1]"), "the divergence names page 1:\n{out}");
}

/// A model change that turns a known answer into Unsupported (COLLAPSE's EINVAL on a small VMA) makes
/// no divergence; the profile's expected unsupported set must still fail the run and name the case.
/// `--allow-unsupported` keeps the exploratory behaviour (exit 0).
#[test]
fn an_answer_that_becomes_unsupported_fails_the_run() {
    let case = concat!(env!("CARGO_MANIFEST_DIR"), "/../cases/corpus/collapse_on_a_small_vma_starting_exactly_on_a_pmd_boundary_is_einval.json");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_madcheck"))
            .args(["run", "--quiet", "--case", case, "--mutate", "collapse-small-unsupported"])
            .args(extra)
            .output()
            .expect("madcheck runs")
    };
    let o = run(&[]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        stdout.contains("UNEXPECTED unsupported: collapse_on_a_small_vma_starting_exactly_on_a_pmd_boundary_is_einval"),
        "{stdout}"
    );
    let o = run(&["--allow-unsupported"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
}
