//! `GRAPPE_*` environment variables over the file's settings: each known variable sets its
//! setting, an unknown one is an error naming it (a typo never goes unnoticed).

use std::collections::HashMap;

use super::*;

impl Settings {
    /// Applies the `GRAPPE_*` variables of `env`.
    pub(super) fn apply_env(&mut self, env: &HashMap<String, String>) -> Result<(), ConfigError> {
        let bad = |var: &str, reason: String| ConfigError::Env {
            var: var.to_owned(),
            reason,
        };
        for (var, value) in env {
            match var.as_str() {
                "GRAPPE_LISTEN" => {
                    self.listen = value
                        .parse()
                        .map_err(|e| bad(var, format!("{e} (expected e.g. 127.0.0.1:8080)")))?;
                }
                "GRAPPE_DATABASE" => self.database = PathBuf::from(value),
                "GRAPPE_SITE_ROOT" => self.site_root = PathBuf::from(value),
                "GRAPPE_MANIFEST_MIRROR" => {
                    self.manifest_mirror = Some(value.clone()).filter(|v| !v.trim().is_empty());
                }
                "GRAPPE_SECURE_COOKIES" => {
                    self.secure_cookies = parse_bool(value).map_err(|r| bad(var, r))?
                }
                "GRAPPE_TRUSTED_PROXIES" => {
                    self.trusted_proxies =
                        parse_cidrs(value.split(',')).map_err(|r| bad(var, r))?;
                }
                "GRAPPE_TRUST_FORWARDED_FOR" => {
                    return Err(bad(
                        var,
                        "replaced by GRAPPE_TRUSTED_PROXIES (the proxies' CIDRs, comma-separated): \
                         the left-most X-Forwarded-For entry it trusted is written by the client"
                            .to_owned(),
                    ));
                }
                "GRAPPE_ALLOWED_ORIGINS" => self.allowed_origins = comma_list(value),
                "GRAPPE_ALLOWED_HOSTS" => self.allowed_hosts = comma_list(value),
                "GRAPPE_PUBLIC_URL" => {
                    self.public_url = Some(value.trim().to_owned()).filter(|v| !v.is_empty());
                }
                "GRAPPE_LOG_FORMAT" => {
                    self.log_format = match value.as_str() {
                        "pretty" => LogFormat::Pretty,
                        "json" => LogFormat::Json,
                        other => return Err(bad(var, format!("{other:?} is not pretty or json"))),
                    };
                }
                "GRAPPE_SESSION_IDLE_TIMEOUT" => {
                    self.session.idle_timeout = parse_duration(value).map_err(|r| bad(var, r))?;
                }
                "GRAPPE_SESSION_ABSOLUTE_LIFETIME" => {
                    self.session.absolute_lifetime =
                        parse_duration(value).map_err(|r| bad(var, r))?;
                }
                "GRAPPE_SESSION_REAUTH_AFTER" => {
                    self.session.reauth_after = parse_duration(value).map_err(|r| bad(var, r))?;
                }
                "GRAPPE_CLUSTERS" => {
                    self.clusters = parse_clusters(value).map_err(|r| bad(var, r))?;
                }
                // Read elsewhere: the log filter, the config file path, and the variables of the
                // project's scripts, lab and tests.
                "GRAPPE_LOG" | "GRAPPE_CONFIG" | "GRAPPE_CACHE" | "GRAPPE_LAB_DIR"
                | "GRAPPE_LAB_BIN" | "GRAPPE_MANIFESTS" | "GRAPPE_DATA" => {}
                other if other.starts_with("GRAPPE_TEST_") || other.starts_with("GRAPPE_E2E_") => {}
                other => {
                    return Err(bad(
                        other,
                        "unknown setting (see the README's configuration reference)".to_owned(),
                    ));
                }
            }
        }
        Ok(())
    }
}
