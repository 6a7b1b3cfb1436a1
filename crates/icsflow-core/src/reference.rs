//! The ICS's reference data: its places, its partner organisations (who
//! they are, what they publish, under which Kafka principal, how often),
//! and the principals of icsflow's own roles.
//!
//! One ICS edits one file of it (`deploy/config/reference.toml` is the
//! demo's); the `icsflow` binary has the one loader. Here it is plain,
//! validated data: [`Reference::new`] refuses codes that repeat, partners
//! of unknown places and organisations claimed by two partners, naming
//! every problem at once.

use crate::identifiers::{OdsCode, PlaceCode};
use crate::kinds::PerKind;
use crate::Feed;

/// What kind of organisation a partner is; it decides the feed it
/// publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PartnerKind {
    /// An acute trust: the discharge feed. Its sites (its code and two more
    /// characters, `RXP01`) publish in its name.
    AcuteTrust,
    /// A local authority's adult social care: the social care feed.
    LocalAuthority,
    /// A GP practice, a primary care network or a pharmacy (or a service
    /// publishing for several): the primary care feed.
    PrimaryCare,
}

impl PartnerKind {
    pub const ALL: [PartnerKind; 3] = [
        PartnerKind::AcuteTrust,
        PartnerKind::LocalAuthority,
        PartnerKind::PrimaryCare,
    ];

    /// The kind's name in the reference file.
    pub const fn as_str(self) -> &'static str {
        match self {
            PartnerKind::AcuteTrust => "acute_trust",
            PartnerKind::LocalAuthority => "local_authority",
            PartnerKind::PrimaryCare => "primary_care",
        }
    }

    pub fn from_name(name: &str) -> Option<PartnerKind> {
        PartnerKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }

    /// The feed this kind of partner publishes.
    pub const fn feed(self) -> Feed {
        match self {
            PartnerKind::AcuteTrust => Feed::Discharge,
            PartnerKind::LocalAuthority => Feed::SocialCare,
            PartnerKind::PrimaryCare => Feed::PrimaryCare,
        }
    }
}

/// A place of the ICS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    pub code: PlaceCode,
    pub name: String,
}

/// How often a kind of partner publishes, for alerts that must tell a
/// silent feed from a quiet hour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cadence {
    /// A feed silent for longer than this (within its hours) is quiet.
    pub quiet_after_minutes: u32,
    /// Publishes on working days between 08:00 and 18:00 only.
    pub office_hours_only: bool,
}

/// A partner organisation that publishes to the ICS's topics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partner {
    /// Its ODS code; on the per-partner topic layout, its topics' suffix
    /// (`ics.discharge.v1.RXP`).
    pub code: OdsCode,
    pub name: String,
    pub kind: PartnerKind,
    pub place: PlaceCode,
    /// The Kafka principal it authenticates as (`User:partner-rxp`).
    pub principal: String,
    /// Other organisations it publishes for (a network's practices).
    pub publishes_for: Vec<OdsCode>,
    /// Its own quiet-after minutes, when it publishes less often than its
    /// kind (a trust that sends a nightly batch); `None`: its kind's.
    pub quiet_after_minutes: Option<u32>,
}

impl Partner {
    /// Whether a record naming `organisation` as its source may come from
    /// this partner: its own code, an organisation it publishes for, or
    /// (for a trust) one of its sites.
    pub fn speaks_for(&self, organisation: OdsCode) -> bool {
        let own = self.code.as_str();
        let other = organisation.as_str();
        organisation == self.code
            || self.publishes_for.contains(&organisation)
            || (self.kind == PartnerKind::AcuteTrust
                && own.len() == 3
                && other.len() == 5
                && other.starts_with(own))
    }

    /// The feed it publishes.
    pub fn feed(&self) -> Feed {
        self.kind.feed()
    }
}

impl Reference {
    /// The place a record's `place` counts under: itself when it is one of
    /// the ICS's places, [`PlaceCode::OUT_OF_AREA`] otherwise. No record
    /// can add a place of its own to any table or label.
    pub fn counted_place(&self, place: PlaceCode) -> PlaceCode {
        if self.places.iter().any(|known| known.code == place) {
            place
        } else {
            PlaceCode::OUT_OF_AREA
        }
    }

