//! The bounded label sets the engine measures by (the metrics themselves
//! are in `metrics.rs`).
//!
//! Every label value comes from a closed set: GSS place codes and ODS
//! provider codes (bounded by the ICS's partners), pathways, bands, reason
//! families, destination groups, outcomes, feeds. Never a pseudonym.
//! The definitions are in `docs/metrics.md`; the names here follow
//! `icsflow_<subsystem>_<name>_<unit>`.

use std::fmt;

use icsflow_core::{CodeList, DelayReasonFamily, DestinationGroup, DischargePathway};

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

/// The measure-critical facts whose completeness metric 13 counts
/// (`docs/metrics.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// A no-criteria period's assessment gave a Discharge Ready Date.
    DischargeReadyDate,
    /// A delay had a reason in effect on one of its days.
    DelayReason,
    /// A delay had a pathway assigned on a day before it ended.
    Pathway,
    /// A discharge's destination is not `NOT_KNOWN`.
    Destination,
    /// An admission gave the bed type.
    BedType,
    /// A social care service start is of a person with a counted spell.
    LinkedSpell,
}

impl Field {
    pub const ALL: [Field; 6] = [
        Field::DischargeReadyDate,
        Field::DelayReason,
        Field::Pathway,
        Field::Destination,
        Field::BedType,
        Field::LinkedSpell,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Field::DischargeReadyDate => "discharge_ready_date",
            Field::DelayReason => "delay_reason",
            Field::Pathway => "pathway",
            Field::Destination => "destination",
            Field::BedType => "bed_type",
            Field::LinkedSpell => "linked_spell",
        }
    }
}

/// Whether the field was recorded: `yes` or `no`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Recorded(pub bool);

impl Recorded {
    pub const fn as_str(self) -> &'static str {
        if self.0 {
            "yes"
        } else {
            "no"
        }
    }
}

/// How an event amends another of its partner's (metric 14).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Amendment {
    /// It names `corrects_event_id`.
    Correction,
    /// Another version of an event id with other content.
    ConflictingResend,
}

impl Amendment {
    pub const fn as_str(self) -> &'static str {
        match self {
            Amendment::Correction => "correction",
            Amendment::ConflictingResend => "conflicting_resend",
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
