//! Times and durations as people read them: "3 min ago" with the exact time on hover (and in
//! the `<time>` element's `datetime`), "1 min 12 s" for a duration.
//!
//! A page is rendered against the server's clock, which the document carries
//! (`<meta name="grappe-now">`) so that hydration computes the same words; once hydrated, the
//! clock follows the browser's every 30 s and the exact times switch from UTC to the reader's
//! time zone: their setting (an IANA name, read by the browser's `Intl`), else the browser's.
//! Exports and the audit log keep UTC: only what people read changes.

use leptos::prelude::*;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use crate::api::session::Me;
use crate::i18n::{Lang, use_lang};

/// The instant relative times are read against (Unix seconds), and whether exact times are
/// shown in the reader's time zone yet (after hydration) or in UTC (the server's page).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    now: RwSignal<i64>,
    local: RwSignal<bool>,
}

impl Clock {
    /// Now, in Unix seconds (tracked: what reads it follows the clock).
    pub fn now(self) -> i64 {
        self.now.get()
    }
}

/// The name of the meta element carrying the server's clock into the document.
pub const NOW_META: &str = "grappe-now";

/// Provides the clock to the app: the server's time on both sides of hydration, then, in the
/// browser, its own time every 30 s.
pub fn provide_clock() {
    let clock = Clock {
        now: RwSignal::new(server_now()),
        local: RwSignal::new(false),
    };
    provide_context(clock);
    Effect::new(move |_| {
        clock.local.set(true);
        clock.now.set(browser_now());
        set_interval(
            move || clock.now.set(browser_now()),
            std::time::Duration::from_secs(30),
        );
    });
}

#[cfg(feature = "ssr")]
fn server_now() -> i64 {
    // The shell put the same value in the document (its meta element).
    use_context::<ServerNow>().map_or_else(|| OffsetDateTime::now_utc().unix_timestamp(), |n| n.0)
}

#[cfg(not(feature = "ssr"))]
fn server_now() -> i64 {
    document()
        .query_selector(&format!("meta[name=\"{NOW_META}\"]"))
        .ok()
        .flatten()
        .and_then(|m| m.get_attribute("content"))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(browser_now)
}

/// Now as a page reads it: the app's clock (tracked), or this side's own clock outside the app.
pub fn reading_now(clock: Option<Clock>) -> i64 {
    clock.map_or_else(browser_now, Clock::now)
}

/// The server's clock when it began the response (the shell's meta element and the page agree).
#[derive(Debug, Clone, Copy)]
pub struct ServerNow(pub i64);

#[cfg(feature = "hydrate")]
#[allow(clippy::cast_possible_truncation)]
fn browser_now() -> i64 {
    (js_sys::Date::now() / 1000.0) as i64
}

#[cfg(not(feature = "hydrate"))]
fn browser_now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// The reader's offset from UTC at `at`: in `zone` (their setting, an IANA name) when the
/// browser knows it, else in the browser's own zone; UTC on the server.
#[cfg(feature = "hydrate")]
#[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
fn reader_offset(at: OffsetDateTime, zone: Option<&str>) -> UtcOffset {
    let ms = at.unix_timestamp() as f64 * 1000.0;
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms));
    zone.and_then(|z| zone_offset(&date, z)).unwrap_or_else(|| {
        let minutes = date.get_timezone_offset();
        UtcOffset::from_whole_seconds(-(minutes as i32) * 60).unwrap_or(UtcOffset::UTC)
    })
}

/// `zone`'s offset at `date` as the browser's `Intl` names it (`GMT+09:00`); none for a zone
/// the browser does not know (its constructor throws a `RangeError`, caught here).
#[cfg(feature = "hydrate")]
fn zone_offset(date: &js_sys::Date, zone: &str) -> Option<UtcOffset> {
    use js_sys::{Array, Function, Object, Reflect};
    use wasm_bindgen::JsCast;
    let options = Object::new();
    Reflect::set(&options, &"timeZone".into(), &zone.into()).ok()?;
    Reflect::set(&options, &"timeZoneName".into(), &"longOffset".into()).ok()?;
    let intl = Reflect::get(&js_sys::global(), &"Intl".into()).ok()?;
    let class: Function = Reflect::get(&intl, &"DateTimeFormat".into())
        .ok()?
        .dyn_into()
        .ok()?;
    let format: js_sys::Intl::DateTimeFormat =
        Reflect::construct(&class, &Array::of2(&"en-US".into(), &options))
            .ok()?
            .unchecked_into();
    format.format_to_parts(date).iter().find_map(|part| {
        let kind = Reflect::get(&part, &"type".into()).ok()?.as_string()?;
        if kind != "timeZoneName" {
            return None;
        }
        gmt_offset(&Reflect::get(&part, &"value".into()).ok()?.as_string()?)
    })
}

