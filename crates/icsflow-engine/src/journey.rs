//! One patient's journey as the engine stores it: the compact events it
//! is made of, with the corrections among them. What the events mean is
//! read in `spells.rs` (hospital spells and their periods) and
//! `derive.rs` (every metric's contributions).

use icsflow_core::{
    BedType, DelayReasonFamily, DischargeDestination, DischargePathway, EventId, Feed, Pseudonym,
    ServiceComponent, ServiceEndReason, ServiceType,
};

use crate::spells::{collect_spells, Scratch};

/// Days count from 2000-01-01 inside the engine, so a day fits in `u16`
/// (until the year 2179); validation refuses anything before 2000.
pub(crate) const DAY_ZERO_SINCE_EPOCH: i32 = 10_957;

/// A partner's event id, kept whole. Two events are versions of one only
/// when their ids and their organisations are equal ([`StoredEvent::is`]):
/// compared in full, never through a hash, so no id one partner computes
/// can stand for another partner's event. Four 32-bit words, most
/// significant first (so they order as the UUID does), keeping a stored
/// event aligned to 4 bytes: 36 bytes where 8-byte alignment made it 40.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct EventKey([u32; 4]);

impl EventKey {
    pub(crate) fn new(id: EventId) -> EventKey {
        let value = id.as_u128();
        EventKey([
            (value >> 96) as u32,
            (value >> 64) as u32,
            (value >> 32) as u32,
            value as u32,
        ])
    }
}

/// An event as the engine keeps it: 36 bytes, with what the metrics need
/// and nothing that identifies beyond the journey's own pseudonym.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StoredEvent {
    /// The event id: with `organisation`, the idempotency key.
    pub(crate) id: EventKey,
    /// Seconds since 2000-01-01T00:00:00Z of `occurred_at`.
    pub(crate) at: u32,
    /// The same of `recorded_at`: of two versions of one event id, the one
    /// recorded later stands.
    pub(crate) recorded: u32,
    /// Day in England (since 2000-01-01) of `occurred_at`.
    pub(crate) day: u16,
    /// Interned organisation: the trust (3 characters) for the discharge
    /// feed, the publisher otherwise. An event id is its organisation's
    /// own (a trust's sites share the trust's): the same id from another
    /// organisation is another event.
    pub(crate) organisation: u16,
    /// Index into the journey's references, or [`NO_REFERENCE`].
    pub(crate) reference: u8,
    pub(crate) kind: StoredKind,
}

pub(crate) const NO_REFERENCE: u8 = u8::MAX;

impl StoredEvent {
    /// Whether this is the event `id` of `organisation`.
    pub(crate) fn is(&self, organisation: u16, id: EventKey) -> bool {
        self.id == id && self.organisation == organisation
    }
}

/// A correction: `by` replaced `corrected`, both events of `organisation`
/// (an organisation corrects only its own events).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Correction {
    pub(crate) organisation: u16,
    pub(crate) corrected: EventKey,
    pub(crate) by: EventKey,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum StoredKind {
    Admitted {
        emergency: bool,
        age_years: u8,
        bed_type: Option<BedType>,
        place: u16,
    },
    AdmissionCancelled,
    CriteriaMet,
    CriteriaNotMet {
        ready_day: Option<u16>,
    },
    PathwayAssigned(DischargePathway),
    DelayReason(DelayReasonFamily),
    Discharged {
        destination: DischargeDestination,
        pathway: DischargePathway,
    },
    DischargeCancelled,
    ServiceStarted {
        service_type: ServiceType,
        component: ServiceComponent,
    },
    ServiceEnded(ServiceEndReason),
    OtherSocialCare,
    Contact {
        attended: bool,
    },
    OtherPrimaryCare,
    DeathNotified {
        day: u16,
    },
}

impl StoredKind {
    pub(crate) fn feed(self) -> Feed {
        match self {
            StoredKind::Admitted { .. }
            | StoredKind::AdmissionCancelled
            | StoredKind::CriteriaMet
            | StoredKind::CriteriaNotMet { .. }
            | StoredKind::PathwayAssigned(_)
            | StoredKind::DelayReason(_)
            | StoredKind::Discharged { .. }
            | StoredKind::DischargeCancelled => Feed::Discharge,
            StoredKind::ServiceStarted { .. }
            | StoredKind::ServiceEnded(_)
            | StoredKind::OtherSocialCare => Feed::SocialCare,
            StoredKind::Contact { .. }
            | StoredKind::OtherPrimaryCare
            | StoredKind::DeathNotified { .. } => Feed::PrimaryCare,
        }
    }
}

