//! Calico as clusters run it in 2026, through Grappe's runs on a lab of their own: the manifest
//! path 3.25.1 -> 3.31.7 -> 3.32.1 (the compatibility gate's warnings, the objects a version
//! leaves behind) and each step rolled back exactly; an operator install refused over a manifest
//! install; the real Tigera operator installing Calico v3.32.1 until its TigeraStatus are
//! Available, with pools and blocks shown, then rolled back object by object; the same with
//! native projectcalico.org/v3 resources.
//!
//! Needs Go, the machine's kubectl and the shared manifests (`GRAPPE_MANIFESTS`). Fails (never
//! skips) when they are missing.

mod support;

use std::time::Duration;

use grappe_engine::Engine;
use grappe_engine::diagnostics as rules;
use grappe_engine::manifests::Source;
use grappe_engine::manifests::operator::OperatorOptions;
use grappe_engine::model::Plan;
use grappe_engine::runs::cni::InstallParams;
use grappe_engine::runs::{Actor, RunId};
use grappe_engine::state::ClusterState;
use grappe_views::runs::{Planned, RunView};
use support::{Lab, expect_rule, manifests, serve_dir};

const PORT_BASE: &str = "17900";

fn alice() -> Actor {
    support::admin("alice", "calico_today_lab")
}

fn level<'a>(plan: &'a Plan, id: &str) -> Option<&'a str> {
    plan.checks
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.level.as_str())
}

fn message<'a>(plan: &'a Plan, id: &str) -> &'a str {
    plan.checks
        .iter()
        .find(|c| c.id == id)
        .map_or("", |c| c.message.as_str())
}

async fn plan(engine: &Engine, id: &str, operator: Option<OperatorOptions>) -> Plan {
    let manifest = engine
        .runs
        .manifest(&alice().caller, Source::Catalog(id))
        .await
        .unwrap_or_else(|e| panic!("catalog manifest {id}: {e}"));
    assert!(manifest.verified(), "{id}");
    let params = InstallParams {
        manifest_sha256: manifest.sha256.clone(),
        operator,
        ..InstallParams::default()
    };
    engine
        .runs
        .plan_install(&support::lab_name(), &manifest, &params)
        .await
        .unwrap_or_else(|e| panic!("plan {id}: {e}"))
}

async fn run(engine: &Engine, plan: &Plan) -> (RunId, RunView) {
    support::run(engine, &alice(), plan).await
}

async fn roll_back(engine: &Engine, target: RunId) -> RunView {
    let plan = engine
        .runs
        .plan_rollback(target)
        .await
        .expect("plan rollback");
    run(engine, &plan).await.1
}

