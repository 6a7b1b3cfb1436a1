//! Journey scenarios (events in, metric values out) and the engine's
//! invariants as properties.

mod properties;
mod quality;
mod rules;
mod scenarios;

use icsflow_core::*;
use icsflow_engine::{Engine, EngineConfig, MetricKey};

/// A patient and one of their hospital spells.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Patient {
    number: u8,
    spell: u8,
}

pub(crate) fn patient(number: u8) -> Patient {
    Patient { number, spell: 1 }
}

impl Patient {
    pub(crate) fn spell(self, spell: u8) -> Patient {
        Patient { spell, ..self }
    }
}

/// "2026-01-05 10:00" in UTC (January: the same as London).
pub(crate) fn instant(text: &str) -> Timestamp {
    let (date, time) = text.split_once(' ').unwrap_or((text, "12:00"));
    let parts: Vec<u32> = date
        .split('-')
        .map(|part| part.parse().expect("date part"))
        .collect();
    let (hour, minute) = time.split_once(':').expect("hh:mm");
    let day = Date::from_calendar(parts[0] as i32, parts[1], parts[2]).expect("calendar date");
    Timestamp::from_millis(
        day.start().as_millis()
            + (hour.parse::<i64>().expect("hour") * 60 + minute.parse::<i64>().expect("minute"))
                * 60_000,
    )
}

pub(crate) fn date(text: &str) -> Date {
    instant(text).date()
}

/// Builds plausible events with fresh ids.
#[derive(Default)]
pub(crate) struct Events {
    pub(crate) events: Vec<Event>,
    next_id: u128,
}

impl Events {
    fn push(&mut self, who: Patient, organisation: &str, at: &str, body: EventBody) -> EventId {
        self.next_id += 1;
        let event_id = EventId::from_u128(0xabcd_0000_0000_4000_8000_0000_0000_0000 + self.next_id);
        let occurred_at = instant(at);
        let envelope = Envelope {
            event_id,
            occurred_at,
            recorded_at: occurred_at,
            source_organisation: OdsCode::parse("source_organisation", organisation).expect("ods"),
            place: PlaceCode::parse("place", "E06000047").expect("place"),
            patient: sample_pseudonym(who.number),
            episode_reference: Some(sample_pseudonym(100 + who.spell)),
            corrects_event_id: None,
        };
        self.events.push(Event { envelope, body });
        event_id
    }

    pub(crate) fn discharge_feed(
        &mut self,
        who: Patient,
        at: &str,
        body: DischargeBody,
    ) -> EventId {
        self.push(who, "RVW", at, EventBody::Discharge(body))
    }

    /// An emergency admission to a bed of unknown type (as every version 1
    /// record is).
    pub(crate) fn admitted(&mut self, who: Patient, at: &str, age: i32) -> EventId {
        self.admitted_to(who, at, age, None)
    }

    pub(crate) fn admitted_to(
        &mut self,
        who: Patient,
        at: &str,
        age: i32,
        bed_type: Option<BedType>,
    ) -> EventId {
        let body = DischargeBody::Admitted {
            admission_method: AdmissionMethod::EmergencyAccidentAndEmergency,
            admission_source: AdmissionSource::UsualPlaceOfResidence,
            age_years: AgeYears::new("age_years", age).expect("age"),
            bed_type,
        };
        self.discharge_feed(who, at, body)
    }

    /// A discharge home on P0 published by another trust.
    pub(crate) fn discharged_by(&mut self, who: Patient, trust: &str, at: &str) -> EventId {
        let body = DischargeBody::Discharged {
            destination: DischargeDestination::UsualPlaceOfResidence,
            discharge_method: DischargeMethod::ClinicalAdvice,
            pathway: DischargePathway::P0,
        };
        self.push(who, trust, at, EventBody::Discharge(body))
    }

