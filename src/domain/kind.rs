//! The kinds of submission, derived from the typed body.
use std::str::FromStr;

use crate::pb::submission_content::Body;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    PolicyDocument,
    TerminologyList,
    CriticalInfrastructureApproach,
    PointOfContact,
    IncidentSeveritySchema,
    Notice,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::PolicyDocument,
        Kind::TerminologyList,
        Kind::CriticalInfrastructureApproach,
        Kind::PointOfContact,
        Kind::IncidentSeveritySchema,
        Kind::Notice,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::PolicyDocument => "policy_document",
            Kind::TerminologyList => "terminology_list",
            Kind::CriticalInfrastructureApproach => "critical_infrastructure_approach",
            Kind::PointOfContact => "point_of_contact",
            Kind::IncidentSeveritySchema => "incident_severity_schema",
            Kind::Notice => "notice",
        }
    }

    /// A one-byte code of the kind, for index keys. Stored on disk: fixed per kind, never
    /// derived from the order of [`Kind::ALL`], and never reused.
    pub fn code(self) -> u8 {
        match self {
            Kind::PolicyDocument => 0,
            Kind::TerminologyList => 1,
            Kind::CriticalInfrastructureApproach => 2,
            Kind::PointOfContact => 3,
            Kind::IncidentSeveritySchema => 4,
            Kind::Notice => 5,
        }
    }

    pub fn of(body: &Body) -> Kind {
        match body {
            Body::PolicyDocument(_) => Kind::PolicyDocument,
            Body::TerminologyList(_) => Kind::TerminologyList,
            Body::CriticalInfrastructureApproach(_) => Kind::CriticalInfrastructureApproach,
            Body::PointOfContact(_) => Kind::PointOfContact,
            Body::IncidentSeveritySchema(_) => Kind::IncidentSeveritySchema,
            Body::Notice(_) => Kind::Notice,
        }
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                format!("{s:?} is not a kind; use one of {}", names.join(", "))
            })
    }
}
