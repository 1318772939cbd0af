//! Where a request's lines go, sans-IO: upstream's file names, set directories and roll
//! periods, with every path component a request supplies checked first.
//!
//! - `logger(app, server, file, format)`: `<app>/<server>/<app>.<server>[_<file>]_<strftime(format)>.log`.
//! - `loggerbyInfo(info)`: `<app>/[<set>/]<server>/<stem><concat><time>[.log]`, the stem
//!   `<app>.<server>[<concat><file>]` with the app-name prefix, else `<file>`; the set level
//!   is `setName+setArea+setGroup` (`setName+setArea` when the group is `*`) when
//!   `setdivision` has three non-empty parts, else nothing.
//! - A roll type (`[N]day`, `[N]hour`, `[N]minute`, from `sLogType` or the server's
//!   `/tars/log/logtype` override) names the file by the start of its period, periods being
//!   whole multiples of N days/hours/minutes since the epoch (TarsCpp's `LogType`), formatted
//!   with the request's format or, for an override, the canonical `%Y%m%d`, `%Y%m%d%H`,
//!   `%Y%m%d%H%M`. Without one, the file is named by `strftime(format)` of the time itself.
//! - Times are formatted in local time, as TarsCpp's `tm2str`.
//!
//! `bHasSquareBracket` changes nothing visible: upstream's loggers have every header flag
//! off, and the brackets only wrap those headers.

use std::fmt::Write as _;

use chrono::format::{Item, StrftimeItems};
use chrono::{Local, TimeZone};

/// Longest component (app, server, file, set) a request may name.
pub const MAX_COMPONENT: usize = 128;
/// Longest strftime format.
pub const MAX_FORMAT: usize = 64;
/// Longest concatenation string and separator.
pub const MAX_JOINER: usize = 16;
/// Longest file name (the file system's limit).
pub const MAX_FILE_NAME: usize = 255;

/// The file name of trace lines (`loggerbyInfo` with this `sFilename`).
pub const TRACE_FILE: &str = "_t_trace_";
/// The app trace lines are filed under.
pub const TRACE_APP: &str = "_tars_";
/// The server trace lines are filed under.
pub const TRACE_SERVER: &str = "_trace_";
/// Trace lines longer than this are dropped (upstream's bound).
pub const TRACE_MAX_LINE: usize = 1_000_000;

