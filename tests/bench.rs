//! The benchmark's smoke run (`cbm-hub bench --quick`): every section runs against a real hub
//! over mTLS (the idle section in a child process; the floor against sled alone) and prints
//! plausible figures.
use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

#[test]
fn quick_bench_runs_every_section() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cbm-hub"))
        .args(["--log", "error", "bench", "--quick"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(180) {
            let _ = child.kill();
            panic!("bench --quick did not finish within 180 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("machine: ") && text.contains(" cores"),
        "{text}"
    );
    assert!(!text.contains("errors)"), "no failed request: {text}");
    let rows = |prefix: &str| -> Vec<Vec<String>> {
        text.lines()
            .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
            .filter(|w| w.first().is_some_and(|f| f == prefix))
            .collect()
    };
    // Floor: every step of sled alone ran and made progress; the fill and the scan covered the
    // replay's 500 events; the directory took at least the bytes written.
    let floor = |step: &str, unit: &str| -> (u64, f64) {
        let r = &rows(step);
        assert_eq!(r.len(), 1, "one {step} row: {text}");
        let at = r[0]
            .iter()
            .position(|w| w == unit)
            .unwrap_or_else(|| panic!("{step}: no {unit:?} column: {text}"));
        (r[0][at - 2].parse().unwrap(), r[0][at - 1].parse().unwrap())
    };
    for (step, unit) in [
        ("append", "ops"),
        ("rewrite", "ops"),
        ("insert", "ops"),
        ("batch", "ops"),
        ("group", "events"),
        ("pipelined", "events"),
    ] {
        let (ops, rate) = floor(step, unit);
        assert!(ops >= 1 && rate > 0.0, "{step}: {text}");
    }
    assert_eq!(floor("fill", "events").0, 500, "{text}");
    let (scanned, rate) = floor("scan", "records");
    assert!(scanned == 500 && rate > 0.0, "{text}");
    let disk = &rows("disk")[0];
    let per_event: f64 = disk[disk.iter().position(|w| w == "B").unwrap() - 1]
        .parse()
        .unwrap();
    assert!(per_event >= 1828.0, "at least the values written: {text}");

    // Publish: one row per level, publish/s > 0 and a ratio.
    for level in ["1", "16"] {
        let r = &rows(level)[0];
        assert!(r[2].parse::<f64>().unwrap() > 0.0, "{text}");
    }
    // Provenance: plain, receipt and signed publishes all answered, none refused.
    let signed: Vec<Vec<&str>> = text
        .lines()
        .skip_while(|l| !l.starts_with("publish with provenance"))
        .skip(2)
        .take(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(signed.len(), 2, "{text}");
    for r in &signed {
        assert!(!r.contains(&"err"), "a refused publish: {text}");
        for rate in &r[1..4] {
            assert!(rate.parse::<f64>().unwrap() > 0.0, "{text}");
        }
    }
    // Fan-out: every subscriber got every message from the hub and the baseline.
    let fan = rows("10");
    assert_eq!(fan.len(), 4, "{text}");
    for r in &fan {
        assert_eq!(r[5], "100.0%", "{text}");
    }
    // Handshakes completed without errors.
    let hub = text
        .lines()
        .find(|l| l.contains("hub (conn + WhoAmI)"))
        .unwrap();
    let w: Vec<&str> = hub.split_whitespace().collect();
    assert!(w[w.len() - 2].parse::<f64>().unwrap() > 0.0, "{text}");
    assert_eq!(w[w.len() - 1], "0", "{text}");
    // Replay covered the stored events.
    let replay = text
        .lines()
        .skip_while(|l| !l.starts_with("replay"))
        .nth(2)
        .unwrap();
    let events: u64 = replay.split_whitespace().next().unwrap().parse().unwrap();
    assert!(events >= 500, "{text}");
    // Restart: the sealed start read nothing, the start after SIGKILL the 50 new events, the
    // start without seal or mark everything; each reached SERVING.
    let restart = |after: &str| -> Vec<String> {
        text.lines()
            .find(|l| l.trim_start().starts_with(after))
            .unwrap_or_else(|| panic!("no restart row {after:?}: {text}"))
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    let clean = restart("clean stop");
    assert_eq!(clean[2..5], ["sealed", "0", "0"], "{text}");
    let again = restart("clean stop, again");
    assert_eq!(again[3..6], ["sealed", "0", "0"], "{text}");
    let killed = restart("SIGKILL, 50 new");
    assert_eq!(killed[3..5], ["checked", "50"], "{text}");
    let full = restart("no seal or mark");
    assert_eq!(full[5..7], ["full", "2050"], "{text}");
    // Memory and disk: a row for the 2,000 events each.
    let sized = rows("2000");
    assert_eq!(sized.len(), 2, "{text}");
    assert!(sized.iter().all(|r| r.len() >= 6), "{text}");
    // Idle: both rows, memory grew with the subscriptions.
    for streams in ["200", "20"] {
        let r = &rows(streams)[0];
        assert!(r.last().unwrap().parse::<f64>().unwrap() > 0.0, "{text}");
    }
}
