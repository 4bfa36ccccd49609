//! The CBM catalogue: the measures submissions cite, with stable references.
//!
//! The built-in catalogue is `data/catalogue.json`, compiled into the binary so that a fresh
//! hub validates references with no set-up.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Invalid, member::check_code, validate::fields as f};
use crate::pb;

/// One measure, such as `UN-CBM-3`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Measure {
    /// Stable reference cited by submissions.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Number of the measure within its framework, as the source numbers it.
    pub number: String,
    pub title: String,
    #[serde(default)]
    pub summary: String,
}

/// A framework: a set of measures from one source text.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Framework {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub notes: String,
    pub measures: Vec<Measure>,
    /// Added by an administrator rather than shipped with the hub.
    #[serde(skip)]
    pub added: bool,
}

impl Framework {
    pub fn from_pb(fw: pb::Framework, added: bool) -> Framework {
        Framework {
            id: fw.id,
            name: fw.name,
            source: fw.source,
            notes: String::new(),
            measures: fw
                .measures
                .into_iter()
                .map(|m| Measure {
                    reference: m.r#ref,
                    number: m.number,
                    title: m.title,
                    summary: m.summary,
                })
                .collect(),
            added,
        }
    }

    pub fn to_pb(&self) -> pb::Framework {
        pb::Framework {
            id: self.id.clone(),
            name: self.name.clone(),
            source: self.source.clone(),
            measures: self
                .measures
                .iter()
                .map(|m| pb::Measure {
                    r#ref: m.reference.clone(),
                    number: m.number.clone(),
                    title: m.title.clone(),
                    summary: m.summary.clone(),
                })
                .collect(),
            origin: if self.added { "added" } else { "builtin" }.into(),
        }
    }

    /// Checks a framework an administrator adds: every field, every problem at once. References
    /// are `{framework id}-{number}`, so they read the same way as the built-in ones.
    pub fn check(&self) -> Result<(), Invalid> {
        let mut errs = Invalid::default();
        if let Err(e) = check_code(&self.id, "framework id") {
            errs.push("framework.id", e);
        }
        f::required(&mut errs, "framework.name", &self.name, 200, false);
        f::optional(&mut errs, "framework.source", &self.source, 1000, true);
        if f::count(&mut errs, "framework.measures", &self.measures, 1, 200) {
            let mut seen = std::collections::HashSet::new();
            for (i, m) in self.measures.iter().enumerate() {
                let p = format!("framework.measures[{i}]");
                let number_ok =
                    f::required(&mut errs, &format!("{p}.number"), &m.number, 16, false)
                        && m.number
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '.');
                if !number_ok && !m.number.is_empty() && m.number.chars().count() <= 16 {
                    errs.push(
                        format!("{p}.number"),
                        "may hold only letters, digits and '.'",
                    );
                }
                let expected = format!("{}-{}", self.id, m.number);
                if m.reference != expected {
                    errs.push(
                        format!("{p}.ref"),
                        format!(
                            "{:?} must be {expected:?} (framework id, '-', number)",
                            m.reference
                        ),
                    );
                } else if !seen.insert(&m.reference) {
                    errs.push(format!("{p}.ref"), format!("{} appears twice", m.reference));
                }
                f::required(&mut errs, &format!("{p}.title"), &m.title, 200, false);
                f::optional(&mut errs, &format!("{p}.summary"), &m.summary, 2000, true);
            }
        }
        errs.into_result()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    version: u32,
    frameworks: Vec<Framework>,
}

/// The catalogue in memory, indexed by reference.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    frameworks: Vec<Framework>,
    /// Reference -> (framework index, measure index).
    index: BTreeMap<String, (usize, usize)>,
}

const BUILTIN: &str = include_str!("../../data/catalogue.json");

impl Catalogue {
    /// The catalogue shipped with the hub.
    pub fn builtin() -> Catalogue {
        // The file is part of the source tree and checked by a unit test, so a failure here is a
        // build defect, not a user error.
        Catalogue::from_json(BUILTIN).expect("data/catalogue.json is valid")
    }

    /// The built-in catalogue with the frameworks administrators added. An added framework
    /// wins over a built-in one it clashes with (same id, or a shared reference): a release
    /// that starts shipping a framework an admin already added must still open the data, and
    /// what submissions cite must keep its meaning. Returns the built-in ids left out.
    pub fn with_added(added: Vec<Framework>) -> Result<(Catalogue, Vec<String>), String> {
        let builtin = Catalogue::builtin();
        let clashes = |b: &Framework| {
            added.iter().any(|a| {
                a.id == b.id
                    || a.measures
                        .iter()
                        .any(|m| b.measures.iter().any(|bm| bm.reference == m.reference))
            })
        };
        let mut cat = Catalogue::default();
        let mut skipped = Vec::new();
        for b in builtin.frameworks {
            if clashes(&b) {
                skipped.push(b.id);
            } else {
                cat.add_framework(b)?;
            }
        }
        for a in added {
            cat.add_framework(a)?;
        }
        Ok((cat, skipped))
    }

