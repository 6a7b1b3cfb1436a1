//! The simulator: deterministic, shaped like the national figures, and
//! what it publishes is what the engine can link into journeys.

use std::collections::{BTreeMap, HashMap, HashSet};

use icsflow_core::{
    CriteriaToReside, DischargeBody, DischargeDestination, DischargePathway, EventBody, EventId,
    Feed, OdsCode, Pseudonym, Timestamp,
};
use icsflow_engine::{Applied, Engine, EngineConfig};
use icsflow_partner::{
    Publication, PublicationKind, Publishing, RecordingQuality, SimulationConfig, Simulator,
};

/// 2026-01-05T00:00:00Z, a winter Monday.
const START: i64 = 1_767_571_200_000;
const DAY: i64 = Timestamp::MILLIS_PER_DAY;

fn simulate(config: SimulationConfig, days: i64) -> (Simulator, Vec<Publication>) {
    let mut simulator = Simulator::new(config);
    let mut publications = Vec::new();
    // In steps, as the demo drives it; the result must not depend on them.
    for hour in 1..=days * 24 {
        simulator.advance(
            Timestamp::from_millis(START + hour * DAY / 24),
            &mut publications,
        );
    }
    (simulator, publications)
}

fn config(seed: u64) -> SimulationConfig {
    SimulationConfig::new(seed, Timestamp::from_millis(START))
}

#[test]
fn the_same_seed_gives_the_same_stream_and_another_seed_does_not() {
    let (_, first) = simulate(config(7), 10);
    let mut simulator = Simulator::new(config(7));
    let mut in_one_step = Vec::new();
    simulator.advance(Timestamp::from_millis(START + 10 * DAY), &mut in_one_step);
    assert!(first.len() > 5_000, "{}", first.len());
    assert_eq!(first, in_one_step);
    let (_, other) = simulate(config(8), 10);
    assert_ne!(first[..100], other[..100]);
}

#[test]
fn publications_come_in_order_and_never_before_they_were_recorded() {
    let (_, publications) = simulate(config(1), 14);
    for pair in publications.windows(2) {
        assert!(pair[0].published_at <= pair[1].published_at);
    }
    for publication in &publications {
        let envelope = publication.event.envelope;
        assert!(envelope.occurred_at <= envelope.recorded_at);
        assert!(envelope.recorded_at <= publication.published_at);
    }
    // Out of order across partners: some social care or primary care event
    // is published after a discharge event that happened later.
    let late = publications.windows(2).any(|pair| {
        pair[0].event.envelope.occurred_at > pair[1].event.envelope.occurred_at
            && pair[0].event.feed() != pair[1].event.feed()
    });
    assert!(late);
}

