//! Time as tarsstat and tarsproperty see it: 5-minute windows and the labels upstream writes
//! for them (upstream `StatServer/StatServer.cpp`, `getTimeInfo`).
//!
//! Every service reads the time through a [`Clock`] so tests can move it by hand: the labels,
//! the hourly tables and the retention cut-off all depend on local time, and a test that waits
//! for midnight is not a test.
//!
//! Upstream labels a window by its *end*, computed when the flush runs (`getTimeInfo`): take
//! `t` = the end, step back one minute when `t` falls on the hour, and write local date and
//! `HHMM` of `t`, with minute 59 written as `60`. So data received 10:00–10:05 is `1005` in
//! hour table 10, 09:55–10:00 is `0960` in hour table 09, and 23:55–00:00 is `2360` in the
//! previous day's table 23. TarsWeb's monitor pages read these labels, so we keep them exactly;
//! unlike upstream we compute them from the window the data arrived in, not from the flush time
//! (upstream's late flush can put a window's data under the next label).

use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{Datelike, Days, NaiveDate, NaiveDateTime, TimeZone, Timelike};

/// Length of one statistics window in seconds: upstream's `insertInterval` of 5 minutes, which
/// is also its minimum, and the granularity of the `f_tflag` labels TarsWeb expects.
pub const WINDOW_SECS: i64 = 300;

/// The earliest instant we convert to a calendar date: earlier ones are clamped so every date
/// has a 4-digit year and table names keep their fixed width.
const MIN_UNIX: i64 = 0;
/// The latest instant we convert (9999-12-30 00:00:00 UTC): with any UTC offset the local year
/// still has 4 digits.
const MAX_UNIX: i64 = 253_402_128_000;
/// The largest UTC offset a clock may have: chrono's fixed offsets stop short of a day.
const MAX_OFFSET: i32 = 86_399;

/// Where a service gets the time. Cheap to clone, `Send + Sync`: every thread of a service
/// (IO shards, flushers, the retention timer) holds a clone.
///
/// [`Clock::system`] is the real time in the machine's local timezone. [`Clock::manual`] is for
/// tests: its time only moves when [`Clock::set`] or [`Clock::advance`] is called, and every
/// clone sees the move, so a test can drive a running service across an hour or a midnight.
#[derive(Clone)]
pub struct Clock {
    source: Source,
}

#[derive(Clone)]
enum Source {
    System,
    Manual(Arc<Manual>),
}

/// The state shared by the clones of a manual clock.
struct Manual {
    now: AtomicI64,
    offset: AtomicI32,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            Source::System => f.write_str("Clock(system)"),
            Source::Manual(m) => write!(
                f,
                "Clock(manual, now={}, utc_offset={})",
                m.now.load(Ordering::Relaxed),
                m.offset.load(Ordering::Relaxed)
            ),
        }
    }
}

impl Clock {
    /// The real clock: `SystemTime` and the local timezone (`TZ`, `/etc/localtime`), as
    /// upstream's `localtime_r` uses, so our table names match what upstream would create.
    pub fn system() -> Clock {
        Clock { source: Source::System }
    }

    /// A clock for tests, standing at `unix_secs` in a timezone `utc_offset_secs` east of UTC
    /// (clamped to less than a day). It never moves by itself.
    pub fn manual(unix_secs: i64, utc_offset_secs: i32) -> Clock {
        let offset = utc_offset_secs.clamp(-MAX_OFFSET, MAX_OFFSET);
        Clock {
            source: Source::Manual(Arc::new(Manual { now: AtomicI64::new(unix_secs), offset: AtomicI32::new(offset) })),
        }
    }

    /// True for a clock made by [`Clock::manual`].
    pub fn is_manual(&self) -> bool {
        matches!(self.source, Source::Manual(_))
    }

    /// Moves a manual clock (and all its clones) to `unix_secs`. The system clock cannot be
    /// moved: the call is ignored with a warning, because a service must never believe it
    /// changed the real time.
    pub fn set(&self, unix_secs: i64) {
        match &self.source {
            Source::Manual(m) => m.now.store(unix_secs, Ordering::SeqCst),
            Source::System => tracing::warn!(unix_secs, "Clock::set on the system clock ignored"),
        }
    }

