//! `cargo xtask run [args...]`: build madcheck in release and run `madcheck run args...`, passing its exit
//! code through (0 agree, 1 divergence or failure, 2 bad usage).

/// `--no-build` skips the cargo build (the binary must already exist); everything else goes to madcheck.
pub fn main(args: &[String]) -> Result<i32, String> {
    let (mine, rest) = crate::args::take_switches(args, &["--no-build"]);
    crate::util::build_and_exec_madcheck("run", &rest, mine.is_empty())
}
