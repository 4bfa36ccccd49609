//! `cbm-hub serve`: run the hub until SIGINT or SIGTERM.
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::{home::Home, init};
use crate::{config, service};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Config file. Without it, the home directory's config is used, created with a dev PKI
    /// and sample members on first run.
    #[arg(long, env = "CBM_HUB_CONFIG")]
    pub config: Option<PathBuf>,
    /// Listen address, overriding the config (for example 127.0.0.1:0 for any free port).
    #[arg(long)]
    pub listen: Option<String>,
    /// Data directory, overriding the config.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Serve Prometheus metrics (plain HTTP, GET /metrics) on this address, overriding the
    /// config's metrics_listen ("" turns the endpoint off).
    #[arg(long)]
    pub metrics_listen: Option<String>,
    /// Set any option, overriding the config and the environment: KEY=VALUE with KEY as in the
    /// config file (limits.max_connections=100). Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// The global logging flags (`--log`, `--log-json`), which override the config's `[log]`.
#[derive(Debug, Clone, Default)]
pub struct LogFlags {
    pub filter: Option<String>,
    pub json: bool,
}

impl LogFlags {
    /// The command-line overrides of the config these flags and `args` make.
    pub fn overrides(&self, args: &ServeArgs) -> config::Overrides {
        config::Overrides {
            listen: args.listen.clone(),
            data_dir: args.data_dir.clone(),
            metrics_listen: args.metrics_listen.clone(),
            log_filter: self.filter.clone(),
            log_json: self.json,
            set: args.set.clone(),
        }
    }
}

pub async fn run(home: &Home, args: ServeArgs, log: LogFlags) -> anyhow::Result<()> {
    let path = match &args.config {
        Some(p) => p.clone(),
        None => {
            if !home.config().exists() {
                let listen = args
                    .listen
                    .clone()
                    .unwrap_or_else(|| "127.0.0.1:50051".into());
                init::initialise(home, &listen)
                    .await
                    .context("first-run set-up")?;
                init::print_summary(home);
            }
            home.config()
        }
    };
    let checked = config::check(&path, &config::process_env(), &log.overrides(&args));
    let config = checked.config?;
    super::start_logging(&config.log.filter, config.log.json);
    for w in &checked.warnings {
        tracing::warn!("{w}");
    }
    // What clients would refuse (an expired certificate) or what would not load (a key that is
    // not the certificate's), said as `config check` says it, before anything starts.
    let (errors, warnings) = crate::tls::check::server_identity(
        &config.tls.cert,
        &config.tls.key,
        time::OffsetDateTime::now_utc(),
    );
    for w in &warnings {
        tracing::warn!("{w}");
    }
    anyhow::ensure!(errors.is_empty(), "{}", errors.join("\nerror: "));
    let hub = service::start(&config).await?;
    // The first line on stdout tells scripts and tests where the hub listens.
    println!(
        "cbm-hub listening on {} (data: {})",
        hub.addr,
        config.data_dir.display()
    );
    if let Some(addr) = hub.web_addr {
        println!("cbm-hub web portal on https://localhost:{}/", addr.port());
    }
    if let Some(addr) = hub.metrics_addr {
        println!("cbm-hub metrics on http://{addr}/metrics");
    }
    #[cfg(unix)]
    {
        // SIGHUP: re-read the CA bundle, CRLs and server certificate now.
        let tls = hub.tls.clone();
        tokio::spawn(async move {
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                return;
            };
            while hup.recv().await.is_some() {
                let tls = tls.clone();
                match tokio::task::spawn_blocking(move || tls.reload()).await {
                    Ok(Ok(())) => tracing::info!("TLS configuration reloaded on SIGHUP"),
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "TLS reload on SIGHUP failed; the previous configuration stays")
                    }
                    Err(e) => tracing::error!(error = %e, "TLS reload task failed"),
                }
            }
        });
    }
    let token = hub.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        token.cancel();
    });
    let failure = hub.store.failure_cell();
    hub.wait().await?;
    if let Some(reason) = failure.get() {
        anyhow::bail!("{reason}");
    }
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
