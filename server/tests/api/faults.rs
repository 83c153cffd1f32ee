//! Faults in the middle of runs, against a real `grappe serve` (its fault points built in by
//! the tests' `faults` feature) and a lab of its own with node hosts:
//! - SIGKILL at every step boundary of every workflow, in turn (a CNI install, its rollback, a
//!   drain, a reset, a recovery that rolls an install back): after each restart the run is
//!   `interrupted`, the audit chain verifies, and every `attempted` record of the run has its
//!   outcome or the run's `run.interrupt` after it; resumed, each run ends and is sealed,
//!   including one killed between its end and its seal;
//! - the API server stopped in the middle of an install's apply (the run fails cleanly, its
//!   rollback undoes it) and during its rollout (the run waits, then succeeds);
//! - the SSH connection cut during `kubeadm reset` (the run fails cleanly, a new reset works);
//! - the disk full under the database during a step (the run's end is recorded once there is
//!   room again, the chain verifies).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::Http;
use crate::process::{
    LabGuard, Server, add_user, json, lab, repo, run_until, serve_with, start_form,
};

const PASSWORD: &str = "a-long-test-password-42";
const PORT: u16 = 18192;

/// The Grappe under test: its configuration, where its logs go, how it is reached.
struct Faulty {
    config: PathBuf,
    work: PathBuf,
    http: Http,
    starts: usize,
}

