//! The rules docs/metrics.md states under "Rules the definitions imply":
//! each answered one way by icsflow and held here, so that a change of
//! answer is a change of definition, not an accident.

use icsflow_core::{
    BedType, ContactAttendance, DischargeBody, DischargeDestination, DischargePathway, EventId,
    OdsCode, ServiceComponent, ServiceType,
};

use crate::{metrics_text, patient, Events};

/// The series of `metric` (a name prefix) only.
fn only(events: &Events, as_of: &str, metric: &str) -> String {
    metrics_text(&events.events, as_of)
        .lines()
        .filter(|line| line.starts_with(metric))
        .map(|line| format!("{line}\n"))
        .collect()
}

fn pathway_line(pathway: &str) -> String {
    format!("icsflow_flow_not_meeting_criteria_patients{{place=\"E06000047\",provider=\"RVW\",pathway=\"{pathway}\"}} 1\n")
}

#[test]
fn a_correction_takes_effect_at_its_own_time_and_chains_are_followed() {
    // The pathway of a spell is the latest PATHWAY_ASSIGNED in occurred_at
    // order (whatever the as-of day): where a correction sits in that order
    // is its own occurred_at, not the corrected event's.
    let nctr = "icsflow_flow_not_meeting_criteria_patients";
    let mut events = Events::default();
    let who = patient(1);
    events.admitted(who, "2026-01-01 09:00", 70);
    events.not_meeting(who, "2026-01-02 10:00", Some("2026-01-02"));
    let wrong = events.pathway(who, "2026-01-03 11:00", DischargePathway::P3);
    events.pathway(who, "2026-01-05 11:00", DischargePathway::P2);
    // Corrects the 3rd's P3 with P1, recorded as of the 4th: P3 is gone,
    // and P1 (the 4th) is older than P2 (the 5th), which stays the latest.
    let correction = events.pathway(who, "2026-01-04 11:00", DischargePathway::P1);
    events.correcting(wrong);
    assert_eq!(only(&events, "2026-01-08 12:00", nctr), pathway_line("P2"));
    // A correction of the correction, dated the 6th: it replaces P1 and,
    // being the latest, sets the pathway; the first P3 stays corrected.
    events.pathway(who, "2026-01-06 11:00", DischargePathway::P0);
    events.correcting(correction);
    assert_eq!(only(&events, "2026-01-08 12:00", nctr), pathway_line("P0"));
}

/// An event id is its partner's: a trust's sites share the trust's ids, so
/// a correction sent by site RVW01 of an event RVW published corrects it
/// (the sites are one partner, counted as the trust). Before, it was a new
/// event of its own.
#[test]
fn a_correction_sent_by_another_site_of_the_trust_corrects_the_trusts_event() {
    let nctr = "icsflow_flow_not_meeting_criteria_patients";
    let mut events = Events::default();
    let who = patient(1);
    events.admitted(who, "2026-01-01 09:00", 70);
    events.not_meeting(who, "2026-01-02 10:00", Some("2026-01-02"));
    let wrong = events.pathway(who, "2026-01-05 11:00", DischargePathway::P3);
    events.pathway(who, "2026-01-04 11:00", DischargePathway::P1);
    events.correcting(wrong);
    assert_eq!(only(&events, "2026-01-08 12:00", nctr), pathway_line("P1"));
    events
        .events
        .last_mut()
        .expect("the correction")
        .envelope
        .source_organisation = OdsCode::parse("test", "RVW01").expect("a site");
    assert_eq!(only(&events, "2026-01-08 12:00", nctr), pathway_line("P1"));
}

