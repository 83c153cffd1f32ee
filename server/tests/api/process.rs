//! What the tests that run a real `grappe serve` process share: the lab they start (stopped
//! when dropped), the server process (killed when dropped), users added with the command
//! line, JSON calls to server functions, and waits on a run's view.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::Value;

use crate::helpers::Http;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo")
        .to_path_buf()
}

/// `lab/lab` with `args` on `dir`; panics with its output on failure.
pub fn lab(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(repo().join("lab/lab"))
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run lab/lab: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "lab {args:?}:\n{text}");
    text
}

pub struct LabGuard(pub PathBuf);

impl Drop for LabGuard {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("lab/lab"))
            .args(["down", "--dir"])
            .arg(&self.0)
            .output();
    }
}

pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `grappe user add NAME --role ROLE --password-stdin` on the configuration's database.
pub fn add_user(config: &Path, name: &str, role: &str, password: &str) {
    use std::io::Write;
    let mut add = Command::new(env!("CARGO_BIN_EXE_grappe"))
        .arg("--config")
        .arg(config)
        .args(["user", "add", name, "--role", role, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("grappe user add");
    let mut stdin = add.stdin.take().expect("stdin");
    stdin
        .write_all(format!("{password}\n").as_bytes())
        .expect("password");
    drop(stdin);
    assert!(add.wait().expect("user add").success());
}

pub fn serve(config: &Path, log: &Path) -> Server {
    serve_with(config, log, &[])
}

/// `grappe serve` with more environment variables (fault points).
pub fn serve_with(config: &Path, log: &Path, env: &[(&str, &str)]) -> Server {
    let log = std::fs::File::create(log).expect("log file");
    Server(
        Command::new(env!("CARGO_BIN_EXE_grappe"))
            .args(["--config"])
            .arg(config)
            .arg("serve")
            .envs(env.iter().copied())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn grappe serve"),
    )
}

/// Whether the tests run as root (the lab's node hosts, mounts).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

pub async fn wait_up(http: &Http) {
    let start = Instant::now();
    while http
        .client
        .get(format!("{}/healthz", http.base))
        .send()
        .await
        .is_err()
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "grappe did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The form that starts `plan` as the page sends it, confirmed with `typed`.
pub fn start_form<'a>(plan: &'a Value, typed: &'a str) -> [(&'a str, &'a str); 5] {
    let text = |key: &str| plan[key].as_str().expect("a plan's field");
    [
        ("workflow", text("workflow")),
        ("cluster", text("cluster")),
        ("request", text("request")),
        ("plan_hash", text("hash")),
        ("confirm", typed),
    ]
}

pub async fn json(http: &Http, cookie: &str, path: &str, form: &[(&str, &str)]) -> Value {
    let res = http.call(path, Some(cookie), form).await;
    let status = res.status();
    let body = res.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

pub async fn run_until(
    http: &Http,
    cookie: &str,
    run: &str,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let view = json(http, cookie, "/api/get_run", &[("run", run)]).await;
        if ok(&view) {
            return view;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "run {run}: {what} never happened: {view:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn step_status(view: &Value, step: &str) -> String {
    view["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == step))
        .and_then(|s| s["status"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// The machine's kubectl against the lab in `lab_dir`; panics with its error when it fails.
pub fn kubectl(lab_dir: &Path, args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(lab_dir.join("kubeconfig"))
        .args(args)
        .output()
        .expect("kubectl is required (the machine's kubectl)");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Lets the seed's demo/web budget (maxUnavailable 0) disrupt: for drains that are not about it.
pub fn relax_demo_budget(lab_dir: &Path) {
    kubectl(
        lab_dir,
        &[
            "-n",
            "demo",
            "patch",
            "pdb",
            "web",
            "--type=merge",
            "-p",
            r#"{"spec":{"maxUnavailable":3}}"#,
        ],
    );
}
