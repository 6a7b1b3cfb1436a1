//! The metric wing: every metric the engine keeps, each defined once.
//!
//! One entry of [`metrics!`] per metric holds its name (and its `_window`
//! twin's, for a running total), its help, its labels in exposition order,
//! whether the published view carries it, and whether it is exported at
//! all (held series are read as another metric). The series key
//! [`MetricKey`] and everything read from it (name, help, labels, one key
//! of each metric, the window twins) are generated from those entries, so
//! nothing here is written twice. The derivation of each metric family is
//! one function in `derive.rs`, named in the entry's doc; its definition in
//! words is in `docs/metrics.md`, and its scenario test in
//! `tests/it/scenarios.rs` or `tests/it/rules.rs`.
//!
//! No exposition format lives here: the telemetry crate turns keys into
//! Prometheus families.

use icsflow_core::{DestinationGroup, Feed, OdsCode, PlaceCode};

use crate::labels::*;

/// A label's value as exposed, and a placeholder of the type for
/// describing a metric before any series of it exists.
pub(crate) trait LabelValue: Copy {
    fn label_value(&self) -> String;
    fn placeholder() -> Self;
}

impl LabelValue for PlaceCode {
    fn label_value(&self) -> String {
        self.to_string()
    }
    fn placeholder() -> Self {
        // A constant that is a valid GSS code.
        PlaceCode::parse("place", "E06000001").expect("a valid placeholder place")
    }
}

impl LabelValue for OdsCode {
    fn label_value(&self) -> String {
        self.to_string()
    }
    fn placeholder() -> Self {
        // A constant that is a valid ODS code.
        OdsCode::parse("provider", "AAA").expect("a valid placeholder organisation")
    }
}

impl LabelValue for Feed {
    fn label_value(&self) -> String {
        self.as_str().to_owned()
    }
    fn placeholder() -> Self {
        Feed::Discharge
    }
}

impl LabelValue for PathwayLabel {
    fn label_value(&self) -> String {
        self.to_string()
    }
    fn placeholder() -> Self {
        PathwayLabel(None)
    }
}

impl LabelValue for ReasonLabel {
    fn label_value(&self) -> String {
        self.to_string()
    }
    fn placeholder() -> Self {
        ReasonLabel(None)
    }
}

impl LabelValue for DestinationGroup {
    fn label_value(&self) -> String {
        destination_group_label(*self).to_owned()
    }
    fn placeholder() -> Self {
        DestinationGroup::Other
    }
}

/// Implements [`LabelValue`] for label enums with `as_str`.
macro_rules! label_by_as_str {
    ($($type:ty = $placeholder:expr),+ $(,)?) => {
        $(
            impl LabelValue for $type {
                fn label_value(&self) -> String {
                    self.as_str().to_owned()
                }
                fn placeholder() -> Self {
                    $placeholder
                }
            }
        )+
    };
}

label_by_as_str! {
    StayBand = StayBand::Days0To6,
    DelayBand = DelayBand::Days0,
    FollowUpWindow = FollowUpWindow::Days7,
    FollowUpOutcome = FollowUpOutcome::Attended,
    ReablementOutcome = ReablementOutcome::AtHome,
    Field = Field::DischargeReadyDate,
    Recorded = Recorded(true),
    Amendment = Amendment::Correction,
}

/// A day (since 2000-01-01) held in a key: a number.
impl LabelValue for i32 {
    fn label_value(&self) -> String {
        self.to_string()
    }
    fn placeholder() -> Self {
        0
    }
}

/// Help of every `_window` twin.
const WINDOW_HELP: &str = "The cumulative metric of the same name without _window, totalled over the `period` of complete days ending the day before the as-of day (1d, 7d or 28d); see docs/metrics.md.";

