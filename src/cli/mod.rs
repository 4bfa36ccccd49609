//! The `cbm-hub` command line: one file per group of subcommands.
mod audit;
mod bench;
pub(crate) mod catalogue;
mod check;
mod client;
mod config;
mod diagnose;
mod directory;
mod filters;
mod history;
mod home;
mod init;
mod init_pki;
mod member;
mod migrate;
mod output;
mod pki;
mod provenance;
mod read;
mod serve;
mod stix;
mod subscribe;
mod write;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use client::ClientArgs;
pub use home::Home;
pub use write::from_yaml as content_from_yaml;

/// cbm-hub: exchange cyber confidence-building measures over mutual TLS.
#[derive(Debug, Parser)]
#[command(name = "cbm-hub", version, about, propagate_version = true)]
pub struct Cli {
    /// Directory holding the dev PKI, config, profiles and data
    /// (default: $CBM_HUB_HOME, else ~/.local/share/cbm-hub).
    #[arg(long, global = true, env = "CBM_HUB_HOME")]
    pub home: Option<PathBuf>,
    /// Log filter (tracing EnvFilter syntax), for example "info" or "cbm_hub=debug"
    /// [default: info, or the config file's log.filter for `serve`].
    #[arg(long, global = true, env = "CBM_HUB_LOG")]
    pub log: Option<String>,
    /// Write logs as JSON lines (one object per line) instead of readable text.
    #[arg(long, global = true)]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the hub. Without --config and on first run, creates a dev PKI, sample members, a
    /// config and a data directory in the home directory, then serves.
    Serve(serve::ServeArgs),
    /// Create a dev PKI, sample members, a config and client profiles in a directory; or, with
    /// --ca, --server-cert, --server-key and --admin-cert, a hub on your own PKI whose only
    /// member is its first administrator.
    Init(init::InitArgs),
    /// Publish a submission from a JSON or YAML file.
    Publish(write::PublishArgs),
    /// Publish a new revision of one of your submissions.
    Revise(write::ReviseArgs),
    /// Withdraw one of your submissions.
    Withdraw(write::WithdrawArgs),
    /// Read a submission (latest or a given revision).
    Get(read::GetArgs),
    /// The hub's receipt for a revision you may read: its signed statement of what it accepted
    /// and when, with the proof that it logged it.
    Receipt(provenance::ReceiptArgs),
    /// Check a submission offline from public files: its author signature and chain, the hub's
    /// receipt, inclusion proof and checkpoint. One line per check; fails naming what failed.
    Verify(provenance::VerifyArgs),
    /// List the submissions you may see.
    List(read::ListArgs),
    /// Follow the feed: the history after a cursor you may see, then live changes.
    Subscribe(subscribe::SubscribeArgs),
    /// Export what you may see in another format (STIX 2.1 for CSIRT tools).
    #[command(subcommand)]
    Export(stix::ExportCommand),
    /// Show which member the hub takes you to be.
    Whoami(read::WhoamiArgs),
    /// Administer members (needs the admin role).
    #[command(subcommand)]
    Member(member::MemberCommand),
    /// Query, export and verify the tamper-evident audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// The points-of-contact directory you may see, with when each contact was last verified.
    Contacts(directory::ContactsArgs),
    /// Acknowledge a notice addressed to you (ping campaigns included).
    Ack(directory::AckArgs),
    /// Who acknowledged one of your notices, and when.
    AckReport(directory::AckReportArgs),
    /// Ping campaigns testing the points-of-contact directory (admins).
    #[command(subcommand)]
    Ping(directory::PingCommand),
    /// The CBM catalogue: list measures, add a framework (admins).
    #[command(subcommand)]
    Catalogue(catalogue::CatalogueCommand),
    /// Reports: the implementation matrix (states x measures).
    #[command(subcommand)]
    Report(catalogue::ReportCommand),
    /// Who read or received one of your submissions (gets, lists, feed deliveries).
    AccessLog(audit::AccessLogArgs),
    /// Check a stopped hub's data for damage (checksums, gaps, indexes, audit chain).
    Check(check::CheckArgs),
    /// Convert a stopped hub's data directory of an older layout (keeps a backup beside it).
    Migrate(migrate::MigrateArgs),
    /// Measure the hub: durable publish against a no-op baseline, replay (see BENCHMARKS.md).
    Bench(bench::BenchArgs),
    /// Check a hub configuration file (and the CBM_HUB_ environment): every problem at once.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Development PKI: issue member certificates from the dev CA of the home directory.
    #[command(subcommand)]
    Pki(pki::PkiCommand),
}

