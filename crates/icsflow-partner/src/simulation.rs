//! A deterministic simulation of an ICS's partners and what they publish.
//!
//! Each place has an acute trust, a local authority (adult social care)
//! and a few GP practices. Patients are admitted every day, are reviewed
//! each morning against the criteria to reside, become discharge-ready on
//! a Discharge Ready Date with a pathway, and are discharged:
//!
//! - pathway 0 (home, no new support) on the ready date or after a short
//!   hospital-process delay;
//! - pathways 1 to 3 only once the local authority has taken the request,
//!   assessed, and has a care start free for that pathway. Care starts per
//!   day are limited (`care_capacity`, fewer at weekends), so delays grow
//!   when capacity is short of need.
//!
//! After discharge come social care services (reablement for most of P1,
//! ending after a few weeks), GP practice events (discharge summary,
//! follow-up contact, medication review), readmissions and deaths.
//!
//! Partners publish the way real ones do: the local authority in hourly
//! batches, practices every four hours, and each trust as its
//! [`RecordingQuality`] says: the first place's trust records within
//! minutes, streams, and leaves nothing out; the second's records hours
//! late and publishes in a nightly batch; the third's streams but leaves
//! fields out (delay reasons, Discharge Ready Dates, bed types,
//! destinations, pathways) and fills some in later, re-sending the record
//! under the same event id. So each partner's events arrive roughly in its
//! own order, late and out of order across partners, and the data-quality
//! measures tell the trusts apart. A few records are published twice, a few
//! delay reasons are corrected, a few admissions and discharges are
//! cancelled, and a configurable share of records are bad (a lower-tier
//! district code for the place, an NHS number in clear, or cut short).
//!
//! Everything follows from the seed: the same configuration gives the same
//! publications, in the same order, with the same event ids.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use icsflow_core::*;

use crate::pseudonym::PseudonymKey;
use crate::random::Random;

/// What to simulate.
#[derive(Clone, Debug)]
pub struct SimulationConfig {
    /// Everything random follows from it.
    pub seed: u64,
    /// How many places (1 to 4).
    pub places: usize,
    /// The simulation starts at midnight (UTC) of this instant's day.
    pub start: Timestamp,
    /// Mean admissions per day in each place.
    pub admissions_per_day: f64,
    /// Social care starts available per day as a share of the mean need
    /// (1.0: just enough on average; below 1.0 delays keep growing).
    pub care_capacity: f64,
    /// Share of records published a second time, unchanged.
    pub duplicate_rate: f64,
    /// Share of records that are also published once in a bad form first.
    pub bad_record_rate: f64,
}

impl SimulationConfig {
    pub const MAX_PLACES: usize = PLACES.len();

    /// The defaults: 3 places, 50 admissions a day each, care capacity 70 %
    /// above mean need (weekends have half the weekday capacity, so queues
    /// still build up over each weekend), 1 % duplicates, 0.5 % bad records.
    /// With them the ICS looks like England's winter figures
    /// (docs/simulation.md): about one occupied bed in eight held by someone
    /// who no longer meets the criteria to reside, over 40 % of them in
    /// hospital 21 days or more, about 1.4 days from ready to discharged.
    pub fn new(seed: u64, start: Timestamp) -> SimulationConfig {
        SimulationConfig {
            seed,
            places: 3,
            start,
            admissions_per_day: 50.0,
            care_capacity: 1.7,
            duplicate_rate: 0.01,
            bad_record_rate: 0.005,
        }
    }
}

/// A place of the simulated ICS and its partners. The codes are
/// illustrative: GSS-shaped place codes, ODS-shaped partner codes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimulatedPlace {
    pub place: PlaceCode,
    pub name: &'static str,
    pub trust: OdsCode,
    /// How the trust records and publishes its discharge feed. The local
    /// authority and the practices are all good at what they record.
    pub trust_quality: RecordingQuality,
    pub local_authority: OdsCode,
    pub practices: Vec<OdsCode>,
}

/// How an acute trust records its discharge feed and publishes it: what
/// the data-quality measures (docs/data-quality.md) tell apart. Percents
/// are of the cases where the trust could record the thing; each is drawn
/// per patient, so a trust at 100 draws nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordingQuality {
    /// How long after an event the trust records it (`recorded_at` less
    /// `occurred_at`): uniformly between these, in milliseconds.
    pub recording_lag_millis: (i64, i64),
    /// When it publishes what it has recorded.
    pub publishing: Publishing,
    /// Of its patients still in hospital the morning after their Discharge
    /// Ready Date, the percent it records a delay reason for.
    pub delay_reasons_percent: u8,
    /// Of its periods of not meeting the criteria to reside, the percent
    /// whose assessments carry the Discharge Ready Date. Without one the
    /// engine takes the day of the period's first assessment, which here
    /// is the ready date anyway.
    pub ready_dates_percent: u8,
    /// Of its admissions to a bed of a known type, the percent that say the
    /// type.
    pub bed_types_percent: u8,
    /// Of its discharges other than deaths, the percent that give the
    /// destination; the others say NOT_KNOWN (99).
    pub destinations_percent: u8,
    /// Of its patients becoming ready for discharge, the percent whose
    /// pathway it sends then (PATHWAY_ASSIGNED); without it the pathway is
    /// `unassigned` until the discharge, which always carries it.
    pub pathways_assigned_percent: u8,
    /// Of its records sent with a field left out, the percent it sends
    /// again once someone fills the field in: the same event id, the field
    /// given, a later `recorded_at`. A conflicting re-send
    /// (docs/metrics.md, "Re-sent events that differ").
    pub filled_in_later_percent: u8,
}

impl RecordingQuality {
    /// Records within minutes, streams, and leaves nothing out.
    pub const GOOD: RecordingQuality = RecordingQuality {
        recording_lag_millis: (2 * MINUTE, 20 * MINUTE),
        publishing: Publishing::Streaming {
            within_millis: MINUTE,
        },
        delay_reasons_percent: 100,
        ready_dates_percent: 100,
        bed_types_percent: 100,
        destinations_percent: 100,
        pathways_assigned_percent: 100,
        filled_in_later_percent: 0,
    };

    /// Records hours after the event (a ward writes up its shift's
    /// admissions, assessments and discharges at the end of it or the next
    /// morning), and publishes once a night, at 01:00 UTC, what it recorded
    /// since the night before; complete otherwise.
    pub const LATE: RecordingQuality = RecordingQuality {
        recording_lag_millis: (2 * HOUR, 20 * HOUR),
        publishing: Publishing::Batches {
            every_millis: DAY,
            offset_millis: HOUR,
        },
        ..RecordingQuality::GOOD
    };

