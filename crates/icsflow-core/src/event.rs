//! The events partners publish, after validation.
//!
//! An [`Event`] is an [`Envelope`] (who, where, when, which event) and a
//! body per feed. Values arrive here only through the validating
//! constructors in this module; the wire edge (the Avro crate) feeds them
//! the raw strings and numbers it decoded.

use std::fmt;

use crate::codes::*;
use crate::identifiers::{EventId, OdsCode, PlaceCode, Pseudonym};
use crate::nhs_number::contains_nhs_number;
use crate::rejection::{RejectReason, Rejection};
use crate::time::{Date, Timestamp, TimestampPolicy};

/// The three partner feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Feed {
    /// Acute trusts: admissions, criteria to reside, pathways, discharges.
    Discharge,
    /// Local authorities: requests, assessments, services, reviews.
    SocialCare,
    /// GP practices, PCNs and pharmacies.
    PrimaryCare,
}

impl Feed {
    pub const ALL: [Feed; 3] = [Feed::Discharge, Feed::SocialCare, Feed::PrimaryCare];

    /// The feed's name in topics, labels and the schema folder.
    pub const fn as_str(self) -> &'static str {
        match self {
            Feed::Discharge => "discharge",
            Feed::SocialCare => "social_care",
            Feed::PrimaryCare => "primary_care",
        }
    }

    pub fn from_name(name: &str) -> Option<Feed> {
        Feed::ALL.into_iter().find(|feed| feed.as_str() == name)
    }
}

impl fmt::Display for Feed {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// The fields every event carries, whatever its feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub event_id: EventId,
    pub occurred_at: Timestamp,
    pub recorded_at: Timestamp,
    pub source_organisation: OdsCode,
    pub place: PlaceCode,
    pub patient: Pseudonym,
    /// The pseudonymised hospital spell or social care episode.
    pub episode_reference: Option<Pseudonym>,
    /// The earlier event this one replaces.
    pub corrects_event_id: Option<EventId>,
}

/// The envelope as decoded from the wire, before validation.
#[derive(Clone, Copy, Debug)]
pub struct RawEnvelope<'a> {
    pub event_id: &'a str,
    pub occurred_at_millis: i64,
    pub recorded_at_millis: i64,
    pub source_organisation: &'a str,
    pub place: &'a str,
    pub patient_pseudonym: &'a str,
    pub episode_reference: Option<&'a str>,
    pub corrects_event_id: Option<&'a str>,
}

impl Envelope {
    /// Validates every envelope field. The identifiable-data guard is not
    /// part of this: it must see every string of the record first
    /// ([`guard_identifiable_data`]).
    pub fn validate(
        raw: &RawEnvelope<'_>,
        policy: &TimestampPolicy,
    ) -> Result<Envelope, Rejection> {
        let occurred_at = Timestamp::from_millis(raw.occurred_at_millis);
        let recorded_at = Timestamp::from_millis(raw.recorded_at_millis);
        let envelope = Envelope {
            event_id: EventId::parse("event_id", raw.event_id)?,
            occurred_at,
            recorded_at,
            source_organisation: OdsCode::parse("source_organisation", raw.source_organisation)?,
            place: PlaceCode::parse("place", raw.place)?,
            patient: Pseudonym::parse("patient_pseudonym", raw.patient_pseudonym)?,
            episode_reference: raw
                .episode_reference
                .map(|text| Pseudonym::parse("episode_reference", text))
                .transpose()?,
            corrects_event_id: raw
                .corrects_event_id
                .map(|text| EventId::parse("corrects_event_id", text))
                .transpose()?,
        };
        policy.check(occurred_at, recorded_at)?;
        Ok(envelope)
    }
}

