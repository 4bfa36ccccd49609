//! Readable and JSON output of client commands.
use serde::Serialize;

use crate::pb;

/// One message in the proto3 JSON mapping (pbjson's, for the generated types) on one line.
pub fn json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(v)?);
    Ok(())
}

pub fn change(r: &pb::PublishResponse, verb: &str, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(r);
    }
    let again = if r.replayed {
        " (repeated request: the original result)"
    } else {
        ""
    };
    println!(
        "{verb} {} revision {} at {} (sequence {}){again}",
        r.id, r.revision, r.accepted_at, r.sequence
    );
    if let Some(receipt) = &r.receipt {
        println!(
            "receipt: audit leaf {} in a log of {} entries, signed by hub {}",
            receipt.leaf_index,
            receipt.checkpoint.as_ref().map_or(0, |c| c.tree_size),
            receipt.hub_id
        );
    }
    Ok(())
}

pub fn submission(s: &pb::Submission, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(s);
    }
    println!("id:        {}", s.id);
    println!(
        "revision:  {}  ({}, sequence {})",
        s.revision, s.status, s.sequence
    );
    println!("kind:      {}", s.kind);
    println!("publisher: {} ({})", s.publisher, s.state);
    println!("created:   {}", s.created_at);
    println!("updated:   {}", s.updated_at);
    println!("hash:      {}", s.content_hash);
    if !s.signature.is_empty() {
        println!(
            "signed:    yes (COSE_Sign1, {} bytes; `verify` checks it)",
            s.signature.len()
        );
    }
    if !s.withdrawal_reason.is_empty() {
        println!("withdrawn: {}", s.withdrawal_reason);
    }
    match &s.content {
        Some(c) => {
            println!("---");
            print!("{}", content_yaml(c)?);
        }
        None => println!("(content not shown: the submission is withdrawn)"),
    }
    Ok(())
}

/// Content as a submission file: YAML of the proto3 JSON mapping, in the contract's field order,
/// empty fields left out, the body named by its kind (through a JSON value; YAML tags would be
/// `!notice`). `revise` takes it back.
pub fn content_yaml(c: &pb::SubmissionContent) -> anyhow::Result<String> {
    let mut value = serde_json::to_value(c)?;
    crate::convert::prune_empty(&mut value);
    Ok(serde_norway::to_string(&value)?)
}

pub fn list_page(page: &pb::ListResponse, as_json: bool, header: bool) -> anyhow::Result<()> {
    if as_json {
        for s in &page.submissions {
            json(s)?;
        }
        return Ok(());
    }
    if header {
        println!(
            "{:<36}  {:>3}  {:<32}  {:<10}  {:<16}  {:<24}  TITLE",
            "ID", "REV", "KIND", "PUBLISHER", "TLP", "UPDATED"
        );
    }
    for s in &page.submissions {
        let (tlp, title) = s
            .content
            .as_ref()
            .map_or(("-", "(withdrawn)"), |c| (c.tlp.as_str(), c.title.as_str()));
        println!(
            "{:<36}  {:>3}  {:<32}  {:<10}  {:<16}  {:<24}  {title}",
            s.id, s.revision, s.kind, s.publisher, tlp, s.updated_at
        );
    }
    Ok(())
}

pub fn member(m: &pb::Member) {
    println!("member:      {} ({})", m.id, m.display_name);
    println!("state:       {}", m.state);
    println!("status:      {}", m.status);
    println!("roles:       {}", m.roles.join(", "));
    if m.require_signed {
        println!("signatures:  required on every change");
    }
    println!(
        "communities: {}",
        if m.communities.is_empty() {
            "-".to_string()
        } else {
            m.communities.join(", ")
        }
    );
    for b in &m.bindings {
        let mut text = match &b.binding {
            Some(pb::certificate_binding::Binding::CertSha256(v)) => format!("cert_sha256 {v}"),
            Some(pb::certificate_binding::Binding::SpkiSha256(v)) => format!("spki_sha256 {v}"),
            Some(pb::certificate_binding::Binding::UriSan(v)) => format!("uri_san {v}"),
            None => "?".into(),
        };
        let needs_issuer = !matches!(
            b.binding,
            Some(pb::certificate_binding::Binding::CertSha256(_))
        );
        if !b.issuer_spki_sha256.is_empty() {
            text.push_str(&format!(
                " issued by CA spki_sha256 {}",
                b.issuer_spki_sha256
            ));
        } else if needs_issuer {
            text.push_str(" (no issuing CA recorded: accepted only while the hub trusts one CA)");
        }
        println!(
            "binding:     {text}{}",
            if b.note.is_empty() {
                String::new()
            } else {
                format!(" ({})", b.note)
            }
        );
    }
}

pub fn member_table(members: &[pb::Member]) {
    println!(
        "{:<16}  {:<8}  {:<10}  {:<28}  {:<16}  NAME",
        "ID", "STATE", "STATUS", "ROLES", "COMMUNITIES"
    );
    for m in members {
        println!(
            "{:<16}  {:<8}  {:<10}  {:<28}  {:<16}  {}",
            m.id,
            m.state,
            m.status,
            m.roles.join(","),
            m.communities.join(","),
            m.display_name
        );
    }
}

/// Prints rows as columns aligned to their widest cell; the first row is the header.
pub fn table(rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        println!("{}", line.trim_end());
    }
}
