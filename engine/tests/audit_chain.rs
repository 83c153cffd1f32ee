//! The audit log against a real SQLite file: append-only triggers, tamper detection by the
//! verifier, and the audit-first guard refusing to act when the record cannot be written.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use grappe_engine::audit::{
    Action, AuditEntry, AuditLog, Caller, ChainProblem, GuardedError, Outcome, Target, VerifyReport,
};
use grappe_engine::store::Store;

async fn store() -> (tempfile::TempDir, Store, AuditLog) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("grappe.db"))
        .await
        .expect("open");
    let audit = AuditLog::new(store.clone());
    (dir, store, audit)
}

fn caller() -> Caller {
    Caller {
        actor: "alice".into(),
        source: Some("192.0.2.7".into()),
        user_agent: Some("test".into()),
    }
}

async fn append_n(audit: &AuditLog, n: usize) {
    for i in 0..n {
        audit
            .append(
                AuditEntry::new(
                    &caller(),
                    Action::Login,
                    Target::default(),
                    Outcome::Success,
                )
                .detail("n", i),
            )
            .await
            .expect("append");
    }
}

/// Simulates someone editing the database file directly: the triggers go first.
async fn drop_triggers(store: &Store) {
    for trigger in ["audit_log_no_update", "audit_log_no_delete"] {
        sqlx::query(&format!("DROP TRIGGER {trigger}"))
            .execute(store.pool())
            .await
            .expect("drop trigger");
    }
}

/// Appends `records` records, edits the file with `statements` (triggers dropped first, as by
/// someone with write access to the database file), and verifies.
async fn verify_after_tampering(records: usize, statements: &[&str]) -> VerifyReport {
    let (_dir, store, audit) = store().await;
    append_n(&audit, records).await;
    drop_triggers(&store).await;
    for sql in statements {
        sqlx::query(sql).execute(store.pool()).await.expect(sql);
    }
    audit.verify().await.expect("verify")
}

fn broken(id: i64, problem: ChainProblem) -> VerifyReport {
    VerifyReport::Broken { id, problem }
}

#[tokio::test]
async fn an_untouched_chain_verifies() {
    let (_dir, _store, audit) = store().await;
    append_n(&audit, 5).await;
    match audit.verify().await.expect("verify") {
        VerifyReport::Intact { records, head } => {
            assert_eq!(records, 5);
            assert!(head.is_some());
        }
        other => panic!("expected intact, got {other:?}"),
    }
}

#[tokio::test]
async fn the_database_refuses_update_and_delete() {
    let (_dir, store, audit) = store().await;
    append_n(&audit, 2).await;
    let update = sqlx::query("UPDATE audit_log SET actor = 'mallory' WHERE id = 1")
        .execute(store.pool())
        .await;
    assert!(
        update.unwrap_err().to_string().contains("append-only"),
        "update must be refused"
    );
    let delete = sqlx::query("DELETE FROM audit_log WHERE id = 2")
        .execute(store.pool())
        .await;
    assert!(
        delete.unwrap_err().to_string().contains("append-only"),
        "delete must be refused"
    );
}

#[tokio::test]
async fn altering_one_record_is_detected_and_named() {
    let report =
        verify_after_tampering(5, &["UPDATE audit_log SET actor = 'mallory' WHERE id = 3"]).await;
    assert_eq!(report, broken(3, ChainProblem::Altered));
}

#[tokio::test]
async fn rewriting_a_record_with_a_fresh_hash_breaks_the_link_to_the_next() {
    let (_dir, store, audit) = store().await;
    append_n(&audit, 4).await;
    drop_triggers(&store).await;
    // The forger rewrites record 2 and recomputes its own hash; record 3 still points at the
    // old one.
    let mut record = audit
        .export(&Default::default(), 100)
        .await
        .expect("read")
        .into_iter()
        .find(|r| r.id.0 == 2)
        .expect("record 2");
    record.details = "{\"n\":99}".to_owned();
    record.hash = record.compute_hash();
    sqlx::query("UPDATE audit_log SET details = ?1, hash = ?2 WHERE id = 2")
        .bind(&record.details)
        .bind(&record.hash)
        .execute(store.pool())
        .await
        .expect("tamper");
    assert_eq!(
        audit.verify().await.expect("verify"),
        broken(3, ChainProblem::Unlinked)
    );
}

