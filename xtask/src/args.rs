//! A tiny argument parser: enough for xtask's own flags, passing everything else through untouched.
//!
//! Invariant: arguments xtask does not own are forwarded in their original order.

/// Split off `--flag` switches xtask owns (from `own`); the rest is returned in order for forwarding.
/// `--` ends xtask's own flags: everything after it is forwarded verbatim.
pub fn take_switches(args: &[String], own: &[&str]) -> (Vec<String>, Vec<String>) {
    let mut mine = Vec::new();
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            rest.extend(it.cloned());
            break;
        }
        if own.contains(&a.as_str()) {
            mine.push(a.clone());
        } else {
            rest.push(a.clone());
        }
    }
    (mine, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_are_split_and_order_kept() {
        let v: Vec<String> = ["--seed", "3", "--no-build", "--", "--no-build"].iter().map(|s| s.to_string()).collect();
        let (mine, rest) = take_switches(&v, &["--no-build"]);
        assert_eq!(mine, vec!["--no-build"]);
        assert_eq!(rest, vec!["--seed", "3", "--no-build"]);
    }
}
