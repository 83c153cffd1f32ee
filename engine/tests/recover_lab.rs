//! The on-call recovery as one run (`apiserver.recover`) on a lab whose nodes are SSH hosts:
//! Calico installed through Grappe, then the kube-apiserver lost. The recovery's plan offers
//! the install's rollback (ticked by default in the UI). With the static pod's manifest gone
//! the run stops at its first step and the rollback's steps never start; with it back, one run
//! restarts the API server and rolls the install back with the rollback's own steps.

mod support;

use std::time::{Duration, Instant};

use grappe_engine::audit::{Action, AuditFilter, VerifyReport};
use grappe_engine::manifests::Source;
use grappe_engine::model::Plan;
use grappe_engine::runs::cni::InstallParams;
use grappe_engine::runs::{RunId, Start};
use grappe_views::runs::{Planned, RunView};
use support::{Lab, finished, is_root, manifests, serve_dir, trust};

const PORT_BASE: &str = "17800";

/// A recovery plan once the engine sees the API server down (its probe is fresh).
async fn runnable_recovery(engine: &grappe_engine::Engine) -> Plan {
    support::eventually("a runnable recovery", Duration::from_secs(60), async || {
        let plan = engine
            .runs
            .plan_recovery(&support::lab_name())
            .await
            .expect("plan");
        if plan.runnable() {
            Ok(plan)
        } else {
            Err(format!("{:?}", plan.checks))
        }
    })
    .await
}

/// Starts the recovery `plan` previewed, with its rollback ticked, and waits for its end.
async fn recover(engine: &grappe_engine::Engine, plan: &Plan) -> RunView {
    let id = engine
        .runs
        .start(&admin(), Start::of(plan, support::confirm()))
        .await
        .expect("start recovery");
    finished(&engine.runs, id).await
}

fn admin() -> grappe_engine::runs::Actor {
    support::admin("ada", "recover_lab")
}

/// Whether the audit log has a `run.start` of run `id` linked to the run it rolls back.
async fn start_links(engine: &grappe_engine::Engine, install: RunId) -> usize {
    let records = engine
        .audit
        .export(&AuditFilter::default(), 1_000)
        .await
        .expect("audit");
    records
        .iter()
        .filter(|r| r.action == Action::RunStart.as_str())
        .filter(|r| {
            r.details
                .contains(&format!("\"rollback_of\":{}", install.0))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_restarts_the_apiserver_then_rolls_back_the_install_in_one_run() {
    assert!(
        is_root(),
        "the lab hosts need root (network namespaces and an sshd per node): run the tests as root"
    );
    let lab = Lab::up(PORT_BASE, &["--hosts", "on", "--node-cidr", "10.18.0.0/16"]);
    let db = tempfile::tempdir().expect("tempdir");
    let mirror = serve_dir(manifests()).await;
    let engine = lab
        .engine_with(db.path(), Some(mirror), Some(lab.ssh_spec()))
        .await;
    let admin = admin();

    // The seed's Calico, installed through Grappe.
    let calico = engine
        .runs
        .manifest(&admin.caller, Source::Catalog("calico-v3.25.1"))
        .await
        .expect("catalog manifest");
    let params = InstallParams {
        manifest_sha256: calico.sha256.clone(),
        ..InstallParams::default()
    };
    let plan = support::eventually("a runnable install", Duration::from_secs(60), async || {
        let plan = engine
            .runs
            .plan_install(&support::lab_name(), &calico, &params)
            .await
            .expect("plan install");
        if plan.runnable() {
            Ok(plan)
        } else {
            Err(format!("{:?}", plan.checks))
        }
    })
    .await;
    let install = engine
        .runs
        .start(&admin, Start::of(&plan, support::confirm()))
        .await
        .expect("start install");
    let run = finished(&engine.runs, install).await;
    assert_eq!(run.summary.status, "succeeded", "{:#?}", run.steps);

    // The control plane's key trusted (day one), then the API server lost.
    trust(&engine, &lab, "betelgeuse", "10.18.0.10").await;
    lab.run(&["break", "apiserver"]);
    let plan = runnable_recovery(&engine).await;
    let view = plan.view();
    let preview = view.recovery().cloned().expect("recovery preview");
    assert_eq!(preview.rollback_run, Some(install.0), "{:?}", plan.checks);
    assert_eq!(
        plan.count(Planned::Delete),
        27,
        "every object the install created is to be deleted: {:?}",
        plan.objects
    );

    // Without the static pod's manifest the restart cannot work: the run stops at its look,
    // the API server stays down, and the rollback's steps never start.
    let manifest = "/etc/kubernetes/manifests/kube-apiserver.yaml";
    lab.ssh("betelgeuse", &["mv", manifest, "/root/kube-apiserver.yaml"]);
    let run = recover(&engine, &plan).await;
    assert_eq!(run.summary.status, "failed", "{:#?}", run.steps);
    let error = run.summary.error.clone().unwrap_or_default();
    assert!(error.contains("kube-apiserver.yaml is missing"), "{error}");
    let rollback_steps: Vec<_> = run
        .steps
        .iter()
        .filter(|s| s.name.starts_with(&format!("roll back run {install}: ")))
        .collect();
    assert_eq!(rollback_steps.len(), 5, "{:#?}", run.steps);
    assert!(
        rollback_steps.iter().all(|s| s.status == "pending"),
        "{rollback_steps:#?}"
    );
    assert!(run.objects.iter().all(|o| o.done.is_none()));
    lab.ssh("betelgeuse", &["mv", "/root/kube-apiserver.yaml", manifest]);

    // One run: restart, /readyz, then the install rolled back.
    let plan = runnable_recovery(&engine).await;
    let started = Instant::now();
    let run = recover(&engine, &plan).await;
    eprintln!(
        "recovery with rollback: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(run.summary.status, "succeeded", "{:#?}", run.steps);
    assert!(run.steps.iter().all(|s| s.status == "done"));
    let verify = run.steps.last().expect("steps");
    assert_eq!(verify.name, format!("roll back run {install}: verify"));
    assert!(
        verify.output.contains("equal their snapshot"),
        "{}",
        verify.output
    );
    assert_eq!(lab.kubectl(&["get", "--raw", "/readyz"]).trim(), "ok");
    let daemonsets = lab.kubectl(&["get", "ds", "-n", "kube-system", "-o", "name"]);
    assert!(!daemonsets.contains("calico"), "{daemonsets}");
    assert!(
        run.objects
            .iter()
            .all(|o| o.done.as_deref() == Some("deleted")),
        "{:?}",
        run.objects
    );
    // Audited as one run linked to the install it undoes, on an intact chain.
    assert_eq!(start_links(&engine, install).await, 2);
    assert!(matches!(
        engine.audit.verify().await.expect("verify"),
        VerifyReport::Intact { .. }
    ));
}
