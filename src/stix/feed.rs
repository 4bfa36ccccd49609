//! One feed change as STIX, for `subscribe --format stix`. The subscriber's [`Memory`] says
//! which object (type, label) it printed for a submission, so a tombstone, which carries no
//! content, revokes exactly that object under its own marking, and a submission never printed
//! (or refused as TLP:RED) gets nothing. A change that cannot be mapped yields no bundle and a
//! note, never an error: the stream and its cursor go on.
use serde_json::Value;
use time::OffsetDateTime;

use super::{
    Bundle, Mapper, StixError,
    memory::{Last, Memory, Seen},
    objects::{self, Tombstone},
    parse_time, stix_time, submission_key, tlp,
};
use crate::pb;

const FIELD: &str = "change.submission";

/// What one feed change became.
#[derive(Debug, Default)]
pub struct FeedOutput {
    /// The bundle to print; None when nothing of this change may or can be printed.
    pub bundle: Option<Value>,
    /// What was not printed (or revoked instead) and why, for stderr.
    pub note: Option<String>,
}

/// The outcome of mapping a change, applied to the memory only when mapping succeeded.
struct Step {
    update: Option<Seen>,
    note: Option<String>,
}

impl Step {
    fn note(note: String) -> Self {
        Step {
            update: None,
            note: Some(note),
        }
    }
}

impl Mapper {
    /// A bundle of the feed change at `sequence`, remembering in `memory` what it printed.
    /// `received` (when the subscriber received the change) is the `modified` of a revocation
    /// whose tombstone has no `updated_at`.
    pub fn feed(
        &self,
        sequence: u64,
        change: &pb::FeedChange,
        memory: &mut Memory,
        received: OffsetDateTime,
    ) -> FeedOutput {
        let mut b = Bundle::new(self.id("bundle", &format!("feed/{sequence}")));
        match self.change(&mut b, change, memory, received) {
            Ok(step) => {
                if let (Some(seen), Some(s)) = (step.update, &change.submission) {
                    memory.set(&s.id, seen);
                }
                FeedOutput {
                    bundle: (!b.is_empty()).then(|| b.finish()),
                    note: step.note,
                }
            }
            Err(e) => FeedOutput {
                bundle: None,
                note: Some(format!("not mapped: {e}")),
            },
        }
    }

    fn change(
        &self,
        b: &mut Bundle,
        change: &pb::FeedChange,
        memory: &Memory,
        received: OffsetDateTime,
    ) -> Result<Step, StixError> {
        let s = change
            .submission
            .as_ref()
            .ok_or_else(|| StixError::Missing {
                field: FIELD.into(),
            })?;
        let seen = memory.get(&s.id).cloned().unwrap_or_default();
        // A hub before reasons were sent says nothing for a publisher's withdrawal.
        let reason = match change.reason.as_str() {
            "" => "withdrawn",
            r => r,
        };
        match change.action.as_str() {
            "published" | "revised" => self.shown(b, s, seen, false, received),
            // The publisher's own withdrawal keeps its content: the object itself, revoked.
            "withdrawn" if reason == "withdrawn" && s.content.is_some() => {
                self.shown(b, s, seen, true, received)
            }
            "withdrawn" => self.tombstone(b, s, reason, seen, memory.complete, received),
            "acknowledged" => {
                let a = change
                    .acknowledgement
                    .as_ref()
                    .ok_or_else(|| StixError::Missing {
                        field: "change.acknowledgement".into(),
                    })?;
                let marking = match &seen.last {
                    Some(Last::Object { label, .. }) => acknowledgement_marking(label),
                    Some(Last::Red) => {
                        return Ok(Step::note(format!(
                            "acknowledgement of notice {}: TLP:RED is never exported",
                            s.id
                        )));
                    }
                    _ => {
                        return Ok(Step::note(format!(
                            "acknowledgement of notice {}, which this subscriber never printed: not printed",
                            s.id
                        )));
                    }
                };
                self.acknowledgement(b, s, a, marking)?;
                Ok(Step {
                    update: None,
                    note: None,
                })
            }
            other => Err(StixError::Unknown {
                field: "change.action".into(),
                value: other.into(),
            }),
        }
    }

    /// A revision with content (revoked: the publisher's withdrawal as the publisher sees it).
    fn shown(
        &self,
        b: &mut Bundle,
        s: &pb::Submission,
        seen: Seen,
        revoked: bool,
        received: OffsetDateTime,
    ) -> Result<Step, StixError> {
        let c = s.content.as_ref().ok_or_else(|| StixError::Missing {
            field: format!("{FIELD}.content"),
        })?;
        let mut generation = seen.generation;
        let mut note = None;
        if tlp::by_label(&c.tlp).is_some() && tlp::exportable(&c.tlp).is_none() {
            // Relabelled TLP:RED: what was printed of it must go, and nothing new comes.
            let mut text = format!(
                "submission {} revision {}: TLP:RED is never exported",
                s.id, s.revision
            );
            if let Some((id, label, modified)) = seen.live() {
                let t = Tombstone {
                    s,
                    reason: "audience_narrowed",
                    modified: later(received, FIELD, &s.created_at, Some(modified))?,
                    field: FIELD,
                };
                self.revocation(b, &t, id, marking_of(label))?;
                generation += 1;
                text.push_str("; the object printed earlier is revoked");
            }
            let update = Seen {
                last: Some(Last::Red),
                generation,
            };
            return Ok(Step {
                update: Some(update),
                note: Some(text),
            });
        }
        // A revision that moves a notice between incident and note changes its STIX type: the
        // old object is revoked and the new one starts a new generation.
        if let (Some(body), Some((id, label, modified))) = (&c.body, seen.live()) {
            let stix_type = objects::stix_type(body);
            if !id.starts_with(&format!("{stix_type}--")) {
                let t = Tombstone {
                    s,
                    reason: "replaced",
                    modified: later(received, FIELD, &s.created_at, Some(modified))?,
                    field: FIELD,
                };
                self.revocation(b, &t, id, marking_of(label))?;
                generation += 1;
                note = Some(format!(
                    "submission {}: now a {stix_type}; the {} printed earlier is revoked",
                    s.id,
                    id.split_once("--").map_or("", |p| p.0)
                ));
            }
        }
        let key = submission_key(&s.id, generation);
        let printed = self.submission(b, s, c, &key, revoked, FIELD)?;
        let update = Seen {
            last: Some(Last::Object {
                id: printed.id,
                label: printed.label.into(),
                modified: printed.modified,
                revoked,
            }),
            generation: generation + u32::from(revoked),
        };
        Ok(Step {
            update: Some(update),
            note,
        })
    }