#[test]
fn one_cancellation_voids_every_discharge_before_it_and_none_after_it() {
    let mut events = Events::default();
    let who = patient(1);
    events.admitted(who, "2026-01-01 09:00", 70);
    let discharge = |events: &mut Events, at| {
        events.discharged(
            who,
            at,
            DischargeDestination::UsualPlaceOfResidence,
            DischargePathway::P0,
        );
    };
    discharge(&mut events, "2026-01-05 15:00");
    discharge(&mut events, "2026-01-06 15:00");
    events.discharge_feed(who, "2026-01-07 09:00", DischargeBody::DischargeCancelled);
    let discharges = "icsflow_flow_discharges{";
    assert_eq!(only(&events, "2026-01-08 12:00", discharges), "");
    // A cancellation dated before a discharge does not void it.
    let mut later = Events::default();
    later.admitted(who, "2026-01-01 09:00", 70);
    later.discharge_feed(who, "2026-01-04 09:00", DischargeBody::DischargeCancelled);
    discharge(&mut later, "2026-01-05 15:00");
    assert_eq!(
        only(&later, "2026-01-08 12:00", discharges),
        "icsflow_flow_discharges{place=\"E06000047\",provider=\"RVW\",pathway=\"P0\",destination=\"usual_residence\"} 1\n"
    );
}

#[test]
fn a_gp_contact_counts_after_the_discharge_instant_even_during_a_later_stay() {
    let follow_up = "icsflow_flow_gp_follow_up_discharges";
    let who = patient(1);
    let discharged = |events: &mut Events| {
        events.admitted(who, "2026-01-01 09:00", 70);
        events.discharged(
            who,
            "2026-01-05 15:00",
            DischargeDestination::UsualPlaceOfResidence,
            DischargePathway::P0,
        );
    };
    // A contact the same day but before the discharge: not a follow-up.
    let mut before = Events::default();
    discharged(&mut before);
    before.contact(who, "2026-01-05 10:00", ContactAttendance::Attended);
    assert_eq!(
        only(&before, "2026-01-25 12:00", follow_up),
        "icsflow_flow_gp_follow_up_discharges{place=\"E06000047\",window=\"7d\",outcome=\"not_attended\"} 1\n\
         icsflow_flow_gp_follow_up_discharges{place=\"E06000047\",window=\"14d\",outcome=\"not_attended\"} 1\n"
    );
    // A contact during a readmission two days later still counts.
    let mut readmitted = Events::default();
    discharged(&mut readmitted);
    readmitted.admitted(who.spell(2), "2026-01-06 09:00", 70);
    readmitted.contact(who, "2026-01-07 10:00", ContactAttendance::Attended);
    assert_eq!(
        only(&readmitted, "2026-01-25 12:00", follow_up),
        "icsflow_flow_gp_follow_up_discharges{place=\"E06000047\",window=\"7d\",outcome=\"attended\"} 1\n\
         icsflow_flow_gp_follow_up_discharges{place=\"E06000047\",window=\"14d\",outcome=\"attended\"} 1\n"
    );
}

#[test]
fn an_admission_before_the_previous_discharge_is_not_a_readmission() {
    let mut events = Events::default();
    let who = patient(1);
    events.admitted(who, "2026-01-01 09:00", 70);
    // A second spell opened (another ward's record) while the first is open.
    events.admitted(who.spell(2), "2026-01-03 09:00", 70);
    events.discharged(
        who,
        "2026-01-05 15:00",
        DischargeDestination::UsualPlaceOfResidence,
        DischargePathway::P0,
    );
    assert_eq!(
        only(
            &events,
            "2026-01-20 12:00",
            "icsflow_flow_emergency_readmissions"
        ),
        ""
    );
}

#[test]
fn a_care_start_on_the_28th_day_after_discharge_ends_the_wait_as_a_start() {
    let mut events = Events::default();
    let who = patient(1);
    events.admitted(who, "2026-01-01 09:00", 70);
    events.not_meeting(who, "2026-01-04 10:00", Some("2026-01-04"));
    events.pathway(who, "2026-01-04 11:00", DischargePathway::P1);
    events.discharged(
        who,
        "2026-01-05 15:00",
        DischargeDestination::UsualPlaceOfResidence,
        DischargePathway::P1,
    );
    events.service_started(
        who,
        "2026-02-02 10:00",
        ServiceType::ShortTermStMax,
        ServiceComponent::HomeCare,
    );
    // 28 days after the 5th is 2 February: a start, 29 days after the DRD.
    assert_eq!(
        only(&events, "2026-02-10 12:00", "icsflow_flow_care_start_delay_patients{"),
        "icsflow_flow_care_start_delay_patients{place=\"E06000047\",pathway=\"P1\",delay_days=\"21+\"} 1\n"
    );
}