/// Why a request was refused: nothing of it is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// A required component is empty.
    #[error("{0} is empty")]
    Empty(&'static str),
    /// Longer than allowed.
    #[error("{0} is longer than {1} bytes")]
    TooLong(&'static str, usize),
    /// `/` or `\`.
    #[error("{0} contains a path separator")]
    Separator(&'static str),
    /// `..`, or `.` alone.
    #[error("{0} contains `..` or is `.`")]
    Dots(&'static str),
    /// NUL or another control character.
    #[error("{0} contains a control character")]
    Control(&'static str),
    /// The strftime format does not parse.
    #[error("the time format is invalid")]
    BadFormat,
}

/// Checks one path component a request supplies (`what` names it in the error).
pub fn check_component(what: &'static str, s: &str) -> Result<(), PathError> {
    if s.is_empty() {
        return Err(PathError::Empty(what));
    }
    check_text(what, s, MAX_COMPONENT)?;
    if s == "." || s.contains("..") {
        return Err(PathError::Dots(what));
    }
    Ok(())
}

/// What may go into a file name without being a component of its own (file, concatenation
/// string, the formatted time): may be empty; no separators, control characters.
fn check_text(what: &'static str, s: &str, max: usize) -> Result<(), PathError> {
    if s.len() > max {
        return Err(PathError::TooLong(what, max));
    }
    if s.contains(['/', '\\']) {
        return Err(PathError::Separator(what));
    }
    if s.chars().any(char::is_control) {
        return Err(PathError::Control(what));
    }
    Ok(())
}

/// A roll period unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// `day`, canonical format `%Y%m%d`.
    Day,
    /// `hour`, `%Y%m%d%H`.
    Hour,
    /// `minute`, `%Y%m%d%H%M`.
    Minute,
}

impl Unit {
    fn seconds(self) -> i64 {
        match self {
            Unit::Day => 86_400,
            Unit::Hour => 3_600,
            Unit::Minute => 60,
        }
    }

    /// The canonical format of the unit.
    pub fn format(self) -> &'static str {
        match self {
            Unit::Day => "%Y%m%d",
            Unit::Hour => "%Y%m%d%H",
            Unit::Minute => "%Y%m%d%H%M",
        }
    }
}

/// A roll type: every `n` units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roll {
    /// The unit.
    pub unit: Unit,
    /// How many units a period lasts (at least 1).
    pub n: u32,
}

/// Largest N of `[N]day|hour|minute` we take (about 27 years of days).
const MAX_ROLL_N: u32 = 10_000;

impl Roll {
    /// Upstream's `getLogType`: lower-cased, the first of `day`, `hour`, `minute` found, N the
    /// digits before it (1, 1, 10 when none or not all digits; 0 counts as 1). `None` for an
    /// empty or unrecognised type.
    pub fn parse(log_type: &str) -> Option<Roll> {
        let lower = log_type.to_ascii_lowercase();
        let (unit, pos, default) = if let Some(p) = lower.find("day") {
            (Unit::Day, p, 1)
        } else if let Some(p) = lower.find("hour") {
            (Unit::Hour, p, 1)
        } else if let Some(p) = lower.find("minute") {
            (Unit::Minute, p, 10)
        } else {
            return None;
        };
        let digits = &lower[..pos];
        let n = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            digits.parse::<u64>().map_or(MAX_ROLL_N, |n| n.min(u64::from(MAX_ROLL_N)) as u32)
        } else {
            default
        };
        Some(Roll { unit, n: n.max(1) })
    }

    fn period(&self) -> i64 {
        self.unit.seconds() * i64::from(self.n)
    }

    /// The start of the period `t` (seconds since the epoch) falls in.
    pub fn start(&self, t: i64) -> i64 {
        t.div_euclid(self.period()) * self.period()
    }
}

/// A parsed strftime format; parsing checks it once, formatting cannot fail.
#[derive(Debug, Clone)]
pub struct TimeFormat {
    items: Vec<Item<'static>>,
}

impl TimeFormat {
    /// Parses `format` (at most [`MAX_FORMAT`] bytes).
    pub fn parse(format: &str) -> Result<TimeFormat, PathError> {
        if format.len() > MAX_FORMAT {
            return Err(PathError::TooLong("format", MAX_FORMAT));
        }
        let mut items = Vec::new();
        for item in StrftimeItems::new(format) {
            match item {
                Item::Error => return Err(PathError::BadFormat),
                other => items.push(other.to_owned()),
            }
        }
        Ok(TimeFormat { items })
    }

    /// `t` (seconds since the epoch) in local time, formatted.
    pub fn format(&self, t: i64) -> Result<String, PathError> {
        let when = Local.timestamp_opt(t, 0).earliest().ok_or(PathError::BadFormat)?;
        let mut out = String::new();
        write!(out, "{}", when.format_with_items(self.items.iter())).map_err(|_| PathError::BadFormat)?;
        Ok(out)
    }
}

/// One log file family: a directory under the root and a name stem, rolled by time.
#[derive(Debug, Clone)]
pub struct Target {
    /// Directory components under the log root, each checked.
    pub dir: Vec<String>,
    /// The name before the concatenation string and the time.
    pub stem: String,
    /// Between the stem and the time (`_` for `logger`).
    pub concat: String,
    /// The time format.
    pub format: TimeFormat,
    /// The roll type, when there is one.
    pub roll: Option<Roll>,
    /// Whether the name ends in `.log`.
    pub suffix: bool,
}

