//! The engine: journeys by pseudonym, and the metric series they add up to.

use std::collections::hash_map::Entry;
use std::hash::{BuildHasher, Hash, RandomState};

use icsflow_core::*;

use crate::derive::{derive, Lookup, REABLEMENT_OUTCOME_DAY};
use crate::hashing::FastMap;
use crate::journey::{
    Correction, EventKey, Journey, StoredEvent, StoredKind, DAY_ZERO_SINCE_EPOCH,
};
use crate::labels::Window;
use crate::metrics::MetricKey;
use crate::series::{settled_value, Contribution, Series};
use crate::spells::Scratch;

/// How the engine keeps memory bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// A journey with no open spell whose last event is older than this
    /// many days is evicted; its contribution to every total is kept. Must
    /// exceed the longest window a metric waits for (91 days).
    pub eviction_horizon_days: i32,
}

impl EngineConfig {
    /// The shortest horizon that still lets every window settle first.
    pub const MINIMUM_HORIZON_DAYS: i32 = REABLEMENT_OUTCOME_DAY + 1;
}

impl Default for EngineConfig {
    /// 120 days: the 91-day reablement outcome and a month of late events.
    fn default() -> EngineConfig {
        EngineConfig {
            eviction_horizon_days: 120,
        }
    }
}

/// What applying one event did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The event is part of its journey now.
    Applied,
    /// Seen before (same publishing organisation and event id), or another
    /// version of it that does not stand: ignored, except that a version
    /// with content not seen before is counted in metric 14.
    Duplicate,
    /// For a patient with no journey held, and older than the eviction
    /// horizon: its journey may have been evicted, so applying it could count
    /// it twice. Ignored and counted.
    BeyondHorizon,
    /// Names a place or an organisation past the 65,536 distinct ones an
    /// engine's 16-bit tables can index: ignored and counted, never an index
    /// past a table. Through the roles it cannot happen: every event's place
    /// and organisation is one of the ICS's reference data (or
    /// `out_of_area`) before it reaches an engine (`Reference::counted`).
    TooManyLabelValues,
    /// The patient's journey already holds [`JOURNEY_EVENT_LIMIT`] events
    /// and versions kept (then even a re-sent version of one of them is
    /// refused), or
    /// [`JOURNEY_REFERENCE_LIMIT`] spell and episode references and this
    /// event names another: ignored and counted. Applying costs time in
    /// proportion to the patient's events, so this bounds what one
    /// pseudonym can cost every other patient of its partition.
    JourneyFull,
}

/// The most events one patient's journey holds: beyond any real journey
/// within the eviction horizon (a stay of 130 days with a criteria review,
/// a delay reason and a pathway every day is about 400 events). Applying
/// costs in proportion to the journey, so the first events of a flood cost
/// the square of this limit: at 1,000, one pseudonym's 30,000 events took
/// 0.6-1.2 times what 30,000 patients' did (`make bench`); at 2,000 the
/// square alone is over twice.
/// The versions an event id has with differing content, kept to count
/// them (metric 14), count towards it too.
pub const JOURNEY_EVENT_LIMIT: usize = 1_000;

/// The most versions with differing content kept of one event id: a partner
/// filling a record in a few times is counted in full, one re-sending an
/// id endlessly counts 7 re-sends of it (whatever the order, the count is
/// that of the distinct versions up to this many).
pub const EVENT_VERSION_LIMIT: usize = 8;

/// The most distinct spell and episode references one journey holds.
pub const JOURNEY_REFERENCE_LIMIT: usize = 255;

/// Counts about the engine itself, for its own metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStatistics {
    pub journeys: usize,
    pub applied: u64,
    pub duplicates: u64,
    pub beyond_horizon: u64,
    pub too_many_label_values: u64,
    /// Events ignored because their journey was full ([`Applied::JourneyFull`]).
    pub journey_full: u64,
    pub evicted: u64,
    /// Distinct days held across all series (what a metrics read walks).
    pub series_entries: usize,
    /// Series held (a series that holds nothing is dropped).
    pub series: usize,
}