#[test]
fn an_assessment_before_the_admission_counts_from_the_admission_day() {
    let mut events = Events::default();
    let who = patient(1);
    events.not_meeting(who, "2025-12-31 20:00", Some("2025-12-30"));
    events.admitted(who, "2026-01-01 09:00", 70);
    // Ready from the 1st (the admission day), not the 30th: 2 days as of
    // the 3rd.
    assert_eq!(
        only(&events, "2026-01-03 12:00", "icsflow_flow_not_meeting_criteria_by_delay_patients"),
        "icsflow_flow_not_meeting_criteria_by_delay_patients{place=\"E06000047\",provider=\"RVW\",pathway=\"unassigned\",reason_family=\"not_recorded\",delay_days=\"2-3\"} 1\n"
    );
}

#[test]
fn events_without_an_episode_reference_make_one_spell() {
    let mut events = Events::default();
    let who = patient(1);
    events.admitted(who, "2026-01-01 09:00", 70);
    events.admitted(who.spell(2), "2026-01-10 09:00", 70);
    for event in &mut events.events {
        event.envelope.episode_reference = None;
    }
    // Two admissions with no spell reference: one spell, one patient in
    // hospital, admitted on the 1st (the earlier admission).
    assert_eq!(
        only(
            &events,
            "2026-01-12 12:00",
            "icsflow_flow_not_meeting_criteria"
        ),
        ""
    );
    events.not_meeting(who, "2026-01-11 10:00", Some("2026-01-11"));
    events
        .events
        .last_mut()
        .expect("the assessment")
        .envelope
        .episode_reference = None;
    assert_eq!(
        only(&events, "2026-01-12 12:00", "icsflow_flow_not_meeting_criteria_by_stay"),
        "icsflow_flow_not_meeting_criteria_by_stay_patients{place=\"E06000047\",provider=\"RVW\",pathway=\"unassigned\",stay_days=\"7-13\"} 1\n"
    );
}

/// A trust with no spell numbers (or one that reuses them): an admission
/// after a discharge begins another spell, so the patient is not counted
/// in hospital between the two stays, both discharges count, and the second
/// emergency admission is a readmission.
#[test]
fn without_episode_references_an_admission_after_a_discharge_begins_another_spell() {
    let mut events = Events::default();
    let who = patient(1);
    events.admitted(who, "2026-01-01 09:00", 70);
    events.not_meeting(who, "2026-01-03 10:00", Some("2026-01-03"));
    events.discharged(
        who,
        "2026-01-05 15:00",
        DischargeDestination::UsualPlaceOfResidence,
        DischargePathway::P0,
    );
    events.admitted(who, "2026-01-20 09:00", 70);
    events.discharged(
        who,
        "2026-01-25 15:00",
        DischargeDestination::UsualPlaceOfResidence,
        DischargePathway::P0,
    );
    for event in &mut events.events {
        event.envelope.episode_reference = None;
    }
    let as_of = "2026-02-10 12:00";
    assert_eq!(
        only(&events, as_of, "icsflow_flow_discharges{"),
        "icsflow_flow_discharges{place=\"E06000047\",provider=\"RVW\",pathway=\"P0\",destination=\"usual_residence\"} 2\n"
    );
    assert_eq!(
        only(&events, as_of, "icsflow_flow_emergency_readmissions{"),
        "icsflow_flow_emergency_readmissions{place=\"E06000047\",provider=\"RVW\"} 1\n"
    );
    // From the ready date (the 3rd) to the first discharge (the 5th), not
    // to the second.
    assert_eq!(
        only(&events, as_of, "icsflow_flow_delayed_bed_nights{"),
        "icsflow_flow_delayed_bed_nights{place=\"E06000047\",provider=\"RVW\",pathway=\"P0\",reason_family=\"not_recorded\"} 2\n"
    );
    // The same with the two stays under one reused reference.
    for event in &mut events.events {
        event.envelope.episode_reference = Some(icsflow_core::sample_pseudonym(100));
    }
    assert_eq!(
        only(&events, as_of, "icsflow_flow_discharges{"),
        "icsflow_flow_discharges{place=\"E06000047\",provider=\"RVW\",pathway=\"P0\",destination=\"usual_residence\"} 2\n"
    );
}

