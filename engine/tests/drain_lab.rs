//! Drain against a lab of its own (control plane + 4 workers, the seed's sample workloads):
//! Grappe's verdicts equal what `kubectl drain --dry-run=server` reports with the same flags,
//! on every node and for several flag sets; a drain blocked by the `demo/web` budget
//! (maxUnavailable 0) names the budget, then completes once the budget allows it; a drain
//! that times out fails with the pods still there named and does not start the next node; a
//! cancelled drain leaves its node cordoned; a node drained by Grappe ends like one drained
//! by kubectl; cordon / uncordon are audited.
//!
//! Needs Go and the machine's kubectl. Fails (never skips) when they are missing.

mod support;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use grappe_engine::audit::AuditFilter;
use grappe_engine::model::Plan;
use grappe_engine::names::NodeName;
use grappe_engine::runs::drain::{DrainOptions, DrainParams};
use grappe_engine::runs::{Actor, Confirmation, RunError, RunId, Runs, Start};
use grappe_engine::users::Role;
use grappe_views::runs::{RunView, Verdict};
use support::Lab;

const PORT_BASE: &str = "17600";

/// An operator: drains are theirs.
fn bob() -> Actor {
    Actor {
        caller: support::caller("bob", "drain_lab"),
        role: Role::Operator,
    }
}

/// Previews a drain of `nodes` on the lab.
async fn plan_of(runs: &Runs, nodes: &[String], opts: &DrainOptions) -> Result<Plan, RunError> {
    let request = DrainParams {
        nodes: support::node_names(nodes),
        options: opts.clone(),
    };
    runs.plan_drain(&support::lab_name(), &request).await
}

fn typed(word: &str) -> Confirmation {
    Confirmation {
        typed: word.to_owned(),
        reauthenticated: false,
    }
}

/// Previews a drain of `nodes` and starts it, confirmed with the node names.
async fn drain(runs: &Runs, nodes: &[String], opts: &DrainOptions) -> RunId {
    let plan = plan_of(runs, nodes, opts).await.expect("plan");
    runs.start(&bob(), Start::of(&plan, typed(&nodes.join(" "))))
        .await
        .expect("start")
}

/// `kubectl` that may fail: its exit status and everything it printed.
fn kubectl_any(lab: &Lab, args: &[&str]) -> (bool, String) {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(lab.kubeconfig())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("kubectl is required (the machine's kubectl): {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// kubectl's flags for `opts`.
fn flags(opts: &DrainOptions) -> Vec<String> {
    let mut f = vec![
        format!("--delete-emptydir-data={}", opts.delete_emptydir_data),
        format!("--ignore-daemonsets={}", opts.ignore_daemonsets),
        format!("--force={}", opts.force),
    ];
    if !opts.pod_selector.is_empty() {
        f.push(format!("--pod-selector={}", opts.pod_selector));
    }
    f
}

/// What kubectl's output says, as sets of `namespace/name`: pods it evicts, DaemonSet pods it
/// ignores, pods that stop it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Verdicts {
    evict: BTreeSet<String>,
    daemonset_skip: BTreeSet<String>,
    blocked: BTreeSet<String>,
}

fn pod_list(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(", ")
        .map(|p| p.trim().trim_end_matches([']', ',']).to_owned())
        .take_while(|p| p.contains('/') && !p.contains(' '))
}

fn parse_kubectl(out: &str) -> Verdicts {
    let mut v = Verdicts::default();
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("evicting pod ") {
            v.evict
                .insert(rest.trim_end_matches(" (server dry run)").to_owned());
        }
        // `Warning: <warning>: pods; <warning>: pods`
        if let Some(rest) = line.strip_prefix("Warning: ") {
            for part in rest.split("; ") {
                if let Some(pods) = part.strip_prefix("ignoring DaemonSet-managed Pods: ") {
                    v.daemonset_skip.extend(pod_list(pods));
                }
            }
        }
        // `cannot delete <reason>: ns/a, ns/b` (several reasons joined in one line).
        for part in line.split("cannot delete ").skip(1) {
            if let Some((_, pods)) = part.split_once("): ").or_else(|| part.split_once(": ")) {
                v.blocked.extend(pod_list(pods));
            }
        }
    }
    v
}