    /// A tombstone: the envelope without content, `reason` `withdrawn` or `audience_narrowed`.
    fn tombstone(
        &self,
        b: &mut Bundle,
        s: &pb::Submission,
        reason: &str,
        seen: Seen,
        complete: bool,
        received: OffsetDateTime,
    ) -> Result<Step, StixError> {
        // Only a publisher's withdrawal has an `updated_at` to show; otherwise the revocation is
        // dated when this subscriber received it.
        let at = || match reason == "withdrawn" && !s.updated_at.is_empty() {
            true => parse_time(&format!("{FIELD}.updated_at"), &s.updated_at),
            false => Ok(received),
        };
        match &seen.last {
            Some(Last::Object {
                id,
                label,
                modified,
                revoked: false,
            }) => {
                let t = Tombstone {
                    s,
                    reason,
                    modified: later(at()?, FIELD, &s.created_at, Some(modified))?,
                    field: FIELD,
                };
                self.revocation(b, &t, id, marking_of(label))?;
                let update = Seen {
                    last: Some(Last::Object {
                        id: id.clone(),
                        label: label.clone(),
                        modified: t.modified,
                        revoked: true,
                    }),
                    generation: seen.generation + 1,
                };
                Ok(Step {
                    update: Some(update),
                    note: None,
                })
            }
            Some(Last::Object { .. } | Last::RevokedBlind) => Ok(Step::note(format!(
                "submission {} {reason}: already revoked",
                s.id
            ))),
            Some(Last::Red) => Ok(Step::note(format!(
                "submission {} {reason}: TLP:RED, nothing was printed",
                s.id
            ))),
            None if complete => Ok(Step::note(format!(
                "submission {} {reason}: never printed by this subscriber, nothing to revoke",
                s.id
            ))),
            None => {
                // Started after sequence 0: it may have been printed before (or exported), as
                // any type its kind allows. Revoking an id a consumer never saw is harmless.
                let t = Tombstone {
                    s,
                    reason,
                    modified: later(at()?, FIELD, &s.created_at, None)?,
                    field: FIELD,
                };
                self.blind_revocation(b, &t, seen.generation)?;
                let update = Seen {
                    last: Some(Last::RevokedBlind),
                    generation: seen.generation + 1,
                };
                Ok(Step {
                    update: Some(update),
                    note: None,
                })
            }
        }
    }

    /// Revokes every object a submission of this kind may have been printed as (both `incident`
    /// and `note` for a notice), marked [`objects::UNLABELLED`].
    pub(super) fn blind_revocation(
        &self,
        b: &mut Bundle,
        t: &Tombstone,
        generation: u32,
    ) -> Result<(), StixError> {
        let key = submission_key(&t.s.id, generation);
        for stix_type in objects::stix_types_of_kind(&t.s.kind, t.field)? {
            self.revocation(b, t, &self.id(stix_type, &key), unlabelled())?;
        }
        Ok(())
    }
}

/// `base`, but never before `created` (STIX: created <= modified) nor at or before the version
/// printed last (consumers keep the newest `modified`; a revocation dated earlier, by a skewed
/// local clock, would be ignored).
pub(super) fn later(
    base: OffsetDateTime,
    field: &str,
    created: &str,
    previous: Option<&str>,
) -> Result<String, StixError> {
    let mut t = base.max(parse_time(&format!("{field}.created_at"), created)?);
    if let Some(p) = previous.and_then(|p| parse_time("", p).ok()) {
        t = t.max(p + time::Duration::milliseconds(1));
    }
    Ok(stix_time(t))
}

fn unlabelled() -> &'static tlp::Tlp2Marking {
    tlp::exportable(objects::UNLABELLED).expect("an exportable TLP 2.0 label")
}

/// The marking remembered for a printed object (anything unexpected, as from an edited memory
/// file, falls back to the unlabelled marking rather than widening or printing RED).
fn marking_of(label: &str) -> &'static tlp::Tlp2Marking {
    tlp::exportable(label).unwrap_or_else(unlabelled)
}

/// An acknowledgement goes to the notice's sender and the acknowledging member only: TLP:AMBER,
/// or TLP:AMBER+STRICT when the notice was (the reader is then one of its recipients).
fn acknowledgement_marking(notice_label: &str) -> &'static tlp::Tlp2Marking {
    match notice_label {
        "TLP:AMBER+STRICT" => marking_of(notice_label),
        _ => unlabelled(),
    }
}