/// Declares every metric. Per entry: the variant and its doc, `name`, an
/// optional `window` (the `_window` twin's name: the metric is a running
/// total, and its key gets a `totalled: Option<Window>` field), `help`,
/// `published` (carried by the published view, under small-number
/// control), `exported` (false for series held inside the engine and read
/// as another metric), then the labels: `field: Type`, or
/// `field as "label": Type` when the label name differs from the field's.
macro_rules! metrics {
    (
        $(
            $(#[$doc:meta])*
            $variant:ident {
                name: $name:literal,
                $(window: $window_name:literal,)?
                help: $help:literal,
                published: $published:literal,
                exported: $exported:literal,
                labels: { $( $field:ident $(as $label:literal)? : $type:ty ),* $(,)? } $(,)?
            }
        )+
    ) => {
        /// One series: a metric and the values of its labels.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum MetricKey {
            $(
                $(#[$doc])*
                $variant {
                    $( $field: $type, )*
                    $(
                        #[doc = concat!("`Some`: the total over that window (`", $window_name, "`).")]
                        totalled: Option<Window>,
                    )?
                },
            )+
        }

        impl MetricKey {
            /// One key of every exported metric, with placeholder label
            /// values, then each running total's `_window` twin: what a
            /// collector needs to describe every metric before any series
            /// exists.
            pub fn one_of_each() -> Vec<MetricKey> {
                let current = [
                    $(
                        ($exported, MetricKey::$variant {
                            $( $field: LabelValue::placeholder(), )*
                            $( totalled: metrics!(@none $window_name), )?
                        }),
                    )+
                ];
                let current: Vec<MetricKey> = current
                    .into_iter()
                    .filter(|(exported, _)| *exported)
                    .map(|(_, key)| key)
                    .collect();
                let windowed: Vec<MetricKey> = current
                    .iter()
                    .filter_map(|key| key.in_window(Window::Day1))
                    .collect();
                current.into_iter().chain(windowed).collect()
            }

            /// The metric's name.
            pub fn name(&self) -> &'static str {
                let totalled = self.totalled().is_some();
                match self {
                    $(
                        MetricKey::$variant { .. } => {
                            $( if totalled { return $window_name; } )?
                            $name
                        }
                    )+
                }
            }

            /// One line of help, as in `docs/metrics.md`.
            pub fn help(&self) -> &'static str {
                if self.totalled().is_some() {
                    return WINDOW_HELP;
                }
                match self {
                    $( MetricKey::$variant { .. } => $help, )+
                }
            }

            /// Label names and values, in a fixed order (`period` last on
            /// a `_window` twin).
            pub fn labels(&self) -> Vec<(&'static str, String)> {
                let mut labels = match self {
                    $(
                        MetricKey::$variant { $( $field, )* .. } => vec![
                            $( (metrics!(@label $field $($label)?), LabelValue::label_value($field)), )*
                        ],
                    )+
                };
                if let Some(window) = self.totalled() {
                    labels.push(("period", window.as_str().to_owned()));
                }
                labels
            }

            /// Whether `name` is a metric (or `_window` twin) the
            /// published view carries.
            pub fn is_published_name(name: &str) -> bool {
                false $( || ($published && (name == $name $( || name == $window_name )?)) )+
            }

            /// The window a cumulative metric is totalled over, if this key
            /// is one.
            pub fn totalled(&self) -> Option<Window> {
                // (`let _ = $window_name;` places the block in the
                // repetition of the entries that have a window.)
                $(
                    $(
                        let _ = $window_name;
                        if let MetricKey::$variant { totalled, .. } = *self {
                            return totalled;
                        }
                    )?
                )+
                None
            }

            /// This cumulative series totalled over `window`; `None` for a
            /// metric that is a count of people now (a status, not a
            /// running total), and for the `pending` outcomes, which are
            /// statuses too.
            pub fn in_window(&self, window: Window) -> Option<MetricKey> {
                if self.is_pending_outcome() {
                    return None;
                }
                let mut key = *self;
                $(
                    $(
                        let _ = $window_name;
                        if let MetricKey::$variant { totalled, .. } = &mut key {
                            *totalled = Some(window);
                            return Some(key);
                        }
                    )?
                )+
                None
            }
        }
    };
    (@none $window_name:literal) => { None };
    (@label $field:ident) => { stringify!($field) };
    (@label $field:ident $label:literal) => { $label };
}

