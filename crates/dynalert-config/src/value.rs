//! The value grammar of a threshold: numbers, `disable`, `N:severity`, schedules and expiry.

use std::fmt;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::schedule::{self, Days, Window};
use crate::text_error::TextError;
use crate::yaml::{Node, NodeKind, Pos};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

impl Severity {
    pub fn parse(text: &str) -> Result<Severity, TextError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "critical" => Ok(Severity::Critical),
            "warning" => Ok(Severity::Warning),
            "info" => Ok(Severity::Info),
            _ => Err(TextError::Severity(text.to_string())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One concrete setting: a number (optionally with a severity) or disabled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Setting {
    Value {
        value: f64,
        severity: Option<Severity>,
    },
    Disabled,
}

/// Values hash by their bits, for the configuration digest.
impl std::hash::Hash for Setting {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self {
            Setting::Value { value, severity } => {
                value.to_bits().hash(state);
                severity.hash(state);
            }
            Setting::Disabled => u64::MAX.hash(state),
        }
    }
}

/// A scheduled threshold: the first override whose window contains the instant wins.
#[derive(Clone, Debug, PartialEq, Hash)]
pub struct Schedule {
    pub timezone: Tz,
    pub overrides: Vec<Override>,
}

#[derive(Clone, Debug, PartialEq, Hash)]
pub struct Override {
    pub window: Window,
    pub days: Days,
    pub setting: Setting,
}

/// What a file says about one key: a base setting, maybe a schedule, maybe an expiry.
#[derive(Clone, Debug, PartialEq, Hash)]
pub struct Threshold {
    pub base: Setting,
    /// Schedule, expiry and reason are rare; keeping them out of line makes the common
    /// threshold 24 bytes (a 5,000-tenant tree holds 150,000 of them).
    extra: Option<Box<ThresholdExtra>>,
}

#[derive(Clone, Debug, PartialEq, Hash)]
struct ThresholdExtra {
    schedule: Option<Schedule>,
    expires: Option<DateTime<Utc>>,
    reason: Option<String>,
}

impl Threshold {
    pub fn new(
        base: Setting,
        schedule: Option<Schedule>,
        expires: Option<DateTime<Utc>>,
        reason: Option<String>,
    ) -> Self {
        let extra = (schedule.is_some() || expires.is_some() || reason.is_some()).then(|| {
            Box::new(ThresholdExtra {
                schedule,
                expires,
                reason,
            })
        });
        Threshold { base, extra }
    }

    pub fn fixed(setting: Setting) -> Self {
        Threshold {
            base: setting,
            extra: None,
        }
    }

    pub fn schedule(&self) -> Option<&Schedule> {
        self.extra.as_ref().and_then(|e| e.schedule.as_ref())
    }

    pub fn expires(&self) -> Option<DateTime<Utc>> {
        self.extra.as_ref().and_then(|e| e.expires)
    }

    pub fn reason(&self) -> Option<&str> {
        self.extra.as_ref().and_then(|e| e.reason.as_deref())
    }

    pub fn is_expired(&self, at: DateTime<Utc>) -> bool {
        self.expires().is_some_and(|e| at >= e)
    }

    /// The setting in force at `at` (expiry is the caller's concern: it decides the fallback).
    pub fn setting_at(&self, at: DateTime<Utc>) -> Setting {
        let Some(schedule) = self.schedule() else {
            return self.base;
        };
        let local = at.with_timezone(&schedule.timezone);
        schedule
            .overrides
            .iter()
            .find(|o| o.window.contains(o.days, &local))
            .map_or(self.base, |o| o.setting)
    }
}

/// A problem with a value, at a position inside it.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueError {
    pub pos: Pos,
    pub message: String,
}

fn err<T>(pos: Pos, message: impl Into<String>) -> Result<T, ValueError> {
    Err(ValueError {
        pos,
        message: message.into(),
    })
}