fn grappe_verdicts(plan: &Plan) -> Verdicts {
    let mut v = Verdicts::default();
    let view = plan.view();
    for p in view
        .drain()
        .into_iter()
        .flat_map(|d| &d.nodes)
        .flat_map(|n| &n.pods)
    {
        match p.verdict {
            Verdict::Evict => {
                v.evict.insert(p.key());
            }
            Verdict::Skip if p.owner.starts_with("DaemonSet/") => {
                v.daemonset_skip.insert(p.key());
            }
            Verdict::Blocked => {
                v.blocked.insert(p.key());
            }
            _ => {}
        }
    }
    // kubectl evicts nothing (and says nothing about evictions) once a pod blocks.
    if !v.blocked.is_empty() {
        v.evict.clear();
        v.daemonset_skip.clear();
    }
    v
}

fn set_web_budget(lab: &Lab, max_unavailable: u32) {
    lab.kubectl(&[
        "-n",
        "demo",
        "patch",
        "pdb",
        "web",
        "--type=merge",
        "-p",
        &format!(r#"{{"spec":{{"maxUnavailable":{max_unavailable}}}}}"#),
    ]);
}

fn pods_on(lab: &Lab, node: &str) -> Vec<(String, String)> {
    let out = lab.kubectl(&[
        "get",
        "pods",
        "-A",
        "--field-selector",
        &format!("spec.nodeName={node}"),
        "-o",
        "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name} {.metadata.ownerReferences[0].kind}{\"\\n\"}{end}",
    ]);
    out.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, o)| (k.to_owned(), o.to_owned()))
        .collect()
}

