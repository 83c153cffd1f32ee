//! The read-only check of a node's host: the kubelet's status and whether calico appears in
//! its recent journal, the CNI directories with their files and the conflists' content,
//! iptables rule counts per table and the IPVS tables. Each check is stored (the node's
//! history) and audited as `node.check`.

use std::time::Instant;

use grappe_views::hosts::{
    ConfFileView, DirView, FileEntry, HostCheckView, HostKeyView, HostView, IpvsView, TableView,
};

use super::read::target;
use super::{Endpoint, Ssh, SshError, commands};
use crate::audit::{Action, AuditEntry, Caller, Outcome};
use crate::time::{fmt_unix_seconds, now};

/// How many checks a node's page shows.
pub const KEPT_ON_PAGE: i64 = 5;
/// Entries of a directory kept (the script prints at most as many).
const MAX_ENTRIES: usize = 200;
/// Configuration files kept (the script prints at most as many).
const MAX_CONF_FILES: usize = 10;
/// Links kept (a node with many pods has a `cali*` link for each).
const MAX_LINKS: usize = 300;

/// Reads the sections of [`commands::CHECK`]'s output.
pub fn parse(output: &str) -> HostCheckView {
    let mut view = HostCheckView::default();
    let mut section = String::new();
    let mut lines: Vec<&str> = Vec::new();
    let flush = |section: &str, lines: &[&str], view: &mut HostCheckView| {
        let (kind, arg) = section.split_once(' ').unwrap_or((section, ""));
        match kind {
            "kubelet" => {
                view.kubelet.status = lines.join("\n");
                view.kubelet.state = lines
                    .iter()
                    .find_map(|l| l.trim_start().strip_prefix("Active:"))
                    .unwrap_or("unknown")
                    .trim()
                    .to_owned();
            }
            "kubelet-exit" => view.kubelet.active = arg.trim() == "0",
            "calico" => {
                view.kubelet.calico_lines = lines
                    .iter()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| (*l).to_owned())
                    .collect();
            }
            // Each section as often as the script prints it, whatever a host makes it print.
            "dir" if view.dirs.len() < 3 => view.dirs.push(parse_dir(arg, lines)),
            "file" if view.conf_files.len() < MAX_CONF_FILES => {
                view.conf_files.push(ConfFileView {
                    path: arg.to_owned(),
                    content: lines
                        .iter()
                        .filter_map(|l| l.strip_prefix("| ").or_else(|| l.strip_prefix('|')))
                        .collect::<Vec<_>>()
                        .join("\n")
                        .trim_end()
                        .to_owned(),
                })
            }
            "files" => view.conf_files_total = arg.trim().parse().unwrap_or(0),
            "iptables" if view.iptables.len() < 4 => view
                .iptables
                .push(parse_table(arg, lines.first().copied().unwrap_or(""))),
            "ipvs" => view.ipvs = parse_ipvs(lines.first().copied().unwrap_or("")),
            "uplink" => view.uplink = lines.first().and_then(|l| parse_uplink(l)),
            "links" => view.links = parse_links(lines),
            _ => {}
        }
    };
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("@@ ") {
            flush(&section, &lines, &mut view);
            section = rest.to_owned();
            lines.clear();
            // `kubelet-exit N` carries its value on the marker line.
            if rest.starts_with("kubelet-exit") {
                flush(&section, &lines, &mut view);
                section.clear();
            }
        } else {
            lines.push(line);
        }
    }
    flush(&section, &lines, &mut view);
    view
}

/// The interface of `default via 10.13.0.1 dev eth0 ...`.
fn parse_uplink(line: &str) -> Option<String> {
    let mut words = line.split_whitespace();
    words.find(|w| *w == "dev")?;
    words.next().filter(|n| n.len() <= 15).map(str::to_owned)
}

/// `NAME MTU` lines: the links Grappe keeps (the uplink's kind and Calico's, at most
/// [`MAX_LINKS`]).
fn parse_links(lines: &[&str]) -> Vec<(String, u32)> {
    lines
        .iter()
        .filter_map(|l| {
            let (name, mtu) = l.trim().split_once(' ')?;
            (name.len() <= 15).then_some((name.to_owned(), mtu.trim().parse().ok()?))
        })
        .take(MAX_LINKS)
        .collect()
}

fn parse_dir(path: &str, lines: &[&str]) -> DirView {
    if lines.first().is_some_and(|l| l.trim() == "missing") {
        return DirView {
            path: path.to_owned(),
            present: false,
            entries: Vec::new(),
            total: 0,
        };
    }
    let total = lines
        .first()
        .and_then(|l| l.strip_prefix("total "))
        .and_then(|n| n.trim().parse().ok());
    let entries: Vec<FileEntry> = lines
        .iter()
        .skip(usize::from(total.is_some()))
        .take(MAX_ENTRIES)
        .filter_map(|l| {
            // `%y %s %T@ %f`: type, size, mtime (seconds.fraction), name (may hold spaces).
            let mut parts = l.splitn(4, ' ');
            let kind = match parts.next()? {
                "f" => "file",
                "d" => "dir",
                "l" => "link",
                _ => "other",
            };
            let size = parts.next()?.parse().ok()?;
            let mtime: f64 = parts.next()?.parse().ok()?;
            let name = parts.next()?.to_owned();
            #[allow(clippy::cast_possible_truncation)]
            let modified = fmt_unix_seconds(mtime as i64);
            Some(FileEntry {
                name,
                kind: kind.to_owned(),
                size,
                modified,
            })
        })
        .collect();
    DirView {
        path: path.to_owned(),
        present: true,
        total: total.unwrap_or(entries.len()),
        entries,
    }
}

