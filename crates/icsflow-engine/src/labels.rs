//! What the engine measures and the bounded label sets it measures by.
//!
//! Every label value comes from a closed set: GSS place codes and ODS
//! provider codes (bounded by the ICS's partners), pathways, bands, reason
//! families, destination groups, outcomes, feeds. Never a pseudonym.
//! The definitions are in `docs/metrics.md`; the names here follow
//! `icsflow_<subsystem>_<name>_<unit>`.

use std::fmt;

use icsflow_core::{
    CodeList, DelayReasonFamily, DestinationGroup, DischargePathway, Feed, OdsCode, PlaceCode,
};

/// The pathway label: a pathway, or none assigned yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathwayLabel(pub Option<DischargePathway>);

impl fmt::Display for PathwayLabel {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.0.map_or("unassigned", DischargePathway::symbol))
    }
}

/// The reason-family label: a family, or none recorded yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReasonLabel(pub Option<DelayReasonFamily>);

impl fmt::Display for ReasonLabel {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.0 {
            None => "not_recorded",
            Some(DelayReasonFamily::HospitalProcess) => "hospital_process",
            Some(DelayReasonFamily::Wellbeing) => "wellbeing",
            Some(DelayReasonFamily::CareTransferHubProcess) => "care_transfer_hub_process",
            Some(DelayReasonFamily::InterfaceProcess) => "interface_process",
            Some(DelayReasonFamily::Capacity) => "capacity",
        };
        formatter.write_str(label)
    }
}

/// Days since admission, in the stranded / super-stranded bands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StayBand {
    Days0To6,
    Days7To13,
    Days14To20,
    Days21Plus,
}

impl StayBand {
    /// Each band with its first day and the first day after it.
    pub(crate) const RANGES: [(StayBand, i32, i32); 4] = [
        (StayBand::Days0To6, 0, 7),
        (StayBand::Days7To13, 7, 14),
        (StayBand::Days14To20, 14, 21),
        (StayBand::Days21Plus, 21, i32::MAX),
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            StayBand::Days0To6 => "0-6",
            StayBand::Days7To13 => "7-13",
            StayBand::Days14To20 => "14-20",
            StayBand::Days21Plus => "21+",
        }
    }
}

/// Days from Discharge Ready Date to discharge (or to care starting), in
/// the published bands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DelayBand {
    Days0,
    Days1,
    Days2To3,
    Days4To6,
    Days7To13,
    Days14To20,
    Days21Plus,
}

impl DelayBand {
    pub const ALL: [DelayBand; 7] = [
        DelayBand::Days0,
        DelayBand::Days1,
        DelayBand::Days2To3,
        DelayBand::Days4To6,
        DelayBand::Days7To13,
        DelayBand::Days14To20,
        DelayBand::Days21Plus,
    ];

    pub fn of_days(days: i32) -> DelayBand {
        match days {
            ..=0 => DelayBand::Days0,
            1 => DelayBand::Days1,
            2..=3 => DelayBand::Days2To3,
            4..=6 => DelayBand::Days4To6,
            7..=13 => DelayBand::Days7To13,
            14..=20 => DelayBand::Days14To20,
            _ => DelayBand::Days21Plus,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            DelayBand::Days0 => "0",
            DelayBand::Days1 => "1",
            DelayBand::Days2To3 => "2-3",
            DelayBand::Days4To6 => "4-6",
            DelayBand::Days7To13 => "7-13",
            DelayBand::Days14To20 => "14-20",
            DelayBand::Days21Plus => "21+",
        }
    }
}

pub(crate) fn destination_group_label(group: DestinationGroup) -> &'static str {
    match group {
        DestinationGroup::UsualResidence => "usual_residence",
        DestinationGroup::CareHome => "care_home",
        DestinationGroup::OtherHospital => "other_hospital",
        DestinationGroup::Hospice => "hospice",
        DestinationGroup::Died => "died",
        DestinationGroup::Other => "other",
    }
}

/// The GP follow-up windows after discharge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FollowUpWindow {
    Days7,
    Days14,
}

impl FollowUpWindow {
    pub const ALL: [FollowUpWindow; 2] = [FollowUpWindow::Days7, FollowUpWindow::Days14];

