//! The home directory: where `init` puts the dev PKI, config, client profiles and data.
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Layout of a home directory.
#[derive(Debug, Clone)]
pub struct Home {
    pub root: PathBuf,
}

/// How a client reaches the hub as one member: written by `init` and `pki issue`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Member id the certificate is bound to (informational).
    pub member: String,
    /// `https://host:port` of the hub.
    pub endpoint: String,
    /// Name the server certificate is checked against.
    pub server_name: String,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Home {
    /// `--home`, else `$CBM_HUB_HOME` (handled by clap), else `~/.local/share/cbm-hub`.
    pub fn resolve(explicit: Option<PathBuf>) -> anyhow::Result<Home> {
        let root = match explicit {
            Some(p) => p,
            None => {
                let base = std::env::var_os("XDG_DATA_HOME")
                    .map(PathBuf::from)
                    .or_else(|| {
                        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share"))
                    })
                    .context("no home directory: pass --home or set CBM_HUB_HOME")?;
                base.join("cbm-hub")
            }
        };
        Ok(Home { root })
    }

    pub fn config(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    pub fn pki(&self) -> PathBuf {
        self.root.join("pki")
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.pki().join("ca.pem")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.pki().join("ca-key.pem")
    }
    pub fn member_cert(&self, id: &str) -> PathBuf {
        self.pki().join("members").join(format!("{id}.pem"))
    }
    pub fn member_key(&self, id: &str) -> PathBuf {
        self.pki().join("members").join(format!("{id}-key.pem"))
    }
    pub fn profiles(&self) -> PathBuf {
        self.root.join("profiles")
    }
    pub fn profile_path(&self, name: &str) -> PathBuf {
        self.profiles().join(format!("{name}.toml"))
    }
    pub fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    pub fn read_profile(&self, name: &str) -> anyhow::Result<Profile> {
        let path = self.profile_path(name);
        let text = std::fs::read_to_string(&path).with_context(|| {
            let known = self.profile_names().join(", ");
            format!(
                "no profile {name:?} in {} (known: {}); run `cbm-hub init` or pass --ca/--cert/--key",
                self.profiles().display(),
                if known.is_empty() { "none".into() } else { known }
            )
        })?;
        toml::from_str(&text).with_context(|| format!("{}", path.display()))
    }

    pub fn write_profile(&self, name: &str, profile: &Profile) -> anyhow::Result<()> {
        std::fs::create_dir_all(self.profiles())?;
        let text = toml::to_string(profile)?;
        write_file(&self.profile_path(name), &text, false)
    }

    pub fn profile_names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.profiles())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".toml")
                    .map(str::to_string)
            })
            .collect();
        names.sort();
        names
    }
}

/// Writes a file, creating its directory; private keys are made readable by the owner only.
pub fn write_file(path: &Path, contents: &str, private: bool) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}