/// Starts logging for every command but `serve`, which starts it once its configuration (which
/// may set the filter and the format) is read.
pub fn init_tracing(cli: &Cli) {
    if matches!(cli.command, Command::Serve(_)) {
        return;
    }
    start_logging(cli.log.as_deref().unwrap_or("info"), cli.log_json);
}

/// Logs to stderr: readable text, or JSON lines (one object per event) when `json`.
pub fn start_logging(filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // Client commands keep stderr for errors; logs matter for the server.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let home = Home::resolve(cli.home.clone())?;
    let log = serve::LogFlags {
        filter: cli.log.clone(),
        json: cli.log_json,
    };
    // A client command that cannot reach the hub says why, as far as the client can tell.
    diagnose::explained(run_command(cli.command, &home, log)).await
}

async fn run_command(command: Command, home: &Home, log: serve::LogFlags) -> anyhow::Result<()> {
    let home = home.clone();
    match command {
        Command::Serve(a) => serve::run(&home, a, log).await,
        Command::Config(c) => config::run(&home, c, log),
        Command::Init(a) => init::run(&home, a).await,
        Command::Publish(a) => write::publish(&home, a).await,
        Command::Revise(a) => write::revise(&home, a).await,
        Command::Withdraw(a) => write::withdraw(&home, a).await,
        Command::Get(a) => read::get(&home, a).await,
        Command::Receipt(a) => provenance::receipt(&home, a).await,
        Command::Verify(a) => provenance::verify(a),
        Command::List(a) => read::list(&home, a).await,
        Command::Export(c) => stix::run(&home, c).await,
        Command::Whoami(a) => read::whoami(&home, a).await,
        Command::Subscribe(a) => subscribe::run(&home, a).await,
        Command::Member(c) => member::run(&home, c).await,
        Command::Pki(c) => pki::run(&home, c).await,
        Command::Audit(c) => audit::run(&home, c).await,
        Command::Check(a) => check::run(&home, a).await,
        Command::Migrate(a) => migrate::run(a).await,
        Command::Bench(a) => bench::run(a).await,
        Command::AccessLog(a) => audit::access_log(&home, a).await,
        Command::Contacts(a) => directory::contacts(&home, a).await,
        Command::Ack(a) => directory::ack(&home, a).await,
        Command::AckReport(a) => directory::ack_report(&home, a).await,
        Command::Ping(c) => directory::ping(&home, c).await,
        Command::Catalogue(c) => catalogue::catalogue(&home, c).await,
        Command::Report(c) => catalogue::report(&home, c).await,
    }
}

/// A one-line description of an error for the terminal: the server's message for gRPC
/// statuses, the chain of causes otherwise.
pub fn describe_error(e: &anyhow::Error) -> String {
    if let Some(status) = e.downcast_ref::<tonic::Status>() {
        // With TLS 1.3 a client learns that the hub refused its certificate only when the
        // connection drops under its first request, which tonic reports as a cancellation with
        // no message from the hub. Say what usually causes it.
        let hint = if status.code() == tonic::Code::Cancelled && status.metadata().is_empty() {
            " (the hub closed the connection: if this repeats, check that your certificate is \
             issued by the hub's CA, unexpired and not revoked; the hub's log names the reason)"
        } else {
            ""
        };
        return format!(
            "{}: {}{hint}",
            crate::service::code_name(status.code()),
            status.message()
        );
    }
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}