    /// Parses and checks a catalogue document: unique references, every measure named.
    pub fn from_json(text: &str) -> Result<Catalogue, String> {
        let file: CatalogueFile =
            serde_json::from_str(text).map_err(|e| format!("catalogue is not valid: {e}"))?;
        let mut cat = Catalogue::default();
        for fw in file.frameworks {
            cat.add_framework(fw)?;
        }
        Ok(cat)
    }

    /// Adds a framework; refuses duplicate framework ids or measure references.
    pub fn add_framework(&mut self, fw: Framework) -> Result<(), String> {
        if self.frameworks.iter().any(|f| f.id == fw.id) {
            return Err(format!("framework {} already exists", fw.id));
        }
        // Every check before any change: a refused framework leaves the catalogue as it was.
        let mut seen = std::collections::BTreeSet::new();
        for (mi, m) in fw.measures.iter().enumerate() {
            if m.reference.is_empty() || m.title.is_empty() {
                return Err(format!(
                    "framework {}: measure {} lacks a reference or title",
                    fw.id,
                    mi + 1
                ));
            }
            if self.index.contains_key(&m.reference) || !seen.insert(m.reference.as_str()) {
                return Err(format!("reference {} appears twice", m.reference));
            }
        }
        let fi = self.frameworks.len();
        for (mi, m) in fw.measures.iter().enumerate() {
            self.index.insert(m.reference.clone(), (fi, mi));
        }
        self.frameworks.push(fw);
        Ok(())
    }

    pub fn contains(&self, reference: &str) -> bool {
        self.index.contains_key(reference)
    }

    pub fn measure(&self, reference: &str) -> Option<&Measure> {
        self.index
            .get(reference)
            .map(|&(f, m)| &self.frameworks[f].measures[m])
    }

    pub fn frameworks(&self) -> &[Framework] {
        &self.frameworks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalogue_has_every_framework() {
        let cat = Catalogue::builtin();
        let count = |id: &str| {
            cat.frameworks()
                .iter()
                .find(|f| f.id == id)
                .map_or(0, |f| f.measures.len())
        };
        assert_eq!(count("UN-CBM"), 8);
        assert_eq!(count("OAS-CBM"), 11);
        assert_eq!(count("GGE-2015-NORM"), 11);
        assert!(count("OSCE-CBM") >= 11);
        assert!(cat.contains("UN-CBM-3") && cat.contains("OSCE-CBM-9"));
        assert!(!cat.contains("UN-CBM-9"));
    }

    #[test]
    fn duplicate_reference_is_refused() {
        let doc = r#"{"version":1,"frameworks":[{"id":"X","name":"x","measures":[
            {"ref":"X-1","number":"1","title":"a"},{"ref":"X-1","number":"2","title":"b"}]}]}"#;
        assert!(Catalogue::from_json(doc).unwrap_err().contains("twice"));
    }

    #[test]
    fn an_added_framework_wins_over_a_builtin_one_it_clashes_with() {
        let doc = r#"{"version":1,"frameworks":[{"id":"OAS-CBM","name":"as added","measures":[
            {"ref":"OAS-CBM-1","number":"1","title":"added first"}]}]}"#;
        let added = Catalogue::from_json(doc).unwrap().frameworks()[0].clone();
        let builtin = Catalogue::builtin().frameworks().len();
        let (cat, skipped) = Catalogue::with_added(vec![added]).unwrap();
        assert_eq!(skipped, ["OAS-CBM"]);
        assert_eq!(cat.frameworks().len(), builtin);
        assert_eq!(cat.measure("OAS-CBM-1").unwrap().title, "added first");
        assert!(
            !cat.contains("OAS-CBM-2"),
            "the built-in one is left out whole"
        );
        assert!(cat.contains("UN-CBM-1"));
    }

    #[test]
    fn a_refused_framework_changes_nothing() {
        let mut cat = Catalogue::builtin();
        let before = cat.frameworks().len();
        let doc = r#"{"version":1,"frameworks":[{"id":"NEW","name":"n","measures":[
            {"ref":"NEW-1","number":"1","title":"a"},{"ref":"NEW-2","number":"2","title":"b"}]}]}"#;
        let fw = Catalogue::from_json(doc).unwrap().frameworks()[0].clone();
        // The second measure clashes with a built-in one, after the first was checked.
        let mut clash = fw.clone();
        clash.measures[1].reference = "UN-CBM-1".into();
        assert!(cat.add_framework(clash).unwrap_err().contains("twice"));
        assert_eq!(cat.frameworks().len(), before);
        assert!(
            !cat.contains("NEW-1"),
            "no reference of the refused framework"
        );
        cat.add_framework(fw).unwrap();
        assert!(cat.contains("NEW-1") && cat.contains("NEW-2"));
    }
}