    /// Records and streams promptly, but its discharge system does not
    /// capture what the discharge sitrep asks beyond the essentials: a delay
    /// reason for a minority of its delayed patients, a Discharge Ready
    /// Date for a minority of its periods of not meeting the criteria, the
    /// bed type on a third of admissions, the pathway before discharge
    /// rarely, and the destination NOT_KNOWN on some discharges. Now and
    /// then a field is filled in later and the record re-sent under its id.
    pub const INCOMPLETE: RecordingQuality = RecordingQuality {
        delay_reasons_percent: 40,
        ready_dates_percent: 40,
        bed_types_percent: 35,
        destinations_percent: 85,
        pathways_assigned_percent: 15,
        filled_in_later_percent: 3,
        ..RecordingQuality::GOOD
    };
}

/// When a partner publishes what it has recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Publishing {
    /// Each record within this many milliseconds of being recorded.
    Streaming { within_millis: i64 },
    /// Everything recorded since the last batch, at `offset_millis` past
    /// midnight (UTC) and every `every_millis` after.
    Batches {
        every_millis: i64,
        offset_millis: i64,
    },
}

impl Publishing {
    /// When a record recorded at `recorded_at` is published.
    fn published_at(self, recorded_at: Timestamp, random: &mut Random) -> Timestamp {
        let recorded = recorded_at.as_millis();
        Timestamp::from_millis(match self {
            Publishing::Streaming { within_millis } => recorded + random.between(0, within_millis),
            Publishing::Batches {
                every_millis,
                offset_millis,
            } => {
                ((recorded - offset_millis).div_euclid(every_millis) + 1) * every_millis
                    + offset_millis
            }
        })
    }
}

/// The local authorities publish on the hour, the practices every four
/// hours.
const LOCAL_AUTHORITY_PUBLISHING: Publishing = Publishing::Batches {
    every_millis: HOUR,
    offset_millis: 0,
};
const PRACTICE_PUBLISHING: Publishing = Publishing::Batches {
    every_millis: 4 * HOUR,
    offset_millis: 0,
};

/// (place code, name, trust, how the trust records, local authority,
/// practice code prefix)
#[rustfmt::skip]
const PLACES: [(&str, &str, &str, RecordingQuality, &str, &str); 4] = [
    ("E06000047", "Durham", "RXP", RecordingQuality::GOOD, "840", "A83"),
    ("E08000021", "Newcastle", "RTD", RecordingQuality::LATE, "391", "A86"),
    ("E08000037", "Gateshead", "RR7", RecordingQuality::INCOMPLETE, "390", "A85"),
    ("E06000057", "Northumberland", "RTF", RecordingQuality::GOOD, "929", "A84"),
];
const PRACTICES_PER_PLACE: usize = 6;

/// One record as a partner publishes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publication {
    /// When the partner publishes it (never before `recorded_at`).
    pub published_at: Timestamp,
    pub event: Event,
    pub kind: PublicationKind,
}

/// Whether a publication is the event as it should be, or how it is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicationKind {
    Valid,
    /// Published again under an event id already published: unchanged, or
    /// (a conflicting re-send, counted in
    /// [`SimulationStatistics::conflicting_resends`]) with a field the
    /// trust left out filled in and a later `recorded_at`.
    Duplicate,
    /// `place` holds this lower-tier district code instead of the
    /// upper-tier code: an unknown place.
    DistrictCodeAsPlace(&'static str),
    /// `episode_reference` holds this NHS number in clear (a synthetic one
    /// from the 999 test range).
    NhsNumberInClear(String),
    /// The record is cut short in transit.
    Truncated,
}

impl PublicationKind {
    pub fn is_bad(&self) -> bool {
        !matches!(self, PublicationKind::Valid | PublicationKind::Duplicate)
    }
}

/// Running totals, for summaries and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimulationStatistics {
    pub admissions: u64,
    pub readmissions: u64,
    pub discharges: u64,
    pub deaths_in_hospital: u64,
    pub care_starts: u64,
    /// Patients on P1-P3 whose care has not started, now.
    pub waiting_for_care: u64,
    /// Publications handed out by [`Simulator::advance`] so far, by kind
    /// and by feed (indexed by `Feed as usize`).
    pub valid: u64,
    pub duplicates: u64,
    /// Of the duplicates, those whose content differs from the first
    /// version's.
    pub conflicting_resends: u64,
    pub bad: u64,
    /// By [`icsflow_core::Kind::index`] of the feed.
    pub published_by_feed: [u64; 3],
}

/// The simulated ICS. Call [`Simulator::advance`] with increasing instants.
#[derive(Debug)]
pub struct Simulator {
    config: SimulationConfig,
    places: Vec<SimulatedPlace>,
    queues: Vec<[VecDeque<QueueEntry>; 3]>,
    key: PseudonymKey,
    random: Random,
    patients: Vec<Patient>,
    /// The NHS numbers given so far: two simulated people never share one
    /// (they would share a pseudonym, and their spells one journey).
    nhs_numbers: std::collections::HashSet<[u8; 10]>,
    agenda: BinaryHeap<Reverse<Scheduled>>,
    outbox: BinaryHeap<Reverse<Outgoing>>,
    sequence: u64,
    now: Timestamp,
    statistics: SimulationStatistics,
}

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = Timestamp::MILLIS_PER_DAY;

/// Of older people admitted as an emergency, the share who are frail.
const FRAIL_SHARE: f64 = 0.5;
/// Pathway weights (P0, P1, P2, P3) of people under 65, 65 and over, and
/// frail 65 and over.
const PATHWAY_WEIGHTS: [[f64; 4]; 3] = [
    [70.0, 28.0, 1.5, 0.5],
    [50.0, 46.0, 3.0, 1.0],
    [10.0, 60.0, 20.0, 10.0],
];
/// Shares of admissions aged 65 and over, and emergency (the age and
/// method weights below).
const OLD_SHARE: f64 = 0.55;
const EMERGENCY_SHARE: f64 = 0.8;

/// Mean care starts needed per admission for P1, P2 and P3, from the
/// weights: what the local authority's capacity is a multiple of.
fn need_shares() -> [f64; 3] {
    let frail = OLD_SHARE * EMERGENCY_SHARE * FRAIL_SHARE;
    let groups = [(1.0 - OLD_SHARE, 0), (OLD_SHARE - frail, 1), (frail, 2)];
    std::array::from_fn(|lane| {
        groups
            .iter()
            .map(|(share, group)| {
                let weights = PATHWAY_WEIGHTS[*group];
                share * weights[lane + 1] / weights.iter().sum::<f64>()
            })
            .sum()
    })
}