/// Joins events into journeys and keeps every metric up to date.
#[derive(Debug, Default)]
pub struct Engine {
    config: EngineConfig,
    journeys: FastMap<Pseudonym, Journey>,
    series: FastMap<MetricKey, Series>,
    tables: Tables,
    /// Events before this day (since 2000) for unknown patients are beyond
    /// the horizon; set by [`Engine::evict`].
    horizon_day: Option<i32>,
    statistics: EngineStatistics,
    scratch_before: Vec<(MetricKey, Contribution)>,
    scratch_after: Vec<(MetricKey, Contribution)>,
    scratch: Scratch,
    /// Set between [`Engine::defer`] and [`Engine::settle`].
    deferred: Option<Deferred>,
    days: DayCache,
    /// Keys the fingerprints of event versions (metric 14): with a key no
    /// partner knows, no partner can craft a version that passes for one
    /// already seen. Fingerprints never leave the engine, and a replay
    /// rebuilds the same set of versions under its own key.
    fingerprints: RandomState,
}

/// The engine day of recent hours: the day in England changes only on a
/// UTC hour (midnight, or 23:00 UTC in summer), and the events applied
/// together mostly fall in a few hours, so this saves working out the
/// London date (a sixth of applying in a replay's profile) per event.
#[derive(Debug)]
struct DayCache {
    /// (hour since the epoch, its engine day), by hour modulo the length.
    hours: Box<[(i64, i32); DayCache::HOURS]>,
}

impl DayCache {
    const HOURS: usize = 256;

    fn day_of(&mut self, instant: Timestamp) -> i32 {
        let hour = instant.as_millis().div_euclid(3_600_000);
        let slot = &mut self.hours[hour.rem_euclid(Self::HOURS as i64) as usize];
        if slot.0 != hour {
            *slot = (hour, engine_day(instant));
        }
        slot.1
    }
}

impl Default for DayCache {
    fn default() -> DayCache {
        // No hour is `i64::MIN`: every slot starts empty.
        DayCache {
            hours: Box::new([(i64::MIN, 0); DayCache::HOURS]),
        }
    }
}

/// Journeys changed while derivation is deferred.
#[derive(Debug, Default)]
struct Deferred {
    /// Each journey touched, once, in the order first touched.
    touched: Vec<Pseudonym>,
    /// What a journey held before it was first touched contributed (the
    /// series still hold it); none for a journey that began since.
    before: FastMap<Pseudonym, Vec<(MetricKey, Contribution)>>,
}

impl Engine {
    pub fn new(config: EngineConfig) -> Engine {
        let eviction_horizon_days = config
            .eviction_horizon_days
            .max(EngineConfig::MINIMUM_HORIZON_DAYS);
        Engine {
            config: EngineConfig {
                eviction_horizon_days,
            },
            ..Engine::default()
        }
    }