    /// Moves a manual clock forward by `secs` (backward when negative). Ignored, with a
    /// warning, on the system clock.
    pub fn advance(&self, secs: i64) {
        match &self.source {
            Source::Manual(m) => {
                let _ = m.now.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| Some(n.saturating_add(secs)));
            }
            Source::System => tracing::warn!(secs, "Clock::advance on the system clock ignored"),
        }
    }

    /// The current time in seconds since the Unix epoch.
    pub fn now_unix(&self) -> i64 {
        match &self.source {
            Source::System => chrono::Utc::now().timestamp(),
            Source::Manual(m) => m.now.load(Ordering::SeqCst),
        }
    }

    /// The window the current time falls in.
    pub fn window(&self) -> Window {
        Window::containing(self.now_unix())
    }

    /// The local wall-clock time of `unix` (clamped to years 1970–9999).
    pub fn local(&self, unix: i64) -> NaiveDateTime {
        let unix = unix.clamp(MIN_UNIX, MAX_UNIX);
        let utc = |t: i64| chrono::DateTime::from_timestamp(t, 0).map(|d| d.naive_utc()).unwrap_or_default();
        match &self.source {
            Source::System => match chrono::Local.timestamp_opt(unix, 0).earliest() {
                Some(d) => d.naive_local(),
                None => utc(unix),
            },
            Source::Manual(m) => utc(unix + i64::from(m.offset.load(Ordering::Relaxed))),
        }
    }

    /// The local date of `unix` as `YYYYMMDD`, the form used in hourly table names.
    pub fn local_date(&self, unix: i64) -> String {
        yyyymmdd(self.local(unix).date())
    }

    /// Today's local date as `YYYYMMDD`.
    pub fn today(&self) -> String {
        self.local_date(self.now_unix())
    }
}

/// One 5-minute window, `[start, start + 300)` in Unix seconds. Reports are bucketed by the
/// window they arrive in, and a window's rows are written under its [`Label`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    /// First second of the window; always a multiple of [`WINDOW_SECS`].
    pub start: i64,
}

impl Window {
    /// The window holding `unix` (also for times before the epoch: the start never exceeds it).
    pub fn containing(unix: i64) -> Window {
        Window { start: unix.div_euclid(WINDOW_SECS) * WINDOW_SECS }
    }

    /// The first second after the window: the instant upstream labels it by.
    pub fn end(&self) -> i64 {
        self.start.saturating_add(WINDOW_SECS)
    }

    /// The window right after this one.
    pub fn next(&self) -> Window {
        Window { start: self.end() }
    }

    /// The window right before this one.
    pub fn prev(&self) -> Window {
        Window { start: self.start.saturating_sub(WINDOW_SECS) }
    }

    /// True when `unix` falls in the window.
    pub fn contains(&self, unix: i64) -> bool {
        self.start <= unix && unix < self.end()
    }

    /// Upstream's label for this window in `clock`'s timezone.
    pub fn label(&self, clock: &Clock) -> Label {
        Label::for_end(self.end(), clock)
    }
}

/// Where and under which `f_tflag` a window's rows are written, exactly as upstream's
/// `getTimeInfo` computes it, so TarsWeb and old query servers find them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    /// Local date of the hourly table, `YYYYMMDD`.
    pub table_date: String,
    /// Hour of the hourly table, 0–23.
    pub table_hour: u8,
    /// The `f_date` column value, `YYYY-MM-DD` (same day as `table_date`).
    pub f_date: String,
    /// The `f_tflag` column value, `HHMM`, with minute 59 written as `60`.
    pub tflag: String,
}

impl Label {
    /// The label of the window ending at `end` (Unix seconds): the end itself, one minute
    /// earlier when the end is on the local hour, in local time.
    pub fn for_end(end: i64, clock: &Clock) -> Label {
        let mut local = clock.local(end);
        if local.minute() == 0 && local.second() == 0 {
            local = clock.local(end.saturating_sub(60));
        }
        let minute = match local.minute() {
            59 => 60,
            m => m,
        };
        let date = local.date();
        Label {
            table_date: yyyymmdd(date),
            // `hour()` is always below 24.
            table_hour: u8::try_from(local.hour()).unwrap_or(23),
            f_date: format!("{:04}-{:02}-{:02}", date.year(), date.month(), date.day()),
            tflag: format!("{:02}{minute:02}", local.hour()),
        }
    }

    /// The hourly table this label's rows go to, `<prefix>YYYYMMDDHH`.
    pub fn table_name(&self, prefix: &str) -> String {
        tars_sql::schema::monitor::hourly_table_name(prefix, &self.table_date, self.table_hour)
    }

    /// The `t_ecstatus.lasttime` value upstream writes after a flush, `YYYYMMDD HHMM`
    /// (e.g. `20251126 1005`); it compares as text in label order within a day.
    pub fn lasttime(&self) -> String {
        format!("{} {}", self.table_date, self.tflag)
    }
}

