//! Metrics 13 and 14 (`docs/metrics.md`): the completeness of the facts
//! the measures depend on, and the events that amend others, per partner.

use expect_test::{expect, Expect};
use icsflow_core::*;

use crate::{engine_with, instant, patient, render, Events};

/// The quality series (metrics 13 and 14) as of `as_of`, current values
/// and the 7-day twins.
fn quality(events: &[Event], as_of: &str) -> String {
    let readings: Vec<_> = engine_with(events)
        .metrics(instant(as_of))
        .into_iter()
        .filter(|(key, _)| {
            key.name().starts_with("icsflow_quality_completeness")
                || key.name().starts_with("icsflow_quality_amended")
        })
        .filter(|(key, _)| key.totalled().is_none_or(|window| window.as_str() == "7d"))
        .collect();
    render(&readings)
}

fn check(events: &Events, as_of: &str, expected: Expect) {
    expected.assert_eq(&quality(&events.events, as_of));
}

/// A delay with no DRD given, no reason and no pathway before it ended, in
/// a bed of unknown type, discharged to a destination not known; against
/// a second patient whose trust recorded all of them. Each record counts
/// on the day it belongs to: the admissions on the 1st, the periods on
/// their first days, the discharges on theirs.
#[test]
fn each_measure_critical_field_counts_as_recorded_or_not_on_its_day() {
    let mut events = Events::default();
    let (bare, full) = (patient(1), patient(2));
    events.admitted(bare, "2026-01-01 09:00", 80);
    events.not_meeting(bare, "2026-01-04 10:00", None);
    // A pathway assigned on the day of discharge, after the delay ended:
    // too late for the measures that showed the patient unassigned.
    events.pathway(bare, "2026-01-08 09:00", DischargePathway::P1);
    events.discharged(
        bare,
        "2026-01-08 15:00",
        DischargeDestination::NotKnown,
        DischargePathway::P1,
    );
    events.admitted_to(full, "2026-01-01 09:00", 80, Some(BedType::GeneralAndAcute));
    events.reason(full, "2026-01-02 09:00", DelayReasonFamily::HospitalProcess);
    events.not_meeting(full, "2026-01-04 10:00", Some("2026-01-03"));
    events.pathway(full, "2026-01-05 11:00", DischargePathway::P1);
    events.discharged(
        full,
        "2026-01-08 15:00",
        DischargeDestination::UsualPlaceOfResidence,
        DischargePathway::P1,
    );
    check(
        &events,
        "2026-01-09 12:00",
        expect![[r#"
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="discharge_ready_date",recorded="no"} 1
            icsflow_quality_completeness_records_window{feed="discharge",organisation="RVW",field="discharge_ready_date",recorded="no",period="7d"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="discharge_ready_date",recorded="yes"} 1
            icsflow_quality_completeness_records_window{feed="discharge",organisation="RVW",field="discharge_ready_date",recorded="yes",period="7d"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="delay_reason",recorded="no"} 1
            icsflow_quality_completeness_records_window{feed="discharge",organisation="RVW",field="delay_reason",recorded="no",period="7d"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="delay_reason",recorded="yes"} 1
            icsflow_quality_completeness_records_window{feed="discharge",organisation="RVW",field="delay_reason",recorded="yes",period="7d"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="pathway",recorded="no"} 1
            icsflow_quality_completeness_records_window{feed="discharge",organisation="RVW",field="pathway",recorded="no",period="7d"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="pathway",recorded="yes"} 1
            icsflow_quality_completeness_records_window{feed="discharge",organisation="RVW",field="pathway",recorded="yes",period="7d"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="destination",recorded="no"} 1
            icsflow_quality_completeness_records_window{feed="discharge",organisation="RVW",field="destination",recorded="no",period="7d"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="destination",recorded="yes"} 1
            icsflow_quality_completeness_records_window{feed="discharge",organisation="RVW",field="destination",recorded="yes",period="7d"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="bed_type",recorded="no"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="bed_type",recorded="yes"} 1
        "#]],
    );
}

/// A patient discharged on their DRD had no delay: the DRD counts, the
/// delay reason and pathway do not. Out of the sitrep's scope (a
/// maternity bed) no period counts, while the admission's bed type and the
/// discharge's destination still do.
#[test]
fn only_delays_ask_for_a_reason_and_only_sitrep_patients_for_a_drd() {
    let mut events = Events::default();
    let (same_day, maternity) = (patient(1), patient(2));
    events.admitted(same_day, "2026-01-01 09:00", 80);
    events.not_meeting(same_day, "2026-01-03 10:00", Some("2026-01-03"));
    events.discharged(
        same_day,
        "2026-01-03 16:00",
        DischargeDestination::UsualPlaceOfResidence,
        DischargePathway::P0,
    );
    events.admitted_to(maternity, "2026-01-01 09:00", 30, Some(BedType::Maternity));
    events.not_meeting(maternity, "2026-01-02 10:00", None);
    check(
        &events,
        "2026-01-05 12:00",
        expect![[r#"
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="discharge_ready_date",recorded="yes"} 1
            icsflow_quality_completeness_records_window{feed="discharge",organisation="RVW",field="discharge_ready_date",recorded="yes",period="7d"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="destination",recorded="yes"} 1
            icsflow_quality_completeness_records_window{feed="discharge",organisation="RVW",field="destination",recorded="yes",period="7d"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="bed_type",recorded="no"} 1
            icsflow_quality_completeness_records_window{feed="discharge",organisation="RVW",field="bed_type",recorded="no",period="7d"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="bed_type",recorded="yes"} 1
            icsflow_quality_completeness_records_window{feed="discharge",organisation="RVW",field="bed_type",recorded="yes",period="7d"} 1
        "#]],
    );
}

/// An open delay's reason counts whenever it arrives, and a correction
/// that adds the missing DRD turns the same day's `no` into a `yes`
/// (restated, not added).
#[test]
fn a_late_reason_or_a_correction_restates_the_record() {
    let mut events = Events::default();
    let who = patient(1);
    events.admitted(who, "2026-01-01 09:00", 80);
    let assessment = events.not_meeting(who, "2026-01-04 10:00", None);
    let before = quality(&events.events, "2026-01-06 12:00");
    assert!(
        before.contains(r#"field="delay_reason",recorded="no"} 1"#)
            && before.contains(r#"field="discharge_ready_date",recorded="no"} 1"#),
        "{before}"
    );
    events.reason(who, "2026-01-06 09:00", DelayReasonFamily::Wellbeing);
    events.not_meeting(who, "2026-01-06 10:00", Some("2026-01-04"));
    events.correcting(assessment);
    let after = quality(&events.events, "2026-01-06 12:00");
    assert!(
        after.contains(r#"field="delay_reason",recorded="yes"} 1"#)
            && after.contains(r#"field="discharge_ready_date",recorded="yes"} 1"#),
        "{after}"
    );
    assert!(
        !after.contains(r#"field="delay_reason",recorded="no""#)
            && !after.contains(r#"field="discharge_ready_date",recorded="no""#),
        "{after}"
    );
    assert!(
        after.contains(r#"icsflow_quality_amended_events{feed="discharge",organisation="RVW",amendment="correction"} 1"#),
        "{after}"
    );
}

/// A social care start of a person with a counted spell is linked; one of
/// a person the trusts never sent is not (by the local authority).
#[test]
fn care_starts_count_as_linked_to_a_spell_or_not() {
    let mut events = Events::default();
    let (known, unknown) = (patient(1), patient(2));
    events.admitted(known, "2026-01-01 09:00", 80);
    events.service_started(
        known,
        "2026-01-03 10:00",
        ServiceType::ShortTermStMax,
        ServiceComponent::HomeCare,
    );
    events.service_started(
        unknown,
        "2026-01-03 11:00",
        ServiceType::LongTermCommunity,
        ServiceComponent::HomeCare,
    );
    let text = quality(&events.events, "2026-01-05 12:00");
    for line in [
        r#"icsflow_quality_completeness_records{feed="social_care",organisation="702",field="linked_spell",recorded="yes"} 1"#,
        r#"icsflow_quality_completeness_records{feed="social_care",organisation="702",field="linked_spell",recorded="no"} 1"#,
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
}

/// Three versions of one event id count 2 conflicting re-sends, on the day
/// of the version that stands, in any order of arrival; a version read
/// again counts nothing, and an identical duplicate is no re-send.
#[test]
fn conflicting_resends_count_distinct_versions_whatever_their_order() {
    let mut events = Events::default();
    let who = patient(1);
    events.admitted(who, "2026-01-01 09:00", 80);
    // Not meeting the criteria from the 3rd: metric 1 shows the pathway.
    events.not_meeting(who, "2026-01-03 09:00", Some("2026-01-03"));
    events.pathway(who, "2026-01-02 09:00", DischargePathway::P1);
    let first = *events.events.last().expect("the pathway");
    let version = |pathway, hours: i64| {
        let mut version = first;
        version.body = EventBody::Discharge(DischargeBody::PathwayAssigned { pathway });
        version.envelope.recorded_at =
            Timestamp::from_millis(first.envelope.recorded_at.as_millis() + hours * 3_600_000);
        version
    };
    let (second, third) = (
        version(DischargePathway::P2, 1),
        version(DischargePathway::P3, 2),
    );
    let expected = r#"icsflow_quality_amended_events{feed="discharge",organisation="RVW",amendment="conflicting_resend"} 2"#;
    let (admitted, assessed) = (events.events[0], events.events[1]);
    for order in [
        vec![admitted, assessed, first, second, third],
        vec![admitted, assessed, third, second, first],
        vec![
            admitted, assessed, second, third, first, second, first, third, first,
        ],
    ] {
        let text = quality(&order, "2026-01-05 12:00");
        assert!(text.contains(expected), "{order:?}\n{text}");
        // The version recorded last stands: the pathway is P3 whatever
        // the order.
        let metrics = crate::metrics_text(&order, "2026-01-05 12:00");
        assert!(
            metrics.contains("icsflow_flow_not_meeting_criteria_patients{place=\"E06000047\",provider=\"RVW\",pathway=\"P3\"} 1")
                && !metrics.contains("pathway=\"P1\"")
                && !metrics.contains("pathway=\"P2\""),
            "{metrics}"
        );
    }
    let text = quality(
        &[admitted, assessed, first, first, first],
        "2026-01-05 12:00",
    );
    assert!(!text.contains("conflicting_resend"), "{text}");
}

/// A record sent again with only a new `recorded_at` (an extract that
/// stamps every record) says nothing new: no conflicting re-send, and
/// nothing kept, so however often it comes the journey does not fill.
#[test]
fn a_record_restamped_with_the_same_facts_is_no_conflict() {
    let mut events = Events::default();
    let who = patient(1);
    events.admitted(who, "2026-01-01 09:00", 80);
    let admitted = events.events[0];
    let mut engine = icsflow_engine::Engine::new(icsflow_engine::EngineConfig::default());
    engine.apply(&admitted);
    for hour in 1..=(icsflow_engine::JOURNEY_EVENT_LIMIT as i64 * 2) {
        let mut again = admitted;
        again.envelope.recorded_at =
            Timestamp::from_millis(admitted.envelope.recorded_at.as_millis() + hour * 3_600_000);
        engine.apply(&again);
    }
    assert_eq!(
        engine.statistics().journey_full,
        0,
        "{:?}",
        engine.statistics()
    );
    let text = crate::render(&engine.metrics(instant("2026-01-05 12:00")));
    assert!(!text.contains("icsflow_quality_amended_events"), "{text}");
}

/// One id sent in ever more versions counts at most
/// `EVENT_VERSION_LIMIT - 1` re-sends, in any order, and keeps no more.
#[test]
fn the_versions_of_one_id_count_up_to_their_limit_in_any_order() {
    let mut events = Events::default();
    let who = patient(1);
    events.admitted(who, "2026-01-01 09:00", 80);
    events.pathway(who, "2026-01-02 09:00", DischargePathway::P1);
    let (admitted, first) = (events.events[0], events.events[1]);
    // Twenty versions, each a minute later and recorded an hour later.
    let versions: Vec<Event> = (0..20_i64)
        .map(|step| {
            let mut version = first;
            version.envelope.occurred_at =
                Timestamp::from_millis(first.envelope.occurred_at.as_millis() + step * 60_000);
            version.envelope.recorded_at =
                Timestamp::from_millis(first.envelope.recorded_at.as_millis() + step * 3_600_000);
            version
        })
        .collect();
    let limit = icsflow_engine::EVENT_VERSION_LIMIT as i64 - 1;
    let expected = format!(
        r#"icsflow_quality_amended_events{{feed="discharge",organisation="RVW",amendment="conflicting_resend"}} {limit}"#
    );
    let forwards: Vec<Event> = std::iter::once(admitted)
        .chain(versions.iter().copied())
        .collect();
    let backwards: Vec<Event> = std::iter::once(admitted)
        .chain(versions.iter().rev().copied())
        .collect();
    let twice: Vec<Event> = forwards.iter().chain(&versions).copied().collect();
    for order in [forwards, backwards, twice] {
        let text = quality(&order, "2026-01-05 12:00");
        assert!(text.contains(&expected), "{expected} missing from\n{text}");
    }
}
