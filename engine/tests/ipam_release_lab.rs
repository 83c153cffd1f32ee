//! The guarded release of leaked IPAM addresses through Grappe's runs, on a lab of its own:
//! `lab break ipam-leak` leaks 12 addresses; the plan leaves them out while they are younger
//! than the grace period and refuses while Calico's datastore is not ready; with a grace of 0
//! it releases exactly them (one IPAMBlock, 12 IPAMHandles), and its rollback puts them back.
//!
//! Needs Go, the machine's kubectl and the shared manifests (`GRAPPE_MANIFESTS`). Fails (never
//! skips) when they are missing.

mod support;

use std::time::Duration;

use grappe_engine::diagnostics as rules;
use grappe_engine::model::Plan;
use grappe_engine::runs::Actor;
use grappe_engine::runs::cni::ReleaseRequest;
use grappe_views::runs::Planned;
use support::{Lab, expect_rule, manifests};

const PORT_BASE: &str = "18400";

fn alice() -> Actor {
    support::admin("alice", "ipam_release_lab")
}

fn level<'a>(plan: &'a Plan, id: &str) -> &'a str {
    plan.checks
        .iter()
        .find(|c| c.id == id)
        .map_or("", |c| c.level.as_str())
}

fn handles(lab: &Lab) -> usize {
    lab.kubectl(&["get", "ipamhandles.crd.projectcalico.org", "-o", "name"])
        .lines()
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaked_addresses_are_released_and_put_back() {
    let lab = Lab::up(PORT_BASE, &[]);
    let db = tempfile::tempdir().expect("tempdir");
    let engine = lab.engine(db.path(), None).await;
    let state = support::synced_state(&engine).await;
    let calico = manifests().join("calico-v3.32.1.yaml");
    lab.run(&["cni", "apply", calico.to_str().expect("utf-8")]);
    support::eventually("Calico's IPAM", Duration::from_secs(90), async || {
        let v = state.ipam();
        (v.tunnel_addresses == 4 && v.leaked.total == 0)
            .then_some(())
            .ok_or(format!(
                "{} tunnels, {} leaked",
                v.tunnel_addresses, v.leaked.total
            ))
    })
    .await;
    // The demo Job's pod finishes and its address goes with its sandbox (the CNI DEL): counted
    // before that, its handle would seem to go with the release.
    lab.kubectl(&[
        "-n",
        "demo",
        "wait",
        "--for=condition=complete",
        "job/db-migrate",
        "--timeout=120s",
    ]);
    let container = lab.kubectl(&[
        "-n",
        "demo",
        "get",
        "pod",
        "-l",
        "job-name=db-migrate",
        "-o",
        "jsonpath={.items[0].metadata.annotations.cni\\.projectcalico\\.org/containerID}",
    ]);
    assert!(
        !container.trim().is_empty(),
        "the Job's pod has no Calico address"
    );
    let job_handle = format!("k8s-pod-network.{}", container.trim());
    support::eventually(
        "the finished Job pod's address released",
        Duration::from_secs(30),
        async || {
            let names = lab.kubectl(&["get", "ipamhandles.crd.projectcalico.org", "-o", "name"]);
            if names.contains(&job_handle) {
                Err(format!("{job_handle} still there"))
            } else {
                Ok(())
            }
        },
    )
    .await;
    let before = handles(&lab);
    let out = lab.run(&["break", "ipam-leak"]);
    let mut injected: Vec<String> = out
        .lines()
        .find_map(|l| l.split_once("never ran): ").map(|(_, ips)| ips.to_owned()))
        .unwrap_or_else(|| panic!("no leaked addresses in: {out}"))
        .split(", ")
        .map(str::to_owned)
        .collect();
    injected.sort();
    expect_rule(&state, rules::IPAM_LEAKED, true).await;
    let cluster = support::lab_name();
    let plan = |grace: Option<u64>| {
        let engine = &engine;
        let cluster = &cluster;
        async move {
            engine
                .runs
                .plan_ipam_release(
                    cluster,
                    &ReleaseRequest {
                        addresses: Vec::new(),
                        grace_seconds: grace,
                    },
                )
                .await
                .expect("plan")
        }
    };

    // Just leaked: younger than the default grace period, left out.
    let p = plan(None).await;
    assert_eq!(level(&p, "grace"), "warn", "{:#?}", p.checks);
    assert_eq!(level(&p, "leaks"), "fail");
    assert!(!p.runnable());

    // The datastore not ready: refused.
    lab.set_datastore_ready(false);
    expect_rule(&state, rules::DATASTORE_NOT_READY, true).await;
    assert_eq!(level(&plan(Some(0)).await, "datastore"), "fail");
    lab.set_datastore_ready(true);
    expect_rule(&state, rules::DATASTORE_NOT_READY, false).await;

    // Grace 0: exactly the injected addresses, their block and their handles.
    let p = plan(Some(0)).await;
    assert!(p.runnable(), "{:#?}", p.checks);
    assert_eq!(level(&p, "grace-short"), "warn");
    let mut planned: Vec<String> = p
        .options
        .iter()
        .find(|(k, _)| k == "addresses")
        .map(|(_, v)| v.split(", ").map(str::to_owned).collect())
        .expect("addresses");
    planned.sort();
    assert_eq!(planned, injected);
    let blocks: Vec<_> = p.objects.iter().filter(|o| o.kind == "IPAMBlock").collect();
    assert_eq!(blocks.len(), 1, "{:#?}", p.objects);
    assert_eq!(
        (blocks[0].action, blocks[0].changes_total),
        (Planned::Update, 12)
    );
    assert_eq!(
        p.objects
            .iter()
            .filter(|o| o.kind == "IPAMHandle" && o.action == Planned::Delete)
            .count(),
        12
    );
    let (id, view) = support::run(&engine, &alice(), &p).await;
    assert!(
        view.steps
            .iter()
            .any(|s| s.name == "verify" && s.output.contains("12 address(es) released")),
        "{:#?}",
        view.steps
    );
    expect_rule(&state, rules::IPAM_LEAKED, false).await;
    assert_eq!(handles(&lab), before);

    // A pod started on rigel since: the CNI writes rigel's block again, from its own copy; the
    // released addresses must stay released (Calico's IPAM reads before it writes).
    let pod = lab.dir().join("late-pod.yaml");
    std::fs::write(
        &pod,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: late\n  namespace: default\nspec:\n  nodeName: rigel\n  containers:\n  - name: pause\n    image: registry.k8s.io/pause:3.10\n",
    )
    .expect("write the pod");
    lab.kubectl(&["apply", "-f", pod.to_str().expect("utf-8")]);
    support::eventually(
        "the late pod's address",
        Duration::from_secs(60),
        async || {
            let addressed = lab.kubectl(&[
                "get",
                "pod",
                "late",
                "-n",
                "default",
                "-o",
                "jsonpath={.status.podIP}",
            ]);
            (!addressed.trim().is_empty())
                .then_some(())
                .ok_or("no address yet".to_owned())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let v = state.ipam();
    assert_eq!(
        v.leaked.total, 0,
        "released addresses came back: {:#?}",
        v.leaked
    );
    assert_eq!(v.problems(), 0, "{v:#?}");

    // The rollback puts the 12 addresses and their handles back.
    let rb = engine.runs.plan_rollback(id).await.expect("plan rollback");
    support::run(&engine, &alice(), &rb).await;
    expect_rule(&state, rules::IPAM_LEAKED, true).await;
    assert_eq!(state.ipam().leaked.total, 12);
    assert_eq!(
        handles(&lab),
        before + 12 + 1,
        "the 12 handles back, and the late pod's"
    );

    lab.run(&["heal"]);
    expect_rule(&state, rules::IPAM_LEAKED, false).await;
}
