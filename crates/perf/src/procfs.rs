//! A process's CPU time and resident memory, from Linux's /proc.

use std::time::Instant;

/// Clock ticks per second in /proc/PID/stat. Linux reports times to user space in
/// USER_HZ, which is 100 on every architecture it supports.
const TICKS_PER_SECOND: f64 = 100.0;

/// Which process to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    /// This process (the load tool itself).
    Me,
    /// Another process, by id (the broker).
    Pid(u32),
}

impl Process {
    fn path(self, file: &str) -> String {
        match self {
            Process::Me => format!("/proc/self/{file}"),
            Process::Pid(pid) => format!("/proc/{pid}/{file}"),
        }
    }

    /// utime + stime in seconds; `None` if the process cannot be read.
    pub fn cpu_seconds(self) -> Option<f64> {
        let stat = std::fs::read_to_string(self.path("stat")).ok()?;
        parse_cpu_ticks(&stat).map(|ticks| ticks as f64 / TICKS_PER_SECOND)
    }

    /// VmRSS in bytes; `None` if the process cannot be read.
    pub fn rss_bytes(self) -> Option<u64> {
        let status = std::fs::read_to_string(self.path("status")).ok()?;
        parse_rss_bytes(&status)
    }

    /// CPU time and memory now.
    pub fn sample(self) -> Sample {
        Sample {
            at: Instant::now(),
            cpu_seconds: self.cpu_seconds(),
            rss_bytes: self.rss_bytes(),
        }
    }
}

/// A process's CPU time and memory at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// When it was taken.
    pub at: Instant,
    /// utime + stime, seconds.
    pub cpu_seconds: Option<f64>,
    /// VmRSS, bytes.
    pub rss_bytes: Option<u64>,
}

impl Sample {
    /// CPU seconds used between `self` and a later sample.
    pub fn cpu_until(&self, later: &Sample) -> Option<f64> {
        Some((later.cpu_seconds? - self.cpu_seconds?).max(0.0))
    }
}

/// utime + stime (fields 14 and 15) of a /proc/PID/stat line, in clock ticks. The
/// command name (field 2) may hold spaces and parentheses, so fields are counted from
/// the last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = stat.rsplit_once(')')?.1;
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    utime.checked_add(stime)
}

/// The VmRSS line of /proc/PID/status, in bytes.
fn parse_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_count_from_the_end_of_the_name() {
        let stat = "1234 (we ird) name) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn rss_is_read_in_kibibytes() {
        let status = "Name:\twarren\nVmPeak:\t 999 kB\nVmRSS:\t    2048 kB\nThreads: 3\n";
        assert_eq!(parse_rss_bytes(status), Some(2 * 1024 * 1024));
        assert_eq!(parse_rss_bytes("Name: x\n"), None);
    }

    #[test]
    fn this_process_can_be_read() {
        assert!(Process::Me.cpu_seconds().is_some());
        assert!(Process::Me.rss_bytes().is_some_and(|rss| rss > 0));
    }
}
