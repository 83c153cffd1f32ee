//! The only commands Grappe runs on a host: fixed scripts.
//!
//! Nothing in a script comes from a request, a node name or the cluster: each is a `&'static
//! str` (node names only choose which host to connect to). The one script that needs a value
//! (the path-MTU probe's target) gets it as a positional parameter made from a typed [`Arg`]
//! (a parsed IP address, a number), never from text. A script runs as `sh -c '<script>'`,
//! quoted once here, and through `sudo -n` when the SSH user is not root (so a missing sudo
//! rule fails at once instead of waiting for a password).

use std::time::Duration;

/// One fixed script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Script {
    name: &'static str,
    body: &'static str,
    timeout: Option<Duration>,
}

impl Script {
    const fn new(name: &'static str, body: &'static str) -> Self {
        Self {
            name,
            body,
            timeout: None,
        }
    }

    const fn timeout(self, seconds: u64) -> Self {
        Self {
            timeout: Some(Duration::from_secs(seconds)),
            ..self
        }
    }

    /// What the run's record and the logs call it (the command the runbook shows).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The script itself.
    pub fn body(&self) -> &'static str {
        self.body
    }

    /// Its own time limit, when it differs from the cluster's command timeout.
    pub fn timeout_override(&self) -> Option<Duration> {
        self.timeout
    }

    /// The command line sent over SSH.
    pub fn command_line(&self, sudo: bool) -> String {
        self.command_line_with(sudo, &[])
    }

    /// The command line with positional parameters (`$1`, `$2`, ...).
    pub fn command_line_with(&self, sudo: bool, args: &[Arg]) -> String {
        let quoted = quote(self.body);
        let mut line = if sudo {
            format!("sudo -n sh -c {quoted}")
        } else {
            format!("sh -c {quoted}")
        };
        if !args.is_empty() {
            // `$0`, then the parameters.
            line.push_str(" grappe");
        }
        for a in args {
            line.push(' ');
            line.push_str(&quote(&a.to_string()));
        }
        line
    }
}

/// A value a script takes: typed, so that its text is only digits, dots and colons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    Ip(std::net::IpAddr),
    Number(u32),
}

impl std::fmt::Display for Arg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Number(n) => write!(f, "{n}"),
        }
    }
}

/// The path-MTU probe: `$1` the address to reach, `$2` the IP and ICMP headers' bytes (28 for
/// IPv4, 48 for IPv6). Bisects the packet size between 576 (which every IPv4 path carries)
/// and 9001 with `ping -M do` (Don't Fragment), one packet and at most one second each; prints
/// each try and the largest size (IP header included) that passed.
pub const MTU_PROBE: Script = Script::new(
    "ping -M do -s SIZE (path-MTU bisection)",
    r#"export LC_ALL=C
command -v ping >/dev/null 2>&1 || { echo '@@ error ping is not installed on this host (iputils-ping)'; exit 0; }
ip="$1"; header="$2"
try() { ping -n -q -M do -c 1 -W 1 -s "$(($1 - header))" "$ip" >/dev/null 2>&1; }
lo=576; hi=9001
if try "$lo"; then echo "@@ try $lo ok"; else echo "@@ try $lo fail"; echo '@@ largest none'; exit 0; fi
while [ $((hi - lo)) -gt 1 ]; do
  mid=$(((lo + hi) / 2))
  if try "$mid"; then echo "@@ try $mid ok"; lo=$mid; else echo "@@ try $mid fail"; hi=$mid; fi
done
echo "@@ largest $lo"
"#,
)
.timeout(60);

/// calico-node's BGP session table: the host's birdcl against BIRD's socket (a hostPath), or
/// the one inside the calico-node container.
pub const BIRD_PROTOCOLS: Script = Script::new(
    "birdcl -s /var/run/calico/bird.ctl show protocols",
    r#"export LC_ALL=C
if command -v birdcl >/dev/null 2>&1; then
  birdcl -s /var/run/calico/bird.ctl show protocols 2>&1 | head -n 1000
elif command -v crictl >/dev/null 2>&1 && id=$(crictl ps --name calico-node -q 2>/dev/null | head -n 1) && [ -n "$id" ]; then
  crictl exec "$id" birdcl -s /var/run/calico/bird.ctl show protocols 2>&1 | head -n 1000
else
  echo 'birdcl is not on the host and no calico-node container runs here'
fi
"#,
);

