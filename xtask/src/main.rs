//! `cargo xtask`: orchestration for madcheck (build, run, bench, test). std only, no workspace crates.
//!
//! Invariant: xtask only drives other programs (`cargo`, the `madcheck` binary, later `qemu-system-*` and
//! `git`) and passes their exit codes through; anything that knows about madvise lives in the workspace.
//! Adding a subcommand is one module plus one line in `COMMANDS`.

mod args;
mod bench;
mod bisect;
mod bless;
mod compare;
mod debian;
mod matrix;
mod qemu;
mod repro;
mod run;
mod test;
mod util;

/// A subcommand: name, one-line help, entry point (arguments after the name → exit code).
type Entry = fn(&[String]) -> Result<i32, String>;

const COMMANDS: &[(&str, &str, Entry)] = &[
    ("run", "build madcheck (release) and run `madcheck run ARGS...`", run::main),
    ("bench", "build madcheck (release) and the C floor (bench/floor, cc -O2), run `madcheck bench --floor target/floor/scen_min ARGS...` (--no-floor: without it)", bench::main),
    ("test", "run the test suite: cargo test --workspace --release, INSTA_UPDATE=no", test::main),
    ("qemu", "boot a Debian kernel (or an image) under qemu with madcheck as /init; see docs/qemu.md", qemu::main),
    ("kernels", "list the Debian kernel packages of a series (private apt lists under target/apt/); --series 6.16..newest --arch A", debian::main),
    ("matrix", "host + five Debian kernels under qemu, one table (target/matrix.json)", matrix::main),
    ("compare", "the same scenarios on two kernels (host or Debian under qemu), compared point by point", compare::main),
    ("bisect", "the first Debian kernel of a series whose behaviour changed: compare the ends, group, shrink, binary-search, C reproducer (docs/bisect.md)", bisect::main),
    ("repro", "write the standalone C reproducer of a case (madcheck repro; --run compiles and runs it)", repro::main),
    ("bless", "record or update the corpus goldens (golden/snapshots/<profile>/; --kernel K [--arch A]: a Debian kernel under qemu), then check them as CI does", bless::main),
];

fn usage() -> String {
    let mut s = String::from("usage: cargo xtask <command> [args...]\n\ncommands:\n");
    for (name, help, _) in COMMANDS {
        s.push_str(&format!("  {name:<8} {help}\n"));
    }
    s
}

fn main() {
    let argv: Vec<String> = match std::env::args_os().skip(1).map(|a| a.into_string()).collect() {
        Ok(a) => a,
        Err(bad) => {
            eprintln!("xtask: argument {bad:?} is not valid UTF-8");
            std::process::exit(2);
        }
    };
    let Some(cmd) = argv.first() else {
        eprint!("{}", usage());
        std::process::exit(2);
    };
    if matches!(cmd.as_str(), "-h" | "--help" | "help") {
        print!("{}", usage());
        return;
    }
    let Some((_, _, entry)) = COMMANDS.iter().find(|(name, _, _)| name == cmd) else {
        eprint!("xtask: unknown command {cmd:?}\n\n{}", usage());
        std::process::exit(2);
    };
    // `cargo xtask <command> --help` (or -h) prints that command's usage and runs nothing; run and bench
    // forward it, so madcheck prints its own usage.
    let own = argv[1..].iter().take_while(|a| *a != "--");
    if !matches!(cmd.as_str(), "run" | "bench") && own.clone().any(|a| a == "-h" || a == "--help") {
        let (name, help, _) = COMMANDS.iter().find(|(name, _, _)| name == cmd).expect("found above");
        print!("usage: cargo xtask {name} [args...]\n\n{help}\n\nThe flags are documented in xtask/src/ (the module of `{name}`), README.md and docs/qemu.md.\n");
        return;
    }
    match entry(&argv[1..]) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("xtask {cmd}: {e}");
            std::process::exit(2);
        }
    }
}