/// Whether a `TigeraStatus` Degraded finding says the projectcalico.org/v3 API cannot be
/// discovered (the operator's message when the Calico API server does not answer).
fn degraded_by_discovery(state: &ClusterState) -> bool {
    state.findings().iter().any(|f| {
        f.rule == rules::TIGERA_DEGRADED
            && f.evidence
                .iter()
                .any(|e| e.value.contains("projectcalico.org/v3"))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calico_today_manifests_operator_and_native_v3_on_the_lab() {
    let lab = Lab::up(PORT_BASE, &[]);
    let mirror = serve_dir(manifests()).await;
    let db = tempfile::tempdir().expect("tempdir");
    let engine = lab.engine(db.path(), Some(mirror)).await;
    let state = support::synced_state(&engine).await;

    // v3.25.1: past its end of life and not tested on the lab's Kubernetes 1.35: warned, not
    // blocked.
    let p = plan(&engine, "calico-v3.25.1", None).await;
    assert_eq!(level(&p, "compat-eol"), Some("warn"), "{:#?}", p.checks);
    assert!(message(&p, "compat-eol").contains("2023-12"));
    assert_eq!(level(&p, "compat-kubernetes"), Some("warn"));
    assert_eq!(level(&p, "compat-kube-proxy"), Some("pass"));
    let (install, _) = run(&engine, &p).await;
    // The same facts as diagnostics of the running cluster.
    expect_rule(&state, rules::CALICO_END_OF_LIFE, true).await;
    expect_rule(&state, rules::CALICO_UNTESTED_KUBERNETES, true).await;

    // 3.25.1 -> 3.31.7 -> 3.32.1: each an upgrade with its field diffs, what the new version
    // adds, and what the old one leaves behind.
    let mut upgrades = Vec::new();
    for (id, version) in [("calico-v3.31.7", "v3.31.7"), ("calico-v3.32.1", "v3.32.1")] {
        let p = plan(&engine, id, None).await;
        assert!(
            p.checks
                .iter()
                .any(|c| c.id == "cni" && c.message.contains("upgrade")),
            "{:#?}",
            p.checks
        );
        let ds = p
            .objects
            .iter()
            .find(|o| o.kind == "DaemonSet")
            .expect("calico-node");
        assert_eq!(ds.action, Planned::Update);
        assert!(
            ds.changes
                .iter()
                .any(|c| c.after.as_deref().is_some_and(|a| a.contains(version))),
            "{:?}",
            ds.changes
        );
        assert!(p.count(Planned::Create) > 0, "{id} adds objects");
        assert!(
            level(&p, "left-behind").is_some(),
            "{id}: what the installed version leaves behind: {:#?}",
            p.checks
        );
        let (upgrade, _) = run(&engine, &p).await;
        assert!(lab.calico_node_image("kube-system").ends_with(version));
        upgrades.push((upgrade, p));
    }
    // On 3.32.1: supported, tested on 1.35.
    expect_rule(&state, rules::CALICO_END_OF_LIFE, false).await;
    expect_rule(&state, rules::CALICO_UNTESTED_KUBERNETES, false).await;
    // kube-proxy's mode against Calico's iptables data plane, each raised by `lab break`
    // and cleared by `lab heal`.
    for (mode, rule) in [
        ("nftables", rules::KUBE_PROXY_NFTABLES),
        ("ipvs", rules::KUBE_PROXY_IPVS),
    ] {
        lab.run(&["break", "kube-proxy-mode", mode]);
        expect_rule(&state, rule, true).await;
        let p = plan(&engine, "calico-v3.32.1", None).await;
        assert_eq!(level(&p, "compat-kube-proxy"), Some("warn"), "{mode}");
        lab.run(&["heal"]);
        expect_rule(&state, rule, false).await;
    }
    // 3.32.1 drops one of 3.31.7's CRDs (SOURCES.md: 24 then 23).
    let (_, to_3321) = &upgrades[1];
    assert_eq!(level(to_3321, "left-behind"), Some("warn"));
    assert!(message(to_3321, "left-behind").contains("CustomResourceDefinition/"));

    // The gate refuses an operator install over a manifest install, with the reason.
    let refused = plan(&engine, "calico-operator-v3.32.1", None).await;
    assert_eq!(level(&refused, "compat-method"), Some("fail"));
    assert!(message(&refused, "compat-method").contains("migration"));
    assert!(!refused.runnable());

    // Each upgrade rolled back exactly, newest first, then the install.
    for ((upgrade, _), before) in upgrades.iter().rev().zip(["v3.31.7", "v3.25.1"]) {
        let rb = roll_back(&engine, *upgrade).await;
        assert!(
            rb.steps
                .iter()
                .any(|s| s.name == "verify" && s.output.contains("equal their snapshot")),
            "{:#?}",
            rb.steps
        );
        assert!(lab.calico_node_image("kube-system").ends_with(before));
    }
    roll_back(&engine, install).await;
    assert_eq!(lab.calico_node_image("kube-system"), "");

    // The real Tigera operator: CRDs, operator, then the Installation from the plan's options.
    let options = OperatorOptions {
        block_size: Some(27),
        encapsulation: Some("VXLAN".into()),
        mtu: Some(1440),
        ..OperatorOptions::default()
    };
    let p = plan(&engine, "calico-operator-v3.32.1", Some(options)).await;
    assert_eq!(
        level(&p, "compat-method"),
        None,
        "nothing installed: no method to compare"
    );
    assert_eq!(level(&p, "compat-eol"), Some("pass"));
    let kinds = |kind: &str| p.objects.iter().filter(|o| o.kind == kind).count();
    assert_eq!(kinds("CustomResourceDefinition"), 32);
    assert_eq!(kinds("Installation"), 1);
    assert_eq!(kinds("Deployment"), 1);
    assert!(
        p.options
            .iter()
            .any(|(k, v)| k == "encapsulation" && v == "VXLAN"),
        "{:?}",
        p.options
    );
    assert!(
        p.options
            .iter()
            .any(|(k, v)| k == "CALICO_IPV4POOL_CIDR" && v == "192.168.0.0/16"),
        "the pool defaults to kubeadm's podSubnet: {:?}",
        p.options
    );
    let (operator_install, view) = run(&engine, &p).await;
    let rollout = &view.steps.last().expect("steps").output;
    assert!(
        rollout.contains("TigeraStatus calico: Available"),
        "{:#?}",
        view.steps
    );
    assert!(lab.calico_node_image("calico-system").ends_with("v3.32.1"));
    support::eventually(
        "the overview shows the operator's Calico",
        Duration::from_secs(60),
        async || {
            let o = state.overview();
            let calico = o.calico.clone().ok_or("no Calico view")?;
            let pool = o
                .pools
                .iter()
                .find(|p| p.name == "default-ipv4-ippool")
                .ok_or("no pool")?;
            if calico.method != "operator"
                || calico.api.as_deref() != Some("crd.projectcalico.org/v1")
                || !calico
                    .components
                    .iter()
                    .any(|c| c.name == "calico" && c.state == "Available")
                || calico.mtu != Some(1440)
                || pool.block_size != 27
                || pool.vxlan_mode != "Always"
                || o.blocks == 0
            {
                return Err(format!("{calico:?} {pool:?} blocks {}", o.blocks));
            }
            Ok(())
        },
    )
    .await;

    // The operator's csi-node-driver is not a second CNI.
    expect_rule(&state, rules::TWO_CNIS, false).await;

    // The Calico API server asked for: its pod "runs" on a KWOK node, but nothing answers at
    // its endpoint, so the APIService stays unavailable and, as on a real cluster whose Calico
    // API server is down, the operator's controllers that discover projectcalico.org/v3 report
    // Degraded. Both diagnosed; cleared once the APIServer is deleted.
    let apiserver = lab.dir().join("apiserver.yaml");
    std::fs::write(
        &apiserver,
        "apiVersion: operator.tigera.io/v1\nkind: APIServer\nmetadata:\n  name: default\nspec: {}\n",
    )
    .expect("write the APIServer");
    lab.kubectl(&["apply", "-f", apiserver.to_str().expect("utf-8")]);
    expect_rule(&state, rules::CALICO_APISERVER_UNAVAILABLE, true).await;
    support::eventually(
        "a component Degraded by the missing API server",
        Duration::from_secs(90),
        async || {
            degraded_by_discovery(&state)
                .then_some(())
                .ok_or_else(|| format!("{:?}", state.overview().calico.map(|c| c.components)))
        },
    )
    .await;
    lab.kubectl(&["delete", "apiserver", "default"]);
    expect_rule(&state, rules::CALICO_APISERVER_UNAVAILABLE, false).await;
    support::eventually(
        "no component Degraded by the API server any more",
        Duration::from_secs(120),
        async || {
            (!degraded_by_discovery(&state))
                .then_some(())
                .ok_or_else(|| format!("{:?}", state.overview().calico.map(|c| c.components)))
        },
    )
    .await;
    // eBPF with kube-proxy still running.
    let dataplane = |mode: &str| {
        let patch = format!(r#"{{"spec":{{"calicoNetwork":{{"linuxDataplane":"{mode}"}}}}}}"#);
        lab.kubectl(&[
            "patch",
            "installation",
            "default",
            "--type",
            "merge",
            "-p",
            &patch,
        ]);
    };
    dataplane("BPF");
    expect_rule(&state, rules::KUBE_PROXY_WITH_EBPF, true).await;
    dataplane("Iptables");
    expect_rule(&state, rules::KUBE_PROXY_WITH_EBPF, false).await;

    // Rolled back object by object: the Installation first (the operator removes
    // calico-system), the operator, its CRDs last.
    let rb = roll_back(&engine, operator_install).await;
    assert!(
        rb.objects
            .iter()
            .all(|o| o.done.as_deref() == Some("deleted"))
    );
    assert_eq!(
        lab.kubectl(&[
            "get",
            "ns",
            "calico-system",
            "--ignore-not-found",
            "-o",
            "name"
        ]),
        ""
    );
    let crds = lab.kubectl(&["get", "crd", "-o", "name"]);
    assert!(
        !crds.contains("tigera.io") && !crds.contains("projectcalico.org"),
        "{crds}"
    );
    support::eventually(
        "the operator stopped",
        Duration::from_secs(60),
        async || {
            if lab.dir().join("pids/tigera-operator.pid").exists() {
                Err("still running".to_owned())
            } else {
                Ok(())
            }
        },
    )
    .await;

    // Native projectcalico.org/v3 resources: the same views from the other API group.
    let p = plan(&engine, "calico-operator-v3.32.1-native-v3", None).await;
    let (native, _) = run(&engine, &p).await;
    support::eventually(
        "the overview reads projectcalico.org/v3",
        Duration::from_secs(60),
        async || {
            let o = state.overview();
            let calico = o.calico.clone().ok_or("no Calico view")?;
            if calico.api.as_deref() != Some("projectcalico.org/v3")
                || !o
                    .pools
                    .iter()
                    .any(|p| p.name == "default-ipv4-ippool" && p.block_size == 26)
                || o.blocks == 0
                || o.block_addresses_in_use == 0
            {
                return Err(format!(
                    "{calico:?} pools {:?} blocks {}",
                    o.pools, o.blocks
                ));
            }
            Ok(())
        },
    )
    .await;
    roll_back(&engine, native).await;
}