/// Parses a scalar setting: `80`, `"80"`, `"5:critical"`, `disable`.
pub fn parse_setting(text: &str) -> Result<Setting, TextError> {
    let trimmed = text.trim();
    if is_disable_word(trimmed) {
        return Ok(Setting::Disabled);
    }
    let (number, severity) = match trimmed.rsplit_once(':') {
        Some((n, s)) => (n.trim(), Some(Severity::parse(s)?)),
        None => (trimmed, None),
    };
    let value = parse_number(number)?;
    Ok(Setting::Value { value, severity })
}

pub fn is_disable_word(text: &str) -> bool {
    ["disable", "disabled", "off"]
        .iter()
        .any(|w| text.eq_ignore_ascii_case(w))
}

fn parse_number(text: &str) -> Result<f64, TextError> {
    let not_number = || TextError::Number(text.to_string());
    // Rust accepts "inf"/"nan"; a threshold must be a finite number.
    if !text.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '-' | '+' | '.')) {
        return Err(not_number());
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(not_number()),
    }
}

/// Parses an RFC 3339 instant, e.g. `2026-12-01T00:00:00Z`.
pub fn parse_instant(text: &str) -> Result<DateTime<Utc>, TextError> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| TextError::Instant {
            text: text.to_string(),
            reason: e.to_string(),
        })
}

fn scalar_setting(node: &Node) -> Result<Setting, ValueError> {
    match &node.kind {
        NodeKind::Scalar { .. } if node.is_null() => err(
            node.pos,
            "no value given (expected a number, \"N:severity\" or \"disable\")",
        ),
        NodeKind::Scalar { text, .. } => parse_setting(text).map_err(|message| ValueError {
            pos: node.pos,
            message: message.to_string(),
        }),
        _ => err(
            node.pos,
            format!(
                "expected a number, \"N:severity\" or \"disable\", found a {}",
                node.kind_name()
            ),
        ),
    }
}

const THRESHOLD_FIELDS: &[&str] = &[
    "value",
    "default",
    "severity",
    "timezone",
    "overrides",
    "expires",
    "reason",
];
const OVERRIDE_FIELDS: &[&str] = &["window", "days", "value"];