fn web_nodes(lab: &Lab) -> Vec<String> {
    let out = lab.kubectl(&[
        "-n",
        "demo",
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={range .items[*]}{.spec.nodeName}{\"\\n\"}{end}",
    ]);
    out.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn unschedulable(lab: &Lab, node: &str) -> bool {
    lab.kubectl(&["get", "node", node, "-o", "jsonpath={.spec.unschedulable}"]) == "true"
}

/// Polls the run until `check` holds on it.
async fn run_until(
    runs: &Runs,
    id: RunId,
    what: &str,
    check: impl Fn(&RunView) -> bool,
) -> RunView {
    let start = std::time::Instant::now();
    loop {
        let view = runs.view(id).await.expect("run view");
        if check(&view) {
            return view;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{what}: not seen after 2 min: {view:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_matches_kubectl_and_handles_budgets_timeouts_and_cancel() {
    // With Calico: before a CNI the nodes are NotReady and the sample pods stay Pending.
    let manifests = support::manifests();
    let lab = Lab::up(
        PORT_BASE,
        &[
            "--nodes",
            "5",
            "--cni",
            "calico",
            "--manifests",
            &manifests.to_string_lossy(),
        ],
    );
    let db = tempfile::tempdir().expect("tempdir");
    let engine = lab.engine(db.path(), None).await;
    let runs = &engine.runs;
    let nodes: Vec<String> = lab
        .kubectl(&[
            "get",
            "nodes",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}{\"\\n\"}{end}",
        ])
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(nodes.len(), 5, "{nodes:?}");
    // Every demo pod scheduled and the Job finished before comparing.
    support::eventually(
        "demo workloads settled",
        Duration::from_secs(90),
        async || {
            let out = lab.kubectl(&[
                "-n",
                "demo",
                "get",
                "pods",
                "-o",
                "jsonpath={range .items[*]}{.metadata.name}={.status.phase}{\"\\n\"}{end}",
            ]);
            let settled = out.lines().count() >= 6
                && out.lines().all(|l| {
                    l.ends_with("=Running")
                        || (l.starts_with("db-migrate") && l.ends_with("=Succeeded"))
                });
            settled.then_some(()).ok_or(out)
        },
    )
    .await;

    // 1. Parity with `kubectl drain --dry-run=server`, every node, four flag sets.
    let seed = DrainOptions::default();
    let none = DrainOptions {
        delete_emptydir_data: false,
        ignore_daemonsets: false,
        force: false,
        ..DrainOptions::default()
    };
    let only_ds = DrainOptions {
        ignore_daemonsets: true,
        ..none.clone()
    };
    let no_force = DrainOptions {
        force: false,
        ..seed.clone()
    };
    let selected = DrainOptions {
        pod_selector: "app in (web,cache)".into(),
        ..seed.clone()
    };
    let mut compared = 0;
    let mut seen = Verdicts::default();
    for opts in [&seed, &none, &only_ds, &no_force, &selected] {
        for node in &nodes {
            let plan = plan_of(runs, std::slice::from_ref(node), opts)
                .await
                .expect("plan");
            let mine = grappe_verdicts(&plan);
            let mut args = vec![
                "drain".to_owned(),
                node.clone(),
                "--dry-run=server".into(),
                "--timeout=4s".into(),
            ];
            args.extend(flags(opts));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (_, out) = kubectl_any(&lab, &args);
            let theirs = parse_kubectl(&out);
            assert_eq!(
                mine,
                theirs,
                "verdicts differ on {node} with {:?}\nkubectl said:\n{out}\nplan: {:#?}",
                opts.flags(),
                plan.detail
            );
            assert_eq!(
                plan.runnable(),
                theirs.blocked.is_empty(),
                "{:#?}",
                plan.checks
            );
            seen.evict.extend(mine.evict);
            seen.daemonset_skip.extend(mine.daemonset_skip);
            seen.blocked.extend(mine.blocked);
            compared += 1;
        }
    }
    assert_eq!(compared, 25);
    // The scenarios were all there: evictions, DaemonSet pods, blocked pods.
    let key = "demo/debug-shell";
    assert!(seen.blocked.contains(key), "{seen:?}");
    assert!(seen.evict.contains(key), "{seen:?}");
    assert!(
        seen.daemonset_skip
            .iter()
            .any(|k| k.starts_with("kube-system/kube-proxy-")),
        "{seen:?}"
    );
    assert!(
        seen.blocked.iter().any(|k| k.starts_with("demo/cache-")),
        "{seen:?}"
    );
    // Mirror pods are skipped with the reason; the finished Job pod is evicted without force.
    let cp = plan_of(runs, &["betelgeuse".to_owned()], &none)
        .await
        .expect("plan");
    let cp_view = cp.view();
    let cp_pods = &cp_view.drain().expect("preview").nodes[0].pods;
    assert!(
        cp_pods
            .iter()
            .any(|p| p.name == "kube-apiserver-betelgeuse" && p.verdict == Verdict::Skip),
        "{cp_pods:#?}"
    );
    assert!(
        cp.checks.iter().any(|c| c.id == "control-plane"),
        "{:#?}",
        cp.checks
    );
    assert!(
        !plan_of(runs, &["no-such-node".to_owned()], &seed)
            .await
            .expect("plan")
            .runnable()
    );
    // A name that is no node name never reaches the engine (parsed at the edge).
    assert!(NodeName::parse("bad;name").is_err());
    assert!(matches!(
        plan_of(runs, &["rigel".to_owned(), "rigel".to_owned()], &seed).await,
        Err(RunError::Invalid(_))
    ));
    // Nothing changed: no node cordoned by the dry runs or the previews.
    for node in &nodes {
        assert!(!unschedulable(&lab, node), "{node} cordoned by a preview");
    }

    // 2. A drain blocked by demo/web (maxUnavailable 0) names it, then completes.
    let web = web_nodes(&lab);
    let first = web.first().expect("a web pod").clone();
    let plan = plan_of(runs, std::slice::from_ref(&first), &seed)
        .await
        .expect("plan");
    let view = plan.view();
    let preview = view.drain().expect("preview");
    assert_eq!(preview.pdbs_at_zero.len(), 1, "{preview:#?}");
    assert_eq!(preview.pdbs_at_zero[0].name, "web");
    assert!(
        preview.nodes[0]
            .pods
            .iter()
            .any(|p| p.blocking_pdbs == vec!["demo/web".to_owned()]),
        "{preview:#?}"
    );
    assert!(
        plan.checks
            .iter()
            .any(|c| c.id == "pdb" && c.level == "warn")
    );
    match runs.start(&bob(), Start::of(&plan, typed("lab"))).await {
        Err(RunError::NotConfirmed(word)) => assert_eq!(word, first),
        other => panic!("the cluster name confirmed a drain: {other:?}"),
    }
    let id = runs
        .start(&bob(), Start::of(&plan, typed(&first)))
        .await
        .expect("start");
    let blocked = run_until(runs, id, "the blocking budget named", |v| {
        v.objects.iter().any(|o| {
            o.done
                .as_deref()
                .is_some_and(|d| d.contains("blocked by PodDisruptionBudget demo/web"))
        })
    })
    .await;
    assert_eq!(blocked.summary.status, "running");
    assert!(unschedulable(&lab, &first), "cordoned first");
    set_web_budget(&lab, 1);
    let done = support::finished(runs, id).await;
    assert_eq!(done.summary.status, "succeeded", "{:#?}", done.steps);
    let output: String = done.steps.iter().map(|s| s.output.as_str()).collect();
    assert!(output.contains("retrying every 5 s"), "{output}");
    assert!(output.contains("evicted after"), "{output}");
    assert!(
        done.objects
            .iter()
            .all(|o| matches!(o.done.as_deref(), Some("gone" | "replaced (new UID)"))),
        "{:#?}",
        done.objects
    );
    let left = pods_on(&lab, &first);
    assert!(
        left.iter().all(|(_, owner)| owner == "DaemonSet"),
        "only DaemonSet pods stay on {first}: {left:?}"
    );
    assert!(runs.verify(id).await.expect("verify"), "run sealed");

    // 3. A node drained by kubectl ends the same way (same flags).
    let second = nodes
        .iter()
        .find(|n| {
            **n != first
                && *n != "betelgeuse"
                && !pods_on(&lab, n).iter().all(|(_, o)| o == "DaemonSet")
        })
        .expect("another worker with pods")
        .clone();
    let mut args = vec!["drain".to_owned(), second.clone(), "--timeout=120s".into()];
    args.extend(flags(&seed));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out) = kubectl_any(&lab, &args);
    assert!(ok, "kubectl drain: {out}");
    let kinds = |node: &str| -> BTreeSet<String> {
        pods_on(&lab, node).into_iter().map(|(_, o)| o).collect()
    };
    assert_eq!(kinds(&first), kinds(&second), "same end state as kubectl's");
    assert!(unschedulable(&lab, &second));

    // 4. With the budget at zero again, a two-node drain times out on its first node, names
    //    the pods still there and never starts the second.
    set_web_budget(&lab, 0);
    let busy: Vec<String> = web_nodes(&lab);
    let third = busy
        .iter()
        .find(|n| **n != first && **n != second)
        .expect("a web pod elsewhere")
        .clone();
    let last = nodes
        .iter()
        .find(|n| {
            ![
                first.as_str(),
                second.as_str(),
                third.as_str(),
                "betelgeuse",
            ]
            .contains(&n.as_str())
        })
        .expect("a fourth worker")
        .clone();
    let pair = vec![third.clone(), last.clone()];
    let short = DrainOptions {
        timeout_seconds: 6,
        ..seed.clone()
    };
    let pair_plan = plan_of(runs, &pair, &short).await.expect("plan");
    assert_eq!(pair_plan.view().confirm_word, format!("{third} {last}"));
    let id = runs
        .start(
            &bob(),
            Start::of(&pair_plan, typed(&format!("{third}  {last}"))),
        )
        .await
        .expect("start");
    let failed = support::finished(runs, id).await;
    assert_eq!(failed.summary.status, "failed", "{:#?}", failed.steps);
    let error = failed.summary.error.clone().unwrap_or_default();
    assert!(error.contains("did not complete within 6 s"), "{error}");
    assert!(error.contains("still there: demo/web-"), "{error}");
    let status = |name: &str| {
        failed
            .steps
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.status.as_str())
            .unwrap_or_default()
    };
    assert_eq!(status(&format!("drain {third}")), "failed");
    assert_eq!(status(&format!("cordon {last}")), "pending");
    let output: String = failed.steps.iter().map(|s| s.output.as_str()).collect();
    assert!(output.contains(&format!("not drained: {last}")), "{output}");
    assert!(unschedulable(&lab, &third));
    assert!(
        !unschedulable(&lab, &last),
        "the second node was never touched"
    );

    // 5. Cancel while blocked: the run is cancelled, the node stays cordoned.
    let id = drain(runs, std::slice::from_ref(&third), &seed).await;
    run_until(runs, id, "blocked before cancel", |v| {
        v.objects.iter().any(|o| {
            o.done
                .as_deref()
                .is_some_and(|d| d.starts_with("blocked by"))
        })
    })
    .await;
    runs.cancel(&bob().caller, id).await.expect("cancel");
    let cancelled = support::finished(runs, id).await;
    assert_eq!(
        cancelled.summary.status, "cancelled",
        "{:#?}",
        cancelled.steps
    );
    let output: String = cancelled.steps.iter().map(|s| s.output.as_str()).collect();
    assert!(
        output.contains(&format!("node/{third} stays cordoned")),
        "{output}"
    );
    assert!(unschedulable(&lab, &third));

    // 6. Uncordon (and cordon) are audited; a no-op says so.
    assert!(
        runs.set_unschedulable(
            &bob().caller,
            &support::lab_name(),
            &NodeName::parse(&third).expect("name"),
            false
        )
        .await
        .expect("uncordon")
    );
    assert!(!unschedulable(&lab, &third));
    assert!(
        !runs
            .set_unschedulable(
                &bob().caller,
                &support::lab_name(),
                &NodeName::parse(&third).expect("name"),
                false
            )
            .await
            .expect("again")
    );
    assert!(
        runs.set_unschedulable(
            &bob().caller,
            &support::lab_name(),
            &NodeName::parse(&last).expect("name"),
            true
        )
        .await
        .expect("cordon")
    );
    assert!(unschedulable(&lab, &last));
    let records = engine
        .audit
        .export(&AuditFilter::default(), 1_000)
        .await
        .expect("audit");
    let has = |action: &str, node: &str| {
        records
            .iter()
            .any(|r| r.action == action && r.node.as_deref() == Some(node) && r.actor == "bob")
    };
    assert!(has("node.uncordon", &third));
    assert!(has("node.cordon", &last));
    assert!(has("run.start", &first), "a drain's start names its node");
    assert!(matches!(
        engine.audit.verify().await.expect("verify"),
        grappe_engine::audit::VerifyReport::Intact { .. }
    ));
}

#[test]
fn kubectl_output_is_parsed() {
    let out = "node/rigel cordoned (server dry run)\n\
        Warning: deleting Pods that declare no controller: demo/debug-shell; ignoring DaemonSet-managed Pods: kube-system/kube-proxy-abc, kube-system/calico-node-x\n\
        evicting pod demo/web-1 (server dry run)\n\
        evicting pod demo/web-1 (server dry run)\n\
        error: unable to drain node \"rigel\" due to error: [cannot delete Pods with local storage (use --delete-emptydir-data to override): demo/cache-1, cannot delete Pods declare no controller (use --force to override): demo/debug-shell], continuing command...\n";
    let v = parse_kubectl(out);
    assert_eq!(v.evict, BTreeSet::from(["demo/web-1".to_owned()]));
    assert_eq!(v.daemonset_skip.len(), 2);
    assert_eq!(
        v.blocked,
        BTreeSet::from(["demo/cache-1".to_owned(), "demo/debug-shell".to_owned()])
    );
}
