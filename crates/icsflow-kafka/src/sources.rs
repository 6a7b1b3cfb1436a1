//! The partner topics ingest reads, as it meets them.
//!
//! With the shared layout there are three, one per feed, and every partner
//! writes its feed's topic. With the per-partner layout each publishing
//! organisation has a topic per feed of its own (`ics.discharge.v1.RXP`),
//! which ingest subscribes to by pattern, so a new partner needs a topic
//! and credentials, not a new icsflow release. A record on a partner's own
//! topic may only speak for that partner (its sites, the practices it
//! publishes for): the broker's ACLs decide who writes the topic, and
//! ingest checks that the record's `source_organisation` belongs to the
//! topic's partner.

use std::collections::HashMap;
use std::sync::Arc;

use icsflow_core::{Feed, OdsCode, Partner};
use icsflow_events::{Counter, CounterHandle, Events};

use crate::settings::{TopicLayout, Topics};

/// An index into [`PartnerTopics`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct TopicId(u32);

impl TopicId {
    #[cfg(test)]
    pub(crate) const fn new(index: u32) -> TopicId {
        TopicId(index)
    }
}

/// Who a partner topic belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Owner {
    /// A feed's shared topic: any partner of the feed.
    Shared,
    /// A partner's own topic: records may speak only for this partner.
    Partner(Partner),
    /// A topic of the per-partner pattern whose suffix names no partner of
    /// the feed in the reference data: nobody may publish there.
    Nobody,
}

/// One partner topic ingest has met.
#[derive(Debug)]
pub(crate) struct PartnerTopic {
    pub(crate) name: Arc<str>,
    pub(crate) feed: Feed,
    pub(crate) owner: Owner,
    /// `icsflow_pipeline_consumed_records_total` for this topic.
    pub(crate) consumed: CounterHandle,
}

impl PartnerTopic {
    /// Whether a record naming `organisation` as its source may be on this
    /// topic.
    pub(crate) fn admits(&self, organisation: OdsCode) -> bool {
        match &self.owner {
            Owner::Shared => true,
            Owner::Partner(partner) => partner.speaks_for(organisation),
            Owner::Nobody => false,
        }
    }

    /// Who a rejected record of this topic is counted against: on a
    /// partner's own topic that partner, whatever the record names; on a
    /// topic nobody owns, nobody; on a shared topic, the organisation the
    /// record names (`named`).
    pub(crate) fn publisher(&self, named: Option<OdsCode>) -> Option<OdsCode> {
        match &self.owner {
            Owner::Shared => named,
            Owner::Partner(partner) => Some(partner.code),
            Owner::Nobody => None,
        }
    }
}

/// The partner topics met so far, each resolved once.
pub(crate) struct PartnerTopics {
    topics: Topics,
    sources: Vec<PartnerTopic>,
    by_name: HashMap<Arc<str>, TopicId>,
    events: Events,
}

impl PartnerTopics {
    pub(crate) fn new(topics: &Topics, events: &Events) -> PartnerTopics {
        PartnerTopics {
            topics: topics.clone(),
            sources: Vec::new(),
            by_name: HashMap::new(),
            events: events.clone(),
        }
    }

    /// What the consumer subscribes to: the feeds' topics, or patterns
    /// (librdkafka reads a leading `^` as a regular expression) matching
    /// every partner's.
    pub(crate) fn subscription(&self) -> Vec<String> {
        let feeds = self.topics.partner_topics();
        match self.topics.layout {
            TopicLayout::Shared => feeds.iter().map(|(name, _)| name.to_string()).collect(),
            TopicLayout::PerPartner(_) => feeds
                .iter()
                .map(|(name, _)| format!("^{}\\.[A-Z0-9]+$", escape(name)))
                .collect(),
        }
    }

    /// Whether the lag of `topic` is one this role reports.
    pub(crate) fn is_partner_topic(topics: &Topics, topic: &str) -> bool {
        topics
            .partner_topics()
            .iter()
            .any(|(name, _)| match topics.layout {
                TopicLayout::Shared => topic == *name,
                TopicLayout::PerPartner(_) => per_partner_suffix(topic, name).is_some(),
            })
    }

    /// The source a record's topic is, met now or before; `None` for a
    /// topic that is no partner topic (never subscribed to).
    pub(crate) fn resolve(&mut self, topic: &str) -> Option<TopicId> {
        if let Some(id) = self.by_name.get(topic) {
            return Some(*id);
        }
        let (feed, owner) = self.classify(topic)?;
        let name: Arc<str> = Arc::from(topic);
        let id = TopicId(u32::try_from(self.sources.len()).ok()?);
        self.sources.push(PartnerTopic {
            name: Arc::clone(&name),
            feed,
            owner,
            consumed: self.events.counter(Counter::Consumed, &["ingest", topic]),
        });
        self.by_name.insert(name, id);
        Some(id)
    }

    pub(crate) fn get(&self, id: TopicId) -> &PartnerTopic {
        &self.sources[id.0 as usize]
    }

    pub(crate) fn name(&self, id: TopicId) -> &str {
        &self.get(id).name
    }