/// Refuses a record if any of its strings holds an NHS number. Run it over
/// every string field before any other check, so that no later error path
/// ever handles the value.
///
/// A string that is a whole pseudonym or UUID is an identifier drawn at
/// random, not something a person typed: its digit runs are not searched
/// (a pseudonym's hexadecimal passes the check by chance about once in 170).
pub fn guard_identifiable_data<'a>(
    strings: impl IntoIterator<Item = (&'static str, &'a str)>,
) -> Result<(), Rejection> {
    for (field, text) in strings {
        let identifier =
            Pseudonym::parse(field, text).is_ok() || EventId::parse(field, text).is_ok();
        if !identifier && contains_nhs_number(text) {
            return Err(Rejection::in_field(
                RejectReason::IdentifiableData,
                field,
                "the field holds what looks like an NHS number; publish pseudonyms only",
            ));
        }
    }
    Ok(())
}

/// A validated partner event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub envelope: Envelope,
    pub body: EventBody,
}

impl Event {
    pub fn feed(&self) -> Feed {
        self.body.feed()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventBody {
    Discharge(DischargeBody),
    SocialCare(SocialCareBody),
    PrimaryCare(PrimaryCareBody),
}

impl EventBody {
    pub fn feed(&self) -> Feed {
        match self {
            EventBody::Discharge(_) => Feed::Discharge,
            EventBody::SocialCare(_) => Feed::SocialCare,
            EventBody::PrimaryCare(_) => Feed::PrimaryCare,
        }
    }

    /// The event type's symbol, for example `DISCHARGED`.
    pub fn event_type_symbol(&self) -> &'static str {
        match self {
            EventBody::Discharge(body) => body.event_type().symbol(),
            EventBody::SocialCare(body) => body.event_type().symbol(),
            EventBody::PrimaryCare(body) => body.event_type().symbol(),
        }
    }
}

/// Events of the discharge feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DischargeBody {
    Admitted {
        admission_method: AdmissionMethod,
        admission_source: AdmissionSource,
        age_years: AgeYears,
        /// The kind of bed, when the trust's system says (from version 2
        /// of the discharge schema).
        bed_type: Option<BedType>,
    },
    AdmissionCancelled,
    CriteriaToResideAssessed(CriteriaToReside),
    PathwayAssigned {
        pathway: DischargePathway,
    },
    DelayReasonRecorded {
        reason_family: DelayReasonFamily,
        /// A reason of the national list within the family (or `OTHER`).
        reason_code: DelayReason,
    },
    Discharged {
        destination: DischargeDestination,
        discharge_method: DischargeMethod,
        pathway: DischargePathway,
    },
    DischargeCancelled,
}

impl DischargeBody {
    pub fn event_type(&self) -> DischargeEventType {
        match self {
            DischargeBody::Admitted { .. } => DischargeEventType::Admitted,
            DischargeBody::AdmissionCancelled => DischargeEventType::AdmissionCancelled,
            DischargeBody::CriteriaToResideAssessed(_) => {
                DischargeEventType::CriteriaToResideAssessed
            }
            DischargeBody::PathwayAssigned { .. } => DischargeEventType::PathwayAssigned,
            DischargeBody::DelayReasonRecorded { .. } => DischargeEventType::DelayReasonRecorded,
            DischargeBody::Discharged { .. } => DischargeEventType::Discharged,
            DischargeBody::DischargeCancelled => DischargeEventType::DischargeCancelled,
        }
    }
}

/// Events of the social care feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocialCareBody {
    RequestCompleted {
        route_of_access: RouteOfAccess,
    },
    AssessmentCompleted {
        assessment_type: AssessmentType,
        eligible_needs: bool,
    },
    ServiceStarted {
        service_type: ServiceType,
        service_component: ServiceComponent,
    },
    ServiceEnded {
        end_reason: ServiceEndReason,
    },
    ReviewCompleted {
        review_type: ReviewType,
        review_outcome: ReviewOutcome,
    },
}

impl SocialCareBody {
    pub fn event_type(&self) -> SocialCareEventType {
        match self {
            SocialCareBody::RequestCompleted { .. } => SocialCareEventType::RequestCompleted,
            SocialCareBody::AssessmentCompleted { .. } => SocialCareEventType::AssessmentCompleted,
            SocialCareBody::ServiceStarted { .. } => SocialCareEventType::ServiceStarted,
            SocialCareBody::ServiceEnded { .. } => SocialCareEventType::ServiceEnded,
            SocialCareBody::ReviewCompleted { .. } => SocialCareEventType::ReviewCompleted,
        }
    }
}