#[test]
fn pathways_duplicates_and_bad_records_come_in_the_configured_proportions() {
    let (simulator, publications) = simulate(config(3), 60);
    let mut pathways: BTreeMap<DischargePathway, usize> = BTreeMap::new();
    let mut first_versions: HashMap<EventId, icsflow_core::Event> = HashMap::new();
    let (mut duplicates, mut conflicting, mut bad, mut valid) = (0, 0, 0, 0);
    for publication in &publications {
        let event = publication.event;
        match &publication.kind {
            PublicationKind::Valid => {
                valid += 1;
                assert!(first_versions
                    .insert(event.envelope.event_id, event)
                    .is_none());
                if let EventBody::Discharge(DischargeBody::Discharged { pathway, .. }) = event.body
                {
                    *pathways.entry(pathway).or_default() += 1;
                }
            }
            PublicationKind::Duplicate => {
                let first = first_versions[&event.envelope.event_id];
                if event == first {
                    duplicates += 1;
                } else {
                    // A conflicting re-send: the same event from the same
                    // trust, a field filled in, recorded later.
                    conflicting += 1;
                    let (old, new) = (first.envelope, event.envelope);
                    assert_eq!(old.source_organisation, new.source_organisation);
                    assert_eq!(old.occurred_at, new.occurred_at);
                    assert!(old.recorded_at < new.recorded_at);
                    assert_ne!(first.body, event.body);
                    assert_eq!(event.feed(), Feed::Discharge);
                }
            }
            PublicationKind::NhsNumberInClear(number) => {
                bad += 1;
                assert!(number.starts_with("999"));
                assert!(icsflow_core::is_valid_nhs_number(number.as_bytes()));
            }
            _ => bad += 1,
        }
    }
    let discharges: usize = pathways.values().sum();
    let share = |pathway| pathways.get(&pathway).copied().unwrap_or(0) as f64 / discharges as f64;
    // DOMAIN: P0 about half, P1 about 45 %, P2 at most 4 %, P3 at most 1 %
    // (deaths are discharged on P0 here, which lifts it a little).
    assert!(
        (0.45..0.62).contains(&share(DischargePathway::P0)),
        "{pathways:?}"
    );
    assert!(
        (0.33..0.50).contains(&share(DischargePathway::P1)),
        "{pathways:?}"
    );
    assert!(share(DischargePathway::P2) <= 0.06, "{pathways:?}");
    assert!(share(DischargePathway::P3) <= 0.025, "{pathways:?}");
    let rate = |count: usize| count as f64 / valid as f64;
    println!(
        "{valid} valid, {duplicates} duplicates, {conflicting} conflicting re-sends, {bad} bad"
    );
    assert!(
        (0.007..0.013).contains(&rate(duplicates)),
        "{duplicates} of {valid}"
    );
    assert!((0.003..0.007).contains(&rate(bad)), "{bad} of {valid}");
    // A fraction of a percent, all from the trust that leaves fields out.
    assert!(
        (0.0005..0.005).contains(&rate(conflicting)),
        "{conflicting} of {valid}"
    );
    let statistics = simulator.statistics();
    assert_eq!(statistics.valid, valid as u64);
    assert_eq!(statistics.duplicates, (duplicates + conflicting) as u64);
    assert_eq!(statistics.conflicting_resends, conflicting as u64);
    assert!(statistics.readmissions > 0 && statistics.deaths_in_hospital > 0);
}

/// Totals per metric name and place after feeding every valid record to
/// one engine.
fn engine_totals(
    publications: &[Publication],
    as_of: Timestamp,
) -> (Engine, BTreeMap<(String, String), i64>) {
    let mut engine = Engine::new(EngineConfig::default());
    for publication in publications {
        if !publication.kind.is_bad() {
            let applied = engine.apply(&publication.event);
            assert_ne!(applied, Applied::BeyondHorizon);
        }
    }
    let mut totals = BTreeMap::new();
    for (key, value) in engine.metrics(as_of) {
        let place = key
            .labels()
            .into_iter()
            .find(|(name, _)| *name == "place")
            .map(|(_, value)| value)
            .unwrap_or_default();
        *totals.entry((key.name().to_owned(), place)).or_insert(0) += value;
    }
    (engine, totals)
}

/// The publications of the events that occurred before `cutoff`. Every
/// partner has published all of those two days after it: the late trust
/// takes longest (up to 20 hours to record, then the next nightly batch).
/// Before that, a local authority's care request can be in while the late
/// trust's admission it links to is not, as with a real late partner.
fn all_in_by(publications: &[Publication], cutoff: Timestamp) -> Vec<Publication> {
    assert!(publications
        .last()
        .is_some_and(|last| last.published_at.as_millis() >= cutoff.as_millis() + 2 * DAY - HOUR));
    publications
        .iter()
        .filter(|publication| publication.event.envelope.occurred_at < cutoff)
        .cloned()
        .collect()
}

