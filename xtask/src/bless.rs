//! `cargo xtask bless [args...]`: record or update the goldens of the named corpus for this kernel's
//! profile (`golden/snapshots/<profile>/{host,sim}/`), remove snapshots no case produces any more, then
//! check them the way CI does. Extra args go to the golden test binary (e.g. a test name).
//!
//! Invariant: bless and check are one function (`golden_test`) with different environments, so what is
//! recorded is exactly what CI compares.

/// Run the golden test binary. `bless`: `INSTA_UPDATE=always INSTA_FORCE_PASS=1 GOLDEN_BLESS=1` (write
/// every snapshot, delete unreferenced ones); otherwise `INSTA_UPDATE=no` (compare only, as CI).
fn golden_test(bless: bool, args: &[String]) -> Result<i32, String> {
    let mut c = crate::util::cargo();
    c.args(["test", "--release", "-p", "golden", "--test", "goldens", "--"]).args(args);
    if bless {
        c.env("INSTA_UPDATE", "always").env("INSTA_FORCE_PASS", "1").env("GOLDEN_BLESS", "1");
    } else {
        c.env("INSTA_UPDATE", "no").env_remove("INSTA_FORCE_PASS").env_remove("GOLDEN_BLESS");
    }
    crate::util::status(c)
}

pub fn main(args: &[String]) -> Result<i32, String> {
    let rc = golden_test(true, args)?;
    if rc != 0 {
        eprintln!("xtask bless: recording failed (exit {rc})");
        return Ok(rc);
    }
    let rc = golden_test(false, args)?;
    if rc == 0 {
        eprintln!("xtask bless: goldens recorded and checked; review them with `git diff golden/snapshots` before committing");
    } else {
        eprintln!(
            "xtask bless: the goldens are recorded, but the check still fails (exit {rc}): where the simulator's golden \
             differs from the host's, the model is wrong for that case; fix the model (or list the case in the report)"
        );
    }
    Ok(rc)
}
