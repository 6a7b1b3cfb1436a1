//! Plausible example events, one of each event type of every feed. Used by
//! tests, benchmarks and the schema examples; never by the pipeline itself.

use crate::codes::*;
use crate::event::*;
use crate::identifiers::{EventId, OdsCode, PlaceCode, Pseudonym};
use crate::time::{Date, Timestamp};

/// A pseudonym made of one repeated byte, for readable test data.
pub fn sample_pseudonym(byte: u8) -> Pseudonym {
    Pseudonym::from_bytes([byte; 32])
}

/// An envelope at `occurred_at` (recorded one minute later) from
/// `organisation` in place E06000047 for the patient `sample_pseudonym(1)`.
pub fn sample_envelope(event_number: u128, organisation: &str, occurred_at: Timestamp) -> Envelope {
    Envelope {
        event_id: EventId::from_u128(0x1b4e_28ba_2fa1_41d2_883f_0016_d3cc_0000 + event_number),
        occurred_at,
        recorded_at: Timestamp::from_millis(occurred_at.as_millis() + 60_000),
        source_organisation: sample_code(OdsCode::parse("source_organisation", organisation)),
        place: sample_code(PlaceCode::parse("place", "E06000047")),
        patient: sample_pseudonym(1),
        episode_reference: Some(sample_pseudonym(2)),
        corrects_event_id: None,
    }
}

/// One event of every type: 7 discharge, 5 social care, 5 primary care.
pub fn one_event_of_each_type() -> Vec<Event> {
    // 2026-01-05T10:00:00Z, a winter Monday.
    let start = 1_767_607_200_000_i64;
    let at = |days: i64| Timestamp::from_millis(start + days * Timestamp::MILLIS_PER_DAY);
    let ready_date = at(3).date();
    let discharge = |number: u128, days: i64, body: DischargeBody| Event {
        envelope: sample_envelope(number, "RVW", at(days)),
        body: EventBody::Discharge(body),
    };
    let social_care = |number: u128, days: i64, body: SocialCareBody| Event {
        envelope: sample_envelope(number, "702", at(days)),
        body: EventBody::SocialCare(body),
    };
    let primary_care = |number: u128, days: i64, body: PrimaryCareBody| {
        let mut envelope = sample_envelope(number, "M83670", at(days));
        envelope.episode_reference = None;
        Event {
            envelope,
            body: EventBody::PrimaryCare(body),
        }
    };
    let mut corrected = discharge(
        8,
        6,
        DischargeBody::DelayReasonRecorded {
            reason_family: DelayReasonFamily::Capacity,
            reason_code: DelayReason::HomeRehabilitation,
        },
    );
    corrected.envelope.corrects_event_id = Some(EventId::from_u128(
        0x1b4e_28ba_2fa1_41d2_883f_0016_d3cc_0005,
    ));
    vec![
        discharge(
            1,
            0,
            DischargeBody::Admitted {
                admission_method: AdmissionMethod::EmergencyAccidentAndEmergency,
                admission_source: AdmissionSource::UsualPlaceOfResidence,
                age_years: sample_code(AgeYears::new("age_years", 82)),
                bed_type: Some(BedType::GeneralAndAcute),
            },
        ),
        discharge(
            2,
            1,
            DischargeBody::CriteriaToResideAssessed(CriteriaToReside::Meets(
                CriteriaToResideCode::C03,
            )),
        ),
        discharge(
            3,
            3,
            DischargeBody::CriteriaToResideAssessed(CriteriaToReside::DoesNotMeet {
                discharge_ready_date: Some(ready_date),
            }),
        ),
        discharge(
            4,
            3,
            DischargeBody::PathwayAssigned {
                pathway: DischargePathway::P1,
            },
        ),
        discharge(
            5,
            4,
            DischargeBody::DelayReasonRecorded {
                reason_family: DelayReasonFamily::Capacity,
                reason_code: DelayReason::HomeSocialCare,
            },
        ),
        corrected,
        discharge(
            6,
            8,
            DischargeBody::Discharged {
                destination: DischargeDestination::UsualPlaceOfResidence,
                discharge_method: DischargeMethod::ClinicalAdvice,
                pathway: DischargePathway::P1,
            },
        ),
        discharge(7, 8, DischargeBody::DischargeCancelled),
        discharge(9, 9, DischargeBody::AdmissionCancelled),
        social_care(
            10,
            2,
            SocialCareBody::RequestCompleted {
                route_of_access: RouteOfAccess::DischargeFromHospital,
            },
        ),
        social_care(
            11,
            5,
            SocialCareBody::AssessmentCompleted {
                assessment_type: AssessmentType::ShortTerm,
                eligible_needs: true,
            },
        ),
        social_care(
            12,
            8,
            SocialCareBody::ServiceStarted {
                service_type: ServiceType::ShortTermStMax,
                service_component: ServiceComponent::Reablement,
            },
        ),
        social_care(
            13,
            50,
            SocialCareBody::ServiceEnded {
                end_reason: ServiceEndReason::NoOngoingNeeds,
            },
        ),
        social_care(
            14,
            40,
            SocialCareBody::ReviewCompleted {
                review_type: ReviewType::Planned,
                review_outcome: ReviewOutcome::SupportReduced,
            },
        ),
        primary_care(
            15,
            9,
            PrimaryCareBody::DischargeSummaryFiled {
                sending_organisation: sample_code(OdsCode::parse("sending_organisation", "RVW")),
            },
        ),
        primary_care(
            16,
            12,
            PrimaryCareBody::PostDischargeContact {
                attendance: ContactAttendance::Attended,
                contact_mode: ContactMode::Telephone,
            },
        ),
        primary_care(
            17,
            13,
            PrimaryCareBody::MedicationReviewCompleted {
                review_kind: MedicationReviewKind::DischargeMedicinesService,
            },
        ),
        primary_care(
            18,
            60,
            PrimaryCareBody::RegistrationChanged {
                change: RegistrationChange::Deregistered,
                new_practice: Some(sample_code(OdsCode::parse("new_practice", "M83671"))),
            },
        ),
        primary_care(
            19,
            90,
            PrimaryCareBody::DeathNotified {
                date_of_death: Date::from_days_since_epoch(ready_date.days_since_epoch() + 85),
            },
        ),
    ]
}

