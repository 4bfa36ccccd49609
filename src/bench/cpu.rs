//! CPU time of this process, all threads and the store's writer thread, from `/proc`.
//!
//! Throughput on a shared machine drifts with the other load; CPU time per call does much
//! less, and it says where a round's cores went (the RPC path on the tokio workers, or the
//! single writer), which is what decides whether a change to the store or to the RPC path can
//! help.
use std::time::Instant;

/// Linux reports `/proc` times in USER_HZ, which is 100 on every architecture it supports.
const TICKS_PER_SECOND: u64 = 100;
/// The store's writer thread is named this (see `Store::open`).
const WRITER_THREAD: &str = "cbm-writer";

/// CPU time used so far, in microseconds, and when it was read.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    total_us: u64,
    writer_us: u64,
    at: Instant,
}

/// What a round used between two snapshots.
#[derive(Debug, Clone, Copy, Default)]
pub struct Used {
    /// Cores busy on average (client and server together).
    pub cores: f64,
    /// Process CPU microseconds per completed call.
    pub us_per_call: f64,
    /// Share of the round's wall time the writer thread was on a core.
    pub writer_busy: f64,
}

/// `utime + stime` of one `/proc/.../stat` line, in microseconds; None if unreadable.
fn cpu_us(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: fields are counted after
    // its closing parenthesis, where utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) * 1_000_000 / TICKS_PER_SECOND)
}

pub fn snapshot() -> Snapshot {
    let read = |p: &std::path::Path| std::fs::read_to_string(p).ok();
    let total_us = read("/proc/self/stat".as_ref())
        .as_deref()
        .and_then(cpu_us)
        .unwrap_or(0);
    let mut writer_us = 0;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let named_writer =
                read(&task.path().join("comm")).is_some_and(|c| c.trim_end() == WRITER_THREAD);
            if named_writer {
                writer_us += read(&task.path().join("stat"))
                    .as_deref()
                    .and_then(cpu_us)
                    .unwrap_or(0);
            }
        }
    }
    Snapshot {
        total_us,
        writer_us,
        at: Instant::now(),
    }
}

impl Snapshot {
    /// What was used from this snapshot until `later`, over `calls` completed calls.
    pub fn until(&self, later: &Snapshot, calls: u64) -> Used {
        let wall_us = later.at.duration_since(self.at).as_micros().max(1) as f64;
        let total = later.total_us.saturating_sub(self.total_us) as f64;
        let writer = later.writer_us.saturating_sub(self.writer_us) as f64;
        Used {
            cores: total / wall_us,
            us_per_call: total / calls.max(1) as f64,
            writer_busy: writer / wall_us,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_and_system_time_after_a_command_name_with_spaces() {
        let stat = "4242 (tokio rt) (x) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 4 0 100";
        assert_eq!(cpu_us(stat), Some(3_000_000));
        assert_eq!(cpu_us("garbage"), None);
    }

    #[test]
    fn this_process_has_used_some_cpu() {
        let start = snapshot();
        let mut x = 0u64;
        let t = Instant::now();
        while t.elapsed().as_millis() < 50 {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        assert!(snapshot().total_us > start.total_us);
    }
}
