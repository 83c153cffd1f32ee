//! Integration tests: Grappe on port 0 with a temporary database, over real HTTP.

mod auth;
mod cli;
mod faults;
mod french;
mod guards;
mod helpers;
mod history;
mod live;
mod process;
mod runs;
mod settings;