fn parse_table(table: &str, line: &str) -> TableView {
    let mut parts = line.split_whitespace();
    match parts.next() {
        Some("ok") => TableView {
            table: table.to_owned(),
            rules: parts.next().and_then(|n| n.parse().ok()).unwrap_or(0),
            chains: parts.next().and_then(|n| n.parse().ok()).unwrap_or(0),
            error: None,
        },
        _ => TableView {
            table: table.to_owned(),
            rules: 0,
            chains: 0,
            error: Some(
                line.strip_prefix("error ")
                    .unwrap_or(line)
                    .trim()
                    .to_owned(),
            ),
        },
    }
}

fn parse_ipvs(line: &str) -> IpvsView {
    let mut parts = line.split_whitespace();
    match parts.next() {
        Some("ok") => IpvsView {
            installed: true,
            services: parts.next().and_then(|n| n.parse().ok()).unwrap_or(0),
            destinations: parts.next().and_then(|n| n.parse().ok()).unwrap_or(0),
            error: None,
        },
        Some("absent") => IpvsView::default(),
        _ => IpvsView {
            installed: true,
            error: Some(
                line.strip_prefix("error ")
                    .unwrap_or(line)
                    .trim()
                    .to_owned(),
            ),
            ..IpvsView::default()
        },
    }
}

impl Ssh {
    /// Runs the read-only check on a node's host, stores it and audits it (`node.check`).
    ///
    /// # Errors
    /// [`SshError`] when the host cannot be reached or the script cannot run (audited as a
    /// failure).
    pub async fn check(
        &self,
        caller: &Caller,
        endpoint: &Endpoint,
    ) -> Result<HostCheckView, SshError> {
        let started = Instant::now();
        let action = (Action::NodeCheck, None);
        let output = self
            .read_host(caller, endpoint, action, &commands::CHECK, &[])
            .await?;
        let mut view = parse(&output.text);
        view.node = endpoint.node.to_string();
        view.endpoint = endpoint.display();
        view.actor = caller.actor.clone();
        view.at = now().to_string();
        view.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let json = serde_json::to_string(&view).unwrap_or_default();
        view.id = self
            .inner
            .store
            .insert_host_check(
                endpoint.cluster.as_str(),
                endpoint.node.as_str(),
                &caller.actor,
                &view.at,
                &json,
            )
            .await?;
        let entry = AuditEntry::new(
            caller,
            Action::NodeCheck,
            target(endpoint, None),
            Outcome::Success,
        )
        .detail("endpoint", endpoint.display())
        .detail("check", view.id)
        .detail("kubelet_active", view.kubelet.active)
        .detail("calico_in_journal", !view.kubelet.calico_lines.is_empty())
        .detail("cni_config", view.has_cni_config())
        .detail("iptables_rules", view.iptables_rules());
        self.audit_success(entry).await?;
        Ok(view)
    }