#[test]
fn every_place_has_delayed_patients_and_every_event_links_to_a_journey() {
    let days = 28;
    let (simulator, publications) = simulate(config(11), days);
    let cutoff = Timestamp::from_millis(START + (days - 2) * DAY);
    let (_, totals) = engine_totals(&all_in_by(&publications, cutoff), cutoff);
    for place in simulator.places() {
        let place = place.place.as_str().to_owned();
        for metric in [
            "icsflow_flow_not_meeting_criteria_patients",
            "icsflow_flow_delayed_bed_nights",
            "icsflow_flow_discharges",
        ] {
            let value = totals.get(&(metric.to_owned(), place.clone())).copied();
            assert!(value.unwrap_or(0) > 0, "{metric} in {place}: {value:?}");
        }
    }
    let unlinked: i64 = totals
        .iter()
        .filter(|((name, _), _)| name == "icsflow_quality_unlinked_events")
        .map(|(_, value)| value)
        .sum();
    assert_eq!(unlinked, 0);
}

#[test]
fn short_care_capacity_makes_delays_grow() {
    let days = 56;
    let as_of = Timestamp::from_millis(START + days * DAY);
    let waiting = |capacity: f64| {
        let mut config = config(5);
        config.care_capacity = capacity;
        let (_, publications) = simulate(config, days);
        let (_, totals) = engine_totals(&publications, as_of);
        totals
            .iter()
            .filter(|((name, _), _)| name == "icsflow_flow_not_meeting_criteria_patients")
            .map(|(_, value)| *value)
            .sum::<i64>()
    };
    // The default (1.7) against too little: queues for care grow every
    // day, on top of the days it takes to arrange care.
    let (enough, short) = (waiting(1.7), waiting(0.8));
    assert!(
        short * 2 > enough * 3,
        "capacity 1.7: {enough} delayed; 0.8: {short}"
    );
}

/// Two simulated people never share an NHS number: they would share a
/// pseudonym, and two first admissions a spell reference, so the engine
/// would read them as one person's one spell (months long, with delays
/// counted while neither was in hospital).
#[test]
fn every_admission_has_a_spell_reference_of_its_own() {
    // About 9,000 admissions: drawn freely, dozens of numbers in the 999
    // range would repeat.
    let (_, publications) = simulate(config(5), 60);
    let mut references = HashSet::new();
    let mut admissions = 0;
    for publication in &publications {
        if let (PublicationKind::Valid, EventBody::Discharge(DischargeBody::Admitted { .. })) =
            (&publication.kind, publication.event.body)
        {
            admissions += 1;
            let reference = publication.event.envelope.episode_reference;
            assert!(
                references.insert(reference),
                "a second admission under spell reference {reference:?}"
            );
        }
    }
    assert!(admissions > 8_000, "{admissions}");
}

/// Six months as published, applied to an engine that evicts every
/// simulated day (as the join role does as time passes) and to one that
/// keeps every journey: every metric the same at the end. (While two
/// simulated people could share an NHS number, many series differed.)
#[test]
fn evicting_as_time_passes_keeps_every_metric_of_a_long_run() {
    let days = 180;
    let (_, publications) = simulate(config(9), days);
    let mut evicting = Engine::new(EngineConfig::default());
    let mut keeping = Engine::new(EngineConfig::default());
    let mut next_eviction = START + DAY;
    for publication in publications.iter().filter(|p| !p.kind.is_bad()) {
        let at = publication.published_at.as_millis();
        if at >= next_eviction {
            evicting.evict(Timestamp::from_millis(at));
            next_eviction = at + DAY;
        }
        assert_ne!(evicting.apply(&publication.event), Applied::BeyondHorizon);
        keeping.apply(&publication.event);
    }
    assert!(
        evicting.statistics().evicted > 3_000,
        "{:?}",
        evicting.statistics()
    );
    let as_of = Timestamp::from_millis(START + days * DAY);
    let non_zero = |engine: &Engine| -> Vec<_> {
        let mut values = engine.metrics(as_of);
        values.retain(|(_, value)| *value != 0);
        values
    };
    assert_eq!(non_zero(&evicting), non_zero(&keeping));
}

