//! Reads the few `/proc` figures a benchmark reports (proc(5)): a process's
//! resident memory, thread count and CPU time, the machine's kernel memory
//! and accept-queue overflows, and this process's open-files limit. Parsing
//! is pure and unit-tested; the readers are thin wrappers around
//! `fs::read_to_string`. The server's integration tests (`tests/it`)
//! include this file (`#[path]`), so it stays std only.

use std::fs;
use std::io;

/// Clock ticks per second in `/proc/<pid>/stat` (`sysconf(_SC_CLK_TCK)`).
/// Linux fixes this "USER_HZ" at 100 on every architecture it exposes to
/// user space; `getconf CLK_TCK` says 100 here too. Hard-coded so the crate
/// needs no `unsafe` call to `sysconf`.
pub const USER_HZ: u64 = 100;

/// One look at a process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcSample {
    /// Resident set size (`VmRSS`), KiB.
    pub rss_kib: u64,
    /// Number of threads (`Threads`).
    pub threads: u64,
    /// User + system CPU time, clock ticks ([`USER_HZ`] per second).
    pub cpu_ticks: u64,
}

impl ProcSample {
    /// CPU time in seconds.
    pub fn cpu_secs(&self) -> f64 {
        self.cpu_ticks as f64 / USER_HZ as f64
    }
}

/// Samples process `pid` (`"self"` for this one).
pub fn sample(pid: &str) -> io::Result<ProcSample> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let bad = |what| io::Error::new(io::ErrorKind::InvalidData, format!("/proc/{pid}/{what}"));
    let (rss_kib, threads) = parse_status(&status).ok_or_else(|| bad("status"))?;
    let cpu_ticks = parse_stat_cpu(&stat).ok_or_else(|| bad("stat"))?;
    Ok(ProcSample {
        rss_kib,
        threads,
        cpu_ticks,
    })
}

/// Kernel memory that grows with connections, machine-wide, in KiB:
/// `Slab + KernelStack + PageTables` from `/proc/meminfo`. Socket
/// structures live in the slab; each server thread adds a kernel stack and
/// page tables for its user stack.
pub fn kernel_mem_kib() -> io::Result<u64> {
    let text = fs::read_to_string("/proc/meminfo")?;
    parse_kernel_mem(&text)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "/proc/meminfo"))
}

/// `ListenOverflows` from `/proc/net/netstat` (machine-wide, since boot):
/// connections dropped because a listener's accept queue was full, each
/// costing its client a SYN retransmit (1 s, then 3 s ...).
pub fn listen_overflows() -> io::Result<u64> {
    let text = fs::read_to_string("/proc/net/netstat")?;
    parse_netstat(&text, "TcpExt", "ListenOverflows")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "/proc/net/netstat"))
}

/// Soft limit on open files of this process (`Max open files` in
/// `/proc/self/limits`); `None` if unlimited or unreadable.
pub fn open_files_limit() -> Option<u64> {
    let text = fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_files_limit(&text)
}

/// `(VmRSS KiB, Threads)` from `/proc/<pid>/status`.
fn parse_status(text: &str) -> Option<(u64, u64)> {
    let (mut rss, mut threads) = (None, None);
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("VmRSS:") {
            rss = v.trim().trim_end_matches("kB").trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("Threads:") {
            threads = v.trim().parse().ok();
        }
    }
    Some((rss?, threads?))
}

/// `utime + stime` (fields 14 and 15) from `/proc/<pid>/stat`. The command
/// name in field 2 may hold spaces and parentheses, so fields are counted
/// after its last `)`.
fn parse_stat_cpu(text: &str) -> Option<u64> {
    let after = &text[text.rfind(')')? + 1..];
    let mut fields = after.split_whitespace().skip(11); // field 3 is index 0
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn parse_kernel_mem(text: &str) -> Option<u64> {
    let mut sum = 0;
    let mut found = 0;
    for line in text.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if matches!(name, "Slab" | "KernelStack" | "PageTables") {
            sum += value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()?;
            found += 1;
        }
    }
    (found == 3).then_some(sum)
}

/// A counter from the `Prefix: names` / `Prefix: values` line pairs of
/// `/proc/net/netstat`.
fn parse_netstat(text: &str, prefix: &str, name: &str) -> Option<u64> {
    let mut lines = text.lines();
    while let Some(names) = lines.next() {
        let values = lines.next()?;
        let (Some(names), Some(values)) = (
            names.strip_prefix(prefix).and_then(|l| l.strip_prefix(':')),
            values
                .strip_prefix(prefix)
                .and_then(|l| l.strip_prefix(':')),
        ) else {
            continue;
        };
        let at = names.split_whitespace().position(|n| n == name)?;
        return values.split_whitespace().nth(at)?.parse().ok();
    }
    None
}

fn parse_open_files_limit(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status() {
        let text = "Name:\ttickstream\nVmPeak:\t  9000 kB\nVmRSS:\t    4242 kB\nThreads:\t7\n";
        assert_eq!(parse_status(text), Some((4242, 7)));
        assert_eq!(parse_status("Name:\tx\n"), None);
    }

    #[test]
    fn stat() {
        let text =
            "1234 (tick) (stream)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 37 0 0 20 0 3 0 5 0 0";
        assert_eq!(parse_stat_cpu(text), Some(287));
        assert_eq!(parse_stat_cpu("1234 (x) S 1"), None);
    }

    #[test]
    fn meminfo() {
        let text = "MemTotal: 100 kB\nSlab:  300 kB\nKernelStack:  20 kB\nPageTables: 5 kB\n";
        assert_eq!(parse_kernel_mem(text), Some(325));
        assert_eq!(parse_kernel_mem("Slab: 1 kB\n"), None);
    }

    #[test]
    fn limits() {
        let text =
            "Limit                     Soft Limit           Hard Limit           Units     \n\
            Max open files            20000                20000                files     \n";
        assert_eq!(parse_open_files_limit(text), Some(20000));
        let text = "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_open_files_limit(text), None);
    }

    #[test]
    fn netstat() {
        let text = "TcpExt: SyncookiesSent ListenOverflows\nTcpExt: 3 17\n\
            IpExt: InNoRoutes\nIpExt: 0\n";
        assert_eq!(parse_netstat(text, "TcpExt", "ListenOverflows"), Some(17));
        assert_eq!(parse_netstat(text, "IpExt", "InNoRoutes"), Some(0));
        assert_eq!(parse_netstat(text, "TcpExt", "Nope"), None);
        assert_eq!(parse_netstat(text, "MPTcpExt", "ListenOverflows"), None);
    }

    #[test]
    fn this_process() {
        let s = sample("self").unwrap();
        assert!(s.rss_kib > 0 && s.threads >= 1);
        assert!(kernel_mem_kib().unwrap() > 0);
        assert!(listen_overflows().is_ok());
    }
}
