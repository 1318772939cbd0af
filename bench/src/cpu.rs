//! Process CPU time as the kernel accounts it: `utime + stime` from `/proc/<pid>/stat`, in
//! clock ticks (`sysconf(_SC_CLK_TCK)`, read from the auxiliary vector; 100 Hz on Linux).
//! Threads that have exited are included, so this covers a whole server process.

use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};

/// Clock ticks per second of `/proc` times.
pub fn clock_ticks() -> u64 {
    rustix::param::clock_ticks_per_second()
}

/// User plus system CPU time of process `pid` (or `"self"`).
pub fn cpu_time(pid: &str) -> Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_stat(&text, clock_ticks()).with_context(|| format!("parsing {path}"))
}

/// CPU time of this process.
pub fn self_cpu_time() -> Result<Duration> {
    cpu_time("self")
}

/// CPU time of each thread of this process: `(tid, name, utime + stime)`. Threads that have
/// exited are gone from the list (their time stays in [`self_cpu_time`]).
pub fn thread_times() -> Vec<(u32, String, Duration)> {
    let mut out = Vec::new();
    let ticks = clock_ticks();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return out };
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        let name = stat.find('(').zip(stat.rfind(')')).map(|(a, b)| stat[a + 1..b].to_owned()).unwrap_or_default();
        if let Ok(t) = parse_stat(&stat, ticks) {
            out.push((tid, name, t));
        }
    }
    out
}

/// Parses fields 14 (`utime`) and 15 (`stime`) of a `stat` line. The command name (field 2)
/// may hold spaces and parentheses, so fields are counted after its last `)`.
pub fn parse_stat(text: &str, ticks_per_sec: u64) -> Result<Duration> {
    let rest = &text[text.rfind(')').ok_or_else(|| anyhow!("no ')' in stat line"))? + 1..];
    // `rest` starts at field 3 (state); utime is field 14, i.e. index 11 here.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .ok_or_else(|| anyhow!("stat line too short"))?
            .parse()
            .map_err(|e| anyhow!("field {}: {e}", i + 3))
    };
    let ticks = get(11)? + get(12)?;
    let tps = ticks_per_sec.max(1);
    Ok(Duration::from_secs(ticks / tps) + Duration::from_nanos((ticks % tps) * 1_000_000_000 / tps))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let line = "1234 (a b) c)) S 1 2 3 4 5 6 7 8 9 10 250 150 0 0 20 0 3 0 100 0 0";
        assert_eq!(parse_stat(line, 100).unwrap(), Duration::from_millis(4000));
        assert!(cpu_time("self").is_ok());
    }
}
