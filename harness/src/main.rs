//! `madcheck`: the command-line entry point. `madcheck worker` is the re-executed worker process.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("worker") {
        std::process::exit(harness::host::worker_main());
    }
    eprintln!("madcheck: the runner is being written");
    std::process::exit(2);
}