/// What a journey keeps about how its partners amended their events: a
/// correction, or one version of an event id sent with differing content.
/// One list for both, with the fields inline, so that a journey pays for
/// neither until a partner amends (36 bytes an entry, as a correction
/// alone took).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Revision {
    /// `by` replaced `corrected`, both events of `organisation`.
    Correction {
        organisation: u16,
        corrected: EventKey,
        by: EventKey,
    },
    /// A version of the event `id` of `organisation`: `content` is a
    /// fingerprint of what it says (every field versions are compared by),
    /// so that a version read again is not counted again.
    Version {
        organisation: u16,
        id: EventKey,
        content: [u32; 2],
    },
}

impl Revision {
    /// The organisation and event id, when this is a version.
    fn version_of(&self) -> Option<(u16, EventKey)> {
        match *self {
            Revision::Version {
                organisation, id, ..
            } => Some((organisation, id)),
            Revision::Correction { .. } => None,
        }
    }

    /// The id corrected, when this is the correction made by the event
    /// `by` of `organisation`.
    fn correction(&self, of: u16, by_event: EventKey) -> Option<EventKey> {
        match *self {
            Revision::Correction {
                organisation,
                corrected,
                by,
            } if organisation == of && by == by_event => Some(corrected),
            _ => None,
        }
    }
}

/// All the engine holds about one patient.
#[derive(Clone, Debug, Default)]
pub(crate) struct Journey {
    /// Sorted by (`at`, `id`): events at the same second in event id order.
    pub(crate) events: Vec<StoredEvent>,
    /// Spell and episode references, interned per journey.
    pub(crate) references: Vec<Pseudonym>,
    /// Events replaced by a correction, and the correction; and every
    /// version seen of an event id sent with differing content (the set
    /// of them, whatever order they came in).
    pub(crate) revisions: Vec<Revision>,
    /// Touched while the engine defers deriving: the series hold what it
    /// contributed before that, until the engine settles.
    pub(crate) deferred: bool,
}

impl Journey {
    /// The event `id` of the organisation whose interned index
    /// `is_organisation` accepts, if held.
    pub(crate) fn find(
        &self,
        id: EventKey,
        is_organisation: impl Fn(u16) -> bool,
    ) -> Option<&StoredEvent> {
        self.events
            .iter()
            .find(|event| event.id == id && is_organisation(event.organisation))
    }

    /// Drops the event `id` of `organisation`, and the correction it made
    /// (a re-sent version replaces it).
    pub(crate) fn remove(&mut self, organisation: u16, id: EventKey) {
        self.events.retain(|event| !event.is(organisation, id));
        self.revisions
            .retain(|revision| revision.correction(organisation, id).is_none());
    }

    /// The reference at `index`, for comparing versions by value.
    pub(crate) fn reference(&self, index: u8) -> Option<Pseudonym> {
        self.references.get(usize::from(index)).copied()
    }

    pub(crate) fn insert(&mut self, event: StoredEvent) {
        let position = self
            .events
            .partition_point(|known| (known.at, known.id) < (event.at, event.id));
        // Growth by a quarter, at least four: journeys are many and small,
        // so doubling would waste a third of their memory, while growing by
        // one or two would reallocate every event or two.
        if self.events.len() == self.events.capacity() {
            self.events.reserve_exact((self.events.len() / 4).max(4));
        }
        self.events.insert(position, event);
    }

    pub(crate) fn reference_index(&mut self, reference: Option<Pseudonym>) -> u8 {
        let Some(reference) = reference else {
            return NO_REFERENCE;
        };
        if let Some(index) = self.references.iter().position(|known| *known == reference) {
            return index as u8;
        }
        // The engine refuses an event naming a reference past
        // `JOURNEY_REFERENCE_LIMIT` before it gets here.
        debug_assert!(self.references.len() < usize::from(NO_REFERENCE));
        self.references.reserve_exact(1);
        self.references.push(reference);
        (self.references.len() - 1) as u8
    }

