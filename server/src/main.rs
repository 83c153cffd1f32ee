//! The `grappe` binary. See [`grappe_server::cli`].

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    grappe_server::cli::run(grappe_server::cli::Cli::parse()).await
}