/// Quotes a string for a POSIX shell: single quotes, each `'` written as `'\''`.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The read-only check of a node (kubelet, CNI files, iptables, IPVS), in marked sections that
/// [`super::checks::parse`] reads.
pub const CHECK: Script = Script::new(
    "check the kubelet, the CNI files, iptables and IPVS",
    r#"export LC_ALL=C
echo '@@ kubelet'
systemctl status kubelet --no-pager -l -n 20 2>&1 | head -n 60
systemctl is-active --quiet kubelet
echo "@@ kubelet-exit $?"
echo '@@ calico'
journalctl -u kubelet --no-pager -n 300 2>/dev/null | grep -i calico | tail -n 5
# File names may hold any byte but / and NUL: each entry ends with NUL, and a line break in
# a name becomes '?', so that no name forges a line (or a section) of this output.
for d in /etc/cni/net.d /opt/cni/bin /var/lib/cni; do
  echo "@@ dir $d"
  if [ -d "$d" ]; then
    echo "total $(find "$d" -mindepth 1 -maxdepth 1 -printf '.' 2>/dev/null | wc -c)"
    find "$d" -mindepth 1 -maxdepth 1 -printf '%y %s %T@ %f\0' 2>/dev/null \
      | tr '\n\0' '?\n' | sort -k4 | head -n 200
  else
    echo 'missing'
  fi
done
# The configuration files the kubelet reads, in its order (by name), the first 10; each line
# of a file behind '| ', so that no content forges a section.
n=0
for f in /etc/cni/net.d/*.conflist /etc/cni/net.d/*.conf /etc/cni/net.d/*.json; do
  [ -f "$f" ] || continue
  n=$((n + 1))
  [ "$n" -le 10 ] || continue
  printf '@@ file %s\n' "$(printf '%s' "$f" | tr '\n' '?')"
  head -c 65536 "$f" | sed 's/^/| /'
  echo
done
echo "@@ files $n"
for t in filter nat mangle raw; do
  echo "@@ iptables $t"
  if out=$(iptables -t "$t" -S 2>&1); then
    printf '%s\n' "$out" | awk '/^-A/ {a++} /^-N/ {n++} END {print "ok", a+0, n+0}'
  else
    printf 'error %s\n' "$(printf '%s' "$out" | head -n 1)"
  fi
done
echo '@@ ipvs'
if command -v ipvsadm >/dev/null 2>&1; then
  if out=$(ipvsadm -Ln 2>&1); then
    printf '%s\n' "$out" | awk '/^(TCP|UDP|SCTP|FWM)/ {s++} /->/ && !/RemoteAddress/ {d++} END {print "ok", s+0, d+0}'
  else
    printf 'error %s\n' "$(printf '%s' "$out" | head -n 1)"
  fi
else
  echo 'absent'
fi
# The links and their MTUs (interface names hold no blank), and the default route's.
echo '@@ uplink'
ip -o route show default 2>/dev/null | head -n 1
echo '@@ links'
ip -o link show 2>/dev/null | head -n 500 | awk '{n=$2; sub(/:$/, "", n); sub(/@.*/, "", n); for (i = 3; i < NF; i++) if ($i == "mtu") { print n, $(i + 1); break }}'
echo '@@ end'
"#,
);

/// `kubeadm reset -f`.
pub const KUBEADM_RESET: Script = Script::new("kubeadm reset -f", "kubeadm reset -f").timeout(600);

/// Removes the CNI configuration kubeadm leaves.
pub const REMOVE_CNI_CONFIG: Script = Script::new("rm -rf /etc/cni/net.d", "rm -rf /etc/cni/net.d");

/// Flushes and deletes the chains of the filter, nat and mangle tables.
pub const FLUSH_IPTABLES: Script = Script::new(
    "iptables -F && iptables -X (filter, nat, mangle)",
    r#"set -e
for t in filter nat mangle; do
  iptables -t "$t" -F
  iptables -t "$t" -X
  echo "iptables: table $t flushed, its chains deleted"
done
"#,
);

/// Clears the IPVS tables (nothing to do where ipvsadm is not installed).
pub const CLEAR_IPVS: Script = Script::new(
    "ipvsadm --clear",
    r#"if command -v ipvsadm >/dev/null 2>&1; then
  ipvsadm --clear && echo 'IPVS tables cleared'
else
  echo 'ipvsadm is not installed: no IPVS tables to clear'
fi
"#,
);

/// Removes the kubeconfig of the user the commands run as.
pub const REMOVE_KUBECONFIG: Script = Script::new(
    "rm -f $HOME/.kube/config",
    r#"rm -f "$HOME/.kube/config" && echo "removed $HOME/.kube/config""#,
);

/// Removes the CNI plugins' state (IPAM allocations, caches).
pub const REMOVE_CNI_STATE: Script = Script::new("rm -rf /var/lib/cni", "rm -rf /var/lib/cni");

