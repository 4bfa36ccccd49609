//! The implementation matrix (measures x states), side by side for up to three states, and its
//! CSV export: read through the Catalogue service implementation (audited as
//! `catalogue.matrix`, with the submissions each cell shows).
use askama::Template;
use axum::{body::Body, response::Response};
use http::{HeaderValue, header};

use super::{
    page::{Ctx, Layout, PageError, PageResult, html, when},
    text,
};
use crate::pb::{self, catalogue_server::Catalogue};

/// States compared side by side at most (as the UNIDIR portal does).
const MAX_COMPARED: usize = 3;

/// The matrix request the page's parameters ask for: `framework`, and `state` up to three
/// times for a comparison.
fn request(ctx: &Ctx) -> Result<pb::MatrixRequest, PageError> {
    let states = ctx.params.all("state");
    if states.len() > MAX_COMPARED {
        return Err(PageError(tonic::Status::invalid_argument(format!(
            "state: {}",
            text::COMPARE_TOO_MANY
        ))));
    }
    Ok(pb::MatrixRequest {
        frameworks: ctx.params.one("framework"),
        states,
    })
}

struct Cell {
    id: String,
    title: String,
    kind: String,
    updated: String,
    review_by: String,
    overdue: bool,
    count: u32,
}

struct MeasureRow {
    reference: String,
    title: String,
    cells: Vec<Option<Cell>>,
}

#[derive(Template)]
#[template(path = "matrix.html", config = "src/web/askama.toml")]
struct MatrixPage {
    l: Layout,
    frameworks: Vec<(String, String)>,
    framework: String,
    states: Vec<String>,
    comparing: bool,
    rows: Vec<MeasureRow>,
    as_of: String,
    csv_query: String,
}

pub async fn page(ctx: Ctx) -> PageResult {
    let l = ctx.layout(text::MATRIX_TITLE, "matrix").await?;
    let req = request(&ctx)?;
    let comparing = !req.states.is_empty();
    let frameworks = ctx
        .s
        .catalogue
        .list_frameworks(ctx.req(pb::ListFrameworksRequest::default()))
        .await?
        .into_inner()
        .frameworks
        .into_iter()
        .map(|f| (f.id, f.name))
        .collect();
    let m = ctx
        .s
        .catalogue
        .implementation_matrix(ctx.req(req))
        .await?
        .into_inner();
    let states: Vec<String> = m.rows.iter().map(|r| r.state.clone()).collect();
    let rows = m
        .measures
        .iter()
        .map(|measure| MeasureRow {
            reference: measure.r#ref.clone(),
            title: measure.title.clone(),
            cells: m
                .rows
                .iter()
                .map(|row| {
                    row.cells
                        .iter()
                        .find(|c| c.measure_ref == measure.r#ref)
                        .map(|c| Cell {
                            id: c.submission_id.clone(),
                            title: c.title.clone(),
                            kind: text::kind_name(&c.kind).to_string(),
                            updated: when(&c.updated_at),
                            review_by: c.review_by.clone(),
                            overdue: c.overdue,
                            count: c.count,
                        })
                })
                .collect(),
        })
        .collect();
    Ok(html(&MatrixPage {
        frameworks,
        framework: ctx.params.get("framework").into(),
        states,
        comparing,
        rows,
        as_of: m.as_of,
        csv_query: ctx.params.with("page", ""),
        l,
    }))
}

/// The same matrix as CSV, in the format of `cbm-hub matrix --csv`.
pub async fn csv(ctx: Ctx) -> PageResult {
    let req = request(&ctx)?;
    let m = ctx
        .s
        .catalogue
        .implementation_matrix(ctx.req(req))
        .await?
        .into_inner();
    let mut r = Response::new(Body::from(crate::cli::catalogue::csv(&m)));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static(text::MATRIX_CSV_DISPOSITION),
    );
    Ok(r)
}
