//! Routing: a partner record decoded, validated and checked against its
//! topic's owner and the ICS's reference data, becomes an event for the
//! journey topic or a dead letter (headers only) with its reason.

use icsflow_avro::{DecodeError, EventDecoder};
use icsflow_core::Timestamp;
use icsflow_core::{Envelope, Feed, PerKind, RejectReason, Rejection, TimestampPolicy};
use icsflow_events::events::{DelayStage, Lateness, RecordRejected};
use icsflow_events::{Counter, CounterHandle, Events, Gauge, GaugeHandle, OTHER_ORGANISATION};
use rdkafka::message::{BorrowedMessage, Message};

use crate::dead_letter::DeadLetterHeaders;
use crate::sources::PartnerTopic;

/// The dead letter of one rejected partner record: headers only, its value
/// empty (no partner byte is ever copied; `dead_letter.rs`).
pub(super) struct DeadLetter {
    pub(super) headers: rdkafka::message::OwnedHeaders,
}

/// What a partner record comes to.
pub(super) enum Routed {
    /// A validated event, for the journey topic.
    Accepted(icsflow_core::Event),
    /// A dead letter, for the dead-letter topic.
    Rejected(DeadLetter),
}

/// A partner record routed, or held for its schema. Returned once per
/// record and matched at once: boxing the event would allocate per record.
#[allow(clippy::large_enum_variant)]
pub(super) enum Routing {
    Routed(Routed),
    /// The record's schema id is not cached: look it up first.
    LookupNeeded(u32),
}

pub(super) fn route(
    message: &BorrowedMessage<'_>,
    source: &PartnerTopic,
    now: Timestamp,
    decoder: &EventDecoder,
    reference: &icsflow_core::Reference,
    events: &Events,
    freshness: &mut Freshness,
) -> Routing {
    let feed = source.feed;
    let payload = message.payload().unwrap_or_default();
    let decoded = decoder
        .decode_cached(payload, &TimestampPolicy::wall_clock(now))
        .and_then(|event| {
            let organisation = event.envelope.source_organisation;
            if event.feed() != feed {
                Err(Rejection::new(
                    RejectReason::IncompatibleSchema,
                    "the record belongs to another feed than its topic",
                ))
            } else if !source.admits(organisation) {
                Err(Rejection::in_field(
                    RejectReason::OrganisationMismatch,
                    "source_organisation",
                    "a partner's topic carries only records of that partner (its own code, its sites, or the organisations it publishes for in the ICS's reference data)",
                ))
            } else {
                // Only the ICS's places and organisations travel on: a
                // place outside it as `out_of_area`, a site as its trust.
                reference.counted(&event).ok_or_else(|| {
                    Rejection::in_field(
                        RejectReason::OrganisationMismatch,
                        "source_organisation",
                        "no partner of the ICS publishes for this organisation (the ICS's reference data lists every partner, its sites and the organisations it publishes for)",
                    )
                })
            }
            .map_err(|rejection| {
                DecodeError::Rejected(rejection.from_organisation(Some(organisation)))
            })
        })
        .map_err(|error| match error {
            // On a partner's own topic the publisher is known whatever the
            // record says: its rejections are counted against it, never
            // against an organisation it named.
            DecodeError::Rejected(rejection) => DecodeError::Rejected(
                rejection.from_organisation(source.publisher(rejection.organisation)),
            ),
            error => error,
        });
    match decoded {
        Ok(event) => {
            freshness.record(events, feed, &event.envelope, now);
            Routing::Routed(Routed::Accepted(event))
        }
        Err(DecodeError::Rejected(rejection)) => {
            // The explanation names a field and a rule, never a value.
            events.emit(RecordRejected {
                feed,
                organisation: rejection.organisation,
                reason: rejection.reason,
                field: rejection.field,
                topic: message.topic(),
                partition: message.partition(),
                offset: message.offset(),
            });
            let headers = DeadLetterHeaders {
                reason: rejection.reason,
                topic: message.topic().to_owned(),
                partition: message.partition(),
                offset: message.offset(),
                feed,
                organisation: rejection.organisation,
                field: rejection.field,
                event_id: icsflow_avro::peek_event_id(payload),
                rejected_at_millis: now.as_millis(),
            };
            Routing::Routed(Routed::Rejected(DeadLetter {
                headers: headers.to_kafka(),
            }))
        }
        // `decode_cached` never asks the registry, so only this comes back
        // from it; the others are answers to a lookup.
        Err(
            DecodeError::LookupNeeded { schema_id }
            | DecodeError::RegistryUnavailable { schema_id, .. }
            | DecodeError::RegistryRefused { schema_id, .. },
        ) => Routing::LookupNeeded(schema_id),
    }
}

