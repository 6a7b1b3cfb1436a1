//! Wire types: the records of `schemas/*/v*.avsc` as serde types, and their
//! hand-written conversion into (and out of) the domain events of
//! `icsflow-core`.
//!
//! Field order and enum order here are the schema's order; the binary codec
//! relies on it and the schema tests check it. These types never leave this
//! crate: everything outside sees `icsflow_core::Event`.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use icsflow_core::*;
use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

/// A string field: borrowed from the input where the format allows (Avro
/// binary always does), owned otherwise (JSON with escapes, encoding).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub(crate) struct Text<'a>(pub(crate) Cow<'a, str>);

impl<'a> Text<'a> {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    fn borrowed(text: &'a str) -> Text<'a> {
        Text(Cow::Borrowed(text))
    }

    fn owned(text: &str) -> Text<'a> {
        Text(Cow::Owned(text.to_owned()))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Text<'a>, D::Error> {
        struct TextVisitor;

        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a string")
            }

            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(text)))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }

            fn visit_string<E: de::Error>(self, text: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(text)))
            }
        }

        deserializer.deserialize_str(TextVisitor)
    }
}

/// An Avro enum value, read and written through the domain's
/// [`CodeList`]: by index in binary, by symbol name in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Symbol<Code>(pub(crate) Code);

impl<Code: CodeList> Serialize for Symbol<Code> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_unit_variant(Code::SCHEMA_NAME, self.0.index() as u32, self.0.symbol())
    }
}

impl<'de, Code: CodeList> Deserialize<'de> for Symbol<Code> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Symbol<Code>, D::Error> {
        struct SymbolVisitor<Code>(PhantomData<Code>);

        impl<'de, Code: CodeList> Visitor<'de> for SymbolVisitor<Code> {
            type Value = Symbol<Code>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(formatter, "a symbol of {}", Code::SCHEMA_NAME)
            }

            fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Symbol<Code>, A::Error> {
                let (SymbolKey(code), variant) = data.variant::<SymbolKey<Code>>()?;
                de::VariantAccess::unit_variant(variant)?;
                Ok(Symbol(code))
            }
        }

        deserializer.deserialize_enum(Code::SCHEMA_NAME, Code::SYMBOLS, SymbolVisitor(PhantomData))
    }
}

/// The variant key of a [`Symbol`]: an index (binary) or a name (JSON).
struct SymbolKey<Code>(Code);

impl<'de, Code: CodeList> Deserialize<'de> for SymbolKey<Code> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SymbolKey<Code>, D::Error> {
        struct KeyVisitor<Code>(PhantomData<Code>);

        impl<Code: CodeList> Visitor<'_> for KeyVisitor<Code> {
            type Value = SymbolKey<Code>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(formatter, "a symbol of {}", Code::SCHEMA_NAME)
            }

            fn visit_u64<E: de::Error>(self, index: u64) -> Result<SymbolKey<Code>, E> {
                usize::try_from(index)
                    .ok()
                    .and_then(Code::from_index)
                    .map(SymbolKey)
                    .ok_or_else(|| {
                        E::custom(format_args!(
                            "no symbol of {} has this index",
                            Code::SCHEMA_NAME
                        ))
                    })
            }

            fn visit_str<E: de::Error>(self, symbol: &str) -> Result<SymbolKey<Code>, E> {
                // The unknown value is left out of the message on purpose.
                Code::from_symbol(symbol).map(SymbolKey).ok_or_else(|| {
                    E::custom(format_args!("unknown symbol of {}", Code::SCHEMA_NAME))
                })
            }
        }

        deserializer.deserialize_identifier(KeyVisitor(PhantomData))
    }
}

/// The envelope and payload of one event, generic over the feed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(bound(
    serialize = "EventType: CodeList, Payload: Serialize",
    deserialize = "EventType: CodeList, Payload: Deserialize<'de>"
))]
pub(crate) struct WireRecord<'a, EventType, Payload> {
    #[serde(borrow)]
    pub(crate) event_id: Text<'a>,
    pub(crate) event_type: Symbol<EventType>,
    pub(crate) occurred_at: i64,
    pub(crate) recorded_at: i64,
    #[serde(borrow)]
    pub(crate) source_organisation: Text<'a>,
    #[serde(borrow)]
    pub(crate) place: Text<'a>,
    #[serde(borrow)]
    pub(crate) patient_pseudonym: Text<'a>,
    #[serde(borrow)]
    pub(crate) episode_reference: Option<Text<'a>>,
    #[serde(borrow)]
    pub(crate) corrects_event_id: Option<Text<'a>>,
    pub(crate) payload: Payload,
}

