//! What the engine's lab tests share: a lab of their own (started with `lab up`, stopped when
//! dropped), kubectl against it, the shared manifests, and polling.
#![allow(dead_code)] // each test binary uses a part

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use grappe_engine::names::{ClusterName, NodeName};

pub mod calico;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .to_path_buf()
}

/// The cluster every engine test's lab is configured as.
pub fn lab_name() -> ClusterName {
    ClusterName::parse("lab").expect("a cluster name")
}

/// `actor` acting as an admin (the audit identity of [`caller`]).
pub fn admin(actor: &str, test: &str) -> grappe_engine::runs::Actor {
    grappe_engine::runs::Actor {
        caller: caller(actor, test),
        role: grappe_engine::users::Role::Admin,
    }
}

/// Node names, parsed.
pub fn node_names<S: AsRef<str>>(names: &[S]) -> Vec<NodeName> {
    names
        .iter()
        .map(|n| NodeName::parse(n.as_ref()).expect("a node name"))
        .collect()
}

/// The audit identity of a test's actions: `actor` from loopback, the test's name as agent.
pub fn caller(actor: &str, test: &str) -> grappe_engine::audit::Caller {
    grappe_engine::audit::Caller {
        actor: actor.into(),
        source: Some("127.0.0.1".into()),
        user_agent: Some(test.into()),
    }
}

