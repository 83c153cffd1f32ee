//! Logging: `tracing` to stderr, human-readable or JSON lines, filtered by `GRAPPE_LOG` (same
//! syntax as `RUST_LOG`; default `info`). Handlers never log cookies, passwords or kubeconfig
//! content; error chains are logged in full with `error_chain`.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::LogFormat;

/// Installs the global subscriber. A second call is a no-op (tests build several apps).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env("GRAPPE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_sessions=warn,kube_client=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_span_events(FmtSpan::NONE);
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