    /// Adds one validated event to its patient's journey and moves every
    /// metric it changes (unless deriving is deferred: [`Engine::defer`]).
    /// Costs time proportional to that patient's events, not to the number
    /// of patients.
    pub fn apply(&mut self, event: &Event) -> Applied {
        let envelope = &event.envelope;
        let id = EventKey::new(envelope.event_id);
        // An event id is its organisation's own (a trust's, whichever of
        // its sites published): the organisation is compared by its code
        // here, so that a repeat costs no table lookup.
        let organisation_code = match event.body {
            EventBody::Discharge(_) => trust_of(envelope.source_organisation),
            _ => envelope.source_organisation,
        };
        let day = self.days.day_of(envelope.occurred_at);
        let at = engine_seconds(envelope.occurred_at);
        let recorded = engine_seconds(envelope.recorded_at);
        // A repeat costs one lookup and a comparison (the path every record
        // read again after a restart takes). Of two versions of one event
        // id, the one recorded later stands, then the one that occurred
        // later, then the greater content: never the one that arrived first.
        let mut replaces = false;
        // A version of a held event id with other content, and the one
        // held: whichever stands, both are kept and counted (metric 14).
        let mut conflicting: Option<[(u16, EventKey, [u32; 2]); 2]> = None;
        // One lookup: the entry is kept for the insert below.
        let entry = self.journeys.entry(envelope.patient);
        match &entry {
            Entry::Occupied(occupied) => {
                let journey = occupied.get();
                // A full journey takes nothing more, re-sends included, and
                // decides it before any search through its events: what
                // one pseudonym's flood costs is then its first
                // JOURNEY_EVENT_LIMIT events, however long it goes on.
                if journey.events.len() + journey.versions_held() >= JOURNEY_EVENT_LIMIT {
                    self.statistics.journey_full += 1;
                    return Applied::JourneyFull;
                }
                let tables = &self.tables;
                if let Some(stored) =
                    journey.find(id, |index| tables.organisation(index) == organisation_code)
                {
                    let held = (
                        stored.recorded,
                        stored.at,
                        journey.reference(stored.reference),
                        by_value(&self.tables, stored.kind),
                        journey.corrects(stored.organisation, id),
                    );
                    let corrects = envelope.corrects_event_id.map(EventKey::new);
                    let incoming =
                        self.tables
                            .stored_kind(&event.body, envelope.place)
                            .map(|kind| {
                                (
                                    recorded,
                                    at,
                                    envelope.episode_reference,
                                    by_value(&self.tables, kind),
                                    corrects,
                                )
                            });
                    // What a version says, without when it was recorded: a
                    // record sent again with a new `recorded_at` and the
                    // same facts (an extract that stamps every record) is
                    // no conflict.
                    let content = |version: &(u32, u32, _, _, _)| {
                        (version.1, version.2, version.3, version.4)
                    };
                    if let Some(incoming) =
                        incoming.filter(|incoming| content(incoming) != content(&held))
                    {
                        let version = |said| {
                            (
                                stored.organisation,
                                id,
                                fingerprint(&self.fingerprints, said),
                            )
                        };
                        let versions = [version(&content(&held)), version(&content(&incoming))];
                        let unseen = versions
                            .iter()
                            .filter(|&&(organisation, id, said)| {
                                !journey.has_version(organisation, id, said)
                            })
                            .count();
                        let kept = journey.versions_of(stored.organisation, id);
                        if unseen > 0 && kept + unseen <= EVENT_VERSION_LIMIT {
                            conflicting = Some(versions);
                        }
                    }
                    let stands = incoming.is_some_and(|incoming| incoming > held);
                    if !stands && conflicting.is_none() {
                        self.statistics.duplicates += 1;
                        return Applied::Duplicate;
                    }
                    replaces = stands;
                }
            }
            Entry::Vacant(_) if self.horizon_day.is_some_and(|horizon| day < horizon) => {
                self.statistics.beyond_horizon += 1;
                return Applied::BeyondHorizon;
            }
            Entry::Vacant(_) => {}
        }
        // Interned before the journey is touched, so that an event past the
        // tables' index space changes nothing at all.
        let organisation = match event.body {
            // Spells are the trust's, whichever of its sites published.
            EventBody::Discharge(_) => self.tables.trust_index(envelope.source_organisation),
            _ => self.tables.organisation_index(envelope.source_organisation),
        };
        let (Some(kind), Some(organisation)) = (
            self.tables.stored_kind(&event.body, envelope.place),
            organisation,
        ) else {
            self.statistics.too_many_label_values += 1;
            return Applied::TooManyLabelValues;
        };
        let journey = entry.or_default();
        let new_reference = envelope
            .episode_reference
            .is_some_and(|reference| !journey.references.contains(&reference));
        // A version that does not stand only adds to the versions seen.
        let ignored = conflicting.is_some() && !replaces;
        if new_reference && !ignored && journey.references.len() >= JOURNEY_REFERENCE_LIMIT {
            self.statistics.journey_full += 1;
            return Applied::JourneyFull;
        }

        self.scratch_before.clear();
        match &mut self.deferred {
            None => derive(
                journey,
                &self.tables,
                &mut self.scratch,
                &mut self.scratch_before,
            ),
            Some(deferred) if !journey.deferred => {
                journey.deferred = true;
                deferred.touched.push(envelope.patient);
                if !journey.events.is_empty() {
                    let mut before = Vec::new();
                    derive(journey, &self.tables, &mut self.scratch, &mut before);
                    deferred.before.insert(envelope.patient, before);
                }
            }
            Some(_) => {}
        }

        for (organisation, id, content) in conflicting.into_iter().flatten() {
            journey.add_version(organisation, id, content);
        }
        if !ignored {
            if replaces {
                journey.remove(organisation, id);
            }
            let reference = journey.reference_index(envelope.episode_reference);
            journey.insert(StoredEvent {
                id,
                at,
                recorded,
                day: day.clamp(0, i32::from(u16::MAX)) as u16,
                organisation,
                reference,
                kind,
            });
            if let Some(corrected) = envelope.corrects_event_id {
                journey.add_correction(Correction {
                    organisation,
                    corrected: EventKey::new(corrected),
                    by: id,
                });
            }
        }

        if !journey.deferred {
            rederive(
                journey,
                &self.tables,
                &mut self.scratch,
                &mut self.series,
                &mut self.scratch_before,
                &mut self.scratch_after,
            );
        }
        if ignored {
            self.statistics.duplicates += 1;
            return Applied::Duplicate;
        }
        self.statistics.applied += 1;
        Applied::Applied
    }