pub fn manifests() -> PathBuf {
    let dir = std::env::var("GRAPPE_MANIFESTS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join("../shared/manifests"));
    assert!(
        dir.join("calico-v3.25.1.yaml").exists(),
        "the CNI manifests are missing in {} (set GRAPPE_MANIFESTS)",
        dir.display()
    );
    dir
}

/// A lab for this test binary; `lab down` when dropped.
pub struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    /// `lab up` with 4 nodes on `port_base`, plus `extra` flags.
    pub fn up(port_base: &str, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let lab = Self { dir };
        let mut args = vec!["up", "--nodes", "4", "--port-base", port_base];
        args.extend_from_slice(extra);
        let out = lab.run(&args);
        assert!(out.contains("Lab up in"), "lab up:\n{out}");
        lab
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// The lab's state directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// How Grappe reaches this lab's hosts (`lab up --hosts on`): as root with the lab's key.
    pub fn ssh_spec(&self) -> grappe_engine::ssh::SshSpec {
        grappe_engine::ssh::SshSpec {
            user: "root".into(),
            key: self.dir.path().join("ssh/id_ed25519"),
            port: 22,
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(120),
            hosts: Default::default(),
            two_person_reset: false,
        }
    }

    /// An engine on a fresh database in `db` with this lab as cluster `lab`.
    pub async fn engine(
        &self,
        db: &std::path::Path,
        manifest_mirror: Option<String>,
    ) -> grappe_engine::Engine {
        self.engine_with(db, manifest_mirror, None).await
    }

    /// As [`Lab::engine`], reaching the lab's hosts over SSH with `ssh`.
    pub async fn engine_with(
        &self,
        db: &std::path::Path,
        manifest_mirror: Option<String>,
        ssh: Option<grappe_engine::ssh::SshSpec>,
    ) -> grappe_engine::Engine {
        grappe_engine::Engine::start(grappe_engine::EngineConfig {
            database: db.join("grappe.db"),
            clusters: vec![grappe_engine::clusters::ClusterSpec {
                name: grappe_engine::names::ClusterName::parse("lab").expect("name"),
                kubeconfig: self.kubeconfig(),
                context: None,
            }],
            throttle: grappe_engine::auth::ThrottlePolicy::default(),
            manifest_mirror,
            recover_runs: true,
            ssh: ssh.into_iter().map(|s| ("lab".to_owned(), s)).collect(),
        })
        .await
        .expect("engine")
    }

    pub fn run(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(repo().join("lab/lab"));
        cmd.args(args).arg("--dir").arg(self.dir.path());
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run lab/lab: {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "lab {args:?} failed:\n{text}");
        text
    }

    /// Runs `command` on a node's host over the lab's SSH (`lab ssh`); fails if it fails.
    pub fn ssh(&self, node: &str, command: &[&str]) -> String {
        let out = Command::new(repo().join("lab/lab"))
            .args(["ssh", "--dir"])
            .arg(self.dir.path())
            .arg(node)
            .arg("--")
            .args(command)
            .output()
            .unwrap_or_else(|e| panic!("cannot run lab/lab: {e}"));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "lab ssh {node} {command:?} failed:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("kubectl is required (the machine's kubectl): {e}"));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }
}

impl Lab {
    /// The image of DaemonSet `namespace/calico-node`'s first container ("" without it).
    pub fn calico_node_image(&self, namespace: &str) -> String {
        self.kubectl(&[
            "get",
            "ds",
            "calico-node",
            "-n",
            namespace,
            "--ignore-not-found",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ])
    }

    /// Sets Calico's ClusterInformation `datastoreReady`.
    pub fn set_datastore_ready(&self, ready: bool) {
        self.kubectl(&[
            "patch",
            "clusterinformations.crd.projectcalico.org",
            "default",
            "--type",
            "merge",
            "-p",
            &format!(r#"{{"spec":{{"datastoreReady":{ready}}}}}"#),
        ]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.keep_logs();
        }
        let _ = Command::new(repo().join("lab/lab"))
            .args(["down", "--dir"])
            .arg(self.dir.path())
            .output();
    }
}

impl Lab {
    /// Copies the lab's logs (the footprint's, the API server's...) to
    /// `test-output/rust/lab-logs/BINARY/` before `lab down` removes them: a test that failed
    /// under load is understood from them, not run again in the hope to see it.
    fn keep_logs(&self) {
        let binary = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .map(|s| s.split('-').next().unwrap_or("lab").to_owned())
            .unwrap_or_else(|| "lab".to_owned());
        let to = repo().join("test-output/rust/lab-logs").join(binary);
        let Ok(entries) = std::fs::read_dir(self.dir().join("logs")) else {
            return;
        };
        if std::fs::create_dir_all(&to).is_err() {
            return;
        }
        for entry in entries.flatten() {
            let _ = std::fs::copy(entry.path(), to.join(entry.file_name()));
        }
        eprintln!("the lab's logs are kept in {}", to.display());
    }
}

/// The lab cluster's live state in `engine`, once its watches have listed everything.
pub async fn synced_state(
    engine: &grappe_engine::Engine,
) -> std::sync::Arc<grappe_engine::state::ClusterState> {
    let state = engine.states.get(&lab_name()).expect("the lab's state");
    eventually("state synced", Duration::from_secs(30), async || {
        state
            .link()
            .synced
            .then_some(())
            .ok_or_else(|| "not synced".to_owned())
    })
    .await;
    state
}

/// The confirmation of a lab run: the cluster's name typed, no fresh password.
pub fn confirm() -> grappe_engine::runs::Confirmation {
    grappe_engine::runs::Confirmation {
        typed: "lab".into(),
        reauthenticated: false,
    }
}

/// Starts `plan` as `actor` (confirmed as [`confirm`] does) and waits until it succeeded.
pub async fn run(
    engine: &grappe_engine::Engine,
    actor: &grappe_engine::runs::Actor,
    plan: &grappe_engine::model::Plan,
) -> (grappe_engine::runs::RunId, grappe_views::runs::RunView) {
    assert!(plan.runnable(), "{}: {:#?}", plan.title, plan.checks);
    let id = engine
        .runs
        .start(actor, grappe_engine::runs::Start::of(plan, confirm()))
        .await
        .unwrap_or_else(|e| panic!("start {}: {e}", plan.title));
    let view = finished(&engine.runs, id).await;
    assert_succeeded(&view);
    (id, view)
}

/// Fails with the run's error and steps unless it succeeded with every step done.
pub fn assert_succeeded(view: &grappe_views::runs::RunView) {
    assert_eq!(
        view.summary.status, "succeeded",
        "run {} {}: {:?}\nsteps: {:#?}",
        view.summary.id, view.summary.title, view.summary.error, view.steps
    );
    assert!(
        view.steps.iter().all(|s| s.status == "done"),
        "{:#?}",
        view.steps
    );
}

/// Waits until run `id` has finished (neither running nor interrupted) and returns it; fails
/// after 10 minutes with its steps.
pub async fn finished(
    runs: &grappe_engine::runs::Runs,
    id: grappe_engine::runs::RunId,
) -> grappe_views::runs::RunView {
    eventually(
        &format!("run {id} finished"),
        Duration::from_secs(600),
        async || {
            let view = runs.view(id).await.expect("run view");
            if matches!(view.summary.status.as_str(), "running" | "interrupted") {
                Err(format!("{:#?}", view.steps))
            } else {
                Ok(view)
            }
        },
    )
    .await
}

/// Polls `check` every 200 ms until it returns `Ok`, or fails with its last complaint.
pub async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let start = Instant::now();
    loop {
        match check().await {
            Ok(v) => {
                // (In the test's output: where its time went.)
                if start.elapsed() > Duration::from_secs(2) {
                    eprintln!("{what}: {:.1} s", start.elapsed().as_secs_f64());
                }
                return v;
            }
            Err(why) if start.elapsed() > timeout => {
                panic!("{what}: still not true after {timeout:?}: {why}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Waits (at most 90 s) until the cluster's findings include rule `rule`, or no longer do.
pub async fn expect_rule(state: &grappe_engine::state::ClusterState, rule: &str, present: bool) {
    eventually(
        &format!(
            "finding {rule} {}",
            if present { "raised" } else { "cleared" }
        ),
        Duration::from_secs(90),
        async || {
            let now: Vec<String> = state.findings().into_iter().map(|f| f.rule).collect();
            if now.iter().any(|r| r == rule) == present {
                Ok(())
            } else {
                Err(format!("findings now: {now:?}"))
            }
        },
    )
    .await;
}

/// Serves the files of `dir` over plain HTTP on loopback (GET only, by file name), as a mirror
/// of the upstream manifests: tests never touch the internet. Returns the base URL.
pub async fn serve_dir(dir: PathBuf) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let dir = dir.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let path = request.split_whitespace().nth(1).unwrap_or("/");
                let file = path.split('?').next().unwrap_or("").trim_start_matches('/');
                let body = (!file.contains("..") && !file.is_empty())
                    .then(|| std::fs::read(dir.join(file)).ok())
                    .flatten();
                let response = match body {
                    // `x.redirect` holds the URL it redirects to.
                    Some(b) if file.ends_with(".redirect") => format!(
                        "HTTP/1.1 302 Found\r\nLocation: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        String::from_utf8_lossy(&b).trim()
                    )
                    .into_bytes(),
                    Some(b) => {
                        let mut r = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            b.len()
                        )
                        .into_bytes();
                        r.extend_from_slice(&b);
                        r
                    }
                    None => {
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_vec()
                    }
                };
                let _ = sock.write_all(&response).await;
            });
        }
    });
    format!("http://{addr}")
}

/// The fingerprint of a host's key as `ssh-keygen -l` prints it, from the lab's known_hosts.
pub fn fingerprint(lab: &Lab, ip: &str) -> String {
    let known = std::fs::read_to_string(lab.dir().join("ssh/known_hosts")).expect("known_hosts");
    let line = known
        .lines()
        .find(|l| l.starts_with(&format!("{ip} ")))
        .unwrap_or_else(|| panic!("no key for {ip} in known_hosts:\n{known}"));
    let out = Command::new("ssh-keygen")
        .args(["-l", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(line.as_bytes())?;
            child.wait_with_output()
        })
        .expect("ssh-keygen");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .expect("fingerprint")
        .to_owned()
}

/// Trusts a node's host key as an admin who checked its fingerprint; returns its endpoint.
pub async fn trust(
    engine: &grappe_engine::Engine,
    lab: &Lab,
    node: &str,
    ip: &str,
) -> grappe_engine::ssh::Endpoint {
    let cluster = ClusterName::parse("lab").expect("cluster");
    let name = NodeName::parse(node).expect("node");
    let endpoint = engine
        .ssh
        .endpoint(&cluster, &name, Some(ip))
        .expect("endpoint");
    engine
        .ssh
        .trust(&caller("ada", "trust"), &endpoint, &fingerprint(lab, ip))
        .await
        .unwrap_or_else(|e| panic!("trust {node}: {e}"));
    endpoint
}

/// Whether the tests run as root (the lab's hosts are network namespaces with an sshd each).
pub fn is_root() -> bool {
    // SAFETY-free check: /proc/self/status's Uid line.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}
