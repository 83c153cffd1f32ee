//! The path-MTU probe: from one node's host, `ping` with Don't Fragment set to another node's
//! address, halving the interval between a size that passes and one that does not until they
//! meet (at most 14 packets of at most a second each). The target is an address the cluster
//! gives (the node's InternalIP), passed to the fixed script as a parsed [`IpAddr`], never as
//! text. Audited as `node.mtu-probe`.

use std::net::IpAddr;
use std::time::Instant;

use grappe_views::mtu::{ProbeStep, ProbeView};

use super::commands::{self, Arg};
use super::read::target;
use super::{Endpoint, Ssh, SshError};
use crate::audit::{Action, AuditEntry, Caller, Outcome};
use crate::time::now;

/// The most steps read from a probe's output (the script makes at most 15).
const MAX_STEPS: usize = 20;

/// What a probe's output says: its steps, the largest size that passed, or the host's error.
pub fn parse(output: &str) -> Result<(Vec<ProbeStep>, Option<u32>), String> {
    let mut steps = Vec::new();
    let mut largest = None;
    for line in output.lines() {
        let Some(rest) = line.strip_prefix("@@ ") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("try"), Some(size), Some(result)) if steps.len() < MAX_STEPS => {
                if let Ok(size) = size.parse() {
                    steps.push(ProbeStep {
                        size,
                        passed: result == "ok",
                    });
                }
            }
            (Some("largest"), Some(size), None) => largest = size.parse().ok(),
            (Some("error"), ..) => {
                return Err(rest
                    .trim_start_matches("error")
                    .trim()
                    .chars()
                    .take(200)
                    .collect());
            }
            _ => {}
        }
    }
    Ok((steps, largest))
}

impl Ssh {
    /// Probes the path MTU from `from`'s host to `to_ip` (the node `to`), audits it
    /// (`node.mtu-probe`) and returns what it found.
    ///
    /// # Errors
    /// [`SshError`] when the host cannot be reached, the script cannot run or the host has no
    /// `ping` ([`SshError::Probe`]); audited as a failure.
    pub async fn probe_mtu(
        &self,
        caller: &Caller,
        from: &Endpoint,
        to: &str,
        to_ip: IpAddr,
    ) -> Result<ProbeView, SshError> {
        let started = Instant::now();
        let header = if to_ip.is_ipv4() { 28 } else { 48 };
        let object = format!("Node/{to}");
        let action = (Action::NodeMtuProbe, Some(object.as_str()));
        let out = self
            .read_host(
                caller,
                from,
                action,
                &commands::MTU_PROBE,
                &[Arg::Ip(to_ip), Arg::Number(header)],
            )
            .await?;
        let (steps, largest) = match parse(&out.text) {
            Ok(found) => found,
            Err(message) => {
                let e = SshError::Probe {
                    endpoint: from.display(),
                    message,
                };
                self.audit_failure(caller, from, action, &e).await;
                return Err(e);
            }
        };
        let view = ProbeView {
            from: from.node.to_string(),
            to: to.to_owned(),
            to_ip: to_ip.to_string(),
            largest,
            steps,
            actor: caller.actor.clone(),
            at: now().to_string(),
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        let entry = AuditEntry::new(
            caller,
            Action::NodeMtuProbe,
            target(from, Some(&object)),
            Outcome::Success,
        )
        .detail("to", view.to_ip.clone())
        .detail("largest", view.largest)
        .detail("packets", view.steps.len());
        self.audit_success(entry).await?;
        Ok(view)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_steps_and_the_largest_size_are_read() {
        let (steps, largest) = parse(
            "@@ try 576 ok\n@@ try 4788 fail\n@@ try 2682 fail\n@@ try 1629 fail\n@@ try 1102 ok\nnoise\n@@ largest 1400\n",
        )
        .expect("parsed");
        assert_eq!(steps.len(), 5);
        assert!(steps[0].passed && !steps[1].passed);
        assert_eq!(steps[1].size, 4788);
        assert_eq!(largest, Some(1400));
    }

    #[test]
    fn nothing_passing_and_a_missing_ping_are_said() {
        assert_eq!(
            parse("@@ try 576 fail\n@@ largest none\n").map(|r| r.1),
            Ok(None)
        );
        assert_eq!(
            parse("@@ error ping is not installed on this host\n"),
            Err("ping is not installed on this host".to_owned())
        );
    }

    #[test]
    fn a_host_cannot_flood_the_steps() {
        let flood = "@@ try 1500 ok\n".repeat(1000);
        assert_eq!(parse(&flood).expect("parsed").0.len(), MAX_STEPS);
    }
}