#[test]
fn a_readmission_counts_once_against_the_most_recent_discharge_before_it() {
    let mut events = Events::default();
    let who = patient(1);
    let discharge = |events: &mut Events, spell, at| {
        events.discharged(
            who.spell(spell),
            at,
            DischargeDestination::UsualPlaceOfResidence,
            DischargePathway::P0,
        );
    };
    // A: emergency stay, discharged on the 5th; B: an elective stay from
    // the 10th to the 12th; C: an emergency admission on the 15th.
    events.admitted(who, "2026-01-01 09:00", 70);
    discharge(&mut events, 1, "2026-01-05 15:00");
    events.elective(who.spell(2), "2026-01-10 09:00");
    discharge(&mut events, 2, "2026-01-12 15:00");
    events.admitted(who.spell(3), "2026-01-15 09:00", 70);
    // C is within 30 days of both A and B, and counts once, against B.
    assert_eq!(
        only(
            &events,
            "2026-01-20 12:00",
            "icsflow_flow_emergency_readmissions{"
        ),
        "icsflow_flow_emergency_readmissions{place=\"E06000047\",provider=\"RVW\"} 1\n"
    );
}

#[test]
fn nobody_waits_for_care_after_dying() {
    let waiting = "icsflow_flow_waiting_for_care_patients";
    let who = patient(1);
    let ready = |events: &mut Events| {
        events.admitted(who, "2026-01-01 09:00", 88);
        events.not_meeting(who, "2026-01-04 10:00", Some("2026-01-04"));
        events.pathway(who, "2026-01-04 11:00", DischargePathway::P3);
    };
    // Died in hospital on the 8th (destination 79): waited until then only.
    let mut in_hospital = Events::default();
    ready(&mut in_hospital);
    in_hospital.discharged(
        who,
        "2026-01-08 15:00",
        DischargeDestination::Died,
        DischargePathway::P3,
    );
    assert_eq!(
        only(&in_hospital, "2026-01-07 12:00", waiting),
        "icsflow_flow_waiting_for_care_patients{place=\"E06000047\",pathway=\"P3\"} 1\n"
    );
    assert_eq!(only(&in_hospital, "2026-01-09 12:00", waiting), "");
    // Discharged home, then the practice is told of a death on the 12th.
    let mut at_home = Events::default();
    ready(&mut at_home);
    at_home.discharged(
        who,
        "2026-01-08 15:00",
        DischargeDestination::UsualPlaceOfResidence,
        DischargePathway::P3,
    );
    at_home.death(who, "2026-01-13 09:00", "2026-01-12");
    assert_eq!(
        only(&at_home, "2026-01-11 12:00", waiting),
        "icsflow_flow_waiting_for_care_patients{place=\"E06000047\",pathway=\"P3\"} 1\n"
    );
    assert_eq!(only(&at_home, "2026-01-12 12:00", waiting), "");
}

