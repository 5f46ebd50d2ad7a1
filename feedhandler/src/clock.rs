//! ITCH time (ns since midnight, US/Eastern local) to ns since the Unix epoch.
//!
//! The offset is resolved once per session date, not per message: US DST changes happen at
//! 02:00 local, so a date has at most two offsets, split at that hour.

use chrono::{NaiveDate, NaiveTime, Offset, TimeZone};
use chrono_tz::America::New_York;

const NS_PER_SEC: i64 = 1_000_000_000;
const NS_PER_HOUR: u64 = 3_600 * 1_000_000_000;

/// Converts ITCH timestamps of one session date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionClock {
    date: NaiveDate,
    /// Epoch ns of the date's local midnight as if it were UTC.
    naive_midnight_ns: i64,
    /// UTC offset (seconds east) before and after `switch_ns` (ns since local midnight).
    offset_before: i64,
    offset_after: i64,
    switch_ns: u64,
}

impl SessionClock {
    pub fn new(date: NaiveDate) -> SessionClock {
        let offset_at = |h: u32| {
            let t = date.and_time(NaiveTime::from_hms_opt(h, 0, 0).unwrap_or_default());
            // `earliest` resolves the repeated hour of a fall-back day; there is no gap at 00/12h.
            New_York
                .from_local_datetime(&t)
                .earliest()
                .map(|dt| i64::from(dt.offset().fix().local_minus_utc()))
                .unwrap_or(-5 * 3600)
        };
        let naive_midnight_ns = date
            .and_time(NaiveTime::MIN)
            .and_utc()
            .timestamp_nanos_opt()
            .unwrap_or(0);
        SessionClock {
            date,
            naive_midnight_ns,
            offset_before: offset_at(0),
            offset_after: offset_at(12),
            switch_ns: 2 * NS_PER_HOUR,
        }
    }

    /// The session date in New York of a UTC instant (e.g. a pcap frame time).
    pub fn date_of_epoch_ns(ns: u64) -> NaiveDate {
        let utc = chrono::DateTime::from_timestamp_nanos(ns as i64);
        utc.with_timezone(&New_York).date_naive()
    }

    pub fn date(&self) -> NaiveDate {
        self.date
    }

    /// ITCH ns since local midnight to ns since the Unix epoch (0 before 1970 is clamped).
    #[inline]
    pub fn to_epoch_ns(&self, itch_ns: u64) -> u64 {
        let offset = if itch_ns < self.switch_ns {
            self.offset_before
        } else {
            self.offset_after
        };
        let v = self.naive_midnight_ns + itch_ns as i64 - offset * NS_PER_SEC;
        v.max(0) as u64
    }

    /// The inverse: epoch ns to ITCH ns since local midnight of this date.
    pub fn to_itch_ns(&self, epoch_ns: u64) -> u64 {
        let guess = epoch_ns as i64 - self.naive_midnight_ns + self.offset_after * NS_PER_SEC;
        let offset = if (guess.max(0) as u64) < self.switch_ns {
            self.offset_before
        } else {
            self.offset_after
        };
        (epoch_ns as i64 - self.naive_midnight_ns + offset * NS_PER_SEC).max(0) as u64
    }
}

/// Finds a `YYYYMMDD` or `MMDDYYYY` date in a file name (Nasdaq names files both ways).
pub fn date_from_name(name: &str) -> Option<NaiveDate> {
    let digits: Vec<char> = name.chars().collect();
    for w in 0..digits.len().saturating_sub(7) {
        let s: String = digits[w..w + 8].iter().collect();
        if !s.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        if let Ok(d) = NaiveDate::parse_from_str(&s, "%Y%m%d") {
            if (1990..2100).contains(&chrono::Datelike::year(&d)) {
                return Some(d);
            }
        }
        if let Ok(d) = NaiveDate::parse_from_str(&s, "%m%d%Y") {
            if (1990..2100).contains(&chrono::Datelike::year(&d)) {
                return Some(d);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    const H: u64 = NS_PER_HOUR;

    #[test]
    fn edt_and_est() {
        // 2023-08-22 09:30 EDT = 13:30 UTC
        let c = SessionClock::new(d(2023, 8, 22));
        assert_eq!(c.to_epoch_ns(9 * H + H / 2), 1_692_711_000 * 1_000_000_000);
        // 2019-12-30 09:30 EST = 14:30 UTC
        let c = SessionClock::new(d(2019, 12, 30));
        assert_eq!(c.to_epoch_ns(9 * H + H / 2), 1_577_716_200 * 1_000_000_000);
    }

    #[test]
    fn both_sides_of_dst_changes() {
        // Spring forward 2024-03-10 02:00 EST -> 03:00 EDT.
        let c = SessionClock::new(d(2024, 3, 10));
        assert_eq!(c.to_epoch_ns(H), 1_710_050_400 * 1_000_000_000); // 01:00 EST = 06:00Z
        assert_eq!(c.to_epoch_ns(4 * H), 1_710_057_600 * 1_000_000_000); // 04:00 EDT = 08:00Z
                                                                         // The session days either side.
        assert_eq!(
            SessionClock::new(d(2024, 3, 8)).to_epoch_ns(9 * H + H / 2),
            1_709_908_200 * 1_000_000_000 // 14:30Z
        );
        assert_eq!(
            SessionClock::new(d(2024, 3, 11)).to_epoch_ns(9 * H + H / 2),
            1_710_163_800 * 1_000_000_000 // 13:30Z
        );
        // Fall back 2024-11-03 02:00 EDT -> 01:00 EST.
        let c = SessionClock::new(d(2024, 11, 3));
        assert_eq!(c.to_epoch_ns(H / 2), 1_730_608_200 * 1_000_000_000); // 00:30 EDT = 04:30Z
        assert_eq!(c.to_epoch_ns(9 * H), 1_730_642_400 * 1_000_000_000); // 09:00 EST = 14:00Z
        let c = SessionClock::new(d(2024, 11, 4));
        assert_eq!(c.to_epoch_ns(9 * H + H / 2), 1_730_730_600 * 1_000_000_000);
        // 14:30Z
    }

    #[test]
    fn inverse_and_dates() {
        let c = SessionClock::new(d(2023, 8, 22));
        let t = 34_199_999_894_278;
        assert_eq!(c.to_itch_ns(c.to_epoch_ns(t)), t);
        assert_eq!(
            SessionClock::date_of_epoch_ns(1_692_711_000_000_000_000),
            d(2023, 8, 22)
        );
        assert_eq!(
            date_from_name("nasdaq-20191230-0930-snippet.itch50"),
            Some(d(2019, 12, 30))
        );
        assert_eq!(
            date_from_name("12302019.NASDAQ_ITCH50.gz"),
            Some(d(2019, 12, 30))
        );
        assert_eq!(date_from_name("foo.pcap"), None);
    }
}
