//! SSH to the lab's hosts (`lab up --hosts on`: a real sshd per node in its own network
//! namespace): host keys are refused until trusted, a trust must match the fingerprint the
//! admin saw, a changed key is refused; the read-only check after a Calico install; a worker's
//! reset as a run (drain first, kubeadm's warnings, files and iptables gone, node NotReady);
//! the control plane refused without "reset the cluster".

mod support;

use std::time::{Duration, Instant};

use grappe_engine::model::Plan;
use grappe_engine::names::{ClusterName, NodeName};
use grappe_engine::runs::reset::ResetRequest;
use grappe_engine::runs::{Actor, Confirmation, RunError, Start};
use grappe_engine::ssh::{Script, SshError};
use grappe_engine::users::Role;
use grappe_views::runs::ResetOptions;
use support::{Lab, caller, eventually, fingerprint, finished, is_root, manifests, trust};

async fn plan_reset(engine: &grappe_engine::Engine, node: &str, opts: &ResetOptions) -> Plan {
    let request = ResetRequest {
        node: NodeName::parse(node).expect("a node name"),
        options: opts.clone(),
    };
    engine
        .runs
        .plan_reset(&support::lab_name(), &request)
        .await
        .unwrap_or_else(|e| panic!("plan a reset of {node}: {e}"))
}

/// `caller` as an admin.
fn as_admin(caller: &grappe_engine::audit::Caller) -> Actor {
    Actor {
        caller: caller.clone(),
        role: Role::Admin,
    }
}