/// `events` moved by whole days so that the latest was recorded the day
/// before `now`: dates in payloads (Discharge Ready Date, date of death)
/// move with them. For streams that must look live: an engine refuses
/// events older than its eviction horizon for patients it holds no journey
/// for.
pub fn shifted_to_end_before(mut events: Vec<Event>, now: Timestamp) -> Vec<Event> {
    let Some(latest) = events
        .iter()
        .map(|event| event.envelope.recorded_at.as_millis())
        .max()
    else {
        return events;
    };
    let days = (now.as_millis() - latest).div_euclid(Timestamp::MILLIS_PER_DAY) - 1;
    let shift = |instant: Timestamp| {
        Timestamp::from_millis(instant.as_millis() + days * Timestamp::MILLIS_PER_DAY)
    };
    let shift_date =
        |date: Date| Date::from_days_since_epoch(date.days_since_epoch() + days as i32);
    for event in &mut events {
        event.envelope.occurred_at = shift(event.envelope.occurred_at);
        event.envelope.recorded_at = shift(event.envelope.recorded_at);
        match &mut event.body {
            EventBody::Discharge(DischargeBody::CriteriaToResideAssessed(
                CriteriaToReside::DoesNotMeet {
                    discharge_ready_date: Some(date),
                },
            )) => *date = shift_date(*date),
            EventBody::PrimaryCare(PrimaryCareBody::DeathNotified { date_of_death }) => {
                *date_of_death = shift_date(*date_of_death);
            }
            _ => {}
        }
    }
    events
}

/// The sample values above are literals that satisfy their rules.
fn sample_code<T>(parsed: Result<T, crate::Rejection>) -> T {
    match parsed {
        Ok(value) => value,
        Err(rejection) => panic!("sample data breaks a rule: {rejection}"),
    }
}

/// Reference data of one place (E06000047) and these partners, each with
/// its own principal (`User:partner-<code>`), for tests.
/// Reference data in which the organisations and place of
/// [`one_event_of_each_type`] are the ICS's: trust `RVW`, local authority
/// `702` and practice `M83670`, in `E06000047`.
pub fn samples_reference() -> crate::Reference {
    sample_reference(&[
        ("RVW", crate::PartnerKind::AcuteTrust),
        ("702", crate::PartnerKind::LocalAuthority),
        ("M83670", crate::PartnerKind::PrimaryCare),
    ])
}

pub fn sample_reference(partners: &[(&str, crate::PartnerKind)]) -> crate::Reference {
    let place = sample_code(PlaceCode::parse("place", "E06000047"));
    crate::Reference::new(
        vec![crate::Place {
            code: place,
            name: "County Durham".to_owned(),
        }],
        partners
            .iter()
            .map(|(code, kind)| crate::Partner {
                code: sample_code(OdsCode::parse("code", code)),
                name: format!("Partner {code}"),
                quiet_after_minutes: None,
                kind: *kind,
                place,
                principal: format!("User:partner-{}", code.to_ascii_lowercase()),
                publishes_for: Vec::new(),
            })
            .collect(),
        crate::PerKind::new(|_| crate::Cadence {
            quiet_after_minutes: 60,
            office_hours_only: false,
        }),
        crate::RolePrincipals {
            ingest: "User:icsflow-ingest".to_owned(),
            join: "User:icsflow-join".to_owned(),
        },
    )
    .unwrap_or_else(|problems| panic!("sample reference data: {problems:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifting_keeps_days_apart_and_moves_payload_dates() {
        let now = Timestamp::from_millis(1_800_000_000_000);
        let shifted = shifted_to_end_before(one_event_of_each_type(), now);
        let latest = shifted
            .iter()
            .map(|event| event.envelope.recorded_at)
            .max()
            .expect("events");
        assert!(
            latest < now && latest.as_millis() > now.as_millis() - 2 * Timestamp::MILLIS_PER_DAY
        );
        let original = one_event_of_each_type();
        let days = (shifted[0].envelope.occurred_at.as_millis()
            - original[0].envelope.occurred_at.as_millis())
            / Timestamp::MILLIS_PER_DAY;
        let ready = |events: &[Event]| {
            events.iter().find_map(|event| match event.body {
                EventBody::Discharge(DischargeBody::CriteriaToResideAssessed(
                    CriteriaToReside::DoesNotMeet {
                        discharge_ready_date: Some(date),
                    },
                )) => Some(date.days_since_epoch()),
                _ => None,
            })
        };
        assert_eq!(
            ready(&shifted),
            ready(&original).map(|day| day + days as i32)
        );
    }

    #[test]
    fn every_event_type_is_sampled() {
        let events = one_event_of_each_type();
        let mut symbols: Vec<&str> = events
            .iter()
            .map(|event| event.body.event_type_symbol())
            .collect();
        symbols.sort_unstable();
        symbols.dedup();
        let expected = DischargeEventType::ALL.len()
            + SocialCareEventType::ALL.len()
            + PrimaryCareEventType::ALL.len();
        assert_eq!(symbols.len(), expected);
    }
}