/// What a reset leaves on the host, one `left <what>` line per leftover.
pub const LEFTOVERS: Script = Script::new(
    "check what is left on the host",
    r#"export LC_ALL=C
for d in /etc/cni/net.d /var/lib/cni /etc/kubernetes/manifests /var/lib/kubelet /etc/kubernetes/pki; do
  if [ -d "$d" ] && [ -n "$(ls -A "$d" 2>/dev/null)" ]; then echo "left $d: $(ls -A "$d" | head -n 20 | tr '\n' ' ')"; fi
done
for f in /etc/kubernetes/admin.conf /etc/kubernetes/kubelet.conf "$HOME/.kube/config"; do
  [ -e "$f" ] && echo "left $f"
done
for t in filter nat mangle; do
  n=$(iptables -t "$t" -S 2>/dev/null | grep -c -e '^-A' -e '^-N')
  [ "$n" -gt 0 ] && echo "left iptables $t: $n rules and chains"
done
if command -v ipvsadm >/dev/null 2>&1; then
  n=$(ipvsadm -Ln 2>/dev/null | grep -c -E '^(TCP|UDP|SCTP|FWM)')
  [ "$n" -gt 0 ] && echo "left IPVS: $n virtual services"
fi
if systemctl is-active kubelet >/dev/null 2>&1; then echo 'left the kubelet running'; fi
echo 'checked'
"#,
);

/// The recovery's first look at a control-plane host.
pub const APISERVER_LOOK: Script = Script::new(
    "systemctl status kubelet; crictl ps -a --name kube-apiserver",
    r#"export LC_ALL=C
systemctl status kubelet --no-pager -l -n 10 2>&1 | head -n 30
echo
echo '$ crictl ps -a --name kube-apiserver'
crictl ps -a --name kube-apiserver 2>&1 | head -n 10
echo
echo '$ ls -l /etc/kubernetes/manifests'
ls -l /etc/kubernetes/manifests 2>&1
test -f /etc/kubernetes/manifests/kube-apiserver.yaml
"#,
);

/// The seed's restart of a static-pod kube-apiserver.
pub const APISERVER_RESTART: Script = Script::new(
    "touch /etc/kubernetes/manifests/kube-apiserver.yaml && systemctl restart kubelet",
    r#"touch /etc/kubernetes/manifests/kube-apiserver.yaml && systemctl restart kubelet && echo 'kubelet restarted'"#,
)
.timeout(180);

/// Whether the kube-apiserver container runs (exit 0 when it does).
pub const APISERVER_RUNNING: Script = Script::new(
    "crictl ps --name kube-apiserver",
    r#"out=$(crictl ps --name kube-apiserver 2>&1); printf '%s\n' "$out"; printf '%s\n' "$out" | grep -q Running"#,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_single_quotes_and_metacharacters() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("$(rm -rf /); `x`"), "'$(rm -rf /); `x`'");
    }

    #[test]
    fn sudo_is_non_interactive_and_quotes_once() {
        assert_eq!(
            KUBEADM_RESET.command_line(false),
            "sh -c 'kubeadm reset -f'"
        );
        assert_eq!(
            KUBEADM_RESET.command_line(true),
            "sudo -n sh -c 'kubeadm reset -f'"
        );
        // A body with quotes stays one argument to sh -c.
        let line = REMOVE_KUBECONFIG.command_line(true);
        assert!(line.starts_with("sudo -n sh -c '"), "{line}");
        assert!(line.ends_with('\''), "{line}");
    }

    #[test]
    fn typed_arguments_reach_the_script_as_its_parameters() {
        let script = Script::new("echo", r#"printf '%s|%s' "$1" "$2""#);
        let ip: std::net::IpAddr = "10.13.0.3".parse().expect("ip");
        let line = script.command_line_with(false, &[Arg::Ip(ip), Arg::Number(28)]);
        assert_eq!(
            line,
            r#"sh -c 'printf '\''%s|%s'\'' "$1" "$2"' grappe '10.13.0.3' '28'"#
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&line)
            .output()
            .expect("sh runs");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "10.13.0.3|28");
    }

    #[test]
    fn quoted_scripts_run_unchanged_through_a_real_shell() {
        // What `sh -c <quoted>` hands to the inner shell is the body, byte for byte.
        for script in [
            CHECK,
            MTU_PROBE,
            BIRD_PROTOCOLS,
            FLUSH_IPTABLES,
            LEFTOVERS,
            APISERVER_LOOK,
            REMOVE_KUBECONFIG,
        ] {
            let line = format!("printf '%s' {}", quote(script.body()));
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(&line)
                .output()
                .expect("sh runs");
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                script.body(),
                "{}",
                script.name()
            );
        }
    }
}
