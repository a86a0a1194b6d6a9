//! The outputs: text renderers (divergences, the run summary, `madcheck simulate`), KTAP, and the
//! goldens of the named cases (their bodies, and the check of the host against the recorded ones).
//!
//! Invariant: outputs depend on the run (and the host backend, for the golden check), never the
//! reverse; the renderers are pure (data in, `String` out) and `main` decides where text goes.

pub mod render;
pub mod goldens;
pub mod ktap;