/// What the simulated ICS shows on a winter day, summed over its places.
#[derive(Debug)]
struct Picture {
    in_hospital: i64,
    not_meeting: i64,
    not_meeting_21_days: i64,
    /// Discharges of patients with a DRD in the last 28 days, and the days
    /// from DRD to discharge summed over them.
    delayed_discharges: i64,
    delay_days: i64,
    discharged_on_ready_date: i64,
}

fn picture(publications: &[Publication], as_of: Timestamp) -> Picture {
    let (engine, _) = engine_totals(publications, as_of);
    let mut picture = Picture {
        in_hospital: 0,
        not_meeting: 0,
        not_meeting_21_days: 0,
        delayed_discharges: 0,
        delay_days: 0,
        discharged_on_ready_date: 0,
    };
    for (key, value) in engine.metrics(as_of) {
        let labels = key.labels();
        let label = |name: &str| label_of(&labels, name);
        match key.name() {
            "icsflow_flow_in_hospital_patients" => picture.in_hospital += value,
            "icsflow_flow_not_meeting_criteria_patients" => picture.not_meeting += value,
            "icsflow_flow_not_meeting_criteria_by_stay_patients" if label("stay_days") == "21+" => {
                picture.not_meeting_21_days += value
            }
            "icsflow_flow_discharge_delay_discharges_window" if label("period") == "28d" => {
                picture.delayed_discharges += value;
                if label("delay_days") == "0" {
                    picture.discharged_on_ready_date += value;
                }
            }
            "icsflow_flow_discharge_delay_length_window" if label("period") == "28d" => {
                picture.delay_days += value
            }
            _ => {}
        }
    }
    picture
}

/// The simulated ICS looks like England's discharge figures in winter
/// 2022-23 (docs/simulation.md gives them and their sources): about one
/// occupied general and acute bed in eight to ten held by someone who no
/// longer meets the criteria to reside; nearly half of those in hospital
/// 21 days or more; about 1.3 days on average from the Discharge Ready Date
/// to discharge, most discharged on the day. The bounds are wide enough for
/// one ICS of three places to differ from the national mean as regions do,
/// narrow enough that the figures the demo shows are believable.
#[test]
fn the_simulated_ics_looks_like_englands_winter() {
    // Twelve weeks: the hospitals start empty, and the longest stays take
    // two months to settle.
    let days = 84;
    // Before the morning ward round, as a daily census is taken.
    let as_of = Timestamp::from_millis(START + days * DAY + 7 * DAY / 24);
    for seed in [3, 17] {
        let (_, publications) = simulate(config(seed), days);
        let picture = picture(&publications, as_of);
        let share = picture.not_meeting as f64 / picture.in_hospital as f64;
        let long = picture.not_meeting_21_days as f64 / picture.not_meeting as f64;
        let mean_delay = picture.delay_days as f64 / picture.delayed_discharges as f64;
        let on_the_day =
            picture.discharged_on_ready_date as f64 / picture.delayed_discharges as f64;
        let summary = format!(
            "seed {seed}: {picture:?}; not meeting {share:.3} of beds, {long:.3} of them 21+ days, \
             mean delay {mean_delay:.2} days, {on_the_day:.3} discharged on the DRD"
        );
        println!("{summary}");
        assert!((0.08..=0.16).contains(&share), "{summary}");
        assert!((0.35..=0.60).contains(&long), "{summary}");
        assert!((0.8..=2.5).contains(&mean_delay), "{summary}");
        assert!((0.40..=0.85).contains(&on_the_day), "{summary}");
    }
}

const HOUR: i64 = DAY / 24;

