//! The submission filters shared by `list` and `subscribe`.
use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct FilterArgs {
    /// Only this kind (repeatable): policy_document, terminology_list,
    /// critical_infrastructure_approach, point_of_contact, incident_severity_schema, notice.
    #[arg(long = "kind")]
    pub kinds: Vec<String>,
    /// Only publishers of this state or organisation code (repeatable).
    #[arg(long = "state")]
    pub states: Vec<String>,
    /// Only this publisher member id (repeatable).
    #[arg(long = "publisher")]
    pub publishers: Vec<String>,
    /// Only this TLP label (repeatable), such as TLP:GREEN.
    #[arg(long = "tlp")]
    pub tlp: Vec<String>,
    /// Only submissions citing this CBM reference (repeatable), such as UN-CBM-1.
    #[arg(long = "cbm")]
    pub cbm_refs: Vec<String>,
}

impl FilterArgs {
    /// A List request with these filters and every other field at its default.
    pub fn list_request(self) -> crate::pb::ListRequest {
        crate::pb::ListRequest {
            kinds: self.kinds,
            states: self.states,
            publishers: self.publishers,
            tlp: self.tlp,
            cbm_refs: self.cbm_refs,
            ..Default::default()
        }
    }
}
