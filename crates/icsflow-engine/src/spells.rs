//! Hospital spells read from a journey's discharge-feed events: the
//! admission, cancellation and discharge that stand, the pathway, the
//! delay reasons, and the periods without criteria to reside. Shared by
//! every metric family in `derive.rs`.

use std::ops::Range;

use icsflow_core::{BedType, DelayReasonFamily, DischargeDestination, DischargePathway, Feed};

use crate::journey::{active, Journey, StoredEvent, StoredKind};

/// The sitrep-mirroring measures count patients of this age and over.
const ADULT_AGE_YEARS: u8 = 18;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Admission {
    pub(crate) at: u32,
    pub(crate) day: i32,
    pub(crate) emergency: bool,
    pub(crate) age_years: u8,
    pub(crate) bed_type: Option<BedType>,
    pub(crate) place: u16,
}

impl Admission {
    /// The discharge sitrep's scope: adults in general and acute beds. A
    /// bed of unknown type counts as general and acute (see
    /// docs/metrics.md).
    pub(crate) fn in_sitrep_scope(&self) -> bool {
        self.age_years >= ADULT_AGE_YEARS
            && self
                .bed_type
                .is_none_or(|bed| bed == BedType::GeneralAndAcute)
    }

    /// Whether the stay is in the national readmission indicator's scope
    /// (medical and surgical care; obstetrics and mental health are left
    /// out): any bed but maternity, mental health and learning
    /// disabilities. A bed of unknown type counts.
    pub(crate) fn in_readmission_scope(&self) -> bool {
        !matches!(
            self.bed_type,
            Some(BedType::Maternity | BedType::MentalHealth | BedType::LearningDisabilities)
        )
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Discharge {
    pub(crate) at: u32,
    pub(crate) day: i32,
    pub(crate) destination: DischargeDestination,
    pub(crate) pathway: DischargePathway,
}

/// A period of not meeting the criteria to reside: from its Discharge Ready
/// Date to the day criteria were met again or the patient left.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Period {
    pub(crate) start: i32,
    pub(crate) end: Option<i32>,
    pub(crate) ended_by_discharge: bool,
    /// Whether the assessment that began it gave a Discharge Ready Date
    /// (otherwise its day was taken).
    pub(crate) ready_given: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Spell {
    pub(crate) trust: u16,
    pub(crate) reference: u8,
    pub(crate) admission: Option<Admission>,
    pub(crate) cancelled: bool,
    pub(crate) discharge: Option<Discharge>,
    /// When the latest "discharge cancelled" of the spell happened.
    pub(crate) last_cancel: Option<u32>,
    pub(crate) pathway: Option<DischargePathway>,
    /// The day of the first `PATHWAY_ASSIGNED` of the spell, if any.
    pub(crate) pathway_assigned: Option<i32>,
    /// Range of [`Scratch::periods`].
    pub(crate) periods: Range<usize>,
    /// Range of [`Scratch::reasons`]: (day, family) in time order.
    pub(crate) reasons: Range<usize>,
    /// The events of its trust and reference from this instant (its
    /// admission) until the next spell's are its own; `None` for the first
    /// spell of a trust and reference (which also owns what came before
    /// its admission).
    pub(crate) from: Option<u32>,
    pub(crate) until: Option<u32>,
}

impl Spell {
    fn new(trust: u16, reference: u8, from: Option<u32>) -> Spell {
        Spell {
            trust,
            reference,
            admission: None,
            cancelled: false,
            discharge: None,
            last_cancel: None,
            pathway: None,
            pathway_assigned: None,
            periods: 0..0,
            reasons: 0..0,
            from,
            until: None,
        }
    }

    /// Whether `event` is of this spell's trust and reference and within
    /// its time.
    pub(crate) fn owns(&self, event: &StoredEvent) -> bool {
        event.kind.feed() == Feed::Discharge
            && event.organisation == self.trust
            && event.reference == self.reference
            && self.from.is_none_or(|from| event.at >= from)
            && self.until.is_none_or(|until| event.at < until)
    }
}

/// Buffers reused from one derivation to the next, so that deriving a
/// journey allocates nothing in the steady state.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    pub(crate) spells: Vec<Spell>,
    pub(crate) periods: Vec<Period>,
    pub(crate) reasons: Vec<(i32, DelayReasonFamily)>,
    /// The delay reasons as read, with the index of their spell.
    pub(crate) spell_reasons: Vec<(usize, i32, DelayReasonFamily)>,
    pub(crate) segments: Vec<(i32, Option<DelayReasonFamily>)>,
}

impl Spell {
    pub(crate) fn linked(&self) -> Option<Admission> {
        self.admission.filter(|_| !self.cancelled)
    }
}

/// The hospital spells of a journey into `scratch`, each from its own
/// discharge-feed events: grouped by trust and spell reference, and within
/// that, a new spell from each admission that follows a discharge standing
/// so far (a trust that sends no spell reference, or reuses one) or the
/// cancellation of the spell's admission. One pass
/// over the events reads every spell's facts; a second, per admitted
/// spell, its periods (which stop at the discharge that stands).
pub(crate) fn collect_spells(journey: &Journey, scratch: &mut Scratch) {
    scratch.spells.clear();
    scratch.periods.clear();
    scratch.reasons.clear();
    scratch.spell_reasons.clear();
    for event in active(journey).filter(|event| event.kind.feed() == Feed::Discharge) {
        let latest = scratch.spells.iter().rposition(|spell| {
            spell.trust == event.organisation && spell.reference == event.reference
        });
        let index = match latest {
            Some(index) if !begins_another(&scratch.spells[index], event) => index,
            _ => {
                let from = latest.map(|index| {
                    scratch.spells[index].until = Some(event.at);
                    event.at
                });
                scratch
                    .spells
                    .push(Spell::new(event.organisation, event.reference, from));
                scratch.spells.len() - 1
            }
        };
        let spell = &mut scratch.spells[index];
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
            StoredKind::PathwayAssigned(pathway) => {
                spell.pathway = Some(pathway);
                spell.pathway_assigned.get_or_insert(i32::from(event.day));
            }
            StoredKind::DelayReason(family) => {
                scratch
                    .spell_reasons
                    .push((index, i32::from(event.day), family));
            }
            // The discharge that stands: the latest one that no "discharge
            // cancelled" at or after it voids. A cancellation voids every
            // discharge before it, and one at the same instant ordered
            // before a discharge still voids it.
            StoredKind::DischargeCancelled => {
                spell.last_cancel = Some(event.at);
                spell.discharge = None;
            }
            StoredKind::Discharged {
                destination,
                pathway,
            } if spell.last_cancel.is_none_or(|cancel| cancel < event.at) => {
                spell.discharge = Some(Discharge {
                    at: event.at,
                    day: event.day.into(),
                    destination,
                    pathway,
                });
            }
            _ => {}
        }
    }
    // Each spell's reasons in one range, in time order (a stable sort by
    // spell keeps it).
    scratch.spell_reasons.sort_by_key(|(spell, _, _)| *spell);
    for (index, spell) in scratch.spells.iter_mut().enumerate() {
        let start = scratch.reasons.len();
        scratch.reasons.extend(
            scratch
                .spell_reasons
                .iter()
                .filter(|(of, _, _)| *of == index)
                .map(|(_, day, family)| (*day, *family)),
        );
        spell.reasons = start..scratch.reasons.len();
        if let Some(discharge) = spell.discharge {
            spell.pathway = Some(discharge.pathway);
        }
        let periods_start = scratch.periods.len();
        if let Some(admission) = spell.admission {
            collect_periods(journey, spell, admission, &mut scratch.periods);
        }
        spell.periods = periods_start..scratch.periods.len();
    }
}