/// Parses any threshold value: a scalar, or a mapping with `value`/`default`, `severity`,
/// `timezone`, `overrides`, `expires`, `reason`. Returns every problem found, not just the first.
pub fn parse_threshold(node: &Node) -> Result<Threshold, Vec<ValueError>> {
    let NodeKind::Map(entries) = &node.kind else {
        return scalar_setting(node)
            .map(Threshold::fixed)
            .map_err(|e| vec![e]);
    };
    let mut errors = Vec::new();
    let mut base = None;
    let mut severity = None;
    let mut timezone = None;
    let mut overrides = None;
    let mut expires = None;
    let mut reason = None;
    for (key, value) in entries {
        let name = key.as_str().unwrap_or_default();
        let result: Result<(), ValueError> = (|| {
            match name {
                "value" | "default" => {
                    if base.is_some() {
                        return err(key.pos, "give either \"value\" or \"default\", not both");
                    }
                    base = Some(scalar_setting(value)?);
                }
                "severity" => {
                    severity = Some(Severity::parse(value.as_str().unwrap_or_default()).map_err(
                        |message| ValueError {
                            pos: value.pos,
                            message: message.to_string(),
                        },
                    )?)
                }
                "timezone" => {
                    timezone = Some(
                        schedule::parse_timezone(value.as_str().unwrap_or_default()).map_err(
                            |message| ValueError {
                                pos: value.pos,
                                message: message.to_string(),
                            },
                        )?,
                    )
                }
                "overrides" => overrides = Some(parse_overrides(value)?),
                "expires" => {
                    expires = Some(parse_instant(value.as_str().unwrap_or_default()).map_err(
                        |message| ValueError {
                            pos: value.pos,
                            message: message.to_string(),
                        },
                    )?)
                }
                "reason" => reason = value.as_str().map(str::to_string),
                other => {
                    return err(
                        key.pos,
                        format!(
                            "unknown field {other:?}{}; allowed: {}",
                            crate::names::suggestion(other, THRESHOLD_FIELDS.iter().copied()),
                            THRESHOLD_FIELDS.join(", ")
                        ),
                    );
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            errors.push(e);
        }
    }
    if base.is_none() && errors.is_empty() {
        errors.push(ValueError {
            pos: node.pos,
            message: "a threshold mapping needs \"value\" (or \"default\" for a schedule)".into(),
        });
    }
    if timezone.is_some() && overrides.is_none() && errors.is_empty() {
        errors.push(ValueError {
            pos: node.pos,
            message: "\"timezone\" only applies to \"overrides\", and there are none".into(),
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut base = base.expect("checked above");
    if let Some(sev) = severity {
        base = with_severity(base, sev);
    }
    let schedule = overrides.map(|mut overrides: Vec<Override>| {
        if let Some(sev) = severity {
            for o in &mut overrides {
                o.setting = with_severity(o.setting, sev);
            }
        }
        Schedule {
            timezone: timezone.unwrap_or(Tz::UTC),
            overrides,
        }
    });
    Ok(Threshold::new(base, schedule, expires, reason))
}

/// Applies a mapping-level `severity` to settings that did not name their own.
fn with_severity(setting: Setting, sev: Severity) -> Setting {
    match setting {
        Setting::Value {
            value,
            severity: None,
        } => Setting::Value {
            value,
            severity: Some(sev),
        },
        other => other,
    }
}

fn parse_overrides(node: &Node) -> Result<Vec<Override>, ValueError> {
    let NodeKind::Seq(items) = &node.kind else {
        return err(
            node.pos,
            "\"overrides\" must be a list of {window, days, value}",
        );
    };
    items.iter().map(parse_override).collect()
}

fn parse_override(node: &Node) -> Result<Override, ValueError> {
    let NodeKind::Map(entries) = &node.kind else {
        return err(
            node.pos,
            "an override must be a mapping {window, days, value}",
        );
    };
    let mut window = None;
    let mut days = Days::ALL;
    let mut setting = None;
    for (key, value) in entries {
        match key.as_str().unwrap_or_default() {
            "window" => {
                window = Some(Window::parse(value.as_str().unwrap_or_default()).map_err(
                    |message| ValueError {
                        pos: value.pos,
                        message: message.to_string(),
                    },
                )?)
            }
            "days" => days = parse_days(value)?,
            "value" => setting = Some(scalar_setting(value)?),
            other => {
                return err(
                    key.pos,
                    format!(
                        "unknown override field {other:?}{}; allowed: window, days, value",
                        crate::names::suggestion(other, OVERRIDE_FIELDS.iter().copied())
                    ),
                );
            }
        }
    }
    match (window, setting) {
        (Some(window), Some(setting)) => Ok(Override {
            window,
            days,
            setting,
        }),
        (None, _) => err(node.pos, "override without \"window\""),
        (_, None) => err(node.pos, "override without \"value\""),
    }
}

fn parse_days(node: &Node) -> Result<Days, ValueError> {
    let NodeKind::Seq(items) = &node.kind else {
        return err(node.pos, "\"days\" must be a list such as [sat, sun]");
    };
    let mut days = Vec::new();
    for item in items {
        let text = item.as_str().unwrap_or_default();
        match schedule::parse_weekday(text) {
            Some(d) => days.push(d),
            None => {
                return err(
                    item.pos,
                    format!("unknown day {text:?}: use mon, tue, wed, thu, fri, sat or sun"),
                );
            }
        }
    }
    if days.is_empty() {
        return err(
            node.pos,
            "\"days\" is empty: the override would never apply",
        );
    }
    Ok(Days::from_weekdays(&days))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml;
    use chrono::TimeZone;

    fn threshold(src: &str) -> Result<Threshold, Vec<ValueError>> {
        parse_threshold(&yaml::parse(src).unwrap().unwrap())
    }

    #[test]
    fn scalar_grammar() {
        assert_eq!(
            parse_setting("80"),
            Ok(Setting::Value {
                value: 80.0,
                severity: None
            })
        );
        assert_eq!(
            parse_setting(" 0.5:critical "),
            Ok(Setting::Value {
                value: 0.5,
                severity: Some(Severity::Critical)
            })
        );
        assert_eq!(parse_setting("Disabled"), Ok(Setting::Disabled));
        assert_eq!(parse_setting("off"), Ok(Setting::Disabled));
        assert_eq!(
            parse_setting("eighty"),
            Err(TextError::Number("eighty".into()))
        );
        assert_eq!(
            parse_setting("5:urgent"),
            Err(TextError::Severity("urgent".into()))
        );
        assert_eq!(
            TextError::Severity("urgent".into()).to_string(),
            "unknown severity \"urgent\": use critical, warning or info"
        );
        for bad in ["inf", "NaN", "", "1e999", "true", "5:"] {
            assert!(parse_setting(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn schedule_first_match_wins_and_default_outside() {
        let t = threshold(
            "default: 40\ntimezone: Europe/Berlin\noverrides:\n  - {window: '01:00-05:00', value: 200}\n  - {window: '00:00-24:00', days: [sat, sun], value: disable}\n",
        )
        .unwrap();
        // 2026-03-07 is a Saturday; 02:00 Berlin (01:00 UTC) matches the first window.
        let sat_night = Utc.with_ymd_and_hms(2026, 3, 7, 1, 0, 0).unwrap();
        assert_eq!(
            t.setting_at(sat_night),
            Setting::Value {
                value: 200.0,
                severity: None
            }
        );
        let sat_noon = Utc.with_ymd_and_hms(2026, 3, 7, 11, 0, 0).unwrap();
        assert_eq!(t.setting_at(sat_noon), Setting::Disabled);
        let mon_noon = Utc.with_ymd_and_hms(2026, 3, 9, 11, 0, 0).unwrap();
        assert_eq!(
            t.setting_at(mon_noon),
            Setting::Value {
                value: 40.0,
                severity: None
            }
        );
    }

    #[test]
    fn expiry() {
        let t = threshold("{value: 600, expires: '2026-12-01T00:00:00Z', reason: x}").unwrap();
        assert!(!t.is_expired(Utc.with_ymd_and_hms(2026, 11, 30, 23, 59, 59).unwrap()));
        assert!(t.is_expired(Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()));
        assert_eq!(t.reason(), Some("x"));
    }

    #[test]
    fn mapping_errors_point_inside() {
        let errs = threshold("default: 1\ntimezone: Mars/Olympus\noverrides: []\n").unwrap_err();
        assert_eq!(errs[0].pos.line, 2);
        assert!(errs[0].message.contains("unknown timezone"));
        let errs = threshold("valeu: 1\n").unwrap_err();
        assert!(
            errs[0].message.contains("did you mean \"value\""),
            "{errs:?}"
        );
        let errs = threshold("default: 1\noverrides:\n  - {window: '25:00-03:00', value: 2}\n")
            .unwrap_err();
        assert_eq!(errs[0].pos.line, 3);
    }

    #[test]
    fn severity_field_applies_to_unlabelled_settings() {
        let t = threshold("{value: 5, severity: critical}").unwrap();
        assert_eq!(
            t.base,
            Setting::Value {
                value: 5.0,
                severity: Some(Severity::Critical)
            }
        );
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_errs_without_panic(s in ".*") {
            let _ = parse_setting(&s);
            let _ = Window::parse(&s);
            let _ = parse_instant(&s);
        }

        #[test]
        fn finite_numbers_round_trip(v in -1e12f64..1e12) {
            let parsed = parse_setting(&v.to_string()).unwrap();
            proptest::prop_assert_eq!(parsed, Setting::Value { value: v, severity: None });
        }
    }
}
