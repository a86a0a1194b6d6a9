//! Is this a disposable qemu guest? Destructive scenario classes (hugetlb with fork or mremap, which can
//! leak huge pages or leave the pool's counters wrong until reboot) run only there.
//!
//! Invariant: the answer is yes only when both hold: PID 1 is this very executable (madcheck booted as
//! `/init` of an initramfs by `cargo xtask qemu`, see `init.rs`), and the kernel was booted with
//! madcheck's own options on its command line (`madcheck.exit=...`). A container whose PID 1 happens to
//! be madcheck shares the host's kernel and its command line, so it fails the second test; a host
//! never has madcheck as PID 1.

use std::os::unix::fs::MetadataExt;
use std::sync::OnceLock;

/// Whether this process runs inside a disposable guest (computed once).
pub fn disposable_guest() -> bool {
    static GUEST: OnceLock<bool> = OnceLock::new();
    *GUEST.get_or_init(|| {
        let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
        let same = |a: &str, b: &str| match (std::fs::metadata(a), std::fs::metadata(b)) {
            (Ok(x), Ok(y)) => (x.dev(), x.ino()) == (y.dev(), y.ino()),
            _ => false,
        };
        booted_by_madcheck(&cmdline) && same("/proc/1/exe", "/proc/self/exe")
    })
}

/// `--destructive` outside a disposable guest is a usage error (exit 2): never run these on a host.
pub fn refuse_destructive_here(destructive: bool) -> Result<(), String> {
    if destructive && !disposable_guest() {
        return Err("--destructive: hugetlb with fork or mremap can leak huge pages or corrupt the pool's counters \
                    until reboot, so it only runs in a disposable qemu guest (madcheck as /init): use \
                    `cargo xtask qemu --kernel K --destructive`, or `matrix`/`compare`/`bisect`, which turn it on \
                    inside their guests"
            .into());
    }
    Ok(())
}

/// The kernel command line carries the option only `cargo xtask qemu` sets: how PID 1 ends the machine.
pub fn booted_by_madcheck(cmdline: &str) -> bool {
    cmdline.split_ascii_whitespace().any(|w| w.starts_with("madcheck.exit="))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_host_is_not_a_disposable_guest() {
        // The test runs on the development machine or in CI, never as PID 1 of a qemu guest.
        assert!(!disposable_guest());
    }

    #[test]
    fn only_a_madcheck_boot_line_counts() {
        assert!(booted_by_madcheck("console=ttyS0 quiet madcheck.generate=5 madcheck.exit=debugexit"));
        assert!(!booted_by_madcheck("BOOT_IMAGE=/vmlinuz root=/dev/vda1 madcheck.generate=5"));
        assert!(!booted_by_madcheck(""));
    }
}