    pub const fn days(self) -> i32 {
        match self {
            FollowUpWindow::Days7 => 7,
            FollowUpWindow::Days14 => 14,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            FollowUpWindow::Days7 => "7d",
            FollowUpWindow::Days14 => "14d",
        }
    }
}

/// Where a discharged patient stands against a follow-up window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FollowUpOutcome {
    /// An attended contact within the window.
    Attended,
    /// The window has passed without one.
    NotAttended,
    /// The window is still open and no attended contact yet.
    Pending,
}

impl FollowUpOutcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            FollowUpOutcome::Attended => "attended",
            FollowUpOutcome::NotAttended => "not_attended",
            FollowUpOutcome::Pending => "pending",
        }
    }
}

/// Where a person discharged into reablement is 91 days after discharge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReablementOutcome {
    AtHome,
    Readmitted,
    CareHome,
    Died,
    /// Day 91 has not come yet.
    Pending,
}

impl ReablementOutcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            ReablementOutcome::AtHome => "at_home",
            ReablementOutcome::Readmitted => "readmitted",
            ReablementOutcome::CareHome => "care_home",
            ReablementOutcome::Died => "died",
            ReablementOutcome::Pending => "pending",
        }
    }
}

/// A period of complete days ending the day before the as-of day, over
/// which a cumulative metric is totalled (`period` label; `window` is the
/// GP follow-up window's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Window {
    /// Yesterday.
    Day1,
    /// The 7 days ending yesterday.
    Days7,
    /// The 28 days ending yesterday.
    Days28,
}

impl Window {
    pub const ALL: [Window; 3] = [Window::Day1, Window::Days7, Window::Days28];

    pub const fn days(self) -> i32 {
        match self {
            Window::Day1 => 1,
            Window::Days7 => 7,
            Window::Days28 => 28,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Window::Day1 => "1d",
            Window::Days7 => "7d",
            Window::Days28 => "28d",
        }
    }
}

/// One series: a metric and the values of its labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetricKey {
    /// 1. Patients in hospital who no longer meet the criteria to reside.
    NotMeetingCriteria {
        place: PlaceCode,
        provider: OdsCode,
        pathway: PathwayLabel,
    },
    /// 2. The same, by days since admission.
    NotMeetingCriteriaByStay {
        place: PlaceCode,
        provider: OdsCode,
        pathway: PathwayLabel,
        stay: StayBand,
    },
    /// 3. Midnights spent in hospital after the Discharge Ready Date.
    DelayedBedDays {
        place: PlaceCode,
        provider: OdsCode,
        pathway: PathwayLabel,
        reason: ReasonLabel,
        /// `Some`: the total over that window (the `_window` metric).
        totalled: Option<Window>,
    },
    /// 4. Discharges of patients who had a Discharge Ready Date, by the
    ///    days from it to discharge.
    DischargeDelay {
        place: PlaceCode,
        provider: OdsCode,
        pathway: PathwayLabel,
        delay: DelayBand,
        /// `Some`: the total over that window (the `_window` metric).
        totalled: Option<Window>,
    },
    /// 4. Sum of those days, for the mean.
    DischargeDelayDays {
        place: PlaceCode,
        provider: OdsCode,
        pathway: PathwayLabel,
        /// `Some`: the total over that window (the `_window` metric).
        totalled: Option<Window>,
    },
    /// 5. Discharges by destination group.
    Discharges {
        place: PlaceCode,
        provider: OdsCode,
        pathway: PathwayLabel,
        destination: DestinationGroup,
        /// `Some`: the total over that window (the `_window` metric).
        totalled: Option<Window>,
    },
    /// 6. Patients not meeting the criteria by the reason currently recorded.
    DelayedByReason {
        place: PlaceCode,
        provider: OdsCode,
        reason: ReasonLabel,
    },
    /// 6b. Patients not meeting the criteria, by days since their DRD and
    ///     the reason family in effect.
    NotMeetingCriteriaByDelay {
        place: PlaceCode,
        provider: OdsCode,
        pathway: PathwayLabel,
        reason: ReasonLabel,
        delay: DelayBand,
    },
    /// 7. Patients on P1-P3 past their DRD with no social care started.
    WaitingForCare {
        place: PlaceCode,
        pathway: PathwayLabel,
    },
    /// 7b. The same, by days waited since the DRD.
    WaitingForCareByDelay {
        place: PlaceCode,
        pathway: PathwayLabel,
        delay: DelayBand,
    },
    /// Held, never exported: metric 6b's patients under the day their
    /// no-criteria period started; reading puts them in their delay band
    /// as of the day read.
    NotMeetingCriteriaSince {
        place: PlaceCode,
        provider: OdsCode,
        pathway: PathwayLabel,
        reason: ReasonLabel,
        since: i32,
    },
    /// Held, never exported: metric 7b's people under the day their wait
    /// started.
    WaitingForCareSince {
        place: PlaceCode,
        pathway: PathwayLabel,
        since: i32,
    },
    /// 7. Days from DRD to the first social care service start.
    CareStartDelay {
        place: PlaceCode,
        pathway: PathwayLabel,
        delay: DelayBand,
        /// `Some`: the total over that window (the `_window` metric).
        totalled: Option<Window>,
    },
    /// 8. Emergency readmissions 0-29 days after a discharge.
    Readmissions {
        place: PlaceCode,
        provider: OdsCode,
        /// `Some`: the total over that window (the `_window` metric).
        totalled: Option<Window>,
    },
    /// 9. Discharged patients against the GP follow-up windows.
    GpFollowUp {
        place: PlaceCode,
        window: FollowUpWindow,
        outcome: FollowUpOutcome,
        /// `Some`: the total over that window (the `_window` metric).
        totalled: Option<Window>,
    },
    /// 10. People 65+ discharged into reablement, by status at day 91.
    Reablement {
        place: PlaceCode,
        outcome: ReablementOutcome,
        /// `Some`: the total over that window (the `_window` metric).
        totalled: Option<Window>,
    },
    /// 11. Events that link to no journey.
    UnlinkedEvents {
        feed: Feed,
        organisation: OdsCode,
        /// `Some`: the total over that window (the `_window` metric).
        totalled: Option<Window>,
    },
}

