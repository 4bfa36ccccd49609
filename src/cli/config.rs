//! `cbm-hub config check [FILE]`: validates a hub configuration and reports every problem.
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{home::Home, serve::LogFlags};
use crate::{config, tls};

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file as `serve` would read it (with the CBM_HUB_ environment unless
    /// --no-env): unknown keys, types, ranges, addresses, files and directories, TLS files that
    /// do not load. Lists every problem; exits non-zero if there is any.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The file (default: --config / CBM_HUB_CONFIG, else the home directory's config).
    pub file: Option<PathBuf>,
    #[arg(long, env = "CBM_HUB_CONFIG", hide_env_values = true)]
    pub config: Option<PathBuf>,
    /// Check the file alone, ignoring CBM_HUB_ environment variables.
    #[arg(long)]
    pub no_env: bool,
}

pub fn run(home: &Home, command: ConfigCommand, log: LogFlags) -> anyhow::Result<()> {
    let ConfigCommand::Check(a) = command;
    let path = a.file.or(a.config).unwrap_or_else(|| home.config());
    let env = if a.no_env {
        Default::default()
    } else {
        config::process_env()
    };
    let overrides = config::Overrides {
        log_filter: log.filter,
        log_json: log.json,
        ..Default::default()
    };
    let checked = config::check(&path, &env, &overrides);
    for w in &checked.warnings {
        println!("warning: {w}");
    }
    let problems = match checked.config {
        Ok(c) => tls_problems(&c),
        Err(e) => e.0,
    };
    if problems.is_empty() {
        println!("ok: {} is a valid configuration", path.display());
        return Ok(());
    }
    for p in &problems {
        println!("error: {p}");
    }
    anyhow::bail!("{} problems in {}", problems.len(), path.display())
}

/// The TLS files exist (checked with the rest); here, whether they load and fit together.
fn tls_problems(c: &config::Config) -> Vec<String> {
    tls::install_crypto_provider();
    let mut out = Vec::new();
    let files = &c.tls;
    if let Err(e) = tls::load_certs(&files.client_ca) {
        out.push(format!("tls.client_ca: {e}"));
    }
    if let Err(e) = tls::load_certs(&files.cert) {
        out.push(format!("tls.cert: {e}"));
    }
    if let Err(e) = tls::load_key(&files.key) {
        out.push(format!("tls.key: {e}"));
    }
    for crl in &files.crls {
        if let Err(e) = tls::load_crls(crl) {
            out.push(format!("tls.crls: {e}"));
        }
    }
    // Each file loads: do they make a server configuration (the key matches the certificate)?
    // (and every CA of the bundle has a CRL when CRLs are configured)
    if out.is_empty()
        && let Err(e) = tls::reload::TlsState::load(files.clone())
    {
        out.push(match e {
            tls::TlsError::MissingCrl(_) => e.to_string(),
            e => format!("tls: {e}"),
        });
    }
    out
}