impl Faulty {
    /// A `grappe serve` that kills itself at `point` (none: it runs on); logged in as ada.
    async fn serve(&mut self, env: &[(&str, &str)]) -> (Server, String) {
        self.starts += 1;
        let log = self.work.join(format!("server-{}.log", self.starts));
        let mut server = serve_with(&self.config, &log, env);
        let start = Instant::now();
        while self
            .http
            .client
            .get(format!("{}/healthz", self.http.base))
            .send()
            .await
            .is_err()
        {
            let exited = server.0.try_wait().expect("wait").is_some();
            if exited || start.elapsed() > Duration::from_secs(30) {
                panic!(
                    "grappe did not start:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let cookie = self.http.login("ada", PASSWORD).await;
        (server, cookie)
    }

    async fn serve_killed_at(&mut self, point: &str) -> (Server, String) {
        self.serve(&[("GRAPPE_TEST_FAULT_KILL", point)]).await
    }

    /// `grappe audit verify` on the database.
    fn verify(&self) {
        let out = Command::new(env!("CARGO_BIN_EXE_grappe"))
            .arg("--config")
            .arg(&self.config)
            .args(["audit", "verify"])
            .output()
            .expect("grappe audit verify");
        assert!(
            out.status.success(),
            "the audit chain does not verify: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The audit log, oldest first.
    fn records(&self) -> Vec<Value> {
        let out = Command::new(env!("CARGO_BIN_EXE_grappe"))
            .arg("--config")
            .arg(&self.config)
            .args(["audit", "export", "--format", "json"])
            .output()
            .expect("grappe audit export");
        assert!(out.status.success(), "audit export");
        let mut records: Vec<Value> = serde_json::from_slice(&out.stdout).expect("records");
        records.sort_by_key(|r| r["id"].as_i64());
        records
    }

    /// Every `attempted` record about run `id` has its outcome (a record naming it as its
    /// attempt) or, after it, the run's `run.interrupt` or `run.finish`.
    fn attempts_explained(&self, id: &str) {
        let object = format!("run/{id}");
        let records = self.records();
        let details = |r: &Value| -> Value {
            r["details"]
                .as_str()
                .and_then(|d| serde_json::from_str(d).ok())
                .unwrap_or_else(|| r["details"].clone())
        };
        for a in records
            .iter()
            .filter(|r| r["object"] == object.as_str() && r["outcome"] == "attempted")
        {
            let aid = a["id"].as_i64().expect("id");
            let explained = records.iter().any(|r| {
                let later = r["id"].as_i64().expect("id") > aid;
                details(r)["attempt"].as_i64() == Some(aid)
                    || (later
                        && r["object"] == object.as_str()
                        && (r["action"] == "run.interrupt" || r["action"] == "run.finish"))
            });
            if !explained {
                let log = self.work.join(format!("server-{}.log", self.starts));
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                panic!(
                    "attempt {aid} of run {id} has no outcome: {a}\nthe log ends:\n{}",
                    tail.join("\n")
                );
            }
        }
    }
}

impl Faulty {
    /// Waits until the running server's log has a line containing `needle`.
    async fn logged(&self, needle: &str) {
        let log = self.work.join(format!("server-{}.log", self.starts));
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains(needle) {
                return;
            }
            if start.elapsed() > Duration::from_secs(120) {
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                panic!(
                    "grappe never logged {needle:?}; its log ends:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the server killed itself (its fault point reached); its log's end and the
    /// run's view when not.
    async fn died(&self, server: &mut Server, point: &str, cookie: &str, run: &str) {
        let start = Instant::now();
        loop {
            if let Some(status) = server.0.try_wait().expect("wait") {
                assert!(!status.success(), "grappe exited by itself at {point}");
                return;
            }
            if start.elapsed() > Duration::from_secs(240) {
                let view = json(&self.http, cookie, "/api/get_run", &[("run", run)]).await;
                eprintln!("run {run} now: {view:#}");
                let log = self.work.join(format!("server-{}.log", self.starts));
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                panic!(
                    "grappe never reached the fault point {point}; its log ends:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The boundaries of a run of `steps` steps after its first step was reached: the first
/// step's audit and end, then each next step's start, audit and end, then its end before its
/// seal.
fn boundaries(steps: usize) -> Vec<String> {
    let mut points = vec!["step 0 audited".to_owned(), "step 0 done".to_owned()];
    for i in 1..steps {
        points.push(format!("step {i} audited"));
        points.push(format!("step {i} done"));
    }
    points.push("finished".to_owned());
    points
}

/// Runs `start` (which plans and starts a run, returning its id) on a Grappe killed before
/// its first step, then resumes the run on a Grappe killed at each next boundary, checking
/// after each restart that the run is interrupted and the audit consistent; returns the run's
/// final view (its end recorded by a Grappe without faults, after the last kill).
async fn through_every_boundary<F, Fut>(f: &mut Faulty, what: &str, start: F) -> Value
where
    F: FnOnce(Http, String) -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let (mut server, cookie) = f.serve_killed_at("step 0 before").await;
    let id = start(Http::new(f.http.base.clone()), cookie.clone()).await;
    f.died(&mut server, "step 0 before", &cookie, &id).await;
    drop(server);
    let mut previous = "step 0 before".to_owned();
    // Known once the run's steps are (after the first kill).
    let mut points: Option<Vec<String>> = None;
    let mut next = 0;
    loop {
        let point = points.as_ref().and_then(|p| p.get(next).cloned());
        let last = points.as_ref().is_some_and(|p| next >= p.len());
        let (mut server, cookie) = match &point {
            Some(p) => f.serve_killed_at(p).await,
            None => f.serve(&[]).await,
        };
        let view = json(&f.http, &cookie, "/api/get_run", &[("run", &id)]).await;
        f.verify();
        f.attempts_explained(&id);
        if last {
            assert_eq!(
                view["summary"]["status"], "succeeded",
                "{what} after its last kill: {view:#}"
            );
            // Killed between its end and its seal: sealed at this start.
            let view = run_until(&f.http, &cookie, &id, "sealed", |v| !v["digest"].is_null()).await;
            eprintln!(
                "{what}: run {id} succeeded and sealed; {} starts so far",
                f.starts
            );
            return view;
        }
        assert_eq!(
            view["summary"]["status"], "interrupted",
            "{what} after a kill at {previous}: {view:#}"
        );
        let Some(point) = point else {
            let steps = view["steps"].as_array().map_or(0, Vec::len);
            points = Some(boundaries(steps));
            continue;
        };
        let mut form = vec![("run", id.as_str()), ("what", "resume")];
        if view["may"]["resume_password"] == true {
            form.push(("password", PASSWORD));
        }
        json(&f.http, &cookie, "/api/control_run", &form).await;
        f.died(&mut server, &point, &cookie, &id).await;
        drop(server);
        previous = point;
        next += 1;
    }
}

/// Plans (through `plan_path` with `form`) and starts, confirmed with `typed`: the run's id.
async fn plan_and_start(
    http: &Http,
    cookie: &str,
    plan_path: &str,
    form: &[(&str, &str)],
    typed: &str,
) -> String {
    let plan = wait_plan(http, cookie, plan_path, form).await;
    assert!(
        plan["checks"]
            .as_array()
            .is_some_and(|c| c.iter().all(|c| c["level"] != "fail")),
        "{plan_path}: {plan:#}"
    );
    let mut start = start_form(&plan, typed).to_vec();
    start.push(("password", PASSWORD));
    let id = json(http, cookie, "/api/start_run", &start).await;
    id.as_i64().expect("run id").to_string()
}

/// A plan, once the live state has been read (right after a start it may not be yet).
async fn wait_plan(http: &Http, cookie: &str, path: &str, form: &[(&str, &str)]) -> Value {
    let start = Instant::now();
    loop {
        let res = http.call(path, Some(cookie), form).await;
        let status = res.status();
        let body = res.text().await.expect("body");
        if status.is_success() && !body.contains("has not been read yet") {
            return serde_json::from_str(&body).expect("plan");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{path}: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn calico_text() -> String {
    let manifests = std::env::var("GRAPPE_MANIFESTS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join("../shared/manifests"));
    std::fs::read_to_string(manifests.join("calico-v3.25.1.yaml"))
        .expect("GRAPPE_MANIFESTS must hold calico-v3.25.1.yaml")
}

async fn start_install(http: Http, cookie: String) -> String {
    let text = calico_text();
    let form = [
        ("cluster", "lab"),
        ("source", "paste"),
        ("text", text.as_str()),
    ];
    plan_and_start(&http, &cookie, "/api/plan_cni_install", &form, "lab").await
}

/// Trusts `node`'s host key as it presents it now.
async fn trust(http: &Http, cookie: &str, node: &str) {
    let check = json(
        http,
        cookie,
        "/api/check_host",
        &[("cluster", "lab"), ("node", node)],
    )
    .await;
    if let Some(fingerprint) = check["UntrustedKey"]["presented"]["fingerprint"].as_str() {
        json(
            http,
            cookie,
            "/api/trust_host_key",
            &[
                ("cluster", "lab"),
                ("node", node),
                ("fingerprint", fingerprint),
                ("password", PASSWORD),
            ],
        )
        .await;
    }
}

fn write_config(work: &Path, lab_dir: &Path, database: &Path) -> PathBuf {
    let config = work.join("grappe.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{PORT}\"\ndatabase = \"{}\"\nsite_root = \"{}\"\n\n\
             [[clusters]]\nname = \"lab\"\nkubeconfig = \"{}\"\n\n\
             [clusters.ssh]\nuser = \"root\"\nkey = \"{}\"\n",
            database.display(),
            repo().join("target/site").display(),
            lab_dir.join("kubeconfig").display(),
            lab_dir.join("ssh/id_ed25519").display(),
        ),
    )
    .expect("config");
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_end_recorded_through_kills_outages_and_a_full_disk() {
    assert!(
        crate::process::is_root(),
        "these tests need root (the lab's node hosts, a tmpfs for the full disk)"
    );
    let work = tempfile::tempdir().expect("tempdir");
    let lab_dir = work.path().join("lab");
    let _lab = LabGuard(lab_dir.clone());
    lab(
        &lab_dir,
        &[
            "up",
            "--nodes",
            "4",
            "--port-base",
            "17850",
            "--hosts",
            "on",
            "--node-cidr",
            "10.21.0.0/16",
        ],
    );
    // The seed's demo/web budget allows no disruption: the drains here are not about it.
    crate::process::relax_demo_budget(&lab_dir);
    // The database on a small tmpfs of its own, to fill it later.
    let dbfs = work.path().join("dbfs");
    std::fs::create_dir(&dbfs).expect("dbfs");
    let mount = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs"])
        .arg(&dbfs)
        .status()
        .expect("mount");
    assert!(mount.success(), "mount a tmpfs for the database");
    let _unmount = Unmount(dbfs.clone());
    let config = write_config(work.path(), &lab_dir, &dbfs.join("grappe.db"));
    add_user(&config, "ada", "admin", PASSWORD);
    let mut f = Faulty {
        config,
        work: work.path().to_path_buf(),
        http: Http::new(format!("http://127.0.0.1:{PORT}")),
        starts: 0,
    };

    // 1. An install killed at every boundary, then its rollback likewise.
    let install = through_every_boundary(&mut f, "install", start_install).await;
    let install_id = install["summary"]["id"].to_string();
    let rollback = through_every_boundary(&mut f, "rollback", |http, cookie| async move {
        plan_and_start(
            &http,
            &cookie,
            "/api/plan_run_rollback",
            &[("run", &install_id)],
            "lab",
        )
        .await
    })
    .await;
    assert_eq!(rollback["summary"]["status"], "succeeded");

    // 2. A drain of bellatrix killed at every boundary.
    through_every_boundary(&mut f, "drain", |http, cookie| async move {
        let form = [
            ("cluster", "lab"),
            ("nodes", "bellatrix"),
            ("force", "on"),
            ("ignore_daemonsets", "on"),
            ("delete_emptydir_data", "on"),
            // Budgets (coredns's, with no CNI on the nodes) are not what this is about.
            ("disable_eviction", "on"),
        ];
        plan_and_start(&http, &cookie, "/api/plan_node_drain", &form, "bellatrix").await
    })
    .await;

    // 3. A reset of the drained bellatrix (no drain first) killed at every boundary.
    {
        let (_server, cookie) = f.serve(&[]).await;
        trust(&f.http, &cookie, "bellatrix").await;
        trust(&f.http, &cookie, "rigel").await;
        trust(&f.http, &cookie, "betelgeuse").await;
    }
    through_every_boundary(&mut f, "reset", |http, cookie| async move {
        let form = [("cluster", "lab"), ("node", "bellatrix")];
        plan_and_start(&http, &cookie, "/api/plan_node_reset", &form, "bellatrix").await
    })
    .await;

    // 4. The API server stopped during an install's apply: the run fails cleanly, the
    // rollback of what it applied works once the API server is back.
    let (server, cookie) = f
        .serve(&[
            // Its CRDs, namespaces, RBAC and configuration applied, its workloads not.
            ("GRAPPE_TEST_FAULT_HOLD", "step apply workloads audited"),
            (
                "GRAPPE_TEST_FAULT_HOLD_FILE",
                &work.path().join("hold").to_string_lossy(),
            ),
        ])
        .await;
    let hold = work.path().join("hold");
    let id = start_install(f.http_clone(), cookie.clone()).await;
    wait_for_file(&hold).await;
    lab(&lab_dir, &["break", "apiserver"]);
    std::fs::remove_file(&hold).expect("release");
    let failed = run_until(&f.http, &cookie, &id, "the apply failed", |v| {
        v["summary"]["status"] != "running"
    })
    .await;
    assert_eq!(failed["summary"]["status"], "failed", "{failed:#}");
    lab(&lab_dir, &["heal"]);
    let undo = plan_and_start(
        &f.http,
        &cookie,
        "/api/plan_run_rollback",
        &[("run", &id)],
        "lab",
    )
    .await;
    let undone = run_until(&f.http, &cookie, &undo, "the rollback ended", |v| {
        v["summary"]["status"] != "running"
    })
    .await;
    assert_eq!(undone["summary"]["status"], "succeeded", "{undone:#}");
    drop(server);
    f.verify();

    // 5. The API server stopped during an install's rollout: the run waits, then succeeds.
    // (Its steps: snapshot, the apply phases, the rollout last.)
    let rollout_hold = work.path().join("hold-rollout");
    let (server, cookie) = f
        .serve(&[
            ("GRAPPE_TEST_FAULT_HOLD", "step rollout audited"),
            (
                "GRAPPE_TEST_FAULT_HOLD_FILE",
                &rollout_hold.to_string_lossy(),
            ),
        ])
        .await;
    let id = start_install(f.http_clone(), cookie.clone()).await;
    wait_for_file(&rollout_hold).await;
    let view = json(&f.http, &cookie, "/api/get_run", &[("run", &id)]).await;
    assert_eq!(step(&view, "rollout")["status"], "running", "{view:#}");
    lab(&lab_dir, &["break", "apiserver"]);
    std::fs::remove_file(&rollout_hold).expect("release");
    run_until(
        &f.http,
        &cookie,
        &id,
        "the rollout waits for the API server",
        |v| {
            step(v, "rollout")["output"]
                .as_str()
                .is_some_and(|o| o.contains("the API server does not answer"))
        },
    )
    .await;
    lab(&lab_dir, &["heal"]);
    let done = run_until(&f.http, &cookie, &id, "the rollout ended", |v| {
        v["summary"]["status"] != "running"
    })
    .await;
    assert_eq!(done["summary"]["status"], "succeeded", "{done:#}");

    // 6. A recovery that rolls that install back, killed at every boundary.
    lab(&lab_dir, &["break", "apiserver"]);
    drop(server);
    through_every_boundary(&mut f, "recovery", |http, cookie| async move {
        plan_and_start(
            &http,
            &cookie,
            "/api/plan_recovery",
            &[("cluster", "lab")],
            "lab",
        )
        .await
    })
    .await;

    // 7. The SSH connection cut during `kubeadm reset`: the run fails cleanly; a new reset of
    // the host works.
    let (server, cookie) = f.serve(&[]).await;
    lab(&lab_dir, &["break", "slow-reset", "rigel"]);
    let reset = [("cluster", "lab"), ("node", "rigel")];
    let id = plan_and_start(&f.http, &cookie, "/api/plan_node_reset", &reset, "rigel").await;
    run_until(&f.http, &cookie, &id, "kubeadm reset running", |v| {
        v["steps"].as_array().is_some_and(|s| {
            s.iter().any(|s| {
                s["name"] == "kubeadm reset -f"
                    && s["status"] == "running"
                    && s["output"]
                        .as_str()
                        .is_some_and(|o| o.contains("Stopping the running containers"))
            })
        })
    })
    .await;
    lab(&lab_dir, &["break", "ssh-cut", "rigel"]);
    let cut = run_until(&f.http, &cookie, &id, "the reset ended", |v| {
        v["summary"]["status"] != "running"
    })
    .await;
    assert_eq!(cut["summary"]["status"], "failed", "{cut:#}");
    lab(&lab_dir, &["heal"]);
    let again = plan_and_start(&f.http, &cookie, "/api/plan_node_reset", &reset, "rigel").await;
    let again = run_until(&f.http, &cookie, &again, "the second reset ended", |v| {
        v["summary"]["status"] != "running"
    })
    .await;
    assert_eq!(again["summary"]["status"], "succeeded", "{again:#}");
    drop(server);
    f.verify();

    // 8. The disk full under the database during a step: the run's end is recorded once there
    // is room again.
    let disk_hold = work.path().join("hold-disk");
    let (server, cookie) = f
        .serve(&[
            ("GRAPPE_TEST_FAULT_HOLD", "step 1 audited"),
            ("GRAPPE_TEST_FAULT_HOLD_FILE", &disk_hold.to_string_lossy()),
        ])
        .await;
    let form = [
        ("cluster", "lab"),
        ("nodes", "saiph"),
        ("force", "on"),
        ("ignore_daemonsets", "on"),
        ("delete_emptydir_data", "on"),
        ("disable_eviction", "on"),
    ];
    let id = plan_and_start(&f.http, &cookie, "/api/plan_node_drain", &form, "saiph").await;
    wait_for_file(&disk_hold).await;
    empty_the_wal(&dbfs.join("grappe.db")).await;
    let filler = dbfs.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=1M", "status=none"])
        .arg(format!("of={}", filler.display()))
        .status();
    std::fs::remove_file(&disk_hold).expect("release");
    // The step fails writing its output; the run's end waits for room (its retry is logged).
    f.logged("could not record the end of a run").await;
    std::fs::remove_file(&filler).expect("room again");
    let full = run_until(&f.http, &cookie, &id, "the run's end recorded", |v| {
        v["summary"]["status"] != "running"
    })
    .await;
    assert_eq!(full["summary"]["status"], "failed", "{full:#}");
    run_until(&f.http, &cookie, &id, "sealed", |v| !v["digest"].is_null()).await;
    drop(server);
    f.verify();
    f.attempts_explained(&id);
}

impl Faulty {
    fn http_clone(&self) -> Http {
        Http::new(self.http.base.clone())
    }
}

/// The step of a run's view named `name` (null when none is).
fn step<'a>(view: &'a Value, name: &str) -> &'a Value {
    view["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .unwrap_or(&Value::Null)
}

async fn wait_for_file(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the fault point {} was never reached",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checkpoints the database's write-ahead log into the database and truncates it to nothing,
/// from a connection of the test's own while the server is held at a fault point. SQLite
/// writes into the space of an earlier, checkpointed log before it grows the file, so without
/// this a full disk refuses nothing until the log outgrows its old size (a run that went on
/// undisturbed in CI); with an empty log the next write needs new blocks and meets the full
/// disk.
async fn empty_the_wal(db: &Path) {
    use sqlx::Connection;
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db)
        .busy_timeout(Duration::from_secs(10));
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .expect("open the database beside the server");
    let start = Instant::now();
    loop {
        // (busy, frames in the log, frames checkpointed): busy is 1 while a reader or writer
        // of the server keeps the log from being truncated.
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&mut conn)
            .await
            .expect("checkpoint");
        let wal = db.with_extension("db-wal");
        let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        if busy == 0 && size == 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the write-ahead log could not be emptied (busy {busy}, {size} bytes)"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    conn.close().await.expect("close");
}

/// Unmounts the database's tmpfs when dropped.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