/// A death in a later stay ends the wait for care of an earlier
/// discharge. Regression: a person discharged on P3, readmitted and
/// discharged dead was still counted as waiting (14-20 days band).
#[test]
fn a_death_in_a_later_stay_ends_the_wait_of_an_earlier_discharge() {
    let waiting = "icsflow_flow_waiting_for_care";
    let who = patient(1);
    let mut events = Events::default();
    events.admitted(who, "2026-01-01 09:00", 88);
    events.not_meeting(who, "2026-01-04 10:00", Some("2026-01-04"));
    events.pathway(who, "2026-01-04 11:00", DischargePathway::P3);
    events.discharged(
        who,
        "2026-01-05 15:00",
        DischargeDestination::UsualPlaceOfResidence,
        DischargePathway::P3,
    );
    events.admitted(who.spell(2), "2026-01-10 09:00", 88);
    events.discharged(
        who.spell(2),
        "2026-01-17 15:00",
        DischargeDestination::Died,
        DischargePathway::P0,
    );
    assert!(
        only(&events, "2026-01-16 12:00", waiting).contains("waiting_for_care_patients"),
        "waiting before the death"
    );
    assert_eq!(only(&events, "2026-01-20 12:00", waiting), "");
}

fn readmissions(events: &Events, as_of: &str) -> String {
    only(events, as_of, "icsflow_flow_emergency_readmissions{")
}

fn home(events: &mut Events, who: crate::Patient, at: &str) {
    events.discharged(
        who,
        at,
        DischargeDestination::UsualPlaceOfResidence,
        DischargePathway::P0,
    );
}

const ONE_READMISSION: &str =
    "icsflow_flow_emergency_readmissions{place=\"E06000047\",provider=\"RVW\"} 1\n";

/// Two discharges at one instant (two trusts' records of one transfer):
/// a readmission after them is counted once, against the spell that began
/// later; and a death recorded on a spell whose admission was cancelled
/// (entered in error) is no death of the person's.
#[test]
fn same_instant_discharges_link_a_readmission_once_and_cancelled_spells_record_no_death() {
    let who = patient(1);
    let mut events = Events::default();
    events.admitted(who, "2026-01-01 09:00", 70);
    events.push_admission_at(who.spell(2), "RXP", "2026-01-02 09:00");
    home(&mut events, who, "2026-01-05 15:00");
    events.discharged_by(who.spell(2), "RXP", "2026-01-05 15:00");
    events.admitted(who.spell(3), "2026-01-12 09:00", 70);
    let counted: i64 = readmissions(&events, "2026-01-20 12:00")
        .lines()
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<i64>().ok())
        .sum();
    assert_eq!(counted, 1, "{}", readmissions(&events, "2026-01-20 12:00"));

    let mut waiting = Events::default();
    waiting.admitted(who, "2026-01-01 09:00", 88);
    waiting.not_meeting(who, "2026-01-04 10:00", Some("2026-01-04"));
    waiting.pathway(who, "2026-01-04 11:00", DischargePathway::P3);
    waiting.discharged(
        who,
        "2026-01-05 15:00",
        DischargeDestination::UsualPlaceOfResidence,
        DischargePathway::P3,
    );
    waiting.admitted(who.spell(2), "2026-01-08 09:00", 88);
    waiting.discharged(
        who.spell(2),
        "2026-01-09 15:00",
        DischargeDestination::Died,
        DischargePathway::P0,
    );
    waiting.discharge_feed(
        who.spell(2),
        "2026-01-10 09:00",
        DischargeBody::AdmissionCancelled,
    );
    assert!(
        only(
            &waiting,
            "2026-01-12 12:00",
            "icsflow_flow_waiting_for_care_patients"
        )
        .ends_with("} 1\n"),
        "still waiting: the death was on a spell entered in error:\n{}",
        metrics_text(&waiting.events, "2026-01-12 12:00")
    );
}

/// A discharge whose spell's admission has not arrived counts in no
/// measure, so it does not stand between a discharge and a readmission.
/// Regression: it blocked the link until the admission arrived.
#[test]
fn a_discharge_without_its_admission_does_not_block_a_readmission() {
    let who = patient(1);
    let mut events = Events::default();
    events.admitted(who, "2026-01-01 09:00", 70);
    home(&mut events, who, "2026-01-05 15:00");
    // Spell 2's discharge, its admission not yet arrived.
    home(&mut events, who.spell(2), "2026-01-08 15:00");
    events.admitted(who.spell(3), "2026-01-12 09:00", 70);
    assert_eq!(readmissions(&events, "2026-01-20 12:00"), ONE_READMISSION);
}