metrics! {
    /// 1. Patients in hospital who no longer meet the criteria to reside
    ///    (`derive::not_meeting_criteria`).
    NotMeetingCriteria {
        name: "icsflow_flow_not_meeting_criteria_patients",
        help: "Patients in hospital who no longer meet the criteria to reside (past their Discharge Ready Date).",
        published: true,
        exported: true,
        labels: { place: PlaceCode, provider: OdsCode, pathway: PathwayLabel },
    }
    /// 2. The same, by days since admission (`derive::not_meeting_criteria`).
    NotMeetingCriteriaByStay {
        name: "icsflow_flow_not_meeting_criteria_by_stay_patients",
        help: "Patients not meeting the criteria to reside, by days since admission.",
        published: true,
        exported: true,
        labels: { place: PlaceCode, provider: OdsCode, pathway: PathwayLabel, stay as "stay_days": StayBand },
    }
    /// 3. Midnights spent in hospital after the Discharge Ready Date
    ///    (`derive::not_meeting_criteria`).
    DelayedBedDays {
        name: "icsflow_flow_delayed_bed_nights",
        window: "icsflow_flow_delayed_bed_nights_window",
        help: "Delayed bed days: midnights spent in hospital after a Discharge Ready Date, by the delay reason family in effect the day before.",
        published: true,
        exported: true,
        labels: { place: PlaceCode, provider: OdsCode, pathway: PathwayLabel, reason as "reason_family": ReasonLabel },
    }
    /// 4. Discharges of patients who had a Discharge Ready Date, by the
    ///    days from it to discharge (`derive::discharges`).
    DischargeDelay {
        name: "icsflow_flow_discharge_delay_discharges",
        window: "icsflow_flow_discharge_delay_discharges_window",
        help: "Discharges of patients with a Discharge Ready Date, by days from it to discharge.",
        published: true,
        exported: true,
        labels: { place: PlaceCode, provider: OdsCode, pathway: PathwayLabel, delay as "delay_days": DelayBand },
    }
    /// 4. Sum of those days, for the mean (`derive::discharges`).
    DischargeDelayDays {
        name: "icsflow_flow_discharge_delay_length",
        window: "icsflow_flow_discharge_delay_length_window",
        help: "Total length in days, from Discharge Ready Date to discharge, of those discharges.",
        published: true,
        exported: true,
        labels: { place: PlaceCode, provider: OdsCode, pathway: PathwayLabel },
    }
    /// 5. Discharges by destination group (`derive::discharges`).
    Discharges {
        name: "icsflow_flow_discharges",
        window: "icsflow_flow_discharges_window",
        help: "Discharges by pathway and destination group.",
        published: true,
        exported: true,
        labels: { place: PlaceCode, provider: OdsCode, pathway: PathwayLabel, destination: DestinationGroup },
    }
    /// 6. Patients not meeting the criteria by the reason currently
    ///    recorded (`derive::not_meeting_criteria`).
    DelayedByReason {
        name: "icsflow_flow_delayed_by_reason_patients",
        help: "Patients not meeting the criteria to reside, by the delay reason family currently recorded.",
        published: true,
        exported: true,
        labels: { place: PlaceCode, provider: OdsCode, reason as "reason_family": ReasonLabel },
    }
    /// 6a. Patients not meeting the criteria, by days since their DRD and
    ///     the reason family in effect: read from
    ///     [`MetricKey::NotMeetingCriteriaSince`].
    NotMeetingCriteriaByDelay {
        name: "icsflow_flow_not_meeting_criteria_by_delay_patients",
        help: "Patients not meeting the criteria to reside, by days since their Discharge Ready Date (published bands) and the delay reason family in effect.",
        published: true,
        exported: true,
        labels: { place: PlaceCode, provider: OdsCode, pathway: PathwayLabel, reason as "reason_family": ReasonLabel, delay as "delay_days": DelayBand },
    }
    /// 7. Patients on P1-P3 past their DRD with no social care started
    ///    (`derive::waiting_for_care`).
    WaitingForCare {
        name: "icsflow_flow_waiting_for_care_patients",
        help: "Patients on pathways P1-P3 past their Discharge Ready Date with no social care service started yet.",
        published: true,
        exported: true,
        labels: { place: PlaceCode, pathway: PathwayLabel },
    }
    /// 7. The same, by days waited since the DRD: read from
    ///    [`MetricKey::WaitingForCareSince`].
    WaitingForCareByDelay {
        name: "icsflow_flow_waiting_for_care_by_delay_patients",
        help: "Patients waiting for social care to start, by days since their Discharge Ready Date (published bands).",
        published: true,
        exported: true,
        labels: { place: PlaceCode, pathway: PathwayLabel, delay as "delay_days": DelayBand },
    }
    /// Held, never exported: metric 6a's patients under the day their
    /// no-criteria period started; reading puts them in their delay band
    /// as of the day read (`derive::not_meeting_criteria`).
    NotMeetingCriteriaSince {
        name: "icsflow_flow_not_meeting_criteria_since_patients",
        help: "Held inside the engine; read as the by-delay metric.",
        published: false,
        exported: false,
        labels: { place: PlaceCode, provider: OdsCode, pathway: PathwayLabel, reason as "reason_family": ReasonLabel, since as "since_day": i32 },
    }
    /// Held, never exported: metric 7's waits under the day they started
    /// (`derive::waiting_for_care`).
    WaitingForCareSince {
        name: "icsflow_flow_waiting_for_care_since_patients",
        help: "Held inside the engine; read as the by-delay metric.",
        published: false,
        exported: false,
        labels: { place: PlaceCode, pathway: PathwayLabel, since as "since_day": i32 },
    }
    /// 7. Days from DRD to the first social care service start
    ///    (`derive::waiting_for_care`).
    CareStartDelay {
        name: "icsflow_flow_care_start_delay_patients",
        window: "icsflow_flow_care_start_delay_patients_window",
        help: "Patients on P1-P3 whose first social care service started, by days from Discharge Ready Date to the start.",
        published: true,
        exported: true,
        labels: { place: PlaceCode, pathway: PathwayLabel, delay as "delay_days": DelayBand },
    }
    /// 8. Emergency readmissions 0-29 days after the most recent discharge
    ///    (`derive::readmissions`).
    Readmissions {
        name: "icsflow_flow_emergency_readmissions",
        window: "icsflow_flow_emergency_readmissions_window",
        help: "Emergency admissions 0-29 days after the patient's most recent discharge, counted once, by that discharge's provider.",
        published: true,
        exported: true,
        labels: { place: PlaceCode, provider: OdsCode },
    }
    /// 9. Discharged patients against the GP follow-up windows
    ///    (`derive::gp_follow_up`).
    GpFollowUp {
        name: "icsflow_flow_gp_follow_up_discharges",
        window: "icsflow_flow_gp_follow_up_discharges_window",
        help: "Discharged patients by attended primary care contact within the window.",
        published: true,
        exported: true,
        labels: { place: PlaceCode, window: FollowUpWindow, outcome: FollowUpOutcome },
    }
    /// 10. People 65+ discharged into reablement, by status at day 91
    ///     (`derive::reablement`).
    Reablement {
        name: "icsflow_flow_reablement_91_day_people",
        window: "icsflow_flow_reablement_91_day_people_window",
        help: "People 65+ discharged into reablement, by where they are 91 days after discharge.",
        published: true,
        exported: true,
        labels: { place: PlaceCode, outcome: ReablementOutcome },
    }
    /// 12. Patients in hospital, in the criteria-to-reside measures' scope
    ///     (`derive::in_hospital`): the denominator of every comparison
    ///     between places and trusts.
    InHospital {
        name: "icsflow_flow_in_hospital_patients",
        help: "Patients in hospital: adults (18+) in general and acute beds (or beds of unknown type), admitted and not yet discharged; the occupied beds that not meeting the criteria to reside is compared with.",
        published: true,
        exported: true,
        labels: { place: PlaceCode, provider: OdsCode },
    }
    /// 11. Events that link to no journey (`derive::unlinked_events`): a
    ///     data-quality count by partner, never published.
    UnlinkedEvents {
        name: "icsflow_quality_unlinked_events",
        window: "icsflow_quality_unlinked_events_window",
        help: "Events that link to no hospital journey, by feed and publishing organisation.",
        published: false,
        exported: true,
        labels: { feed: Feed, organisation: OdsCode },
    }
    /// 13. Records the measures depend on, by whether a measure-critical
    ///     field was recorded (`derive::completeness`): data quality by
    ///     partner, never published.
    Completeness {
        name: "icsflow_quality_completeness_records",
        window: "icsflow_quality_completeness_records_window",
        help: "Records the flow measures depend on (delays, discharges, admissions, social care starts), by partner, the measure-critical field and whether it was recorded, on the day each occurred; see docs/metrics.md.",
        published: false,
        exported: true,
        labels: { feed: Feed, organisation: OdsCode, field: Field, recorded: Recorded },
    }
    /// 14. Events that amend another of their partner's
    ///     (`derive::amended_events`): data quality by partner, never
    ///     published.
    AmendedEvents {
        name: "icsflow_quality_amended_events",
        window: "icsflow_quality_amended_events_window",
        help: "Events that amend another of their partner's: corrections (naming corrects_event_id) and conflicting re-sends (another version of an event id with other content), by the day the event occurred.",
        published: false,
        exported: true,
        labels: { feed: Feed, organisation: OdsCode, amendment: Amendment },
    }
}

