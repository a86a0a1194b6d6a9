//! The acceptance test of the coverage matrix: the default suite (the named corpus plus 10,000 generated
//! scenarios, seed 1, as `cargo xtask run` runs it) reaches every cell this kernel can reach, and reaches
//! no cell the rules in `harness::reach` call unreachable (which would mean a reason is wrong).

use std::process::Command;

#[test]
fn default_suite_reaches_every_reachable_cell_and_no_unreachable_one() {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../cases/corpus");
    let cov = std::env::temp_dir().join(format!("madcheck-coverage-{}.json", std::process::id()));
    let o = Command::new(env!("CARGO_BIN_EXE_madcheck"))
        .args(["run", "--generate", "10000", "--seed", "1", "--quiet", "--cases"])
        .arg(&corpus)
        .arg("--coverage")
        .arg(&cov)
        .output()
        .expect("madcheck runs");
    let stdout = String::from_utf8_lossy(&o.stdout);
    // Read and remove the matrix before any assertion, so a failing run leaves nothing in /tmp.
    let text = std::fs::read_to_string(&cov);
    let _ = std::fs::remove_file(&cov);
    let text = text.unwrap_or_else(|e| panic!("no coverage JSON ({e}); stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&o.stderr)));
    let v: serde_json::Value = serde_json::from_str(&text).expect("the matrix is JSON");
    let list = |key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key} is a list"))
            .iter()
            .map(|c| format!("{} on {} -> {} {}", c["advice"], c["kind"], c["outcome"], c["reason"].as_str().unwrap_or("")))
            .collect()
    };
    let zero = list("reachable_at_zero");
    let wrong = list("unreachable_reached");
    let outside = list("outside_the_space");
    assert!(
        zero.is_empty(),
        "{} reachable cells are at zero (improve cases/src/generate.rs or add a named case, or classify the cell \
         unreachable in harness/src/coverage/reach/ with a reason):\n{}",
        zero.len(),
        zero.join("\n")
    );
    assert!(wrong.is_empty(), "cells classified unreachable were reached (the reason is wrong):\n{}", wrong.join("\n"));
    assert!(outside.is_empty(), "reached cells outside the cell space (extend reach::OUTCOMES or KINDS):\n{}", outside.join("\n"));
    let s = &v["summary"];
    assert_eq!(s["reachable"], s["reached"], "{s}");
    assert!(s["reachable"].as_u64().unwrap() > 0 && s["unreachable"].as_u64().unwrap() > 0, "{s}");
    // A wrong classification fails the run itself too.
    assert_ne!(o.status.code(), Some(2), "stdout:\n{stdout}");
}