fn yyyymmdd(d: NaiveDate) -> String {
    format!("{:04}{:02}{:02}", d.year(), d.month(), d.day())
}

/// Parses a `YYYYMMDD` date: exactly 8 ASCII digits naming a real calendar day.
pub fn parse_date(date: &str) -> Option<NaiveDate> {
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y = date[0..4].parse().ok()?;
    let m = date[4..6].parse().ok()?;
    let d = date[6..8].parse().ok()?;
    NaiveDate::from_ymd_opt(y, m, d)
}

/// The date `n` days before `date` (`YYYYMMDD`), or `None` when `date` is not a valid date or
/// the result leaves years 1000–9999. Used for the retention cut-off.
pub fn days_before(date: &str, n: u32) -> Option<String> {
    let d = parse_date(date)?.checked_sub_days(Days::new(u64::from(n)))?;
    (1000..=9999).contains(&d.year()).then(|| yyyymmdd(d))
}

/// The date `n` days after `date` (`YYYYMMDD`), or `None` like [`days_before`]. Used to create
/// tomorrow's tables ahead of time; calendar arithmetic, so DST days do not matter.
pub fn days_after(date: &str, n: u32) -> Option<String> {
    let d = parse_date(date)?.checked_add_days(Days::new(u64::from(n)))?;
    (1000..=9999).contains(&d.year()).then(|| yyyymmdd(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix seconds of a UTC date and time.
    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
        NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|d| d.and_hms_opt(h, mi, s))
            .expect("valid test date")
            .and_utc()
            .timestamp()
    }

    fn label_at(clock: &Clock, unix: i64) -> (String, u8, String, String) {
        let l = Window::containing(unix).label(clock);
        (l.table_date, l.table_hour, l.f_date, l.tflag)
    }

    #[test]
    fn containing_aligns_to_five_minutes() {
        let t = utc(2025, 11, 26, 10, 3, 17);
        let w = Window::containing(t);
        assert_eq!(w.start, utc(2025, 11, 26, 10, 0, 0));
        assert_eq!(w.end(), utc(2025, 11, 26, 10, 5, 0));
        assert!(w.contains(t));
        assert!(!w.contains(w.end()));
        assert_eq!(Window::containing(w.start), w);
        assert_eq!(Window::containing(w.end() - 1), w);
        assert_eq!(w.next().start, w.end());
        assert_eq!(w.next().prev(), w);
        assert_eq!(Window::containing(-1).start, -300);
        assert_eq!(Window::containing(-300).start, -300);
        assert_eq!(Window::containing(i64::MAX).end(), i64::MAX);
    }

    #[test]
    fn window_end_inside_the_hour() {
        let c = Clock::manual(0, 0);
        let l = label_at(&c, utc(2025, 11, 26, 10, 2, 0));
        assert_eq!(l, ("20251126".into(), 10, "2025-11-26".into(), "1005".into()));
        let l = label_at(&c, utc(2025, 11, 26, 10, 52, 0));
        assert_eq!(l, ("20251126".into(), 10, "2025-11-26".into(), "1055".into()));
        let label = Window::containing(utc(2025, 11, 26, 10, 2, 0)).label(&c);
        assert_eq!(label.table_name("tars_stat_"), "tars_stat_2025112610");
        assert_eq!(label.lasttime(), "20251126 1005");
    }

    #[test]
    fn window_ending_on_the_hour_belongs_to_the_previous_hour() {
        let c = Clock::manual(0, 0);
        let l = label_at(&c, utc(2025, 11, 26, 9, 57, 0));
        assert_eq!(l, ("20251126".into(), 9, "2025-11-26".into(), "0960".into()));
        let label = Window::containing(utc(2025, 11, 26, 9, 55, 0)).label(&c);
        assert_eq!(label.table_name("tars_property_"), "tars_property_2025112609");
        assert_eq!(label.lasttime(), "20251126 0960");
        // The next window starts the new hour table.
        let l = label_at(&c, utc(2025, 11, 26, 10, 0, 0));
        assert_eq!((l.1, l.3), (10, "1005".into()));
    }

    #[test]
    fn last_window_of_the_day_goes_to_the_previous_days_table() {
        let c = Clock::manual(0, 0);
        let l = label_at(&c, utc(2025, 11, 26, 23, 58, 30));
        assert_eq!(l, ("20251126".into(), 23, "2025-11-26".into(), "2360".into()));
        let l = label_at(&c, utc(2025, 11, 27, 0, 0, 0));
        assert_eq!(l, ("20251127".into(), 0, "2025-11-27".into(), "0005".into()));
    }

    #[test]
    fn month_and_year_rollover() {
        let c = Clock::manual(0, 0);
        let l = label_at(&c, utc(2025, 12, 31, 23, 55, 0));
        assert_eq!(l, ("20251231".into(), 23, "2025-12-31".into(), "2360".into()));
        let l = label_at(&c, utc(2026, 1, 1, 0, 1, 0));
        assert_eq!(l, ("20260101".into(), 0, "2026-01-01".into(), "0005".into()));
        let l = label_at(&c, utc(2024, 2, 29, 23, 56, 0));
        assert_eq!(l.0, "20240229");
        assert_eq!(days_before("20260101", 1).as_deref(), Some("20251231"));
        assert_eq!(days_before("20240301", 1).as_deref(), Some("20240229"));
        assert_eq!(days_before("20250301", 1).as_deref(), Some("20250228"));
        assert_eq!(days_before("20250131", 31).as_deref(), Some("20241231"));
        assert_eq!(days_after("20251231", 1).as_deref(), Some("20260101"));
        assert_eq!(days_after("20250228", 1).as_deref(), Some("20250301"));
    }

    #[test]
    fn utc_offset_moves_hour_and_day() {
        // UTC+8: 15:55–16:00 UTC is 23:55–24:00 local, the previous local day's 2360.
        let c = Clock::manual(0, 8 * 3600);
        let l = label_at(&c, utc(2025, 11, 26, 15, 56, 0));
        assert_eq!(l, ("20251126".into(), 23, "2025-11-26".into(), "2360".into()));
        let l = label_at(&c, utc(2025, 11, 26, 16, 1, 0));
        assert_eq!(l, ("20251127".into(), 0, "2025-11-27".into(), "0005".into()));
        assert_eq!(c.local_date(utc(2025, 11, 26, 16, 0, 0)), "20251127");
        // UTC-5: 04:00 UTC on the 27th is still the 26th locally.
        let c = Clock::manual(utc(2025, 11, 27, 4, 0, 0), -5 * 3600);
        assert_eq!(c.today(), "20251126");
        // A half-hour zone (UTC+5:30): the local hour, not the UTC hour, decides "on the hour".
        let c = Clock::manual(0, 5 * 3600 + 1800);
        let l = label_at(&c, utc(2025, 11, 26, 4, 26, 0)); // 09:56 local, window ends 10:00
        assert_eq!((l.1, l.3), (9, "0960".into()));
        let l = label_at(&c, utc(2025, 11, 26, 4, 56, 0)); // 10:26 local, window ends 10:30
        assert_eq!((l.1, l.3), (10, "1030".into()));
    }

    #[test]
    fn manual_clock_is_shared_by_clones() {
        let c = Clock::manual(1000, 0);
        let d = c.clone();
        c.advance(500);
        assert_eq!(d.now_unix(), 1500);
        d.set(42);
        assert_eq!(c.now_unix(), 42);
        assert!(c.is_manual());
        assert_eq!(c.window(), Window { start: 0 });
        // Out-of-range offsets are clamped instead of failing later.
        let e = Clock::manual(0, i32::MAX);
        assert_eq!(e.local(0).date(), NaiveDate::from_ymd_opt(1970, 1, 1).expect("date"));
    }

    #[test]
    fn system_clock_reads_real_time_and_ignores_set() {
        let c = Clock::system();
        let before = chrono::Utc::now().timestamp();
        c.set(0);
        c.advance(-1_000_000);
        let now = c.now_unix();
        assert!(now >= before && now < before + 60, "{now} vs {before}");
        assert!(!c.is_manual());
        assert_eq!(c.today().len(), 8);
    }

    #[test]
    fn extreme_times_keep_four_digit_years() {
        let c = Clock::manual(0, -MAX_OFFSET);
        assert_eq!(c.local_date(i64::MIN).len(), 8);
        assert_eq!(c.local_date(i64::MAX).len(), 8);
        let l = Window::containing(i64::MAX).label(&c);
        assert_eq!(l.table_date.len(), 8);
        assert_eq!(l.tflag.len(), 4);
    }

    #[test]
    fn date_parsing_rejects_non_dates() {
        assert!(parse_date("20251126").is_some());
        for bad in ["2025112", "202511260", "2025-1126", "20251332", "20250230", "２０２５１１２６", "+2025112"]
        {
            assert!(parse_date(bad).is_none(), "{bad}");
            assert!(days_before(bad, 1).is_none(), "{bad}");
        }
        assert!(days_before("10000101", 1).is_none());
        assert!(days_after("99991231", 1).is_none());
    }
}
