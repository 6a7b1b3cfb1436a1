//! Journeys with hand-checked metric values, including the edge cases of
//! the national definitions. Each expectation was read and checked by hand
//! against docs/metrics.md, not only recorded.

use expect_test::{expect, Expect};
use icsflow_core::{
    BedType, ContactAttendance, DelayReasonFamily, DischargeDestination, DischargePathway,
    ServiceComponent, ServiceEndReason, ServiceType,
};

use crate::{metrics_text, patient, window_text, Events};

fn check(events: &Events, as_of: &str, expected: Expect) {
    expected.assert_eq(&metrics_text(&events.events, as_of));
}

#[test]
fn patient_past_their_ready_date_is_counted_with_stay_band_and_bed_days() {
    let mut events = Events::default();
    let who = patient(1);
    events.admitted(who, "2026-01-01 09:00", 80);
    events.not_meeting(who, "2026-01-05 10:00", Some("2026-01-05"));
    events.pathway(who, "2026-01-05 11:00", DischargePathway::P1);
    events.reason(who, "2026-01-07 09:00", DelayReasonFamily::Capacity);
    // As of noon on 10 January: admitted 9 days before (band 7-13); ready
    // since the 5th, so the midnights that began the 6th, 7th, 8th, 9th and
    // 10th are 5 delayed bed days. The reason was recorded at 09:00 on the
    // 7th, after two of those midnights (not_recorded 2, capacity 3).
    check(
        &events,
        "2026-01-10 12:00",
        expect![[r#"
            icsflow_flow_not_meeting_criteria_patients{place="E06000047",provider="RVW",pathway="P1"} 1
            icsflow_flow_not_meeting_criteria_by_stay_patients{place="E06000047",provider="RVW",pathway="P1",stay_days="7-13"} 1
            icsflow_flow_delayed_bed_nights{place="E06000047",provider="RVW",pathway="P1",reason_family="not_recorded"} 2
            icsflow_flow_delayed_bed_nights{place="E06000047",provider="RVW",pathway="P1",reason_family="capacity"} 3
            icsflow_flow_delayed_by_reason_patients{place="E06000047",provider="RVW",reason_family="capacity"} 1
            icsflow_flow_not_meeting_criteria_by_delay_patients{place="E06000047",provider="RVW",pathway="P1",reason_family="capacity",delay_days="4-6"} 1
            icsflow_flow_waiting_for_care_patients{place="E06000047",pathway="P1"} 1
            icsflow_flow_waiting_for_care_by_delay_patients{place="E06000047",pathway="P1",delay_days="4-6"} 1
            icsflow_flow_in_hospital_patients{place="E06000047",provider="RVW"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="discharge_ready_date",recorded="yes"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="delay_reason",recorded="yes"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="pathway",recorded="yes"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="bed_type",recorded="no"} 1
        "#]],
    );
}

#[test]
fn discharge_on_the_ready_date_is_a_zero_day_delay() {
    let mut events = Events::default();
    let who = patient(1);
    events.admitted(who, "2026-01-01 09:00", 70);
    events.not_meeting(who, "2026-01-05 08:00", None);
    events.pathway(who, "2026-01-05 09:00", DischargePathway::P0);
    events.discharged(
        who,
        "2026-01-05 17:00",
        DischargeDestination::UsualPlaceOfResidence,
        DischargePathway::P0,
    );
    // No bed day (no midnight passed), no longer in hospital, one discharge
    // in band "0" with 0 delay days; P0 waits for no care; the GP windows
    // are open (pending).
    check(
        &events,
        "2026-01-06 12:00",
        expect![[r#"
            icsflow_flow_discharge_delay_discharges{place="E06000047",provider="RVW",pathway="P0",delay_days="0"} 1
            icsflow_flow_discharges{place="E06000047",provider="RVW",pathway="P0",destination="usual_residence"} 1
            icsflow_flow_gp_follow_up_discharges{place="E06000047",window="7d",outcome="pending"} 1
            icsflow_flow_gp_follow_up_discharges{place="E06000047",window="14d",outcome="pending"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="discharge_ready_date",recorded="no"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="destination",recorded="yes"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="bed_type",recorded="no"} 1
        "#]],
    );
}

#[test]
fn regaining_the_criteria_restarts_the_ready_date() {
    let mut events = Events::default();
    let who = patient(1);
    events.admitted(who, "2026-01-01 09:00", 70);
    events.not_meeting(who, "2026-01-03 10:00", Some("2026-01-03"));
    events.meeting(who, "2026-01-06 10:00");
    events.not_meeting(who, "2026-01-08 10:00", Some("2026-01-08"));
    events.pathway(who, "2026-01-08 11:00", DischargePathway::P1);
    events.discharged(
        who,
        "2026-01-11 15:00",
        DischargeDestination::UsualPlaceOfResidence,
        DischargePathway::P1,
    );
    // Delay is from the latest DRD (8th) to discharge (11th): 3 days, band
    // 2-3. Bed days: 3 midnights in the first period (4th, 5th, 6th... the
    // period ends on the 6th: midnights beginning the 4th, 5th, 6th) and 3
    // in the second (9th, 10th, 11th) = 6.
    check(
        &events,
        "2026-01-12 12:00",
        expect![[r#"
            icsflow_flow_delayed_bed_nights{place="E06000047",provider="RVW",pathway="P1",reason_family="not_recorded"} 6
            icsflow_flow_discharge_delay_discharges{place="E06000047",provider="RVW",pathway="P1",delay_days="2-3"} 1
            icsflow_flow_discharge_delay_length{place="E06000047",provider="RVW",pathway="P1"} 3
            icsflow_flow_discharges{place="E06000047",provider="RVW",pathway="P1",destination="usual_residence"} 1
            icsflow_flow_waiting_for_care_patients{place="E06000047",pathway="P1"} 1
            icsflow_flow_waiting_for_care_by_delay_patients{place="E06000047",pathway="P1",delay_days="4-6"} 1
            icsflow_flow_gp_follow_up_discharges{place="E06000047",window="7d",outcome="pending"} 1
            icsflow_flow_gp_follow_up_discharges{place="E06000047",window="14d",outcome="pending"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="discharge_ready_date",recorded="yes"} 2
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="delay_reason",recorded="no"} 2
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="pathway",recorded="no"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="pathway",recorded="yes"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="destination",recorded="yes"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="bed_type",recorded="no"} 1
        "#]],
    );
}

#[test]
fn emergency_readmission_on_day_29_counts_and_day_30_does_not() {
    let mut events = Events::default();
    for (who, readmitted_on) in [
        (patient(1), "2026-01-30 10:00"),
        (patient(2), "2026-01-31 10:00"),
    ] {
        events.admitted(who, "2025-12-20 09:00", 70);
        events.discharged(
            who,
            "2026-01-01 15:00",
            DischargeDestination::UsualPlaceOfResidence,
            DischargePathway::P0,
        );
        events.admitted(who.spell(2), readmitted_on, 70);
    }
    // An elective admission inside the window is not a readmission.
    let third = patient(3);
    events.admitted(third, "2025-12-20 09:00", 70);
    events.discharged(
        third,
        "2026-01-01 15:00",
        DischargeDestination::UsualPlaceOfResidence,
        DischargePathway::P0,
    );
    events.elective(third.spell(2), "2026-01-10 10:00");
    check(
        &events,
        "2026-02-05 12:00",
        expect![[r#"
            icsflow_flow_discharges{place="E06000047",provider="RVW",pathway="P0",destination="usual_residence"} 3
            icsflow_flow_emergency_readmissions{place="E06000047",provider="RVW"} 1
            icsflow_flow_gp_follow_up_discharges{place="E06000047",window="7d",outcome="not_attended"} 3
            icsflow_flow_gp_follow_up_discharges{place="E06000047",window="14d",outcome="not_attended"} 3
            icsflow_flow_in_hospital_patients{place="E06000047",provider="RVW"} 3
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="destination",recorded="yes"} 3
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="bed_type",recorded="no"} 5
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="bed_type",recorded="yes"} 1
        "#]],
    );
}

#[test]
fn reablement_window_runs_from_three_days_before_discharge() {
    let mut events = Events::default();
    for (who, reablement_on) in [
        (patient(1), "2026-01-07 10:00"),
        (patient(2), "2026-01-06 10:00"),
    ] {
        events.admitted(who, "2026-01-01 09:00", 81);
        events.discharged(
            who,
            "2026-01-10 15:00",
            DischargeDestination::UsualPlaceOfResidence,
            DischargePathway::P1,
        );
        events.service_started(
            who,
            reablement_on,
            ServiceType::ShortTermStMax,
            ServiceComponent::Reablement,
        );
    }
    // Patient 1 started 3 days before discharge (in the window), patient 2
    // 4 days before (out). Day 91 after 10 January is 11 April.
    check(
        &events,
        "2026-04-10 12:00",
        expect![[r#"
            icsflow_flow_discharges{place="E06000047",provider="RVW",pathway="P1",destination="usual_residence"} 2
            icsflow_flow_gp_follow_up_discharges{place="E06000047",window="7d",outcome="not_attended"} 2
            icsflow_flow_gp_follow_up_discharges{place="E06000047",window="14d",outcome="not_attended"} 2
            icsflow_flow_reablement_91_day_people{place="E06000047",outcome="pending"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="destination",recorded="yes"} 2
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="bed_type",recorded="no"} 2
            icsflow_quality_completeness_records{feed="social_care",organisation="702",field="linked_spell",recorded="yes"} 2
        "#]],
    );
    check(
        &events,
        "2026-04-11 12:00",
        expect![[r#"
            icsflow_flow_discharges{place="E06000047",provider="RVW",pathway="P1",destination="usual_residence"} 2
            icsflow_flow_gp_follow_up_discharges{place="E06000047",window="7d",outcome="not_attended"} 2
            icsflow_flow_gp_follow_up_discharges{place="E06000047",window="14d",outcome="not_attended"} 2
            icsflow_flow_reablement_91_day_people{place="E06000047",outcome="at_home"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="destination",recorded="yes"} 2
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="bed_type",recorded="no"} 2
            icsflow_quality_completeness_records{feed="social_care",organisation="702",field="linked_spell",recorded="yes"} 2
        "#]],
    );
}

#[test]
fn reablement_outcomes_at_day_91() {
    let mut events = Events::default();
    let outcomes = [patient(1), patient(2), patient(3), patient(4)];
    for who in outcomes {
        events.admitted(who, "2026-01-01 09:00", 75);
        events.discharged(
            who,
            "2026-01-10 15:00",
            DischargeDestination::UsualPlaceOfResidence,
            DischargePathway::P1,
        );
        events.service_started(
            who,
            "2026-01-11 10:00",
            ServiceType::ShortTermStMax,
            ServiceComponent::Reablement,
        );
    }
    events.death(patient(2), "2026-03-02 10:00", "2026-03-01");
    events.service_ended(
        patient(3),
        "2026-02-20 10:00",
        ServiceEndReason::MovedToResidentialOrNursing,
    );
    events.admitted(patient(4).spell(2), "2026-04-05 10:00", 75);
    check(
        &events,
        "2026-04-12 12:00",
        expect![[r#"
            icsflow_flow_discharges{place="E06000047",provider="RVW",pathway="P1",destination="usual_residence"} 4
            icsflow_flow_gp_follow_up_discharges{place="E06000047",window="7d",outcome="not_attended"} 4
            icsflow_flow_gp_follow_up_discharges{place="E06000047",window="14d",outcome="not_attended"} 4
            icsflow_flow_reablement_91_day_people{place="E06000047",outcome="at_home"} 1
            icsflow_flow_reablement_91_day_people{place="E06000047",outcome="readmitted"} 1
            icsflow_flow_reablement_91_day_people{place="E06000047",outcome="care_home"} 1
            icsflow_flow_reablement_91_day_people{place="E06000047",outcome="died"} 1
            icsflow_flow_in_hospital_patients{place="E06000047",provider="RVW"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="destination",recorded="yes"} 4
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="bed_type",recorded="no"} 5
            icsflow_quality_completeness_records{feed="social_care",organisation="702",field="linked_spell",recorded="yes"} 4
        "#]],
    );
}

#[test]
fn cancelled_discharge_returns_the_patient_to_hospital() {
    let mut events = Events::default();
    let who = patient(1);
    events.admitted(who, "2026-01-01 09:00", 70);
    events.not_meeting(who, "2026-01-04 10:00", Some("2026-01-04"));
    events.pathway(who, "2026-01-04 11:00", DischargePathway::P2);
    events.discharged(
        who,
        "2026-01-06 15:00",
        DischargeDestination::UsualPlaceOfResidence,
        DischargePathway::P2,
    );
    let discharged = metrics_text(&events.events, "2026-01-08 12:00");
    assert!(
        discharged.contains("icsflow_flow_discharges{"),
        "{discharged}"
    );
    events.discharge_feed(
        who,
        "2026-01-06 16:00",
        icsflow_core::DischargeBody::DischargeCancelled,
    );
    // Back in hospital, not meeting the criteria since the 4th: 4 bed days
    // as of the 8th, no discharge, waiting for care on P2.
    check(
        &events,
        "2026-01-08 12:00",
        expect![[r#"
            icsflow_flow_not_meeting_criteria_patients{place="E06000047",provider="RVW",pathway="P2"} 1
            icsflow_flow_not_meeting_criteria_by_stay_patients{place="E06000047",provider="RVW",pathway="P2",stay_days="7-13"} 1
            icsflow_flow_delayed_bed_nights{place="E06000047",provider="RVW",pathway="P2",reason_family="not_recorded"} 4
            icsflow_flow_delayed_by_reason_patients{place="E06000047",provider="RVW",reason_family="not_recorded"} 1
            icsflow_flow_not_meeting_criteria_by_delay_patients{place="E06000047",provider="RVW",pathway="P2",reason_family="not_recorded",delay_days="4-6"} 1
            icsflow_flow_waiting_for_care_patients{place="E06000047",pathway="P2"} 1
            icsflow_flow_waiting_for_care_by_delay_patients{place="E06000047",pathway="P2",delay_days="4-6"} 1
            icsflow_flow_in_hospital_patients{place="E06000047",provider="RVW"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="discharge_ready_date",recorded="yes"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="delay_reason",recorded="no"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="pathway",recorded="yes"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="bed_type",recorded="no"} 1
        "#]],
    );
}

#[test]
fn cancelled_admission_removes_the_spell() {
    let mut events = Events::default();
    let who = patient(1);
    events.admitted(who, "2026-01-01 09:00", 70);
    events.not_meeting(who, "2026-01-04 10:00", None);
    events.discharge_feed(
        who,
        "2026-01-05 10:00",
        icsflow_core::DischargeBody::AdmissionCancelled,
    );
    check(&events, "2026-01-08 12:00", expect![[r#""#]]);
}

/// An admission entered in error, cancelled, and entered again under the
/// same spell number: the spell entered again counts.
#[test]
fn an_admission_entered_again_after_its_cancellation_counts() {
    let mut events = Events::default();
    let who = patient(1);
    events.admitted(who, "2026-01-01 09:00", 70);
    events.discharge_feed(
        who,
        "2026-01-01 09:10",
        icsflow_core::DischargeBody::AdmissionCancelled,
    );
    events.admitted(who, "2026-01-01 09:20", 70);
    events.not_meeting(who, "2026-01-04 10:00", Some("2026-01-04"));
    check(
        &events,
        "2026-01-05 12:00",
        expect![[r#"
            icsflow_flow_not_meeting_criteria_patients{place="E06000047",provider="RVW",pathway="unassigned"} 1
            icsflow_flow_not_meeting_criteria_by_stay_patients{place="E06000047",provider="RVW",pathway="unassigned",stay_days="0-6"} 1
            icsflow_flow_delayed_bed_nights{place="E06000047",provider="RVW",pathway="unassigned",reason_family="not_recorded"} 1
            icsflow_flow_delayed_by_reason_patients{place="E06000047",provider="RVW",reason_family="not_recorded"} 1
            icsflow_flow_not_meeting_criteria_by_delay_patients{place="E06000047",provider="RVW",pathway="unassigned",reason_family="not_recorded",delay_days="1"} 1
            icsflow_flow_in_hospital_patients{place="E06000047",provider="RVW"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="discharge_ready_date",recorded="yes"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="delay_reason",recorded="no"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="pathway",recorded="no"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="bed_type",recorded="no"} 1
        "#]],
    );
}

#[test]
fn a_correction_replaces_the_fact_it_corrects() {
    let mut events = Events::default();
    let who = patient(1);
    events.admitted(who, "2026-01-01 09:00", 70);
    events.not_meeting(who, "2026-01-04 10:00", Some("2026-01-04"));
    let wrong = events.pathway(who, "2026-01-04 11:00", DischargePathway::P3);
    events.pathway(who, "2026-01-04 11:00", DischargePathway::P1);
    events.correcting(wrong);
    check(
        &events,
        "2026-01-05 12:00",
        expect![[r#"
            icsflow_flow_not_meeting_criteria_patients{place="E06000047",provider="RVW",pathway="P1"} 1
            icsflow_flow_not_meeting_criteria_by_stay_patients{place="E06000047",provider="RVW",pathway="P1",stay_days="0-6"} 1
            icsflow_flow_delayed_bed_nights{place="E06000047",provider="RVW",pathway="P1",reason_family="not_recorded"} 1
            icsflow_flow_delayed_by_reason_patients{place="E06000047",provider="RVW",reason_family="not_recorded"} 1
            icsflow_flow_not_meeting_criteria_by_delay_patients{place="E06000047",provider="RVW",pathway="P1",reason_family="not_recorded",delay_days="1"} 1
            icsflow_flow_waiting_for_care_patients{place="E06000047",pathway="P1"} 1
            icsflow_flow_waiting_for_care_by_delay_patients{place="E06000047",pathway="P1",delay_days="1"} 1
            icsflow_flow_in_hospital_patients{place="E06000047",provider="RVW"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="discharge_ready_date",recorded="yes"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="delay_reason",recorded="no"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="pathway",recorded="yes"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="bed_type",recorded="no"} 1
            icsflow_quality_amended_events{feed="discharge",organisation="RVW",amendment="correction"} 1
        "#]],
    );
}

#[test]
fn waiting_for_care_ends_when_a_service_starts() {
    let mut events = Events::default();
    let who = patient(1);
    events.admitted(who, "2026-01-01 09:00", 70);
    events.not_meeting(who, "2026-01-04 10:00", Some("2026-01-04"));
    events.pathway(who, "2026-01-04 11:00", DischargePathway::P1);
    events.discharged(
        who,
        "2026-01-09 15:00",
        DischargeDestination::UsualPlaceOfResidence,
        DischargePathway::P1,
    );
    events.service_started(
        who,
        "2026-01-09 18:00",
        ServiceType::ShortTermStMax,
        ServiceComponent::HomeCare,
    );
    events.contact(who, "2026-01-20 10:00", ContactAttendance::Attended);
    // Waited from the 4th to the 9th (band 4-6); GP contact 11 days after
    // discharge: outside 7 days (not attended once the window closed),
    // inside 14.
    check(
        &events,
        "2026-01-25 12:00",
        expect![[r#"
            icsflow_flow_delayed_bed_nights{place="E06000047",provider="RVW",pathway="P1",reason_family="not_recorded"} 5
            icsflow_flow_discharge_delay_discharges{place="E06000047",provider="RVW",pathway="P1",delay_days="4-6"} 1
            icsflow_flow_discharge_delay_length{place="E06000047",provider="RVW",pathway="P1"} 5
            icsflow_flow_discharges{place="E06000047",provider="RVW",pathway="P1",destination="usual_residence"} 1
            icsflow_flow_care_start_delay_patients{place="E06000047",pathway="P1",delay_days="4-6"} 1
            icsflow_flow_gp_follow_up_discharges{place="E06000047",window="7d",outcome="not_attended"} 1
            icsflow_flow_gp_follow_up_discharges{place="E06000047",window="14d",outcome="attended"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="discharge_ready_date",recorded="yes"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="delay_reason",recorded="no"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="pathway",recorded="yes"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="destination",recorded="yes"} 1
            icsflow_quality_completeness_records{feed="discharge",organisation="RVW",field="bed_type",recorded="no"} 1
            icsflow_quality_completeness_records{feed="social_care",organisation="702",field="linked_spell",recorded="yes"} 1
        "#]],
    );
}

#[test]
fn events_without_a_journey_are_counted_as_unlinked() {
    let mut events = Events::default();
    events.service_started(
        patient(5),
        "2026-01-09 18:00",
        ServiceType::LongTermCommunity,
        ServiceComponent::HomeCare,
    );
    events.contact(patient(5), "2026-01-10 10:00", ContactAttendance::Attended);
    events.not_meeting(patient(6), "2026-01-04 10:00", None);
    check(
        &events,
        "2026-01-25 12:00",
        expect![[r#"
            icsflow_quality_unlinked_events{feed="discharge",organisation="RVW"} 1
            icsflow_quality_unlinked_events{feed="social_care",organisation="702"} 1
            icsflow_quality_unlinked_events{feed="primary_care",organisation="M83670"} 1
            icsflow_quality_completeness_records{feed="social_care",organisation="702",field="linked_spell",recorded="no"} 1
        "#]],
    );
    // The admission arriving late links them all.
    events.admitted(patient(6), "2026-01-01 09:00", 70);
    events.admitted(patient(5), "2026-01-01 09:00", 70);
    let linked = metrics_text(&events.events, "2026-01-25 12:00");
    assert!(!linked.contains("unlinked"), "{linked}");
}

/// Metric 11's period twin counts the unlinked events of its days.
/// Regression: unlinked events were constants, which every period
/// subtracts away, so `icsflow_quality_unlinked_events_window` was 0 in
/// every series.
#[test]
fn unlinked_events_count_in_the_periods_of_the_day_they_occurred() {
    let mut events = Events::default();
    // 23:59 in London yesterday (GMT in January), and one 9 days before.
    events.service_started(
        patient(5),
        "2026-01-24 23:59",
        ServiceType::LongTermCommunity,
        ServiceComponent::HomeCare,
    );
    events.contact(patient(5), "2026-01-15 10:00", ContactAttendance::Attended);
    let unlinked = |as_of: &str| {
        window_text(&events.events, as_of)
            .lines()
            .filter(|line| line.contains("unlinked"))
            .map(|line| format!("{line}\n"))
            .collect::<String>()
    };
    expect![[r#"
        icsflow_quality_unlinked_events_window{feed="social_care",organisation="702",period="1d"} 1
        icsflow_quality_unlinked_events_window{feed="social_care",organisation="702",period="7d"} 1
        icsflow_quality_unlinked_events_window{feed="social_care",organisation="702",period="28d"} 1
        icsflow_quality_unlinked_events_window{feed="primary_care",organisation="M83670",period="28d"} 1
    "#]]
    .assert_eq(&unlinked("2026-01-25 12:00"));
}

/// Events at the same instant are ordered by event id, as
/// docs/metrics.md says: of two pathways assigned at one instant, the one
/// with the greater id stands, whatever order they arrive in and wherever
/// the ids differ (high bits, low bits, hex letters). Regression: for 18
/// such pairs the greater id won in only 9.
#[test]
fn same_instant_events_are_ordered_by_event_id() {
    let ids: [u128; 6] = [
        0x0000_0001_0000_4000_8000_0000_0000_0000,
        0x7fff_ffff_0000_4000_8000_0000_0000_0000,
        0x8000_0000_0000_4000_8000_0000_0000_0000,
        0xffff_0000_0000_4000_8000_0000_0000_0001,
        0xffff_0000_0000_4000_8000_0000_0000_00fe,
        0xa0b1_c2d3_e4f5_4a6b_9c7d_8e9f_a0b1_c2d3,
    ];
    let mut pairs = 0;
    for (first, one) in ids.iter().enumerate() {
        for other in &ids[first + 1..] {
            let (low, high) = (one.min(other), one.max(other));
            for arrive_greater_first in [false, true] {
                let mut events = Events::default();
                let who = patient(1);
                events.admitted(who, "2026-01-01 09:00", 80);
                events.not_meeting(who, "2026-01-03 10:00", Some("2026-01-03"));
                let lesser = events.pathway(who, "2026-01-03 11:00", DischargePathway::P1);
                let greater = events.pathway(who, "2026-01-03 11:00", DischargePathway::P3);
                for event in &mut events.events {
                    if event.envelope.event_id == lesser {
                        event.envelope.event_id = icsflow_core::EventId::from_u128(*low);
                    } else if event.envelope.event_id == greater {
                        event.envelope.event_id = icsflow_core::EventId::from_u128(*high);
                    }
                }
                if arrive_greater_first {
                    let last = events.events.len() - 1;
                    events.events.swap(last - 1, last);
                }
                let text = metrics_text(&events.events, "2026-01-05 12:00");
                assert!(
                    text.contains(r#"icsflow_flow_not_meeting_criteria_patients{place="E06000047",provider="RVW",pathway="P3"} 1"#),
                    "ids {low:032x} < {high:032x}, greater first: {arrive_greater_first}:\n{text}"
                );
                pairs += 1;
            }
        }
    }
    assert_eq!(pairs, 30);
}

/// Metric 12: patients in hospital in the criteria-to-reside scope, from
/// the day of admission until the day of discharge; children, maternity
/// and mental health beds left out, beds of unknown type counted.
#[test]
fn patients_in_hospital_are_the_adults_in_general_and_acute_beds_admitted_and_not_discharged() {
    let mut events = Events::default();
    events.admitted(patient(1), "2026-01-01 09:00", 70);
    events.admitted_to(
        patient(2),
        "2026-01-02 09:00",
        45,
        Some(BedType::GeneralAndAcute),
    );
    events.admitted(patient(3), "2026-01-02 09:00", 10);
    events.admitted_to(patient(4), "2026-01-02 09:00", 30, Some(BedType::Maternity));
    events.admitted_to(
        patient(5),
        "2026-01-02 09:00",
        30,
        Some(BedType::MentalHealth),
    );
    events.discharged(
        patient(1),
        "2026-01-05 15:00",
        DischargeDestination::UsualPlaceOfResidence,
        DischargePathway::P0,
    );
    let in_hospital = |as_of: &str| {
        metrics_text(&events.events, as_of)
            .lines()
            .filter(|line| line.starts_with("icsflow_flow_in_hospital_patients"))
            .map(|line| format!("{line}\n"))
            .collect::<String>()
    };
    expect![[r#"
        icsflow_flow_in_hospital_patients{place="E06000047",provider="RVW"} 1
    "#]]
    .assert_eq(&in_hospital("2026-01-01 12:00"));
    expect![[r#"
        icsflow_flow_in_hospital_patients{place="E06000047",provider="RVW"} 2
    "#]]
    .assert_eq(&in_hospital("2026-01-04 12:00"));
    // The discharge day is not a day in hospital.
    expect![[r#"
        icsflow_flow_in_hospital_patients{place="E06000047",provider="RVW"} 1
    "#]]
    .assert_eq(&in_hospital("2026-01-05 16:00"));
}

/// How long since the Discharge Ready Date, at the edges of the published
/// bands: the DRD day is day 0; a band changes at midnight; the reason
/// family is the one in effect that day; the care wait counts the same days.
#[test]
fn days_since_the_ready_date_fall_in_the_published_bands_at_their_edges() {
    let mut events = Events::default();
    let who = patient(1);
    events.admitted(who, "2026-01-01 09:00", 80);
    events.not_meeting(who, "2026-01-05 10:00", Some("2026-01-05"));
    events.pathway(who, "2026-01-05 11:00", DischargePathway::P2);
    events.reason(who, "2026-01-08 09:00", DelayReasonFamily::Capacity);
    let by_delay = |events: &Events, as_of: &str| {
        metrics_text(&events.events, as_of)
            .lines()
            .filter(|line| line.contains("_by_delay_"))
            .map(|line| format!("{line}\n"))
            .collect::<String>()
    };
    // The DRD itself: day 0, reason not yet recorded.
    expect![[r#"
        icsflow_flow_not_meeting_criteria_by_delay_patients{place="E06000047",provider="RVW",pathway="P2",reason_family="not_recorded",delay_days="0"} 1
        icsflow_flow_waiting_for_care_by_delay_patients{place="E06000047",pathway="P2",delay_days="0"} 1
    "#]]
    .assert_eq(&by_delay(&events, "2026-01-05 23:59"));
    // Just after midnight: day 1.
    expect![[r#"
        icsflow_flow_not_meeting_criteria_by_delay_patients{place="E06000047",provider="RVW",pathway="P2",reason_family="not_recorded",delay_days="1"} 1
        icsflow_flow_waiting_for_care_by_delay_patients{place="E06000047",pathway="P2",delay_days="1"} 1
    "#]]
    .assert_eq(&by_delay(&events, "2026-01-06 00:01"));
    // Day 3, the reason recorded that morning: still 2-3, now capacity.
    expect![[r#"
        icsflow_flow_not_meeting_criteria_by_delay_patients{place="E06000047",provider="RVW",pathway="P2",reason_family="capacity",delay_days="2-3"} 1
        icsflow_flow_waiting_for_care_by_delay_patients{place="E06000047",pathway="P2",delay_days="2-3"} 1
    "#]]
    .assert_eq(&by_delay(&events, "2026-01-08 12:00"));
    // Day 6 is the last of 4-6; day 7 the first of 7-13.
    expect![[r#"
        icsflow_flow_not_meeting_criteria_by_delay_patients{place="E06000047",provider="RVW",pathway="P2",reason_family="capacity",delay_days="4-6"} 1
        icsflow_flow_waiting_for_care_by_delay_patients{place="E06000047",pathway="P2",delay_days="4-6"} 1
    "#]]
    .assert_eq(&by_delay(&events, "2026-01-11 12:00"));
    expect![[r#"
        icsflow_flow_not_meeting_criteria_by_delay_patients{place="E06000047",provider="RVW",pathway="P2",reason_family="capacity",delay_days="7-13"} 1
        icsflow_flow_waiting_for_care_by_delay_patients{place="E06000047",pathway="P2",delay_days="7-13"} 1
    "#]]
    .assert_eq(&by_delay(&events, "2026-01-12 12:00"));
    // Day 21 and after: 21+.
    expect![[r#"
        icsflow_flow_not_meeting_criteria_by_delay_patients{place="E06000047",provider="RVW",pathway="P2",reason_family="capacity",delay_days="21+"} 1
        icsflow_flow_waiting_for_care_by_delay_patients{place="E06000047",pathway="P2",delay_days="21+"} 1
    "#]]
    .assert_eq(&by_delay(&events, "2026-01-26 12:00"));
    // Discharged on day 23 with a care package starting that day: no one
    // is waiting or in hospital any more.
    events.discharged(
        who,
        "2026-01-28 15:00",
        DischargeDestination::TemporaryPlaceOfResidence,
        DischargePathway::P2,
    );
    events.service_started(
        who,
        "2026-01-28 16:00",
        ServiceType::ShortTermStMax,
        ServiceComponent::HomeCare,
    );
    expect![[r#""#]].assert_eq(&by_delay(&events, "2026-01-29 12:00"));
}

/// Totals over windows of complete days ending yesterday: today's events
/// are in no window yet; a window holds what happened on its days, whenever
/// it arrived (a late event restates it).
#[test]
fn windows_total_the_complete_days_ending_yesterday() {
    let mut events = Events::default();
    let (first, second, third) = (patient(1), patient(2), patient(3));
    events.admitted(first, "2026-01-01 09:00", 80);
    events.not_meeting(first, "2026-01-08 10:00", Some("2026-01-08"));
    events.discharged(
        first,
        "2026-01-10 15:00",
        DischargeDestination::UsualPlaceOfResidence,
        DischargePathway::P0,
    );
    events.admitted(second, "2026-01-02 09:00", 70);
    events.discharged(
        second,
        "2026-01-14 11:00",
        DischargeDestination::UsualPlaceOfResidence,
        DischargePathway::P0,
    );
    // Today: in no window yet.
    events.admitted(third, "2026-01-03 09:00", 70);
    events.discharged(
        third,
        "2026-01-15 09:00",
        DischargeDestination::UsualPlaceOfResidence,
        DischargePathway::P0,
    );
    // As of noon on the 15th: yesterday (the 14th) holds the second
    // discharge; the 7 days 8th-14th hold both earlier ones, the first with
    // its 2-day delay and its 2 bed nights (the midnights that began the
    // 9th and the 10th).
    check_windows(
        &events,
        "2026-01-15 12:00",
        expect![[r#"
            icsflow_flow_delayed_bed_nights_window{place="E06000047",provider="RVW",pathway="P0",reason_family="not_recorded",period="7d"} 2
            icsflow_flow_delayed_bed_nights_window{place="E06000047",provider="RVW",pathway="P0",reason_family="not_recorded",period="28d"} 2
            icsflow_flow_discharge_delay_discharges_window{place="E06000047",provider="RVW",pathway="P0",delay_days="2-3",period="7d"} 1
            icsflow_flow_discharge_delay_discharges_window{place="E06000047",provider="RVW",pathway="P0",delay_days="2-3",period="28d"} 1
            icsflow_flow_discharge_delay_length_window{place="E06000047",provider="RVW",pathway="P0",period="7d"} 2
            icsflow_flow_discharge_delay_length_window{place="E06000047",provider="RVW",pathway="P0",period="28d"} 2
            icsflow_flow_discharges_window{place="E06000047",provider="RVW",pathway="P0",destination="usual_residence",period="1d"} 1
            icsflow_flow_discharges_window{place="E06000047",provider="RVW",pathway="P0",destination="usual_residence",period="7d"} 2
            icsflow_flow_discharges_window{place="E06000047",provider="RVW",pathway="P0",destination="usual_residence",period="28d"} 2
            icsflow_quality_completeness_records_window{feed="discharge",organisation="RVW",field="discharge_ready_date",recorded="yes",period="7d"} 1
            icsflow_quality_completeness_records_window{feed="discharge",organisation="RVW",field="discharge_ready_date",recorded="yes",period="28d"} 1
            icsflow_quality_completeness_records_window{feed="discharge",organisation="RVW",field="delay_reason",recorded="no",period="7d"} 1
            icsflow_quality_completeness_records_window{feed="discharge",organisation="RVW",field="delay_reason",recorded="no",period="28d"} 1
            icsflow_quality_completeness_records_window{feed="discharge",organisation="RVW",field="pathway",recorded="no",period="7d"} 1
            icsflow_quality_completeness_records_window{feed="discharge",organisation="RVW",field="pathway",recorded="no",period="28d"} 1
            icsflow_quality_completeness_records_window{feed="discharge",organisation="RVW",field="destination",recorded="yes",period="1d"} 1
            icsflow_quality_completeness_records_window{feed="discharge",organisation="RVW",field="destination",recorded="yes",period="7d"} 2
            icsflow_quality_completeness_records_window{feed="discharge",organisation="RVW",field="destination",recorded="yes",period="28d"} 2
            icsflow_quality_completeness_records_window{feed="discharge",organisation="RVW",field="bed_type",recorded="no",period="28d"} 3
        "#]],
    );
    // A discharge on the 12th that arrives only now restates the 7 days.
    let fourth = patient(4);
    events.admitted(fourth, "2026-01-05 09:00", 70);
    events.discharged(
        fourth,
        "2026-01-12 10:00",
        DischargeDestination::UsualPlaceOfResidence,
        DischargePathway::P0,
    );
    let restated = crate::window_text(&events.events, "2026-01-15 12:00");
    assert!(
        restated.contains(r#"destination="usual_residence",period="7d"} 3"#)
            && restated.contains(r#"destination="usual_residence",period="1d"} 1"#),
        "{restated}"
    );
}

fn check_windows(events: &Events, as_of: &str, expected: Expect) {
    expected.assert_eq(&crate::window_text(&events.events, as_of));
}