pub(crate) type DischargeRecord<'a> = WireRecord<'a, DischargeEventType, DischargePayload<'a>>;
pub(crate) type SocialCareRecord<'a> = WireRecord<'a, SocialCareEventType, SocialCarePayload>;
pub(crate) type PrimaryCareRecord<'a> =
    WireRecord<'a, PrimaryCareEventType, PrimaryCarePayload<'a>>;

/// A record with no fields (`AdmissionCancelled`, `DischargeCancelled`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoFields {}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum DischargePayload<'a> {
    Admitted(Admitted),
    AdmissionCancelled(NoFields),
    CriteriaToResideAssessed(CriteriaToResideAssessed),
    PathwayAssigned(PathwayAssigned),
    #[serde(borrow)]
    DelayReasonRecorded(DelayReasonRecorded<'a>),
    Discharged(Discharged),
    DischargeCancelled(NoFields),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Admitted {
    admission_method: Symbol<AdmissionMethod>,
    admission_source: Symbol<AdmissionSource>,
    age_years: i32,
    bed_type: Option<Symbol<BedType>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CriteriaToResideAssessed {
    meets_criteria: bool,
    criterion: Option<Symbol<CriteriaToResideCode>>,
    discharge_ready_date: Option<i32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PathwayAssigned {
    pathway: Symbol<DischargePathway>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DelayReasonRecorded<'a> {
    reason_family: Symbol<DelayReasonFamily>,
    #[serde(borrow)]
    reason_code: Text<'a>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Discharged {
    destination: Symbol<DischargeDestination>,
    discharge_method: Symbol<DischargeMethod>,
    pathway: Symbol<DischargePathway>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) enum SocialCarePayload {
    RequestCompleted {
        route_of_access: Symbol<RouteOfAccess>,
    },
    AssessmentCompleted {
        assessment_type: Symbol<AssessmentType>,
        eligible_needs: bool,
    },
    ServiceStarted {
        service_type: Symbol<ServiceType>,
        service_component: Symbol<ServiceComponent>,
    },
    ServiceEnded {
        end_reason: Symbol<ServiceEndReason>,
    },
    ReviewCompleted {
        review_type: Symbol<ReviewType>,
        review_outcome: Symbol<ReviewOutcome>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) enum PrimaryCarePayload<'a> {
    DischargeSummaryFiled {
        #[serde(borrow)]
        sending_organisation: Text<'a>,
    },
    PostDischargeContact {
        attendance: Symbol<ContactAttendance>,
        contact_mode: Symbol<ContactMode>,
    },
    MedicationReviewCompleted {
        review_kind: Symbol<MedicationReviewKind>,
    },
    RegistrationChanged {
        change: Symbol<RegistrationChange>,
        #[serde(borrow)]
        new_practice: Option<Text<'a>>,
    },
    DeathNotified {
        date_of_death: i32,
    },
}

impl<EventType: CodeList, Payload: IntoDomainPayload> WireRecord<'_, EventType, Payload> {
    /// Validates the record into a domain event.
    ///
    /// The identifiable-data guard must decide the reason whenever a string
    /// holds an NHS number, so it runs over every string of the record
    /// whenever anything is wrong with it. When every field validates, the
    /// strict-format fields (pseudonyms, UUIDs, ODS and GSS codes) provably
    /// hold no NHS number token: a pseudonym is one 64-character token, a
    /// UUID's groups are 8, 4, 4, 4 and 12 characters, and the codes are
    /// shorter than ten characters. Only the free-text strings then still
    /// need the guard. This keeps the guard off the hot path's strict fields
    /// without changing which reason a record gets.
    pub(crate) fn into_event(self, policy: &TimestampPolicy) -> Result<Event, Rejection> {
        match self.validate(policy) {
            Ok(event) => {
                guard_identifiable_data(self.payload.free_text()).map_err(|rejection| {
                    rejection.from_organisation(Some(event.envelope.source_organisation))
                })?;
                Ok(event)
            }
            Err(rejection) => {
                let organisation =
                    OdsCode::parse("source_organisation", self.source_organisation.as_str()).ok();
                guard_identifiable_data(self.envelope_strings().chain(self.payload.strings()))
                    .map_err(|rejection| rejection.from_organisation(organisation))?;
                Err(rejection.from_organisation(organisation))
            }
        }
    }

    fn envelope_strings(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("event_id", Some(self.event_id.as_str())),
            (
                "source_organisation",
                Some(self.source_organisation.as_str()),
            ),
            ("place", Some(self.place.as_str())),
            ("patient_pseudonym", Some(self.patient_pseudonym.as_str())),
            (
                "episode_reference",
                self.episode_reference.as_ref().map(Text::as_str),
            ),
            (
                "corrects_event_id",
                self.corrects_event_id.as_ref().map(Text::as_str),
            ),
        ]
        .into_iter()
        .filter_map(|(field, text)| text.map(|text| (field, text)))
    }

    fn validate(&self, policy: &TimestampPolicy) -> Result<Event, Rejection> {
        let envelope = Envelope::validate(
            &RawEnvelope {
                event_id: self.event_id.as_str(),
                occurred_at_millis: self.occurred_at,
                recorded_at_millis: self.recorded_at,
                source_organisation: self.source_organisation.as_str(),
                place: self.place.as_str(),
                patient_pseudonym: self.patient_pseudonym.as_str(),
                episode_reference: self.episode_reference.as_ref().map(Text::as_str),
                corrects_event_id: self.corrects_event_id.as_ref().map(Text::as_str),
            },
            policy,
        )?;
        let (branch, body) = self.payload.to_body()?;
        if branch != self.event_type.0.index() {
            return Err(Rejection::invalid_field(
                "event_type",
                "event_type names a different event than the payload branch",
            ));
        }
        Ok(Event { envelope, body })
    }
}

impl<'a, EventType: CodeList, Payload> WireRecord<'a, EventType, Payload> {
    /// The envelope's strings are written into `buffers` and borrowed from
    /// there: encoding allocates nothing for them.
    fn from_envelope(
        envelope: &'a Envelope,
        buffers: &'a mut TextBuffers,
        event_type: EventType,
        payload: Payload,
    ) -> Self {
        let TextBuffers {
            event_id,
            patient,
            episode,
            corrects,
        } = buffers;
        WireRecord {
            event_id: Text::borrowed(write_uuid(envelope.event_id, event_id)),
            event_type: Symbol(event_type),
            occurred_at: envelope.occurred_at.as_millis(),
            recorded_at: envelope.recorded_at.as_millis(),
            source_organisation: Text::borrowed(envelope.source_organisation.as_str()),
            place: Text::borrowed(envelope.place.as_str()),
            patient_pseudonym: Text::borrowed(write_hex(&envelope.patient, patient)),
            episode_reference: envelope
                .episode_reference
                .as_ref()
                .map(|reference| Text::borrowed(write_hex(reference, episode))),
            corrects_event_id: envelope
                .corrects_event_id
                .map(|corrected| Text::borrowed(write_uuid(corrected, corrects))),
            payload,
        }
    }
}

/// Room for the envelope strings of one record being encoded.
#[derive(Debug)]
pub(crate) struct TextBuffers {
    event_id: [u8; 36],
    patient: [u8; 64],
    episode: [u8; 64],
    corrects: [u8; 36],
}

impl Default for TextBuffers {
    fn default() -> TextBuffers {
        TextBuffers {
            event_id: [0; 36],
            patient: [0; 64],
            episode: [0; 64],
            corrects: [0; 36],
        }
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

fn write_hex<'b>(pseudonym: &Pseudonym, out: &'b mut [u8; 64]) -> &'b str {
    out.copy_from_slice(pseudonym.hex().as_str().as_bytes());
    // Only ASCII hexadecimal digits were written.
    std::str::from_utf8(&out[..]).unwrap_or_default()
}

/// The canonical 8-4-4-4-12 lower-case form.
fn write_uuid(event_id: EventId, out: &mut [u8; 36]) -> &str {
    let value = event_id.as_u128();
    let mut nibble = 0;
    for (position, slot) in out.iter_mut().enumerate() {
        if matches!(position, 8 | 13 | 18 | 23) {
            *slot = b'-';
            continue;
        }
        *slot = HEX_DIGITS[((value >> (124 - 4 * nibble)) & 0x0f) as usize];
        nibble += 1;
    }
    std::str::from_utf8(&out[..]).unwrap_or_default()
}

/// The per-feed part of [`WireRecord::into_event`].
pub(crate) trait IntoDomainPayload {
    /// Every string of the payload, with its schema field name.
    fn strings(&self) -> impl Iterator<Item = (&'static str, &str)>;

    /// The strings with no strict format that would exclude an NHS number.
    fn free_text(&self) -> impl Iterator<Item = (&'static str, &str)>;

    /// The union branch index and the validated body.
    fn to_body(&self) -> Result<(usize, EventBody), Rejection>;
}

fn date(field: &'static str, days: i32) -> Result<Date, Rejection> {
    let date = Date::from_days_since_epoch(days);
    check_plausible_date(field, date)?;
    Ok(date)
}

impl IntoDomainPayload for DischargePayload<'_> {
    fn strings(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.free_text()
    }

    fn free_text(&self) -> impl Iterator<Item = (&'static str, &str)> {
        match self {
            DischargePayload::DelayReasonRecorded(delay) => {
                Some(("reason_code", delay.reason_code.as_str()))
            }
            _ => None,
        }
        .into_iter()
    }

    fn to_body(&self) -> Result<(usize, EventBody), Rejection> {
        let body = match self {
            DischargePayload::Admitted(admitted) => DischargeBody::Admitted {
                admission_method: admitted.admission_method.0,
                admission_source: admitted.admission_source.0,
                age_years: AgeYears::new("age_years", admitted.age_years)?,
                bed_type: admitted.bed_type.as_ref().map(|bed| bed.0),
            },
            DischargePayload::AdmissionCancelled(NoFields {}) => DischargeBody::AdmissionCancelled,
            DischargePayload::CriteriaToResideAssessed(assessed) => {
                let ready_date = assessed
                    .discharge_ready_date
                    .map(|days| date("discharge_ready_date", days))
                    .transpose()?;
                DischargeBody::CriteriaToResideAssessed(CriteriaToReside::new(
                    assessed.meets_criteria,
                    assessed.criterion.map(|symbol| symbol.0),
                    ready_date,
                )?)
            }
            DischargePayload::PathwayAssigned(assigned) => DischargeBody::PathwayAssigned {
                pathway: assigned.pathway.0,
            },
            DischargePayload::DelayReasonRecorded(delay) => DischargeBody::DelayReasonRecorded {
                reason_family: delay.reason_family.0,
                reason_code: parse_delay_reason(delay.reason_family.0, delay.reason_code.as_str())?,
            },
            DischargePayload::Discharged(discharged) => DischargeBody::Discharged {
                destination: discharged.destination.0,
                discharge_method: discharged.discharge_method.0,
                pathway: discharged.pathway.0,
            },
            DischargePayload::DischargeCancelled(NoFields {}) => DischargeBody::DischargeCancelled,
        };
        Ok((body.event_type().index(), EventBody::Discharge(body)))
    }
}

impl IntoDomainPayload for SocialCarePayload {
    fn strings(&self) -> impl Iterator<Item = (&'static str, &str)> {
        std::iter::empty()
    }

    fn free_text(&self) -> impl Iterator<Item = (&'static str, &str)> {
        std::iter::empty()
    }

    fn to_body(&self) -> Result<(usize, EventBody), Rejection> {
        let body = match *self {
            SocialCarePayload::RequestCompleted { route_of_access } => {
                SocialCareBody::RequestCompleted {
                    route_of_access: route_of_access.0,
                }
            }
            SocialCarePayload::AssessmentCompleted {
                assessment_type,
                eligible_needs,
            } => SocialCareBody::AssessmentCompleted {
                assessment_type: assessment_type.0,
                eligible_needs,
            },
            SocialCarePayload::ServiceStarted {
                service_type,
                service_component,
            } => SocialCareBody::ServiceStarted {
                service_type: service_type.0,
                service_component: service_component.0,
            },
            SocialCarePayload::ServiceEnded { end_reason } => SocialCareBody::ServiceEnded {
                end_reason: end_reason.0,
            },
            SocialCarePayload::ReviewCompleted {
                review_type,
                review_outcome,
            } => SocialCareBody::ReviewCompleted {
                review_type: review_type.0,
                review_outcome: review_outcome.0,
            },
        };
        Ok((body.event_type().index(), EventBody::SocialCare(body)))
    }
}

impl IntoDomainPayload for PrimaryCarePayload<'_> {
    fn strings(&self) -> impl Iterator<Item = (&'static str, &str)> {
        match self {
            PrimaryCarePayload::DischargeSummaryFiled {
                sending_organisation,
            } => Some(("sending_organisation", sending_organisation.as_str())),
            PrimaryCarePayload::RegistrationChanged {
                new_practice: Some(practice),
                ..
            } => Some(("new_practice", practice.as_str())),
            _ => None,
        }
        .into_iter()
    }

    /// Both strings of this feed are ODS codes, validated strictly.
    fn free_text(&self) -> impl Iterator<Item = (&'static str, &str)> {
        std::iter::empty()
    }

    fn to_body(&self) -> Result<(usize, EventBody), Rejection> {
        let body = match self {
            PrimaryCarePayload::DischargeSummaryFiled {
                sending_organisation,
            } => PrimaryCareBody::DischargeSummaryFiled {
                sending_organisation: OdsCode::parse(
                    "sending_organisation",
                    sending_organisation.as_str(),
                )?,
            },
            PrimaryCarePayload::PostDischargeContact {
                attendance,
                contact_mode,
            } => PrimaryCareBody::PostDischargeContact {
                attendance: attendance.0,
                contact_mode: contact_mode.0,
            },
            PrimaryCarePayload::MedicationReviewCompleted { review_kind } => {
                PrimaryCareBody::MedicationReviewCompleted {
                    review_kind: review_kind.0,
                }
            }
            PrimaryCarePayload::RegistrationChanged {
                change,
                new_practice,
            } => PrimaryCareBody::RegistrationChanged {
                change: change.0,
                new_practice: new_practice
                    .as_ref()
                    .map(|practice| OdsCode::parse("new_practice", practice.as_str()))
                    .transpose()?,
            },
            PrimaryCarePayload::DeathNotified { date_of_death } => PrimaryCareBody::DeathNotified {
                date_of_death: date("date_of_death", *date_of_death)?,
            },
        };
        Ok((body.event_type().index(), EventBody::PrimaryCare(body)))
    }
}

/// A domain event as the wire record of its feed, ready to encode.
#[derive(Debug)]
pub(crate) enum AnyRecord<'a> {
    Discharge(DischargeRecord<'a>),
    SocialCare(SocialCareRecord<'a>),
    PrimaryCare(PrimaryCareRecord<'a>),
}

impl<'a> AnyRecord<'a> {
    pub(crate) fn from_event(event: &'a Event, buffers: &'a mut TextBuffers) -> AnyRecord<'a> {
        let envelope = &event.envelope;
        match &event.body {
            EventBody::Discharge(body) => AnyRecord::Discharge(WireRecord::from_envelope(
                envelope,
                buffers,
                body.event_type(),
                discharge_payload(body),
            )),
            EventBody::SocialCare(body) => AnyRecord::SocialCare(WireRecord::from_envelope(
                envelope,
                buffers,
                body.event_type(),
                social_care_payload(body),
            )),
            EventBody::PrimaryCare(body) => AnyRecord::PrimaryCare(WireRecord::from_envelope(
                envelope,
                buffers,
                body.event_type(),
                primary_care_payload(body),
            )),
        }
    }
}

fn discharge_payload(body: &DischargeBody) -> DischargePayload<'_> {
    match body {
        DischargeBody::Admitted {
            admission_method,
            admission_source,
            age_years,
            bed_type,
        } => DischargePayload::Admitted(Admitted {
            admission_method: Symbol(*admission_method),
            admission_source: Symbol(*admission_source),
            age_years: i32::from(age_years.years()),
            bed_type: bed_type.map(Symbol),
        }),
        DischargeBody::AdmissionCancelled => DischargePayload::AdmissionCancelled(NoFields {}),
        DischargeBody::CriteriaToResideAssessed(outcome) => {
            let (meets_criteria, criterion, ready_date) = match *outcome {
                CriteriaToReside::Meets(code) => (true, Some(Symbol(code)), None),
                CriteriaToReside::DoesNotMeet {
                    discharge_ready_date,
                } => (false, None, discharge_ready_date),
            };
            DischargePayload::CriteriaToResideAssessed(CriteriaToResideAssessed {
                meets_criteria,
                criterion,
                discharge_ready_date: ready_date.map(Date::days_since_epoch),
            })
        }
        DischargeBody::PathwayAssigned { pathway } => {
            DischargePayload::PathwayAssigned(PathwayAssigned {
                pathway: Symbol(*pathway),
            })
        }
        DischargeBody::DelayReasonRecorded {
            reason_family,
            reason_code,
        } => DischargePayload::DelayReasonRecorded(DelayReasonRecorded {
            reason_family: Symbol(*reason_family),
            reason_code: Text::borrowed(reason_code.symbol()),
        }),
        DischargeBody::Discharged {
            destination,
            discharge_method,
            pathway,
        } => DischargePayload::Discharged(Discharged {
            destination: Symbol(*destination),
            discharge_method: Symbol(*discharge_method),
            pathway: Symbol(*pathway),
        }),
        DischargeBody::DischargeCancelled => DischargePayload::DischargeCancelled(NoFields {}),
    }
}

fn social_care_payload(body: &SocialCareBody) -> SocialCarePayload {
    match *body {
        SocialCareBody::RequestCompleted { route_of_access } => {
            SocialCarePayload::RequestCompleted {
                route_of_access: Symbol(route_of_access),
            }
        }
        SocialCareBody::AssessmentCompleted {
            assessment_type,
            eligible_needs,
        } => SocialCarePayload::AssessmentCompleted {
            assessment_type: Symbol(assessment_type),
            eligible_needs,
        },
        SocialCareBody::ServiceStarted {
            service_type,
            service_component,
        } => SocialCarePayload::ServiceStarted {
            service_type: Symbol(service_type),
            service_component: Symbol(service_component),
        },
        SocialCareBody::ServiceEnded { end_reason } => SocialCarePayload::ServiceEnded {
            end_reason: Symbol(end_reason),
        },
        SocialCareBody::ReviewCompleted {
            review_type,
            review_outcome,
        } => SocialCarePayload::ReviewCompleted {
            review_type: Symbol(review_type),
            review_outcome: Symbol(review_outcome),
        },
    }
}

fn primary_care_payload(body: &PrimaryCareBody) -> PrimaryCarePayload<'_> {
    match body {
        PrimaryCareBody::DischargeSummaryFiled {
            sending_organisation,
        } => PrimaryCarePayload::DischargeSummaryFiled {
            sending_organisation: Text::borrowed(sending_organisation.as_str()),
        },
        PrimaryCareBody::PostDischargeContact {
            attendance,
            contact_mode,
        } => PrimaryCarePayload::PostDischargeContact {
            attendance: Symbol(*attendance),
            contact_mode: Symbol(*contact_mode),
        },
        PrimaryCareBody::MedicationReviewCompleted { review_kind } => {
            PrimaryCarePayload::MedicationReviewCompleted {
                review_kind: Symbol(*review_kind),
            }
        }
        PrimaryCareBody::RegistrationChanged {
            change,
            new_practice,
        } => PrimaryCarePayload::RegistrationChanged {
            change: Symbol(*change),
            new_practice: new_practice
                .as_ref()
                .map(|practice| Text::borrowed(practice.as_str())),
        },
        PrimaryCareBody::DeathNotified { date_of_death } => PrimaryCarePayload::DeathNotified {
            date_of_death: date_of_death.days_since_epoch(),
        },
    }
}

/// A record made invalid on purpose: one envelope string replaced by text no
/// validated [`Event`] can hold. Simulators and tests use it to exercise
/// the reject path with records shaped the way partners get them wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alteration<'t> {
    /// `place` replaced, for example by a lower-tier district code.
    Place(&'t str),
    /// `episode_reference` replaced, for example by a hospital number or an
    /// NHS number in clear.
    EpisodeReference(&'t str),
}

impl AnyRecord<'_> {
    pub(crate) fn alter(&mut self, alteration: Alteration<'_>) {
        fn apply<EventType, Payload>(
            record: &mut WireRecord<'_, EventType, Payload>,
            alteration: Alteration<'_>,
        ) {
            match alteration {
                Alteration::Place(text) => record.place = Text::owned(text),
                Alteration::EpisodeReference(text) => {
                    record.episode_reference = Some(Text::owned(text));
                }
            }
        }
        match self {
            AnyRecord::Discharge(record) => apply(record, alteration),
            AnyRecord::SocialCare(record) => apply(record, alteration),
            AnyRecord::PrimaryCare(record) => apply(record, alteration),
        }
    }
}