    fn classify(&self, topic: &str) -> Option<(Feed, Owner)> {
        let feeds = self.topics.partner_topics();
        match &self.topics.layout {
            TopicLayout::Shared => feeds
                .iter()
                .find(|(name, _)| *name == topic)
                .map(|(_, feed)| (*feed, Owner::Shared)),
            TopicLayout::PerPartner(reference) => feeds.iter().find_map(|(name, feed)| {
                let suffix = per_partner_suffix(topic, name)?;
                let owner = reference
                    .partner(suffix)
                    .filter(|partner| partner.feed() == *feed)
                    .map_or(Owner::Nobody, |partner| Owner::Partner(partner.clone()));
                Some((*feed, owner))
            }),
        }
    }
}

/// The suffix of a per-partner topic of the feed topic `feed_topic`: upper
/// case letters and digits after `feed_topic.`.
fn per_partner_suffix<'a>(topic: &'a str, feed_topic: &str) -> Option<&'a str> {
    let suffix = topic.strip_prefix(feed_topic)?.strip_prefix('.')?;
    let well_formed = !suffix.is_empty()
        && suffix
            .bytes()
            .all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit());
    well_formed.then_some(suffix)
}

/// A topic name as a literal in a POSIX extended regular expression (topic
/// names hold letters, digits, `.`, `_` and `-`; only `.` is special).
fn escape(topic: &str) -> String {
    topic.replace('.', "\\.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use icsflow_core::PartnerKind;

    fn topics(layout: TopicLayout) -> Topics {
        Topics {
            discharge: "ics.discharge.v1".to_owned(),
            social_care: "ics.social_care.v1".to_owned(),
            primary_care: "ics.primary_care.v1".to_owned(),
            journey: "icsflow.journey.v1".to_owned(),
            dead_letter: "icsflow.deadletter.v1".to_owned(),
            layout,
        }
    }

    fn reference() -> Arc<icsflow_core::Reference> {
        Arc::new(icsflow_core::sample_reference(&[
            ("RXP", PartnerKind::AcuteTrust),
            ("840", PartnerKind::LocalAuthority),
        ]))
    }

    #[test]
    fn per_partner_topics_are_owned_by_the_partner_their_suffix_names_for_its_own_feed() {
        let events = Events::new(Arc::new(icsflow_events::metrics::Tally::default()));
        let mut sources =
            PartnerTopics::new(&topics(TopicLayout::PerPartner(reference())), &events);
        let owner = |sources: &mut PartnerTopics, topic: &str| {
            sources.resolve(topic).map(|id| {
                let source = sources.get(id);
                (source.feed, source.owner.clone())
            })
        };
        let code = |text| OdsCode::parse("test", text).expect("code");
        let id = sources.resolve("ics.discharge.v1.RXP").expect("a source");
        let rxp = sources.get(id);
        assert_eq!(rxp.feed, Feed::Discharge);
        assert!(rxp.admits(code("RXP")) && rxp.admits(code("RXP02")));
        assert!(!rxp.admits(code("RTD")));
        assert_eq!(rxp.publisher(Some(code("RTD"))), Some(code("RXP")));
        // A trust's code on the social care feed, and a code nobody has.
        assert_eq!(
            owner(&mut sources, "ics.social_care.v1.RXP"),
            Some((Feed::SocialCare, Owner::Nobody))
        );
        assert_eq!(
            owner(&mut sources, "ics.discharge.v1.RTD"),
            Some((Feed::Discharge, Owner::Nobody))
        );
        // Not of the pattern: the shared topic, another's prefix.
        assert_eq!(owner(&mut sources, "ics.discharge.v1"), None);
        assert_eq!(owner(&mut sources, "ics.discharge.v10.RXP"), None);
        assert_eq!(owner(&mut sources, "ics.discharge.v1.rxp"), None);
        // Met once, resolved to the same id.
        assert_eq!(sources.resolve("ics.discharge.v1.RXP"), Some(id));
        assert_eq!(
            sources.subscription(),
            [
                "^ics\\.discharge\\.v1\\.[A-Z0-9]+$",
                "^ics\\.social_care\\.v1\\.[A-Z0-9]+$",
                "^ics\\.primary_care\\.v1\\.[A-Z0-9]+$"
            ]
        );
    }

    #[test]
    fn shared_topics_belong_to_every_partner_of_their_feed() {
        let events = Events::new(Arc::new(icsflow_events::metrics::Tally::default()));
        let layout = topics(TopicLayout::Shared);
        let mut sources = PartnerTopics::new(&layout, &events);
        let id = sources.resolve("ics.social_care.v1").expect("a source");
        assert_eq!(sources.get(id).feed, Feed::SocialCare);
        assert_eq!(sources.get(id).owner, Owner::Shared);
        let named = OdsCode::parse("test", "840").ok();
        assert!(sources.get(id).admits(named.expect("code")));
        assert_eq!(sources.get(id).publisher(named), named);
        assert_eq!(sources.resolve("ics.discharge.v1.RXP"), None);
        assert!(PartnerTopics::is_partner_topic(
            &layout,
            "ics.primary_care.v1"
        ));
        assert!(!PartnerTopics::is_partner_topic(
            &layout,
            "icsflow.journey.v1"
        ));
        assert_eq!(sources.subscription().len(), 3);
    }
}
