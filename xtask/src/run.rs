//! `cargo xtask run [args...]`: build madcheck in release and run `madcheck run args...`, passing its exit
//! code through (0 agree, 1 divergence or failure, 2 bad usage).
//!
//! Unless the arguments already choose scenarios (`--case`, `--cases`, `--scenario`), the run also takes
//! the named corpus (`--cases cases/corpus`), so the main job checks the host goldens as well as the
//! generated scenarios; a replay of one scenario stays just that scenario.

/// `--no-build` skips the cargo build (the binary must already exist); everything else goes to madcheck.
pub fn main(args: &[String]) -> Result<i32, String> {
    let (mine, mut rest) = crate::args::take_switches(args, &["--no-build"]);
    if rest.iter().any(|a| a == "-h" || a == "--help") {
        return crate::util::build_and_exec_madcheck("run", &["--help".to_string()], mine.is_empty());
    }
    let chooses = rest.iter().any(|a| {
        let flag = a.split('=').next().unwrap_or(a);
        matches!(flag, "--case" | "--cases" | "--scenario")
    });
    if !chooses {
        let corpus = crate::util::root().join("cases").join("corpus");
        if corpus.is_dir() {
            // madcheck runs no generated scenarios by default once cases are chosen: keep the 10,000.
            if !rest.iter().any(|a| a.split('=').next() == Some("--generate")) {
                rest.push("--generate".into());
                rest.push("10000".into());
            }
            rest.push("--cases".into());
            rest.push(corpus.to_string_lossy().into_owned());
        }
    }
    crate::util::build_and_exec_madcheck("run", &rest, mine.is_empty())
}
