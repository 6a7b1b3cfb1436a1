//! One patient's journey: the compact events it is made of, and the pure
//! function from those events to the journey's contributions to every
//! metric.
//!
//! The contributions depend only on the set of events (sorted by occurrence
//! time, ties broken by event id), never on the order they arrived in: that
//! is what makes the engine order-independent. Corrections and
//! cancellations are applied here, while deriving, so they restate
//! everything that depended on what they replace.

use icsflow_core::{
    BedType, DestinationGroup, DischargePathway, Feed, OdsCode, PlaceCode, Pseudonym,
    ServiceComponent, ServiceEndReason, ServiceType,
};

use crate::labels::*;
use crate::series::Contribution;
use icsflow_core::{DelayReasonFamily, DischargeDestination};
use std::ops::Range;

/// Days count from 2000-01-01 inside the engine, so a day fits in `u16`
/// (until the year 2179); validation refuses anything before 2000.
pub(crate) const DAY_ZERO_SINCE_EPOCH: i32 = 10_957;

/// Social care must start within this many days of discharge to end a wait
/// for care (our choice; see docs/metrics.md).
pub(crate) const CARE_START_DAYS_AFTER_DISCHARGE: i32 = 28;
/// Reablement counts when it starts from 3 days before to 7 days after
/// discharge (ASCOF 2D / BCF).
const REABLEMENT_WINDOW: (i32, i32) = (-3, 7);
/// Status is taken on day 91 after discharge.
pub(crate) const REABLEMENT_OUTCOME_DAY: i32 = 91;
/// The sitrep-mirroring measures count patients of this age and over.
const ADULT_AGE_YEARS: u8 = 18;
/// Readmission within 30 days: 0 to 29 days after discharge.
const READMISSION_LAST_DAY: i32 = 29;

/// An event as the engine keeps it: 32 bytes, with what the metrics need
/// and nothing that identifies beyond the journey's own pseudonym.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StoredEvent {
    /// Hash of (publishing organisation, event id): the idempotency key.
    pub(crate) id: u64,
    /// Seconds since 2000-01-01T00:00:00Z of `occurred_at`.
    pub(crate) at: u32,
    /// The same of `recorded_at`: of two versions of one event id, the one
    /// recorded later stands.
    pub(crate) recorded: u32,
    /// Day in England (since 2000-01-01) of `occurred_at`.
    pub(crate) day: u16,
    /// Interned organisation: the trust (3 characters) for the discharge
    /// feed, the publisher otherwise.
    pub(crate) organisation: u16,
    /// Index into the journey's references, or [`NO_REFERENCE`].
    pub(crate) reference: u8,
    pub(crate) kind: StoredKind,
}

pub(crate) const NO_REFERENCE: u8 = u8::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
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

/// All the engine holds about one patient.
#[derive(Clone, Debug, Default)]
pub(crate) struct Journey {
    /// Sorted by (`at`, `id`).
    pub(crate) events: Vec<StoredEvent>,
    /// Spell and episode references, interned per journey.
    pub(crate) references: Vec<Pseudonym>,
    /// Ids of events replaced by a correction.
    /// (id replaced, id of the correction that replaced it).
    pub(crate) corrected: Vec<(u64, u64)>,
}

impl Journey {
    /// The event held under this id, if any.
    pub(crate) fn find(&self, id: u64) -> Option<&StoredEvent> {
        self.events.iter().find(|event| event.id == id)
    }

    /// Drops the event held under this id, and the correction it made (a
    /// re-sent version replaces it).
    pub(crate) fn remove(&mut self, id: u64) {
        self.events.retain(|event| event.id != id);
        self.corrected.retain(|(_, by)| *by != id);
    }

    /// The reference at `index`, for comparing versions by value.
    pub(crate) fn reference(&self, index: u8) -> Option<Pseudonym> {
        self.references.get(usize::from(index)).copied()
    }

