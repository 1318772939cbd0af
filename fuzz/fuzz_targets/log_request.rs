//! tarslog's file naming (`tars_log::naming`) over arbitrary `logger` parameters and
//! `LogInfo`s: a `LogInfo` decoded from the bytes with the generated codec, and fields cut
//! from the bytes (NUL, separators, `..` and non-ASCII included). Naming never panics, and a
//! target and file name it accepts always make a path under the log root: no `..` or `.`
//! component, no NUL, no separator inside a component, exactly the target's directories and
//! one file name below the root.
#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;
use tars_log::naming::{InfoFields, Target};
use tars_proto::codec::Struct;
use tars_protocol::tars::LogInfo;

const ROOT: &str = "/usr/local/app/tars/remote_app_log";

/// Pieces of the input, split at 0xFF (never in UTF-8), each made text lossily.
fn fields(data: &[u8]) -> Vec<String> {
    data.split(|b| *b == 0xFF).map(|s| String::from_utf8_lossy(s).into_owned()).collect()
}

fn check(target: Result<Target, tars_log::naming::PathError>, t: i64) {
    let Ok(target) = target else { return };
    let _ = target.key();
    let Ok(name) = target.file_name(t) else { return };
    let root = Path::new(ROOT);
    let mut path = root.to_path_buf();
    for part in target.dir.iter().chain([&name]) {
        assert!(!part.is_empty() && part != "." && part != "..", "component {part:?}");
        assert!(!part.contains(['/', '\\', '\0']), "component {part:?}");
        path.push(part);
    }
    assert!(path.starts_with(root), "{}", path.display());
    let below: Vec<Component<'_>> = path.components().skip(root.components().count()).collect();
    assert_eq!(below.len(), target.dir.len() + 1, "{}", path.display());
    assert!(below.iter().all(|c| matches!(c, Component::Normal(_))), "{}", path.display());
}

fuzz_target!(|data: &[u8]| {
    let (flags, rest) = data.split_first().map_or((0, &[][..]), |(f, r)| (*f, r));
    let (t, rest) = match rest.split_first_chunk::<8>() {
        Some((t, rest)) => (i64::from_le_bytes(*t), rest),
        None => (1_765_000_000, rest),
    };
    // Most times in a sane range (chrono refuses far ones, which is a refusal, not a panic).
    let t = if flags & 0x80 == 0 { t.rem_euclid(4_000_000_000) } else { t };
    let hourly = flags & 1 != 0;
    let f = fields(rest);
    let get = |i: usize| f.get(i).map_or("", String::as_str);
    check(Target::logger(get(0), get(1), get(2), get(3), hourly), t);
    let info = InfoFields {
        app: get(0),
        server: get(1),
        file: get(2),
        format: get(3),
        set: get(4),
        suffix: flags & 2 != 0,
        app_prefix: flags & 4 != 0,
        concat: get(5),
        log_type: get(6),
    };
    let type_override = (flags & 8 != 0).then(|| get(7));
    check(Target::by_info(&info, hourly, type_override), t);
    // The struct as `loggerbyInfo` decodes it.
    if let Ok(info) = LogInfo::decode(data) {
        let fields = InfoFields::of(&info);
        check(Target::by_info(&fields, hourly, None), t);
        check(Target::logger(&info.appname, &info.servername, &info.s_filename, &info.s_format, hourly), t);
    }
});
