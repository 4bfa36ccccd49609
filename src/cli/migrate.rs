//! `cbm-hub migrate`: converts a stopped hub's data directory to this build's layout.
use std::path::PathBuf;

use clap::Args;

use crate::store::migrate;

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The data directory of the stopped hub (its config's `data_dir`).
    #[arg(long = "data", value_name = "DIR")]
    pub data: PathBuf,
}

pub async fn run(a: MigrateArgs) -> anyhow::Result<()> {
    let dir = a.data.clone();
    let done = tokio::task::spawn_blocking(move || migrate::migrate(&dir)).await??;
    println!(
        "migrated {} to layout version 2: {} records copied and verified by the full check; \
         the old directory is kept as {} (remove it once the hub runs well)",
        a.data.display(),
        done.records,
        done.backup.display()
    );
    Ok(())
}
