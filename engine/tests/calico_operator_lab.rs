//! Calico with the real Tigera operator, through Grappe's runs on a lab of its own: v3.32.1
//! installed from the plan's options until its TigeraStatus are Available, with pools and blocks
//! shown, the Calico API server's absence and eBPF beside kube-proxy diagnosed, then rolled back
//! object by object; the same with native projectcalico.org/v3 resources. The manifest path is
//! `calico_today_lab`.
//!
//! Needs Go, the machine's kubectl and the shared manifests (`GRAPPE_MANIFESTS`). Fails (never
//! skips) when they are missing.

mod support;

use std::time::Duration;

use grappe_engine::diagnostics as rules;
use grappe_engine::manifests::operator::OperatorOptions;
use grappe_engine::runs::Actor;
use grappe_engine::state::ClusterState;
use support::calico::{CalicoRuns, level};
use support::expect_rule;

const PORT_BASE: &str = "18500";

fn alice() -> Actor {
    support::admin("alice", "calico_operator_lab")
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
async fn calico_operator_installs_diagnoses_and_rolls_back_on_the_lab() {
    let (lab, _db, engine, state) = support::calico::start(PORT_BASE).await;
    let calico = CalicoRuns {
        engine: &engine,
        actor: alice(),
    };

    // The real Tigera operator: CRDs, operator, then the Installation from the plan's options.
    let options = OperatorOptions {
        block_size: Some(27),
        encapsulation: Some("VXLAN".into()),
        mtu: Some(1440),
        ..OperatorOptions::default()
    };
    let p = calico.plan("calico-operator-v3.32.1", Some(options)).await;
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
    let (operator_install, view) = calico.run(&p).await;
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
    let rb = calico.roll_back(operator_install).await;
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
    let p = calico.plan("calico-operator-v3.32.1-native-v3", None).await;
    let (native, _) = calico.run(&p).await;
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
    calico.roll_back(native).await;
}
