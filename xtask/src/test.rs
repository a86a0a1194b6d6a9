//! `cargo xtask test [args...]`: the test suite as CI runs it: `cargo test --workspace --release` (all
//! test binaries, no fail-fast, so one failure does not hide the others) with
//! `INSTA_UPDATE=no`, so a changed snapshot fails instead of being written. Extra args go to cargo test.

pub fn main(args: &[String]) -> Result<i32, String> {
    let mut c = crate::util::cargo();
    c.args(["test", "--workspace", "--release", "--no-fail-fast"]).args(args).env("INSTA_UPDATE", "no");
    let rc = crate::util::status(c)?;
    if rc != 0 {
        eprintln!("xtask test: failed (exit {rc}); rerun with `cargo xtask test`, or one crate with `cargo test --release -p <crate>`");
    }
    Ok(rc)
}
