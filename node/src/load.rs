//! The host's load: `LoadInfo` from the kernel's own 1/5/15-minute averages (`/proc/loadavg`;
//! upstream sends avg1 and two truncated means of avg1 samples), and the `getNodeLoad` text
//! (upstream runs `top`; here `/proc` is read directly, no shell). Small blocking reads: call
//! from the manager, sync or `tars-node-io` threads, never a shard.

use std::fs;

use tars_protocol::tars::LoadInfo;

/// Parses the first three fields of `/proc/loadavg`.
pub fn parse_loadavg(text: &str) -> Option<(f32, f32, f32)> {
    let mut it = text.split_ascii_whitespace().map(|f| f.parse::<f32>().ok());
    Some((it.next()??, it.next()??, it.next()??))
}

/// The kernel's load averages; zeros when `/proc/loadavg` cannot be read.
pub fn load_info() -> LoadInfo {
    let (avg1, avg5, avg15) =
        fs::read_to_string("/proc/loadavg").ok().and_then(|t| parse_loadavg(&t)).unwrap_or((0.0, 0.0, 0.0));
    LoadInfo { avg1, avg5, avg15, avg_cpu: 0 }
}

/// The `getNodeLoad` answer: load averages, memory totals, and the status lines of `pid`.
pub fn node_load_text(pid: i32) -> String {
    let mut out = String::new();
    if let Ok(t) = fs::read_to_string("/proc/loadavg") {
        out.push_str(&format!("loadavg: {}", t));
    }
    if let Ok(t) = fs::read_to_string("/proc/meminfo") {
        for line in t.lines().filter(|l| {
            ["MemTotal:", "MemFree:", "MemAvailable:", "SwapTotal:", "SwapFree:"].iter().any(|k| l.starts_with(k))
        }) {
            out.push_str(line);
            out.push('\n');
        }
    }
    if pid > 0 {
        match fs::read_to_string(format!("/proc/{pid}/status")) {
            Ok(t) => {
                out.push_str(&format!("process {pid}:\n"));
                for line in t
                    .lines()
                    .filter(|l| ["Name:", "State:", "VmRSS:", "VmSize:", "Threads:"].iter().any(|k| l.starts_with(k)))
                {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            Err(_) => out.push_str(&format!("process {pid}: not running\n")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loadavg_fields() {
        assert_eq!(parse_loadavg("0.52 1.25 2.00 1/234 5678\n"), Some((0.52, 1.25, 2.0)));
        assert_eq!(parse_loadavg("x"), None);
    }
}
