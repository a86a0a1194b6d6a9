//! The model proper. (Being written.)
use crate::kernel::KernelModel;
use crate::observe::Expect;
use crate::program::{ArenaGeometry, Program, StepId};

/// Run a program on the model: one expectation per observation point, in `Program::step_ids` order.
/// After a step the model expects to be fatal (a signal), or that it does not know, no more points follow.
pub fn simulate(model: &KernelModel, arena: &ArenaGeometry, prog: &Program) -> Vec<(StepId, Expect)> {
    let _ = (model, arena, prog);
    Vec::new()
}
