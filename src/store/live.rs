//! What live subscribers receive: each committed event with the current head of its
//! submission, kept current by the writer while the event can still be delivered.
//!
//! The audience is decided at delivery time from the submission's current state. A subscriber
//! that is behind may take an event from the live buffer after later changes to the same
//! submission have committed, so the event alone cannot tell. Every live event of a submission
//! shares one [`HeadCell`]; when a later change commits, the writer puts the new head into the
//! cell, and every event of that submission still in the buffer is decided against it. Cells
//! are held only by events (the writer keeps weak references), so they go with the buffer.
use std::{
    collections::HashMap,
    sync::{Arc, OnceLock, RwLock, Weak},
};

use super::records::{StoredEvent, SubmissionHead};

/// The sequence a marker in the live channel carries in place of its event's.
///
/// The live buffer holds its events until newer ones push them out, so its memory is its length
/// times the size of its events. An event over the threshold (`domain::budget::Budget::live_event`)
/// is not kept: the channel carries a marker instead, and subscribers read the event from
/// storage. The marker's `event.sequence` is this value, which never follows a subscriber's
/// cursor, so a live reader takes it for a gap and reads storage from its cursor, where the
/// event is (and skips it as already seen once it has). [`Committed::in_storage`] names the
/// event.
pub const IN_STORAGE: u64 = u64::MAX;

/// A committed change as live subscribers receive it. The feed fills `encoded` lazily, once per
/// audience variant, so that one encoding serves every subscriber.
#[derive(Debug)]
pub struct Committed {
    /// Shared with the writer's group: the event is not copied to be published. For a marker
    /// (see [`IN_STORAGE`]), an empty event whose sequence is [`IN_STORAGE`].
    pub event: Arc<StoredEvent>,
    /// The current (durable) head of the event's submission (for a marker, an empty head).
    pub head: Arc<HeadCell>,
    /// One encoding per kind of delivery (`feed::filter::Delivery`, which checks the count).
    pub encoded: [OnceLock<bytes::Bytes>; Committed::ENCODINGS],
    /// For a marker: the sequence of the event to read from storage.
    stored: Option<u64>,
}

impl Committed {
    /// How many encodings of one event the feed may need.
    pub const ENCODINGS: usize = 4;

    pub fn new(event: Arc<StoredEvent>, head: Arc<HeadCell>) -> Committed {
        Committed {
            event,
            head,
            encoded: Default::default(),
            stored: None,
        }
    }

    /// What the live channel carries in place of event `sequence` when it is too large to keep
    /// in the buffer: nothing of the event, only where to find it.
    pub fn marker(sequence: u64) -> Committed {
        Committed {
            event: Arc::new(StoredEvent {
                sequence: IN_STORAGE,
                ..Default::default()
            }),
            head: Arc::new(HeadCell::new(Arc::default())),
            encoded: Default::default(),
            stored: Some(sequence),
        }
    }

    /// For a marker, the sequence of the event it stands for (read it from storage); None when
    /// the event itself is here.
    pub fn in_storage(&self) -> Option<u64> {
        self.stored
    }
}

/// The current head of one submission, shared by its live events.
#[derive(Debug)]
pub struct HeadCell(RwLock<Arc<SubmissionHead>>);

impl HeadCell {
    pub fn new(head: Arc<SubmissionHead>) -> HeadCell {
        HeadCell(RwLock::new(head))
    }

    /// The head as it stands now.
    pub fn get(&self) -> Arc<SubmissionHead> {
        self.read().clone()
    }

    /// The head as it stands now, borrowed (no reference count touched: subscribers read it
    /// once per delivery).
    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, Arc<SubmissionHead>> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, head: Arc<SubmissionHead>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = head;
    }
}

/// The writer's weak references to the cells of events that may still be delivered.
#[derive(Default)]
pub(super) struct LiveHeads {
    cells: HashMap<String, Weak<HeadCell>>,
    /// Dead references are swept when the map reaches this size.
    sweep_at: usize,
}

/// Smallest sweep threshold: below it the map is not worth sweeping.
const MIN_SWEEP: usize = 1024;

impl LiveHeads {
    /// A submission's head changed: the events of it that are still out see the new one.
    pub fn update(&mut self, id: &str, head: &Arc<SubmissionHead>) {
        if let Some(cell) = self.cells.get(id).and_then(Weak::upgrade) {
            cell.set(head.clone());
        }
    }

    /// The cell for a new live event of `id`: the one its earlier events share, or a new one
    /// holding `head()`.
    pub fn cell(
        &mut self,
        id: &str,
        head: impl FnOnce() -> Option<Arc<SubmissionHead>>,
    ) -> Option<Arc<HeadCell>> {
        if let Some(cell) = self.cells.get(id).and_then(Weak::upgrade) {
            return Some(cell);
        }
        let cell = Arc::new(HeadCell::new(head()?));
        if self.cells.len() >= self.sweep_at.max(MIN_SWEEP) {
            self.cells.retain(|_, c| c.strong_count() > 0);
            self.sweep_at = 2 * self.cells.len();
        }
        self.cells.insert(id.to_string(), Arc::downgrade(&cell));
        Some(cell)
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(revisions: usize) -> Arc<SubmissionHead> {
        Arc::new(SubmissionHead {
            revision_seqs: (1..=revisions as u64).collect(),
            ..Default::default()
        })
    }

    #[test]
    fn events_still_out_see_the_latest_head() {
        let mut heads = LiveHeads::default();
        let first = heads.cell("a", || Some(head(1))).unwrap();
        heads.update("a", &head(2));
        let second = heads.cell("a", || unreachable!("shared")).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(first.get().revision_seqs.len(), 2);
        heads.update("a", &head(3));
        assert_eq!(first.get().revision_seqs.len(), 3);
    }

    #[test]
    fn a_marker_holds_nothing_of_its_event_and_follows_no_cursor() {
        use prost::Message;
        let marker = Committed::marker(8);
        assert_eq!(marker.in_storage(), Some(8));
        assert_eq!(marker.event.sequence, IN_STORAGE);
        assert!(marker.event.submission.is_none());
        assert!(marker.event.encoded_len() < 16);
        let event = Committed::new(Arc::default(), Arc::new(HeadCell::new(head(1))));
        assert_eq!(event.in_storage(), None);
    }

    #[test]
    fn cells_go_with_their_events() {
        let mut heads = LiveHeads::default();
        for i in 0..10 * MIN_SWEEP {
            drop(heads.cell(&i.to_string(), || Some(head(1))));
        }
        assert!(heads.cells.len() <= MIN_SWEEP + 1, "{}", heads.cells.len());
        // A dead cell is replaced, with the head given now.
        let cell = heads.cell("0", || Some(head(4))).unwrap();
        assert_eq!(cell.get().revision_seqs.len(), 4);
    }
}
