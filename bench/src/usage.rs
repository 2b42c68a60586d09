//! A process's memory and CPU from Linux's `/proc`, read from outside so
//! the gateway needs no instrumentation: `VmRSS`/`VmHWM` from
//! `/proc/PID/status`, user + system time from `/proc/PID/stat` in clock
//! ticks.

use anyhow::{Context as _, anyhow};
use serde::Serialize;

/// One reading.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Usage {
    /// Resident memory now (`VmRSS`).
    pub rss_bytes: u64,
    /// The most resident memory since the process started (`VmHWM`).
    pub peak_rss_bytes: u64,
    /// User + system CPU time since the process started.
    pub cpu_secs: f64,
}

/// Reads the usage of process `pid`.
pub fn read(pid: u32) -> anyhow::Result<Usage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    Ok(Usage {
        rss_bytes: status_kib(&status, "VmRSS:")? * 1024,
        peak_rss_bytes: status_kib(&status, "VmHWM:")? * 1024,
        cpu_secs: cpu_ticks(&stat)? as f64 / clock_ticks() as f64,
    })
}

/// Clock ticks per second (`getconf CLK_TCK`), the unit of `/proc` times.
pub fn clock_ticks() -> u64 {
    rustix::param::clock_ticks_per_second().max(1)
}

/// A `Key:   1234 kB` line of `/proc/PID/status`.
fn status_kib(status: &str, key: &str) -> anyhow::Result<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| anyhow!("no {key} line in /proc status"))
}

/// `utime + stime` of `/proc/PID/stat`: fields 14 and 15, counted after
/// the command name, which is in parentheses and may contain spaces.
fn cpu_ticks(stat: &str) -> anyhow::Result<u64> {
    let after_name = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| anyhow!("malformed /proc stat"))?;
    // After the name, field 3 (state) comes first: utime is the 12th.
    let mut fields = after_name.split_whitespace().skip(11);
    let mut next = || -> anyhow::Result<u64> {
        fields
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| anyhow!("malformed /proc stat"))
    };
    Ok(next()? + next()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_formats() {
        let stat = "1234 (carillon (x) y) S 1 1234 1234 0 -1 4194560 7 0 0 0 150 25 0 0 20 0";
        assert_eq!(cpu_ticks(stat).unwrap(), 175);
        let status = "Name:\tcarillon\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(status_kib(status, "VmHWM:").unwrap(), 20480);
        assert!(status_kib(status, "VmSwap:").is_err());
        assert!(cpu_ticks("no paren").is_err());
    }

    #[test]
    fn reads_this_process() {
        let u = read(std::process::id()).unwrap();
        assert!(u.peak_rss_bytes >= u.rss_bytes && u.rss_bytes > 0, "{u:?}");
    }
}
