//! The one loader of the ICS's reference data: its places, its partner
//! organisations (name, kind, place, Kafka principal, the organisations each
//! publishes for) and how often each kind publishes, and the principals of
//! icsflow's own roles. `deploy/config/reference.toml` is the demo ICS's and
//! documents every field.
//!
//! Like the settings, a file with problems is refused whole: the shape
//! first (TOML, unknown or missing fields), then every code, place and
//! principal at once.

use std::collections::BTreeMap;
use std::path::Path;

use icsflow_core::{
    Cadence, OdsCode, Partner, PartnerKind, PerKind, Place, PlaceCode, Reference, RolePrincipals,
};
use serde::Deserialize;

/// The demo ICS's reference data, in the repository.
pub const DEMO_REFERENCE: &str = "deploy/config/reference.toml";

/// The demo ICS's reference data, compiled in.
pub const DEMO_REFERENCE_TEXT: &str = include_str!("../../../deploy/config/reference.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    roles: RolesFile,
    cadence: BTreeMap<String, CadenceFile>,
    places: Vec<PlaceFile>,
    partners: Vec<PartnerFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RolesFile {
    ingest_principal: String,
    join_principal: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CadenceFile {
    quiet_after_minutes: u32,
    office_hours_only: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaceFile {
    code: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartnerFile {
    code: String,
    name: String,
    kind: String,
    place: String,
    principal: String,
    #[serde(default)]
    publishes_for: Vec<String>,
    /// Its own, when it publishes less often than its kind.
    quiet_after_minutes: Option<u32>,
}

/// Reads and checks the reference data in `path`.
pub fn load(path: &Path) -> Result<Reference, Vec<String>> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|error| vec![format!("cannot read the reference data {origin}: {error}")])?;
    parse(&origin, &text)
}

/// Checks reference data given as TOML text; `origin` names it in problems.
pub fn parse(origin: &str, text: &str) -> Result<Reference, Vec<String>> {
    let file: File =
        toml::from_str(text).map_err(|error| vec![format!("{origin}: {}", error.message())])?;
    let mut problems = Vec::new();
    let mut cadence: PerKind<PartnerKind, Cadence> = PerKind::new(|_| Cadence {
        quiet_after_minutes: 0,
        office_hours_only: false,
    });
    for (name, given) in &file.cadence {
        match PartnerKind::from_name(name) {
            Some(kind) => {
                cadence[kind] = Cadence {
                    quiet_after_minutes: given.quiet_after_minutes,
                    office_hours_only: given.office_hours_only,
                }
            }
            None => problems.push(format!(
                "cadence.{name}: unknown partner kind (expected {})",
                kinds()
            )),
        }
    }
    for kind in PartnerKind::ALL {
        if !file.cadence.contains_key(kind.as_str()) {
            problems.push(format!(
                "cadence.{}: missing (every partner kind needs its publishing cadence)",
                kind.as_str()
            ));
        } else if cadence[kind].quiet_after_minutes == 0 {
            problems.push(format!(
                "cadence.{}.quiet_after_minutes: must be at least 1",
                kind.as_str()
            ));
        }
    }
    let places = file
        .places
        .iter()
        .filter_map(|place| {
            let code = PlaceCode::parse("code", &place.code)
                .map_err(|_| {
                    problems.push(format!(
                        "place `{}`: not an upper-tier GSS code (E06, E08, E09 or E10 and six digits)",
                        place.code
                    ))
                })
                .ok()?;
            Some(Place {
                code,
                name: named(&mut problems, &format!("place {}", place.code), &place.name),
            })
        })
        .collect();
    let partners = file
        .partners
        .iter()
        .filter_map(|partner| {
            let owner = format!("partner {}", partner.code);
            let code = ods(&mut problems, &owner, &partner.code);
            let kind = PartnerKind::from_name(&partner.kind);
            if kind.is_none() {
                problems.push(format!(
                    "{owner}: kind `{}` is unknown (expected {})",
                    partner.kind,
                    kinds()
                ));
            }
            let place = PlaceCode::parse("place", &partner.place).ok();
            if place.is_none() {
                problems.push(format!(
                    "{owner}: place `{}` is not an upper-tier GSS code",
                    partner.place
                ));
            }
            let publishes_for: Vec<Option<OdsCode>> = partner
                .publishes_for
                .iter()
                .map(|code| ods(&mut problems, &owner, code))
                .collect();
            let name = named(&mut problems, &owner, &partner.name);
            if partner.quiet_after_minutes == Some(0) {
                problems.push(format!("{owner}: quiet_after_minutes must be at least 1"));
            }
            Some(Partner {
                code: code?,
                name,
                kind: kind?,
                place: place?,
                principal: partner.principal.clone(),
                publishes_for: publishes_for.into_iter().collect::<Option<Vec<_>>>()?,
                quiet_after_minutes: partner.quiet_after_minutes,
            })
        })
        .collect();
    let roles = RolePrincipals {
        ingest: file.roles.ingest_principal,
        join: file.roles.join_principal,
    };
    let checked = Reference::new(places, partners, cadence, roles);
    match checked {
        Ok(reference) if problems.is_empty() => Ok(reference),
        Ok(_) => Err(problems),
        Err(more) => {
            problems.extend(more);
            Err(problems)
        }
    }
    .map_err(|problems| {
        problems
            .into_iter()
            .map(|problem| format!("{origin}: {problem}"))
            .collect()
    })
}

fn kinds() -> String {
    PartnerKind::ALL.map(PartnerKind::as_str).join(", ")
}

fn ods(problems: &mut Vec<String>, owner: &str, code: &str) -> Option<OdsCode> {
    OdsCode::parse("code", code)
        .map_err(|_| {
            problems.push(format!(
                "{owner}: `{code}` is not an ODS code (3 to 6 upper-case letters and digits)"
            ))
        })
        .ok()
}

/// A name for dashboards and rendered files: printable characters on one
/// line, at most 200 (a line break or control character in a name would
/// become a line of its own in a rendered shell script or YAML file).
fn named(problems: &mut Vec<String>, owner: &str, name: &str) -> String {
    let name = name.trim();
    if name.is_empty() {
        problems.push(format!("{owner}: the name is empty"));
    } else if name.chars().any(char::is_control) || name.chars().count() > 200 {
        problems.push(format!(
            "{owner}: the name holds a line break or control character, or is over 200 characters: names are one line of printable text"
        ));
    }
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_reference_data_is_valid_and_names_every_simulated_partner() {
        let reference = parse(DEMO_REFERENCE, DEMO_REFERENCE_TEXT).expect("valid");
        let simulator = icsflow_partner::Simulator::new(icsflow_partner::SimulationConfig {
            places: icsflow_partner::SimulationConfig::MAX_PLACES,
            ..icsflow_partner::SimulationConfig::new(1, icsflow_core::Timestamp::from_millis(0))
        });
        let mut simulated = 0;
        for place in simulator.places() {
            let known = reference
                .places()
                .iter()
                .find(|known| known.code == place.place)
                .unwrap_or_else(|| panic!("place {} is not in {DEMO_REFERENCE}", place.place));
            assert!(known.name.contains(place.name), "{}", known.name);
            for (organisation, kind) in [
                (place.trust, PartnerKind::AcuteTrust),
                (place.local_authority, PartnerKind::LocalAuthority),
            ]
            .into_iter()
            .chain(
                place
                    .practices
                    .iter()
                    .map(|practice| (*practice, PartnerKind::PrimaryCare)),
            ) {
                let publisher = reference
                    .partners()
                    .iter()
                    .find(|partner| partner.speaks_for(organisation))
                    .unwrap_or_else(|| {
                        panic!("no partner of {DEMO_REFERENCE} publishes for {organisation}")
                    });
                assert_eq!(publisher.kind, kind, "{organisation}");
                assert_eq!(publisher.place, place.place, "{organisation}");
                simulated += 1;
            }
        }
        assert_eq!(simulated, 4 * 8);
        // The trust that records up to 20 hours late and publishes a
        // nightly batch is quiet only after a day and those 20 hours; the
        // other trusts after their kind's two hours.
        let cadence = |code: &str| {
            let partner = reference
                .partners()
                .iter()
                .find(|partner| partner.code.as_str() == code)
                .expect("a partner");
            reference.cadence_of(partner).quiet_after_minutes
        };
        assert!(cadence("RTD") > (24 + 20) * 60, "{}", cadence("RTD"));
        assert_eq!(cadence("RXP"), 120);
    }

    #[test]
    fn every_problem_of_a_file_is_named_with_the_file() {
        let text = r#"
[roles]
ingest_principal = "User:icsflow-ingest"
join_principal = "User:icsflow-join"

[cadence.acute_trust]
quiet_after_minutes = 120
office_hours_only = false
[cadence.gp]
quiet_after_minutes = 60
office_hours_only = true

[[places]]
code = "E07000001"
name = "A district"

[[partners]]
code = "rxp"
name = ""
kind = "hospital"
place = "E06000047"
principal = "User:partner-rxp"
quiet_after_minutes = 0
"#;
        let problems = parse("ics.toml", text).expect_err("refused");
        assert_eq!(
            problems,
            [
                "ics.toml: cadence.gp: unknown partner kind (expected acute_trust, local_authority, primary_care)",
                "ics.toml: cadence.local_authority: missing (every partner kind needs its publishing cadence)",
                "ics.toml: cadence.primary_care: missing (every partner kind needs its publishing cadence)",
                "ics.toml: place `E07000001`: not an upper-tier GSS code (E06, E08, E09 or E10 and six digits)",
                "ics.toml: partner rxp: `rxp` is not an ODS code (3 to 6 upper-case letters and digits)",
                "ics.toml: partner rxp: kind `hospital` is unknown (expected acute_trust, local_authority, primary_care)",
                "ics.toml: partner rxp: the name is empty",
                "ics.toml: partner rxp: quiet_after_minutes must be at least 1",
            ]
        );
        let unknown_field = parse("ics.toml", "[roles]\ningest = 1\n").expect_err("refused");
        assert_eq!(unknown_field.len(), 1);
        assert!(
            unknown_field[0].starts_with("ics.toml: unknown field `ingest`"),
            "{unknown_field:?}"
        );
    }
}