/// Two emergency admissions after one discharge, the second while the
/// first is still open: each is an emergency admission within 30 days of
/// the most recent discharge before it, so two readmissions, as the
/// national indicator counts admissions (its numerator is readmissions,
/// not index discharges followed by one).
#[test]
fn two_emergency_admissions_after_one_discharge_are_two_readmissions() {
    let who = patient(1);
    let mut events = Events::default();
    events.admitted(who, "2026-01-01 09:00", 70);
    home(&mut events, who, "2026-01-05 15:00");
    events.admitted(who.spell(2), "2026-01-10 09:00", 70);
    // At another trust, while spell 2 is open.
    events.push_admission_at(who.spell(3), "RXP", "2026-01-12 09:00");
    assert_eq!(
        readmissions(&events, "2026-01-20 12:00"),
        "icsflow_flow_emergency_readmissions{place=\"E06000047\",provider=\"RVW\"} 2\n"
    );
}

/// A readmission is another spell: a discharge dated before the only
/// admission of its own spell reference is not followed by a readmission
/// of itself. Regression: icsflow counted one.
#[test]
fn a_stay_is_never_its_own_readmission() {
    let who = patient(1);
    let mut events = Events::default();
    home(&mut events, who, "2026-01-05 15:00");
    events.admitted(who, "2026-01-06 09:00", 70);
    assert_eq!(readmissions(&events, "2026-01-20 12:00"), "");
}

/// The national indicator leaves out obstetrics and counts medical and
/// surgical care: an emergency admission to a maternity, mental health or
/// learning disability bed is no readmission, and a discharge from one is
/// no index stay. Regression: readmissions into maternity beds counted.
#[test]
fn maternity_and_mental_health_stays_are_outside_the_readmission_measure() {
    for bed in [
        BedType::Maternity,
        BedType::MentalHealth,
        BedType::LearningDisabilities,
    ] {
        let who = patient(1);
        let mut readmitted_into = Events::default();
        readmitted_into.admitted(who, "2026-01-01 09:00", 30);
        home(&mut readmitted_into, who, "2026-01-05 15:00");
        readmitted_into.admitted_to(who.spell(2), "2026-01-10 09:00", 30, Some(bed));
        assert_eq!(
            readmissions(&readmitted_into, "2026-01-20 12:00"),
            "",
            "{bed:?}"
        );

        let mut discharged_from = Events::default();
        discharged_from.admitted_to(who, "2026-01-01 09:00", 30, Some(bed));
        home(&mut discharged_from, who, "2026-01-05 15:00");
        discharged_from.admitted(who.spell(2), "2026-01-10 09:00", 30);
        assert_eq!(
            readmissions(&discharged_from, "2026-01-20 12:00"),
            "",
            "{bed:?}"
        );
    }
    // General and acute, critical care and beds of unknown type count.
    for bed in [
        Some(BedType::GeneralAndAcute),
        Some(BedType::CriticalCare),
        None,
    ] {
        let who = patient(1);
        let mut events = Events::default();
        events.admitted_to(who, "2026-01-01 09:00", 30, bed);
        home(&mut events, who, "2026-01-05 15:00");
        events.admitted_to(who.spell(2), "2026-01-10 09:00", 30, bed);
        assert_eq!(
            readmissions(&events, "2026-01-20 12:00"),
            ONE_READMISSION,
            "{bed:?}"
        );
    }
}