impl MetricKey {
    /// The `pending` outcomes of running totals: people counted now, with
    /// no `_window` twin.
    fn is_pending_outcome(&self) -> bool {
        matches!(
            self,
            MetricKey::GpFollowUp {
                outcome: FollowUpOutcome::Pending,
                ..
            } | MetricKey::Reablement {
                outcome: ReablementOutcome::Pending,
                ..
            }
        )
    }

    /// A held key as the exported key it is read as on `day`: the delay
    /// band of the days since its start; `None` for every other key.
    pub(crate) fn read_as(&self, day: i32) -> Option<MetricKey> {
        match *self {
            MetricKey::NotMeetingCriteriaSince {
                place,
                provider,
                pathway,
                reason,
                since,
            } => Some(MetricKey::NotMeetingCriteriaByDelay {
                place,
                provider,
                pathway,
                reason,
                delay: DelayBand::of_days(day - since),
            }),
            MetricKey::WaitingForCareSince {
                place,
                pathway,
                since,
            } => Some(MetricKey::WaitingForCareByDelay {
                place,
                pathway,
                delay: DelayBand::of_days(day - since),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every exported metric once and each running total's twin once;
    /// names unique; a twin is its metric's name plus `_window`, with the
    /// `period` label last; held series are not among them.
    #[test]
    fn one_of_each_describes_every_exported_metric_and_its_twin() {
        let keys = MetricKey::one_of_each();
        let mut names: Vec<&str> = keys.iter().map(MetricKey::name).collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "{names:?}");
        // Every exported family is defined in docs/metrics.md, and every
        // family the document names exists (no count kept by hand here).
        let document = include_str!("../../../docs/metrics.md");
        for key in &keys {
            let base = key.name().trim_end_matches("_window");
            assert!(
                document.contains(&format!("`{base}{{")),
                "{base} is not defined in docs/metrics.md"
            );
        }
        for line in document
            .lines()
            .filter(|line| line.starts_with("`icsflow_"))
        {
            let named = line
                .trim_start_matches('`')
                .split(['{', '`'])
                .next()
                .unwrap_or_default();
            assert!(
                names.contains(&named),
                "docs/metrics.md defines {named}, which the engine does not export"
            );
        }
        for key in &keys {
            if let Some(window) = key.totalled() {
                assert_eq!(window, Window::Day1);
                let labels = key.labels();
                assert_eq!(labels.last().map(|label| label.0), Some("period"));
                assert!(key.name().ends_with("_window"));
            }
            assert!(!key.name().contains("_since_"), "{}", key.name());
            assert_eq!(
                MetricKey::is_published_name(key.name()),
                key.name().starts_with("icsflow_flow_"),
                "{}",
                key.name()
            );
        }
        assert!(!MetricKey::is_published_name(
            "icsflow_flow_not_meeting_criteria_since_patients"
        ));
        assert!(!MetricKey::is_published_name("icsflow_flow_no_such_metric"));
    }

    #[test]
    fn labels_keep_their_names_and_order() {
        let key = MetricKey::NotMeetingCriteriaByDelay {
            place: LabelValue::placeholder(),
            provider: LabelValue::placeholder(),
            pathway: PathwayLabel(None),
            reason: ReasonLabel(None),
            delay: DelayBand::Days2To3,
        };
        assert_eq!(
            key.labels(),
            [
                ("place", "E06000001".to_owned()),
                ("provider", "AAA".to_owned()),
                ("pathway", "unassigned".to_owned()),
                ("reason_family", "not_recorded".to_owned()),
                ("delay_days", "2-3".to_owned()),
            ]
        );
        let pending = MetricKey::GpFollowUp {
            place: LabelValue::placeholder(),
            window: FollowUpWindow::Days14,
            outcome: FollowUpOutcome::Pending,
            totalled: None,
        };
        assert_eq!(pending.in_window(Window::Days7), None);
        let attended = MetricKey::GpFollowUp {
            place: LabelValue::placeholder(),
            window: FollowUpWindow::Days14,
            outcome: FollowUpOutcome::Attended,
            totalled: None,
        };
        let twin = attended.in_window(Window::Days7).expect("a running total");
        assert_eq!(twin.name(), "icsflow_flow_gp_follow_up_discharges_window");
        assert_eq!(twin.labels().last(), Some(&("period", "7d".to_owned())));
    }
}