    /// An emergency admission published by another trust.
    pub(crate) fn push_admission_at(&mut self, who: Patient, trust: &str, at: &str) -> EventId {
        let body = DischargeBody::Admitted {
            admission_method: AdmissionMethod::EmergencyAccidentAndEmergency,
            admission_source: AdmissionSource::UsualPlaceOfResidence,
            age_years: AgeYears::new("age_years", 70).expect("age"),
            bed_type: None,
        };
        self.push(who, trust, at, EventBody::Discharge(body))
    }

    pub(crate) fn elective(&mut self, who: Patient, at: &str) -> EventId {
        let body = DischargeBody::Admitted {
            admission_method: AdmissionMethod::ElectiveWaitingList,
            admission_source: AdmissionSource::UsualPlaceOfResidence,
            age_years: AgeYears::new("age_years", 50).expect("age"),
            bed_type: Some(BedType::GeneralAndAcute),
        };
        self.discharge_feed(who, at, body)
    }

    pub(crate) fn not_meeting(&mut self, who: Patient, at: &str, ready: Option<&str>) -> EventId {
        let outcome = CriteriaToReside::DoesNotMeet {
            discharge_ready_date: ready.map(date),
        };
        self.discharge_feed(who, at, DischargeBody::CriteriaToResideAssessed(outcome))
    }

    pub(crate) fn meeting(&mut self, who: Patient, at: &str) -> EventId {
        let outcome = CriteriaToReside::Meets(CriteriaToResideCode::C03);
        self.discharge_feed(who, at, DischargeBody::CriteriaToResideAssessed(outcome))
    }

    pub(crate) fn pathway(&mut self, who: Patient, at: &str, pathway: DischargePathway) -> EventId {
        self.discharge_feed(who, at, DischargeBody::PathwayAssigned { pathway })
    }

    pub(crate) fn reason(
        &mut self,
        who: Patient,
        at: &str,
        reason_family: DelayReasonFamily,
    ) -> EventId {
        let reason_code = DelayReason::Other;
        self.discharge_feed(
            who,
            at,
            DischargeBody::DelayReasonRecorded {
                reason_family,
                reason_code,
            },
        )
    }

    pub(crate) fn discharged(
        &mut self,
        who: Patient,
        at: &str,
        destination: DischargeDestination,
        pathway: DischargePathway,
    ) -> EventId {
        let body = DischargeBody::Discharged {
            destination,
            discharge_method: DischargeMethod::ClinicalAdvice,
            pathway,
        };
        self.discharge_feed(who, at, body)
    }

    pub(crate) fn service_started(
        &mut self,
        who: Patient,
        at: &str,
        service_type: ServiceType,
        service_component: ServiceComponent,
    ) -> EventId {
        self.push(
            who,
            "702",
            at,
            EventBody::SocialCare(SocialCareBody::ServiceStarted {
                service_type,
                service_component,
            }),
        )
    }

    pub(crate) fn service_ended(
        &mut self,
        who: Patient,
        at: &str,
        end_reason: ServiceEndReason,
    ) -> EventId {
        self.push(
            who,
            "702",
            at,
            EventBody::SocialCare(SocialCareBody::ServiceEnded { end_reason }),
        )
    }

    pub(crate) fn contact(
        &mut self,
        who: Patient,
        at: &str,
        attendance: ContactAttendance,
    ) -> EventId {
        let body = PrimaryCareBody::PostDischargeContact {
            attendance,
            contact_mode: ContactMode::Telephone,
        };
        self.push(who, "M83670", at, EventBody::PrimaryCare(body))
    }

    pub(crate) fn death(&mut self, who: Patient, at: &str, died_on: &str) -> EventId {
        self.push(
            who,
            "M83670",
            at,
            EventBody::PrimaryCare(PrimaryCareBody::DeathNotified {
                date_of_death: date(died_on),
            }),
        )
    }