#[test]
fn of_two_versions_of_an_event_the_one_recorded_later_stands() {
    let nctr = "icsflow_flow_not_meeting_criteria_patients";
    let who = patient(1);
    let mut events = Events::default();
    events.admitted(who, "2026-01-01 09:00", 70);
    events.not_meeting(who, "2026-01-02 10:00", Some("2026-01-02"));
    events.pathway(who, "2026-01-03 11:00", DischargePathway::P3);
    // The same event id re-sent, recorded an hour later, saying P1.
    let mut resent = *events.events.last().expect("the pathway");
    resent.body = icsflow_core::EventBody::Discharge(DischargeBody::PathwayAssigned {
        pathway: DischargePathway::P1,
    });
    resent.envelope.recorded_at =
        icsflow_core::Timestamp::from_millis(resent.envelope.recorded_at.as_millis() + 3_600_000);
    let mut first_then_resent = events.events.clone();
    first_then_resent.push(resent);
    let mut resent_then_first = vec![resent];
    resent_then_first.extend(events.events.iter().copied());
    for order in [first_then_resent, resent_then_first] {
        let text: String = crate::metrics_text(&order, "2026-01-05 12:00")
            .lines()
            .filter(|line| line.starts_with(nctr))
            .map(|line| format!("{line}\n"))
            .collect();
        assert_eq!(text, pathway_line("P1"));
    }
}

#[test]
fn the_sitrep_measures_count_adults_in_general_and_acute_beds() {
    // Seven patients ready on the 2nd on P1, discharged home on the 6th.
    // Only adults (18 and over) in general and acute beds, or beds of
    // unknown type, count in the measures read from no-criteria periods;
    // every discharge counts in metric 5.
    let mut events = Events::default();
    let admissions: [(u8, i32, Option<BedType>); 7] = [
        (1, 40, Some(BedType::GeneralAndAcute)),
        (2, 40, None),
        (3, 18, Some(BedType::GeneralAndAcute)),
        (4, 17, Some(BedType::GeneralAndAcute)),
        (5, 30, Some(BedType::Maternity)),
        (6, 60, Some(BedType::CriticalCare)),
        (7, 50, Some(BedType::MentalHealth)),
    ];
    for (number, age, bed) in admissions {
        let who = patient(number);
        events.admitted_to(who, "2026-01-01 09:00", age, bed);
        events.not_meeting(who, "2026-01-02 10:00", Some("2026-01-02"));
        events.pathway(who, "2026-01-02 11:00", DischargePathway::P1);
        events.discharged(
            who,
            "2026-01-06 15:00",
            DischargeDestination::UsualPlaceOfResidence,
            DischargePathway::P1,
        );
    }
    let in_hospital = |metric| only(&events, "2026-01-04 12:00", metric);
    assert_eq!(
        in_hospital("icsflow_flow_not_meeting_criteria_patients{"),
        pathway_line("P1").replace("} 1", "} 3")
    );
    assert_eq!(
        in_hospital("icsflow_flow_waiting_for_care_patients{"),
        "icsflow_flow_waiting_for_care_patients{place=\"E06000047\",pathway=\"P1\"} 3\n"
    );
    let discharged = |metric| only(&events, "2026-01-07 12:00", metric);
    // Three spells, each 4 days from DRD (the 2nd) to discharge (the 6th).
    assert_eq!(
        discharged("icsflow_flow_discharge_delay_length{"),
        "icsflow_flow_discharge_delay_length{place=\"E06000047\",provider=\"RVW\",pathway=\"P1\"} 12\n"
    );
    assert_eq!(
        discharged("icsflow_flow_discharges{"),
        "icsflow_flow_discharges{place=\"E06000047\",provider=\"RVW\",pathway=\"P1\",destination=\"usual_residence\"} 7\n"
    );
}

