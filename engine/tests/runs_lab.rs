//! CNI workflow runs against a lab of their own: install Calico v3.25.1 from a (local) mirror
//! until calico-node is Ready on every node; upgrade to v3.26.5 and roll the upgrade back,
//! comparing every object with its snapshot; roll back the install and find all 27 objects
//! gone (a deletion held by a finalizer says what holds it); remove a Calico installed with
//! kubectl; a tampered manifest, a changed plan, a wrong confirmation and a second concurrent
//! run are refused; runs are sealed in the audit chain.
//!
//! Needs Go, the machine's kubectl and the shared manifests (`GRAPPE_MANIFESTS`). Fails (never
//! skips) when they are missing.

mod support;

use std::time::Duration;

use grappe_engine::manifests::{Fetcher, ManifestError, Source};
use grappe_engine::runs::cni::InstallParams;
use grappe_engine::runs::{Actor, Confirmation, RunError, RunId, Start};
use grappe_views::runs::Planned;
use support::{Lab, manifests, serve_dir};

const PORT_BASE: &str = "17400";

fn alice() -> Actor {
    support::admin("alice", "runs_lab")
}

/// Sets (or with `null` clears) the finalizers of kube-system/calico-config.
fn set_calico_config_finalizers(lab: &Lab, finalizers: &str) {
    let patch = format!(r#"{{"metadata":{{"finalizers":{finalizers}}}}}"#);
    lab.kubectl(&[
        "patch",
        "cm",
        "calico-config",
        "-n",
        "kube-system",
        "--type",
        "merge",
        "-p",
        &patch,
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cni_install_upgrade_rollback_and_remove_on_the_lab() {
    let lab = Lab::up(PORT_BASE, &[]);
    let mirror = serve_dir(manifests()).await;
    let db = tempfile::tempdir().expect("tempdir");
    let engine = lab.engine(db.path(), Some(mirror.clone())).await;
    support::synced_state(&engine).await;

    // A tampered manifest is refused: same file name, one byte changed.
    let tampered = tempfile::tempdir().expect("tempdir");
    let mut text = std::fs::read_to_string(manifests().join("calico-v3.25.1.yaml")).expect("read");
    text = text.replacen("calico/node:v3.25.1", "calico/node:v3.25.9", 1);
    std::fs::write(tampered.path().join("calico-v3.25.1.yaml"), text).expect("write");
    let bad = Fetcher::new(Some(serve_dir(tampered.path().to_owned()).await)).expect("fetcher");
    match bad.catalog("calico-v3.25.1").await {
        Err(ManifestError::ChecksumMismatch { expected, .. }) => {
            assert_eq!(
                expected,
                "907e3aa4ef102526a020735bbc053611b8c284bcadcbbb476f9ba46a4fd78329"
            );
        }
        other => panic!("tampered manifest not refused: {other:?}"),
    }

    // Plan the seed's install: 27 objects to create, checks pass, nothing changed.
    let calico = engine
        .runs
        .manifest(&alice().caller, Source::Catalog("calico-v3.25.1"))
        .await
        .expect("catalog manifest");
    assert!(calico.verified());
    let params = InstallParams {
        manifest_sha256: calico.sha256.clone(),
        ..InstallParams::default()
    };
    let plan = engine
        .runs
        .plan_install(&support::lab_name(), &calico, &params)
        .await
        .expect("plan");
    assert_eq!(plan.objects.len(), 27);
    assert_eq!(plan.count(Planned::Create), 27, "{:?}", plan.objects);
    assert!(plan.runnable(), "{:#?}", plan.checks);
    for id in ["api", "cni", "pool", "permissions", "nodes"] {
        assert!(
            plan.checks.iter().any(|c| c.id == id),
            "check {id} missing: {:#?}",
            plan.checks
        );
    }
    assert!(
        lab.kubectl(&["get", "ds", "-n", "kube-system", "-o", "name"])
            .trim()
            .lines()
            .all(|l| !l.contains("calico"))
    );

    // Refusals: wrong confirmation, stale plan hash.
    let wrong = Confirmation {
        typed: "prod".into(),
        reauthenticated: false,
    };
    assert!(matches!(
        engine.runs.start(&alice(), Start::of(&plan, wrong)).await,
        Err(RunError::NotConfirmed(_))
    ));
    assert!(matches!(
        engine
            .runs
            .start(
                &alice(),
                Start {
                    plan_hash: "0000".into(),
                    ..Start::of(&plan, support::confirm())
                }
            )
            .await,
        Err(RunError::PlanChanged)
    ));

    // Install; a second start while it runs is refused with who holds the cluster.
    let install = engine
        .runs
        .start(&alice(), Start::of(&plan, support::confirm()))
        .await
        .expect("install starts");
    match engine
        .runs
        .start(&alice(), Start::of(&plan, support::confirm()))
        .await
    {
        Err(RunError::Busy { active, .. }) => {
            assert_eq!(active.id, install);
            assert_eq!(active.actor, "alice");
        }
        other => panic!("second run not refused: {other:?}"),
    }
    let view = support::finished(&engine.runs, install).await;
    support::assert_succeeded(&view);
    assert_eq!(view.objects.len(), 27);
    assert!(
        view.objects
            .iter()
            .all(|o| o.done.as_deref() == Some("applied") && o.existed == Some(false))
    );
    let rollout = &view.steps.last().expect("steps").output;
    assert!(rollout.contains("calico-node: 4/4 Ready"), "{rollout}");
    let ready = lab.kubectl(&[
        "get",
        "ds",
        "calico-node",
        "-n",
        "kube-system",
        "-o",
        "jsonpath={.status.numberReady}",
    ]);
    assert_eq!(ready.trim(), "4");
    assert!(
        engine.runs.verify(install).await.expect("verify"),
        "the sealed digest must match"
    );

    // Upgrade to v3.26.5: 4 new objects, the rest updated or unchanged.
    let upgrade_manifest = engine
        .runs
        .manifest(&alice().caller, Source::Catalog("calico-v3.26.5"))
        .await
        .expect("v3.26.5");
    let up_params = InstallParams {
        manifest_sha256: upgrade_manifest.sha256.clone(),
        ..InstallParams::default()
    };
    let up_plan = engine
        .runs
        .plan_install(&support::lab_name(), &upgrade_manifest, &up_params)
        .await
        .expect("plan upgrade");
    assert_eq!(up_plan.objects.len(), 31);
    assert_eq!(
        up_plan.count(Planned::Create),
        4,
        "{:?}",
        up_plan
            .objects
            .iter()
            .filter(|o| o.action == Planned::Create)
            .collect::<Vec<_>>()
    );
    assert!(
        up_plan
            .checks
            .iter()
            .any(|c| c.id == "cni" && c.level == "warn" && c.message.contains("upgrade")),
        "{:#?}",
        up_plan.checks
    );
    let ds = up_plan
        .objects
        .iter()
        .find(|o| o.kind == "DaemonSet")
        .expect("ds");
    assert_eq!(ds.action, Planned::Update);
    assert!(
        ds.changes
            .iter()
            .any(|c| c.after.as_deref().is_some_and(|a| a.contains("v3.26.5"))),
        "{:?}",
        ds.changes
    );
    let upgrade = engine
        .runs
        .start(&alice(), Start::of(&up_plan, support::confirm()))
        .await
        .expect("upgrade");
    support::assert_succeeded(&support::finished(&engine.runs, upgrade).await);
    let image = lab.kubectl(&[
        "get",
        "ds",
        "calico-node",
        "-n",
        "kube-system",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert!(image.contains("v3.26.5"), "{image}");

    // Roll the upgrade back: the 4 new objects deleted, the 27 others as they were.
    let rb_plan = engine
        .runs
        .plan_rollback(upgrade)
        .await
        .expect("plan rollback");
    assert_eq!(rb_plan.count(Planned::Delete), 4, "{:?}", rb_plan.objects);
    let rollback = engine
        .runs
        .start(&alice(), Start::of(&rb_plan, support::confirm()))
        .await
        .expect("rollback");
    let rb = support::finished(&engine.runs, rollback).await;
    support::assert_succeeded(&rb);
    assert!(
        rb.steps
            .iter()
            .any(|s| s.name == "verify" && s.output.contains("equal their snapshot")),
        "{:#?}",
        rb.steps
    );
    let image = lab.kubectl(&[
        "get",
        "ds",
        "calico-node",
        "-n",
        "kube-system",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert!(image.contains("v3.25.1"), "{image}");
    let bgpfilters = lab.kubectl(&["get", "crd", "-o", "name"]);
    assert!(
        !bgpfilters.contains("bgpfilters"),
        "the upgrade's new CRD must be gone: {bgpfilters}"
    );

    // Roll the install back: all 27 objects gone. A finalizer holds calico-config on the way:
    // the delete step says what holds it while it waits, and goes on once it is removed.
    set_calico_config_finalizers(&lab, r#"["grappe.test/hold"]"#);
    let rb_plan = engine
        .runs
        .plan_rollback(install)
        .await
        .expect("plan rollback of install");
    assert_eq!(rb_plan.count(Planned::Delete), 27);
    let undo = engine
        .runs
        .start(&alice(), Start::of(&rb_plan, support::confirm()))
        .await
        .expect("undo");
    let waiting = "waiting for ConfigMap/kube-system/calico-config";
    support::eventually(
        "the held deletion reported",
        Duration::from_secs(120),
        async || {
            let view = engine.runs.view(undo).await.expect("run view");
            let said = view
                .steps
                .iter()
                .map(|s| s.output.as_str())
                .collect::<Vec<_>>()
                .join("\n");
            if said.contains(waiting) && said.contains("finalizers grappe.test/hold") {
                Ok(())
            } else {
                Err(format!("{}: {said}", view.summary.status))
            }
        },
    )
    .await;
    set_calico_config_finalizers(&lab, "null");
    support::assert_succeeded(&support::finished(&engine.runs, undo).await);
    let crds = lab.kubectl(&["get", "crd", "-o", "name"]);
    assert!(!crds.contains("projectcalico.org"), "{crds}");
    for what in [
        ["ds", "calico-node"],
        ["deploy", "calico-kube-controllers"],
        ["sa", "calico-node"],
        ["cm", "calico-config"],
    ] {
        let out = lab.kubectl(&[
            "get",
            what[0],
            "-n",
            "kube-system",
            "--ignore-not-found",
            "-o",
            "name",
        ]);
        assert!(!out.contains(what[1]), "{} still there: {out}", what[1]);
    }
    let roles = lab.kubectl(&["get", "clusterrole,clusterrolebinding", "-o", "name"]);
    assert!(!roles.contains("calico"), "{roles}");

    // A Calico installed outside Grappe (the seed's kubectl apply) is removed like `kubectl
    // delete -f calico.yaml`.
    lab.kubectl(&[
        "apply",
        "--server-side",
        "-f",
        manifests()
            .join("calico-v3.25.1.yaml")
            .to_str()
            .expect("path"),
    ]);
    let remove_plan = engine
        .runs
        .plan_remove(&support::lab_name(), &calico)
        .await
        .expect("plan remove");
    assert_eq!(remove_plan.count(Planned::Delete), 27);
    let remove = engine
        .runs
        .start(&alice(), Start::of(&remove_plan, support::confirm()))
        .await
        .expect("remove");
    let removed = support::finished(&engine.runs, remove).await;
    support::assert_succeeded(&removed);
    assert!(
        removed
            .objects
            .iter()
            .all(|o| o.done.as_deref() == Some("deleted"))
    );
    assert!(
        !lab.kubectl(&["get", "crd", "-o", "name"])
            .contains("projectcalico.org")
    );

    // The history lists every run, newest first; each is sealed.
    let runs = engine
        .runs
        .list(Some("lab"), Some("cni."), 50)
        .await
        .expect("list");
    let ids: Vec<i64> = runs.iter().map(|r| r.id).collect();
    assert_eq!(
        ids,
        vec![remove.0, undo.0, rollback.0, upgrade.0, install.0]
    );
    for r in &runs {
        assert!(
            engine.runs.verify(RunId(r.id)).await.expect("verify"),
            "run {} not sealed",
            r.id
        );
    }
}