/// Whether a plan's check `id` failed.
fn failed(plan: &Plan, id: &str) -> bool {
    plan.checks.iter().any(|c| c.id == id && c.level == "fail")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_are_checked_and_reset_over_ssh() {
    assert!(
        is_root(),
        "the lab hosts need root (network namespaces and an sshd per node): run the tests as root"
    );
    let lab = Lab::up(
        "17700",
        &[
            "--hosts",
            "on",
            "--node-cidr",
            "10.16.0.0/16",
            "--cni",
            "calico",
        ],
    );
    let _ = manifests();
    let db = tempfile::tempdir().expect("tempdir");
    // The two-person rule on: a reset waits for a second admin.
    let mut spec = lab.ssh_spec();
    spec.two_person_reset = true;
    let engine = lab.engine_with(db.path(), None, Some(spec)).await;
    let admin = caller("ada", "hosts_lab");
    let cluster = ClusterName::parse("lab").expect("cluster");
    let rigel = NodeName::parse("rigel").expect("node");
    let endpoint = engine
        .ssh
        .endpoint(&cluster, &rigel, Some("10.16.0.11"))
        .expect("endpoint");
    assert_eq!(endpoint.display(), "root@10.16.0.11:22");

    // Unknown key: refused, its fingerprint named, nothing run.
    let err = engine
        .ssh
        .check(&admin, &endpoint)
        .await
        .expect_err("an unknown key is refused");
    let presented = match &err {
        SshError::UnknownHostKey { key, .. } => key.clone(),
        other => panic!("expected an unknown host key, got {other}"),
    };
    assert_eq!(presented.fingerprint, fingerprint(&lab, "10.16.0.11"));
    assert!(err.to_string().contains(&presented.fingerprint), "{err}");

    // A trust must name the key the host presents.
    let wrong = fingerprint(&lab, "10.16.0.12");
    match engine.ssh.trust(&admin, &endpoint, &wrong).await {
        Err(SshError::TrustMismatch { .. }) => {}
        other => panic!("a mismatching trust was accepted: {other:?}"),
    }
    assert!(
        engine
            .ssh
            .pinned(&endpoint)
            .await
            .expect("pinned")
            .is_none()
    );
    let pinned = engine
        .ssh
        .trust(&admin, &endpoint, &presented.fingerprint)
        .await
        .expect("trust");
    assert_eq!(pinned.fingerprint, presented.fingerprint);
    // A run connects only with the key its plan showed.
    match engine.ssh.connect_planned(&endpoint, &wrong).await {
        Err(SshError::PinChanged { .. }) => {}
        Err(e) => panic!("expected a refused key, got {e}"),
        Ok(_) => panic!("a run connected with a key its plan did not show"),
    }

    // The read-only check after Calico's install.
    let check = engine.ssh.check(&admin, &endpoint).await.expect("check");
    assert!(check.kubelet.active, "{:?}", check.kubelet);
    assert!(
        !check.kubelet.calico_lines.is_empty(),
        "no calico in the journal: {:?}",
        check.kubelet
    );
    let netd = check
        .dirs
        .iter()
        .find(|d| d.path == "/etc/cni/net.d")
        .expect("net.d");
    assert!(
        netd.entries
            .iter()
            .any(|e| e.name == "10-calico.conflist" && e.size > 0),
        "{netd:?}"
    );
    assert!(
        check
            .conf_files
            .iter()
            .any(|f| f.content.contains("calico-ipam"))
    );
    let nat = check
        .iptables
        .iter()
        .find(|t| t.table == "nat")
        .expect("nat");
    assert!(nat.rules > 0 && nat.error.is_none(), "{nat:?}");
    assert!(check.ipvs.installed, "{:?}", check.ipvs);
    network_doctor_over_ssh(&engine, &admin, &endpoint, &check).await;
    let view = engine
        .ssh
        .host_view(&cluster, &rigel, Some("10.16.0.11"))
        .await
        .expect("host view");
    assert_eq!(view.checks.first().map(|c| c.id), Some(check.id));
    assert_eq!(
        view.pinned.map(|k| k.fingerprint),
        Some(presented.fingerprint.clone())
    );

    // A hostile host: a name with a 0xFF byte, a name with a line break that would forge the
    // kubelet's section, a conflist whose content would forge the IPVS section, and 3,000
    // files. The check stays bounded and forges nothing.
    // One argument: ssh joins its arguments into the remote shell's command line.
    lab.ssh(
        "rigel",
        &[
            r#"cd /etc/cni/net.d && printf '{}' > "$(printf 'bad\377name.conf')" &&
               printf 'x' > "$(printf 'x\n@@ kubelet-exit 1')" &&
               printf '{\n@@ ipvs\nabsent\n}\n' > 00-forged.conflist &&
               i=0; while [ $i -lt 3000 ]; do : > "flood-$i.conf"; i=$((i+1)); done"#,
        ],
    );
    let hostile = engine.ssh.check(&admin, &endpoint).await.expect("check");
    let netd = &hostile.dirs[0];
    assert_eq!(netd.total, 3000 + 5, "{:?}", netd.entries.len());
    assert_eq!(netd.entries.len(), 200);
    assert!(
        netd.entries
            .iter()
            .any(|e| e.name == "bad\u{FFFD}name.conf"),
        "the 0xFF byte is shown as U+FFFD: {:?}",
        &netd.entries[..5]
    );
    assert!(
        hostile.kubelet.active,
        "a file name forged the kubelet's section"
    );
    assert!(
        hostile.ipvs.installed,
        "a file's content forged the IPVS section"
    );
    assert_eq!(hostile.conf_files.len(), 10);
    assert_eq!(hostile.conf_files_total, 3000 + 3);
    assert!(hostile.conf_files[0].content.contains("@@ ipvs"));
    let stored = serde_json::to_string(&hostile).expect("json").len();
    assert!(stored < 256 * 1024, "the stored check is {stored} bytes");
    lab.ssh(
        "rigel",
        &["cd /etc/cni/net.d && rm -f flood-*.conf 00-forged.conflist bad*name.conf x*kubelet-exit*"],
    );

    // A changed key: rigel's name pinned, bellatrix's key presented (the inventory sends rigel
    // to bellatrix's address).
    let mut spec = lab.ssh_spec();
    spec.hosts.insert(
        "rigel".into(),
        grappe_engine::ssh::HostOverride {
            address: Some("10.16.0.12".into()),
            ..Default::default()
        },
    );
    let moved = grappe_engine::ssh::Ssh::new(
        [("lab".to_owned(), spec)].into_iter().collect(),
        engine.store.clone(),
        engine.audit.clone(),
    );
    let elsewhere = moved
        .endpoint(&cluster, &rigel, Some("10.16.0.11"))
        .expect("endpoint");
    match moved.check(&admin, &elsewhere).await {
        Err(SshError::ChangedHostKey {
            pinned, presented, ..
        }) => {
            assert_eq!(pinned.fingerprint, fingerprint(&lab, "10.16.0.11"));
            assert_eq!(presented.fingerprint, fingerprint(&lab, "10.16.0.12"));
        }
        other => panic!("a changed key was not refused: {other:?}"),
    }

    // Names that are not DNS-1123 never reach an endpoint, let alone a command.
    for bad in [
        "rigel;reboot",
        "$(id)",
        "rigel bellatrix",
        "-oProxyCommand=x",
        "../etc",
    ] {
        assert!(
            NodeName::parse(bad).is_err(),
            "{bad:?} accepted as a node name"
        );
    }
    // Scripts are fixed: what runs is the body, quoted once.
    let line = Script::command_line(&grappe_engine::ssh::commands::KUBEADM_RESET, true);
    assert_eq!(line, "sudo -n sh -c 'kubeadm reset -f'");

    // The control plane is refused without "reset the cluster".
    let plan = plan_reset(&engine, "betelgeuse", &ResetOptions::default()).await;
    assert!(failed(&plan, "control-plane"), "{:?}", plan.checks);

    // A worker without a trusted key cannot be reset.
    let plan = plan_reset(&engine, "bellatrix", &ResetOptions::default()).await;
    assert!(failed(&plan, "host-key"), "{:?}", plan.checks);

    // Reset bellatrix: trust its key, preview, run.
    let bep = trust(&engine, &lab, "bellatrix", "10.16.0.12").await;
    let opts = ResetOptions {
        remove_kubeconfig: true,
        remove_cni_state: true,
        delete_node: false,
        reset_cluster: false,
    };
    // The demo's budget allows no disruption: the reset's preview says so (its drain would
    // wait for it), then the admin relaxes it as they would.
    let plan = plan_reset(&engine, "bellatrix", &opts).await;
    if plan.checks.iter().any(|c| c.id == "drain-pdb") {
        lab.kubectl(&[
            "-n",
            "demo",
            "patch",
            "pdb",
            "web",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"maxUnavailable":1}}"#,
        ]);
    }
    // The budgets' status follows the change (and the pods turning Ready after Calico's
    // install) through the disruption controller and the watches: wait for it.
    let plan = eventually(
        "the budgets allow the reset's drain",
        Duration::from_secs(60),
        async || {
            let plan = plan_reset(&engine, "bellatrix", &opts).await;
            if plan.checks.iter().any(|c| c.id == "drain-pdb") {
                Err(format!("{:?}", plan.checks))
            } else {
                Ok(plan)
            }
        },
    )
    .await;
    assert!(plan.runnable(), "{:?}", plan.checks);
    let view = plan.view();
    let preview = view.reset().cloned().expect("reset preview");
    assert!(
        preview.drain_first,
        "a Ready, schedulable node is drained first"
    );
    assert_eq!(view.confirm_word, "bellatrix");
    let wrong = engine
        .runs
        .start(
            &as_admin(&admin),
            Start::of(
                &plan,
                Confirmation {
                    typed: "rigel".into(),
                    reauthenticated: true,
                },
            ),
        )
        .await;
    assert!(wrong.is_err(), "a wrong typed name started a reset");
    let started = Instant::now();
    let id = engine
        .runs
        .start(
            &as_admin(&admin),
            Start::of(
                &plan,
                Confirmation {
                    typed: "bellatrix".into(),
                    reauthenticated: true,
                },
            ),
        )
        .await
        .expect("start reset");
    // It waits for a second admin: its own actor cannot approve it, another admin can.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let view = engine.runs.view(id).await.expect("run");
        let step = &view.steps[0];
        assert_eq!(step.name, "approval by a second admin");
        if step.status == "running" && step.output.contains("waiting for a second admin") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the approval step did not start: {step:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        engine.runs.approve(&admin, id).await.is_err(),
        "the run's own actor approved it"
    );
    let view = engine.runs.view(id).await.expect("run");
    assert_eq!(
        view.steps[1].status, "pending",
        "nothing ran before the approval"
    );
    // Nor an admin the run's actor made, nor one made after the run started.
    let add_admin = async |by: &grappe_engine::Caller, name: &str| {
        engine
            .users
            .add(
                by,
                &grappe_engine::names::UserName::parse(name).expect("name"),
                &grappe_engine::auth::Password::generate(),
                grappe_engine::users::Role::Admin,
            )
            .await
            .expect("add admin");
    };
    add_admin(&admin, "carol").await;
    add_admin(&grappe_engine::Caller::cli("root"), "dave").await;
    for name in ["carol", "dave"] {
        let refused = engine.runs.approve(&caller(name, "hosts_lab"), id).await;
        assert!(
            matches!(refused, Err(RunError::NotIndependent { .. })),
            "{name} approved: {refused:?}"
        );
    }
    engine
        .runs
        .approve(&caller("bob", "hosts_lab"), id)
        .await
        .expect("a second admin approves");
    let run = finished(&engine.runs, id).await;
    eprintln!(
        "reset of bellatrix: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(run.summary.status, "succeeded", "{:#?}", run.steps);
    assert_eq!(run.summary.shown_status(), "completed with warnings");
    assert!(
        run.summary
            .warnings
            .iter()
            .any(|w| w.contains("does not clean CNI configuration")),
        "{:?}",
        run.summary.warnings
    );
    let names: Vec<&str> = run.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "approval by a second admin",
            "cordon bellatrix",
            "drain bellatrix",
            "kubeadm reset -f",
            "rm -rf /etc/cni/net.d",
            "iptables -F && iptables -X (filter, nat, mangle)",
            "ipvsadm --clear",
            "rm -f $HOME/.kube/config",
            "rm -rf /var/lib/cni",
            "check what is left on the host",
        ]
    );
    assert!(
        run.steps[0].output.contains("approved by bob"),
        "{}",
        run.steps[0].output
    );
    let kubeadm = &run.steps[3].output;
    assert!(
        kubeadm.contains("[reset] Deleting contents of directories"),
        "{kubeadm}"
    );

    // On the host: the CNI configuration and state gone, iptables empty, kubelet stopped.
    let session = engine.ssh.connect(&bep).await.expect("connect");
    let after = session
        .run(&grappe_engine::ssh::commands::CHECK, |_| {})
        .await
        .expect("check script");
    session.close().await;
    let after = grappe_engine::ssh::checks::parse(&after.text);
    assert!(!after.kubelet.active);
    let netd = after
        .dirs
        .iter()
        .find(|d| d.path == "/etc/cni/net.d")
        .expect("net.d");
    assert!(!netd.present, "{netd:?}");
    assert!(
        !after
            .dirs
            .iter()
            .find(|d| d.path == "/var/lib/cni")
            .expect("cni")
            .present
    );
    for t in &after.iptables {
        if t.table != "raw" {
            assert_eq!((t.rules, t.chains), (0, 0), "{t:?}");
        }
    }
    // The node goes NotReady (its kubelet stopped).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let status = lab.kubectl(&[
            "get",
            "node",
            "bellatrix",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ]);
        if status.trim() != "True" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "bellatrix still Ready 2 min after its reset"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // A lost kube-apiserver, recovered over SSH only.
    let plan = engine
        .runs
        .plan_recovery(&support::lab_name())
        .await
        .expect("plan");
    assert!(
        failed(&plan, "apiserver"),
        "a recovery of an answering API server must not run: {:?}",
        plan.checks
    );
    trust(&engine, &lab, "betelgeuse", "10.16.0.10").await;
    lab.run(&["break", "apiserver"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let plan = loop {
        let plan = engine
            .runs
            .plan_recovery(&support::lab_name())
            .await
            .expect("plan");
        if plan.runnable() {
            break plan;
        }
        assert!(
            Instant::now() < deadline,
            "no runnable recovery: {:?}",
            plan.checks
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let view = plan.view();
    let preview = view.recovery().cloned().expect("recovery preview");
    // Calico came with the lab, not from a Grappe run: no rollback is offered.
    assert_eq!(preview.rollback_run, None, "{:?}", plan.checks);
    assert_eq!(preview.hosts.len(), 1);
    assert_eq!(preview.hosts[0].node, "betelgeuse");
    let started = Instant::now();
    let id = engine
        .runs
        .start(
            &as_admin(&admin),
            Start::of(
                &plan,
                Confirmation {
                    typed: "lab".into(),
                    reauthenticated: false,
                },
            ),
        )
        .await
        .expect("start recovery");
    let run = finished(&engine.runs, id).await;
    eprintln!("recovery: {:.1} s", started.elapsed().as_secs_f64());
    assert_eq!(run.summary.status, "succeeded", "{:#?}", run.steps);
    assert!(
        run.steps[0].output.contains("Exited"),
        "the look shows the exited container: {}",
        run.steps[0].output
    );
    assert!(
        run.steps[2].output.contains("/readyz: ok"),
        "{}",
        run.steps[2].output
    );
    assert_eq!(lab.kubectl(&["get", "--raw", "/readyz"]).trim(), "ok");

    // The history has the refusals, the trusts, the checks and the run.
    let records = engine
        .audit
        .export(&grappe_engine::audit::AuditFilter::default(), 1_000)
        .await
        .expect("audit");
    let has = |action: &str, node: &str, outcome: &str| {
        records.iter().any(|r| {
            r.action == action && r.node.as_deref() == Some(node) && r.outcome.as_str() == outcome
        })
    };
    assert!(
        has("node.check", "rigel", "failure"),
        "the refused check is recorded"
    );
    assert!(has("ssh.trust", "rigel", "success"));
    assert!(has("ssh.trust", "bellatrix", "success"));
    assert!(has("node.check", "rigel", "success"));
    assert!(
        has("run.start", "bellatrix", "attempted"),
        "a reset's start names its node"
    );
    assert!(matches!(
        engine.audit.verify().await.expect("verify"),
        grappe_engine::audit::VerifyReport::Intact { .. }
    ));
}

/// The MTU and BGP reads over SSH on rigel: its links (and their restore after a restart),
/// a real path-MTU probe to bellatrix, and its BIRD's session table.
async fn network_doctor_over_ssh(
    engine: &grappe_engine::Engine,
    admin: &grappe_engine::audit::Caller,
    endpoint: &grappe_engine::ssh::Endpoint,
    check: &grappe_views::hosts::HostCheckView,
) {
    assert_eq!(check.uplink.as_deref(), Some("eth0"), "{:?}", check.links);
    assert!(
        check.links.iter().any(|(n, m)| n == "eth0" && *m == 1500),
        "{:?}",
        check.links
    );
    // What a restarted Grappe finds for the MTU page: the stored check's links.
    assert!(engine.restore_host_facts().await.expect("restore") >= 1);
    let state = engine.states.get(&endpoint.cluster).expect("state");
    eventually(
        "rigel's uplink on the MTU page",
        Duration::from_secs(30),
        async || {
            let v = state.mtu();
            v.hosts
                .iter()
                .any(|h| h.node == "rigel" && h.iface == "eth0" && h.mtu == 1500)
                .then_some(())
                .ok_or(format!("{:?}", v.hosts))
        },
    )
    .await;

    let ip = "10.16.0.12".parse().expect("ip");
    let probe = engine
        .ssh
        .probe_mtu(admin, endpoint, "bellatrix", ip)
        .await
        .expect("probe");
    assert_eq!(probe.largest, Some(1500), "{probe:?}");
    assert!(probe.steps.len() <= 15, "{probe:?}");

    let table = engine
        .ssh
        .bgp_sessions(admin, endpoint)
        .await
        .expect("BGP sessions");
    let established = table.sessions.iter().filter(|s| s.established()).count();
    assert_eq!(established, 3, "{:?}", table.sessions);
    assert!(
        table
            .sessions
            .iter()
            .any(|s| s.peer_ip.as_deref() == Some("10.16.0.12")),
        "{:?}",
        table.sessions
    );
}
