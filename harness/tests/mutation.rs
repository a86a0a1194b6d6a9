//! Proof that the differential loop catches a wrong model: with a deliberate bug in the simulator
//! (`--mutate dontneed-keeps-anon`), a generated run must fail and the report must name a divergence in
//! page or VMA state.

use std::process::Command;

#[test]
fn dontneed_mutation_is_caught() {
    let report = std::env::temp_dir().join(format!("madcheck-mutation-{}.json", std::process::id()));
    let o = Command::new(env!("CARGO_BIN_EXE_madcheck"))
        .args(["run", "--generate", "300", "--seed", "1", "--quiet", "--mutate", "dontneed-keeps-anon", "--report"])
        .arg(&report)
        .output()
        .expect("madcheck runs");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&report).expect("the report is written");
    let _ = std::fs::remove_file(&report);
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
