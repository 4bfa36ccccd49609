//! Running the real `cbm-hub` binary: an initialised home directory, `serve` as a child
//! process, and mTLS clients built from the certificates `init` wrote.
use std::{
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use cbm_hub::pb::{feed_client::FeedClient, hub_client::HubClient};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

pub const BIN: &str = env!("CARGO_BIN_EXE_cbm-hub");

/// `cbm-hub init` into `home`.
pub fn init(home: &Path) {
    let (ok, _, err) = local(home, &["init", "--listen", "127.0.0.1:0"]);
    assert!(ok, "{err}");
}

/// A running `cbm-hub serve`; killed (SIGKILL) on drop unless stopped before.
pub struct HubProcess {
    pub child: Child,
    pub port: u16,
    /// Where metrics are served, when started with `--metrics-listen`.
    pub metrics: Option<std::net::SocketAddr>,
    home: PathBuf,
    /// The lines of stdout after the address line.
    lines: std::sync::mpsc::Receiver<String>,
}

impl HubProcess {
    /// Starts `serve` on a free port and waits for it to report its address.
    pub fn start(home: &Path) -> HubProcess {
        Self::start_with(home, &[])
    }

    pub fn start_with(home: &Path, extra: &[&str]) -> HubProcess {
        let mut child = Command::new(BIN)
            .args([
                "--home",
                home.to_str().unwrap(),
                "--log",
                "warn",
                "serve",
                "--listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(100))
                && let Some(rest) = line.strip_prefix("cbm-hub listening on ")
            {
                let addr = rest.split_whitespace().next().unwrap();
                let port = addr.rsplit(':').next().unwrap().parse().unwrap();
                // Printed right after the address when the endpoint is on.
                // Printed after the address (the web portal's line may come first).
                let metrics = extra.contains(&"--metrics-listen").then(|| {
                    (0..8)
                        .find_map(|_| {
                            let line = rx.recv_timeout(Duration::from_secs(30)).unwrap();
                            let url = line.strip_prefix("cbm-hub metrics on http://")?;
                            Some(url.trim_end_matches("/metrics").parse().unwrap())
                        })
                        .expect("serve printed no metrics address")
                });
                return HubProcess {
                    child,
                    port,
                    metrics,
                    home: home.to_path_buf(),
                    lines: rx,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("serve exited early: {status}");
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("serve did not report its address");
    }

    /// The port of the web portal, from the line `serve` prints after its address.
    pub fn web_port(&self) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100))
                && let Some(rest) = line.strip_prefix("cbm-hub web portal on https://localhost:")
            {
                return rest.trim_end_matches('/').parse().unwrap();
            }
        }
        panic!("serve did not print the web portal's address");
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// An mTLS channel as `member`, with the certificate `init` issued to it.
    pub async fn channel(&self, member: &str) -> Result<Channel, tonic::transport::Error> {
        member_channel(&self.home, self.port, member).await
    }

    pub async fn hub(&self, member: &str) -> HubClient<Channel> {
        HubClient::new(self.channel(member).await.unwrap())
    }

    pub async fn feed(&self, member: &str) -> FeedClient<Channel> {
        FeedClient::new(self.channel(member).await.unwrap())
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn member_channel(
    home: &Path,
    port: u16,
    member: &str,
) -> Result<Channel, tonic::transport::Error> {
    let read = |p: PathBuf| std::fs::read(p).unwrap();
    let pki = home.join("pki");
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(pki.join("ca.pem"))))
        .identity(Identity::from_pem(
            read(pki.join("members").join(format!("{member}.pem"))),
            read(pki.join("members").join(format!("{member}-key.pem"))),
        ))
        .domain_name("localhost");
    Endpoint::from_shared(format!("https://127.0.0.1:{port}"))
        .unwrap()
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .connect()
        .await
}

/// `serve` from `home` (first run included) and the endpoint its profiles are used with.
pub fn serve(home: &Path) -> (HubProcess, String) {
    let hub = HubProcess::start(home);
    let endpoint = format!("https://localhost:{}", hub.port);
    (hub, endpoint)
}

/// Runs a client command of the binary against `endpoint`: (success, stdout, stderr).
pub fn cli(home: &Path, endpoint: &str, args: &[&str]) -> (bool, String, String) {
    let mut with_endpoint = args.to_vec();
    with_endpoint.extend(["--endpoint", endpoint]);
    local(home, &with_endpoint)
}

/// Runs a command of the binary on `home` that needs no hub (init, pki): (success, stdout,
/// stderr).
pub fn local(home: &Path, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(BIN)
        .args(["--home", home.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// How a bounded run ended: its exit status (None: killed at the limit), stdout and stderr.
pub struct Bounded {
    pub status: Option<ExitStatus>,
    pub out: String,
    pub err: String,
}

impl Bounded {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

/// Runs `cmd` to completion within `limit`, killing it past that. Output is drained on threads
/// while it runs, so a chatty child (pip, a feed) never stalls on a full pipe.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Bounded {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = r.read_to_string(&mut text);
            text
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Bounded {
        status,
        out: out.join().unwrap(),
        err: err.join().unwrap(),
    }
}

/// The shell block README.md marks as run by the test `test` (e.g. `tests/own_pki.rs`).
pub fn readme_block(test: &str) -> String {
    let readme = include_str!("../../README.md");
    let marker = format!("<!-- {test} runs this block as it stands -->");
    let after = &readme[readme.find(&marker).expect("the marker in README.md") + marker.len()..];
    let start = after.find("```sh\n").unwrap() + "```sh\n".len();
    after[start..start + after[start..].find("```").unwrap()].to_string()
}

/// Runs a shell script in `dir` (bash, errexit, 60 s at most); it must succeed.
pub fn sh(dir: &Path, script: &str) {
    let r = run_bounded(
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", script])
            .current_dir(dir),
        Duration::from_secs(60),
    );
    assert!(r.success(), "{script}\n{}{}", r.out, r.err);
}
