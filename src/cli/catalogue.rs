//! `catalogue` (list the measures, add a framework) and `report matrix`.
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{client::ClientArgs, home::Home, output, write::read_message};
use crate::pb;

#[derive(Debug, Subcommand)]
pub enum CatalogueCommand {
    /// List the frameworks and measures submissions may cite.
    List(CatalogueListArgs),
    /// Add a framework from a JSON or YAML file (admins); see examples/framework.yaml.
    Add(CatalogueAddArgs),
}

#[derive(Debug, Args)]
pub struct CatalogueListArgs {
    /// Only this framework (repeatable), such as OSCE-CBM.
    #[arg(long = "framework")]
    pub frameworks: Vec<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct CatalogueAddArgs {
    /// The framework: the `Framework` message of proto/cbm/v1/catalogue.proto.
    pub file: PathBuf,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// States x measures: the latest submission of each state citing each measure that you may
    /// see, with its date; '!' marks a passed review-by date.
    Matrix(MatrixArgs),
}

#[derive(Debug, Args)]
pub struct MatrixArgs {
    /// Only measures of this framework (repeatable).
    #[arg(long = "framework")]
    pub frameworks: Vec<String>,
    /// Only this state (repeatable).
    #[arg(long = "state")]
    pub states: Vec<String>,
    /// Print CSV: one line per state and measure with a submission.
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub async fn catalogue(home: &Home, c: CatalogueCommand) -> anyhow::Result<()> {
    match c {
        CatalogueCommand::List(a) => {
            let mut cat = a.client.catalogue(home).await?;
            let r = cat
                .list_frameworks(pb::ListFrameworksRequest {
                    frameworks: a.frameworks,
                })
                .await?
                .into_inner();
            if a.client.json {
                return r.frameworks.iter().try_for_each(output::json);
            }
            for fw in &r.frameworks {
                println!("{} ({}): {}", fw.id, fw.origin, fw.name);
                let rows: Vec<Vec<String>> = fw
                    .measures
                    .iter()
                    .map(|m| vec![format!("  {}", m.r#ref), m.title.clone()])
                    .collect();
                output::table(&rows);
            }
            Ok(())
        }
        CatalogueCommand::Add(a) => {
            let framework: pb::Framework = read_message(&a.file)?;
            let mut cat = a.client.catalogue(home).await?;
            let added = cat
                .add_framework(pb::AddFrameworkRequest {
                    framework: Some(framework),
                })
                .await?
                .into_inner();
            if a.client.json {
                return output::json(&added);
            }
            println!(
                "added framework {} with {} measures",
                added.id,
                added.measures.len()
            );
            Ok(())
        }
    }
}

pub async fn report(home: &Home, c: ReportCommand) -> anyhow::Result<()> {
    let ReportCommand::Matrix(a) = c;
    let mut cat = a.client.catalogue(home).await?;
    let m = cat
        .implementation_matrix(pb::MatrixRequest {
            frameworks: a.frameworks,
            states: a.states,
        })
        .await?
        .into_inner();
    if a.client.json {
        return output::json(&m);
    }
    if a.csv {
        print!("{}", csv(&m));
        return Ok(());
    }
    // Measures as rows and states as columns: there are more measures than fit across.
    let mut rows = vec![
        std::iter::once("MEASURE".to_string())
            .chain(m.rows.iter().map(|r| r.state.clone()))
            .collect::<Vec<_>>(),
    ];
    for measure in &m.measures {
        let mut line = vec![measure.r#ref.clone()];
        for state in &m.rows {
            let cell = state.cells.iter().find(|c| c.measure_ref == measure.r#ref);
            line.push(match cell {
                Some(c) => format!(
                    "{}{}",
                    c.updated_at.get(..10).unwrap_or(&c.updated_at),
                    if c.overdue { "!" } else { "" }
                ),
                None => "-".into(),
            });
        }
        rows.push(line);
    }
    output::table(&rows);
    println!(
        "as of {}; '!' marks a passed review-by date, '-' no submission",
        m.as_of
    );
    Ok(())
}

/// The matrix as CSV, one line per state and measure that has a submission.
fn csv(m: &pb::Matrix) -> String {
    let mut out =
        String::from("state,measure,submission_id,kind,title,updated_at,review_by,overdue,count\n");
    for row in &m.rows {
        for c in &row.cells {
            let fields = [
                row.state.as_str(),
                &c.measure_ref,
                &c.submission_id,
                &c.kind,
                &c.title,
                &c.updated_at,
                &c.review_by,
                if c.overdue { "true" } else { "false" },
                &c.count.to_string(),
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            out.push_str(&line.join(","));
            out.push('\n');
        }
    }
    out
}

/// RFC 4180 quoting where needed.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
