//! The manifest -> Tigera operator migration through Grappe's runs, on a lab of its own with the
//! real operator: refused with nothing to migrate and to the native-v3 entry; Calico v3.31.7
//! installed from its manifest, then handed to the operator of v3.32.1 (an upgrade on the way),
//! followed node by node until kube-system's calico-node is gone; then rolled back to the
//! manifest install, every object equal to its snapshot.
//!
//! Needs Go, the machine's kubectl and the shared manifests (`GRAPPE_MANIFESTS`). Fails (never
//! skips) when they are missing.

mod support;

use grappe_engine::Engine;
use grappe_engine::manifests::Source;
use grappe_engine::model::Plan;
use grappe_engine::runs::cni::InstallParams;
use grappe_engine::runs::{Actor, RunError, RunId};
use grappe_views::ipam::Trend;
use grappe_views::runs::{Planned, RunView};
use support::{Lab, manifests, serve_dir};

const PORT_BASE: &str = "18000";

fn alice() -> Actor {
    support::admin("alice", "calico_migration_lab")
}

fn check<'a>(plan: &'a Plan, id: &str) -> (&'a str, &'a str) {
    plan.checks
        .iter()
        .find(|c| c.id == id)
        .map_or(("", ""), |c| (c.level.as_str(), c.message.as_str()))
}

async fn plan(engine: &Engine, id: &str, migrate: bool) -> Result<Plan, RunError> {
    let manifest = engine
        .runs
        .manifest(&alice().caller, Source::Catalog(id))
        .await
        .unwrap_or_else(|e| panic!("catalog manifest {id}: {e}"));
    let params = InstallParams {
        manifest_sha256: manifest.sha256.clone(),
        migrate,
        ..InstallParams::default()
    };
    engine
        .runs
        .plan_install(&support::lab_name(), &manifest, &params)
        .await
}

async fn run(engine: &Engine, plan: &Plan) -> (RunId, RunView) {
    support::run(engine, &alice(), plan).await
}

