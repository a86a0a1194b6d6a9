//! Snapshot goldens of the named case corpus (see README.md). Everything lives in `tests/goldens.rs` and
//! `snapshots/<profile>/{host,sim}/<case>.snap`; the rendering is `harness::goldens`.
