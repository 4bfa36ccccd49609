//! `cbm-hub pki`: issue member certificates from the dev CA of a home directory.
use anyhow::Context;
use clap::{Args, Subcommand};
use sha2::{Digest, Sha256};

use super::home::{Home, Profile, write_file};
use crate::tls::devpki::{DevCa, LeafSpec};

#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Issue a client certificate for a member from the dev CA and write a client profile for
    /// it. Prints the certificate's SHA-256 to bind with `member register --cert-sha256` or
    /// `member bind`.
    Issue(IssueArgs),
    /// Export a member's certificate and key (written by `pki issue` or the first `serve`) as
    /// a password-protected PKCS#12 file, to import into a browser for the web portal. Uses
    /// the `openssl` command (AES-256-CBC, PBKDF2 and an HMAC-SHA-256 MAC: what current
    /// Chrome, Edge, Firefox and Safari import).
    ExportP12(ExportP12Args),
}

#[derive(Debug, Args)]
pub struct ExportP12Args {
    /// Member id whose certificate and key to export.
    pub member: String,
    /// Where to write the file; default: pki/members/ID.p12 in the home directory.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// File whose first line is the password to protect the export with; without it a random
    /// password is generated and printed.
    #[arg(long)]
    pub password_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct IssueArgs {
    /// Member id the certificate is for (also the profile name).
    pub member: String,
    /// Days of validity.
    #[arg(long, default_value_t = 365)]
    pub days: i64,
    /// Endpoint written into the profile; default: this home's hub (the port its config
    /// listens on, at localhost), else https://localhost:50051.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Replace the certificate and key already issued to this member (a binding to the old
    /// certificate then no longer matches: bind the new one).
    #[arg(long)]
    pub force: bool,
}

/// The endpoint of the hub this home configures: its listen port at localhost (the name the
/// dev server certificate is for).
fn home_endpoint(home: &Home) -> String {
    let checked = crate::config::check(
        &home.config(),
        &crate::config::process_env(),
        &Default::default(),
    );
    match checked.config {
        // Port 0 (a test's random port) names no hub to reach.
        Ok(c) if c.listen.port() != 0 => format!("https://localhost:{}", c.listen.port()),
        _ => "https://localhost:50051".into(),
    }
}

pub async fn run(home: &Home, cmd: PkiCommand) -> anyhow::Result<()> {
    match cmd {
        PkiCommand::ExportP12(a) => export_p12(home, a),
        PkiCommand::Issue(a) => {
            crate::domain::member::check_member_id(&a.member).map_err(anyhow::Error::msg)?;
            let ca = load_ca(home)?;
            anyhow::ensure!(
                a.force || !home.member_cert(&a.member).exists(),
                "{} already has a certificate ({}); replacing it locks out a member bound to it: pass --force to replace it, then bind the new one",
                a.member,
                home.member_cert(&a.member).display()
            );
            let endpoint = a.endpoint.clone().unwrap_or_else(|| home_endpoint(home));
            let sha = issue_member(home, &ca, &a.member, a.days, &endpoint)?;
            println!("certificate: {}", home.member_cert(&a.member).display());
            println!("key:         {}", home.member_key(&a.member).display());
            println!("profile:     {}", home.profile_path(&a.member).display());
            println!("cert_sha256: {sha}");
            // The SPKI hash survives re-issuing a certificate for the same key: the binding
            // to use for rotations (`member bind --spki-sha256`).
            let der = crate::tls::load_certs(&home.member_cert(&a.member))?;
            let issuer = crate::tls::bundle::Bundle::load(&home.ca_cert())?;
            let issuer = issuer
                .cas
                .first()
                .map(|c| c.spki_sha256.as_str())
                .unwrap_or("");
            let facts = crate::tls::identity::certificate_facts(der[0].as_ref(), issuer)
                .map_err(anyhow::Error::msg)?;
            println!("spki_sha256: {}", facts.spki_sha256);
            // The CA a `--spki-sha256` or `--uri-san` binding is tied to (`--issuer-spki-sha256`).
            println!("issuer_spki_sha256: {issuer}");
            Ok(())
        }
    }
}

/// `pki export-p12`: the member's certificate, the dev CA's certificate and the key in one
/// PKCS#12 file, by the openssl command line.
fn export_p12(home: &Home, a: ExportP12Args) -> anyhow::Result<()> {
    crate::domain::member::check_member_id(&a.member).map_err(anyhow::Error::msg)?;
    let (cert, key) = (home.member_cert(&a.member), home.member_key(&a.member));
    for f in [&cert, &key] {
        anyhow::ensure!(
            f.exists(),
            "{} not found: issue the member's certificate first (`cbm-hub pki issue {}`)",
            f.display(),
            a.member
        );
    }
    let (password, generated) = match &a.password_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading --password-file {}", path.display()))?;
            let line = text.lines().next().unwrap_or_default().to_string();
            anyhow::ensure!(
                !line.is_empty(),
                "--password-file {}: the first line is empty",
                path.display()
            );
            (line, false)
        }
        None => {
            let mut bytes = [0u8; 12];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
                .map_err(|_| anyhow::anyhow!("no randomness for a password"))?;
            (
                base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes),
                true,
            )
        }
    };
    let out = a
        .out
        .unwrap_or_else(|| home.pki().join("members").join(format!("{}.p12", a.member)));
    // The password goes through the environment, never the command line (visible in `ps`).
    let status = std::process::Command::new("openssl")
        .args(["pkcs12", "-export", "-name", &a.member, "-inkey"])
        .arg(&key)
        .arg("-in")
        .arg(&cert)
        .arg("-certfile")
        .arg(home.ca_cert())
        .arg("-out")
        .arg(&out)
        .args(["-passout", "env:CBM_HUB_P12_PASSWORD"])
        .env("CBM_HUB_P12_PASSWORD", &password)
        .status()
        .context("running `openssl pkcs12 -export` (is openssl installed?)")?;
    anyhow::ensure!(status.success(), "openssl pkcs12 -export failed ({status})");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o600))?;
    }
    println!("pkcs12:   {}", out.display());
    if generated {
        println!("password: {password}");
    }
    Ok(())
}

