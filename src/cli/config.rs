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
    /// Also check that the hub would accept this client certificate (PEM: the certificate,
    /// then any intermediate CAs, as the client presents them): its CA is in tls.client_ca, it
    /// is valid now, allows client authentication and is not revoked. Repeatable.
    #[arg(long = "client-cert", value_name = "FILE")]
    pub client_certs: Vec<PathBuf>,
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
        Ok(c) => {
            let (mut problems, warnings) = tls_problems(&c);
            for w in warnings {
                println!("warning: {w}");
            }
            if problems.is_empty() {
                problems.extend(client_problems(&c, &a.client_certs));
            }
            problems
        }
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

/// The TLS files exist (checked with the rest); here, whether they load and fit together, and
/// whether clients would accept the server's certificate. (errors, warnings)
fn tls_problems(c: &config::Config) -> (Vec<String>, Vec<String>) {
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
    let mut warnings = Vec::new();
    if out.is_empty() {
        // Expired, without serverAuth, a key that is not the certificate's.
        let (errors, warned) =
            tls::check::server_identity(&files.cert, &files.key, time::OffsetDateTime::now_utc());
        out.extend(errors);
        warnings = warned;
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
    (out, warnings)
}

/// `--client-cert` files the hub, as configured, would refuse, and why.
fn client_problems(c: &config::Config, files: &[PathBuf]) -> Vec<String> {
    if files.is_empty() {
        return Vec::new();
    }
    let tls = match tls::reload::TlsState::load(c.tls.clone()) {
        Ok(t) => t,
        Err(e) => return vec![format!("tls: {e}")],
    };
    let mut out = Vec::new();
    for file in files {
        let chain = match tls::load_certs(file) {
            Ok(chain) => chain,
            Err(e) => {
                out.push(format!("--client-cert {e}"));
                continue;
            }
        };
        match tls.check_chain(&chain) {
            Ok(ca) => {
                let issuer = tls.bundle();
                let name = issuer
                    .cas
                    .iter()
                    .find(|c| c.spki_sha256 == ca)
                    .map_or(ca.as_str(), |c| c.subject.as_str());
                println!(
                    "ok: {}: accepted (its chain ends at CA {name})",
                    file.display()
                );
            }
            Err(why) => out.push(format!(
                "--client-cert {}: the hub would refuse this certificate: {why}",
                file.display()
            )),
        }
    }
    out
}
