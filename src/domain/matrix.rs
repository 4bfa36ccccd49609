//! The implementation matrix: states x measures, each cell the latest submission of the state
//! citing the measure, among the submissions a reader may see.
use std::collections::{BTreeMap, HashSet};

use time::Date;

use super::clock;
use crate::pb;

/// Builds the matrix over `visible` (latest revisions, already filtered to what the reader may
/// see and to active submissions), with one row per state of `states`, in order.
pub fn build(
    measures: Vec<pb::Measure>,
    states: impl IntoIterator<Item = String>,
    visible: &[pb::Submission],
    today: Date,
) -> pb::Matrix {
    let columns: HashSet<&str> = measures.iter().map(|m| m.r#ref.as_str()).collect();
    let mut rows: BTreeMap<String, BTreeMap<String, pb::MatrixCell>> =
        states.into_iter().map(|s| (s, BTreeMap::new())).collect();
    for s in visible {
        let Some(content) = s.content.as_ref() else {
            continue;
        };
        let Some(row) = rows.get_mut(&s.state) else {
            continue;
        };
        for r in content
            .cbm_refs
            .iter()
            .filter(|r| columns.contains(r.as_str()))
        {
            let cell = row.entry(r.clone()).or_insert_with(|| pb::MatrixCell {
                measure_ref: r.clone(),
                ..Default::default()
            });
            cell.count += 1;
            if s.updated_at > cell.updated_at {
                cell.submission_id = s.id.clone();
                cell.kind = s.kind.clone();
                cell.title = content.title.clone();
                cell.updated_at = s.updated_at.clone();
                cell.review_by = content.review_by.clone();
                cell.overdue = overdue(&content.review_by, today);
            }
        }
    }
    let order: BTreeMap<&str, usize> = measures
        .iter()
        .enumerate()
        .map(|(i, m)| (m.r#ref.as_str(), i))
        .collect();
    let rows = rows
        .into_iter()
        .map(|(state, cells)| {
            let mut cells: Vec<_> = cells.into_values().collect();
            cells.sort_by_key(|c| order.get(c.measure_ref.as_str()).copied());
            pb::MatrixRow { state, cells }
        })
        .collect();
    pb::Matrix {
        as_of: today.to_string(),
        measures,
        rows,
    }
}

/// A review-by date that has passed.
pub fn overdue(review_by: &str, today: Date) -> bool {
    clock::parse_date(review_by).is_ok_and(|d| d < today)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(id: &str, state: &str, updated: &str, refs: &[&str], review_by: &str) -> pb::Submission {
        pb::Submission {
            id: id.into(),
            state: state.into(),
            kind: "policy_document".into(),
            updated_at: updated.into(),
            content: Some(pb::SubmissionContent {
                title: format!("title {id}"),
                cbm_refs: refs.iter().map(|r| r.to_string()).collect(),
                review_by: review_by.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn each_cell_is_the_latest_citing_submission_of_its_state() {
        let measures = ["UN-CBM-1", "UN-CBM-3"]
            .map(|r| pb::Measure {
                r#ref: r.into(),
                ..Default::default()
            })
            .to_vec();
        let visible = [
            sub(
                "a",
                "EE",
                "2026-01-01T00:00:00.000Z",
                &["UN-CBM-3"],
                "2026-06-01",
            ),
            sub(
                "b",
                "EE",
                "2026-03-01T00:00:00.000Z",
                &["UN-CBM-3", "UN-CBM-1"],
                "2027-01-01",
            ),
            sub(
                "c",
                "CL",
                "2026-02-01T00:00:00.000Z",
                &["UN-CBM-3", "OAS-CBM-1"],
                "2026-06-01",
            ),
            // A state not asked for is left out.
            sub("d", "FR", "2026-02-01T00:00:00.000Z", &["UN-CBM-1"], ""),
        ];
        let today = clock::parse_date("2026-11-24").unwrap();
        let m = build(
            measures,
            ["CL".into(), "EE".into(), "PE".into()],
            &visible,
            today,
        );
        let states: Vec<_> = m.rows.iter().map(|r| r.state.as_str()).collect();
        assert_eq!(states, ["CL", "EE", "PE"]);
        let ee = &m.rows[1].cells;
        assert_eq!(ee.len(), 2);
        assert_eq!(
            (ee[0].measure_ref.as_str(), ee[0].submission_id.as_str()),
            ("UN-CBM-1", "b")
        );
        assert_eq!(
            (ee[1].submission_id.as_str(), ee[1].count, ee[1].overdue),
            ("b", 2, false)
        );
        let cl = &m.rows[0].cells;
        assert_eq!((cl.len(), cl[0].overdue), (1, true));
        assert!(m.rows[2].cells.is_empty());
    }
}
