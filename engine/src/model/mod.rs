//! The vocabulary that the store and the services share: ids, statuses and rows of runs
//! ([`runs`]) and of the audit log ([`audit`]). A leaf: it imports neither the store nor a
//! service, so both can import it.

pub mod audit;
pub mod runs;

pub use runs::*;