/// The key the simulated partners pseudonymise with. Never a real ICS key.
const SIMULATION_KEY: &[u8] = b"icsflow simulation key: synthetic patients only";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct QueueEntry {
    patient: usize,
    spell: u32,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Scheduled {
    at: Timestamp,
    sequence: u64,
    action: Action,
}

#[derive(Debug)]
struct Outgoing {
    published_at: Timestamp,
    sequence: u64,
    publication: Publication,
    /// A duplicate whose content differs from the first version's.
    conflicting_resend: bool,
}

// Ordered by time, then by creation: the sequence number is unique.
impl PartialEq for Outgoing {
    fn eq(&self, other: &Outgoing) -> bool {
        self.sequence == other.sequence
    }
}

impl Eq for Outgoing {}

impl PartialOrd for Outgoing {
    fn partial_cmp(&self, other: &Outgoing) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Outgoing {
    fn cmp(&self, other: &Outgoing) -> std::cmp::Ordering {
        (self.published_at, self.sequence).cmp(&(other.published_at, other.sequence))
    }
}

/// What happens at a scheduled instant. Patient actions carry the spell
/// they were scheduled for and do nothing if that spell has ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    StartDay,
    AllocateCare {
        place: usize,
    },
    Admit {
        patient: usize,
    },
    Review {
        patient: usize,
        spell: u32,
    },
    AssessmentDone {
        patient: usize,
        spell: u32,
    },
    /// The afternoon board round of a patient's ready date: a delay reason
    /// for whoever is still in hospital.
    BoardRound {
        patient: usize,
        spell: u32,
    },
    Discharge {
        patient: usize,
        spell: u32,
    },
    StartService {
        patient: usize,
        spell: u32,
    },
    EndService {
        patient: usize,
        service: u32,
    },
    GpContact {
        patient: usize,
        spell: u32,
        kind: GpContact,
    },
    DieAtHome {
        patient: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum GpContact {
    Summary,
    FollowUp,
    MedicationReview,
}

#[derive(Clone, Debug)]
struct Patient {
    place: usize,
    practice: usize,
    nhs_number: [u8; 10],
    pseudonym: Pseudonym,
    age: u8,
    alive: bool,
    /// Spells so far; the current one is `spell` when `in_hospital`.
    spell: u32,
    in_hospital: bool,
    episode: Pseudonym,
    stage: Stage,
    pathway: DischargePathway,
    /// This spell had a ready date, then met a criterion again.
    relapsed: bool,
    /// This spell is a frail older person's emergency stay: a long acute
    /// phase, then most often a discharge needing care (pathways 1-3).
    frail: bool,
    /// The service open now, by number.
    service: Option<u32>,
    services: u32,
    random: Random,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Meets the criteria to reside for this many more mornings.
    Acute { mornings_left: i64, dies: bool },
    /// Ready since this date; `relapse` if criteria will be met again.
    Ready {
        ready: Date,
        relapse: bool,
        /// The trust gives the ready date on this period's assessments.
        ready_date_given: bool,
        /// The trust has decided whether to record a delay reason (at the
        /// board round of the ready date).
        delay_reason_decided: bool,
    },
}

impl Simulator {
    pub fn new(config: SimulationConfig) -> Simulator {
        let place_count = config.places.clamp(1, SimulationConfig::MAX_PLACES);
        let places = PLACES[..place_count]
            .iter()
            .map(
                |(place, name, trust, trust_quality, local_authority, prefix)| SimulatedPlace {
                    place: valid(PlaceCode::parse("place", place)),
                    name,
                    trust: valid(OdsCode::parse("trust", trust)),
                    trust_quality: *trust_quality,
                    local_authority: valid(OdsCode::parse("local_authority", local_authority)),
                    practices: (0..PRACTICES_PER_PLACE)
                        .map(|index| {
                            valid(OdsCode::parse(
                                "practice",
                                &format!("{prefix}{:03}", 11 + 17 * index),
                            ))
                        })
                        .collect(),
                },
            )
            .collect::<Vec<_>>();
        let day_start = Timestamp::from_millis(config.start.as_millis().div_euclid(DAY) * DAY);
        let mut simulator = Simulator {
            queues: places.iter().map(|_| Default::default()).collect(),
            places,
            key: valid(PseudonymKey::new(SIMULATION_KEY)),
            random: Random::new(config.seed),
            config,
            patients: Vec::new(),
            nhs_numbers: std::collections::HashSet::new(),
            agenda: BinaryHeap::new(),
            outbox: BinaryHeap::new(),
            sequence: 0,
            now: day_start,
            statistics: SimulationStatistics::default(),
        };
        simulator.schedule(day_start, Action::StartDay);
        simulator
    }

    /// Pseudonymises the simulated patients with `key` (an ICS's own key,
    /// as its partners would) instead of the simulation-only key. Call
    /// before the first [`Simulator::advance`].
    pub fn with_key(mut self, key: PseudonymKey) -> Simulator {
        self.key = key;
        self
    }

    pub fn places(&self) -> &[SimulatedPlace] {
        &self.places
    }

    pub fn statistics(&self) -> SimulationStatistics {
        let mut statistics = self.statistics;
        statistics.waiting_for_care = self
            .queues
            .iter()
            .flatten()
            .flatten()
            .filter(|entry| self.is_current(entry.patient, entry.spell))
            .count() as u64;
        statistics
    }

    /// Runs the simulation up to `until` and appends every publication
    /// due by then, in publication order.
    pub fn advance(&mut self, until: Timestamp, out: &mut Vec<Publication>) {
        while let Some(Reverse(next)) = self.agenda.peek() {
            if next.at > until {
                break;
            }
            let Some(Reverse(Scheduled { at, action, .. })) = self.agenda.pop() else {
                break;
            };
            self.now = at;
            self.perform(action);
        }
        self.now = until.max(self.now);
        while let Some(Reverse(next)) = self.outbox.peek() {
            if next.published_at > until {
                break;
            }
            if let Some(Reverse(outgoing)) = self.outbox.pop() {
                let statistics = &mut self.statistics;
                match outgoing.publication.kind {
                    PublicationKind::Valid => statistics.valid += 1,
                    PublicationKind::Duplicate => statistics.duplicates += 1,
                    _ => statistics.bad += 1,
                }
                statistics.conflicting_resends += u64::from(outgoing.conflicting_resend);
                statistics.published_by_feed
                    [icsflow_core::Kind::index(outgoing.publication.event.feed())] += 1;
                out.push(outgoing.publication);
            }
        }
    }

    fn schedule(&mut self, at: Timestamp, action: Action) {
        self.sequence += 1;
        self.agenda.push(Reverse(Scheduled {
            at,
            sequence: self.sequence,
            action,
        }));
    }

    fn is_current(&self, patient: usize, spell: u32) -> bool {
        let patient = &self.patients[patient];
        patient.in_hospital && patient.spell == spell
    }

    fn perform(&mut self, action: Action) {
        match action {
            Action::StartDay => self.start_day(),
            Action::AllocateCare { place } => self.allocate_care(place),
            Action::Admit { patient } => self.admit(patient),
            Action::Review { patient, spell } if self.is_current(patient, spell) => {
                self.review(patient);
            }
            Action::AssessmentDone { patient, spell } if self.is_current(patient, spell) => {
                self.assessment_done(patient);
            }
            Action::BoardRound { patient, spell } if self.is_current(patient, spell) => {
                self.board_round(patient);
            }
            Action::Discharge { patient, spell } if self.is_current(patient, spell) => {
                self.discharge(patient);
            }
            Action::StartService { patient, spell } => self.start_service(patient, spell),
            Action::EndService { patient, service } => self.end_service(patient, service),
            Action::GpContact {
                patient,
                spell,
                kind,
            } => self.gp_contact(patient, spell, kind),
            Action::DieAtHome { patient } => self.die_at_home(patient),
            Action::Review { .. }
            | Action::AssessmentDone { .. }
            | Action::BoardRound { .. }
            | Action::Discharge { .. } => {}
        }
    }

    fn start_day(&mut self) {
        let today = self.now;
        let weekend = is_weekend(today);
        for place in 0..self.places.len() {
            let mean = self.config.admissions_per_day * if weekend { 0.8 } else { 1.07 };
            for _ in 0..self.random.poisson(mean) {
                let patient = self.new_patient(place);
                let at = today.as_millis() + self.random.between(0, DAY - MINUTE);
                self.schedule(Timestamp::from_millis(at), Action::Admit { patient });
            }
            self.schedule(
                Timestamp::from_millis(today.as_millis() + 12 * HOUR),
                Action::AllocateCare { place },
            );
        }
        self.schedule(
            Timestamp::from_millis(today.as_millis() + DAY),
            Action::StartDay,
        );
    }

    fn new_patient(&mut self, place: usize) -> usize {
        let mut random = self.random.fork();
        let mut nhs_number = synthetic_nhs_number(&mut random);
        // The 999 range holds about 909,000 valid numbers: drawn again
        // while taken, until nine in ten are (a run that large shares some).
        while self.nhs_numbers.len() < SYNTHETIC_NHS_NUMBERS * 9 / 10
            && !self.nhs_numbers.insert(nhs_number)
        {
            nhs_number = synthetic_nhs_number(&mut random);
        }
        let age = match random.weighted(&[20.0, 25.0, 30.0, 25.0]) {
            0 => random.between(18, 44),
            1 => random.between(45, 64),
            2 => random.between(65, 79),
            _ => random.between(80, 99),
        } as u8;
        let practice = random.between(0, PRACTICES_PER_PLACE as i64 - 1) as usize;
        self.patients.push(Patient {
            place,
            practice,
            pseudonym: self.key.pseudonymise_bytes(&nhs_number),
            nhs_number,
            age,
            alive: true,
            spell: 0,
            in_hospital: false,
            episode: Pseudonym::from_bytes([0; 32]),
            stage: Stage::Acute {
                mornings_left: 0,
                dies: false,
            },
            pathway: DischargePathway::P0,
            relapsed: false,
            frail: false,
            service: None,
            services: 0,
            random,
        });
        self.patients.len() - 1
    }

    fn admit(&mut self, index: usize) {
        let patient = &mut self.patients[index];
        if !patient.alive || patient.in_hospital {
            return;
        }
        let readmission = patient.spell > 0;
        patient.spell += 1;
        patient.in_hospital = true;
        patient.relapsed = false;
        let trust = self.places[patient.place].trust;
        let mut reference = trust.as_str().as_bytes().to_vec();
        reference.extend_from_slice(&patient.nhs_number);
        reference.extend_from_slice(&patient.spell.to_le_bytes());
        patient.episode = self.key.pseudonymise_bytes(&reference);
        let random = &mut patient.random;
        let emergency = readmission || random.chance(EMERGENCY_SHARE);
        let method = if emergency {
            [
                AdmissionMethod::EmergencyAccidentAndEmergency,
                AdmissionMethod::EmergencyGeneralPractitioner,
                AdmissionMethod::EmergencyBedBureau,
                AdmissionMethod::EmergencyOther,
            ][random.weighted(&[70.0, 15.0, 5.0, 10.0])]
        } else {
            [
                AdmissionMethod::ElectiveWaitingList,
                AdmissionMethod::ElectiveBooked,
            ][random.weighted(&[60.0, 40.0])]
        };
        let source = [
            AdmissionSource::UsualPlaceOfResidence,
            AdmissionSource::CareHome,
            AdmissionSource::OtherNhsHospital,
        ][random.weighted(&[90.0, 7.0, 3.0])];
        let old = patient.age >= 65;
        // Calibrated to England's discharge figures (docs/simulation.md):
        // frail older people's emergency stays are long before they are
        // ready, and they are most of those delayed.
        let frail = emergency && old && random.chance(FRAIL_SHARE);
        patient.frail = frail;
        let mean_acute = match (emergency, old, frail) {
            (true, true, true) => 28.0,
            (true, true, false) => 7.0,
            (true, false, _) => 4.0,
            (false, _, _) => 1.5,
        };
        let mut mornings_left = random.exponential_days(mean_acute, if frail { 16 } else { 0 });
        let dies = random.chance(if old { 0.04 } else { 0.01 });
        if dies {
            mornings_left += 1;
        }
        patient.stage = Stage::Acute {
            mornings_left,
            dies,
        };
        let cancelled = random.chance(0.005);
        let age = valid(AgeYears::new("age_years", i32::from(patient.age)));
        // Most beds are general and acute; some trusts' systems do not say
        // (they still publish version 1 of the schema).
        let bed_type = match random.weighted(&[88.0, 6.0, 3.0, 2.0, 1.0]) {
            0 => Some(BedType::GeneralAndAcute),
            1 => None,
            2 => Some(BedType::CriticalCare),
            3 if patient.age < 45 => Some(BedType::Maternity),
            3 => Some(BedType::GeneralAndAcute),
            _ => Some(BedType::MentalHealth),
        };
        let bed_type_given = recorded(
            random,
            self.places[patient.place].trust_quality.bed_types_percent,
        );
        let spell = patient.spell;
        self.statistics.admissions += 1;
        self.statistics.readmissions += u64::from(readmission);
        let admitted = |bed_type| {
            EventBody::Discharge(DischargeBody::Admitted {
                admission_method: method,
                admission_source: source,
                age_years: age,
                bed_type,
            })
        };
        self.emit_as_recorded(
            index,
            self.now,
            admitted(bed_type.filter(|_| bed_type_given)),
            admitted(bed_type),
        );
        if cancelled {
            // Admitted in error (A11): the spell ends here.
            let at = self.later(30 * MINUTE, 2 * HOUR);
            self.emit(
                index,
                at,
                EventBody::Discharge(DischargeBody::AdmissionCancelled),
            );
            self.patients[index].in_hospital = false;
            self.statistics.admissions -= 1;
            return;
        }
        let morning = self.next_morning();
        self.schedule(
            morning,
            Action::Review {
                patient: index,
                spell,
            },
        );
        let service = self.patients[index].service;
        if readmission {
            if let Some(service) = service {
                self.end_service_now(index, service, ServiceEndReason::AdmittedToHospital);
            }
        }
    }

    /// The morning review against the criteria to reside.
    fn review(&mut self, index: usize) {
        let spell = self.patients[index].spell;
        let today = self.now.london_date();
        match self.patients[index].stage {
            Stage::Acute {
                mornings_left,
                dies,
            } if mornings_left > 0 => {
                let code = CriteriaToResideCode::ALL[self.patients[index].random.weighted(&[
                    3.0, 10.0, 15.0, 10.0, 2.0, 15.0, 2.0, 15.0, 5.0, 5.0, 3.0, 15.0,
                ])];
                if dies && mornings_left == 1 {
                    self.emit(
                        index,
                        self.now,
                        criteria(CriteriaToReside::Meets(CriteriaToResideCode::C07)),
                    );
                    let at = self.later(2 * HOUR, 12 * HOUR);
                    self.schedule(
                        at,
                        Action::Discharge {
                            patient: index,
                            spell,
                        },
                    );
                    return;
                }
                self.emit(index, self.now, criteria(CriteriaToReside::Meets(code)));
                self.patients[index].stage = Stage::Acute {
                    mornings_left: mornings_left - 1,
                    dies,
                };
                self.review_tomorrow(index, spell);
            }
            Stage::Acute { .. } => self.become_ready(index, today),
            Stage::Ready {
                ready,
                relapse,
                ready_date_given,
                ..
            } => {
                if relapse {
                    // Meets a criterion again: the ready date will restart.
                    let mornings_left = self.patients[index].random.between(1, 3);
                    self.emit(
                        index,
                        self.now,
                        criteria(CriteriaToReside::Meets(CriteriaToResideCode::C04)),
                    );
                    self.patients[index].stage = Stage::Acute {
                        mornings_left,
                        dies: false,
                    };
                    self.patients[index].relapsed = true;
                    self.review_tomorrow(index, spell);
                    return;
                }
                self.emit_not_meeting_criteria(index, ready, ready_date_given);
                self.review_tomorrow(index, spell);
            }
        }
    }

    fn become_ready(&mut self, index: usize, today: Date) {
        let spell = self.patients[index].spell;
        let relapsed_before = self.patients[index].relapsed;
        let patient = &mut self.patients[index];
        let weights = PATHWAY_WEIGHTS[usize::from(patient.age >= 65) + usize::from(patient.frail)];
        if !relapsed_before {
            patient.pathway = DischargePathway::ALL[patient.random.weighted(&weights)];
        }
        let relapse = !relapsed_before && patient.random.chance(0.04);
        let quality = self.places[patient.place].trust_quality;
        let ready_date_given = recorded(&mut patient.random, quality.ready_dates_percent);
        let pathway_assigned = recorded(&mut patient.random, quality.pathways_assigned_percent);
        patient.stage = Stage::Ready {
            ready: today,
            relapse,
            ready_date_given,
            delay_reason_decided: false,
        };
        let pathway = patient.pathway;
        self.emit_not_meeting_criteria(index, today, ready_date_given);
        let assigned_at = self.later(20 * MINUTE, 3 * HOUR);
        if pathway_assigned {
            self.emit(
                index,
                assigned_at,
                EventBody::Discharge(DischargeBody::PathwayAssigned { pathway }),
            );
        }
        let midnight = self.now.as_millis().div_euclid(DAY) * DAY;
        let board_round = midnight + self.random.between(15 * HOUR, 17 * HOUR);
        self.schedule(
            Timestamp::from_millis(board_round),
            Action::BoardRound {
                patient: index,
                spell,
            },
        );
        if relapse {
            self.review_tomorrow(index, spell);
            return;
        }
        if pathway == DischargePathway::P0 {
            let delay_days = [0, 1, 2][self.patients[index].random.weighted(&[85.0, 11.0, 4.0])];
            let at = self.later(delay_days * DAY + 3 * HOUR, delay_days * DAY + 8 * HOUR);
            self.schedule(
                at,
                Action::Discharge {
                    patient: index,
                    spell,
                },
            );
            if delay_days > 0 {
                self.review_tomorrow(index, spell);
            }
            return;
        }
        if relapsed_before {
            // Assessed already: back in the queue for a care start.
            self.enqueue(index);
        } else {
            let request_at = self.later(HOUR, 5 * HOUR);
            self.emit_social_care(
                index,
                request_at,
                SocialCareBody::RequestCompleted {
                    route_of_access: RouteOfAccess::DischargeFromHospital,
                },
            );
            // A care home or a short-term bed takes longer to arrange than
            // care at home: the assessment, and finding the place.
            // So does care at home for a frail person (a package with two
            // carers, equipment).
            let frail = self.patients[index].frail;
            let assessed_at = match pathway {
                DischargePathway::P1 if frail => self.later(DAY, 6 * DAY),
                DischargePathway::P2 => self.later(2 * DAY, 8 * DAY),
                DischargePathway::P3 => self.later(5 * DAY, 21 * DAY),
                _ => self.later(4 * HOUR, DAY),
            };
            self.schedule(
                assessed_at,
                Action::AssessmentDone {
                    patient: index,
                    spell,
                },
            );
        }
        self.review_tomorrow(index, spell);
    }

    /// Whoever is still in hospital on the afternoon of the ready date is
    /// delayed (those going home today wait for medicines or transport):
    /// the trust records why, for as many as it records reasons for.
    fn board_round(&mut self, index: usize) {
        let Stage::Ready {
            ready,
            relapse,
            ready_date_given,
            delay_reason_decided: false,
        } = self.patients[index].stage
        else {
            return;
        };
        let percent = self.trust_quality(index).delay_reasons_percent;
        if recorded(&mut self.patients[index].random, percent) {
            self.record_delay_reason(index);
        }
        self.patients[index].stage = Stage::Ready {
            ready,
            relapse,
            ready_date_given,
            delay_reason_decided: true,
        };
    }

    fn record_delay_reason(&mut self, index: usize) {
        let pathway = self.patients[index].pathway;
        let random = &mut self.patients[index].random;
        let (family, code) = match pathway {
            DischargePathway::P0 => [
                (
                    DelayReasonFamily::HospitalProcess,
                    DelayReason::MedicinesOrDocumentation,
                ),
                (
                    DelayReasonFamily::HospitalProcess,
                    DelayReason::PatientTransport,
                ),
                (
                    DelayReasonFamily::Wellbeing,
                    DelayReason::ConcernsOverReadiness,
                ),
            ][random.weighted(&[50.0, 35.0, 15.0])],
            DischargePathway::P1 => [
                (DelayReasonFamily::Capacity, DelayReason::HomeRehabilitation),
                (DelayReasonFamily::Capacity, DelayReason::HomeSocialCare),
                (
                    DelayReasonFamily::InterfaceProcess,
                    DelayReason::HomeSocialCareArrangements,
                ),
                (
                    DelayReasonFamily::CareTransferHubProcess,
                    DelayReason::CareNeedsAndPathway,
                ),
            ][random.weighted(&[45.0, 30.0, 15.0, 10.0])],
            DischargePathway::P2 => [
                (DelayReasonFamily::Capacity, DelayReason::BedRehabilitation),
                (
                    DelayReasonFamily::InterfaceProcess,
                    DelayReason::BedRehabilitationArrangements,
                ),
            ][random.weighted(&[80.0, 20.0])],
            DischargePathway::P3 => [
                (DelayReasonFamily::Capacity, DelayReason::CareHome),
                (
                    DelayReasonFamily::Wellbeing,
                    DelayReason::DestinationReadiness,
                ),
            ][random.weighted(&[75.0, 25.0])],
        };
        let corrected = random.chance(0.03);
        let body = |family, code| {
            EventBody::Discharge(DischargeBody::DelayReasonRecorded {
                reason_family: family,
                reason_code: code,
            })
        };
        let event_id = self.emit(index, self.now, body(family, code));
        if corrected {
            let at = self.later(2 * HOUR, 6 * HOUR);
            let correction = self.event(
                index,
                at,
                body(
                    DelayReasonFamily::InterfaceProcess,
                    DelayReason::HomeSocialCareArrangements,
                ),
            );
            let mut correction = correction;
            correction.envelope.corrects_event_id = Some(event_id);
            self.publish(index, correction);
        }
    }

    fn assessment_done(&mut self, index: usize) {
        let long_term = self.patients[index].pathway == DischargePathway::P3;
        self.emit_social_care(
            index,
            self.now,
            SocialCareBody::AssessmentCompleted {
                assessment_type: if long_term {
                    AssessmentType::LongTerm
                } else {
                    AssessmentType::ShortTerm
                },
                eligible_needs: true,
            },
        );
        self.enqueue(index);
    }

    fn enqueue(&mut self, index: usize) {
        let patient = &self.patients[index];
        let lane = patient.pathway.index().saturating_sub(1).min(2);
        self.queues[patient.place][lane].push_back(QueueEntry {
            patient: index,
            spell: patient.spell,
        });
    }

    /// The local authority's care starts for the day, first come first
    /// served per pathway.
    fn allocate_care(&mut self, place: usize) {
        let weekend = is_weekend(self.now);
        // Mean care starts needed per admission, for P1, P2 and P3.
        let need_shares = need_shares();
        for (lane, need_share) in need_shares.into_iter().enumerate() {
            let mean = self.config.admissions_per_day
                * need_share
                * self.config.care_capacity
                * if weekend { 0.5 } else { 1.2 };
            let mut slots = self.random.poisson(mean);
            while slots > 0 {
                let Some(entry) = self.queues[place][lane].pop_front() else {
                    break;
                };
                let patient = &self.patients[entry.patient];
                let ready = matches!(patient.stage, Stage::Ready { relapse: false, .. });
                if !self.is_current(entry.patient, entry.spell) || !ready {
                    continue;
                }
                slots -= 1;
                let at = self.later(2 * HOUR, 7 * HOUR);
                self.schedule(
                    at,
                    Action::Discharge {
                        patient: entry.patient,
                        spell: entry.spell,
                    },
                );
            }
        }
    }

    fn discharge(&mut self, index: usize) {
        let spell = self.patients[index].spell;
        let pathway = self.patients[index].pathway;
        let died = matches!(self.patients[index].stage, Stage::Acute { dies: true, .. });
        let random = &mut self.patients[index].random;
        let (destination, method) = if died {
            (DischargeDestination::Died, DischargeMethod::Died)
        } else {
            let destination = match pathway {
                DischargePathway::P0 | DischargePathway::P1 => {
                    DischargeDestination::UsualPlaceOfResidence
                }
                // A P2 bed is in a community hospital (51, a transfer) or
                // a temporary residence; some trusts still send the
                // retired care-home code 85.
                DischargePathway::P2 => [
                    DischargeDestination::TemporaryPlaceOfResidence,
                    DischargeDestination::NhsHospitalGeneralWard,
                ][random.weighted(&[60.0, 40.0])],
                DischargePathway::P3 => [
                    DischargeDestination::CareHomeWithNursing,
                    DischargeDestination::CareHomeWithoutNursing,
                    DischargeDestination::NonNhsCareHome,
                ][random.weighted(&[45.0, 45.0, 10.0])],
            };
            let method = if pathway == DischargePathway::P0 && random.chance(0.02) {
                DischargeMethod::SelfDischarge
            } else {
                DischargeMethod::ClinicalAdvice
            };
            (destination, method)
        };
        let cancelled = !died && random.chance(0.005);
        let percent = self.places[self.patients[index].place]
            .trust_quality
            .destinations_percent;
        let destination_given = died || recorded(&mut self.patients[index].random, percent);
        let discharged = |destination| {
            EventBody::Discharge(DischargeBody::Discharged {
                destination,
                discharge_method: method,
                pathway,
            })
        };
        self.emit_as_recorded(
            index,
            self.now,
            discharged(if destination_given {
                destination
            } else {
                DischargeDestination::NotKnown
            }),
            discharged(destination),
        );
        if cancelled {
            // Discharged in error (A13): the patient stays another day.
            let at = self.later(HOUR, 3 * HOUR);
            self.emit(
                index,
                at,
                EventBody::Discharge(DischargeBody::DischargeCancelled),
            );
            let again = self.later(DAY, DAY + 4 * HOUR);
            self.schedule(
                again,
                Action::Discharge {
                    patient: index,
                    spell,
                },
            );
            return;
        }
        self.patients[index].in_hospital = false;
        if died {
            self.patients[index].alive = false;
            self.statistics.deaths_in_hospital += 1;
            let at = self.later(HOUR, DAY);
            self.emit_death(index, at);
            return;
        }
        self.statistics.discharges += 1;
        self.after_discharge(index, spell, pathway);
    }

    fn after_discharge(&mut self, index: usize, spell: u32, pathway: DischargePathway) {
        if pathway != DischargePathway::P0 {
            let at = self.later(0, 6 * HOUR);
            self.schedule(
                at,
                Action::StartService {
                    patient: index,
                    spell,
                },
            );
        }
        let random = &mut self.patients[index].random;
        let summary_at = random.between(HOUR, 2 * DAY);
        let follow_up = random.chance(0.65).then(|| random.between(DAY, 14 * DAY));
        let review = random
            .chance(0.4)
            .then(|| random.between(2 * DAY, 10 * DAY));
        let readmitted = random.chance(0.08).then(|| random.between(DAY, 29 * DAY));
        let dies = random
            .chance(0.02)
            .then(|| random.between(5 * DAY, 60 * DAY));
        let now = self.now.as_millis();
        for (offset, kind) in [
            (Some(summary_at), GpContact::Summary),
            (follow_up, GpContact::FollowUp),
            (review, GpContact::MedicationReview),
        ] {
            if let Some(offset) = offset {
                self.schedule(
                    Timestamp::from_millis(now + offset),
                    Action::GpContact {
                        patient: index,
                        spell,
                        kind,
                    },
                );
            }
        }
        if let Some(offset) = readmitted {
            self.schedule(
                Timestamp::from_millis(now + offset),
                Action::Admit { patient: index },
            );
        }
        if let Some(offset) = dies {
            self.schedule(
                Timestamp::from_millis(now + offset),
                Action::DieAtHome { patient: index },
            );
        }
    }

    fn start_service(&mut self, index: usize, spell: u32) {
        let patient = &mut self.patients[index];
        if !patient.alive || patient.in_hospital || patient.spell != spell {
            return;
        }
        let random = &mut patient.random;
        let (service_type, component, weeks) = match patient.pathway {
            DischargePathway::P1 if random.chance(0.75) => (
                ServiceType::ShortTermStMax,
                ServiceComponent::Reablement,
                Some((2, 6)),
            ),
            DischargePathway::P1 => (
                ServiceType::LongTermCommunity,
                ServiceComponent::HomeCare,
                None,
            ),
            DischargePathway::P2 => (
                ServiceType::ShortTermOther,
                ServiceComponent::ResidentialCare,
                Some((3, 6)),
            ),
            _ => {
                if random.chance(0.5) {
                    (
                        ServiceType::LongTermNursing,
                        ServiceComponent::NursingCare,
                        None,
                    )
                } else {
                    (
                        ServiceType::LongTermResidential,
                        ServiceComponent::ResidentialCare,
                        None,
                    )
                }
            }
        };
        let ends_after = weeks.map(|(low, high)| random.between(low * 7 * DAY, high * 7 * DAY));
        patient.services += 1;
        let service = patient.services;
        patient.service = Some(service);
        self.statistics.care_starts += 1;
        self.emit_social_care(
            index,
            self.now,
            SocialCareBody::ServiceStarted {
                service_type,
                service_component: component,
            },
        );
        if let Some(offset) = ends_after {
            self.schedule(
                Timestamp::from_millis(self.now.as_millis() + offset),
                Action::EndService {
                    patient: index,
                    service,
                },
            );
        }
    }

    fn end_service(&mut self, index: usize, service: u32) {
        if self.patients[index].service != Some(service) || !self.patients[index].alive {
            return;
        }
        let reason = [
            ServiceEndReason::NoOngoingNeeds,
            ServiceEndReason::LongTermCommunitySupport,
        ][self.patients[index].random.weighted(&[65.0, 35.0])];
        self.end_service_now(index, service, reason);
        if reason == ServiceEndReason::LongTermCommunitySupport {
            let patient = &mut self.patients[index];
            patient.services += 1;
            patient.service = Some(patient.services);
            let at = self.later(HOUR, DAY);
            self.emit_social_care(
                index,
                at,
                SocialCareBody::ServiceStarted {
                    service_type: ServiceType::LongTermCommunity,
                    service_component: ServiceComponent::HomeCare,
                },
            );
        }
    }

    fn end_service_now(&mut self, index: usize, service: u32, reason: ServiceEndReason) {
        if self.patients[index].service != Some(service) {
            return;
        }
        self.patients[index].service = None;
        self.emit_social_care(
            index,
            self.now,
            SocialCareBody::ServiceEnded { end_reason: reason },
        );
        if reason == ServiceEndReason::NoOngoingNeeds {
            let at = self.later(HOUR, 3 * DAY);
            self.emit_social_care(
                index,
                at,
                SocialCareBody::ReviewCompleted {
                    review_type: ReviewType::Planned,
                    review_outcome: ReviewOutcome::SupportEnded,
                },
            );
        }
    }

    fn gp_contact(&mut self, index: usize, spell: u32, kind: GpContact) {
        let patient = &mut self.patients[index];
        // A readmission or a death stops the follow-up of this spell.
        if !patient.alive || patient.in_hospital || patient.spell != spell {
            return;
        }
        let trust = self.places[patient.place].trust;
        let random = &mut patient.random;
        let body = match kind {
            GpContact::Summary => PrimaryCareBody::DischargeSummaryFiled {
                sending_organisation: trust,
            },
            GpContact::FollowUp => PrimaryCareBody::PostDischargeContact {
                attendance: if random.chance(0.9) {
                    ContactAttendance::Attended
                } else {
                    ContactAttendance::DidNotAttend
                },
                contact_mode: ContactMode::ALL[random.weighted(&[40.0, 15.0, 35.0, 5.0, 5.0])],
            },
            GpContact::MedicationReview => PrimaryCareBody::MedicationReviewCompleted {
                review_kind: if random.chance(0.6) {
                    MedicationReviewKind::DischargeMedicinesService
                } else {
                    MedicationReviewKind::StructuredMedicationReview
                },
            },
        };
        self.emit(index, self.now, EventBody::PrimaryCare(body));
    }

    fn die_at_home(&mut self, index: usize) {
        let patient = &mut self.patients[index];
        if !patient.alive || patient.in_hospital {
            return;
        }
        patient.alive = false;
        if let Some(service) = patient.service {
            self.end_service_now(index, service, ServiceEndReason::Died);
        }
        let at = self.later(HOUR, 2 * DAY);
        self.emit_death(index, at);
    }

    fn emit_death(&mut self, index: usize, at: Timestamp) {
        self.emit(
            index,
            at,
            EventBody::PrimaryCare(PrimaryCareBody::DeathNotified {
                date_of_death: self.now.london_date(),
            }),
        );
    }

    fn emit_social_care(&mut self, index: usize, at: Timestamp, body: SocialCareBody) {
        self.emit(index, at, EventBody::SocialCare(body));
    }

    /// The morning assessment of a patient ready since `ready`: not meeting
    /// the criteria, with the ready date if the trust gives it.
    fn emit_not_meeting_criteria(&mut self, index: usize, ready: Date, ready_date_given: bool) {
        let assessed = |discharge_ready_date| {
            criteria(CriteriaToReside::DoesNotMeet {
                discharge_ready_date,
            })
        };
        self.emit_as_recorded(
            index,
            self.now,
            assessed(ready_date_given.then_some(ready)),
            assessed(Some(ready)),
        );
    }

    /// Emits an event as the trust recorded it (`sent`); when that left a
    /// field of `complete` out, the trust may fill it in later and send
    /// the record again under the same event id (a conflicting re-send).
    fn emit_as_recorded(
        &mut self,
        index: usize,
        occurred_at: Timestamp,
        sent: EventBody,
        complete: EventBody,
    ) {
        let event = self.event(index, occurred_at, sent);
        self.publish(index, event);
        let percent = self.trust_quality(index).filled_in_later_percent;
        let random = &mut self.patients[index].random;
        if sent == complete || !recorded(random, percent) {
            return;
        }
        let filled_in_after = random.between(HOUR, 2 * DAY);
        let mut resent = event;
        resent.body = complete;
        resent.envelope.recorded_at =
            Timestamp::from_millis(event.envelope.recorded_at.as_millis() + filled_in_after);
        let published_at = self
            .trust_quality(index)
            .publishing
            .published_at(resent.envelope.recorded_at, &mut self.random);
        self.queue(
            Publication {
                published_at,
                event: resent,
                kind: PublicationKind::Duplicate,
            },
            true,
        );
    }

    fn trust_quality(&self, index: usize) -> RecordingQuality {
        self.places[self.patients[index].place].trust_quality
    }

    /// Creates an event and queues it (and any duplicate or bad copy) for
    /// publication. Returns its id.
    fn emit(&mut self, index: usize, occurred_at: Timestamp, body: EventBody) -> EventId {
        let event = self.event(index, occurred_at, body);
        self.publish(index, event);
        event.envelope.event_id
    }

    fn event(&mut self, index: usize, occurred_at: Timestamp, body: EventBody) -> Event {
        let patient = &self.patients[index];
        let place = &self.places[patient.place];
        let (organisation, episode_reference) = match body {
            EventBody::Discharge(_) => (place.trust, Some(patient.episode)),
            EventBody::SocialCare(_) => {
                let mut reference = place.local_authority.as_str().as_bytes().to_vec();
                reference.extend_from_slice(&patient.nhs_number);
                (
                    place.local_authority,
                    Some(self.key.pseudonymise_bytes(&reference)),
                )
            }
            EventBody::PrimaryCare(_) => (place.practices[patient.practice], None),
        };
        let (low, high) = match body.feed() {
            Feed::Discharge => place.trust_quality.recording_lag_millis,
            Feed::SocialCare => (30 * MINUTE, 6 * HOUR),
            Feed::PrimaryCare => (0, 3 * HOUR),
        };
        let lag = self.random.between(low, high);
        Event {
            envelope: Envelope {
                event_id: random_event_id(&mut self.random),
                occurred_at,
                recorded_at: Timestamp::from_millis(occurred_at.as_millis() + lag),
                source_organisation: organisation,
                place: place.place,
                patient: patient.pseudonym,
                episode_reference,
                corrects_event_id: None,
            },
            body,
        }
    }

    fn publish(&mut self, index: usize, event: Event) {
        let publishing = match event.feed() {
            Feed::Discharge => self.trust_quality(index).publishing,
            Feed::SocialCare => LOCAL_AUTHORITY_PUBLISHING,
            Feed::PrimaryCare => PRACTICE_PUBLISHING,
        };
        let published_at = publishing.published_at(event.envelope.recorded_at, &mut self.random);
        if self.random.chance(self.config.bad_record_rate) {
            let kind = match self.random.weighted(&[40.0, 30.0, 30.0]) {
                0 => PublicationKind::DistrictCodeAsPlace("E07000001"),
                1 => PublicationKind::NhsNumberInClear(
                    String::from_utf8_lossy(&self.patients[index].nhs_number).into_owned(),
                ),
                _ => PublicationKind::Truncated,
            };
            self.queue_publication(published_at, event, kind);
        }
        self.queue_publication(published_at, event, PublicationKind::Valid);
        if self.random.chance(self.config.duplicate_rate) {
            let again = published_at.as_millis() + self.random.between(MINUTE, 30 * MINUTE);
            self.queue_publication(
                Timestamp::from_millis(again),
                event,
                PublicationKind::Duplicate,
            );
        }
    }

    fn queue_publication(&mut self, published_at: Timestamp, event: Event, kind: PublicationKind) {
        self.queue(
            Publication {
                published_at,
                event,
                kind,
            },
            false,
        );
    }

    fn queue(&mut self, publication: Publication, conflicting_resend: bool) {
        self.sequence += 1;
        self.outbox.push(Reverse(Outgoing {
            published_at: publication.published_at,
            sequence: self.sequence,
            publication,
            conflicting_resend,
        }));
    }

    /// A random instant between `low` and `high` milliseconds from now.
    fn later(&mut self, low: i64, high: i64) -> Timestamp {
        Timestamp::from_millis(self.now.as_millis() + self.random.between(low, high))
    }

    fn review_tomorrow(&mut self, patient: usize, spell: u32) {
        let morning = self.next_morning();
        self.schedule(morning, Action::Review { patient, spell });
    }

    /// Tomorrow between 08:00 and 11:00 (UTC): ward-round time.
    fn next_morning(&mut self) -> Timestamp {
        let midnight = (self.now.as_millis().div_euclid(DAY) + 1) * DAY;
        Timestamp::from_millis(midnight + self.random.between(8 * HOUR, 11 * HOUR))
    }
}

/// Whether the trust records a thing it records `percent` of the time. At
/// 100 nothing is drawn, so a complete trust's patients draw as before.
fn recorded(random: &mut Random, percent: u8) -> bool {
    match percent {
        0 => false,
        100.. => true,
        _ => random.chance(f64::from(percent) / 100.0),
    }
}

fn criteria(outcome: CriteriaToReside) -> EventBody {
    EventBody::Discharge(DischargeBody::CriteriaToResideAssessed(outcome))
}

fn is_weekend(instant: Timestamp) -> bool {
    // 1970-01-01 was a Thursday.
    let weekday = (instant.as_millis().div_euclid(DAY) + 4).rem_euclid(7);
    weekday == 0 || weekday == 6
}

/// A random version 4 UUID.
fn random_event_id(random: &mut Random) -> EventId {
    let value = (u128::from(random.next_u64()) << 64) | u128::from(random.next_u64());
    let value = (value & !(0xf_u128 << 76)) | (0x4_u128 << 76);
    let value = (value & !(0x3_u128 << 62)) | (0x2_u128 << 62);
    EventId::from_u128(value)
}

/// Valid NHS numbers in the 999 range (`999` and six digits drawn, then a
/// check digit; one draw in eleven has none).
const SYNTHETIC_NHS_NUMBERS: usize = 1_000_000 * 10 / 11;

/// A valid NHS number from the 999 range, which is never issued to
/// patients.
fn synthetic_nhs_number(random: &mut Random) -> [u8; 10] {
    loop {
        let mut digits = *b"9990000000";
        for digit in &mut digits[3..9] {
            *digit = b'0' + random.between(0, 9) as u8;
        }
        for check in b'0'..=b'9' {
            digits[9] = check;
            if is_valid_nhs_number(&digits) {
                return digits;
            }
        }
    }
}

/// Values built from this module's constants are valid by construction.
fn valid<T, E: std::fmt::Debug>(result: Result<T, E>) -> T {
    result.expect("simulator constants are valid")
}