    /// The SSH side of a node's page: where it is reached, its pinned key, its last checks.
    ///
    /// # Errors
    /// [`SshError::Store`].
    pub async fn host_view(
        &self,
        cluster: &crate::names::ClusterName,
        node: &crate::names::NodeName,
        internal_ip: Option<&str>,
    ) -> Result<HostView, SshError> {
        if !self.configured(cluster.as_str()) {
            return Ok(HostView::default());
        }
        let endpoint = self.endpoint(cluster, node, internal_ip).ok();
        let pinned = match &endpoint {
            Some(e) => self.pinned(e).await?,
            None => None,
        };
        let checks = self
            .inner
            .store
            .host_checks(cluster.as_str(), node.as_str(), KEPT_ON_PAGE)
            .await?
            .into_iter()
            .filter_map(|(id, json)| {
                let mut v: HostCheckView = serde_json::from_str(&json).ok()?;
                v.id = id;
                Some(v)
            })
            .collect();
        Ok(HostView {
            configured: true,
            endpoint: endpoint.as_ref().map(Endpoint::display),
            pinned: pinned.map(|k| HostKeyView {
                algorithm: k.algorithm,
                fingerprint: k.fingerprint,
            }),
            checks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "@@ kubelet
● kubelet.service - kubelet: The Kubernetes Node Agent
     Active: active (running) since Sat 2026-11-28 16:10:35 UTC; 13s ago
@@ kubelet-exit 0
@@ calico
Nov 28 16:10:51 rigel kubelet[23235]: 2026-11-28 16:10:51.000 [INFO][1] ipam_plugin.go 255: Calico CNI IPAM assigned addresses
@@ dir /etc/cni/net.d
f 812 1795882251.1234 10-calico.conflist
f 190 1795882251.0 calico-kubeconfig
@@ dir /opt/cni/bin
f 120 1795882200.5 calico
@@ dir /var/lib/cni
missing
@@ file /etc/cni/net.d/10-calico.conflist
| {
|   \"name\": \"k8s-pod-network\"
| }
@@ files 1
@@ iptables filter
ok 12 8
@@ iptables nat
ok 9 7
@@ iptables mangle
error iptables v1.8.9 (nf_tables): table 'mangle' does not exist
@@ iptables raw
ok 0 0
@@ ipvs
error Can't initialize ipvs: Protocol not available
@@ uplink
default via 10.13.255.254 dev eth0 
@@ links
lo 65536
eth0 1500
tunl0 1480
cali12ab34cd56e 1480
@@ end
";

    #[test]
    fn the_check_output_is_read_section_by_section() {
        let v = parse(SAMPLE);
        assert!(v.kubelet.active);
        assert_eq!(v.uplink.as_deref(), Some("eth0"));
        assert_eq!(v.links.len(), 4);
        assert_eq!(v.links[2], ("tunl0".to_owned(), 1480));
        let mut named = v.clone();
        named.node = "rigel".into();
        let links = crate::mtu::host_links(&named).expect("links");
        assert_eq!((links.iface.as_str(), links.mtu), ("eth0", 1500));
        assert_eq!(
            links.calico_links,
            [("tunl0".to_owned(), 1480), ("cali* (1)".to_owned(), 1480)]
        );
        assert!(
            v.kubelet.state.starts_with("active (running)"),
            "{}",
            v.kubelet.state
        );
        assert_eq!(v.kubelet.calico_lines.len(), 1);
        assert_eq!(v.dirs.len(), 3);
        assert_eq!(v.dirs[0].entries[0].name, "10-calico.conflist");
        assert_eq!(v.dirs[0].entries[0].size, 812);
        assert_eq!(v.dirs[0].entries[0].kind, "file");
        assert!(!v.dirs[2].present);
        assert!(v.has_cni_config());
        assert_eq!(v.conf_files.len(), 1);
        assert!(v.conf_files[0].content.contains("k8s-pod-network"));
        assert_eq!(v.iptables.len(), 4);
        assert_eq!((v.iptables[0].rules, v.iptables[0].chains), (12, 8));
        assert!(
            v.iptables[2]
                .error
                .as_deref()
                .is_some_and(|e| e.contains("mangle"))
        );
        assert_eq!(v.iptables_rules(), 21);
        assert!(v.ipvs.installed);
        assert!(
            v.ipvs
                .error
                .as_deref()
                .is_some_and(|e| e.contains("Protocol not available"))
        );
    }

    /// What a hostile host can put in file names and contents (the script turns line breaks
    /// in names into '?' and puts '| ' before each content line) forges no section, and the
    /// parser keeps no more than the script prints.
    #[test]
    fn a_hostile_host_forges_no_section_and_floods_nothing() {
        let mut out =
            String::from("@@ kubelet\n     Active: active (running)\n@@ kubelet-exit 0\n");
        out.push_str("@@ dir /etc/cni/net.d\ntotal 3003\n");
        out.push_str("f 1 1.0 x?@@ kubelet-exit 1\n");
        for i in 0..300 {
            out.push_str(&format!("f 1 1.0 flood-{i:04}.conf\n"));
        }
        for i in 0..12 {
            out.push_str(&format!(
                "@@ file /etc/cni/net.d/{i}.conf\n| @@ ipvs\n| absent\n"
            ));
        }
        out.push_str("@@ files 3003\n@@ ipvs\nok 1 2\n");
        for _ in 0..5 {
            out.push_str("@@ dir /etc/evil\n@@ iptables nat\nok 1 1\n");
        }
        let v = parse(&out);
        assert!(v.kubelet.active, "a name forged the kubelet's exit");
        assert!(v.ipvs.installed, "a file's content forged the IPVS section");
        assert_eq!(v.dirs[0].total, 3003);
        assert_eq!(v.dirs[0].entries.len(), MAX_ENTRIES);
        assert_eq!(v.dirs[0].entries[0].name, "x?@@ kubelet-exit 1");
        assert_eq!(v.conf_files.len(), MAX_CONF_FILES);
        assert_eq!(v.conf_files_total, 3003);
        assert_eq!(v.conf_files[0].content, "@@ ipvs\nabsent");
        assert_eq!((v.dirs.len(), v.iptables.len()), (3, 4));
    }

    #[test]
    fn an_inactive_kubelet_and_names_with_spaces_are_read() {
        let v = parse(
            "@@ kubelet\n     Active: inactive (dead)\n@@ kubelet-exit 3\n@@ dir /etc/cni/net.d\nf 1 1.0 my file.conf\n@@ ipvs\nabsent\n",
        );
        assert!(!v.kubelet.active);
        assert_eq!(v.kubelet.state, "inactive (dead)");
        assert_eq!(v.dirs[0].entries[0].name, "my file.conf");
        assert!(!v.ipvs.installed);
    }
}