/// What one trust's discharge feed shows on the data-quality measures
/// (docs/data-quality.md), read from what it published and from the
/// engine.
#[derive(Debug, Default)]
struct TrustFigures {
    /// Records by how late they were recorded (`occurred_at` to
    /// `recorded_at`) and arrived (`recorded_at` to `published_at`, when
    /// the demo hands them to ingest on the same simulated clock): under
    /// 1 h, 1 to 24 h, 24 to 48 h, later; the buckets of
    /// `icsflow_ingest_events_by_delay_total`.
    recorded: [usize; 4],
    arrived: [usize; 4],
    /// Assessments not meeting the criteria to reside, and of them those
    /// with a Discharge Ready Date.
    not_meeting_assessments: usize,
    with_ready_date: usize,
    admissions: usize,
    with_bed_type: usize,
    /// Discharges other than deaths, and of them those with a destination.
    discharges: usize,
    with_destination: usize,
    /// Spells discharged alive, and of them those whose pathway was sent
    /// (PATHWAY_ASSIGNED) as well as on the discharge.
    discharged_spells: usize,
    with_pathway_assigned: usize,
    /// Spells still in hospital the morning after their Discharge Ready
    /// Date (assessed as not meeting the criteria on two days or more),
    /// and of them those with a delay reason.
    delayed_spells: usize,
    with_delay_reason: usize,
    conflicting_resends: usize,
    /// The engine's metric 6 at the end: patients not meeting the criteria
    /// to reside, and of them those with no delay reason recorded.
    not_meeting: i64,
    without_delay_reason: i64,
}

impl TrustFigures {
    fn records(&self) -> usize {
        self.recorded.iter().sum()
    }

    fn recorded_within_the_hour(&self) -> f64 {
        self.recorded[0] as f64 / self.records() as f64
    }

    fn arrived_within_the_hour(&self) -> f64 {
        self.arrived[0] as f64 / self.records() as f64
    }

    /// Metric 6: the share of patients not meeting the criteria with a
    /// delay reason, what the place dashboard shows per trust.
    fn delay_reasons_now(&self) -> f64 {
        1.0 - self.without_delay_reason as f64 / self.not_meeting as f64
    }

    fn delay_reasons(&self) -> f64 {
        self.with_delay_reason as f64 / self.delayed_spells as f64
    }

    fn ready_dates(&self) -> f64 {
        self.with_ready_date as f64 / self.not_meeting_assessments as f64
    }

    fn bed_types(&self) -> f64 {
        self.with_bed_type as f64 / self.admissions as f64
    }

    fn destinations(&self) -> f64 {
        self.with_destination as f64 / self.discharges as f64
    }

    fn pathways_assigned(&self) -> f64 {
        self.with_pathway_assigned as f64 / self.discharged_spells as f64
    }

    fn conflicting_resends_per_1000(&self) -> f64 {
        1000.0 * self.conflicting_resends as f64 / self.records() as f64
    }

    fn summary(&self) -> String {
        let share = |counts: &[usize; 4]| {
            counts
                .map(|count| format!("{:.3}", count as f64 / self.records() as f64))
                .join("/")
        };
        format!(
            "{} records; recorded {} and arrived {} (under 1 h/1-24 h/24-48 h/later); \
             delay reasons {:.3} of {} delayed spells, {:.3} of {} not meeting the criteria now; \
             ready dates {:.3}; bed types {:.3}; destinations {:.3}; pathways assigned {:.3}; \
             conflicting re-sends {:.1} per 1,000",
            self.records(),
            share(&self.recorded),
            share(&self.arrived),
            self.delay_reasons(),
            self.delayed_spells,
            self.delay_reasons_now(),
            self.not_meeting,
            self.ready_dates(),
            self.bed_types(),
            self.destinations(),
            self.pathways_assigned(),
            self.conflicting_resends_per_1000(),
        )
    }
}

fn lateness(millis: i64) -> usize {
    [HOUR, DAY, 2 * DAY]
        .into_iter()
        .take_while(|limit| millis >= *limit)
        .count()
}

