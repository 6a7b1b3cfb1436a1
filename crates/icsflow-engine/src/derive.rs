//! The pure function from a journey to its contributions to every metric:
//! one function per metric family, each deciding on its own which spells
//! it counts (no early return of one family hides patients from another).
//!
//! The contributions depend only on the set of events (sorted by occurrence
//! time, ties broken by event id), never on the order they arrived in: that
//! is what makes the engine order-independent. Corrections and
//! cancellations are applied while deriving (in `spells.rs`), so they
//! restate everything that depended on what they replace.

use icsflow_core::{
    DelayReasonFamily, DestinationGroup, DischargeDestination, DischargePathway, Feed, OdsCode,
    PlaceCode, ServiceComponent, ServiceEndReason, ServiceType,
};

use crate::journey::{active, Journey, StoredKind};
use crate::labels::*;
use crate::metrics::MetricKey;
use crate::series::Contribution;
use crate::spells::{collect_spells, Admission, Discharge, Period, Scratch, Spell};

/// Social care must start within this many days of discharge to end a wait
/// for care (our choice; see docs/metrics.md).
pub(crate) const CARE_START_DAYS_AFTER_DISCHARGE: i32 = 28;
/// Reablement counts when it starts from 3 days before to 7 days after
/// discharge (ASCOF 2D / BCF).
const REABLEMENT_WINDOW: (i32, i32) = (-3, 7);
/// Status is taken on day 91 after discharge.
pub(crate) const REABLEMENT_OUTCOME_DAY: i32 = 91;
/// Readmission within 30 days: 0 to 29 days after discharge.
const READMISSION_LAST_DAY: i32 = 29;

/// The organisation and place tables the stored events index into.
pub(crate) trait Lookup {
    fn organisation(&self, index: u16) -> OdsCode;
    fn place(&self, index: u16) -> PlaceCode;
}

/// Where contributions go: (series, contribution) pairs.
type Out = Vec<(MetricKey, Contribution)>;

/// Every contribution of one journey, appended to `out`.
pub(crate) fn derive(
    journey: &Journey,
    lookup: &impl Lookup,
    scratch: &mut Scratch,
    out: &mut Out,
) {
    collect_spells(journey, scratch);
    let spells = std::mem::take(&mut scratch.spells);
    unlinked_events(journey, &spells, lookup, out);
    for spell in &spells {
        let Some(admission) = spell.linked() else {
            continue;
        };
        let context = SpellContext {
            journey,
            spell,
            spells: &spells,
            admission,
            place: lookup.place(admission.place),
            provider: lookup.organisation(spell.trust),
            pathway: PathwayLabel(spell.pathway),
            // Every measure read from the periods without criteria to
            // reside mirrors the sitrep, so counts only its patients.
            periods: if admission.in_sitrep_scope() {
                &scratch.periods[spell.periods.clone()]
            } else {
                &[]
            },
        };
        not_meeting_criteria(
            &context,
            &scratch.reasons[spell.reasons.clone()],
            &mut scratch.segments,
            out,
        );
        discharges(&context, out);
        in_hospital(&context, out);
        waiting_for_care(&context, out);
        readmissions(&context, out);
        gp_follow_up(&context, out);
        reablement(&context, out);
    }
    // The data-quality families last: what an event changes in them is
    // mostly nothing, so they lengthen the common end of the derivations
    // before and after it, which costs no sorting.
    for spell in &spells {
        if let Some(admission) = spell.linked() {
            let periods = if admission.in_sitrep_scope() {
                &scratch.periods[spell.periods.clone()]
            } else {
                &[]
            };
            completeness(
                spell,
                admission,
                lookup.organisation(spell.trust),
                periods,
                &scratch.reasons[spell.reasons.clone()],
                out,
            );
        }
    }
    care_starts_linked(journey, &spells, lookup, out);
    amended_events(journey, lookup, out);
    scratch.spells = spells;
}

/// One linked spell and what every family reads of it.
struct SpellContext<'a> {
    journey: &'a Journey,
    spell: &'a Spell,
    /// Every spell of the journey, this one included.
    spells: &'a [Spell],
    admission: Admission,
    place: PlaceCode,
    provider: OdsCode,
    pathway: PathwayLabel,
    /// The spell's periods without criteria to reside when it is in the
    /// sitrep's scope; none otherwise.
    periods: &'a [Period],
}

