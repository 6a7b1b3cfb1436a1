//! The simulator: deterministic, shaped like the national figures, and
//! what it publishes is what the engine can link into journeys.

use std::collections::{BTreeMap, HashSet};

use icsflow_core::{DischargeBody, DischargePathway, EventBody, Timestamp};
use icsflow_engine::{Applied, Engine, EngineConfig};
use icsflow_partner::{Publication, PublicationKind, SimulationConfig, Simulator};

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
    let mut seen = HashSet::new();
    let (mut duplicates, mut bad, mut valid) = (0, 0, 0);
    for publication in &publications {
        match &publication.kind {
            PublicationKind::Valid => {
                valid += 1;
                assert!(seen.insert(publication.event.envelope.event_id));
                if let EventBody::Discharge(DischargeBody::Discharged { pathway, .. }) =
                    publication.event.body
                {
                    *pathways.entry(pathway).or_default() += 1;
                }
            }
            PublicationKind::Duplicate => {
                duplicates += 1;
                assert!(seen.contains(&publication.event.envelope.event_id));
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
    assert!(
        (0.007..0.013).contains(&rate(duplicates)),
        "{duplicates} of {valid}"
    );
    assert!((0.003..0.007).contains(&rate(bad)), "{bad} of {valid}");
    let statistics = simulator.statistics();
    assert_eq!(statistics.valid, valid as u64);
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

#[test]
fn every_place_has_delayed_patients_and_every_event_links_to_a_journey() {
    let days = 28;
    let (simulator, publications) = simulate(config(11), days);
    let (_, totals) = engine_totals(&publications, Timestamp::from_millis(START + days * DAY));
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
        let label = |name: &str| {
            labels
                .iter()
                .find(|(label, _)| *label == name)
                .map(|(_, value)| value.clone())
                .unwrap_or_default()
        };
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
