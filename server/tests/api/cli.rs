//! The `grappe` command line, run as a real process against a real database file.

use std::io::Write;
use std::process::{Command, Stdio};

fn grappe(db: &std::path::Path, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_grappe"))
        .args(args)
        .env("GRAPPE_DATABASE", db)
        .env("GRAPPE_LOG", "warn")
        .env("USER", "ops")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn grappe");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn users_are_managed_and_audited_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("grappe.db");

    let (code, out, err) = grappe(&db, &["user", "add", "root", "--role", "admin"], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("password (shown once): "), "{out}");

    let (code, _, err) = grappe(
        &db,
        &[
            "user",
            "add",
            "alice",
            "--role",
            "operator",
            "--password-stdin",
        ],
        Some("correct horse battery staple\n"),
    );
    assert_eq!(code, 0, "{err}");

    let (code, _, err) = grappe(
        &db,
        &["user", "add", "bob", "--password-stdin"],
        Some("short\n"),
    );
    assert_ne!(code, 0);
    assert!(err.contains("at least 12 characters"), "{err}");

    let (code, _, err) = grappe(&db, &["user", "add", "Bad Name"], None);
    assert_ne!(code, 0);
    assert!(err.contains("invalid user name"), "{err}");

    let (code, out, _) = grappe(&db, &["user", "role", "alice", "admin"], None);
    assert_eq!(code, 0);
    assert!(out.contains("now has role admin"));
    let (code, out, _) = grappe(&db, &["user", "disable", "alice"], None);
    assert_eq!(code, 0, "{out}");
    let (_, out, _) = grappe(&db, &["user", "list"], None);
    assert!(
        out.lines()
            .any(|l| l.starts_with("alice") && l.contains("disabled")),
        "{out}"
    );

    let (code, out, _) = grappe(&db, &["audit", "export", "--format", "csv"], None);
    assert_eq!(code, 0);
    for action in ["user.add", "user.role_change", "user.disable"] {
        assert!(out.contains(action), "{action} missing from:\n{out}");
    }
    assert!(out.contains("cli:ops"), "the CLI acts as cli:<os user>");
    assert!(
        !out.contains("correct horse"),
        "no password in the audit log"
    );

    let (code, out, _) = grappe(&db, &["audit", "verify"], None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("intact"), "{out}");
}

#[test]
fn audit_verify_names_the_altered_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("grappe.db");
    for name in ["a1", "a2", "a3"] {
        let (code, _, err) = grappe(&db, &["user", "add", name], None);
        assert_eq!(code, 0, "{err}");
    }
    // Edit the file behind Grappe's back (a second SQLite connection, triggers dropped).
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = grappe_engine::store::Store::connect(&db)
            .await
            .expect("open");
        for sql in [
            "DROP TRIGGER audit_log_no_update",
            "UPDATE audit_log SET actor = 'someone-else' WHERE id = 4",
        ] {
            sqlx::query(sql).execute(store.pool()).await.expect(sql);
        }
        store.close().await;
    });
    let (code, out, _) = grappe(&db, &["audit", "verify"], None);
    assert_eq!(code, 2);
    assert!(out.contains("record 4 was altered"), "{out}");
}
