//! The `grappe` server: configuration ([`config`]), startup ([`startup::Application`]), the
//! state its handlers share ([`state`], [`streams`]), the HTTP layer ([`http`]), logging ([`telemetry`]) and the command line ([`cli`]).

pub mod cli;
pub mod config;
pub mod http;
pub mod startup;
pub mod state;
pub mod streams;
pub mod telemetry;