    /// Defers deriving until [`Engine::settle`]: from now on, applying an
    /// event only stores it, and each journey touched is derived once when
    /// settling instead of twice per event. A replay applies a journey's
    /// events one after another, so this makes a rebuild cost one
    /// derivation per journey rather than two per event.
    ///
    /// Until settled, [`Engine::metrics`] shows every journey touched since
    /// as it was before its first touch (a journey begun since, not at
    /// all). Deciding duplicates, corrections and re-sends does not derive,
    /// so what is applied, and every metric's value once settled, is what
    /// applying without deferring gives. (Only a series that passing states
    /// alone touched, 0 by the end, is not held at all.)
    pub fn defer(&mut self) {
        self.deferred.get_or_insert_with(Deferred::default);
    }

    /// Whether derivation is deferred (between [`Engine::defer`] and
    /// [`Engine::settle`]).
    pub fn is_deferred(&self) -> bool {
        self.deferred.is_some()
    }

    /// Derives every journey touched since [`Engine::defer`] and moves the
    /// series by what changed; events applied from now on are derived as
    /// they come. Does nothing when nothing is deferred.
    pub fn settle(&mut self) {
        let Some(Deferred {
            touched,
            mut before,
        }) = self.deferred.take()
        else {
            return;
        };
        for patient in touched {
            let Some(journey) = self.journeys.get_mut(&patient) else {
                debug_assert!(false, "a touched journey is held until settled");
                continue;
            };
            journey.deferred = false;
            rederive(
                journey,
                &self.tables,
                &mut self.scratch,
                &mut self.series,
                &mut before.remove(&patient).unwrap_or_default(),
                &mut self.scratch_after,
            );
        }
    }

    /// Evicts journeys with no open spell whose last event is older than the
    /// horizon as of `as_of`, keeping their settled contributions as
    /// constants. Returns how many were evicted. Settles first (see
    /// [`Engine::settle`]): a journey is judged on what it derives now.
    pub fn evict(&mut self, as_of: Timestamp) -> usize {
        self.settle();
        let horizon = engine_day(as_of) - self.config.eviction_horizon_days;
        self.horizon_day = Some(self.horizon_day.map_or(horizon, |known| known.max(horizon)));
        let candidates: Vec<Pseudonym> = self
            .journeys
            .iter()
            .filter(|(_, journey)| {
                journey.last_day() < horizon && !journey.has_open_spell(&mut self.scratch)
            })
            .map(|(patient, _)| *patient)
            .collect();
        let mut evicted = 0;
        let mut contributions = Vec::new();
        for patient in candidates {
            let Some(journey) = self.journeys.get(&patient) else {
                continue;
            };
            contributions.clear();
            derive(journey, &self.tables, &mut self.scratch, &mut contributions);
            contributions.sort_unstable();
            let groups: Vec<&[(MetricKey, Contribution)]> = contributions
                .chunk_by(|left, right| left.0 == right.0)
                .collect();
            // Only a journey whose every series has settled can go.
            let Some(settled) = groups
                .iter()
                .map(|group| {
                    settled_value(group.iter().map(|(_, contribution)| *contribution))
                        .map(|value| (group[0].0, value))
                })
                .collect::<Option<Vec<_>>>()
            else {
                continue;
            };
            for (key, contribution) in &contributions {
                add_to_series(&mut self.series, *key, contribution.negated());
            }
            for (key, value) in settled {
                add_to_series(&mut self.series, key, Contribution::Constant(value));
            }
            self.journeys.remove(&patient);
            evicted += 1;
        }
        self.statistics.evicted += evicted as u64;
        evicted
    }

