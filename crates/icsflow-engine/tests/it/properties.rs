//! The engine's promises as properties over random event sets: arrival
//! order, duplicates, restarts and eviction change no metric.

use icsflow_core::*;
use icsflow_engine::{Engine, EngineConfig};
use proptest::prelude::*;

use crate::{engine_with, patient, render, Events};

/// A random event: who, which spell, what, when (day and hour offsets from
/// 1 January 2026), and a selector for the details.
type Ingredient = (u8, u8, u8, u8, u8, u8);

fn ingredients() -> impl Strategy<Value = Vec<Ingredient>> {
    proptest::collection::vec(
        (1_u8..5, 1_u8..3, 0_u8..14, 0_u8..60, 0_u8..24, any::<u8>()),
        1..60,
    )
}

fn at(day: u8, hour: u8) -> String {
    let date = Date::from_calendar(2026, 1, 1)
        .expect("date")
        .days_since_epoch()
        + i32::from(day);
    let (year, month, day) = Date::from_days_since_epoch(date).to_calendar();
    format!("{year:04}-{month:02}-{day:02} {hour:02}:00")
}

fn build(ingredients: &[Ingredient]) -> Vec<Event> {
    let mut events = Events::default();
    let mut ids = Vec::new();
    for &(number, spell, kind, day, hour, detail) in ingredients {
        let who = patient(number).spell(spell);
        let when = at(day, hour);
        let pathway = DischargePathway::ALL[usize::from(detail % 4)];
        let id = match kind {
            0 | 1 => events.admitted(who, &when, 40 + i32::from(detail % 50)),
            2 | 3 => {
                let ready = (detail % 3 == 0).then(|| at(day.saturating_sub(detail % 4), 0));
                events.not_meeting(who, &when, ready.as_deref())
            }
            4 => events.meeting(who, &when),
            5 => events.pathway(who, &when, pathway),
            6 => events.reason(who, &when, DelayReasonFamily::ALL[usize::from(detail % 5)]),
            7 => events.discharged(
                who,
                &when,
                DischargeDestination::ALL[usize::from(detail % 9)],
                pathway,
            ),
            8 => events.discharge_feed(who, &when, DischargeBody::DischargeCancelled),
            9 => events.discharge_feed(who, &when, DischargeBody::AdmissionCancelled),
            10 => {
                let component = if detail % 2 == 0 {
                    ServiceComponent::Reablement
                } else {
                    ServiceComponent::HomeCare
                };
                events.service_started(who, &when, ServiceType::ShortTermStMax, component)
            }
            11 => events.service_ended(who, &when, ServiceEndReason::ALL[usize::from(detail % 8)]),
            12 => events.contact(who, &when, ContactAttendance::ALL[usize::from(detail % 2)]),
            _ => events.death(who, &when, &at(day, 0)),
        };
        // Now and then the event corrects an earlier one of the same feed's
        // publisher (ids are only ever corrected by their own publisher; a
        // mismatch simply corrects nothing).
        if detail % 7 == 0 && !ids.is_empty() {
            events.correcting(ids[usize::from(detail) % ids.len()]);
        }
        ids.push(id);
    }
    events.events
}

fn as_of_days() -> [&'static str; 3] {
    ["2026-01-20 12:00", "2026-02-20 12:00", "2026-06-30 12:00"]
}

/// `events` in a deterministic order chosen by `seed` (xorshift).
fn shuffle(events: &[Event], seed: u64) -> Vec<Event> {
    let mut shuffled = events.to_vec();
    let mut state = seed | 1;
    for index in (1..shuffled.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        shuffled.swap(index, (state % (index as u64 + 1)) as usize);
    }
    shuffled
}

/// The event id of `original` re-sent with the content of `content`,
/// recorded at the same time as the original or `later` hours after it.
fn re_sent(
    events: &[Event],
    original: prop::sample::Index,
    content: prop::sample::Index,
    later: i64,
) -> Event {
    let original = events[original.index(events.len())];
    let mut version = events[content.index(events.len())];
    version.envelope.event_id = original.envelope.event_id;
    version.envelope.source_organisation = original.envelope.source_organisation;
    version.envelope.patient = original.envelope.patient;
    version.envelope.recorded_at =
        Timestamp::from_millis(original.envelope.recorded_at.as_millis() + later * 3_600_000);
    version
}

