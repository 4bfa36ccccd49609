//! A data directory holding many events, and the real `cbm-hub serve` started on it as a
//! child process: what the `restart`, `disk` and `memory` sections measure.
//!
//! The events are made through the store's own writer ([`crate::store::Store::change`], the
//! call every publish ends in, with fsync off), not over gRPC: a bulk path used ONLY by the
//! benchmark to create the data directory in seconds instead of minutes. What it stores is what
//! publishes store (same validation of the content, same writer, same records); only the
//! durability of the generation itself is skipped, and the directory is closed cleanly.
use std::{
    io::BufRead,
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::setup::{PUBLISHER, READER, Target};
use crate::{
    audit::Origin,
    domain::validate::{self, Context},
    pb,
    store::{Change, ChangeOp, Store, StoreOptions},
    tls::devpki::{DevCa, LeafSpec},
};

/// Encoded bytes of each generated submission's content (the issue's 1.2 KiB).
pub const CONTENT_BYTES: usize = 1229;
/// Changes handed to the writer at once while generating.
const GENERATE_IN_FLIGHT: usize = 512;

/// A data directory with `events` stored, the PKI and a config file to serve it.
pub struct Stored {
    pub root: PathBuf,
    pub config: PathBuf,
    pub data: PathBuf,
    pub events: u64,
    /// Seconds the generation took.
    pub generate_secs: f64,
    /// The credentials (its address is set per serve).
    pub target: Target,
}

impl Drop for Stored {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The generated content: a CLEAR policy document of [`CONTENT_BYTES`] encoded.
pub fn content(i: u64) -> anyhow::Result<pb::SubmissionContent> {
    let mut c = super::payloads()?.remove(0);
    c.title = format!("Generated item {i:>9}");
    c.summary.clear();
    let base = prost::Message::encoded_len(&c);
    anyhow::ensure!(
        base + 3 < CONTENT_BYTES,
        "the example is larger than the content"
    );
    // Two bytes of length prefix for a summary of 128 bytes or more.
    c.summary = "s".repeat(CONTENT_BYTES - base - 3);
    anyhow::ensure!(prost::Message::encoded_len(&c) == CONTENT_BYTES);
    Ok(c)
}

/// Makes a data directory of `events` publications and closes it cleanly (sealed).
pub async fn generate(events: u64, cache_mb: u64) -> anyhow::Result<Stored> {
    crate::tls::install_crypto_provider();
    let root = std::env::temp_dir().join(format!("cbm-hub-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&root)?;
    let ca = DevCa::generate("bench CA").map_err(anyhow::Error::msg)?;
    let server = ca
        .issue(&LeafSpec::server(&[], 2))
        .map_err(anyhow::Error::msg)?;
    std::fs::write(root.join("ca.pem"), &ca.cert_pem)?;
    std::fs::write(root.join("server.pem"), &server.cert_pem)?;
    std::fs::write(root.join("server-key.pem"), &server.key_pem)?;
    let data = root.join("data");
    let config = root.join("cbm-hub.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {data:?}\n\n[tls]\nclient_ca = {:?}\ncert = {:?}\nkey = {:?}\n\n[store]\ncache_mb = {cache_mb}\nmin_free_mb = 0\n\n[limits]\nmember_requests_per_second = 1000000\nmember_request_burst = 1000000\n",
            root.join("ca.pem"),
            root.join("server.pem"),
            root.join("server-key.pem"),
        ),
    )?;
    let options = StoreOptions {
        cache_capacity: cache_mb * 1024 * 1024,
        // The generation only: the data directory is closed cleanly at the end.
        fsync: false,
        check_on_start: false,
        min_free_bytes: 0,
        ..StoreOptions::default()
    };
    let store = Store::open(&data, options)?;
    let (certs, publisher) = super::setup::register_members(&store, &ca).await?;
    let publisher = Arc::new(publisher);
    // The content is validated as a publish validates it, once (only the title differs).
    let kind = {
        let sample = content(0)?;
        let ctx = Context {
            registry: &store.registry(),
            catalogue: &store.catalogue(),
            now: time::OffsetDateTime::now_utc(),
            previous: None,
        };
        validate::content(&ctx, &sample, "content")
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .kind
    };
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..GENERATE_IN_FLIGHT as u64 {
        let store = store.clone();
        let publisher = publisher.clone();
        tasks.push(tokio::spawn(async move {
            let origin = Origin {
                member: PUBLISHER.into(),
                cert_sha256: String::new(),
                peer: "bench-generate".into(),
            };
            let mut i = t;
            while i < events {
                let op = ChangeOp::Publish {
                    content: content(i)?,
                    kind,
                };
                store
                    .change(publisher.clone(), origin.clone(), Change::new(op, None))
                    .await?;
                i += GENERATE_IN_FLIGHT as u64;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let generate_secs = started.elapsed().as_secs_f64();
    tokio::task::spawn_blocking(move || store.close_and_release()).await??;
    Ok(Stored {
        root,
        config,
        data,
        events,
        generate_secs,
        target: Target {
            addr: "127.0.0.1:0".parse()?,
            ca_pem: ca.cert_pem.clone(),
            certs,
            server_cert_pem: server.cert_pem,
            server_key_pem: server.key_pem,
        },
    })
}

/// `cbm-hub serve` running on a [`Stored`] directory.
pub struct Served {
    pub child: Child,
    /// From spawning the process to the first SERVING answer of a health check over mTLS.
    pub secs: f64,
    pub target: Target,
    pub metrics: SocketAddr,
}

impl Served {
    /// Starts `serve` on `stored` and waits until it answers a health check over mTLS.
    pub async fn start(stored: &Stored) -> anyhow::Result<Served> {
        let started = Instant::now();
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .args(["--log", "error", "serve", "--config"])
            .arg(&stored.config)
            .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout of serve"))?;
        let (addr, metrics) = tokio::task::spawn_blocking(move || {
            let mut lines = std::io::BufReader::new(stdout).lines();
            let mut addr = None;
            for line in lines.by_ref() {
                let line = line?;
                if let Some(rest) = line.strip_prefix("cbm-hub listening on ") {
                    addr = rest.split_whitespace().next().map(str::to_string);
                } else if let Some(rest) = line.strip_prefix("cbm-hub metrics on http://") {
                    let metrics = rest.trim_end_matches("/metrics").to_string();
                    // Keep reading (and dropping) the rest, so that serve never blocks on it.
                    std::thread::spawn(move || lines.for_each(drop));
                    return anyhow::Ok((addr, metrics));
                }
            }
            anyhow::bail!("serve ended before it listened")
        })
        .await??;
        let addr: SocketAddr = addr
            .ok_or_else(|| anyhow::anyhow!("serve printed no address"))?
            .parse()?;
        let mut target = stored.target.clone();
        target.addr = addr;
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            if let Ok(channel) = target.channel(READER).await {
                let status = tonic_health::pb::health_client::HealthClient::new(channel)
                    .check(tonic_health::pb::HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    .map(|r| r.into_inner().status);
                let serving = tonic_health::pb::health_check_response::ServingStatus::Serving;
                if status.is_ok_and(|s| s == serving as i32) {
                    break;
                }
            }
            anyhow::ensure!(Instant::now() < deadline, "serve did not start serving");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(Served {
            child,
            secs: started.elapsed().as_secs_f64(),
            target,
            metrics: metrics.parse()?,
        })
    }

    /// Resident memory of the serving process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        super::setup::rss_kib_of(&format!("/proc/{}/status", self.child.id()))
    }

    /// A figure of its metrics (0 when absent).
    pub async fn metric(&self, series: &str) -> anyhow::Result<f64> {
        let mut tcp = tokio::net::TcpStream::connect(self.metrics).await?;
        let request = format!(
            "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.metrics
        );
        tcp.write_all(request.as_bytes()).await?;
        let mut raw = String::new();
        tcp.read_to_string(&mut raw).await?;
        Ok(raw
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0))
    }

    /// How the start was checked: (`sealed`/`checked`/`full`, events read, audit entries read).
    pub async fn start_check(&self) -> anyhow::Result<(&'static str, u64, u64)> {
        let mut kind = "";
        for k in ["sealed", "checked", "full"] {
            if self
                .metric(&format!("cbm_hub_start_check{{start=\"{k}\"}}"))
                .await?
                == 1.0
            {
                kind = k;
            }
        }
        Ok((
            kind,
            self.metric("cbm_hub_start_check_events").await? as u64,
            self.metric("cbm_hub_start_check_audit_entries").await? as u64,
        ))
    }

    /// Waits until the background check has passed once (bounded: 30 minutes).
    pub async fn background_checked(&self) -> anyhow::Result<f64> {
        let started = Instant::now();
        while self.metric("cbm_hub_integrity_check_passes").await? < 1.0 {
            anyhow::ensure!(
                self.metric("cbm_hub_integrity_problems").await? == 0.0,
                "the background check found damage"
            );
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(1800),
                "the background check did not finish"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(started.elapsed().as_secs_f64())
    }

    /// SIGTERM (the clean stop: seals), then waits for the exit.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        let exit = tokio::task::spawn_blocking(move || self.child.wait()).await??;
        anyhow::ensure!(exit.success(), "serve exited with {exit}");
        Ok(())
    }

    /// SIGKILL: no chance to seal.
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        tokio::task::spawn_blocking(move || self.child.wait()).await??;
        Ok(())
    }
}

/// Bytes the files under `dir` take on disk (allocated blocks, as `du` counts them) and their
/// apparent length.
pub fn du(dir: &std::path::Path) -> anyhow::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut allocated = 0;
    let mut apparent = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            let (a, b) = du(&entry.path())?;
            allocated += a;
            apparent += b;
        } else {
            allocated += meta.blocks() * 512;
            apparent += meta.len();
        }
    }
    Ok((allocated, apparent))
}
