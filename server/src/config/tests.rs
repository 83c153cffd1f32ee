//! Unit tests of the parent module.
use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn defaults_work_without_a_file() {
    let s = Settings::load_with_env(None, &HashMap::new()).expect("defaults");
    assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(s.database, PathBuf::from("data/grappe.db"));
    assert_eq!(s.session.idle_timeout, Duration::from_secs(1800));
    assert_eq!(s.session.absolute_lifetime, Duration::from_secs(43_200));
    assert!(s.clusters.is_empty());
}

#[test]
fn file_values_are_read_and_env_overrides_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("grappe.toml");
    std::fs::write(
        &path,
        r#"
listen = "0.0.0.0:9000"
database = "/var/lib/grappe/grappe.db"
secure_cookies = true

[session]
idle_timeout = "15m"
absolute_lifetime = "8h"

[[clusters]]
name = "lab"
kubeconfig = "lab.kubeconfig"
context = "lab-admin"
"#,
    )
    .expect("write");
    let s = Settings::load_with_env(
        Some(&path),
        &env(&[
            ("GRAPPE_LISTEN", "127.0.0.1:9100"),
            ("GRAPPE_SESSION_IDLE_TIMEOUT", "5m"),
        ]),
    )
    .expect("load");
    assert_eq!(s.listen.to_string(), "127.0.0.1:9100");
    assert_eq!(s.database, PathBuf::from("/var/lib/grappe/grappe.db"));
    assert!(s.secure_cookies);
    assert_eq!(s.session.idle_timeout, Duration::from_secs(300));
    assert_eq!(s.session.absolute_lifetime, Duration::from_secs(8 * 3600));
    assert_eq!(s.clusters.len(), 1);
    assert_eq!(s.clusters[0].name.as_str(), "lab");
    assert_eq!(s.clusters[0].kubeconfig, dir.path().join("lab.kubeconfig"));
    assert_eq!(s.clusters[0].context.as_deref(), Some("lab-admin"));
}

#[test]
fn trusted_proxies_are_cidrs_and_the_old_switch_is_refused_by_name() {
    let s = Settings::load_with_env(
        None,
        &env(&[("GRAPPE_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.1/32")]),
    )
    .expect("proxies");
    assert_eq!(s.trusted_proxies.len(), 2);
    let err = Settings::load_with_env(None, &env(&[("GRAPPE_TRUSTED_PROXIES", "10.0.0.0")]))
        .expect_err("not a CIDR");
    assert!(err.to_string().contains("GRAPPE_TRUSTED_PROXIES"), "{err}");
    let err = Settings::load_with_env(None, &env(&[("GRAPPE_TRUST_FORWARDED_FOR", "true")]))
        .expect_err("replaced");
    assert!(
        format!("{err:?}").contains("replaced by GRAPPE_TRUSTED_PROXIES"),
        "{err:?}"
    );
}

#[test]
fn clusters_come_from_the_environment_too() {
    let s = Settings::load_with_env(
        None,
        &env(&[("GRAPPE_CLUSTERS", "lab=/tmp/k#ctx, prod=/etc/prod.conf")]),
    )
    .expect("load");
    assert_eq!(s.clusters.len(), 2);
    assert_eq!(s.clusters[0].context.as_deref(), Some("ctx"));
    assert_eq!(s.clusters[1].name.as_str(), "prod");
    assert_eq!(s.clusters[1].context, None);
}

#[test]
fn bad_input_names_what_is_wrong() {
    let err =
        Settings::load_with_env(None, &env(&[("GRAPPE_LISTEN", "nope")])).expect_err("bad listen");
    assert!(err.to_string().contains("GRAPPE_LISTEN"), "{err}");

    let err = Settings::load_with_env(None, &env(&[("GRAPPE_LISTN", "x")])).expect_err("typo");
    assert!(err.to_string().contains("GRAPPE_LISTN"), "{err}");

    let err = Settings::load_with_env(None, &env(&[("GRAPPE_CLUSTERS", "Bad_Name=/x")]))
        .expect_err("bad cluster");
    assert!(err.to_string().contains("cluster name"), "{err}");

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("grappe.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:1\"\nunknown_key = 1\n").expect("write");
    let err = Settings::load_with_env(Some(&path), &HashMap::new()).expect_err("unknown key");
    let chain = format!(
        "{err}: {}",
        std::error::Error::source(&err)
            .map(ToString::to_string)
            .unwrap_or_default()
    );
    assert!(chain.contains("unknown_key"), "{chain}");

    let err = Settings::load_with_env(None, &env(&[("GRAPPE_SESSION_IDLE_TIMEOUT", "13h")]))
        .expect_err("idle longer than absolute");
    assert!(err.to_string().contains("idle_timeout"), "{err}");
}

#[test]
fn durations_accept_units() {
    assert_eq!(parse_duration("90").expect("s"), Duration::from_secs(90));
    assert_eq!(parse_duration("2m").expect("m"), Duration::from_secs(120));
    assert_eq!(
        parse_duration("1d").expect("d"),
        Duration::from_secs(86_400)
    );
    assert!(parse_duration("soon").is_err());
    assert!(parse_duration("5w").is_err());
}

#[test]
fn the_public_url_is_an_origin_that_may_post_and_a_host_answered_for() {
    let s = Settings::load_with_env(
        None,
        &env(&[
            ("GRAPPE_PUBLIC_URL", "https://Grappe.example.org/"),
            ("GRAPPE_ALLOWED_HOSTS", "grappe.internal, ops.internal"),
        ]),
    )
    .expect("settings");
    assert_eq!(s.post_origins(), ["https://grappe.example.org"]);
    let hosts = s.host_policy();
    assert!(hosts.allows("grappe.example.org"));
    assert!(hosts.allows("ops.internal:8080"));
    assert!(!hosts.allows("evil.example"));
    for bad in [
        "grappe.example.org",
        "ftp://grappe.example.org",
        "https://user:token@grappe.example.org",
        "https://",
    ] {
        let err = Settings::load_with_env(None, &env(&[("GRAPPE_PUBLIC_URL", bad)]))
            .expect_err(bad)
            .to_string();
        assert!(err.contains("public_url"), "{bad}: {err}");
    }
}