impl SpellContext<'_> {
    /// The latest no-criteria period (in the sitrep's scope).
    fn latest_period(&self) -> Option<Period> {
        self.periods.last().copied()
    }

    /// The standing discharge, unless the patient died in hospital.
    fn living_discharge(&self) -> Option<Discharge> {
        self.spell
            .discharge
            .filter(|discharge| discharge.destination.group() != DestinationGroup::Died)
    }

    /// Later spells' admissions, after this spell's discharge.
    fn admissions_after(
        &self,
        discharge: Discharge,
    ) -> impl Iterator<Item = (Admission, &Spell)> + Clone {
        self.spells
            .iter()
            .filter_map(|other| other.linked().map(|admission| (admission, other)))
            .filter(move |(other, _)| other.at > discharge.at)
    }
}

/// Steps `key` up by one on `from` and down on `until` (if any); nothing
/// when the span is empty.
fn step(out: &mut Out, key: MetricKey, from: i32, until: Option<i32>) {
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

/// Metric 11: discharge-feed events of spells with no admission, and the
/// other feeds' events of a journey with no linked spell at all. Each
/// counts from the day it occurred (a step, not a constant), so that the
/// period twin counts the unlinked events of its days (it was 0 in every
/// series).
fn unlinked_events(journey: &Journey, spells: &[Spell], lookup: &impl Lookup, out: &mut Out) {
    let linked = spells.iter().any(|spell| spell.linked().is_some());
    // The common case, on every derivation: nothing is unlinked, and no
    // event needs looking at.
    if linked && spells.iter().all(|spell| spell.admission.is_some()) {
        return;
    }
    for event in active(journey) {
        let unlinked = if event.kind.feed() == Feed::Discharge {
            spells
                .iter()
                .any(|spell| spell.admission.is_none() && spell.owns(event))
        } else {
            !linked
        };
        if unlinked {
            let key = MetricKey::UnlinkedEvents {
                totalled: None,
                feed: event.kind.feed(),
                organisation: lookup.organisation(event.organisation),
            };
            out.push((
                key,
                Contribution::Step {
                    day: event.day.into(),
                    delta: 1,
                },
            ));
        }
    }
}

/// One record of metric 13 on `day`.
fn count_field(
    out: &mut Out,
    feed: Feed,
    organisation: OdsCode,
    field: Field,
    recorded: bool,
    day: i32,
) {
    out.push((
        MetricKey::Completeness {
            totalled: None,
            feed,
            organisation,
            field,
            recorded: Recorded(recorded),
        },
        Contribution::Step { day, delta: 1 },
    ));
}

/// Metric 13, the discharge feed's fields of one linked spell: its
/// admission's bed type (on the admission day), its standing discharge's
/// destination (on the discharge day), and for each no-criteria period in
/// the sitrep's scope (on its first day) whether its DRD was given and,
/// when it holds a delay (a day in hospital from the DRD on), whether a
/// delay reason and a pathway were recorded before it ended.
fn completeness(
    spell: &Spell,
    admission: Admission,
    trust: OdsCode,
    periods: &[Period],
    reasons: &[(i32, DelayReasonFamily)],
    out: &mut Out,
) {
    let mut count = |field, recorded, day| {
        count_field(out, Feed::Discharge, trust, field, recorded, day);
    };
    count(Field::BedType, admission.bed_type.is_some(), admission.day);
    if let Some(discharge) = spell.discharge {
        count(
            Field::Destination,
            discharge.destination != DischargeDestination::NotKnown,
            discharge.day,
        );
    }
    for period in periods {
        count(Field::DischargeReadyDate, period.ready_given, period.start);
        if period.end.is_some_and(|end| end <= period.start) {
            // Discharged on the DRD: no delay to give a reason for.
            continue;
        }
        let before_end = |day: i32| period.end.is_none_or(|end| day < end);
        count(
            Field::DelayReason,
            reasons.iter().any(|(day, _)| before_end(*day)),
            period.start,
        );
        count(
            Field::Pathway,
            spell.pathway_assigned.is_some_and(before_end),
            period.start,
        );
    }
}

/// Metric 13's `linked_spell`: each social care service start (on its
/// day, by its local authority) by whether the person has a counted spell
/// (the other events of a person with none are metric 11's).
fn care_starts_linked(journey: &Journey, spells: &[Spell], lookup: &impl Lookup, out: &mut Out) {
    let linked = spells.iter().any(|spell| spell.linked().is_some());
    for event in active(journey) {
        if matches!(event.kind, StoredKind::ServiceStarted { .. }) {
            count_field(
                out,
                Feed::SocialCare,
                lookup.organisation(event.organisation),
                Field::LinkedSpell,
                linked,
                event.day.into(),
            );
        }
    }
}

/// Metric 14: each correction held (on the day its correcting event
/// occurred), and each version of an event id beyond the first whose
/// content differs (on the day the version that stands occurred).
fn amended_events(journey: &Journey, lookup: &impl Lookup, out: &mut Out) {
    let mut count = |organisation: u16, id, amendment| {
        let Some(event) = journey
            .events
            .iter()
            .find(|event| event.is(organisation, id))
        else {
            return;
        };
        out.push((
            MetricKey::AmendedEvents {
                totalled: None,
                feed: event.kind.feed(),
                organisation: lookup.organisation(organisation),
                amendment,
            },
            Contribution::Step {
                day: event.day.into(),
                delta: 1,
            },
        ));
    };
    for correction in journey.corrections() {
        count(
            correction.organisation,
            correction.by,
            Amendment::Correction,
        );
    }
    for (organisation, id) in journey.further_versions() {
        count(organisation, id, Amendment::ConflictingResend);
    }
}

/// Metrics 1, 2, 3, 6 and 6a: the spell's no-criteria periods, by stay,
/// as bed days and by the delay reason in effect each day.
fn not_meeting_criteria(
    context: &SpellContext<'_>,
    reasons: &[(i32, icsflow_core::DelayReasonFamily)],
    segments: &mut Vec<(i32, Option<icsflow_core::DelayReasonFamily>)>,
    out: &mut Out,
) {
    let SpellContext {
        admission,
        place,
        provider,
        pathway,
        ..
    } = *context;
    for period in context.periods {
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
}

/// Metrics 5 and 4: the standing discharge by destination group, and its
/// delay from the latest DRD when it ended a no-criteria period.
fn discharges(context: &SpellContext<'_>, out: &mut Out) {
    let Some(discharge) = context.spell.discharge else {
        return;
    };
    let SpellContext {
        place,
        provider,
        pathway,
        ..
    } = *context;
    out.push((
        MetricKey::Discharges {
            totalled: None,
            place,
            provider,
            pathway,
            destination: discharge.destination.group(),
        },
        Contribution::Step {
            day: discharge.day,
            delta: 1,
        },
    ));
    let Some(period) = context
        .latest_period()
        .filter(|period| period.ended_by_discharge)
    else {
        return;
    };
    let delay = discharge.day - period.start;
    out.push((
        MetricKey::DischargeDelay {
            totalled: None,
            place,
            provider,
            pathway,
            delay: DelayBand::of_days(delay),
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

/// Metric 12: in hospital from the day of admission until the day of the
/// standing discharge, in the sitrep's scope (adults in general and acute
/// beds), by the admission's place and the trust.
fn in_hospital(context: &SpellContext<'_>, out: &mut Out) {
    if !context.admission.in_sitrep_scope() {
        return;
    }
    step(
        out,
        MetricKey::InHospital {
            place: context.place,
            provider: context.provider,
        },
        context.admission.day,
        context.spell.discharge.map(|discharge| discharge.day),
    );
}

/// Metric 7: from the latest DRD of a spell on P1-P3 until social care
/// starts, criteria are met again, 28 days after discharge, or death.
fn waiting_for_care(context: &SpellContext<'_>, out: &mut Out) {
    let needs_care = matches!(
        context.spell.pathway,
        Some(DischargePathway::P1 | DischargePathway::P2 | DischargePathway::P3)
    );
    let (true, Some(period)) = (needs_care, context.latest_period()) else {
        return;
    };
    let SpellContext {
        journey,
        place,
        pathway,
        ..
    } = *context;
    let service_day = active(journey)
        .filter(|event| {
            event.kind.feed() == Feed::SocialCare
                && matches!(event.kind, StoredKind::ServiceStarted { .. })
        })
        .map(|event| i32::from(event.day))
        .find(|day| *day >= period.start);
    let regained_criteria = period.end.filter(|_| !period.ended_by_discharge);
    let care_deadline = context.spell.discharge.map(|discharge| {
        // Nobody waits for care after dying in hospital.
        if discharge.destination.group() == DestinationGroup::Died {
            discharge.day
        } else {
            discharge.day + CARE_START_DAYS_AFTER_DISCHARGE
        }
    });
    // Nor after dying, however the death is known: a practice told of
    // it, a social care service ended by it, or a death in hospital in
    // any stay (a later one too: a person readmitted and discharged dead
    // no longer waits for the care of an earlier discharge).
    let death = active(journey)
        .filter_map(|event| match event.kind {
            StoredKind::DeathNotified { day } => Some(i32::from(day)),
            StoredKind::ServiceEnded(ServiceEndReason::Died) => Some(i32::from(event.day)),
            _ => None,
        })
        .chain(
            context
                .spells
                .iter()
                .filter(|spell| spell.linked().is_some())
                .filter_map(|spell| spell.discharge)
                .filter(|discharge| discharge.destination.group() == DestinationGroup::Died)
                .map(|discharge| discharge.day),
        )
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
        out.push((
            MetricKey::CareStartDelay {
                totalled: None,
                place,
                pathway,
                delay: DelayBand::of_days(service_day - period.start),
            },
            Contribution::Step {
                day: service_day,
                delta: 1,
            },
        ));
    }
}

/// Metric 8, as the national indicator counts it: every emergency
/// admission 0 to 29 days after the patient's most recent standing
/// discharge before it, counted on its day against that discharge's place
/// and provider. Called for the discharged spell, it counts each
/// admission whose most recent discharge is this one: two emergency
/// admissions after one discharge (the second while the first is still
/// open) are two readmissions. A readmission is another spell (a discharge
/// dated before its own spell's admission is not one); a spell whose
/// admission has not arrived counts in no measure, so its discharge does
/// not stand between another discharge and a readmission. Maternity,
/// mental health and learning disability stays are neither index stays
/// nor readmissions (the indicator leaves out obstetrics and is of
/// medical and surgical care).
fn readmissions(context: &SpellContext<'_>, out: &mut Out) {
    let Some(discharge) = context.spell.discharge else {
        return;
    };
    if !context.admission.in_readmission_scope() {
        return;
    }
    // Of two discharges at one instant, the one of the spell that began
    // later (spells are in the order of their first events, whatever the
    // arrival order) is the more recent, so a readmission counts once.
    let own = context
        .spells
        .iter()
        .position(|spell| std::ptr::eq(spell, context.spell));
    let standing_discharges = || {
        context
            .spells
            .iter()
            .enumerate()
            .filter(|(_, other)| other.linked().is_some())
            .filter_map(|(index, other)| other.discharge.map(|discharge| (index, discharge)))
    };
    for (readmission, _) in context
        .admissions_after(discharge)
        .filter(|(_, spell)| !std::ptr::eq(*spell, context.spell))
        .filter(|(admission, _)| admission.emergency && admission.in_readmission_scope())
    {
        let later_discharge = standing_discharges().any(|(index, other)| {
            (other.at, Some(index)) > (discharge.at, own) && other.at < readmission.at
        });
        if later_discharge
            || !(0..=READMISSION_LAST_DAY).contains(&(readmission.day - discharge.day))
        {
            continue;
        }
        out.push((
            MetricKey::Readmissions {
                place: context.place,
                provider: context.provider,
                totalled: None,
            },
            Contribution::Step {
                day: readmission.day,
                delta: 1,
            },
        ));
    }
}

/// Metric 9: living discharged patients against each follow-up window.
fn gp_follow_up(context: &SpellContext<'_>, out: &mut Out) {
    let Some(discharge) = context.living_discharge() else {
        return;
    };
    let contact_day = active(context.journey)
        .filter(|event| {
            event.kind == StoredKind::Contact { attended: true } && event.at >= discharge.at
        })
        .map(|event| i32::from(event.day))
        .next();
    for window in FollowUpWindow::ALL {
        let window_closes = discharge.day + window.days() + 1;
        let key = |outcome| MetricKey::GpFollowUp {
            totalled: None,
            place: context.place,
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
}

/// Metric 10: living people 65 and over discharged, whose reablement
/// started from 3 days before to 7 days after discharge, by where they
/// are on day 91.
fn reablement(context: &SpellContext<'_>, out: &mut Out) {
    let Some(discharge) = context.living_discharge() else {
        return;
    };
    if context.admission.age_years < 65 {
        return;
    }
    let (window_from, window_to) = (
        discharge.day + REABLEMENT_WINDOW.0,
        discharge.day + REABLEMENT_WINDOW.1,
    );
    let Some(reablement_day) = active(context.journey)
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
        .find(|day| (window_from..=window_to).contains(day))
    else {
        return;
    };
    let outcome_day = discharge.day + REABLEMENT_OUTCOME_DAY;
    let outcome = reablement_outcome(
        context.journey,
        discharge,
        outcome_day,
        context.admissions_after(discharge).map(|(_, spell)| spell),
    );
    let key = |outcome| MetricKey::Reablement {
        totalled: None,
        place: context.place,
        outcome,
    };
    step(
        out,
        key(ReablementOutcome::Pending),
        reablement_day.max(discharge.day),
        Some(outcome_day),
    );
    out.push((
        key(outcome),
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