impl Target {
    /// `logger(app, server, file, format)`: `hourly` when the server is in
    /// `/tars/log/format<hour>`.
    pub fn logger(app: &str, server: &str, file: &str, format: &str, hourly: bool) -> Result<Target, PathError> {
        check_component("app", app)?;
        check_component("server", server)?;
        if !file.is_empty() {
            check_component("file", file)?;
        }
        let format = if hourly { Unit::Hour.format() } else { format };
        let stem = if file.is_empty() { format!("{app}.{server}") } else { format!("{app}.{server}_{file}") };
        Ok(Target {
            dir: vec![app.to_owned(), server.to_owned()],
            stem,
            concat: "_".to_owned(),
            format: TimeFormat::parse(format)?,
            roll: None,
            suffix: true,
        })
    }

    /// `loggerbyInfo(info)`, its fields given one by one; `hourly` as for [`Target::logger`],
    /// `type_override` the `/tars/log/logtype` type for `app.server.file`, if any.
    pub fn by_info(info: &InfoFields<'_>, hourly: bool, type_override: Option<&str>) -> Result<Target, PathError> {
        check_component("app", info.app)?;
        check_component("server", info.server)?;
        if !info.file.is_empty() {
            check_component("file", info.file)?;
        }
        check_text("concatenation string", info.concat, MAX_JOINER)?;
        let mut dir = vec![info.app.to_owned()];
        let set = set_dir(info.set);
        if !set.is_empty() {
            check_component("set", &set)?;
            dir.push(set);
        }
        dir.push(info.server.to_owned());
        let stem = match (info.app_prefix, info.file.is_empty()) {
            (true, true) => format!("{}.{}", info.app, info.server),
            (true, false) => format!("{}.{}{}{}", info.app, info.server, info.concat, info.file),
            (false, _) => info.file.to_owned(),
        };
        let mut format = if hourly { Unit::Hour.format() } else { info.format };
        let roll = match type_override {
            Some(t) => {
                let roll = Roll::parse(t);
                if let Some(r) = roll {
                    format = r.unit.format();
                }
                roll
            }
            None => {
                let roll = Roll::parse(info.log_type);
                if let Some(r) = roll {
                    if format.is_empty() {
                        format = r.unit.format();
                    }
                }
                roll
            }
        };
        Ok(Target {
            dir,
            stem,
            concat: info.concat.to_owned(),
            format: TimeFormat::parse(format)?,
            roll,
            suffix: info.suffix,
        })
    }

    /// The file name at `t` (seconds since the epoch), checked as one component.
    pub fn file_name(&self, t: i64) -> Result<String, PathError> {
        let at = self.roll.map_or(t, |r| r.start(t));
        let time = self.format.format(at)?;
        check_text("formatted time", &time, MAX_FILE_NAME)?;
        let mut name = String::with_capacity(self.stem.len() + self.concat.len() + time.len() + 4);
        name.push_str(&self.stem);
        name.push_str(&self.concat);
        name.push_str(&time);
        if self.suffix {
            name.push_str(".log");
        }
        if name.len() > MAX_FILE_NAME {
            return Err(PathError::TooLong("file name", MAX_FILE_NAME));
        }
        check_text("file name", &name, MAX_FILE_NAME)?;
        if name.is_empty() {
            // No stem, concatenation, time or suffix: the "file" would be the directory.
            return Err(PathError::Empty("file name"));
        }
        if name == "." || name == ".." {
            return Err(PathError::Dots("file name"));
        }
        Ok(name)
    }

    /// The directory and name family, one string: files of one target replace each other
    /// when the period rolls.
    pub fn key(&self) -> String {
        let mut key = self.dir.join("/");
        key.push('/');
        key.push_str(&self.stem);
        key.push('\0');
        key.push_str(&self.concat);
        key.push(if self.suffix { '1' } else { '0' });
        key
    }
}