    pub(crate) fn add_correction(&mut self, correction: Correction) {
        self.add(Revision::Correction {
            organisation: correction.organisation,
            corrected: correction.corrected,
            by: correction.by,
        });
    }

    /// Adds `revision` unless it is held.
    fn add(&mut self, revision: Revision) {
        if !self.revisions.contains(&revision) {
            self.revisions.reserve_exact(1);
            self.revisions.push(revision);
        }
    }

    /// The corrections held.
    pub(crate) fn corrections(&self) -> impl Iterator<Item = Correction> + '_ {
        self.revisions
            .iter()
            .filter_map(|revision| match *revision {
                Revision::Correction {
                    organisation,
                    corrected,
                    by,
                } => Some(Correction {
                    organisation,
                    corrected,
                    by,
                }),
                Revision::Version { .. } => None,
            })
    }

    /// Adds a version of the event `id` of `organisation` to those seen,
    /// unless it is one of them.
    pub(crate) fn add_version(&mut self, organisation: u16, id: EventKey, content: [u32; 2]) {
        self.add(Revision::Version {
            organisation,
            id,
            content,
        });
    }

    /// Whether that version has been seen.
    pub(crate) fn has_version(&self, organisation: u16, id: EventKey, content: [u32; 2]) -> bool {
        self.revisions.contains(&Revision::Version {
            organisation,
            id,
            content,
        })
    }

    /// For every version seen beyond the first of its event id: the
    /// organisation and id.
    pub(crate) fn further_versions(&self) -> impl Iterator<Item = (u16, EventKey)> + '_ {
        self.revisions
            .iter()
            .enumerate()
            .filter_map(move |(index, revision)| {
                let of = revision.version_of()?;
                self.revisions[..index]
                    .iter()
                    .any(|earlier| earlier.version_of() == Some(of))
                    .then_some(of)
            })
    }

    /// How many versions of the event `id` of `organisation` are kept.
    pub(crate) fn versions_of(&self, of: u16, event: EventKey) -> usize {
        self.revisions
            .iter()
            .filter(|revision| revision.version_of() == Some((of, event)))
            .count()
    }

    /// How many versions are held: each counts towards the journey's
    /// limit, as an event does.
    pub(crate) fn versions_held(&self) -> usize {
        self.revisions
            .iter()
            .filter(|revision| revision.version_of().is_some())
            .count()
    }

    /// The id the event `id` of `organisation` corrects, if it corrects one.
    pub(crate) fn corrects(&self, organisation: u16, id: EventKey) -> Option<EventKey> {
        self.revisions
            .iter()
            .find_map(|revision| revision.correction(organisation, id))
    }

    /// The last day any event of the journey happened on.
    pub(crate) fn last_day(&self) -> i32 {
        self.events
            .iter()
            .map(|event| i32::from(event.day))
            .max()
            .unwrap_or(0)
    }

    /// Whether a spell is still open (admitted, not cancelled, not
    /// discharged): such a journey is never evicted.
    pub(crate) fn has_open_spell(&self, scratch: &mut Scratch) -> bool {
        collect_spells(self, scratch);
        scratch
            .spells
            .iter()
            .any(|spell| spell.admission.is_some() && !spell.cancelled && spell.discharge.is_none())
    }
}

/// The journey's events that no correction replaced, in time order.
pub(crate) fn active(journey: &Journey) -> impl Iterator<Item = &StoredEvent> {
    journey.events.iter().filter(|event| {
        !journey.revisions.iter().any(|revision| {
            matches!(*revision, Revision::Correction { organisation, corrected, .. }
                if organisation == event.organisation && corrected == event.id)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_event_is_36_bytes_and_keys_order_as_uuids() {
        assert_eq!(std::mem::size_of::<StoredEvent>(), 36);
        // A correction took 36 bytes before versions shared its list.
        assert_eq!(std::mem::size_of::<Revision>(), 36);
        let key = |value: u128| EventKey::new(EventId::from_u128(value));
        assert!(key(1 << 100) > key(u128::from(u64::MAX)));
        assert!(key(5) < key(6));
    }
}
