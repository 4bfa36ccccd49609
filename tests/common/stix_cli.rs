//! A `cbm-hub subscribe --format stix` child process read line by line while a test drives the
//! hub: each wait is on a printed line (bounded), never on time.
use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc::{Receiver, channel},
    time::{Duration, Instant},
};

use cbm_hub::stix::ext;
use serde_json::Value;

use super::process::BIN;

pub const WAIT: Duration = Duration::from_secs(60);

/// A `subscribe --format stix` child and its output, line by line.
pub struct Subscriber {
    child: Child,
    out: Receiver<String>,
    err: Receiver<String>,
    bundles: Vec<Value>,
    notes: Vec<String>,
}

impl Subscriber {
    /// `subscribe -p member --format stix --cursor-file cursor`, heartbeats every second.
    pub fn start(home: &Path, ep: &str, member: &str, cursor: &Path) -> Self {
        let mut child = Command::new(BIN)
            .args(["--home", home.to_str().unwrap(), "subscribe", "-p", member])
            .args(["--format", "stix", "--heartbeat", "1", "--endpoint", ep])
            .arg("--cursor-file")
            .arg(cursor)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = |r: Box<dyn std::io::Read + Send>| {
            let (tx, rx) = channel();
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
            rx
        };
        let out = lines(Box::new(child.stdout.take().unwrap()));
        let err = lines(Box::new(child.stderr.take().unwrap()));
        Subscriber {
            child,
            out,
            err,
            bundles: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// The next printed bundle holding objects of `submission`: those objects.
    pub fn objects_of(&mut self, submission: &str) -> Vec<Value> {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(line) = self.out.recv_timeout(Duration::from_millis(200)) {
                let b: Value = serde_json::from_str(&line).unwrap();
                self.bundles.push(b.clone());
                let objects = of_submission(&b, submission);
                if !objects.is_empty() {
                    return objects;
                }
            }
        }
        panic!(
            "no bundle for {submission}; notes: {:#?}",
            self.drain_notes()
        );
    }

    /// The next stderr note naming `submission`.
    pub fn note_on(&mut self, submission: &str) -> String {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(line) = self.err.recv_timeout(Duration::from_millis(200)) {
                self.notes.push(line.clone());
                if line.contains(submission) {
                    return line;
                }
            }
        }
        panic!("no note on {submission}: {:#?}", self.drain_notes());
    }

    fn drain_notes(&mut self) -> Vec<String> {
        self.notes.extend(self.err.try_iter());
        self.notes.clone()
    }

    /// Stops the child (started by this test) and collects what is left of its output.
    pub fn stop(mut self) -> (Vec<Value>, Vec<String>) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for line in self.out.iter() {
            self.bundles.push(serde_json::from_str(&line).unwrap());
        }
        self.notes.extend(self.err.iter());
        (self.bundles, self.notes)
    }
}

pub fn of_submission(bundle: &Value, submission: &str) -> Vec<Value> {
    bundle["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["extensions"][ext::id()]["submission_id"] == submission)
        .cloned()
        .collect()
}

/// Waits until the cursor file holds at least `sequence`.
pub fn wait_cursor(cursor: &Path, sequence: u64) {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        let at = std::fs::read_to_string(cursor)
            .ok()
            .and_then(|t| t.lines().next()?.trim().parse::<u64>().ok());
        if at.is_some_and(|at| at >= sequence) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the cursor never reached {sequence}");
}