/// The `LogInfo` fields that name a file.
#[derive(Debug, Clone, Copy)]
pub struct InfoFields<'a> {
    /// `appname`.
    pub app: &'a str,
    /// `servername`.
    pub server: &'a str,
    /// `sFilename`.
    pub file: &'a str,
    /// `sFormat`.
    pub format: &'a str,
    /// `setdivision`.
    pub set: &'a str,
    /// `bHasSufix`.
    pub suffix: bool,
    /// `bHasAppNamePrefix`.
    pub app_prefix: bool,
    /// `sConcatStr`.
    pub concat: &'a str,
    /// `sLogType`.
    pub log_type: &'a str,
}

impl<'a> InfoFields<'a> {
    /// The naming fields of a decoded `LogInfo`.
    pub fn of(info: &'a tars_protocol::tars::LogInfo) -> InfoFields<'a> {
        InfoFields {
            app: &info.appname,
            server: &info.servername,
            file: &info.s_filename,
            format: &info.s_format,
            set: &info.setdivision,
            suffix: info.b_has_sufix,
            app_prefix: info.b_has_app_name_prefix,
            concat: &info.s_concat_str,
            log_type: &info.s_log_type,
        }
    }
}

/// Upstream's `getSetGoodFormat`: `name.area.group` → `nameareagroup`, `namearea` when the
/// group is `*`; anything but three non-empty parts → empty (no set level).
pub fn set_dir(division: &str) -> String {
    let parts: Vec<&str> = division.split('.').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        [name, area, "*"] => format!("{name}{area}"),
        [name, area, group] => format!("{name}{area}{group}"),
        _ => String::new(),
    }
}

