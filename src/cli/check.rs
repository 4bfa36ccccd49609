//! `cbm-hub check`: the integrity check of a stopped hub's data directory.
use std::path::PathBuf;

use clap::Args;

use super::home::Home;
use crate::{config, store::Store};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Config file (default: the home directory's).
    #[arg(long, env = "CBM_HUB_CONFIG")]
    pub config: Option<PathBuf>,
}

pub async fn run(home: &Home, a: CheckArgs) -> anyhow::Result<()> {
    let path = a.config.unwrap_or_else(|| home.config());
    let config = config::load(&path, &config::Overrides::default())?;
    let dir = config.data_dir.clone();
    let problems = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
        let store = Store::open(&dir, config.store)?;
        let problems = store.check()?;
        store.close_and_release()?;
        Ok(problems)
    })
    .await??;
    if problems.is_empty() {
        println!(
            "ok: {} is intact (checksums, feed, indexes, audit chain and checkpoints)",
            config.data_dir.display()
        );
        return Ok(());
    }
    for p in &problems {
        println!("damaged: {p}");
    }
    anyhow::bail!(
        "{} problems found in {}",
        problems.len(),
        config.data_dir.display()
    )
}