/// Each trust's figures over `publications`, and the engine's delay
/// reasons as of `as_of`.
fn trust_figures(
    publications: &[Publication],
    as_of: Timestamp,
) -> BTreeMap<OdsCode, TrustFigures> {
    let mut figures: BTreeMap<OdsCode, TrustFigures> = BTreeMap::new();
    let mut first_versions: HashMap<EventId, icsflow_core::Event> = HashMap::new();
    let mut pathway_assigned: HashSet<Pseudonym> = HashSet::new();
    let mut discharged: HashMap<Pseudonym, OdsCode> = HashMap::new();
    // By spell: its trust, the first and last days it was assessed as not
    // meeting the criteria, and whether it has a delay reason.
    let mut not_meeting_days: HashMap<Pseudonym, (OdsCode, i64, i64)> = HashMap::new();
    let mut delay_reason: HashSet<Pseudonym> = HashSet::new();
    for publication in publications {
        let event = publication.event;
        let envelope = event.envelope;
        let EventBody::Discharge(body) = event.body else {
            continue;
        };
        let trust = figures.entry(envelope.source_organisation).or_default();
        match publication.kind {
            PublicationKind::Valid => {
                first_versions.insert(envelope.event_id, event);
            }
            PublicationKind::Duplicate => {
                if first_versions.get(&envelope.event_id) != Some(&event) {
                    trust.conflicting_resends += 1;
                }
                continue;
            }
            _ => continue,
        }
        let occurred_at = envelope.occurred_at.as_millis();
        let recorded_at = envelope.recorded_at.as_millis();
        trust.recorded[lateness(recorded_at - occurred_at)] += 1;
        trust.arrived[lateness(publication.published_at.as_millis() - recorded_at)] += 1;
        let spell = envelope
            .episode_reference
            .expect("a trust's spell reference");
        match body {
            DischargeBody::CriteriaToResideAssessed(CriteriaToReside::DoesNotMeet {
                discharge_ready_date,
            }) => {
                trust.not_meeting_assessments += 1;
                trust.with_ready_date += usize::from(discharge_ready_date.is_some());
                let day = occurred_at.div_euclid(DAY);
                let days = not_meeting_days.entry(spell).or_insert((
                    envelope.source_organisation,
                    day,
                    day,
                ));
                days.1 = days.1.min(day);
                days.2 = days.2.max(day);
            }
            DischargeBody::DelayReasonRecorded { .. } => {
                delay_reason.insert(spell);
            }
            DischargeBody::Admitted { bed_type, .. } => {
                trust.admissions += 1;
                trust.with_bed_type += usize::from(bed_type.is_some());
            }
            DischargeBody::Discharged { destination, .. }
                if destination != DischargeDestination::Died =>
            {
                trust.discharges += 1;
                trust.with_destination +=
                    usize::from(destination != DischargeDestination::NotKnown);
                discharged.insert(spell, envelope.source_organisation);
            }
            DischargeBody::PathwayAssigned { .. } => {
                pathway_assigned.insert(spell);
            }
            _ => {}
        }
    }
    for (spell, (trust, first, last)) in not_meeting_days {
        if last > first {
            let trust = figures.entry(trust).or_default();
            trust.delayed_spells += 1;
            trust.with_delay_reason += usize::from(delay_reason.contains(&spell));
        }
    }
    for (spell, trust) in discharged {
        let trust = figures.entry(trust).or_default();
        trust.discharged_spells += 1;
        trust.with_pathway_assigned += usize::from(pathway_assigned.contains(&spell));
    }
    let (engine, _) = engine_totals(publications, as_of);
    for (key, value) in engine.metrics(as_of) {
        if key.name() != "icsflow_flow_delayed_by_reason_patients" {
            continue;
        }
        let labels = key.labels();
        let label = |name: &str| label_of(&labels, name);
        let provider = OdsCode::parse("provider", &label("provider")).expect("a trust's code");
        let trust = figures.entry(provider).or_default();
        trust.not_meeting += value;
        if label("reason_family") == "not_recorded" {
            trust.without_delay_reason += value;
        }
    }
    figures
}

