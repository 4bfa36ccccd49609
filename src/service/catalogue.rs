//! The Catalogue service: the CBM catalogue and the implementation matrix.
use std::collections::BTreeSet;

use tonic::{Request, Response, Status};

use super::auth::{Caller, blocking_audited};
use crate::{
    domain::{Invalid, kind::Kind, matrix, member::Member, principal::Action, visibility},
    pb::{self, catalogue_server::Catalogue},
    store::Store,
};

/// The kinds that report on implementation; notices are exchanges and stay out of the matrix.
const REPORTING: [Kind; 5] = [
    Kind::PolicyDocument,
    Kind::TerminologyList,
    Kind::CriticalInfrastructureApproach,
    Kind::PointOfContact,
    Kind::IncidentSeveritySchema,
];

#[derive(Clone)]
pub struct CatalogueService {
    pub store: Store,
}

/// The frameworks named (all if none), refusing unknown ids.
fn frameworks(store: &Store, ids: &[String]) -> Result<Vec<pb::Framework>, Invalid> {
    let catalogue = store.catalogue();
    let mut errs = Invalid::default();
    for (i, id) in ids.iter().enumerate() {
        if !catalogue.frameworks().iter().any(|f| &f.id == id) {
            errs.push(
                format!("frameworks[{i}]"),
                format!("{id:?} is not a framework of the catalogue"),
            );
        }
    }
    errs.into_result()?;
    Ok(catalogue
        .frameworks()
        .iter()
        .filter(|f| ids.is_empty() || ids.contains(&f.id))
        .map(|f| f.to_pb())
        .collect())
}

/// The latest revisions of active reporting submissions that `reader` may see, each cut down to
/// what the matrix reads: one submission is decoded at a time and its content dropped at once,
/// so the matrix never holds every content.
fn visible_reports(store: &Store, reader: &Member) -> Result<Vec<pb::Submission>, Status> {
    let mut out = Vec::new();
    for kind in REPORTING {
        for id in store.ids_of_kind(kind, None) {
            let Some((head, latest)) = store.latest_seen_by(reader, &id?)? else {
                continue;
            };
            let Some(latest) = latest.submission.filter(|_| !head.withdrawn) else {
                continue;
            };
            if let Some(view) = visibility::view(reader, &head.standing(), &latest, &latest) {
                out.push(for_matrix(view));
            }
        }
    }
    Ok(out)
}

/// The fields of a submission [`matrix::build`] reads.
fn for_matrix(s: pb::Submission) -> pb::Submission {
    let content = s.content.map(|c| pb::SubmissionContent {
        title: c.title,
        cbm_refs: c.cbm_refs,
        review_by: c.review_by,
        ..Default::default()
    });
    pb::Submission {
        id: s.id,
        state: s.state,
        kind: s.kind,
        updated_at: s.updated_at,
        content,
        ..Default::default()
    }
}

fn build_matrix(
    store: &Store,
    reader: &Member,
    r: &pb::MatrixRequest,
) -> Result<pb::Matrix, Status> {
    let measures: Vec<pb::Measure> = frameworks(store, &r.frameworks)?
        .into_iter()
        .flat_map(|f| f.measures)
        .collect();
    let registered: BTreeSet<String> = store
        .registry()
        .members()
        .iter()
        // States report through their publishing bodies; the hub's own admin and auditor
        // members (state "HUB") report nothing.
        .filter(|m| m.is_active() && m.roles.contains(crate::domain::member::Role::Publisher))
        .map(|m| m.state.clone())
        .collect();
    let states = if r.states.is_empty() {
        registered
    } else {
        // A mistyped state is an error, not an empty row.
        let mut errs = crate::domain::Invalid::default();
        for (i, s) in r.states.iter().enumerate() {
            if !registered.contains(s) {
                errs.push(
                    format!("states[{i}]"),
                    format!("no active publishing member of state {s:?}"),
                );
            }
        }
        errs.into_result()?;
        r.states.iter().cloned().collect()
    };
    let visible = visible_reports(store, reader)?;
    let today = time::OffsetDateTime::now_utc().date();
    Ok(matrix::build(measures, states, &visible, today))
}

