//! The vocabulary that the store and the services share: ids, statuses and rows of runs
//! ([`runs`]), the plans they seal ([`plan`]) and the audit log ([`audit`]). A leaf: it imports
//! neither the store nor a service, so both can import it.

pub mod audit;
pub mod plan;
pub mod runs;

pub use plan::Plan;
pub use runs::*;