impl MetricKey {
    /// One key of every metric, with placeholder label values: what a
    /// collector needs to describe every metric before any series exists.
    pub fn one_of_each() -> Vec<MetricKey> {
        let (place, provider) = (
            PlaceCode::parse("place", "E06000001"),
            OdsCode::parse("provider", "AAA"),
        );
        let (Ok(place), Ok(provider)) = (place, provider) else {
            return Vec::new();
        };
        let pathway = PathwayLabel(None);
        let reason = ReasonLabel(None);
        let current = vec![
            MetricKey::NotMeetingCriteria {
                place,
                provider,
                pathway,
            },
            MetricKey::NotMeetingCriteriaByStay {
                place,
                provider,
                pathway,
                stay: StayBand::Days0To6,
            },
            MetricKey::DelayedBedDays {
                totalled: None,
                place,
                provider,
                pathway,
                reason,
            },
            MetricKey::DischargeDelay {
                totalled: None,
                place,
                provider,
                pathway,
                delay: DelayBand::Days0,
            },
            MetricKey::DischargeDelayDays {
                totalled: None,
                place,
                provider,
                pathway,
            },
            MetricKey::Discharges {
                totalled: None,
                place,
                provider,
                pathway,
                destination: DestinationGroup::Other,
            },
            MetricKey::DelayedByReason {
                place,
                provider,
                reason,
            },
            MetricKey::NotMeetingCriteriaByDelay {
                place,
                provider,
                pathway,
                reason,
                delay: DelayBand::Days0,
            },
            MetricKey::WaitingForCare { place, pathway },
            MetricKey::WaitingForCareByDelay {
                place,
                pathway,
                delay: DelayBand::Days0,
            },
            MetricKey::CareStartDelay {
                totalled: None,
                place,
                pathway,
                delay: DelayBand::Days0,
            },
            MetricKey::Readmissions {
                place,
                provider,
                totalled: None,
            },
            MetricKey::GpFollowUp {
                totalled: None,
                place,
                window: FollowUpWindow::Days7,
                outcome: FollowUpOutcome::Pending,
            },
            MetricKey::Reablement {
                totalled: None,
                place,
                outcome: ReablementOutcome::Pending,
            },
            MetricKey::UnlinkedEvents {
                totalled: None,
                feed: Feed::Discharge,
                organisation: provider,
            },
        ];
        // Each cumulative metric's `_window` twin.
        let windowed: Vec<MetricKey> = current
            .iter()
            .filter_map(|key| key.in_window(Window::Day1))
            .collect();
        current.into_iter().chain(windowed).collect()
    }

