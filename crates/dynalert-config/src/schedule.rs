//! Time windows of scheduled thresholds, evaluated in the schedule's own timezone.

use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Tz;

use crate::text_error::TextError;

/// A daily window `[start, end)` in minutes after local midnight. `end` may be 1440 (`24:00`).
/// When `start > end` the window crosses midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Window {
    pub start: u16,
    pub end: u16,
}

/// Weekdays as a bit set, Monday = bit 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Days(u8);

impl Days {
    pub const ALL: Days = Days(0x7f);

    pub fn from_weekdays(days: &[Weekday]) -> Days {
        Days(
            days.iter()
                .fold(0, |acc, d| acc | 1 << d.num_days_from_monday()),
        )
    }

    /// One bit per weekday, Monday the lowest: the canonical form hashed into digests.
    pub fn bits(self) -> u8 {
        self.0
    }

    pub fn contains(self, day: Weekday) -> bool {
        self.0 & (1 << day.num_days_from_monday()) != 0
    }
}

impl Window {
    /// Parses `HH:MM-HH:MM`. `24:00` is allowed as an end only; an empty window is refused.
    pub fn parse(text: &str) -> Result<Window, TextError> {
        let shape = || TextError::WindowShape(text.to_string());
        let (a, b) = text.trim().split_once('-').ok_or_else(shape)?;
        let start = parse_clock(a.trim(), false).ok_or_else(shape)?;
        let end = parse_clock(b.trim(), true).ok_or_else(shape)?;
        if start == end {
            return Err(TextError::WindowEmpty(text.to_string()));
        }
        Ok(Window { start, end })
    }

    /// Whether the window, on the days given (days of the window's *start*), contains `local`.
    pub fn contains<T: TimeZone>(&self, days: Days, local: &DateTime<T>) -> bool {
        let second = local.num_seconds_from_midnight();
        let (start, end) = (u32::from(self.start) * 60, u32::from(self.end) * 60);
        let today = local.weekday();
        if start < end {
            (start..end).contains(&second) && days.contains(today)
        } else if second >= start {
            days.contains(today)
        } else {
            second < end && days.contains(today.pred())
        }
    }
}

fn parse_clock(text: &str, allow_24: bool) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let h: u16 = h.parse().ok()?;
    let m: u16 = m.parse().ok()?;
    match (h, m) {
        (24, 0) if allow_24 => Some(1440),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

pub fn parse_weekday(text: &str) -> Option<Weekday> {
    Some(match text.trim().to_ascii_lowercase().as_str() {
        "mon" | "monday" => Weekday::Mon,
        "tue" | "tuesday" => Weekday::Tue,
        "wed" | "wednesday" => Weekday::Wed,
        "thu" | "thursday" => Weekday::Thu,
        "fri" | "friday" => Weekday::Fri,
        "sat" | "saturday" => Weekday::Sat,
        "sun" | "sunday" => Weekday::Sun,
        _ => return None,
    })
}

pub fn parse_timezone(text: &str) -> Result<Tz, TextError> {
    text.trim()
        .parse::<Tz>()
        .map_err(|_| TextError::Timezone(text.to_string()))
}

/// The start of the next minute after `at`: windows are minute-aligned, so a schedule's
/// result can only change there.
pub fn next_minute(at: DateTime<Utc>) -> DateTime<Utc> {
    let floored = at
        - Duration::nanoseconds(i64::from(at.nanosecond()))
        - Duration::seconds(i64::from(at.second()));
    floored + Duration::minutes(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Tz> {
        tz.with_ymd_and_hms(y, mo, d, h, mi, s).single().unwrap()
    }

    #[test]
    fn parses_windows() {
        assert_eq!(
            Window::parse("01:00-05:00").unwrap(),
            Window {
                start: 60,
                end: 300
            }
        );
        assert_eq!(
            Window::parse("22:30-24:00").unwrap(),
            Window {
                start: 1350,
                end: 1440
            }
        );
        for bad in [
            "25:00-03:00",
            "1:00",
            "01:00-01:00",
            "24:00-01:00",
            "aa:bb-cc:dd",
            "01:60-02:00",
        ] {
            assert!(Window::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn half_open_boundaries() {
        let w = Window::parse("09:00-18:00").unwrap();
        let utc = Tz::UTC;
        assert!(!w.contains(Days::ALL, &at(utc, 2026, 3, 2, 8, 59, 59)));
        assert!(w.contains(Days::ALL, &at(utc, 2026, 3, 2, 9, 0, 0)));
        assert!(w.contains(Days::ALL, &at(utc, 2026, 3, 2, 17, 59, 59)));
        assert!(!w.contains(Days::ALL, &at(utc, 2026, 3, 2, 18, 0, 0)));
    }

    #[test]
    fn midnight_crossing_uses_the_start_day() {
        // Friday 22:00 to Saturday 02:00 belongs to Friday's window.
        let w = Window::parse("22:00-02:00").unwrap();
        let fri = Days::from_weekdays(&[Weekday::Fri]);
        let utc = Tz::UTC;
        // 2026-03-06 is a Friday.
        assert!(w.contains(fri, &at(utc, 2026, 3, 6, 22, 0, 0)));
        assert!(w.contains(fri, &at(utc, 2026, 3, 7, 1, 59, 59)));
        assert!(!w.contains(fri, &at(utc, 2026, 3, 7, 2, 0, 0)));
        assert!(!w.contains(fri, &at(utc, 2026, 3, 7, 22, 0, 0)));
        assert!(
            !w.contains(fri, &at(utc, 2026, 3, 6, 1, 0, 0)),
            "Friday 01:00 started on Thursday"
        );
    }

    #[test]
    fn wall_clock_across_dst() {
        // Berlin springs forward on 2026-03-29 at 02:00 → 03:00; the window follows wall time.
        let w = Window::parse("01:00-05:00").unwrap();
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let before = Utc.with_ymd_and_hms(2026, 3, 28, 23, 59, 0).unwrap(); // 00:59 CET
        let inside = Utc.with_ymd_and_hms(2026, 3, 29, 0, 0, 0).unwrap(); // 01:00 CET
        let late = Utc.with_ymd_and_hms(2026, 3, 29, 2, 59, 0).unwrap(); // 04:59 CEST
        let after = Utc.with_ymd_and_hms(2026, 3, 29, 3, 0, 0).unwrap(); // 05:00 CEST
        assert!(!w.contains(Days::ALL, &before.with_timezone(&berlin)));
        assert!(w.contains(Days::ALL, &inside.with_timezone(&berlin)));
        assert!(w.contains(Days::ALL, &late.with_timezone(&berlin)));
        assert!(!w.contains(Days::ALL, &after.with_timezone(&berlin)));
    }

    #[test]
    fn next_minute_is_aligned() {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 10, 15, 42).unwrap();
        assert_eq!(
            next_minute(t),
            Utc.with_ymd_and_hms(2026, 1, 1, 10, 16, 0).unwrap()
        );
    }
}