/// The simulated trusts differ as docs/simulation.md says ("Partners of
/// different quality"), and the difference shows on what the data-quality
/// measures read: the second place's trust records and publishes late,
/// the third's leaves fields out (and re-sends some records with them
/// filled in), the first's does neither; each only in its own way.
#[test]
fn the_late_trust_and_the_incomplete_trust_stand_out_on_data_quality() {
    let days = 28;
    let (simulator, publications) = simulate(config(13), days);
    let places = simulator.places();
    assert_eq!(
        places
            .iter()
            .map(|place| place.trust_quality)
            .collect::<Vec<_>>(),
        [
            RecordingQuality::GOOD,
            RecordingQuality::LATE,
            RecordingQuality::INCOMPLETE
        ]
    );
    assert!(matches!(
        RecordingQuality::LATE.publishing,
        Publishing::Batches { .. }
    ));
    // What every partner had published two days later, read before the
    // ward round as the national-shape test reads the engine.
    let cutoff = Timestamp::from_millis(START + (days - 2) * DAY);
    let as_of = Timestamp::from_millis(cutoff.as_millis() + 7 * HOUR);
    let mut figures = trust_figures(&all_in_by(&publications, cutoff), as_of);
    let mut trust = |index: usize| {
        let code = places[index].trust;
        let trust = figures.remove(&code).expect("figures for every trust");
        println!("{} ({code}): {}", places[index].name, trust.summary());
        trust
    };
    let (good, late, incomplete) = (trust(0), trust(1), trust(2));

    // Timeliness: the late trust records hours after the event and
    // publishes nightly; the others within minutes.
    for prompt in [&good, &incomplete] {
        assert!(
            prompt.recorded_within_the_hour() > 0.99,
            "{}",
            prompt.summary()
        );
        assert!(
            prompt.arrived_within_the_hour() > 0.99,
            "{}",
            prompt.summary()
        );
    }
    assert!(late.recorded_within_the_hour() < 0.01, "{}", late.summary());
    assert!(late.arrived_within_the_hour() < 0.10, "{}", late.summary());

    // Completeness: the incomplete trust leaves out what the others give.
    for complete in [&good, &late] {
        assert!(complete.delay_reasons() > 0.95, "{}", complete.summary());
        assert!(complete.delay_reasons_now() > 0.9, "{}", complete.summary());
        assert_eq!(complete.ready_dates(), 1.0, "{}", complete.summary());
        assert!(complete.bed_types() > 0.9, "{}", complete.summary());
        assert_eq!(complete.destinations(), 1.0, "{}", complete.summary());
        assert!(
            complete.pathways_assigned() > 0.95,
            "{}",
            complete.summary()
        );
        assert_eq!(complete.conflicting_resends, 0, "{}", complete.summary());
    }
    assert!(incomplete.delay_reasons() < 0.5, "{}", incomplete.summary());
    assert!(
        incomplete.delay_reasons_now() < 0.6,
        "{}",
        incomplete.summary()
    );
    assert!(incomplete.ready_dates() < 0.6, "{}", incomplete.summary());
    assert!(incomplete.bed_types() < 0.5, "{}", incomplete.summary());
    assert!(incomplete.destinations() < 0.9, "{}", incomplete.summary());
    assert!(
        incomplete.pathways_assigned() < 0.3,
        "{}",
        incomplete.summary()
    );
    assert!(
        (1.0..10.0).contains(&incomplete.conflicting_resends_per_1000()),
        "{}",
        incomplete.summary()
    );
}

/// The value of the label `name` among a series' `labels`, empty when it
/// has none.
fn label_of(labels: &[(&'static str, String)], name: &str) -> String {
    labels
        .iter()
        .find(|(label, _)| *label == name)
        .map(|(_, value)| value.clone())
        .unwrap_or_default()
}