/// Events of the primary care feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrimaryCareBody {
    DischargeSummaryFiled {
        sending_organisation: OdsCode,
    },
    PostDischargeContact {
        attendance: ContactAttendance,
        contact_mode: ContactMode,
    },
    MedicationReviewCompleted {
        review_kind: MedicationReviewKind,
    },
    RegistrationChanged {
        change: RegistrationChange,
        new_practice: Option<OdsCode>,
    },
    DeathNotified {
        date_of_death: Date,
    },
}

impl PrimaryCareBody {
    pub fn event_type(&self) -> PrimaryCareEventType {
        match self {
            PrimaryCareBody::DischargeSummaryFiled { .. } => {
                PrimaryCareEventType::DischargeSummaryFiled
            }
            PrimaryCareBody::PostDischargeContact { .. } => {
                PrimaryCareEventType::PostDischargeContact
            }
            PrimaryCareBody::MedicationReviewCompleted { .. } => {
                PrimaryCareEventType::MedicationReviewCompleted
            }
            PrimaryCareBody::RegistrationChanged { .. } => {
                PrimaryCareEventType::RegistrationChanged
            }
            PrimaryCareBody::DeathNotified { .. } => PrimaryCareEventType::DeathNotified,
        }
    }
}

/// Age in whole years at admission, 0 to 130.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgeYears(u8);

impl AgeYears {
    pub fn new(field: &'static str, years: i32) -> Result<AgeYears, Rejection> {
        match u8::try_from(years) {
            Ok(years) if years <= 130 => Ok(AgeYears(years)),
            _ => Err(Rejection::invalid_field(
                field,
                "an age is a whole number of years from 0 to 130",
            )),
        }
    }

    pub const fn years(self) -> u8 {
        self.0
    }
}

/// The outcome of a criteria-to-reside review.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CriteriaToReside {
    /// The patient still needs an acute bed, for this reason.
    Meets(CriteriaToResideCode),
    /// The patient no longer meets any criterion; the trust's recorded
    /// Discharge Ready Date, when it gave one.
    DoesNotMeet { discharge_ready_date: Option<Date> },
}

impl CriteriaToReside {
    /// Holds the payload's three fields together: a criterion only when
    /// criteria are met, a ready date only when they are not.
    pub fn new(
        meets_criteria: bool,
        criterion: Option<CriteriaToResideCode>,
        discharge_ready_date: Option<Date>,
    ) -> Result<CriteriaToReside, Rejection> {
        match (meets_criteria, criterion, discharge_ready_date) {
            (true, Some(code), None) => Ok(CriteriaToReside::Meets(code)),
            (true, None, _) => Err(Rejection::invalid_field(
                "criterion",
                "meets_criteria is true, so criterion must name the criterion met (C12 when not recorded)",
            )),
            (true, Some(_), Some(_)) => Err(Rejection::invalid_field(
                "discharge_ready_date",
                "a Discharge Ready Date is only given when meets_criteria is false",
            )),
            (false, Some(_), _) => Err(Rejection::invalid_field(
                "criterion",
                "meets_criteria is false, so criterion must be null",
            )),
            (false, None, date) => {
                if let Some(date) = date {
                    check_plausible_date("discharge_ready_date", date)?;
                }
                Ok(CriteriaToReside::DoesNotMeet { discharge_ready_date: date })
            }
        }
    }
}

/// Reads a record's delay reason: a symbol of the national list
/// ([`DelayReason`]) that belongs to the record's family. Nothing else is
/// carried, so no partner text travels in its place.
pub fn parse_delay_reason(family: DelayReasonFamily, text: &str) -> Result<DelayReason, Rejection> {
    match DelayReason::from_symbol(text) {
        Some(reason) if reason.belongs_to(family) => Ok(reason),
        Some(_) => Err(Rejection::invalid_field(
            "reason_code",
            "the reason belongs to another family than reason_family (docs/data-dictionary.md, Delay reasons)",
        )),
        None => Err(Rejection::invalid_field(
            "reason_code",
            "a reason code is a symbol of the national list of delay reasons, or OTHER (docs/data-dictionary.md, Delay reasons)",
        )),
    }
}

