//! Detect the host's `KernelFacts`: uname, page size, /proc/config.gz, swap, THP mode, capabilities.