#[test]
fn destinations_report_in_their_national_groups() {
    // One discharge per code of each group, current and retired.
    let mut events = Events::default();
    let destinations = [
        DischargeDestination::UsualPlaceOfResidence,
        DischargeDestination::CareHomeWithNursing,
        DischargeDestination::NonNhsCareHome,
        DischargeDestination::LocalAuthorityResidential,
        DischargeDestination::NhsHospitalGeneralWard,
        DischargeDestination::NonNhsHospital,
        DischargeDestination::Hospice,
        DischargeDestination::Died,
        DischargeDestination::PenalEstablishment,
        DischargeDestination::NotKnown,
    ];
    for (number, destination) in (1..).zip(destinations) {
        let who = patient(number);
        events.admitted(who, "2026-01-01 09:00", 70);
        events.discharged(who, "2026-01-03 15:00", destination, DischargePathway::P0);
    }
    assert_eq!(
        only(&events, "2026-01-04 12:00", "icsflow_flow_discharges{"),
        [
            ("usual_residence", 1),
            ("care_home", 3),
            ("other_hospital", 2),
            ("hospice", 1),
            ("died", 1),
            ("other", 2),
        ]
        .map(|(group, count)| format!("icsflow_flow_discharges{{place=\"E06000047\",provider=\"RVW\",pathway=\"P0\",destination=\"{group}\"}} {count}\n"))
        .concat()
    );
}

/// The inverse of SplitMix64's finaliser, which the engine's event key
/// once was built from (`mix`): what let a partner compute an event id.
fn unmix(mut value: u64) -> u64 {
    // The multiplicative inverse of an odd constant modulo 2^64, by
    // Newton's iteration.
    let inverse = |odd: u64| {
        let mut inverse = odd;
        for _ in 0..6 {
            inverse = inverse.wrapping_mul(2_u64.wrapping_sub(odd.wrapping_mul(inverse)));
        }
        inverse
    };
    let unshift = |value: u64, shift: u32| {
        let mut result = value;
        for _ in 0..64 / shift {
            result = value ^ (result >> shift);
        }
        result
    };
    value = unshift(value, 31);
    value = value.wrapping_mul(inverse(0x94d0_49bb_1331_11eb));
    value = unshift(value, 27);
    value = value.wrapping_mul(inverse(0xbf58_476d_1ce4_e5b9));
    unshift(value, 30)
}

fn mix(mut value: u64) -> u64 {
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

fn organisation_bits(code: &str) -> u64 {
    code.bytes()
        .fold(0_u64, |bits, byte| bits << 8 | u64::from(byte))
}

/// Regression: the engine's event key was a 64-bit hash anyone could
/// invert, so a practice could compute an event id whose key was a
/// trust's assessment's, and its contact replaced the assessment (the
/// place's gauge went from 1 to 0, and stayed 0 after a replay). An event
/// id is now compared whole, with its publisher.
#[test]
fn no_event_id_a_partner_computes_replaces_another_partners_event() {
    let nctr = "icsflow_flow_not_meeting_criteria_patients";
    let mut events = Events::default();
    let who = patient(1);
    events.admitted(who, "2026-01-01 09:00", 70);
    let assessment = events.not_meeting(who, "2026-01-02 10:00", Some("2026-01-02"));
    events.pathway(who, "2026-01-02 11:00", DischargePathway::P1);
    assert_eq!(only(&events, "2026-01-08 12:00", nctr), pathway_line("P1"));
    // The key the trust's assessment had, and an id of the practice's with
    // the same key.
    let value = assessment.as_u128();
    let (high, low) = ((value >> 64) as u64, value as u64);
    let inner = mix(mix(low) ^ high) ^ organisation_bits("RVW") ^ organisation_bits("M83670");
    let forged_low = unmix(unmix(inner) ^ high);
    assert_eq!(
        mix(mix(mix(forged_low) ^ high) ^ organisation_bits("M83670")),
        mix(mix(mix(low) ^ high) ^ organisation_bits("RVW")),
        "the forged id collides under the old key"
    );
    let forged = EventId::from_u128(u128::from(high) << 64 | u128::from(forged_low));
    events.contact(who, "2026-01-03 10:00", ContactAttendance::Attended);
    events
        .events
        .last_mut()
        .expect("the contact")
        .envelope
        .event_id = forged;
    assert_eq!(only(&events, "2026-01-08 12:00", nctr), pathway_line("P1"));
}