fn snapshot(engine: &Engine) -> Vec<String> {
    as_of_days()
        .iter()
        .map(|day| render(&engine.metrics(crate::instant(day))))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_arrival_order_gives_the_same_metrics(
        ingredients in ingredients(),
        order in any::<prop::sample::Index>(),
        seed in any::<u64>(),
    ) {
        let events = build(&ingredients);
        let expected = snapshot(&engine_with(&events));
        let mut shuffled = shuffle(&events, seed);
        let rotation = order.index(shuffled.len());
        shuffled.rotate_left(rotation);
        prop_assert_eq!(snapshot(&engine_with(&shuffled)), expected);
    }

    /// A partner re-sends event ids with other content (another time,
    /// another fact): whichever order the versions arrive in, the metrics
    /// are the same (the version recorded later stands).
    #[test]
    fn conflicting_re_sends_in_any_order_give_the_same_metrics(
        ingredients in ingredients(),
        resends in proptest::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), 0_i64..3), 1..12),
        seed in any::<u64>(),
    ) {
        let events = build(&ingredients);
        let mut all = events.clone();
        for (original, content, later) in resends {
            all.push(re_sent(&events, original, content, later));
        }
        let forward = snapshot(&engine_with(&all));
        let mut shuffled = shuffle(&all, seed);
        prop_assert_eq!(snapshot(&engine_with(&shuffled)), forward.clone());
        shuffled.reverse();
        prop_assert_eq!(snapshot(&engine_with(&shuffled)), forward);
    }

    #[test]
    fn duplicates_change_nothing(ingredients in ingredients(), copies in proptest::collection::vec(any::<prop::sample::Index>(), 1..20)) {
        let events = build(&ingredients);
        let expected = snapshot(&engine_with(&events));
        let mut with_duplicates = events.clone();
        for copy in copies {
            with_duplicates.push(events[copy.index(events.len())]);
        }
        let engine = engine_with(&with_duplicates);
        prop_assert_eq!(engine.statistics().duplicates as usize, with_duplicates.len() - events.len());
        prop_assert_eq!(snapshot(&engine), expected);
    }

    /// A consumer restarts part-way and replays its log from the start (as
    /// the join role does on assignment), possibly applying the tail before
    /// the restart twice.
    #[test]
    fn a_restart_that_replays_gives_the_same_metrics(ingredients in ingredients(), cut in any::<prop::sample::Index>()) {
        let events = build(&ingredients);
        let expected = snapshot(&engine_with(&events));
        let cut = cut.index(events.len() + 1);
        // Before the restart the replica saw the first events in another
        // order (records of other partitions interleaved, a repeat).
        let mut before_restart = Engine::new(EngineConfig::default());
        for event in events[..cut].iter().rev().chain(events[..cut].first()) {
            before_restart.apply(event);
        }
        // The restarted replica rebuilds them by replaying the topic in
        // order, to the same state...
        let mut after_restart = engine_with(&events[..cut]);
        prop_assert_eq!(snapshot(&after_restart), snapshot(&before_restart));
        // ...then takes the rest as it arrives, some of it twice
        // (at-least-once), and ends where an engine that never restarted
        // ends.
        for event in events[cut..].iter().chain(&events[cut..]) {
            after_restart.apply(event);
        }
        prop_assert_eq!(snapshot(&after_restart), expected);
    }

    /// A rebuild that defers deriving (as the join role's replay does)
    /// ends where applying each event as it comes ends, whatever state it
    /// starts from and whatever repeats and re-sends it meets; until it
    /// settles, the metrics are those from before deferring.
    #[test]
    fn deferring_then_settling_gives_the_same_metrics(
        ingredients in ingredients(),
        cut in any::<prop::sample::Index>(),
        end in any::<prop::sample::Index>(),
        repeats in proptest::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), 0_i64..3), 0..12),
        seed in any::<u64>(),
    ) {
        let events = build(&ingredients);
        let mut all = events.clone();
        for (original, content, later) in repeats {
            // Now and then an exact repeat instead of another version.
            all.push(if later == 0 {
                events[original.index(events.len())]
            } else {
                re_sent(&events, original, content, later)
            });
        }
        let all = shuffle(&all, seed);
        let cut = cut.index(all.len() + 1);
        let end = end.index(all.len() + 1).max(cut);
        let mut engine = engine_with(&all[..cut]);
        let before = snapshot(&engine);
        engine.defer();
        prop_assert!(engine.is_deferred());
        for event in &all[cut..end] {
            engine.apply(event);
        }
        prop_assert_eq!(snapshot(&engine), before);
        engine.settle();
        prop_assert!(!engine.is_deferred());
        let settled = engine_with(&all[..end]);
        prop_assert_eq!(engine.statistics(), settled.statistics());
        prop_assert_eq!(snapshot(&engine), snapshot(&settled));
        // Then each event is derived as it comes again.
        for event in &all[end..] {
            engine.apply(event);
        }
        let expected = engine_with(&all);
        prop_assert_eq!(engine.statistics(), expected.statistics());
        prop_assert_eq!(snapshot(&engine), snapshot(&expected));
    }

    /// Evicting complete journeys keeps every total.
    #[test]
    fn eviction_keeps_every_total(ingredients in ingredients()) {
        let events = build(&ingredients);
        let mut engine = engine_with(&events);
        let late = crate::instant("2026-09-30 12:00");
        let before = render(&engine.metrics(late));
        engine.evict(late);
        prop_assert_eq!(render(&engine.metrics(late)), before);
    }
}

#[test]
fn eviction_frees_complete_journeys_and_refuses_their_late_duplicates() {
    let mut events = Events::default();
    let who = patient(1);
    events.admitted(who, "2026-01-01 09:00", 80);
    events.not_meeting(who, "2026-01-03 10:00", None);
    events.discharged(
        who,
        "2026-01-05 15:00",
        DischargeDestination::UsualPlaceOfResidence,
        DischargePathway::P0,
    );
    let open = patient(2);
    events.admitted(open, "2026-01-01 09:00", 80);
    let mut engine = engine_with(&events.events);
    let as_of = crate::instant("2026-07-01 12:00");
    let before = render(&engine.metrics(as_of));
    assert_eq!(
        engine.evict(as_of),
        1,
        "only the discharged journey is complete"
    );
    assert_eq!(engine.statistics().journeys, 1);
    assert_eq!(render(&engine.metrics(as_of)), before);
    // The discharge arriving again after eviction must not count twice.
    assert_eq!(
        engine.apply(&events.events[2]),
        icsflow_engine::Applied::BeyondHorizon
    );
    assert_eq!(render(&engine.metrics(as_of)), before);
}
