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
}

pub async fn run(home: &Home, args: ServeArgs) -> anyhow::Result<()> {
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
    let overrides = config::Overrides {
        listen: args.listen,
        data_dir: args.data_dir,
    };
    let config = config::load(&path, &overrides)?;
    let hub = service::start(&config).await?;
    // The first line on stdout tells scripts and tests where the hub listens.
    println!(
        "cbm-hub listening on {} (data: {})",
        hub.addr,
        config.data_dir.display()
    );
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