/// A calendar date carried in a payload (ready date, date of death) must
/// fall in the same plausible range as timestamps.
pub fn check_plausible_date(field: &'static str, date: Date) -> Result<(), Rejection> {
    if date < TimestampPolicy::EARLIEST.date() || date > TimestampPolicy::LATEST.date() {
        return Err(Rejection::in_field(
            RejectReason::TimestampOutOfRange,
            field,
            "dates are days since 1970 between the years 2000 and 2100",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criteria_to_reside_combinations() {
        let ready = Some(Date::from_days_since_epoch(20_454));
        assert_eq!(
            CriteriaToReside::new(true, Some(CriteriaToResideCode::C04), None),
            Ok(CriteriaToReside::Meets(CriteriaToResideCode::C04))
        );
        assert_eq!(
            CriteriaToReside::new(false, None, ready),
            Ok(CriteriaToReside::DoesNotMeet {
                discharge_ready_date: ready
            })
        );
        assert_eq!(
            CriteriaToReside::new(false, None, None),
            Ok(CriteriaToReside::DoesNotMeet {
                discharge_ready_date: None
            })
        );
        let field_of =
            |result: Result<CriteriaToReside, Rejection>| result.expect_err("inconsistent").field;
        assert_eq!(
            field_of(CriteriaToReside::new(true, None, None)),
            Some("criterion")
        );
        assert_eq!(
            field_of(CriteriaToReside::new(
                false,
                Some(CriteriaToResideCode::C12),
                None
            )),
            Some("criterion")
        );
        assert_eq!(
            field_of(CriteriaToReside::new(
                true,
                Some(CriteriaToResideCode::C01),
                ready
            )),
            Some("discharge_ready_date")
        );
        let ancient = CriteriaToReside::new(false, None, Some(Date::from_days_since_epoch(1)))
            .expect_err("1970");
        assert_eq!(ancient.reason, RejectReason::TimestampOutOfRange);
    }

    #[test]
    fn ages_and_delay_reasons() {
        assert_eq!(
            AgeYears::new("age_years", 130).map(AgeYears::years),
            Ok(130)
        );
        assert!(AgeYears::new("age_years", 131).is_err());
        assert!(AgeYears::new("age_years", -1).is_err());
        assert_eq!(
            parse_delay_reason(DelayReasonFamily::Capacity, "CAP_P3_CARE_HOME"),
            Ok(DelayReason::CareHome)
        );
        assert_eq!(
            parse_delay_reason(DelayReasonFamily::Wellbeing, "OTHER"),
            Ok(DelayReason::Other)
        );
        for bad in [
            "",
            "CAP.2b-home_care",
            "cap_p3_care_home",
            "9434765919",
            "HP_MEDICAL_REVIEW",
        ] {
            let rejection = parse_delay_reason(DelayReasonFamily::Capacity, bad).expect_err(bad);
            assert_eq!(rejection.field, Some("reason_code"), "{bad}");
        }
    }

    #[test]
    fn every_listed_reason_but_other_has_one_family_and_a_published_text() {
        assert_eq!(DelayReason::ALL.len(), 38);
        for reason in DelayReason::ALL {
            assert_eq!(reason.family().is_none(), *reason == DelayReason::Other);
            assert!(!reason.published_text().is_empty());
        }
    }

    #[test]
    fn guard_names_the_field_but_not_the_value() {
        let rejection =
            guard_identifiable_data([("place", "E06000047"), ("reason_code", "9434765919")])
                .expect_err("nhs number");
        assert_eq!(rejection.reason, RejectReason::IdentifiableData);
        assert_eq!(rejection.field, Some("reason_code"));
        assert!(!rejection.to_string().contains("9434765919"));
        assert_eq!(guard_identifiable_data([("place", "E06000047")]), Ok(()));
    }
}