/// An admission after a discharge that stands so far, or after the spell's
/// admission was cancelled (entered in error, then entered again under the
/// same spell number), begins another spell of the same trust and
/// reference.
fn begins_another(spell: &Spell, event: &StoredEvent) -> bool {
    matches!(event.kind, StoredKind::Admitted { .. })
        && spell.admission.is_some()
        && (spell.cancelled
            || spell
                .discharge
                .is_some_and(|discharge| discharge.at <= event.at))
}

/// The periods without criteria to reside, up to the discharge that stands.
fn collect_periods(
    journey: &Journey,
    spell: &Spell,
    admission: Admission,
    periods: &mut Vec<Period>,
) {
    let first = periods.len();
    // The open period's start and whether its DRD was given.
    let mut open: Option<(i32, bool)> = None;
    for event in active(journey).filter(|event| spell.owns(event)) {
        if spell
            .discharge
            .is_some_and(|discharge| event.at > discharge.at)
        {
            break;
        }
        match event.kind {
            StoredKind::CriteriaNotMet { ready_day } if open.is_none() => {
                let ready = ready_day.map_or(i32::from(event.day), i32::from);
                open = Some((ready.max(admission.day), ready_day.is_some()));
            }
            StoredKind::CriteriaMet => {
                if let Some((start, ready_given)) = open.take() {
                    periods.push(Period {
                        start,
                        end: Some(i32::from(event.day)),
                        ended_by_discharge: false,
                        ready_given,
                    });
                }
            }
            _ => {}
        }
    }
    if let Some((start, ready_given)) = open {
        let end = spell.discharge.map(|discharge| discharge.day);
        periods.push(Period {
            start,
            end,
            ended_by_discharge: end.is_some(),
            ready_given,
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
