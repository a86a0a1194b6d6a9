//! `cargo xtask bench [args...]`: build madcheck in release and run `madcheck bench args...`.

/// `--no-build` skips the cargo build (the binary must already exist); everything else goes to madcheck.
pub fn main(args: &[String]) -> Result<i32, String> {
    let (mine, rest) = crate::args::take_switches(args, &["--no-build"]);
    crate::util::build_and_exec_madcheck("bench", &rest, mine.is_empty())
}