#[cfg(not(feature = "hydrate"))]
fn reader_offset(_at: OffsetDateTime, _zone: Option<&str>) -> UtcOffset {
    UtcOffset::UTC
}

/// An offset as `Intl` names it: `GMT+09:00`, `GMT-03:30`, `GMT` for UTC.
pub fn gmt_offset(name: &str) -> Option<UtcOffset> {
    let rest = name.strip_prefix("GMT")?;
    if rest.is_empty() {
        return Some(UtcOffset::UTC);
    }
    let (sign, hm) = match rest.as_bytes().first()? {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => return None,
    };
    let (h, m) = hm.split_once(':').unwrap_or((hm, "0"));
    let (h, m): (i8, i8) = (h.parse().ok()?, m.parse().ok()?);
    UtcOffset::from_hms(sign * h, sign * m, 0).ok()
}

/// Reads an RFC 3339 time (`2026-11-28T04:26:18.518997Z`).
pub fn parse(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text.trim(), &Rfc3339).ok()
}

/// The exact time to the second: `2026-11-28 04:26:18 UTC`, or with the reader's offset.
pub fn exact(at: OffsetDateTime, offset: UtcOffset) -> String {
    let t = at.to_offset(offset);
    let zone = if offset == UtcOffset::UTC {
        "UTC".to_owned()
    } else {
        let (h, m, _) = offset.as_hms();
        format!(
            "{}{:02}:{:02}",
            if offset.is_negative() { '-' } else { '+' },
            h.abs(),
            m.abs()
        )
    };
    format!(
        "{}-{:02}-{:02} {:02}:{:02}:{:02} {zone}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A duration in words, to two units at most: `12 s`, `1 min 12 s`, `2 h 5 min`, `3 d 4 h`.
pub fn duration(seconds: f64, lang: Lang) -> String {
    if seconds < 10.0 {
        let s = (seconds.max(0.0) * 10.0).round() / 10.0;
        return format!("{s} s");
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let s = seconds.round() as u64;
    let day = if lang == Lang::Fr { "j" } else { "d" };
    let two = |big: u64, big_unit: &str, small: u64, small_unit: &str| {
        if small == 0 {
            format!("{big} {big_unit}")
        } else {
            format!("{big} {big_unit} {small} {small_unit}")
        }
    };
    match s {
        0..60 => format!("{s} s"),
        60..3600 => two(s / 60, "min", s % 60, "s"),
        3600..86_400 => two(s / 3600, "h", s % 3600 / 60, "min"),
        _ => two(s / 86_400, day, s % 86_400 / 3600, "h"),
    }
}

/// How a time is told relative to now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rel {
    /// "3 min ago" (an event).
    #[default]
    Ago,
    /// "for 3 min" (a state that still holds).
    For,
}

/// `at` told against `now`: "just now", "3 min ago", "in 2 min", "for 1 h 5 min".
pub fn relative(at: OffsetDateTime, now: i64, rel: Rel, lang: Lang) -> String {
    let d = now - at.unix_timestamp();
    let fr = lang == Lang::Fr;
    #[allow(clippy::cast_precision_loss)]
    let span = |d: i64| duration(coarse(d.unsigned_abs()) as f64, lang);
    match (rel, d) {
        (_, ..-30) => {
            if fr {
                format!("dans {}", span(d))
            } else {
                format!("in {}", span(d))
            }
        }
        (Rel::Ago, -30..45) => (if fr { "à l'instant" } else { "just now" }).to_owned(),
        (Rel::Ago, _) if fr => format!("il y a {}", span(d)),
        (Rel::Ago, _) => format!("{} ago", span(d)),
        (Rel::For, _) if fr => format!("depuis {}", span(d)),
        (Rel::For, _) => format!("for {}", span(d)),
    }
}

/// Seconds rounded as people tell an age: to the second under a minute, then to the minute,
/// then to the hour past a day.
fn coarse(s: u64) -> u64 {
    match s {
        0..60 => s,
        60..86_400 => s / 60 * 60,
        _ => s / 3600 * 3600,
    }
}

/// A time as people read it: relative, live; exact on hover; machine-readable in `datetime`.
/// Text that is not an RFC 3339 time is shown as it is.
#[component]
pub fn When(#[prop(into)] at: String, #[prop(optional)] rel: Rel) -> impl IntoView {
    let Some(t) = parse(&at) else {
        return view! { <span>{at}</span> }.into_any();
    };
    let lang = use_lang();
    let clock = use_context::<Clock>();
    let zone = use_context::<Me>().and_then(|m| m.time_zone);
    let now = move || reading_now(clock);
    let offset = move || {
        if clock.is_some_and(|c| c.local.get()) {
            reader_offset(t, zone.as_deref())
        } else {
            UtcOffset::UTC
        }
    };
    view! {
        <time class="when" datetime=at title=move || exact(t, offset())>
            {move || relative(t, now(), rel, lang)}
        </time>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> OffsetDateTime {
        parse(text).expect("a time")
    }

    #[test]
    fn offsets_read_as_intl_names_them() {
        let hm = |h, m| UtcOffset::from_hms(h, m, 0).ok();
        assert_eq!(gmt_offset("GMT+09:00"), hm(9, 0));
        assert_eq!(gmt_offset("GMT-03:30"), hm(-3, -30));
        assert_eq!(gmt_offset("GMT+5"), hm(5, 0));
        assert_eq!(gmt_offset("GMT"), Some(UtcOffset::UTC));
        assert_eq!(gmt_offset("UTC+1"), None);
        assert_eq!(gmt_offset("GMT*1"), None);
    }

    #[test]
    fn durations_read_in_two_units_at_most() {
        assert_eq!(duration(0.42, Lang::En), "0.4 s");
        assert_eq!(duration(12.0, Lang::En), "12 s");
        assert_eq!(duration(72.0, Lang::En), "1 min 12 s");
        assert_eq!(duration(120.0, Lang::En), "2 min");
        assert_eq!(duration(7500.0, Lang::En), "2 h 5 min");
        assert_eq!(
            duration(3.0 * 86_400.0 + 4.0 * 3600.0 + 59.0, Lang::En),
            "3 d 4 h"
        );
        assert_eq!(duration(3.0 * 86_400.0, Lang::Fr), "3 j");
    }

    #[test]
    fn times_read_relative_to_now() {
        let t = at("2026-11-28T04:26:18.518997Z");
        let now = t.unix_timestamp();
        assert_eq!(relative(t, now + 10, Rel::Ago, Lang::En), "just now");
        assert_eq!(relative(t, now + 200, Rel::Ago, Lang::En), "3 min ago");
        assert_eq!(relative(t, now + 200, Rel::Ago, Lang::Fr), "il y a 3 min");
        assert_eq!(
            relative(t, now + 3 * 3600 + 120, Rel::For, Lang::En),
            "for 3 h 2 min"
        );
        assert_eq!(
            relative(t, now + 3 * 3600 + 120, Rel::For, Lang::Fr),
            "depuis 3 h 2 min"
        );
        assert_eq!(
            relative(t, now + 2 * 86_400 + 3 * 3600 + 59, Rel::Ago, Lang::En),
            "2 d 3 h ago"
        );
        assert_eq!(relative(t, now - 125, Rel::Ago, Lang::En), "in 2 min");
    }

    #[test]
    fn exact_times_drop_the_microseconds_and_name_the_zone() {
        let t = at("2026-11-28T04:26:18.518997Z");
        assert_eq!(exact(t, UtcOffset::UTC), "2026-11-28 04:26:18 UTC");
        let paris = UtcOffset::from_hms(1, 0, 0).expect("offset");
        assert_eq!(exact(t, paris), "2026-11-28 05:26:18 +01:00");
        let minus = UtcOffset::from_hms(-3, -30, 0).expect("offset");
        assert_eq!(exact(t, minus), "2026-11-28 00:56:18 -03:30");
        assert!(parse("not a time").is_none());
    }
}
