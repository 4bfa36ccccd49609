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

/// The latest revisions of active reporting submissions that `reader` may see.
fn visible_reports(store: &Store, reader: &Member) -> Result<Vec<pb::Submission>, Status> {
    let mut out = Vec::new();
    for kind in REPORTING {
        for id in store.ids_of_kind(kind, None) {
            let Some((head, latest)) = store.latest(&id?)? else {
                continue;
            };
            let Some(latest) = latest.submission.filter(|_| !head.withdrawn) else {
                continue;
            };
            if let Some(view) = visibility::view(reader, &head.standing(), &latest, &latest) {
                out.push(view);
            }
        }
    }
    Ok(out)
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
