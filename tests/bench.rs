//! The benchmark's smoke run (`cbm-hub bench --quick`): every section runs against a real hub
//! over mTLS (the idle section in a child process) and prints plausible figures.
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
    // Publish: one row per level, publish/s > 0 and a ratio.
    for level in ["1", "16"] {
        let r = &rows(level)[0];
        assert!(r[2].parse::<f64>().unwrap() > 0.0, "{text}");
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
    // Idle: both rows, memory grew with the subscriptions.
    for streams in ["200", "20"] {
        let r = &rows(streams)[0];
        assert!(r.last().unwrap().parse::<f64>().unwrap() > 0.0, "{text}");
    }
}