    /// The event as it counts in this ICS: its place one of the ICS's (or
    /// [`PlaceCode::OUT_OF_AREA`]) and its organisation one a partner
    /// speaks for, a trust's site as the trust; `None` when no partner
    /// speaks for its organisation. Ingest applies it before writing the
    /// journey topic, join again to what it reads (records written before
    /// it existed), so no table or label of any role holds a place or an
    /// organisation that is not in the reference data.
    pub fn counted(&self, event: &crate::Event) -> Option<crate::Event> {
        let mut counted = *event;
        counted.envelope.source_organisation =
            self.counted_organisation(event.envelope.source_organisation)?;
        counted.envelope.place = self.counted_place(event.envelope.place);
        Some(counted)
    }

    /// The organisation a record's `source_organisation` counts as: a
    /// partner's own code or one it publishes for as itself, a trust's site
    /// as the trust (a site is never a label value of its own); `None` when
    /// no partner of the ICS speaks for it.
    ///
    /// Ingest asks for every record and join for every event it replays:
    /// one hash lookup (two for a site), never a walk over the partners.
    pub fn counted_organisation(&self, organisation: OdsCode) -> Option<OdsCode> {
        if self.organisations.contains(&organisation) {
            return Some(organisation);
        }
        let trust = organisation.truncated(3);
        (organisation.as_str().len() == 5 && self.site_trusts.contains(&trust)).then_some(trust)
    }
}

/// The Kafka principals of icsflow's own roles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RolePrincipals {
    pub ingest: String,
    pub join: String,
}

/// An ICS's reference data, checked whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    places: Vec<Place>,
    partners: Vec<Partner>,
    /// Every partner's own code and every organisation a partner publishes
    /// for: what `counted_organisation` finds as itself.
    organisations: std::collections::HashSet<OdsCode>,
    /// The three-character codes of acute trusts, whose sites (the code
    /// and two more characters) count as the trust.
    site_trusts: std::collections::HashSet<OdsCode>,
    cadence: PerKind<PartnerKind, Cadence>,
    roles: RolePrincipals,
}

impl Reference {
    /// Checks the data whole: every problem is named, none is fixed
    /// silently.
    pub fn new(
        places: Vec<Place>,
        partners: Vec<Partner>,
        cadence: PerKind<PartnerKind, Cadence>,
        roles: RolePrincipals,
    ) -> Result<Reference, Vec<String>> {
        let mut problems = Vec::new();
        for (index, place) in places.iter().enumerate() {
            if places[..index].iter().any(|other| other.code == place.code) {
                problems.push(format!("place {} is listed twice", place.code));
            }
        }
        let mut principals: Vec<(&str, String)> = vec![
            (roles.ingest.as_str(), "the ingest role".to_owned()),
            (roles.join.as_str(), "the join role".to_owned()),
        ];
        for (index, partner) in partners.iter().enumerate() {
            if partners[..index]
                .iter()
                .any(|other| other.code == partner.code)
            {
                problems.push(format!("partner {} is listed twice", partner.code));
            }
            if !places.iter().any(|place| place.code == partner.place) {
                problems.push(format!(
                    "partner {}: place {} is not among the places",
                    partner.code, partner.place
                ));
            }
            // Every other partner, before or after: whether a claim is
            // found must not depend on the order partners are listed in.
            for organisation in &partner.publishes_for {
                if let Some(other) = partners
                    .iter()
                    .enumerate()
                    .find(|(other_index, other)| {
                        *other_index != index && other.speaks_for(*organisation)
                    })
                    .map(|(_, other)| other)
                {
                    problems.push(format!(
                        "partner {}: organisation {organisation} is also published for by {}",
                        partner.code, other.code
                    ));
                }
            }
            principals.push((
                partner.principal.as_str(),
                format!("partner {}", partner.code),
            ));
        }
        for (index, (principal, owner)) in principals.iter().enumerate() {
            if !is_principal(principal) {
                problems.push(format!(
                    "{owner}: principal `{principal}` is not of the form User:NAME"
                ));
            } else if let Some((_, first)) = principals[..index]
                .iter()
                .find(|(other, _)| other == principal)
            {
                problems.push(format!(
                    "{owner}: principal `{principal}` is already {first}'s; each needs its own, so that one cannot write as another"
                ));
            }
        }
        if problems.is_empty() {
            // Derived from the partners, as `Partner::speaks_for` reads
            // them (the checks above refuse an organisation two speak for).
            let organisations = partners
                .iter()
                .flat_map(|partner| {
                    std::iter::once(partner.code).chain(partner.publishes_for.iter().copied())
                })
                .collect();
            let site_trusts = partners
                .iter()
                .filter(|partner| {
                    partner.kind == PartnerKind::AcuteTrust && partner.code.as_str().len() == 3
                })
                .map(|partner| partner.code)
                .collect();
            Ok(Reference {
                places,
                partners,
                organisations,
                site_trusts,
                cadence,
                roles,
            })
        } else {
            Err(problems)
        }
    }

