//! Where manifests come from, through `Runs::manifest` (the path the UI takes): a catalog entry
//! from a (local) mirror is verified by its pinned sha256; a mirror serving a changed copy is
//! refused and the refusal is in the audit log; a custom URL or a pasted text is accepted but
//! unverified; more than 5 MiB is refused. No lab needed: only a loopback HTTP server.

mod support;

use grappe_engine::audit::{AuditFilter, Caller, Outcome};
use grappe_engine::auth::ThrottlePolicy;
use grappe_engine::manifests::{ManifestError, Source};
use grappe_engine::{Engine, EngineConfig};
use support::{manifests, serve_dir};

const CALICO_3251_SHA256: &str = "907e3aa4ef102526a020735bbc053611b8c284bcadcbbb476f9ba46a4fd78329";

fn alice() -> Caller {
    support::caller("alice", "manifest_sources")
}

async fn engine(dir: &std::path::Path, mirror: String) -> Engine {
    Engine::start(EngineConfig {
        database: dir.join("grappe.db"),
        clusters: vec![],
        throttle: ThrottlePolicy::default(),
        manifest_mirror: Some(mirror),
        recover_runs: false,
        ssh: Default::default(),
    })
    .await
    .expect("engine")
}

async fn refusals(engine: &Engine) -> Vec<grappe_engine::audit::AuditRecord> {
    let filter = AuditFilter {
        action: Some("manifest.refused".into()),
        ..AuditFilter::default()
    };
    engine
        .audit
        .page(&filter, 1, 50)
        .await
        .expect("audit page")
        .records
}

#[tokio::test]
async fn catalog_manifests_are_checked_and_refusals_audited() {
    let db = tempfile::tempdir().expect("tempdir");

    // The genuine file from the mirror: verified against the catalog's checksum.
    let good = engine(db.path(), serve_dir(manifests()).await).await;
    let calico = good
        .runs
        .manifest(&alice(), Source::Catalog("calico-v3.25.1"))
        .await
        .expect("catalog manifest");
    assert!(calico.verified());
    assert_eq!(calico.sha256, CALICO_3251_SHA256);
    assert!(refusals(&good).await.is_empty());
    drop(good);

    // A mirror serving a copy with one image tag changed: refused, and the refusal recorded.
    let tampered = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(manifests().join("calico-v3.25.1.yaml")).expect("read");
    std::fs::write(
        tampered.path().join("calico-v3.25.1.yaml"),
        text.replacen("calico/node:v3.25.1", "calico/node:v3.25.9", 1),
    )
    .expect("write");
    let bad = engine(db.path(), serve_dir(tampered.path().to_owned()).await).await;
    match bad
        .runs
        .manifest(&alice(), Source::Catalog("calico-v3.25.1"))
        .await
    {
        Err(ManifestError::ChecksumMismatch {
            expected, actual, ..
        }) => {
            assert_eq!(expected, CALICO_3251_SHA256);
            assert_ne!(actual, expected);
        }
        other => panic!("tampered manifest not refused: {other:?}"),
    }
    let records = refusals(&bad).await;
    assert_eq!(records.len(), 1, "{records:#?}");
    let record = &records[0];
    assert_eq!(record.actor, "alice");
    assert_eq!(record.outcome, Outcome::Denied);
    assert_eq!(record.object.as_deref(), Some("manifest/calico-v3.25.1"));
    assert!(
        record.details.contains(CALICO_3251_SHA256),
        "{}",
        record.details
    );
    assert!(matches!(
        bad.audit.verify().await.expect("verify"),
        grappe_engine::audit::VerifyReport::Intact { .. }
    ));

    // An unknown catalog id is an error, not a download.
    assert!(matches!(
        bad.runs
            .manifest(&alice(), Source::Catalog("calico-v9"))
            .await,
        Err(ManifestError::UnknownCatalogEntry(_))
    ));
}