    /// Every series, valued as of `as_of` (its day in England), sorted.
    /// Costs time proportional to the series and the days they hold.
    pub fn metrics(&self, as_of: Timestamp) -> Vec<(MetricKey, i64)> {
        let day = engine_day(as_of);
        let mut values: Vec<(MetricKey, i64)> = Vec::with_capacity(self.series.len() * 2);
        // Held keys summed into the band they fall in on this day.
        let mut banded: FastMap<MetricKey, i64> = FastMap::default();
        for (key, series) in &self.series {
            if let Some(band) = key.read_as(day) {
                *banded.entry(band).or_insert(0) += series.value(day);
                continue;
            }
            values.push((*key, series.value(day)));
            // A running total's windows: what it gained over the complete
            // days ending yesterday (a series' value on a day includes
            // that day's steps and the midnight that begins it).
            for window in Window::ALL {
                if let Some(windowed) = key.in_window(window) {
                    let end = day - 1;
                    values.push((
                        windowed,
                        series.value(end) - series.value(end - window.days()),
                    ));
                }
            }
        }
        values.extend(banded);
        values.sort_unstable_by_key(|(key, _)| *key);
        values
    }

    pub fn statistics(&self) -> EngineStatistics {
        EngineStatistics {
            journeys: self.journeys.len(),
            series_entries: self.series.values().map(Series::entries).sum(),
            series: self.series.len(),
            ..self.statistics
        }
    }

    pub fn config(&self) -> EngineConfig {
        self.config
    }
}

/// Derives `journey` into `after` and moves the series from what it
/// contributed, `before`, to that.
fn rederive(
    journey: &Journey,
    tables: &Tables,
    scratch: &mut Scratch,
    series: &mut FastMap<MetricKey, Series>,
    before: &mut [(MetricKey, Contribution)],
    after: &mut Vec<(MetricKey, Contribution)>,
) {
    after.clear();
    derive(journey, tables, scratch, after);
    apply_difference(series, before, after);
}

/// Removes `before` and adds `after`, skipping what both hold: most events
/// change a few series of their journey, not all of them.
/// Adds a contribution to its series, and drops a series that no longer
/// holds anything. Keys carry days (a `*_since` series per start day), so a
/// series left at zero for ever would grow the map, and every metrics read,
/// with each simulated or real day; a key that comes back starts afresh.
fn add_to_series(
    series: &mut FastMap<MetricKey, Series>,
    key: MetricKey,
    contribution: Contribution,
) {
    match series.entry(key) {
        Entry::Occupied(mut occupied) => {
            occupied.get_mut().add(contribution);
            if occupied.get().is_zero() {
                occupied.remove();
            }
        }
        Entry::Vacant(vacant) => {
            let mut fresh = Series::default();
            fresh.add(contribution);
            if !fresh.is_zero() {
                vacant.insert(fresh);
            }
        }
    }
}

fn apply_difference(
    series: &mut FastMap<MetricKey, Series>,
    before: &mut [(MetricKey, Contribution)],
    after: &mut [(MetricKey, Contribution)],
) {
    // A derivation emits in a fixed order, so what both hold is mostly a
    // common beginning and end: skipped without sorting.
    let prefix = before
        .iter()
        .zip(after.iter())
        .take_while(|(left, right)| left == right)
        .count();
    let (before, after) = (&mut before[prefix..], &mut after[prefix..]);
    let suffix = before
        .iter()
        .rev()
        .zip(after.iter().rev())
        .take_while(|(left, right)| left == right)
        .count();
    let (before_end, after_end) = (before.len() - suffix, after.len() - suffix);
    let (before, after) = (&mut before[..before_end], &mut after[..after_end]);
    before.sort_unstable();
    after.sort_unstable();
    let (mut old, mut new) = (before.iter().peekable(), after.iter().peekable());
    loop {
        let order = match (old.peek(), new.peek()) {
            (Some(left), Some(right)) => left.cmp(right),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => break,
        };
        match order {
            std::cmp::Ordering::Equal => {
                old.next();
                new.next();
            }
            std::cmp::Ordering::Less => {
                if let Some(left) = old.next() {
                    add_to_series(series, left.0, left.1.negated());
                }
            }
            std::cmp::Ordering::Greater => {
                if let Some(right) = new.next() {
                    add_to_series(series, right.0, right.1);
                }
            }
        }
    }
}