    pub fn places(&self) -> &[Place] {
        &self.places
    }

    pub fn partners(&self) -> &[Partner] {
        &self.partners
    }

    /// The partner whose ODS code is `code`.
    pub fn partner(&self, code: &str) -> Option<&Partner> {
        self.partners
            .iter()
            .find(|partner| partner.code.as_str() == code)
    }

    pub fn cadence(&self, kind: PartnerKind) -> Cadence {
        self.cadence[kind]
    }

    /// The cadence `partner` publishes at: its kind's, with its own
    /// quiet-after minutes when it has them.
    pub fn cadence_of(&self, partner: &Partner) -> Cadence {
        let kind = self.cadence(partner.kind);
        Cadence {
            quiet_after_minutes: partner
                .quiet_after_minutes
                .unwrap_or(kind.quiet_after_minutes),
            ..kind
        }
    }

    pub fn roles(&self) -> &RolePrincipals {
        &self.roles
    }
}

/// `User:` and a name Kafka's ACL tooling accepts as it is (no spaces,
/// separators or wildcards).
fn is_principal(principal: &str) -> bool {
    principal.strip_prefix("User:").is_some_and(|name| {
        !name.is_empty()
            && name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"-_.@".contains(&byte))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_counts_by_the_reference_data_or_not_at_all() {
        let reference = crate::samples_reference();
        let event = crate::one_event_of_each_type()[0];
        assert_eq!(reference.counted(&event), Some(event));
        let mut elsewhere = event;
        elsewhere.envelope.place = PlaceCode::parse("place", "E09000001").expect("a GSS code");
        let counted = reference.counted(&elsewhere).expect("counted");
        assert_eq!(counted.envelope.place, PlaceCode::OUT_OF_AREA);
        assert_eq!(counted.envelope.place.as_str(), "out_of_area");
        let mut site = event;
        site.envelope.source_organisation = OdsCode::parse("o", "RVWAB").expect("a site");
        assert_eq!(
            reference
                .counted(&site)
                .map(|counted| counted.envelope.source_organisation),
            Some(event.envelope.source_organisation)
        );
        let mut nobody = event;
        nobody.envelope.source_organisation = OdsCode::parse("o", "Y00001").expect("ODS-shaped");
        assert_eq!(reference.counted(&nobody), None);
        // Only a trust has sites: five characters after a local
        // authority's code are nobody's.
        for code in ["702AB", "M8367", "RVWABC", "RV"] {
            let organisation = OdsCode::parse("o", code).ok();
            assert_eq!(
                organisation.and_then(|organisation| reference.counted_organisation(organisation)),
                None,
                "{code}"
            );
        }
    }

    fn ods(code: &str) -> OdsCode {
        OdsCode::parse("test", code).expect("an ODS code")
    }

    fn place(code: &str) -> Place {
        Place {
            code: PlaceCode::parse("test", code).expect("a place code"),
            name: format!("Place {code}"),
        }
    }

    fn partner(code: &str, kind: PartnerKind, principal: &str) -> Partner {
        Partner {
            code: ods(code),
            name: format!("Partner {code}"),
            quiet_after_minutes: None,
            kind,
            place: place("E06000047").code,
            principal: principal.to_owned(),
            publishes_for: Vec::new(),
        }
    }

    fn cadence() -> PerKind<PartnerKind, Cadence> {
        PerKind::new(|_| Cadence {
            quiet_after_minutes: 120,
            office_hours_only: false,
        })
    }

    fn roles() -> RolePrincipals {
        RolePrincipals {
            ingest: "User:icsflow-ingest".to_owned(),
            join: "User:icsflow-join".to_owned(),
        }
    }

    #[test]
    fn a_trust_speaks_for_its_sites_and_a_network_for_its_practices_only() {
        let trust = partner("RXP", PartnerKind::AcuteTrust, "User:rxp");
        assert!(trust.speaks_for(ods("RXP")));
        assert!(trust.speaks_for(ods("RXP01")));
        assert!(!trust.speaks_for(ods("RTD")));
        assert!(!trust.speaks_for(ods("RTD01")));
        assert!(!trust.speaks_for(ods("RXP012")));

        let mut network = partner("U83001", PartnerKind::PrimaryCare, "User:u83001");
        network.publishes_for = vec![ods("A83011"), ods("A83028")];
        assert!(network.speaks_for(ods("U83001")));
        assert!(network.speaks_for(ods("A83028")));
        assert!(!network.speaks_for(ods("A83045")));
        // Only trusts have sites.
        let council = partner("840", PartnerKind::LocalAuthority, "User:la840");
        assert!(!council.speaks_for(ods("84001")));
    }

    #[test]
    fn every_problem_is_named_at_once() {
        let mut claims_a_site = partner("U83001", PartnerKind::PrimaryCare, "User:rxp");
        claims_a_site.publishes_for = vec![ods("RXP01")];
        let mut elsewhere = partner("RTD", PartnerKind::AcuteTrust, "rtd");
        elsewhere.place = place("E08000021").code;
        let problems = Reference::new(
            vec![place("E06000047"), place("E06000047")],
            vec![
                partner("RXP", PartnerKind::AcuteTrust, "User:rxp"),
                partner("RXP", PartnerKind::AcuteTrust, "User:rxp2"),
                claims_a_site,
                elsewhere,
            ],
            cadence(),
            RolePrincipals {
                ingest: "User:icsflow".to_owned(),
                join: "User:icsflow".to_owned(),
            },
        )
        .expect_err("refused");
        assert_eq!(
            problems,
            [
                "place E06000047 is listed twice",
                "partner RXP is listed twice",
                "partner U83001: organisation RXP01 is also published for by RXP",
                "partner RTD: place E08000021 is not among the places",
                "the join role: principal `User:icsflow` is already the ingest role's; each needs its own, so that one cannot write as another",
                "partner U83001: principal `User:rxp` is already partner RXP's; each needs its own, so that one cannot write as another",
                "partner RTD: principal `rtd` is not of the form User:NAME",
            ]
        );
    }

    /// Regression: the "claimed by two partners" check looked only at the
    /// partners listed before: a network listed before the practice it
    /// publishes for was accepted. Either order is refused now.
    #[test]
    fn an_organisation_claimed_twice_is_refused_in_either_order() {
        let mut network = partner("U83001", PartnerKind::PrimaryCare, "User:u83001");
        network.publishes_for = vec![ods("A83011")];
        let practice = partner("A83011", PartnerKind::PrimaryCare, "User:a83011");
        for partners in [
            vec![network.clone(), practice.clone()],
            vec![practice.clone(), network.clone()],
        ] {
            let problems = Reference::new(vec![place("E06000047")], partners, cadence(), roles())
                .expect_err("claimed twice");
            assert!(
                problems
                    .iter()
                    .any(|problem| problem.contains("A83011 is also published for by A83011")),
                "{problems:?}"
            );
        }
    }

    #[test]
    fn partners_are_found_by_code() {
        let reference = Reference::new(
            vec![place("E06000047")],
            vec![partner("RXP", PartnerKind::AcuteTrust, "User:rxp")],
            cadence(),
            roles(),
        )
        .expect("valid");
        assert_eq!(
            reference.partner("RXP").map(Partner::feed),
            Some(Feed::Discharge)
        );
        assert!(reference.partner("RTD").is_none());
        assert_eq!(
            reference
                .cadence(PartnerKind::PrimaryCare)
                .quiet_after_minutes,
            120
        );
    }
}