#[tokio::test]
async fn deleting_a_record_is_detected_and_named() {
    let report = verify_after_tampering(5, &["DELETE FROM audit_log WHERE id = 2"]).await;
    assert_eq!(report, broken(2, ChainProblem::Missing));
}

#[tokio::test]
async fn deleting_the_newest_record_is_detected() {
    let report = verify_after_tampering(3, &["DELETE FROM audit_log WHERE id = 3"]).await;
    assert_eq!(report, broken(3, ChainProblem::Missing));
}

#[tokio::test]
async fn reordering_records_is_detected() {
    // Swap the positions of records 2 and 3.
    let report = verify_after_tampering(
        4,
        &[
            "UPDATE audit_log SET id = 1000 WHERE id = 3",
            "UPDATE audit_log SET id = 3 WHERE id = 2",
            "UPDATE audit_log SET id = 2 WHERE id = 1000",
        ],
    )
    .await;
    assert_eq!(report, broken(2, ChainProblem::Altered));
}

#[tokio::test]
async fn a_guarded_action_does_not_run_when_its_record_cannot_be_written() {
    let (_dir, store, audit) = store().await;
    // Sabotage: every insert into the audit log now fails.
    sqlx::query(
        "CREATE TRIGGER sabotage BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'disk full'); END",
    )
    .execute(store.pool())
    .await
    .expect("sabotage");
    let ran = Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    let result: Result<(), GuardedError<std::io::Error>> = audit
        .guarded(
            AuditEntry::new(
                &caller(),
                Action::UserDisable,
                Target::object("user/bob"),
                Outcome::Success,
            ),
            async move {
                flag.store(true, Ordering::SeqCst);
                Ok(())
            },
        )
        .await;
    assert!(matches!(result, Err(GuardedError::AuditUnavailable(_))));
    assert!(
        !ran.load(Ordering::SeqCst),
        "the action ran without its audit record"
    );
}

#[tokio::test]
async fn a_guarded_action_records_its_attempt_then_its_outcome() {
    let (_dir, _store, audit) = store().await;
    let result: Result<u32, GuardedError<std::io::Error>> = audit
        .guarded(
            AuditEntry::new(
                &caller(),
                Action::UserDisable,
                Target::object("user/bob"),
                Outcome::Success,
            ),
            async { Err(std::io::Error::other("no such user")) },
        )
        .await;
    assert!(matches!(result, Err(GuardedError::Action(_))));
    let page = audit.page(&Default::default(), 1, 10).await.expect("page");
    let outcomes: Vec<_> = page.records.iter().rev().map(|r| r.outcome).collect();
    assert_eq!(outcomes, vec![Outcome::Attempted, Outcome::Failure]);
    assert!(page.records[0].details.contains("no such user"));
    assert!(page.records[0].details.contains("\"attempt\":1"));
}

#[tokio::test]
async fn concurrent_writers_keep_one_unbroken_chain() {
    let (_dir, _store, audit) = store().await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let audit = audit.clone();
        tasks.push(tokio::spawn(async move { append_n(&audit, 10).await }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    assert!(matches!(
        audit.verify().await.expect("verify"),
        VerifyReport::Intact { records: 80, .. }
    ));
}

#[tokio::test]
async fn names_typed_at_failed_logins_do_not_flood_the_history_filters() {
    let (_dir, _store, audit) = store().await;
    append_n(&audit, 1).await;
    // An anonymous loop of random names: failed or throttled logins.
    for i in 0..300 {
        let who = Caller {
            actor: format!("guess-{i:03}"),
            ..caller()
        };
        let outcome = if i % 2 == 0 {
            Outcome::Failure
        } else {
            Outcome::Denied
        };
        audit
            .append(AuditEntry::new(
                &who,
                Action::Login,
                Target::default(),
                outcome,
            ))
            .await
            .expect("append");
    }
    let values = audit.filter_values().await.expect("filters");
    assert_eq!(values.actors, vec!["alice".to_owned()]);
    assert_eq!(values.actions, vec!["auth.login".to_owned()]);
}