/// The trust of an organisation code: its first three characters (a site
/// `RVW01` belongs to trust `RVW`).
fn trust_of(organisation: OdsCode) -> OdsCode {
    organisation.truncated(3)
}

/// Day in England since 2000-01-01.
pub(crate) fn engine_day(instant: Timestamp) -> i32 {
    instant.london_date().days_since_epoch() - DAY_ZERO_SINCE_EPOCH
}

fn engine_day_of_date(date: Date) -> u16 {
    (date.days_since_epoch() - DAY_ZERO_SINCE_EPOCH).clamp(0, i32::from(u16::MAX)) as u16
}

fn engine_seconds(instant: Timestamp) -> u32 {
    let seconds = instant.as_millis().div_euclid(1000) - i64::from(DAY_ZERO_SINCE_EPOCH) * 86_400;
    seconds.clamp(0, i64::from(u32::MAX)) as u32
}

/// Interned organisations and places: events store 16-bit indices.
#[derive(Debug, Default)]
struct Tables {
    organisations: Vec<OdsCode>,
    organisation_indices: FastMap<OdsCode, u16>,
    /// A discharge-feed publisher (trust or site) to its trust's index, so
    /// that a site's code is cut to its trust once, not per event.
    trust_indices: FastMap<OdsCode, u16>,
    places: Vec<PlaceCode>,
    place_indices: FastMap<PlaceCode, u16>,
}

impl Tables {
    fn organisation_index(&mut self, organisation: OdsCode) -> Option<u16> {
        intern(
            &mut self.organisations,
            &mut self.organisation_indices,
            organisation,
        )
    }

    /// The index of the trust of a discharge-feed publisher.
    fn trust_index(&mut self, publisher: OdsCode) -> Option<u16> {
        if let Some(&index) = self.trust_indices.get(&publisher) {
            return Some(index);
        }
        let index = self.organisation_index(trust_of(publisher))?;
        self.trust_indices.insert(publisher, index);
        Some(index)
    }

    fn place_index(&mut self, place: PlaceCode) -> Option<u16> {
        intern(&mut self.places, &mut self.place_indices, place)
    }

    /// The stored form of an event body; `None` when it names a place past
    /// the limit.
    fn stored_kind(&mut self, body: &EventBody, place: PlaceCode) -> Option<StoredKind> {
        Some(match *body {
            EventBody::Discharge(DischargeBody::Admitted {
                admission_method,
                age_years,
                bed_type,
                ..
            }) => StoredKind::Admitted {
                emergency: admission_method.is_emergency(),
                age_years: age_years.years(),
                bed_type,
                place: self.place_index(place)?,
            },
            EventBody::Discharge(DischargeBody::AdmissionCancelled) => {
                StoredKind::AdmissionCancelled
            }
            EventBody::Discharge(DischargeBody::CriteriaToResideAssessed(
                CriteriaToReside::Meets(_),
            )) => StoredKind::CriteriaMet,
            EventBody::Discharge(DischargeBody::CriteriaToResideAssessed(
                CriteriaToReside::DoesNotMeet {
                    discharge_ready_date,
                },
            )) => StoredKind::CriteriaNotMet {
                ready_day: discharge_ready_date.map(engine_day_of_date),
            },
            EventBody::Discharge(DischargeBody::PathwayAssigned { pathway }) => {
                StoredKind::PathwayAssigned(pathway)
            }
            EventBody::Discharge(DischargeBody::DelayReasonRecorded { reason_family, .. }) => {
                StoredKind::DelayReason(reason_family)
            }
            EventBody::Discharge(DischargeBody::Discharged {
                destination,
                pathway,
                ..
            }) => StoredKind::Discharged {
                destination,
                pathway,
            },
            EventBody::Discharge(DischargeBody::DischargeCancelled) => {
                StoredKind::DischargeCancelled
            }
            EventBody::SocialCare(SocialCareBody::ServiceStarted {
                service_type,
                service_component,
            }) => StoredKind::ServiceStarted {
                service_type,
                component: service_component,
            },
            EventBody::SocialCare(SocialCareBody::ServiceEnded { end_reason }) => {
                StoredKind::ServiceEnded(end_reason)
            }
            EventBody::SocialCare(_) => StoredKind::OtherSocialCare,
            EventBody::PrimaryCare(PrimaryCareBody::PostDischargeContact {
                attendance, ..
            }) => StoredKind::Contact {
                attended: attendance == ContactAttendance::Attended,
            },
            EventBody::PrimaryCare(PrimaryCareBody::DeathNotified { date_of_death }) => {
                StoredKind::DeathNotified {
                    day: engine_day_of_date(date_of_death),
                }
            }
            EventBody::PrimaryCare(_) => StoredKind::OtherPrimaryCare,
        })
    }
}