    pub(crate) fn insert(&mut self, event: StoredEvent) {
        let position = self
            .events
            .partition_point(|known| (known.at, known.id) < (event.at, event.id));
        // Growth by a quarter: journeys are many and small, so doubling
        // would waste a third of their memory, while growing by one would
        // reallocate on every event.
        if self.events.len() == self.events.capacity() {
            self.events.reserve_exact((self.events.len() / 4).max(2));
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
        if self.references.len() >= usize::from(NO_REFERENCE) {
            // 255 distinct spells and episodes for one patient: beyond any
            // real journey; further ones share "no reference".
            return NO_REFERENCE;
        }
        self.references.reserve_exact(1);
        self.references.push(reference);
        (self.references.len() - 1) as u8
    }

    pub(crate) fn add_correction(&mut self, corrected_id: u64, by: u64) {
        if !self.corrected.contains(&(corrected_id, by)) {
            self.corrected.reserve_exact(1);
            self.corrected.push((corrected_id, by));
        }
    }

    /// The id the event held under `id` corrects, if it corrects one.
    pub(crate) fn corrects(&self, id: u64) -> Option<u64> {
        self.corrected
            .iter()
            .find(|(_, by)| *by == id)
            .map(|(corrected, _)| *corrected)
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

/// The organisation and place tables the stored events index into.
pub(crate) trait Lookup {
    fn organisation(&self, index: u16) -> OdsCode;
    fn place(&self, index: u16) -> PlaceCode;
}

#[derive(Clone, Copy, Debug)]
struct Admission {
    at: u32,
    day: i32,
    emergency: bool,
    age_years: u8,
    bed_type: Option<BedType>,
    place: u16,
}

impl Admission {
    /// The discharge sitrep's scope: adults in general and acute beds. A
    /// bed of unknown type counts as general and acute (see
    /// docs/metrics.md).
    fn in_sitrep_scope(&self) -> bool {
        self.age_years >= ADULT_AGE_YEARS
            && self
                .bed_type
                .is_none_or(|bed| bed == BedType::GeneralAndAcute)
    }
}

#[derive(Clone, Copy, Debug)]
struct Discharge {
    at: u32,
    day: i32,
    destination: DischargeDestination,
    pathway: DischargePathway,
}

/// A period of not meeting the criteria to reside: from its Discharge Ready
/// Date to the day criteria were met again or the patient left.
#[derive(Clone, Copy, Debug)]
struct Period {
    start: i32,
    end: Option<i32>,
    ended_by_discharge: bool,
}

#[derive(Clone, Debug)]
struct Spell {
    trust: u16,
    reference: u8,
    admission: Option<Admission>,
    cancelled: bool,
    discharge: Option<Discharge>,
    pathway: Option<DischargePathway>,
    /// Range of [`Scratch::periods`].
    periods: Range<usize>,
    /// Range of [`Scratch::reasons`]: (day, family) in time order.
    reasons: Range<usize>,
    event_count: i64,
}

/// Buffers reused from one derivation to the next, so that deriving a
/// journey allocates nothing in the steady state.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    spells: Vec<Spell>,
    periods: Vec<Period>,
    reasons: Vec<(i32, DelayReasonFamily)>,
    segments: Vec<(i32, Option<DelayReasonFamily>)>,
}

impl Spell {
    fn linked(&self) -> Option<Admission> {
        self.admission.filter(|_| !self.cancelled)
    }
}

fn active(journey: &Journey) -> impl Iterator<Item = &StoredEvent> {
    journey.events.iter().filter(|event| {
        !journey
            .corrected
            .iter()
            .any(|(corrected, _)| *corrected == event.id)
    })
}

/// The hospital spells of a journey into `scratch`, each from its own
/// discharge-feed events: grouped by trust and spell reference.
fn collect_spells(journey: &Journey, scratch: &mut Scratch) {
    scratch.spells.clear();
    scratch.periods.clear();
    scratch.reasons.clear();
    for event in active(journey).filter(|event| event.kind.feed() == Feed::Discharge) {
        let known = scratch
            .spells
            .iter()
            .any(|spell| spell.trust == event.organisation && spell.reference == event.reference);
        if !known {
            scratch.spells.push(Spell {
                trust: event.organisation,
                reference: event.reference,
                admission: None,
                cancelled: false,
                discharge: None,
                pathway: None,
                periods: 0..0,
                reasons: 0..0,
                event_count: 0,
            });
        }
    }
    for index in 0..scratch.spells.len() {
        let (trust, reference) = (scratch.spells[index].trust, scratch.spells[index].reference);
        let own = |event: &&StoredEvent| {
            event.kind.feed() == Feed::Discharge
                && event.organisation == trust
                && event.reference == reference
        };
        let reasons_start = scratch.reasons.len();
        let mut spell = scratch.spells[index].clone();
        let mut last_cancel = None;
        for event in active(journey).filter(own) {
            spell.event_count += 1;
            match event.kind {
                StoredKind::Admitted {
                    emergency,
                    age_years,
                    bed_type,
                    place,
                } if spell.admission.is_none() => {
                    spell.admission = Some(Admission {
                        at: event.at,
                        day: event.day.into(),
                        emergency,
                        age_years,
                        bed_type,
                        place,
                    });
                }
                StoredKind::AdmissionCancelled => spell.cancelled = true,
                StoredKind::PathwayAssigned(pathway) => spell.pathway = Some(pathway),
                StoredKind::DelayReason(family) => scratch.reasons.push((event.day.into(), family)),
                StoredKind::DischargeCancelled => last_cancel = Some(event.at),
                _ => {}
            }
        }
        spell.reasons = reasons_start..scratch.reasons.len();
        // The discharge that stands: the latest one that no "discharge
        // cancelled" at or after it voids.
        spell.discharge = active(journey)
            .filter(own)
            .filter_map(|event| match event.kind {
                StoredKind::Discharged {
                    destination,
                    pathway,
                } if last_cancel.is_none_or(|cancel| cancel < event.at) => Some(Discharge {
                    at: event.at,
                    day: event.day.into(),
                    destination,
                    pathway,
                }),
                _ => None,
            })
            .last();
        if let Some(discharge) = spell.discharge {
            spell.pathway = Some(discharge.pathway);
        }
        let periods_start = scratch.periods.len();
        if let Some(admission) = spell.admission {
            collect_periods(journey, &spell, admission, own, &mut scratch.periods);
        }
        spell.periods = periods_start..scratch.periods.len();
        scratch.spells[index] = spell;
    }
}

/// The periods without criteria to reside, up to the discharge that stands.
fn collect_periods<'a>(
    journey: &'a Journey,
    spell: &Spell,
    admission: Admission,
    own: impl Fn(&&'a StoredEvent) -> bool,
    periods: &mut Vec<Period>,
) {
    let first = periods.len();
    let mut open: Option<i32> = None;
    for event in active(journey).filter(own) {
        if spell
            .discharge
            .is_some_and(|discharge| event.at > discharge.at)
        {
            break;
        }
        match event.kind {
            StoredKind::CriteriaNotMet { ready_day } if open.is_none() => {
                let ready = ready_day.map_or(i32::from(event.day), i32::from);
                open = Some(ready.max(admission.day));
            }
            StoredKind::CriteriaMet => {
                if let Some(start) = open.take() {
                    periods.push(Period {
                        start,
                        end: Some(i32::from(event.day)),
                        ended_by_discharge: false,
                    });
                }
            }
            _ => {}
        }
    }
    if let Some(start) = open {
        let end = spell.discharge.map(|discharge| discharge.day);
        periods.push(Period {
            start,
            end,
            ended_by_discharge: end.is_some(),
        });
    }
    // A period that ends the day it starts holds no day in hospital, but one
    // ended by discharge is still a discharge on the ready date (0 days).
    let mut index = first;
    while index < periods.len() {
        let period = periods[index];
        let keep = period.end.is_none_or(|end| {
            end > period.start || (end == period.start && period.ended_by_discharge)
        });
        if keep {
            index += 1;
        } else {
            periods.remove(index);
        }
    }
}

/// Every contribution of one journey, appended to `out`.
pub(crate) fn derive(
    journey: &Journey,
    lookup: &impl Lookup,
    scratch: &mut Scratch,
    out: &mut Vec<(MetricKey, Contribution)>,
) {
    collect_spells(journey, scratch);
    let spells = std::mem::take(&mut scratch.spells);
    let any_linked = spells.iter().any(|spell| spell.linked().is_some());

    for spell in &spells {
        if spell.admission.is_none() {
            let organisation = lookup.organisation(spell.trust);
            out.push((
                MetricKey::UnlinkedEvents {
                    totalled: None,
                    feed: Feed::Discharge,
                    organisation,
                },
                Contribution::Constant(spell.event_count),
            ));
        }
    }
    if !any_linked {
        for event in active(journey).filter(|event| event.kind.feed() != Feed::Discharge) {
            let key = MetricKey::UnlinkedEvents {
                totalled: None,
                feed: event.kind.feed(),
                organisation: lookup.organisation(event.organisation),
            };
            out.push((key, Contribution::Constant(1)));
        }
    }
    for spell in spells.iter().filter(|spell| spell.linked().is_some()) {
        derive_spell(journey, spell, &spells, lookup, scratch, out);
    }
    scratch.spells = spells;
}

fn step(out: &mut Vec<(MetricKey, Contribution)>, key: MetricKey, from: i32, until: Option<i32>) {
    if until.is_some_and(|until| until <= from) {
        return;
    }
    out.push((
        key,
        Contribution::Step {
            day: from,
            delta: 1,
        },
    ));
    if let Some(until) = until {
        out.push((
            key,
            Contribution::Step {
                day: until,
                delta: -1,
            },
        ));
    }
}

fn derive_spell(
    journey: &Journey,
    spell: &Spell,
    spells: &[Spell],
    lookup: &impl Lookup,
    scratch: &mut Scratch,
    out: &mut Vec<(MetricKey, Contribution)>,
) {
    let Some(admission) = spell.linked() else {
        return;
    };
    let place = lookup.place(admission.place);
    let provider = lookup.organisation(spell.trust);
    let pathway = PathwayLabel(spell.pathway);

    // Every measure read from the periods without criteria to reside
    // mirrors the sitrep, so counts only the sitrep's patients.
    let periods = if admission.in_sitrep_scope() {
        &scratch.periods[spell.periods.clone()]
    } else {
        &[]
    };
    let reasons = &scratch.reasons[spell.reasons.clone()];
    for period in periods {
        step(
            out,
            MetricKey::NotMeetingCriteria {
                place,
                provider,
                pathway,
            },
            period.start,
            period.end,
        );
        for (stay, first, after) in StayBand::RANGES {
            let from = period.start.max(admission.day.saturating_add(first));
            let until = match (period.end, after) {
                (end, i32::MAX) => end,
                (Some(end), after) => Some(end.min(admission.day + after)),
                (None, after) => Some(admission.day + after),
            };
            step(
                out,
                MetricKey::NotMeetingCriteriaByStay {
                    place,
                    provider,
                    pathway,
                    stay,
                },
                from,
                until,
            );
        }
        // The period split by the delay reason in effect each day: the
        // latest reason recorded on or before that day.
        let family_at_start = reasons
            .iter()
            .take_while(|(day, _)| *day <= period.start)
            .last()
            .map(|(_, family)| *family);
        let segments = &mut scratch.segments;
        segments.clear();
        segments.push((period.start, family_at_start));
        for &(day, family) in reasons {
            if day <= period.start || period.end.is_some_and(|end| day >= end) {
                continue;
            }
            match segments.last_mut() {
                Some(last) if last.0 == day => last.1 = Some(family),
                _ => segments.push((day, Some(family))),
            }
        }
        for (index, &(from, family)) in segments.iter().enumerate() {
            let until = segments.get(index + 1).map(|next| next.0).or(period.end);
            let reason = ReasonLabel(family);
            let bed_days = MetricKey::DelayedBedDays {
                totalled: None,
                place,
                provider,
                pathway,
                reason,
            };
            out.push((
                bed_days,
                Contribution::Slope {
                    day: from,
                    delta: 1,
                },
            ));
            if let Some(until) = until {
                out.push((
                    bed_days,
                    Contribution::Slope {
                        day: until,
                        delta: -1,
                    },
                ));
            }
            step(
                out,
                MetricKey::DelayedByReason {
                    place,
                    provider,
                    reason,
                },
                from,
                until,
            );
            // How long since the DRD: the segment under its period's start
            // day, put in its band when the metrics are read (one step,
            // not one per band, on this path every event takes twice).
            step(
                out,
                MetricKey::NotMeetingCriteriaSince {
                    place,
                    provider,
                    pathway,
                    reason,
                    since: period.start,
                },
                from,
                until,
            );
        }
    }

    let latest_period = periods.last().copied();
    if let Some(discharge) = spell.discharge {
        let destination = discharge.destination.group();
        out.push((
            MetricKey::Discharges {
                totalled: None,
                place,
                provider,
                pathway,
                destination,
            },
            Contribution::Step {
                day: discharge.day,
                delta: 1,
            },
        ));
        if let Some(period) = latest_period.filter(|period| period.ended_by_discharge) {
            let delay = discharge.day - period.start;
            let band = DelayBand::of_days(delay);
            out.push((
                MetricKey::DischargeDelay {
                    totalled: None,
                    place,
                    provider,
                    pathway,
                    delay: band,
                },
                Contribution::Step {
                    day: discharge.day,
                    delta: 1,
                },
            ));
            out.push((
                MetricKey::DischargeDelayDays {
                    totalled: None,
                    place,
                    provider,
                    pathway,
                },
                Contribution::Step {
                    day: discharge.day,
                    delta: i64::from(delay),
                },
            ));
        }
    }

    let social_care = || active(journey).filter(|event| event.kind.feed() == Feed::SocialCare);
    let needs_care = matches!(
        spell.pathway,
        Some(DischargePathway::P1 | DischargePathway::P2 | DischargePathway::P3)
    );
    if let (true, Some(period)) = (needs_care, latest_period) {
        let service_day = social_care()
            .filter(|event| matches!(event.kind, StoredKind::ServiceStarted { .. }))
            .map(|event| i32::from(event.day))
            .find(|day| *day >= period.start);
        let regained_criteria = period.end.filter(|_| !period.ended_by_discharge);
        let care_deadline = spell.discharge.map(|discharge| {
            // Nobody waits for care after dying in hospital.
            if discharge.destination.group() == DestinationGroup::Died {
                discharge.day
            } else {
                discharge.day + CARE_START_DAYS_AFTER_DISCHARGE
            }
        });
        // Nor after a death the practice was told of.
        let death = active(journey)
            .filter_map(|event| match event.kind {
                StoredKind::DeathNotified { day } => Some(i32::from(day)),
                _ => None,
            })
            .min();
        let end = [service_day, regained_criteria, care_deadline, death]
            .into_iter()
            .flatten()
            .min();
        step(
            out,
            MetricKey::WaitingForCare { place, pathway },
            period.start,
            end,
        );
        step(
            out,
            MetricKey::WaitingForCareSince {
                place,
                pathway,
                since: period.start,
            },
            period.start,
            end,
        );
        if let Some(service_day) = service_day.filter(|day| Some(*day) == end) {
            let delay = DelayBand::of_days(service_day - period.start);
            out.push((
                MetricKey::CareStartDelay {
                    totalled: None,
                    place,
                    pathway,
                    delay,
                },
                Contribution::Step {
                    day: service_day,
                    delta: 1,
                },
            ));
        }
    }

    let Some(discharge) = spell.discharge else {
        return;
    };
    let later_admissions = || {
        spells
            .iter()
            .filter_map(|other| other.linked().map(|admission| (admission, other)))
            .filter(move |(other, _)| other.at > discharge.at)
    };
    if let Some((readmission, _)) = later_admissions()
        .filter(|(admission, _)| admission.emergency)
        .min_by_key(|(admission, _)| admission.at)
    {
        // As the national indicator links it: to the most recent discharge
        // before it, so a readmission counts once, even when an elective
        // stay came in between.
        let later_discharge = spells
            .iter()
            .filter_map(|other| other.discharge)
            .any(|other| other.at > discharge.at && other.at < readmission.at);
        if !later_discharge
            && (0..=READMISSION_LAST_DAY).contains(&(readmission.day - discharge.day))
        {
            out.push((
                MetricKey::Readmissions {
                    place,
                    provider,
                    totalled: None,
                },
                Contribution::Step {
                    day: readmission.day,
                    delta: 1,
                },
            ));
        }
    }

    if discharge.destination.group() == DestinationGroup::Died {
        return;
    }
    let contact_day = active(journey)
        .filter(|event| {
            event.kind == StoredKind::Contact { attended: true } && event.at >= discharge.at
        })
        .map(|event| i32::from(event.day))
        .next();
    for window in FollowUpWindow::ALL {
        let window_closes = discharge.day + window.days() + 1;
        let key = |outcome| MetricKey::GpFollowUp {
            totalled: None,
            place,
            window,
            outcome,
        };
        match contact_day.filter(|day| *day < window_closes) {
            Some(day) => {
                out.push((
                    key(FollowUpOutcome::Attended),
                    Contribution::Step { day, delta: 1 },
                ));
                step(out, key(FollowUpOutcome::Pending), discharge.day, Some(day));
            }
            None => {
                out.push((
                    key(FollowUpOutcome::NotAttended),
                    Contribution::Step {
                        day: window_closes,
                        delta: 1,
                    },
                ));
                step(
                    out,
                    key(FollowUpOutcome::Pending),
                    discharge.day,
                    Some(window_closes),
                );
            }
        }
    }

    if admission.age_years < 65 {
        return;
    }
    let (window_from, window_to) = (
        discharge.day + REABLEMENT_WINDOW.0,
        discharge.day + REABLEMENT_WINDOW.1,
    );
    let reablement_day = social_care()
        .filter(|event| {
            matches!(
                event.kind,
                StoredKind::ServiceStarted {
                    component: ServiceComponent::Reablement,
                    ..
                }
            )
        })
        .map(|event| i32::from(event.day))
        .find(|day| (window_from..=window_to).contains(day));
    let Some(reablement_day) = reablement_day else {
        return;
    };
    let outcome_day = discharge.day + REABLEMENT_OUTCOME_DAY;
    let outcome = reablement_outcome(
        journey,
        discharge,
        outcome_day,
        later_admissions().map(|(_, spell)| spell),
    );
    step(
        out,
        MetricKey::Reablement {
            totalled: None,
            place,
            outcome: ReablementOutcome::Pending,
        },
        reablement_day.max(discharge.day),
        Some(outcome_day),
    );
    out.push((
        MetricKey::Reablement {
            place,
            outcome,
            totalled: None,
        },
        Contribution::Step {
            day: outcome_day,
            delta: 1,
        },
    ));
}

/// Where the person is on day 91 after `discharge`: died, in a care home,
/// in hospital, or at home, in that order of precedence.
fn reablement_outcome<'a>(
    journey: &Journey,
    discharge: Discharge,
    outcome_day: i32,
    later_spells: impl Iterator<Item = &'a Spell> + Clone,
) -> ReablementOutcome {
    let by_outcome_day = |day: i32| day >= discharge.day && day <= outcome_day;
    let events = || {
        active(journey).filter(|event| event.at >= discharge.at && by_outcome_day(event.day.into()))
    };
    let later_discharges = || {
        later_spells
            .clone()
            .filter_map(|spell| spell.discharge)
            .filter(|later| by_outcome_day(later.day))
    };

    let died = active(journey).any(|event| matches!(event.kind, StoredKind::DeathNotified { day } if by_outcome_day(day.into())))
        || events().any(|event| event.kind == StoredKind::ServiceEnded(ServiceEndReason::Died))
        || later_discharges().any(|later| later.destination.group() == DestinationGroup::Died);
    if died {
        return ReablementOutcome::Died;
    }
    let care_home = events().any(|event| {
        matches!(
            event.kind,
            StoredKind::ServiceEnded(ServiceEndReason::MovedToResidentialOrNursing)
                | StoredKind::ServiceStarted {
                    service_type: ServiceType::LongTermNursing | ServiceType::LongTermResidential,
                    ..
                }
        )
    }) || later_discharges()
        .any(|later| later.destination.group() == DestinationGroup::CareHome);
    if care_home {
        return ReablementOutcome::CareHome;
    }
    let in_hospital = later_spells.clone().any(|spell| {
        spell
            .linked()
            .is_some_and(|admission| admission.day <= outcome_day)
            && spell.discharge.is_none_or(|later| later.day > outcome_day)
    });
    if in_hospital {
        ReablementOutcome::Readmitted
    } else {
        ReablementOutcome::AtHome
    }
}