/// How fresh and how timely each partner feed is: the newest `occurred_at`
/// seen (`icsflow_ingest_last_event_timestamp_seconds`) and every accepted
/// event counted by how late it was recorded and how late it arrived
/// (`icsflow_ingest_events_by_delay_total`), with their series looked up
/// once per organisation. Keyed by the organisation an accepted event
/// counts as in the reference data; one no partner speaks for (never
/// accepted, so only in tests without reference data) shares the `None`
/// entry (`other`): record content cannot grow this map.
#[derive(Default)]
pub(super) struct Freshness {
    index: std::collections::HashMap<(Feed, Option<icsflow_core::OdsCode>), usize>,
    newest: Vec<FeedSeries>,
    /// The last organisation recorded and its entry: a partner's records
    /// come in runs.
    last: Option<(Feed, icsflow_core::OdsCode, usize)>,
}

/// The freshness and timeliness series of one partner feed.
struct FeedSeries {
    last_event: GaugeHandle,
    /// Seconds; `i64::MIN` before the first.
    newest: i64,
    by_delay: PerKind<DelayStage, PerKind<Lateness, CounterHandle>>,
}

impl Freshness {
    /// Records an accepted event of `feed` taken at `now`.
    fn record(&mut self, events: &Events, feed: Feed, envelope: &Envelope, now: Timestamp) {
        let organisation = envelope.source_organisation;
        let occurred_at = envelope.occurred_at.as_millis();
        let recorded_at = envelope.recorded_at.as_millis();
        let seconds = occurred_at / 1000;
        let entry = match self.last {
            Some((last_feed, last, entry)) if last_feed == feed && last == organisation => entry,
            _ => {
                let entry = self.entry(events, feed, organisation);
                self.last = Some((feed, organisation, entry));
                entry
            }
        };
        let series = &mut self.newest[entry];
        if seconds > series.newest {
            series.newest = seconds;
            series.last_event.set(seconds);
        }
        series.by_delay[DelayStage::Recorded][Lateness::of(recorded_at - occurred_at)].add(1);
        series.by_delay[DelayStage::Arrived][Lateness::of(now.as_millis() - recorded_at)].add(1);
    }

    fn entry(&mut self, events: &Events, feed: Feed, organisation: icsflow_core::OdsCode) -> usize {
        if let Some(entry) = self.index.get(&(feed, Some(organisation))) {
            return *entry;
        }
        let label = events.organisation_label(Some(organisation));
        let key = (feed, (label != OTHER_ORGANISATION).then_some(organisation));
        let next = self.newest.len();
        let entry = *self.index.entry(key).or_insert(next);
        if entry == next {
            self.newest.push(FeedSeries {
                last_event: events.gauge(Gauge::LastEvent, &[feed.as_str(), &label]),
                newest: i64::MIN,
                by_delay: PerKind::new(|stage: &DelayStage| {
                    PerKind::new(|delay: &Lateness| {
                        events.counter(
                            Counter::EventsByDelay,
                            &[feed.as_str(), &label, stage.label(), delay.label()],
                        )
                    })
                }),
            });
        }
        entry
    }
}