impl Lookup for Tables {
    fn organisation(&self, index: u16) -> OdsCode {
        self.organisations[usize::from(index)]
    }

    fn place(&self, index: u16) -> PlaceCode {
        self.places[usize::from(index)]
    }
}

/// A fingerprint of what one version of an event says, under the engine's
/// own key.
fn fingerprint(key: &RandomState, said: &impl Hash) -> [u32; 2] {
    let value = key.hash_one(said);
    [(value >> 32) as u32, value as u32]
}

/// A stored kind comparable across engines and arrival orders: the
/// admission's place as its code instead of its interned index.
fn by_value(tables: &Tables, kind: StoredKind) -> (StoredKind, Option<PlaceCode>) {
    match kind {
        StoredKind::Admitted {
            emergency,
            age_years,
            bed_type,
            place,
        } => (
            StoredKind::Admitted {
                emergency,
                age_years,
                bed_type,
                place: 0,
            },
            Some(tables.place(place)),
        ),
        other => (other, None),
    }
}

fn intern<T: Copy + Eq + std::hash::Hash>(
    values: &mut Vec<T>,
    indices: &mut FastMap<T, u16>,
    value: T,
) -> Option<u16> {
    if let Some(&index) = indices.get(&value) {
        return Some(index);
    }
    // `None` past the 16-bit index space, never an index past the table.
    let index = u16::try_from(values.len()).ok()?;
    values.push(value);
    indices.insert(value, index);
    Some(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_cache_gives_the_day_in_england_across_clock_changes() {
        let mut cache = DayCache::default();
        // 2026 (both clock changes), every 7 minutes, forwards and then
        // backwards so that slots are reused.
        let start = Date::from_calendar(2026, 1, 1)
            .expect("date")
            .start()
            .as_millis();
        let instants: Vec<Timestamp> = (0..366 * 24 * 60 / 7)
            .map(|step| Timestamp::from_millis(start + step * 7 * 60_000))
            .collect();
        for instant in instants.iter().chain(instants.iter().rev()) {
            assert_eq!(cache.day_of(*instant), engine_day(*instant), "{instant:?}");
        }
        // 23:30 UTC on 28 March 2026 is still the 28th in England; 23:30
        // UTC on 30 March (BST) is the 31st.
        let at = |month, day, minutes: i64| {
            Timestamp::from_millis(
                Date::from_calendar(2026, month, day)
                    .expect("date")
                    .start()
                    .as_millis()
                    + minutes * 60_000,
            )
        };
        assert_eq!(
            cache.day_of(at(3, 28, 23 * 60 + 30)) + 1,
            cache.day_of(at(3, 29, 12 * 60))
        );
        assert_eq!(
            cache.day_of(at(3, 30, 23 * 60 + 30)),
            cache.day_of(at(3, 31, 12 * 60))
        );
    }

    #[test]
    fn interning_stops_at_the_index_space_instead_of_indexing_past_its_table() {
        let mut values = Vec::new();
        let mut indices = FastMap::default();
        for value in 0..=u32::from(u16::MAX) {
            assert!(intern(&mut values, &mut indices, value).is_some());
        }
        assert_eq!(intern(&mut values, &mut indices, u32::MAX), None);
        assert_eq!(intern(&mut values, &mut indices, 7), Some(7));
        assert_eq!(values.len(), usize::from(u16::MAX) + 1);
    }
}