    /// Marks the last event as correcting `corrected`.
    pub(crate) fn correcting(&mut self, corrected: EventId) {
        let last = self.events.last_mut().expect("an event to mark");
        last.envelope.corrects_event_id = Some(corrected);
    }
}

pub(crate) fn engine_with(events: &[Event]) -> Engine {
    let mut engine = Engine::new(EngineConfig::default());
    for event in events {
        engine.apply(event);
    }
    engine
}

/// A series as `name{label="value",...}`, as the exposition writes it.
pub(crate) fn series(key: &MetricKey) -> String {
    let labels: Vec<String> = key
        .labels()
        .into_iter()
        .map(|(name, value)| format!("{name}=\"{value}\""))
        .collect();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

/// Every non-zero series as `name{labels} value`, one per line.
pub(crate) fn render(metrics: &[(MetricKey, i64)]) -> String {
    metrics
        .iter()
        .filter(|(_, value)| *value != 0)
        .map(|(key, value)| format!("{} {value}\n", series(key)))
        .collect()
}

/// The non-zero series as of `as_of`, without the windowed totals (their
/// own scenarios hold them).
pub(crate) fn metrics_text(events: &[Event], as_of: &str) -> String {
    let readings: Vec<_> = engine_with(events)
        .metrics(instant(as_of))
        .into_iter()
        .filter(|(key, _)| key.totalled().is_none())
        .collect();
    render(&readings)
}

/// The windowed totals only.
pub(crate) fn window_text(events: &[Event], as_of: &str) -> String {
    let readings: Vec<_> = engine_with(events)
        .metrics(instant(as_of))
        .into_iter()
        .filter(|(key, _)| key.totalled().is_some())
        .collect();
    render(&readings)
}

/// Regression: the 65,536th distinct place in one engine indexed past its
/// table and panicked, on every replay of the same records after that.
#[test]
fn admissions_naming_more_places_than_an_engine_can_index_are_counted_not_a_panic() {
    let mut events = Events::default();
    events.admitted(patient(1), "2026-01-05 10:00", 70);
    events.not_meeting(patient(1), "2026-01-05 12:00", Some("2026-01-05"));
    let templates = events.events.clone();
    let mut engine = Engine::new(EngineConfig::default());
    let total = 65_600_u32;
    let mut too_many = 0;
    for number in 0..total {
        let mut bytes = [0_u8; 32];
        bytes[..4].copy_from_slice(&number.to_be_bytes());
        for (index, template) in templates.iter().enumerate() {
            let mut event = *template;
            event.envelope.patient = Pseudonym::from_bytes(bytes);
            event.envelope.event_id =
                EventId::from_u128(u128::from(number) << 8 | index as u128 | 1 << 64);
            event.envelope.place =
                PlaceCode::parse("place", &format!("E06{number:06}")).expect("a GSS-shaped code");
            if engine.apply(&event) == icsflow_engine::Applied::TooManyLabelValues {
                too_many += 1;
            }
        }
    }
    let limit = u32::from(u16::MAX) + 1;
    assert_eq!(too_many, total - limit);
    assert_eq!(
        engine.statistics().too_many_label_values,
        u64::from(total - limit)
    );
    let places: std::collections::BTreeSet<String> = engine
        .metrics(instant("2026-01-06 10:00"))
        .iter()
        .filter(|(_, value)| *value != 0)
        .filter_map(|(key, _)| {
            let (_, place) = key
                .labels()
                .into_iter()
                .find(|(name, _)| *name == "place")?;
            Some(place)
        })
        .collect();
    assert_eq!(places.len(), limit as usize);
}

/// Regressions: one pseudonym's events cost time in proportion to its
/// journey, so 10,000 of them took 18.8 s to apply against 1.1 s for
/// 10,000 patients; and a patient's 256th spell reference silently became
/// "no reference", merging spells. A journey holds at most
/// `JOURNEY_EVENT_LIMIT` events and `JOURNEY_REFERENCE_LIMIT` references;
/// events past them are refused and counted, never merged.
#[test]
fn a_full_journey_refuses_further_events_and_counts_them() {
    let mut engine = Engine::new(EngineConfig::default());
    let mut events = Events::default();
    events.admitted(patient(1), "2026-01-01 09:00", 80);
    let template = *events.events.last().expect("an admission");
    let limit = icsflow_engine::JOURNEY_EVENT_LIMIT;
    let mut outcomes = std::collections::BTreeMap::new();
    for number in 0..limit + 100 {
        let mut event = template;
        event.envelope.event_id = EventId::from_u128(number as u128 | 7 << 64);
        event.envelope.episode_reference = None;
        *outcomes
            .entry(format!("{:?}", engine.apply(&event)))
            .or_insert(0) += 1;
    }
    assert_eq!(outcomes.get("Applied"), Some(&limit));
    assert_eq!(outcomes.get("JourneyFull"), Some(&100));
    // A full journey takes nothing more, not even a re-sent version.
    let mut resent = template;
    resent.envelope.event_id = EventId::from_u128(7 << 64);
    resent.envelope.episode_reference = None;
    resent.envelope.recorded_at = instant("2026-01-01 10:00");
    assert_eq!(engine.apply(&resent), icsflow_engine::Applied::JourneyFull);

    let mut engine = Engine::new(EngineConfig::default());
    let references = icsflow_engine::JOURNEY_REFERENCE_LIMIT;
    let mut full = 0;
    for number in 0..references + 10 {
        let mut event = template;
        event.envelope.event_id = EventId::from_u128(number as u128 | 9 << 64);
        let mut bytes = [3_u8; 32];
        bytes[..8].copy_from_slice(&(number as u64).to_be_bytes());
        event.envelope.episode_reference = Some(Pseudonym::from_bytes(bytes));
        if engine.apply(&event) == icsflow_engine::Applied::JourneyFull {
            full += 1;
        }
    }
    assert_eq!(full, 10);
    assert_eq!(engine.statistics().journey_full, 10);
}

/// Regression: series are keyed by the day a wait began (`*_since`), and a
/// series back at zero was kept for ever, so memory (and every metrics read)
/// grew with each day while the journeys held stayed flat (a 12-minute soak
/// at a simulated day a second grew from 89 to 106 MiB). A series that
/// holds nothing is dropped: a year of patients, each discharged and
/// evicted, leaves the series of one day's.
#[test]
fn series_back_at_zero_are_dropped_so_days_do_not_grow_the_engine() {
    let run = |days: i64| {
        let mut engine = Engine::new(EngineConfig::default());
        let start = instant("2026-01-01 09:00");
        let mut events = Events::default();
        for day in 0..days {
            let who = patient((day % 200) as u8).spell((day / 200) as u8);
            let at = |hours: i64| {
                Timestamp::from_millis(start.as_millis() + (day * 24 + hours) * 3_600_000)
            };
            // "YYYY-MM-DD HH:MM" in UTC (instant() reads it back).
            let text = |instant: Timestamp| {
                let (year, month, day) = instant.date().to_calendar();
                let minutes = instant.as_millis().rem_euclid(86_400_000) / 60_000;
                format!(
                    "{year:04}-{month:02}-{day:02} {:02}:{:02}",
                    minutes / 60,
                    minutes % 60
                )
            };
            events.admitted(who, &text(at(0)), 80);
            events.not_meeting(who, &text(at(2)), None);
            events.discharged(
                who,
                &text(at(30)),
                DischargeDestination::UsualPlaceOfResidence,
                DischargePathway::P0,
            );
        }
        for event in &events.events {
            engine.apply(event);
        }
        engine.evict(Timestamp::from_millis(
            start.as_millis() + (days + 400) * 86_400_000,
        ));
        engine.statistics().series
    };
    let (month, year) = (run(30), run(365));
    assert_eq!(year, month, "series held after a month and after a year");
}