pub fn load_ca(home: &Home) -> anyhow::Result<DevCa> {
    let cert = std::fs::read_to_string(home.ca_cert()).with_context(|| {
        format!(
            "reading the dev CA {} (run `cbm-hub init` first; a hub set up with your own PKI \
             has none: issue certificates with your PKI and register them with `cbm-hub \
             member register ID ... --spki-of CERT.pem`)",
            home.ca_cert().display()
        )
    })?;
    let key = std::fs::read_to_string(home.ca_key())
        .with_context(|| format!("reading {}", home.ca_key().display()))?;
    DevCa::load(&cert, &key).map_err(anyhow::Error::msg)
}

/// Issues a client certificate for `member`, writes it, its key and a profile; returns the
/// certificate's SHA-256 (the binding to register).
pub fn issue_member(
    home: &Home,
    ca: &DevCa,
    member: &str,
    days: i64,
    endpoint: &str,
) -> anyhow::Result<String> {
    let mut spec = LeafSpec::client(member, days);
    spec.uri_sans = vec![format!("urn:cbm:member:{member}")];
    let issued = ca.issue(&spec).map_err(anyhow::Error::msg)?;
    write_file(&home.member_cert(member), &issued.cert_pem, false)?;
    write_file(&home.member_key(member), &issued.key_pem, true)?;
    home.write_profile(
        member,
        &Profile {
            member: member.to_string(),
            endpoint: endpoint.to_string(),
            server_name: "localhost".into(),
            ca: home.ca_cert(),
            cert: home.member_cert(member),
            key: home.member_key(member),
        },
    )?;
    Ok(hex::encode(Sha256::digest(&issued.cert_der)))
}