fn step<'a>(view: &'a RunView, name: &str) -> &'a str {
    view.steps.iter().find(|s| s.name == name).map_or_else(
        || panic!("no step {name}: {:#?}", view.steps),
        |s| &s.output,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_install_moves_to_the_operator_node_by_node_and_back() {
    let lab = Lab::up(PORT_BASE, &[]);
    let mirror = serve_dir(manifests()).await;
    let db = tempfile::tempdir().expect("tempdir");
    let engine = lab.engine(db.path(), Some(mirror)).await;
    let state = support::synced_state(&engine).await;

    // Nothing to migrate yet.
    let p = plan(&engine, "calico-operator-v3.32.1", true)
        .await
        .expect("plan");
    assert_eq!(check(&p, "compat-method").0, "fail", "{:#?}", p.checks);
    assert!(check(&p, "compat-method").1.contains("nothing to migrate"));
    assert!(!p.runnable());

    let p = plan(&engine, "calico-v3.31.7", false).await.expect("plan");
    let (install, _) = run(&engine, &p).await;
    assert!(lab.calico_node_image("kube-system").ends_with("v3.31.7"));

    // The exhaustion forecast's samples (the server takes one every 5 minutes): three, half an
    // hour apart, of a pool that does not grow.
    support::eventually(
        "the pool in the state",
        std::time::Duration::from_secs(60),
        async || {
            let v = state.ipam();
            (v.pools.len() == 1 && v.allocations > 0)
                .then_some(())
                .ok_or(format!("{:?}", v.pools))
        },
    )
    .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    for ago in [3_600, 1_800, 0] {
        let sampled = engine.sample_ipam_at(now - ago).await.expect("sample");
        assert_eq!(sampled, 1, "one pool sampled");
    }
    let trends = engine.ipam_trends("lab").await.expect("trends");
    assert_eq!(trends.len(), 1, "{trends:?}");
    assert_eq!(trends[0].pool, "default-ipv4-ippool");
    assert_eq!((trends[0].size, trends[0].points.len()), (65_536, 3));
    assert_eq!(trends[0].trend, Trend::NotGrowing);

    // The native-v3 entry would leave the manifest install's v1 resources unread.
    let refused = plan(&engine, "calico-operator-v3.32.1-native-v3", true).await;
    assert!(
        matches!(&refused, Err(RunError::Invalid(m)) if m.contains("crd.projectcalico.org/v1")),
        "{refused:?}"
    );

    // The plan: what moves, what the operator rewrites, what stays; an upgrade on the way.
    let p = plan(&engine, "calico-operator-v3.32.1", true)
        .await
        .expect("plan");
    assert_eq!(p.workflow.as_str(), "cni.migrate");
    let (level, text) = check(&p, "compat-method");
    assert_eq!(level, "warn", "{:#?}", p.checks);
    assert!(text.contains("v3.31.7") && text.contains("upgrades it to v3.32.1"));
    assert_eq!(check(&p, "migrate-leftovers").0, "warn");
    assert!(
        check(&p, "migrate-leftovers")
            .1
            .contains("ConfigMap/kube-system/calico-config")
    );
    let action = |kind: &str, name: &str| {
        p.objects
            .iter()
            .find(|o| o.kind == kind && o.name == name)
            .map(|o| o.action)
    };
    assert_eq!(action("DaemonSet", "calico-node"), Some(Planned::Move));
    assert_eq!(
        action("Deployment", "calico-kube-controllers"),
        Some(Planned::Move)
    );
    assert_eq!(
        action("ClusterRole", "calico-node"),
        Some(Planned::Handover)
    );
    assert_eq!(
        action("FelixConfiguration", "default"),
        Some(Planned::Handover)
    );
    assert_eq!(
        action("IPPool", "default-ipv4-ippool"),
        Some(Planned::Handover)
    );
    assert_eq!(action("Installation", "default"), Some(Planned::Create));

    // The run: the real operator moves each node; Grappe says each as it moves.
    let (migration, view) = run(&engine, &p).await;
    // Shown when the test fails (and with --nocapture).
    eprintln!("migration: {:#?}", view.steps);
    let moves = step(&view, "migrate nodes");
    for n in 1..=4 {
        assert!(
            moves.contains(&format!("moved to calico-system ({n}/4)")),
            "{moves}"
        );
    }
    assert!(moves.contains("kube-system/calico-node deleted by the operator"));
    assert!(step(&view, "rollout").contains("TigeraStatus calico: Available"));
    assert_eq!(lab.calico_node_image("kube-system"), "");
    assert!(lab.calico_node_image("calico-system").ends_with("v3.32.1"));
    let labelled = lab.kubectl(&[
        "get",
        "nodes",
        "-l",
        "projectcalico.org/operator-node-migration",
        "-o",
        "name",
    ]);
    assert_eq!(labelled.trim(), "", "the operator removed its labels");
    support::eventually(
        "the overview shows the operator's Calico",
        std::time::Duration::from_secs(60),
        async || {
            let calico = state.overview().calico.ok_or("no Calico view")?;
            (calico.method == "operator")
                .then_some(())
                .ok_or(format!("{calico:?}"))
        },
    )
    .await;

    // Back to the manifest install: the operator and what it made go first, then kube-system's
    // objects come back from their snapshots.
    let rb = engine
        .runs
        .plan_rollback(migration)
        .await
        .expect("plan rollback");
    let restore = |kind: &str, name: &str| {
        rb.objects
            .iter()
            .any(|o| o.kind == kind && o.name == name && o.action == Planned::Restore)
    };
    assert!(restore("DaemonSet", "calico-node"), "{:#?}", rb.objects);
    assert!(restore("ClusterRole", "calico-node"), "{:#?}", rb.objects);
    let (_, view) = run(&engine, &rb).await;
    eprintln!("rollback: {:#?}", view.steps);
    let names: Vec<&str> = view.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "snapshot",
            "delete",
            "restore",
            "unlabel nodes",
            "rollout",
            "verify"
        ]
    );
    assert!(step(&view, "verify").contains("equal their snapshot"));
    assert!(lab.calico_node_image("kube-system").ends_with("v3.31.7"));
    assert_eq!(lab.calico_node_image("calico-system"), "");
    let namespaces = lab.kubectl(&["get", "ns", "-o", "name"]);
    assert!(
        !namespaces.contains("namespace/calico-system"),
        "{namespaces}"
    );
    assert!(
        !namespaces.contains("namespace/tigera-operator"),
        "{namespaces}"
    );

    // And the manifest install rolls back as before.
    let rb = engine
        .runs
        .plan_rollback(install)
        .await
        .expect("plan rollback");
    run(&engine, &rb).await;
    assert_eq!(lab.calico_node_image("kube-system"), "");
}
