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
    /// Print CSV: a header, then one line per filled cell (state and measure with a
    /// submission). --json prints the same records, one JSON object per line.
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
        for cell in cells(&m) {
            println!("{}", serde_json::Value::Object(cell.into_iter().collect()));
        }
        return Ok(());
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

/// One record per filled cell (a state and a measure it has a submission for), the same for
/// `--csv` and `--json`: the row's `state`, the `MatrixCell` fields of catalogue.proto under
/// their proto names, and the matrix's `as_of` (the date `overdue` compares `review_by` with).
fn cells(m: &pb::Matrix) -> Vec<Vec<(String, serde_json::Value)>> {
    use serde_json::json;
    let mut out = Vec::new();
    for row in &m.rows {
        for c in &row.cells {
            let fields = [
                ("state", json!(row.state)),
                ("measure_ref", json!(c.measure_ref)),
                ("submission_id", json!(c.submission_id)),
                ("kind", json!(c.kind)),
                ("title", json!(c.title)),
                ("updated_at", json!(c.updated_at)),
                ("review_by", json!(c.review_by)),
                ("overdue", json!(c.overdue)),
                ("count", json!(c.count)),
                ("as_of", json!(m.as_of)),
            ];
            out.push(fields.map(|(k, v)| (k.to_string(), v)).into());
        }
    }
    out
}

/// The column names of [`cells`], for the CSV header (also when no cell is filled).
const COLUMNS: &str =
    "state,measure_ref,submission_id,kind,title,updated_at,review_by,overdue,count,as_of";

/// The matrix as CSV: a header, then one line per filled cell (see [`cells`]).
pub(crate) fn csv(m: &pb::Matrix) -> String {
    let mut out = format!("{COLUMNS}\n");
    for cell in cells(m) {
        let line: Vec<String> = cell
            .iter()
            .map(|(_, v)| match v {
                serde_json::Value::String(s) => csv_field(s),
                other => other.to_string(),
            })
            .collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

/// RFC 4180 quoting where needed, and no formula: a value a spreadsheet would read as one
/// (starting with = + - @, a tab or a carriage return; a title is the publisher's text) gets a
/// leading single quote, as OWASP's CSV injection advice says, so it is shown as text.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("Strategy 2024"), "Strategy 2024");
        assert_eq!(csv_field("a, \"b\""), "\"a, \"\"b\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        for formula in ["+1", "-1+2", "@SUM(A1)", "\tx", "=1"] {
            assert!(csv_field(formula).starts_with('\''), "{formula:?}");
        }
        assert_eq!(csv_field("\r=1"), "\"'\r=1\"");
        // Dates and ids start with digits or letters: unchanged.
        assert_eq!(csv_field("2026-01-01T00:00:00Z"), "2026-01-01T00:00:00Z");
    }

    #[test]
    fn a_title_like_a_formula_is_text_in_the_matrix_csv() {
        let m = pb::Matrix {
            as_of: "2026-01-01".into(),
            rows: vec![pb::MatrixRow {
                state: "EE".into(),
                cells: vec![pb::MatrixCell {
                    measure_ref: "UN-CBM-1".into(),
                    title: "=cmd|' /C calc'!A0".into(),
                    ..Default::default()
                }],
            }],
            ..Default::default()
        };
        let csv = csv(&m);
        let line = csv.lines().nth(1).unwrap();
        assert!(line.contains(",'=cmd|' /C calc'!A0,"), "{line}");
    }
}