#[tokio::test]
async fn custom_manifests_are_unverified_and_bounded() {
    let db = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    let flannel = std::fs::read_to_string(manifests().join("kube-flannel-v0.28.9.yml"))
        .expect("read flannel");
    std::fs::write(files.path().join("custom.yaml"), &flannel).expect("write");
    std::fs::write(
        files.path().join("huge.yaml"),
        "# padding\n".repeat(600 * 1024),
    )
    .expect("write");
    let base = serve_dir(files.path().to_owned()).await;
    let engine = engine(db.path(), base.clone()).await;

    // By URL: the same bytes as the catalog's Flannel are recognised as such…
    let by_url = engine
        .runs
        .manifest(&alice(), Source::Url(&format!("{base}/custom.yaml")))
        .await
        .expect("manifest by URL");
    assert!(by_url.verified(), "catalog bytes under another URL");
    // …one changed byte makes it a custom, unverified manifest, accepted.
    let edited = flannel.replacen("flannel", "flannel ", 1);
    let pasted = engine
        .runs
        .manifest(
            &alice(),
            Source::Upload {
                file_name: "",
                text: &edited,
            },
        )
        .await
        .expect("pasted manifest");
    assert!(!pasted.verified());
    assert_eq!(pasted.source, "upload:pasted");
    // Read from a file: its base name is the recorded source.
    let uploaded = engine
        .runs
        .manifest(
            &alice(),
            Source::Upload {
                file_name: "C:\\fakepath\\my-cni.yaml",
                text: &edited,
            },
        )
        .await
        .expect("uploaded manifest");
    assert_eq!(uploaded.source, "upload:my-cni.yaml");
    assert_eq!(uploaded.sha256, pasted.sha256);

    // Over the size limit, empty, or not http(s): refused with the reason.
    assert!(matches!(
        engine
            .runs
            .manifest(&alice(), Source::Url(&format!("{base}/huge.yaml")))
            .await,
        Err(ManifestError::TooLarge { .. })
    ));
    assert!(matches!(
        engine
            .runs
            .manifest(
                &alice(),
                Source::Upload {
                    file_name: "",
                    text: ""
                }
            )
            .await,
        Err(ManifestError::Empty)
    ));
    assert!(matches!(
        engine
            .runs
            .manifest(&alice(), Source::Url("file:///etc/passwd"))
            .await,
        Err(ManifestError::BadUrl(_))
    ));
    assert!(matches!(
        engine
            .runs
            .manifest(&alice(), Source::Url(&format!("{base}/missing.yaml")))
            .await,
        Err(ManifestError::HttpStatus { status: 404, .. })
    ));
    // SSRF: credentials are refused; a query is used but never recorded; another loopback
    // server than the mirror's host is refused, directly or through a redirect; a redirect to
    // the mirror's host is followed.
    let refused = engine
        .runs
        .manifest(&alice(), Source::Url("https://ci:s3cr3t@github.com/x.yaml"))
        .await;
    assert!(
        matches!(&refused, Err(ManifestError::Credentials(u)) if !u.contains("s3cr3t")),
        "{refused:?}"
    );
    let with_query = engine
        .runs
        .manifest(
            &alice(),
            Source::Url(&format!("{base}/custom.yaml?token=s3cr3t")),
        )
        .await
        .expect("a query is fine");
    assert_eq!(with_query.source, format!("{base}/custom.yaml"));
    let other = serve_dir(files.path().to_owned()).await;
    std::fs::write(
        files.path().join("away.redirect"),
        format!("{other}/custom.yaml"),
    )
    .expect("w");
    std::fs::write(
        files.path().join("home.redirect"),
        format!("{base}/custom.yaml"),
    )
    .expect("w");
    for url in [
        format!("{other}/custom.yaml"),
        format!("{base}/away.redirect"),
    ] {
        let refused = engine.runs.manifest(&alice(), Source::Url(&url)).await;
        assert!(
            matches!(refused, Err(ManifestError::PrivateAddress(_))),
            "{url}: {refused:?}"
        );
    }
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:9/x",
    ] {
        let refused = engine.runs.manifest(&alice(), Source::Url(url)).await;
        assert!(
            matches!(refused, Err(ManifestError::PrivateAddress(_))),
            "{url}: {refused:?}"
        );
    }
    let followed = engine
        .runs
        .manifest(&alice(), Source::Url(&format!("{base}/home.redirect")))
        .await
        .expect("a redirect to the mirror's host");
    assert!(followed.verified());

    // None of these is a tampered catalog manifest: nothing recorded as refused.
    assert!(refusals(&engine).await.is_empty());
}