    /// The metric's name.
    pub fn name(&self) -> &'static str {
        let base = self.base_name();
        if self.totalled().is_none() {
            return base;
        }
        match base {
            "icsflow_flow_delayed_bed_nights" => "icsflow_flow_delayed_bed_nights_window",
            "icsflow_flow_discharge_delay_discharges" => {
                "icsflow_flow_discharge_delay_discharges_window"
            }
            "icsflow_flow_discharge_delay_length" => "icsflow_flow_discharge_delay_length_window",
            "icsflow_flow_discharges" => "icsflow_flow_discharges_window",
            "icsflow_flow_care_start_delay_patients" => {
                "icsflow_flow_care_start_delay_patients_window"
            }
            "icsflow_flow_emergency_readmissions" => "icsflow_flow_emergency_readmissions_window",
            "icsflow_flow_gp_follow_up_discharges" => "icsflow_flow_gp_follow_up_discharges_window",
            "icsflow_flow_reablement_91_day_people" => {
                "icsflow_flow_reablement_91_day_people_window"
            }
            "icsflow_quality_unlinked_events" => "icsflow_quality_unlinked_events_window",
            other => other,
        }
    }

    /// The window a cumulative metric is totalled over, if this key is one.
    pub fn totalled(&self) -> Option<Window> {
        match *self {
            MetricKey::DelayedBedDays { totalled, .. }
            | MetricKey::DischargeDelay { totalled, .. }
            | MetricKey::DischargeDelayDays { totalled, .. }
            | MetricKey::Discharges { totalled, .. }
            | MetricKey::CareStartDelay { totalled, .. }
            | MetricKey::Readmissions { totalled, .. }
            | MetricKey::GpFollowUp { totalled, .. }
            | MetricKey::Reablement { totalled, .. }
            | MetricKey::UnlinkedEvents { totalled, .. } => totalled,
            _ => None,
        }
    }

    /// This cumulative series totalled over `window`; `None` for a metric
    /// that is a count of people now (a status, not a running total) and
    /// for the `pending` outcomes, which are statuses too.
    pub fn in_window(&self, window: Window) -> Option<MetricKey> {
        let totalled = Some(window);
        let mut key = *self;
        match &mut key {
            MetricKey::GpFollowUp {
                outcome: FollowUpOutcome::Pending,
                ..
            }
            | MetricKey::Reablement {
                outcome: ReablementOutcome::Pending,
                ..
            } => return None,
            MetricKey::DelayedBedDays { totalled: slot, .. }
            | MetricKey::DischargeDelay { totalled: slot, .. }
            | MetricKey::DischargeDelayDays { totalled: slot, .. }
            | MetricKey::Discharges { totalled: slot, .. }
            | MetricKey::CareStartDelay { totalled: slot, .. }
            | MetricKey::Readmissions { totalled: slot, .. }
            | MetricKey::GpFollowUp { totalled: slot, .. }
            | MetricKey::Reablement { totalled: slot, .. }
            | MetricKey::UnlinkedEvents { totalled: slot, .. } => *slot = totalled,
            _ => return None,
        }
        Some(key)
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

    fn base_name(&self) -> &'static str {
        match self {
            MetricKey::NotMeetingCriteria { .. } => "icsflow_flow_not_meeting_criteria_patients",
            MetricKey::NotMeetingCriteriaByStay { .. } => {
                "icsflow_flow_not_meeting_criteria_by_stay_patients"
            }
            MetricKey::DelayedBedDays { .. } => "icsflow_flow_delayed_bed_nights",
            MetricKey::DischargeDelay { .. } => "icsflow_flow_discharge_delay_discharges",
            MetricKey::DischargeDelayDays { .. } => "icsflow_flow_discharge_delay_length",
            MetricKey::Discharges { .. } => "icsflow_flow_discharges",
            MetricKey::DelayedByReason { .. } => "icsflow_flow_delayed_by_reason_patients",
            MetricKey::NotMeetingCriteriaByDelay { .. } => {
                "icsflow_flow_not_meeting_criteria_by_delay_patients"
            }
            MetricKey::WaitingForCare { .. } => "icsflow_flow_waiting_for_care_patients",
            MetricKey::WaitingForCareByDelay { .. } => {
                "icsflow_flow_waiting_for_care_by_delay_patients"
            }
            MetricKey::NotMeetingCriteriaSince { .. } => {
                "icsflow_flow_not_meeting_criteria_since_patients"
            }
            MetricKey::WaitingForCareSince { .. } => "icsflow_flow_waiting_for_care_since_patients",
            MetricKey::CareStartDelay { .. } => "icsflow_flow_care_start_delay_patients",
            MetricKey::Readmissions { .. } => "icsflow_flow_emergency_readmissions",
            MetricKey::GpFollowUp { .. } => "icsflow_flow_gp_follow_up_discharges",
            MetricKey::Reablement { .. } => "icsflow_flow_reablement_91_day_people",
            MetricKey::UnlinkedEvents { .. } => "icsflow_quality_unlinked_events",
        }
    }

    /// One line of help, as in `docs/metrics.md`.
    pub fn help(&self) -> &'static str {
        if self.totalled().is_some() {
            return "The cumulative metric of the same name without _window, totalled over the `period` of complete days ending the day before the as-of day (1d, 7d or 28d); see docs/metrics.md.";
        }
        match self {
            MetricKey::NotMeetingCriteria { .. } => "Patients in hospital who no longer meet the criteria to reside (past their Discharge Ready Date).",
            MetricKey::NotMeetingCriteriaByStay { .. } => "Patients not meeting the criteria to reside, by days since admission.",
            MetricKey::DelayedBedDays { .. } => "Delayed bed days: midnights spent in hospital after a Discharge Ready Date, by the delay reason family in effect the day before.",
            MetricKey::DischargeDelay { .. } => "Discharges of patients with a Discharge Ready Date, by days from it to discharge.",
            MetricKey::DischargeDelayDays { .. } => "Total length in days, from Discharge Ready Date to discharge, of those discharges.",
            MetricKey::Discharges { .. } => "Discharges by pathway and destination group.",
            MetricKey::DelayedByReason { .. } => "Patients not meeting the criteria to reside, by the delay reason family currently recorded.",
            MetricKey::NotMeetingCriteriaByDelay { .. } => "Patients not meeting the criteria to reside, by days since their Discharge Ready Date (published bands) and the delay reason family in effect.",
            MetricKey::WaitingForCare { .. } => "Patients on pathways P1-P3 past their Discharge Ready Date with no social care service started yet.",
            MetricKey::WaitingForCareByDelay { .. } => "Patients waiting for social care to start, by days since their Discharge Ready Date (published bands).",
            MetricKey::NotMeetingCriteriaSince { .. } | MetricKey::WaitingForCareSince { .. } => "Held inside the engine; read as the by-delay metric.",
            MetricKey::CareStartDelay { .. } => "Patients on P1-P3 whose first social care service started, by days from Discharge Ready Date to the start.",
            MetricKey::Readmissions { .. } => "Emergency admissions 0-29 days after the patient's most recent discharge, counted once, by that discharge's provider.",
            MetricKey::GpFollowUp { .. } => "Discharged patients by attended primary care contact within the window.",
            MetricKey::Reablement { .. } => "People 65+ discharged into reablement, by where they are 91 days after discharge.",
            MetricKey::UnlinkedEvents { .. } => "Events that link to no hospital journey, by feed and publishing organisation.",
        }
    }

    /// Label names and values, in a fixed order.
    pub fn labels(&self) -> Vec<(&'static str, String)> {
        let place = |place: &PlaceCode| ("place", place.to_string());
        let provider = |provider: &OdsCode| ("provider", provider.to_string());
        let pathway = |pathway: &PathwayLabel| ("pathway", pathway.to_string());
        let mut labels = match self {
            MetricKey::NotMeetingCriteria {
                place: p,
                provider: o,
                pathway: w,
            } => vec![place(p), provider(o), pathway(w)],
            MetricKey::NotMeetingCriteriaByStay {
                place: p,
                provider: o,
                pathway: w,
                stay,
            } => {
                vec![
                    place(p),
                    provider(o),
                    pathway(w),
                    ("stay_days", stay.as_str().to_owned()),
                ]
            }
            MetricKey::DelayedBedDays {
                place: p,
                provider: o,
                pathway: w,
                reason,
                ..
            } => {
                vec![
                    place(p),
                    provider(o),
                    pathway(w),
                    ("reason_family", reason.to_string()),
                ]
            }
            MetricKey::DischargeDelay {
                place: p,
                provider: o,
                pathway: w,
                delay,
                ..
            } => {
                vec![
                    place(p),
                    provider(o),
                    pathway(w),
                    ("delay_days", delay.as_str().to_owned()),
                ]
            }
            MetricKey::DischargeDelayDays {
                place: p,
                provider: o,
                pathway: w,
                ..
            } => vec![place(p), provider(o), pathway(w)],
            MetricKey::Discharges {
                place: p,
                provider: o,
                pathway: w,
                destination,
                ..
            } => {
                vec![
                    place(p),
                    provider(o),
                    pathway(w),
                    (
                        "destination",
                        destination_group_label(*destination).to_owned(),
                    ),
                ]
            }
            MetricKey::DelayedByReason {
                place: p,
                provider: o,
                reason,
            } => {
                vec![place(p), provider(o), ("reason_family", reason.to_string())]
            }
            MetricKey::NotMeetingCriteriaByDelay {
                place: p,
                provider: o,
                pathway: w,
                reason,
                delay,
            } => vec![
                place(p),
                provider(o),
                pathway(w),
                ("reason_family", reason.to_string()),
                ("delay_days", delay.as_str().to_owned()),
            ],
            MetricKey::WaitingForCare {
                place: p,
                pathway: w,
            } => vec![place(p), pathway(w)],
            MetricKey::WaitingForCareByDelay {
                place: p,
                pathway: w,
                delay,
            } => vec![
                place(p),
                pathway(w),
                ("delay_days", delay.as_str().to_owned()),
            ],
            MetricKey::CareStartDelay {
                place: p,
                pathway: w,
                delay,
                ..
            } => {
                vec![
                    place(p),
                    pathway(w),
                    ("delay_days", delay.as_str().to_owned()),
                ]
            }
            MetricKey::Readmissions {
                place: p,
                provider: o,
                ..
            } => vec![place(p), provider(o)],
            MetricKey::GpFollowUp {
                place: p,
                window,
                outcome,
                ..
            } => {
                vec![
                    place(p),
                    ("window", window.as_str().to_owned()),
                    ("outcome", outcome.as_str().to_owned()),
                ]
            }
            MetricKey::Reablement {
                place: p, outcome, ..
            } => {
                vec![place(p), ("outcome", outcome.as_str().to_owned())]
            }
            MetricKey::NotMeetingCriteriaSince {
                place: p,
                provider: o,
                pathway: w,
                reason,
                since,
            } => vec![
                place(p),
                provider(o),
                pathway(w),
                ("reason_family", reason.to_string()),
                ("since_day", since.to_string()),
            ],
            MetricKey::WaitingForCareSince {
                place: p,
                pathway: w,
                since,
            } => vec![place(p), pathway(w), ("since_day", since.to_string())],
            MetricKey::UnlinkedEvents {
                feed, organisation, ..
            } => {
                vec![
                    ("feed", feed.as_str().to_owned()),
                    ("organisation", organisation.to_string()),
                ]
            }
        };
        if let Some(window) = self.totalled() {
            labels.push(("period", window.as_str().to_owned()));
        }
        labels
    }
}

impl fmt::Display for MetricKey {
    /// `name{label="value",...}`, as in the Prometheus text format.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}{{", self.name())?;
        for (index, (name, value)) in self.labels().into_iter().enumerate() {
            if index > 0 {
                formatter.write_str(",")?;
            }
            write!(formatter, "{name}=\"{value}\"")?;
        }
        formatter.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_bands_follow_the_published_bands() {
        let bands: Vec<&str> = [0, 1, 2, 3, 4, 6, 7, 13, 14, 20, 21, 400]
            .map(|days| DelayBand::of_days(days).as_str())
            .to_vec();
        assert_eq!(
            bands,
            [
                "0", "1", "2-3", "2-3", "4-6", "4-6", "7-13", "7-13", "14-20", "14-20", "21+",
                "21+"
            ]
        );
    }
}
