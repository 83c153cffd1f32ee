//! UTC timestamps with microsecond precision, written as fixed-width RFC 3339 text
//! (`2026-11-28T09:30:00.123456Z`) so that text order is time order in SQLite.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

const FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// A UTC instant truncated to microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

/// The current time, truncated to microseconds.
pub fn now() -> Timestamp {
    Timestamp::from_datetime(OffsetDateTime::now_utc())
}

impl TryFrom<String> for Timestamp {
    type Error = time::error::Parse;

    /// A stored timestamp (database rows).
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl Timestamp {
    pub fn from_datetime(at: OffsetDateTime) -> Self {
        let at = at.to_offset(UtcOffset::UTC);
        let micros = at.microsecond();
        // Cannot fail: the value comes from a valid nanosecond field.
        let truncated = at.replace_microsecond(micros).unwrap_or(at);
        Self(truncated)
    }

    /// Parses the fixed-width form, or any RFC 3339 text (converted to UTC).
    ///
    /// # Errors
    /// The parse error when `text` is neither.
    pub fn parse(text: &str) -> Result<Self, time::error::Parse> {
        match PrimitiveDateTime::parse(text, FORMAT) {
            Ok(at) => Ok(Self(at.assume_utc())),
            Err(_) => OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .map(Self::from_datetime),
        }
    }

    pub fn as_datetime(&self) -> OffsetDateTime {
        self.0
    }

    /// Microseconds since the Unix epoch.
    pub fn unix_micros(&self) -> i64 {
        i64::try_from(self.0.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
    }

    /// Seconds since the Unix epoch.
    pub fn unix_seconds(&self) -> i64 {
        self.0.unix_timestamp()
    }

    pub fn saturating_sub(&self, d: std::time::Duration) -> Self {
        let d = time::Duration::try_from(d).unwrap_or(time::Duration::MAX);
        Self(self.0.checked_sub(d).unwrap_or(self.0))
    }
}

/// Seconds since the epoch as Kubernetes shows times: RFC 3339 in UTC, whole seconds
/// (`2026-11-28T09:30:00Z`); `-` for 0, Kubernetes' "no time".
pub fn fmt_unix_seconds(t: i64) -> String {
    if t == 0 {
        return "-".to_owned();
    }
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.format(FORMAT) {
            Ok(text) => f.write_str(&text),
            Err(_) => Err(fmt::Error),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_fixed_width_utc_microseconds_and_parses_back() {
        let at = Timestamp::parse("2026-11-28T09:30:00.123456Z").expect("parse");
        assert_eq!(at.to_string(), "2026-11-28T09:30:00.123456Z");
        let other = Timestamp::parse("2026-11-28T10:30:00.5+01:00").expect("rfc3339");
        assert_eq!(other.to_string(), "2026-11-28T09:30:00.500000Z");
    }

    #[test]
    fn unix_seconds_read_like_kubernetes_times() {
        assert_eq!(fmt_unix_seconds(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(fmt_unix_seconds(0), "-");
    }

    #[test]
    fn now_has_no_sub_microsecond_part() {
        let at = now();
        assert_eq!(at.as_datetime().nanosecond() % 1_000, 0);
        assert_eq!(Timestamp::parse(&at.to_string()).expect("round trip"), at);
    }
}
