//! Engine benchmarks (see BENCHMARKS.md): events applied per second on a
//! realistic stream, memory per open journey at one million journeys, the
//! cost of reading every metric at that size, and both streams rebuilt as a
//! replay rebuilds them (deriving deferred until the end).
//!
//! `cargo bench -p icsflow-engine --bench engine` (or `make bench`). Sizes
//! can be lowered for a quick look: `ICSFLOW_BENCH_JOURNEYS=100000`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use icsflow_core::*;
use icsflow_engine::{Engine, EngineConfig};

fn main() {
    let journeys: usize = std::env::var("ICSFLOW_BENCH_JOURNEYS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1_000_000);
    let as_of = day_start(60);

    // 0. One pseudonym's flood against as many patients: a partner sending
    // 30,000 events for one pseudonym must not cost the others more than
    // twice what 30,000 patients' events cost (a journey is full at
    // JOURNEY_EVENT_LIMIT events; the rest are refused and counted).
    one_pseudonym_against_many_patients(30_000);

    // 1. Throughput on a realistic mixed stream of complete journeys.
    let stream_patients = journeys / 5;
    let stream: Vec<Event> = (0..stream_patients as u64)
        .flat_map(|patient| complete_journey(patient, &mut Rng(patient * 7 + 1)))
        .collect();
    let mut engine = Engine::new(EngineConfig::default());
    let started = Instant::now();
    for event in &stream {
        black_box(engine.apply(event));
    }
    let elapsed = started.elapsed();
    println!(
        "apply, complete journeys: {} events for {} patients in {:.2?}: {:.0} ns/event, {:.2} M events/s on one core",
        stream.len(),
        stream_patients,
        elapsed,
        elapsed.as_nanos() as f64 / stream.len() as f64,
        stream.len() as f64 / elapsed.as_secs_f64() / 1e6
    );
    // The same events again: every one a duplicate (the cost of at-least-once).
    let started = Instant::now();
    for event in &stream {
        black_box(engine.apply(event));
    }
    let elapsed = started.elapsed();
    println!(
        "apply, duplicates of the same stream: {:.0} ns/event",
        elapsed.as_nanos() as f64 / stream.len() as f64
    );
    drop(engine);
    drop(stream);

    // 2. Memory per open journey and 3. reading every metric, at size. The
    // events are generated first so that neither the timing nor the memory
    // growth includes making them.
    let open_events: Vec<Event> = (0..journeys as u64)
        .flat_map(|patient| open_journey(patient, &mut Rng(patient * 13 + 5)))
        .collect();
    let events = open_events.len();
    let resident_before = resident_bytes();
    let mut engine = Engine::new(EngineConfig::default());
    let started = Instant::now();
    for event in &open_events {
        black_box(engine.apply(event));
    }
    let elapsed = started.elapsed();
    let resident_after = resident_bytes();
    let statistics = engine.statistics();
    println!(
        "apply, open journeys: {events} events for {} open journeys in {:.2?}: {:.0} ns/event",
        statistics.journeys,
        elapsed,
        elapsed.as_nanos() as f64 / events as f64
    );
    println!(
        "memory: {:.0} bytes per open journey ({:.1} events each; resident set grew {} MiB)",
        resident_after.saturating_sub(resident_before) as f64 / statistics.journeys as f64,
        events as f64 / statistics.journeys as f64,
        resident_after.saturating_sub(resident_before) >> 20
    );
    let mut timings: Vec<Duration> = (0..11)
        .map(|_| {
            let started = Instant::now();
            black_box(engine.metrics(as_of));
            started.elapsed()
        })
        .collect();
    timings.sort();
    let series = engine.metrics(as_of).len();
    println!(
        "read all metrics at {} journeys: median {:.2?} for {series} series ({} day entries held)",
        statistics.journeys,
        timings[timings.len() / 2],
        statistics.series_entries
    );

    // 4. Both streams rebuilt as a replay does, deriving deferred until
    // the end (each journey derived once), after the memory reading so
    // that the extra engines do not change it.
    let complete: Vec<Event> = (0..stream_patients as u64)
        .flat_map(|patient| complete_journey(patient, &mut Rng(patient * 7 + 1)))
        .collect();
    for (what, stream, applied_as_they_come) in [
        ("complete journeys", &complete, None),
        ("open journeys", &open_events, Some(&engine)),
    ] {
        let mut rebuilt = Engine::new(EngineConfig::default());
        let started = Instant::now();
        rebuilt.defer();
        for event in stream {
            black_box(rebuilt.apply(event));
        }
        rebuilt.settle();
        let elapsed = started.elapsed();
        println!(
            "rebuild (deriving deferred), {what}: {:.0} ns/event, {:.2} M events/s on one core",
            elapsed.as_nanos() as f64 / stream.len() as f64,
            stream.len() as f64 / elapsed.as_secs_f64() / 1e6
        );
        if let Some(expected) = applied_as_they_come {
            let non_zero = |engine: &Engine| {
                let mut values = engine.metrics(as_of);
                values.retain(|(_, value)| *value != 0);
                values
            };
            assert_eq!(
                non_zero(&rebuilt),
                non_zero(expected),
                "a deferred rebuild ends where applying as events come ends"
            );
        }
    }
}

/// Deterministic xorshift, so every run applies the same stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut state = self.0 | 1;
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        self.0 = state;
        state
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

const PLACES: [&str; 4] = ["E06000047", "E08000003", "E09000001", "E10000007"];
const TRUSTS: [&str; 3] = ["RVW", "RXP", "RR7"];

fn one_pseudonym_against_many_patients(count: usize) {
    let templates = open_journey(0, &mut Rng(5));
    let events = |one_pseudonym: bool| -> Vec<Event> {
        (0..count)
            .map(|number| {
                let mut event = templates[number % templates.len()];
                let patient = if one_pseudonym { 0 } else { number as u64 };
                let mut bytes = [9_u8; 32];
                bytes[..8].copy_from_slice(&patient.to_be_bytes());
                event.envelope.patient = Pseudonym::from_bytes(bytes);
                event.envelope.event_id = EventId::from_u128(number as u128 | 1 << 100);
                event
            })
            .collect()
    };
    // The best of three runs each: the machines are shared and noisy.
    let time = |stream: &[Event]| {
        (0..3)
            .map(|_| {
                let mut engine = Engine::new(EngineConfig::default());
                let started = Instant::now();
                for event in stream {
                    black_box(engine.apply(event));
                }
                (started.elapsed(), engine.statistics().journey_full)
            })
            .min()
            .unwrap_or_default()
    };
    let (many, _) = time(&events(false));
    let (one, refused) = time(&events(true));
    let ratio = one.as_secs_f64() / many.as_secs_f64();
    println!(
        "one pseudonym: {count} events in {one:.2?} ({refused} refused, journey full) against {count} patients in {many:.2?}: {ratio:.2} times (target at most 2: {})",
        if ratio <= 2.0 { "met" } else { "NOT met" }
    );
}

fn day_start(day: i64) -> Timestamp {
    // 2026-01-01T00:00:00Z plus `day` days.
    Timestamp::from_millis(1_767_225_600_000 + day * Timestamp::MILLIS_PER_DAY)
}

struct Builder {
    patient: Pseudonym,
    spell: Pseudonym,
    place: PlaceCode,
    trust: OdsCode,
    next: u128,
    patient_number: u64,
    events: Vec<Event>,
}

impl Builder {
    fn new(patient_number: u64, rng: &mut Rng) -> Builder {
        let mut patient = [0_u8; 32];
        patient[..8].copy_from_slice(&patient_number.to_le_bytes());
        let mut spell = patient;
        spell[31] = 1;
        Builder {
            patient: Pseudonym::from_bytes(patient),
            spell: Pseudonym::from_bytes(spell),
            place: PlaceCode::parse("place", PLACES[rng.below(4) as usize]).expect("place"),
            trust: OdsCode::parse("source_organisation", TRUSTS[rng.below(3) as usize])
                .expect("ods"),
            next: 0,
            patient_number,
            events: Vec::new(),
        }
    }

    fn push(&mut self, at: Timestamp, organisation: &str, body: EventBody) {
        self.next += 1;
        let organisation = match body {
            EventBody::Discharge(_) => self.trust,
            _ => OdsCode::parse("source_organisation", organisation).expect("ods"),
        };
        self.events.push(Event {
            envelope: Envelope {
                event_id: EventId::from_u128(u128::from(self.patient_number) << 64 | self.next),
                occurred_at: at,
                recorded_at: at,
                source_organisation: organisation,
                place: self.place,
                patient: self.patient,
                episode_reference: Some(self.spell),
                corrects_event_id: None,
            },
            body,
        });
    }
}

/// Admission and daily reviews; about a third stop meeting the criteria,
/// get a pathway and a delay reason. Cut at day 60 while still in hospital.
fn open_journey(patient: u64, rng: &mut Rng) -> Vec<Event> {
    let mut builder = Builder::new(patient, rng);
    let admitted = 60 - rng.below(12) as i64;
    let hour = 3_600_000;
    builder.push(
        Timestamp::from_millis(day_start(admitted).as_millis() + 9 * hour),
        "",
        EventBody::Discharge(DischargeBody::Admitted {
            admission_method: AdmissionMethod::EmergencyAccidentAndEmergency,
            admission_source: AdmissionSource::UsualPlaceOfResidence,
            age_years: AgeYears::new("age_years", 40 + rng.below(55) as i32).expect("age"),
            bed_type: Some(BedType::GeneralAndAcute),
        }),
    );
    let delayed = rng.below(3) == 0;
    for day in admitted + 1..=60 {
        let at = Timestamp::from_millis(day_start(day).as_millis() + 10 * hour);
        let outcome = if delayed && day >= admitted + 3 {
            CriteriaToReside::DoesNotMeet {
                discharge_ready_date: None,
            }
        } else {
            CriteriaToReside::Meets(CriteriaToResideCode::C03)
        };
        builder.push(
            at,
            "",
            EventBody::Discharge(DischargeBody::CriteriaToResideAssessed(outcome)),
        );
        if delayed && day == admitted + 3 {
            let pathway = DischargePathway::ALL[[0, 0, 1, 1, 1, 2, 3][rng.below(7) as usize]];
            builder.push(
                at,
                "",
                EventBody::Discharge(DischargeBody::PathwayAssigned { pathway }),
            );
            builder.push(
                at,
                "",
                EventBody::Discharge(DischargeBody::DelayReasonRecorded {
                    reason_family: DelayReasonFamily::ALL[rng.below(5) as usize],
                    reason_code: DelayReason::Other,
                }),
            );
        }
    }
    builder.events
}

/// An open journey's events, then discharge, social care for P1-P3 and a GP
/// contact.
fn complete_journey(patient: u64, rng: &mut Rng) -> Vec<Event> {
    let mut events = open_journey(patient, rng);
    let mut builder = Builder::new(patient, &mut Rng(patient * 13 + 5));
    builder.next = 1_000;
    let hour = 3_600_000;
    let discharge_day = 61 + rng.below(5) as i64;
    let pathway = DischargePathway::ALL[[0, 0, 1, 1, 1, 2, 3][rng.below(7) as usize]];
    builder.push(
        Timestamp::from_millis(day_start(discharge_day).as_millis() + 15 * hour),
        "",
        EventBody::Discharge(DischargeBody::Discharged {
            destination: DischargeDestination::UsualPlaceOfResidence,
            discharge_method: DischargeMethod::ClinicalAdvice,
            pathway,
        }),
    );
    if pathway != DischargePathway::P0 {
        builder.push(
            Timestamp::from_millis(
                day_start(discharge_day + rng.below(3) as i64).as_millis() + 17 * hour,
            ),
            "702",
            EventBody::SocialCare(SocialCareBody::ServiceStarted {
                service_type: ServiceType::ShortTermStMax,
                service_component: ServiceComponent::Reablement,
            }),
        );
    }
    builder.push(
        Timestamp::from_millis(
            day_start(discharge_day + 2 + rng.below(12) as i64).as_millis() + 11 * hour,
        ),
        "M83670",
        EventBody::PrimaryCare(PrimaryCareBody::PostDischargeContact {
            attendance: ContactAttendance::Attended,
            contact_mode: ContactMode::Telephone,
        }),
    );
    events.extend(builder.events);
    events
}

/// Resident set size of this process, from /proc (Linux).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    pages * 4096
}
