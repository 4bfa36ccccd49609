//! `cbm-hub member ...`: registry administration (admin role).
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use sha2::{Digest, Sha256};

use super::{client::ClientArgs, home::Home, output};
use crate::pb::{self, certificate_binding::Binding};

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// List members.
    List {
        #[arg(long, default_value = "")]
        state: String,
        #[arg(long, default_value = "")]
        role: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show one member.
    Show {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Register a new member with at least one certificate binding.
    Register {
        /// Member id, such as FI-MFA.
        id: String,
        /// ISO 3166-1 alpha-2 state code, or organisation code.
        #[arg(long)]
        state: String,
        #[arg(long)]
        name: String,
        /// Role (repeatable): publisher, subscriber, auditor, admin.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// Community (repeatable), such as OSCE.
        #[arg(long = "community")]
        communities: Vec<String>,
        #[command(flatten)]
        binding: BindingArgs,
        #[command(flatten)]
        issuer: IssuerArgs,
        /// Note stored with the binding.
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Change a member's name, roles or communities.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        /// New complete list of roles (comma-separated).
        #[arg(long, value_delimiter = ',')]
        roles: Option<Vec<String>>,
        /// New complete list of communities (comma-separated; "" for none).
        #[arg(long, value_delimiter = ',')]
        communities: Option<Vec<String>>,
        /// Require (true) or stop requiring (false) an author signature on every publication,
        /// revision and withdrawal of the member.
        #[arg(long)]
        require_signed: Option<bool>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Bind another certificate to a member.
    Bind {
        id: String,
        #[command(flatten)]
        binding: BindingArgs,
        #[command(flatten)]
        issuer: IssuerArgs,
        /// Note stored with the binding.
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Remove a certificate binding.
    Unbind {
        id: String,
        #[command(flatten)]
        binding: BindingArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Suspend a member: all its requests are refused.
    Suspend {
        id: String,
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Reinstate a suspended member.
    Reinstate {
        id: String,
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// One way to name a certificate binding.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct BindingArgs {
    /// A PEM certificate file; bound by its SHA-256.
    #[arg(long = "cert-file")]
    pub cert_file: Option<PathBuf>,
    /// A PEM certificate file; bound by the SHA-256 of its public key (SPKI), so that a
    /// certificate re-issued for the same key still matches (the binding for rotations).
    #[arg(long = "spki-of", value_name = "CERT_FILE")]
    pub spki_of: Option<PathBuf>,
    /// SHA-256 of the DER certificate (64 hex digits).
    #[arg(long)]
    pub cert_sha256: Option<String>,
    /// SHA-256 of the DER SubjectPublicKeyInfo.
    #[arg(long)]
    pub spki_sha256: Option<String>,
    /// A URI SAN the member's certificates carry.
    #[arg(long)]
    pub uri_san: Option<String>,
}

/// The CA of the bundle that issues the member's certificates, for `--spki-sha256` and
/// `--uri-san` bindings: required when the hub trusts several CAs (with one, the hub records
/// it).
#[derive(Debug, Clone, Args)]
#[group(required = false, multiple = false)]
pub struct IssuerArgs {
    /// The issuing CA's certificate (PEM), as in the hub's tls.client_ca bundle.
    #[arg(long = "issuer-ca")]
    pub issuer_ca: Option<PathBuf>,
    /// SHA-256 of the issuing CA's DER SubjectPublicKeyInfo (64 hex digits).
    #[arg(long)]
    pub issuer_spki_sha256: Option<String>,
}

impl IssuerArgs {
    fn none() -> IssuerArgs {
        IssuerArgs {
            issuer_ca: None,
            issuer_spki_sha256: None,
        }
    }

    fn spki_sha256(&self) -> anyhow::Result<String> {
        if let Some(path) = &self.issuer_ca {
            let bundle = crate::tls::bundle::Bundle::load(path)?;
            match bundle.distinct_spkis().as_slice() {
                [one] => Ok(one.to_string()),
                _ => anyhow::bail!(
                    "--issuer-ca {}: holds {} CA certificates; give the file of the one CA",
                    path.display(),
                    bundle.cas.len()
                ),
            }
        } else {
            Ok(self
                .issuer_spki_sha256
                .clone()
                .unwrap_or_default()
                .to_lowercase())
        }
    }
}

impl BindingArgs {
    /// The binding, with `note` stored beside it (outside the one-of group, so that it can be
    /// given with any of them).
    fn to_pb(&self, note: &str, issuer: &IssuerArgs) -> anyhow::Result<pb::CertificateBinding> {
        let binding = if let Some(path) = &self.cert_file {
            let certs = crate::tls::load_certs(path)?;
            Binding::CertSha256(hex::encode(Sha256::digest(certs[0].as_ref())))
        } else if let Some(path) = &self.spki_of {
            let certs = crate::tls::load_certs(path)?;
            let leaf = crate::tls::check::Leaf::parse(certs[0].as_ref())
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            Binding::SpkiSha256(leaf.spki_sha256)
        } else if let Some(v) = &self.cert_sha256 {
            Binding::CertSha256(v.to_lowercase())
        } else if let Some(v) = &self.spki_sha256 {
            Binding::SpkiSha256(v.to_lowercase())
        } else {
            Binding::UriSan(self.uri_san.clone().context("give one binding")?)
        };
        Ok(pb::CertificateBinding {
            binding: Some(binding),
            note: note.to_string(),
            issuer_spki_sha256: issuer.spki_sha256()?,
        })
    }
}

pub async fn run(home: &Home, cmd: MemberCommand) -> anyhow::Result<()> {
    let (client, result) = match cmd {
        MemberCommand::List {
            state,
            role,
            client,
        } => {
            let r = client
                .admin(home)
                .await?
                .list_members(pb::ListMembersRequest { state, role })
                .await?
                .into_inner();
            if client.json {
                for m in &r.members {
                    output::json(m)?;
                }
            } else {
                output::member_table(&r.members);
            }
            return Ok(());
        }
        MemberCommand::Show { id, client } => {
            let m = client
                .admin(home)
                .await?
                .get_member(pb::GetMemberRequest { id })
                .await?;
            (client, m)
        }
        MemberCommand::Register {
            id,
            state,
            name,
            roles,
            communities,
            binding,
            issuer,
            note,
            client,
        } => {
            let member = pb::Member {
                id,
                state,
                display_name: name,
                roles,
                communities,
                bindings: vec![binding.to_pb(&note, &issuer)?],
                ..Default::default()
            };
            let m = client
                .admin(home)
                .await?
                .register_member(pb::RegisterMemberRequest {
                    member: Some(member),
                })
                .await?;
            (client, m)
        }
        MemberCommand::Update {
            id,
            name,
            roles,
            communities,
            require_signed,
            client,
        } => {
            let communities =
                communities.map(|c| c.into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>());
            let req = pb::UpdateMemberRequest {
                id,
                display_name: name.unwrap_or_default(),
                set_roles: roles.is_some(),
                roles: roles.unwrap_or_default(),
                set_communities: communities.is_some(),
                communities: communities.unwrap_or_default(),
                set_require_signed: require_signed.is_some(),
                require_signed: require_signed.unwrap_or_default(),
            };
            let m = client.admin(home).await?.update_member(req).await?;
            (client, m)
        }
        MemberCommand::Bind {
            id,
            binding,
            issuer,
            note,
            client,
        } => {
            let req = pb::BindCertificateRequest {
                id,
                binding: Some(binding.to_pb(&note, &issuer)?),
            };
            let m = client.admin(home).await?.bind_certificate(req).await?;
            (client, m)
        }
        MemberCommand::Unbind {
            id,
            binding,
            client,
        } => {
            let req = pb::UnbindCertificateRequest {
                id,
                binding: Some(binding.to_pb("", &IssuerArgs::none())?),
            };
            let m = client.admin(home).await?.unbind_certificate(req).await?;
            (client, m)
        }
        MemberCommand::Suspend { id, reason, client } => {
            let m = client
                .admin(home)
                .await?
                .suspend_member(pb::SetMemberStatusRequest { id, reason })
                .await?;
            (client, m)
        }
        MemberCommand::Reinstate { id, reason, client } => {
            let m = client
                .admin(home)
                .await?
                .reinstate_member(pb::SetMemberStatusRequest { id, reason })
                .await?;
            (client, m)
        }
    };
    let m = result.into_inner();
    if client.json {
        output::json(&m)
    } else {
        output::member(&m);
        Ok(())
    }
}
