//! A node's real BGP session table: `birdcl show protocols` against calico-node's BIRD (its
//! control socket is a hostPath, so the host's birdcl reaches it; without one, the script runs
//! it inside the calico-node container through crictl). Read-only, audited as
//! `node.bgp-sessions`.

use std::time::Instant;

use grappe_views::bgp::{BgpSessionView, NodeSessionsView};

use super::read::target;
use super::{Endpoint, Ssh, SshError, commands};
use crate::audit::{Action, AuditEntry, Caller, Outcome};
use crate::time::now;

/// The most sessions read from one node (a route reflector of a large cluster has many).
const MAX_SESSIONS: usize = 500;

/// The BGP protocols of `birdcl show protocols`, or BIRD's own words when it answered none.
pub fn parse(output: &str) -> Result<Vec<BgpSessionView>, String> {
    let mut sessions = Vec::new();
    let mut header = false;
    for line in output.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"name") && words.get(1) == Some(&"proto") {
            header = true;
            continue;
        }
        if !header || words.get(1) != Some(&"BGP") || sessions.len() >= MAX_SESSIONS {
            continue;
        }
        let name = words[0];
        sessions.push(BgpSessionView {
            name: bounded(name),
            peer_ip: peer_ip(name),
            peer_node: None,
            state: words.get(3).map(|s| bounded(s)).unwrap_or_default(),
            since: words.get(4).map(|s| bounded(s)).unwrap_or_default(),
            info: bounded(&words.get(5..).map(|w| w.join(" ")).unwrap_or_default()),
        });
    }
    if header {
        Ok(sessions)
    } else {
        Err(output
            .lines()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(300)
            .collect())
    }
}

fn bounded(s: &str) -> String {
    crate::names::untrusted_text(s, 200)
}

/// The peer address in Calico's protocol names: `Mesh_10_13_0_3`, `Node_10_13_0_5`,
/// `Global_192_0_2_1` (IPv4; an IPv6 name keeps its underscores, and no address is read).
fn peer_ip(name: &str) -> Option<String> {
    let (_, rest) = name.split_once('_')?;
    let ip = rest.replace('_', ".");
    ip.parse::<std::net::Ipv4Addr>().ok().map(|a| a.to_string())
}

impl Ssh {
    /// Reads the BGP session table of `endpoint`'s node and audits it (`node.bgp-sessions`).
    ///
    /// # Errors
    /// [`SshError`] when the host cannot be reached or BIRD does not answer
    /// ([`SshError::Probe`] with its words); audited as a failure.
    pub async fn bgp_sessions(
        &self,
        caller: &Caller,
        endpoint: &Endpoint,
    ) -> Result<NodeSessionsView, SshError> {
        let started = Instant::now();
        let action = (Action::NodeBgpSessions, None);
        let out = self
            .read_host(caller, endpoint, action, &commands::BIRD_PROTOCOLS, &[])
            .await?;
        let sessions = match parse(&out.text) {
            Ok(s) => s,
            Err(message) => {
                let e = SshError::Probe {
                    endpoint: endpoint.display(),
                    message,
                };
                self.audit_failure(caller, endpoint, action, &e).await;
                return Err(e);
            }
        };
        let entry = AuditEntry::new(
            caller,
            Action::NodeBgpSessions,
            target(endpoint, None),
            Outcome::Success,
        )
        .detail("sessions", sessions.len())
        .detail(
            "established",
            sessions.iter().filter(|s| s.established()).count(),
        );
        self.audit_success(entry).await?;
        Ok(NodeSessionsView {
            node: endpoint.node.to_string(),
            sessions,
            actor: caller.actor.clone(),
            at: now().to_string(),
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "BIRD v0.3.3+birdv1.6.8 ready.
name     proto    table    state  since       info
static1  Static   master   up     12:31:29
kernel1  Kernel   master   up     12:31:29
device1  Device   master   up     12:31:29
direct1  Direct   master   up     12:31:29
Mesh_10_13_0_3 BGP      master   up     12:31:31    Established
Mesh_10_13_0_4 BGP      master   start  12:31:29    Active        Socket: Connection refused
";

    #[test]
    fn the_bgp_protocols_are_read_with_their_peer() {
        let s = parse(SAMPLE).expect("parsed");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].peer_ip.as_deref(), Some("10.13.0.3"));
        assert!(s[0].established());
        assert_eq!(s[1].state, "start");
        assert_eq!(s[1].info, "Active Socket: Connection refused");
        assert!(!s[1].established());
    }

    #[test]
    fn bird_not_answering_is_said_in_its_words() {
        assert_eq!(
            parse("Unable to connect to server control socket (/var/run/calico/bird.ctl): No such file or directory\n"),
            Err("Unable to connect to server control socket (/var/run/calico/bird.ctl): No such file or directory".to_owned())
        );
    }

    #[test]
    fn a_forged_table_is_bounded() {
        let flood = format!("name proto\n{}", "x BGP master up 1 y\n".repeat(2000));
        assert_eq!(parse(&flood).expect("parsed").len(), MAX_SESSIONS);
        assert_eq!(peer_ip("Mesh_fd00__1"), None);
    }
}