#[tonic::async_trait]
impl Catalogue for CatalogueService {
    async fn list_frameworks(
        &self,
        req: Request<pb::ListFrameworksRequest>,
    ) -> Result<Response<pb::ListFrameworksResponse>, Status> {
        // Reference data every member needs to cite measures: any active member, not audited.
        Caller::of(&self.store, &req).authenticate(Action::WhoAmI)?;
        let frameworks = frameworks(&self.store, &req.get_ref().frameworks)?;
        Ok(Response::new(pb::ListFrameworksResponse { frameworks }))
    }

    async fn add_framework(
        &self,
        req: Request<pb::AddFrameworkRequest>,
    ) -> Result<Response<pb::Framework>, Status> {
        const NAME: &str = "catalogue.add_framework";
        let mut caller = Caller::of(&self.store, &req);
        let r = req.into_inner();
        let fw = r.framework.unwrap_or_default();
        if let Err(status) = caller.authenticate(Action::Administer) {
            return Err(caller.refuse(NAME, &fw.id, status).await);
        }
        let added = self.store.add_framework(fw, caller.origin).await?;
        Ok(Response::new(added))
    }

    async fn implementation_matrix(
        &self,
        req: Request<pb::MatrixRequest>,
    ) -> Result<Response<pb::Matrix>, Status> {
        let r = req.get_ref().clone();
        blocking_audited(
            &self.store,
            &req,
            "catalogue.matrix",
            "",
            Action::Read,
            move |store, who| build_matrix(&store, &who.member, &r),
            |m| {
                m.rows
                    .iter()
                    .flat_map(|row| row.cells.iter().map(|c| c.submission_id.clone()))
                    .collect()
            },
        )
        .await
        .map(Response::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_of_cut_down_submissions_is_the_matrix_of_whole_ones() {
        let sub =
            |id: &str, state: &str, updated: &str, refs: &[&str], review_by: &str| pb::Submission {
                id: id.into(),
                revision: 3,
                publisher: format!("{state}-MFA"),
                state: state.into(),
                kind: "policy_document".into(),
                status: "active".into(),
                updated_at: updated.into(),
                content_hash: "ab".repeat(32),
                content: Some(pb::SubmissionContent {
                    title: format!("title {id}"),
                    summary: "a long summary".repeat(100),
                    tlp: "TLP:CLEAR".into(),
                    cbm_refs: refs.iter().map(|r| r.to_string()).collect(),
                    review_by: review_by.into(),
                    body: Some(pb::submission_content::Body::PolicyDocument(
                        Default::default(),
                    )),
                    ..Default::default()
                }),
                ..Default::default()
            };
        let whole = vec![
            sub(
                "a",
                "EE",
                "2026-01-01T00:00:00.000Z",
                &["UN-CBM-1", "UN-CBM-3"],
                "",
            ),
            sub(
                "b",
                "EE",
                "2026-02-01T00:00:00.000Z",
                &["UN-CBM-3"],
                "2020-01-01",
            ),
            sub(
                "c",
                "CL",
                "2026-03-01T00:00:00.000Z",
                &["UN-CBM-1"],
                "2099-01-01",
            ),
            pb::Submission {
                content: None,
                ..sub("d", "CL", "2026-04-01T00:00:00.000Z", &[], "")
            },
        ];
        let measures: Vec<pb::Measure> = ["UN-CBM-1", "UN-CBM-3"]
            .iter()
            .map(|r| pb::Measure {
                r#ref: r.to_string(),
                ..Default::default()
            })
            .collect();
        let states = || ["CL".to_string(), "EE".to_string()];
        let today = time::macros::date!(2026 - 06 - 01);
        let cut: Vec<pb::Submission> = whole.iter().cloned().map(for_matrix).collect();
        assert!(
            cut.iter()
                .all(|s| s.content.as_ref().is_none_or(|c| c.summary.is_empty()))
        );
        assert_eq!(
            matrix::build(measures.clone(), states(), &cut, today),
            matrix::build(measures, states(), &whole, today)
        );
    }
}
