//! Fault injection for the tests that stop Grappe at a run's boundaries (feature `faults`,
//! which a release build never has: without it every point is an empty function).
//!
//! - `GRAPPE_TEST_FAULT_KILL=<point>`: the process kills itself with SIGKILL on reaching `<point>`,
//!   as a crash or `kill -9` would, with nothing flushed or cleaned up.
//! - `GRAPPE_TEST_FAULT_HOLD=<point>` and `GRAPPE_TEST_FAULT_HOLD_FILE=<file>`: on reaching `<point>` it
//!   creates `<file>` and waits while the file exists (a test breaks something meanwhile).
//!
//! The points of a run: `step <idx> before` (marked running, not yet audited), `step <idx>
//! audited` (its audit record written, nothing done), `step <idx> done` (recorded done, the
//! next not begun), `finished` (its end recorded, not yet sealed). A step's points are also
//! named by the step's name (`step rollout audited`).

/// A fault point known by any of `names`.
#[cfg(feature = "faults")]
pub async fn point(names: &[&str]) {
    use std::time::Duration;
    let is = |var: &str| std::env::var(var).is_ok_and(|v| names.contains(&v.as_str()));
    let name = names.first().copied().unwrap_or_default();
    if is("GRAPPE_TEST_FAULT_KILL") {
        tracing::warn!(point = name, "fault injection: SIGKILL");
        let pid = std::process::id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status();
        // The signal is on its way: nothing more may happen.
        std::future::pending::<()>().await;
    }
    if is("GRAPPE_TEST_FAULT_HOLD")
        && let Ok(file) = std::env::var("GRAPPE_TEST_FAULT_HOLD_FILE")
    {
        tracing::warn!(point = name, file, "fault injection: holding");
        let _ = std::fs::write(&file, name);
        while std::path::Path::new(&file).exists() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A fault point known by any of `names` (none in this build).
#[cfg(not(feature = "faults"))]
#[allow(clippy::unused_async)]
pub async fn point(names: &[&str]) {
    let _ = names;
}
