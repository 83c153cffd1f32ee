//! Calico's manifest path as clusters run it in 2026, through Grappe's runs on a lab of its
//! own: 3.25.1 -> 3.31.7 -> 3.32.1 (the compatibility gate's warnings, the objects a version
//! leaves behind, kube-proxy's mode), an operator install refused over a manifest install, and
//! each step rolled back exactly. The Tigera operator's path is `calico_operator_lab`.
//!
//! Needs Go, the machine's kubectl and the shared manifests (`GRAPPE_MANIFESTS`). Fails (never
//! skips) when they are missing.

mod support;

use grappe_engine::diagnostics as rules;
use grappe_engine::runs::Actor;
use grappe_views::runs::Planned;
use support::calico::{CalicoRuns, level, message};
use support::expect_rule;

const PORT_BASE: &str = "17900";

fn alice() -> Actor {
    support::admin("alice", "calico_today_lab")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calico_manifests_upgraded_gated_and_rolled_back_on_the_lab() {
    let (lab, _db, engine, state) = support::calico::start(PORT_BASE).await;
    let calico = CalicoRuns {
        engine: &engine,
        actor: alice(),
    };

    // v3.25.1: past its end of life and not tested on the lab's Kubernetes 1.35: warned, not
    // blocked.
    let p = calico.plan("calico-v3.25.1", None).await;
    assert_eq!(level(&p, "compat-eol"), Some("warn"), "{:#?}", p.checks);
    assert!(message(&p, "compat-eol").contains("2023-12"));
    assert_eq!(level(&p, "compat-kubernetes"), Some("warn"));
    assert_eq!(level(&p, "compat-kube-proxy"), Some("pass"));
    let (install, _) = calico.run(&p).await;
    // The same facts as diagnostics of the running cluster.
    expect_rule(&state, rules::CALICO_END_OF_LIFE, true).await;
    expect_rule(&state, rules::CALICO_UNTESTED_KUBERNETES, true).await;

    // 3.25.1 -> 3.31.7 -> 3.32.1: each an upgrade with its field diffs, what the new version
    // adds, and what the old one leaves behind.
    let mut upgrades = Vec::new();
    for (id, version) in [("calico-v3.31.7", "v3.31.7"), ("calico-v3.32.1", "v3.32.1")] {
        let p = calico.plan(id, None).await;
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
        let (upgrade, _) = calico.run(&p).await;
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
        let p = calico.plan("calico-v3.32.1", None).await;
        assert_eq!(level(&p, "compat-kube-proxy"), Some("warn"), "{mode}");
        lab.run(&["heal"]);
        expect_rule(&state, rule, false).await;
    }
    // 3.32.1 drops one of 3.31.7's CRDs (SOURCES.md: 24 then 23).
    let (_, to_3321) = &upgrades[1];
    assert_eq!(level(to_3321, "left-behind"), Some("warn"));
    assert!(message(to_3321, "left-behind").contains("CustomResourceDefinition/"));

    // The gate refuses an operator install over a manifest install, with the reason.
    let refused = calico.plan("calico-operator-v3.32.1", None).await;
    assert_eq!(level(&refused, "compat-method"), Some("fail"));
    assert!(message(&refused, "compat-method").contains("migration"));
    assert!(!refused.runnable());

    // Each upgrade rolled back exactly, newest first, then the install.
    for ((upgrade, _), before) in upgrades.iter().rev().zip(["v3.31.7", "v3.25.1"]) {
        let rb = calico.roll_back(*upgrade).await;
        assert!(
            rb.steps
                .iter()
                .any(|s| s.name == "verify" && s.output.contains("equal their snapshot")),
            "{:#?}",
            rb.steps
        );
        assert!(lab.calico_node_image("kube-system").ends_with(before));
    }
    calico.roll_back(install).await;
    assert_eq!(lab.calico_node_image("kube-system"), "");
}