/// Splits an override list (`a.b|c.d;e,f`) as upstream's `sepstr(.., "|;,")`.
pub fn split_list(list: &str) -> impl Iterator<Item = &str> {
    list.split(['|', ';', ',']).map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn info<'a>(app: &'a str, server: &'a str, file: &'a str) -> InfoFields<'a> {
        InfoFields {
            app,
            server,
            file,
            format: "%Y%m%d",
            set: "",
            suffix: true,
            app_prefix: true,
            concat: "_",
            log_type: "",
        }
    }

    /// 2024-05-01 13:59:59 local time.
    fn at() -> i64 {
        Local.with_ymd_and_hms(2024, 5, 1, 13, 59, 59).unwrap().timestamp()
    }

    #[test]
    fn logger_names() {
        let t = Target::logger("App", "Server", "biz", "%Y%m%d", false).unwrap();
        assert_eq!(t.dir, ["App", "Server"]);
        assert_eq!(t.file_name(at()).unwrap(), "App.Server_biz_20240501.log");
        let t = Target::logger("App", "Server", "", "%Y%m%d", true).unwrap();
        assert_eq!(t.file_name(at()).unwrap(), "App.Server_2024050113.log");
        let t = Target::logger("tars_dyeing", "dyeing", "roll", "%Y%m%d", false).unwrap();
        assert_eq!(t.file_name(at()).unwrap(), "tars_dyeing.dyeing_roll_20240501.log");
    }

    #[test]
    fn by_info_names() {
        let mut i = info("App", "Server", "biz");
        i.set = "mtt.sz.1";
        i.concat = "-";
        i.suffix = false;
        let t = Target::by_info(&i, false, None).unwrap();
        assert_eq!(t.dir, ["App", "mttsz1", "Server"]);
        assert_eq!(t.file_name(at()).unwrap(), "App.Server-biz-20240501");
        i.set = "mtt.sz.*";
        i.app_prefix = false;
        let t = Target::by_info(&i, false, None).unwrap();
        assert_eq!(t.dir, ["App", "mttsz", "Server"]);
        assert_eq!(t.file_name(at()).unwrap(), "biz-20240501");
        i.set = "mtt..x";
        assert_eq!(Target::by_info(&i, false, None).unwrap().dir, ["App", "Server"]);
    }

    #[test]
    fn a_name_with_nothing_in_it_is_refused() {
        // No app prefix, no file, no concatenation, an empty format, no suffix: found by the
        // log_request fuzz target.
        let mut i = info("App", "Server", "");
        (i.app_prefix, i.concat, i.format, i.suffix) = (false, "", "", false);
        let t = Target::by_info(&i, false, None).unwrap();
        assert_eq!(t.file_name(at()), Err(PathError::Empty("file name")));
    }

    #[test]
    fn roll_types() {
        assert_eq!(Roll::parse("day"), Some(Roll { unit: Unit::Day, n: 1 }));
        assert_eq!(Roll::parse("2Hour"), Some(Roll { unit: Unit::Hour, n: 2 }));
        assert_eq!(Roll::parse("minute"), Some(Roll { unit: Unit::Minute, n: 10 }));
        assert_eq!(Roll::parse("0minute"), Some(Roll { unit: Unit::Minute, n: 1 }));
        assert_eq!(Roll::parse("x5minute"), Some(Roll { unit: Unit::Minute, n: 10 }));
        assert_eq!(Roll::parse("99999999999999999999day").unwrap().n, MAX_ROLL_N);
        assert_eq!(Roll::parse("week"), None);
        assert_eq!(Roll::parse(""), None);
        let mut i = info("App", "Server", "biz");
        i.log_type = "10minute";
        i.format = "%Y%m%d%H%M";
        let t = Target::by_info(&i, false, None).unwrap();
        let base = Local.with_ymd_and_hms(2024, 5, 1, 13, 0, 0).unwrap().timestamp();
        assert_eq!(t.file_name(base + 59 * 60 + 59).unwrap(), "App.Server_biz_202405011350.log");
        // The server's override wins, with the canonical format.
        let t = Target::by_info(&i, false, Some("hour")).unwrap();
        assert_eq!(t.file_name(base + 30 * 60).unwrap(), "App.Server_biz_2024050113.log");
        // An empty format with a type takes the type's.
        i.format = "";
        i.log_type = "day";
        assert_eq!(Target::by_info(&i, false, None).unwrap().file_name(at()).unwrap(), "App.Server_biz_20240501.log");
    }

    #[test]
    fn hostile_components_are_refused() {
        for bad in ["..", ".", "a/b", "a\\b", "a\0b", "a\nb", "", "../x", "x/..", &"a".repeat(200)] {
            assert!(Target::logger(bad, "S", "", "%Y", false).is_err(), "{bad:?}");
            assert!(Target::logger("A", bad, "", "%Y", false).is_err(), "{bad:?}");
            if !bad.is_empty() {
                assert!(Target::logger("A", "S", bad, "%Y", false).is_err(), "{bad:?}");
            }
            let mut i = info("A", "S", "f");
            let set = format!("{bad}.b.c");
            i.set = &set;
            if bad.contains(['/', '\\', '\0', '\n']) || bad.len() > 100 {
                assert!(Target::by_info(&i, false, None).is_err(), "{bad:?}");
            }
        }
        // A format that makes a separator or dots, or does not parse.
        let t = Target::logger("A", "S", "", "%Y/%m", false).unwrap();
        assert_eq!(t.file_name(at()), Err(PathError::Separator("formatted time")));
        assert_eq!(Target::logger("A", "S", "", "%Q%", false).err(), Some(PathError::BadFormat));
        let mut i = info("A", "S", "f");
        i.concat = "/";
        assert!(Target::by_info(&i, false, None).is_err());
        let mut i = info("", "", "..");
        i.app_prefix = false;
        assert!(Target::by_info(&i, false, None).is_err());
    }

    #[test]
    fn lists() {
        assert_eq!(split_list(" a.b|c.d;;e,f ").collect::<Vec<_>>(), ["a.b", "c.d", "e", "f"]);
    }
}
