//! The TLP 2.0 marking definitions published by the OASIS CTI TC with the TLP 2.0 extension
//! definition (`extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d`, in
//! oasis-open/cti-stix-common-objects, `extension-definition-specifications/tlp-2.0`).
//!
//! Consumers recognise these markings by their fixed identifiers, so the identifiers, names and
//! `created` instant below are exactly the published ones; a bundle carries the objects verbatim.
use serde_json::{Value, json};

/// The TLP 2.0 extension definition the marking objects use.
pub const TLP2_EXTENSION: &str = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d";

/// `created` of every published TLP 2.0 marking definition.
pub const TLP2_CREATED: &str = "2022-10-01T00:00:00.000Z";

/// One published marking: the hub's label, the marking id, the extension's `tlp_2_0` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlp2Marking {
    /// The label exactly as the hub and the marking's `name` spell it ("TLP:AMBER+STRICT").
    pub label: &'static str,
    pub id: &'static str,
    /// The extension's `tlp_2_0` property ("amber+strict").
    pub level: &'static str,
}

/// All five, in the order of the TLP 2.0 standard.
pub const TLP2_MARKINGS: [Tlp2Marking; 5] = [
    Tlp2Marking {
        label: "TLP:CLEAR",
        id: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
        level: "clear",
    },
    Tlp2Marking {
        label: "TLP:GREEN",
        id: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
        level: "green",
    },
    Tlp2Marking {
        label: "TLP:AMBER",
        id: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
        level: "amber",
    },
    Tlp2Marking {
        label: "TLP:AMBER+STRICT",
        id: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
        level: "amber+strict",
    },
    Tlp2Marking {
        label: "TLP:RED",
        id: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
        level: "red",
    },
];

/// The marking of a hub label; `None` for anything that is not exactly one of the five labels.
pub fn by_label(label: &str) -> Option<&'static Tlp2Marking> {
    TLP2_MARKINGS.iter().find(|m| m.label == label)
}

/// The marking of a label that may appear in STIX output: any but TLP:RED, which is never
/// exported (`domain.md`: named recipients only, no further disclosure). Every marking the
/// mapping writes comes from here.
pub fn exportable(label: &str) -> Option<&'static Tlp2Marking> {
    by_label(label).filter(|m| m.level != "red")
}

/// The marking with this STIX id, if it is one of the official five.
pub fn by_id(id: &str) -> Option<&'static Tlp2Marking> {
    TLP2_MARKINGS.iter().find(|m| m.id == id)
}

/// The marking-definition object as the extension publishes it.
pub fn object(m: &Tlp2Marking) -> Value {
    json!({
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": m.id,
        "created": TLP2_CREATED,
        "name": m.label,
        "extensions": {
            TLP2_EXTENSION: {
                "extension_type": "property-extension",
                "tlp_2_0": m.level,
            }
        }
    })
}
