//! The registry: every workflow this engine runs, one line each. A new workflow is a folder
//! beside these (its parameters, preview, start, steps and [`super::Policy`]) and a line here;
//! the core does not change.

use super::registry::{Kind, Registry};
use super::{cni, drain, recover, reset};

/// The workflows of this build.
#[must_use]
pub fn registry() -> Registry {
    let mut kinds: Vec<Box<dyn Kind>> = Vec::new();
    kinds.extend(cni::kinds());
    kinds.push(Box::new(drain::Drain));
    kinds.push(Box::new(reset::Reset));
    kinds.push(Box::new(recover::Recover));
    Registry::new(kinds)
}
