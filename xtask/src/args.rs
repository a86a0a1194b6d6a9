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

/// Walks `--flag value` / `--flag=value` arguments for the subcommands that parse their own flags.
pub struct Flags<'a> {
    it: std::slice::Iter<'a, String>,
}

/// One argument: `name` is the flag (the part before `=`), `raw` the argument as given.
pub struct Flag<'a> {
    pub raw: &'a String,
    pub name: &'a str,
    inline: Option<&'a str>,
}

impl<'a> Flags<'a> {
    pub fn new(args: &'a [String]) -> Flags<'a> {
        Flags { it: args.iter() }
    }

    pub fn next(&mut self) -> Option<Flag<'a>> {
        let raw = self.it.next()?;
        Some(match raw.split_once('=') {
            Some((name, v)) if name.starts_with("--") => Flag { raw, name, inline: Some(v) },
            _ => Flag { raw, name: raw.as_str(), inline: None },
        })
    }

    /// The flag's value: after `=`, or the next argument.
    pub fn value(&mut self, f: &Flag<'a>) -> Result<String, String> {
        f.inline.map(str::to_string).or_else(|| self.it.next().cloned()).ok_or(format!("{} needs a value", f.name))
    }
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

    #[test]
    fn flags_take_inline_or_next_values() {
        let v: Vec<String> = ["--seed=3", "--kernel", "6.1", "--no-build", "--arch"].iter().map(|s| s.to_string()).collect();
        let mut flags = Flags::new(&v);
        let mut seen = Vec::new();
        while let Some(f) = flags.next() {
            let value = match f.name {
                "--no-build" => String::new(),
                _ => flags.value(&f).unwrap_or_else(|e| e),
            };
            seen.push((f.name.to_string(), value));
        }
        let want = [("--seed", "3"), ("--kernel", "6.1"), ("--no-build", ""), ("--arch", "--arch needs a value")];
        assert_eq!(seen, want.map(|(a, b)| (a.to_string(), b.to_string())));
    }
}
