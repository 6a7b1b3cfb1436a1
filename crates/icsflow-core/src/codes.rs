//! The closed code lists of the three feeds, in the order of the symbols of
//! the Avro enums in `schemas/` (a test in the Avro crate holds them
//! together). National codes are given in each variant's doc.

/// A closed list of codes, in schema symbol order. The wire edge uses this
/// to turn a symbol index or name into a domain value without a second,
/// hand-kept list of variants.
pub trait CodeList: Copy + Eq + std::fmt::Debug + 'static {
    /// The Avro enum's name in the schemas, for example `DischargePathway`.
    const SCHEMA_NAME: &'static str;
    /// Every value, in symbol order.
    const ALL: &'static [Self];
    /// Every symbol, in the same order as [`CodeList::ALL`].
    const SYMBOLS: &'static [&'static str];

    /// Position of this value in [`CodeList::ALL`] (its Avro enum index).
    fn index(self) -> usize;

    /// The Avro symbol, for example `P1`.
    fn symbol(self) -> &'static str {
        Self::SYMBOLS[self.index()]
    }

    fn from_index(index: usize) -> Option<Self> {
        Self::ALL.get(index).copied()
    }

    fn from_symbol(symbol: &str) -> Option<Self> {
        Self::SYMBOLS
            .iter()
            .position(|known| *known == symbol)
            .map(|index| Self::ALL[index])
    }
}

macro_rules! code_list {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident = $symbol:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$variant_meta])* $variant, )+
        }

        impl CodeList for $name {
            const SCHEMA_NAME: &'static str = stringify!($name);
            const ALL: &'static [$name] = &[ $( $name::$variant, )+ ];
            const SYMBOLS: &'static [&'static str] = &[ $( $symbol, )+ ];

            fn index(self) -> usize {
                self as usize
            }
        }
    };
}

code_list! {
    /// The event types of the discharge feed.
    DischargeEventType {
        Admitted = "ADMITTED",
        AdmissionCancelled = "ADMISSION_CANCELLED",
        CriteriaToResideAssessed = "CRITERIA_TO_RESIDE_ASSESSED",
        PathwayAssigned = "PATHWAY_ASSIGNED",
        DelayReasonRecorded = "DELAY_REASON_RECORDED",
        Discharged = "DISCHARGED",
        DischargeCancelled = "DISCHARGE_CANCELLED",
    }
}

code_list! {
    /// The event types of the social care feed.
    SocialCareEventType {
        RequestCompleted = "REQUEST_COMPLETED",
        AssessmentCompleted = "ASSESSMENT_COMPLETED",
        ServiceStarted = "SERVICE_STARTED",
        ServiceEnded = "SERVICE_ENDED",
        ReviewCompleted = "REVIEW_COMPLETED",
    }
}

code_list! {
    /// The event types of the primary care feed.
    PrimaryCareEventType {
        DischargeSummaryFiled = "DISCHARGE_SUMMARY_FILED",
        PostDischargeContact = "POST_DISCHARGE_CONTACT",
        MedicationReviewCompleted = "MEDICATION_REVIEW_COMPLETED",
        RegistrationChanged = "REGISTRATION_CHANGED",
        DeathNotified = "DEATH_NOTIFIED",
    }
}

code_list! {
    /// NHS Data Dictionary ADMISSION METHOD.
    AdmissionMethod {
        /// 11
        ElectiveWaitingList = "ELECTIVE_WAITING_LIST",
        /// 12
        ElectiveBooked = "ELECTIVE_BOOKED",
        /// 13
        ElectivePlanned = "ELECTIVE_PLANNED",
        /// 21
        EmergencyAccidentAndEmergency = "EMERGENCY_ACCIDENT_AND_EMERGENCY",
        /// 22
        EmergencyGeneralPractitioner = "EMERGENCY_GENERAL_PRACTITIONER",
        /// 23
        EmergencyBedBureau = "EMERGENCY_BED_BUREAU",
        /// 24
        EmergencyConsultantClinic = "EMERGENCY_CONSULTANT_CLINIC",
        /// 25
        EmergencyMentalHealthCrisisTeam = "EMERGENCY_MENTAL_HEALTH_CRISIS_TEAM",
        /// 2A
        EmergencyOtherProviderAccidentAndEmergency = "EMERGENCY_OTHER_PROVIDER_ACCIDENT_AND_EMERGENCY",
        /// 2B
        EmergencyTransfer = "EMERGENCY_TRANSFER",
        /// 2C
        EmergencyBabyBornAtHome = "EMERGENCY_BABY_BORN_AT_HOME",
        /// 2D
        EmergencyOther = "EMERGENCY_OTHER",
        /// 31
        MaternityAntePartum = "MATERNITY_ANTE_PARTUM",
        /// 32
        MaternityPostPartum = "MATERNITY_POST_PARTUM",
        /// 81
        TransferFromOtherProvider = "TRANSFER_FROM_OTHER_PROVIDER",
        /// 82
        BabyBornInHospital = "BABY_BORN_IN_HOSPITAL",
        /// 83
        BabyBornOutsideHospital = "BABY_BORN_OUTSIDE_HOSPITAL",
    }
}

impl AdmissionMethod {
    /// Emergency admissions (codes 21 to 2D) are the ones readmission
    /// measures count.
    pub fn is_emergency(self) -> bool {
        self.symbol().starts_with("EMERGENCY_")
    }
}

code_list! {
    /// NHS Data Dictionary SOURCE OF ADMISSION, grouped.
    AdmissionSource {
        /// 19
        UsualPlaceOfResidence = "USUAL_PLACE_OF_RESIDENCE",
        /// 29
        TemporaryPlaceOfResidence = "TEMPORARY_PLACE_OF_RESIDENCE",
        /// 39
        PenalEstablishment = "PENAL_ESTABLISHMENT",
        /// 49 to 53
        OtherNhsHospital = "OTHER_NHS_HOSPITAL",
        /// 54, 65, 85, 87
        CareHome = "CARE_HOME",
        /// 88
        Hospice = "HOSPICE",
        /// 98
        NotApplicable = "NOT_APPLICABLE",
        /// 99
        NotKnown = "NOT_KNOWN",
    }
}

code_list! {
    /// NHS Data Dictionary CRITERIA TO RESIDE CODE: which criterion a
    /// patient still meets.
    CriteriaToResideCode {
        /// Critical or high-dependency care.
        C01 = "C01",
        /// Oxygen therapy or non-invasive ventilation.
        C02 = "C02",
        /// Intravenous fluids.
        C03 = "C03",
        /// NEWS2 above 3.
        C04 = "C04",
        /// Diminished consciousness with a realistic chance of recovery.
        C05 = "C05",
        /// Acute functional impairment beyond home or community provision.
        C06 = "C06",
        /// Last hours of life.
        C07 = "C07",
        /// Intravenous medication more than twice a day.
        C08 = "C08",
        /// Lower-limb surgery within 48 hours.
        C09 = "C09",
        /// Thoraco-abdominal or pelvic surgery within 72 hours.
        C10 = "C10",
        /// Invasive procedure within 24 hours with risk of deterioration.
        C11 = "C11",
        /// Meets criteria, criterion not recorded.
        C12 = "C12",
    }
}

code_list! {
    /// Discharge to Assess pathways.
    DischargePathway {
        /// Home, no new support.
        P0 = "P0",
        /// Home with new or restarted support.
        P1 = "P1",
        /// Short-term 24-hour bed, then home.
        P2 = "P2",
        /// New admission to a care home.
        P3 = "P3",
    }
}

code_list! {
    /// Families of discharge delay reasons (national, since May 2024).
    DelayReasonFamily {
        HospitalProcess = "HOSPITAL_PROCESS",
        Wellbeing = "WELLBEING",
        CareTransferHubProcess = "CARE_TRANSFER_HUB_PROCESS",
        InterfaceProcess = "INTERFACE_PROCESS",
        Capacity = "CAPACITY",
    }
}

code_list! {
    /// The detailed delay reasons of NHS England's acute discharge
    /// situation report (since 2024: 37 reasons in five families), each as
    /// published in the monthly "Daily discharge sitrep" data files
    /// (metric group "Delay reason LOS 7+"; 2025-26 files), which name a
    /// reason by its text only. The symbols are icsflow's own stable keys
    /// for those texts (the national list has no codes); the text is
    /// [`DelayReason::published_text`] and the family
    /// [`DelayReason::family`]. `OTHER`, last, is a reason a trust's system
    /// cannot map to the list (it belongs to whatever family the record
    /// gives), and what delay reasons of journey records written before
    /// this list existed read as. The one place the list is kept:
    /// the data dictionary's "Delay reasons" is generated from it.
    DelayReason {
        /// Awaiting medical review of need for supported discharge
        MedicalReview = "HP_MEDICAL_REVIEW",
        /// Awaiting therapy review of need for supported discharge
        TherapyReview = "HP_THERAPY_REVIEW",
        /// Awaiting referral to care transfer hub for supported discharge
        ReferralToHub = "HP_REFERRAL_TO_HUB",
        /// Awaiting formal decision to discharge (inc diagnostic test results)
        DecisionToDischarge = "HP_DECISION_TO_DISCHARGE",
        /// Awaiting medicines to take home, discharge letter or other discharge documentation
        MedicinesOrDocumentation = "HP_MEDICINES_OR_DOCUMENTATION",
        /// Awaiting patient transport services
        PatientTransport = "HP_PATIENT_TRANSPORT",
        /// Remaining in hospital due to infection prevention and control restrictions
        InfectionControl = "HP_INFECTION_CONTROL",
        /// Patient /family/carer concerns over discharge readiness
        ConcernsOverReadiness = "WB_CONCERNS_OVER_READINESS",
        /// Awaiting determination of mental capacity
        MentalCapacity = "WB_MENTAL_CAPACITY",
        /// Ongoing safeguarding concern
        Safeguarding = "WB_SAFEGUARDING",
        /// Issues with discharge destination readiness
        DestinationReadiness = "WB_DESTINATION_READINESS",
        /// Waiting for confirmation of immediate care needs and pathway
        CareNeedsAndPathway = "HUB_CARE_NEEDS_AND_PATHWAY",
        /// Awaiting necessary referrals by care transfer hub
        ReferralsByHub = "HUB_REFERRALS_BY_HUB",
        /// Awaiting confirmation of funding eligibility
        FundingEligibility = "HUB_FUNDING_ELIGIBILITY",
        /// Home based rehabilitation, reablement or recovery service arrangements still underway (Pathway 1)
        HomeRehabilitationArrangements = "IF_P1_HOME_REHABILITATION",
        /// Other home-based community health service arrangements still underway (Pathway 1)
        HomeCommunityHealthArrangements = "IF_P1_HOME_COMMUNITY_HEALTH",
        /// Other home-based social care service arrangements still underway (Pathway 1)
        HomeSocialCareArrangements = "IF_P1_HOME_SOCIAL_CARE",
        /// Bed-based rehabilitation, reablement or recovery service arrangements still underway (Pathway 2)
        BedRehabilitationArrangements = "IF_P2_BED_REHABILITATION",
        /// Residential/nursing home care arrangements still underway (Pathway 3)
        CareHomeArrangements = "IF_P3_CARE_HOME",
        /// End of life care inc Fast-Track CHC arrangement still underway (Pathway 1 or 3)
        EndOfLifeArrangements = "IF_END_OF_LIFE",
        /// Self-funded care package arrangements still underway
        SelfFundedArrangements = "IF_SELF_FUNDED",
        /// Patient/family/carer choice discussions on package still underway
        ChoiceDiscussions = "IF_CHOICE_DISCUSSIONS",
        /// Housing provision arrangement for homelessness still underway (Pathway 0 or 1)
        HomelessnessHousingArrangements = "IF_HOMELESSNESS_HOUSING",
        /// Homeless with no recourse to public funds
        NoRecourseToPublicFunds = "IF_NO_RECOURSE_TO_PUBLIC_FUNDS",
        /// Out of area discharge arrangements requested but not completed
        OutOfAreaArrangements = "IF_OUT_OF_AREA",
        /// Further action requested by agreed provider
        ProviderFurtherAction = "IF_PROVIDER_FURTHER_ACTION",
        /// Awaiting restart of existing social care arrangements (Pathway 0)
        RestartOfExistingCare = "CAP_P0_RESTART_OF_EXISTING_CARE",
        /// Home-based rehabilitation, reablement or recovery services not yet available (Pathway 1)
        HomeRehabilitation = "CAP_P1_HOME_REHABILITATION",
        /// Other home-based community health services not yet available (Pathway 1)
        HomeCommunityHealth = "CAP_P1_HOME_COMMUNITY_HEALTH",
        /// Other home-based social care service not yet available (Pathway 1)
        HomeSocialCare = "CAP_P1_HOME_SOCIAL_CARE",
        /// Bed-based rehabilitation, reablement or recovery services not yet available (Pathway 2)
        BedRehabilitation = "CAP_P2_BED_REHABILITATION",
        /// Mental health admitted patient care not yet available (Pathway 2)
        MentalHealthBed = "CAP_P2_MENTAL_HEALTH_BED",
        /// Residential/nursing home care not yet available (Pathway 3)
        CareHome = "CAP_P3_CARE_HOME",
        /// End of life care inc Fast-Track CHC not yet available (Pathway 1 or 3)
        EndOfLifeCare = "CAP_END_OF_LIFE",
        /// Equipment and associated training not yet delivered (Pathway 1-3)
        Equipment = "CAP_EQUIPMENT",
        /// Housing adaptations not yet completed (Pathway 1 or 3)
        HousingAdaptations = "CAP_HOUSING_ADAPTATIONS",
        /// Housing provision not yet available (Pathway 0 or 1)
        HousingProvision = "CAP_HOUSING_PROVISION",
        /// A reason not on the national list.
        Other = "OTHER",
    }
}

impl DelayReason {
    /// The family the national list puts this reason in; `None` for
    /// [`DelayReason::Other`], which goes with any family.
    pub const fn family(self) -> Option<DelayReasonFamily> {
        use DelayReason::*;
        Some(match self {
            MedicalReview
            | TherapyReview
            | ReferralToHub
            | DecisionToDischarge
            | MedicinesOrDocumentation
            | PatientTransport
            | InfectionControl => DelayReasonFamily::HospitalProcess,
            ConcernsOverReadiness | MentalCapacity | Safeguarding | DestinationReadiness => {
                DelayReasonFamily::Wellbeing
            }
            CareNeedsAndPathway | ReferralsByHub | FundingEligibility => {
                DelayReasonFamily::CareTransferHubProcess
            }
            HomeRehabilitationArrangements
            | HomeCommunityHealthArrangements
            | HomeSocialCareArrangements
            | BedRehabilitationArrangements
            | CareHomeArrangements
            | EndOfLifeArrangements
            | SelfFundedArrangements
            | ChoiceDiscussions
            | HomelessnessHousingArrangements
            | NoRecourseToPublicFunds
            | OutOfAreaArrangements
            | ProviderFurtherAction => DelayReasonFamily::InterfaceProcess,
            RestartOfExistingCare
            | HomeRehabilitation
            | HomeCommunityHealth
            | HomeSocialCare
            | BedRehabilitation
            | MentalHealthBed
            | CareHome
            | EndOfLifeCare
            | Equipment
            | HousingAdaptations
            | HousingProvision => DelayReasonFamily::Capacity,
            Other => return None,
        })
    }

    /// The reason as NHS England publishes it.
    pub const fn published_text(self) -> &'static str {
        use DelayReason::*;
        match self {
            MedicalReview => "Awaiting medical review of need for supported discharge",
            TherapyReview => "Awaiting therapy review of need for supported discharge",
            ReferralToHub => "Awaiting referral to care transfer hub for supported discharge",
            DecisionToDischarge => "Awaiting formal decision to discharge (inc diagnostic test results)",
            MedicinesOrDocumentation => "Awaiting medicines to take home, discharge letter or other discharge documentation",
            PatientTransport => "Awaiting patient transport services",
            InfectionControl => "Remaining in hospital due to infection prevention and control restrictions",
            ConcernsOverReadiness => "Patient /family/carer concerns over discharge readiness",
            MentalCapacity => "Awaiting determination of mental capacity",
            Safeguarding => "Ongoing safeguarding concern",
            DestinationReadiness => "Issues with discharge destination readiness",
            CareNeedsAndPathway => "Waiting for confirmation of immediate care needs and pathway",
            ReferralsByHub => "Awaiting necessary referrals by care transfer hub",
            FundingEligibility => "Awaiting confirmation of funding eligibility",
            HomeRehabilitationArrangements => "Home based rehabilitation, reablement or recovery service arrangements still underway (Pathway 1)",
            HomeCommunityHealthArrangements => "Other home-based community health service arrangements still underway (Pathway 1)",
            HomeSocialCareArrangements => "Other home-based social care service arrangements still underway (Pathway 1)",
            BedRehabilitationArrangements => "Bed-based rehabilitation, reablement or recovery service arrangements still underway (Pathway 2)",
            CareHomeArrangements => "Residential/nursing home care arrangements still underway (Pathway 3)",
            EndOfLifeArrangements => "End of life care inc Fast-Track CHC arrangement still underway (Pathway 1 or 3)",
            SelfFundedArrangements => "Self-funded care package arrangements still underway",
            ChoiceDiscussions => "Patient/family/carer choice discussions on package still underway",
            HomelessnessHousingArrangements => "Housing provision arrangement for homelessness still underway (Pathway 0 or 1)",
            NoRecourseToPublicFunds => "Homeless with no recourse to public funds",
            OutOfAreaArrangements => "Out of area discharge arrangements requested but not completed",
            ProviderFurtherAction => "Further action requested by agreed provider",
            RestartOfExistingCare => "Awaiting restart of existing social care arrangements (Pathway 0)",
            HomeRehabilitation => "Home-based rehabilitation, reablement or recovery services not yet available (Pathway 1)",
            HomeCommunityHealth => "Other home-based community health services not yet available (Pathway 1)",
            HomeSocialCare => "Other home-based social care service not yet available (Pathway 1)",
            BedRehabilitation => "Bed-based rehabilitation, reablement or recovery services not yet available (Pathway 2)",
            MentalHealthBed => "Mental health admitted patient care not yet available (Pathway 2)",
            CareHome => "Residential/nursing home care not yet available (Pathway 3)",
            EndOfLifeCare => "End of life care inc Fast-Track CHC not yet available (Pathway 1 or 3)",
            Equipment => "Equipment and associated training not yet delivered (Pathway 1-3)",
            HousingAdaptations => "Housing adaptations not yet completed (Pathway 1 or 3)",
            HousingProvision => "Housing provision not yet available (Pathway 0 or 1)",
            Other => "A reason not on the national list",
        }
    }

    /// Whether a record may give this reason with `family`.
    pub fn belongs_to(self, family: DelayReasonFamily) -> bool {
        self.family().is_none_or(|own| own == family)
    }
}

code_list! {
    /// NHS Data Dictionary DISCHARGE DESTINATION CODE (HOSPITAL PROVIDER
    /// SPELL), current and retired. The first nine symbols are those of
    /// version 1 of the discharge schema; the rest were appended in
    /// version 2. Symbols are only ever appended: journey records and the
    /// schemas carry a code as its position in this list.
    DischargeDestination {
        /// 19 (including no fixed abode)
        UsualPlaceOfResidence = "USUAL_PLACE_OF_RESIDENCE",
        /// 29
        TemporaryPlaceOfResidence = "TEMPORARY_PLACE_OF_RESIDENCE",
        /// 54 (retired care-home code)
        CareHomeNhs = "CARE_HOME_NHS",
        /// 55
        CareHomeWithNursing = "CARE_HOME_WITH_NURSING",
        /// 56
        CareHomeWithoutNursing = "CARE_HOME_WITHOUT_NURSING",
        /// 79 (died or stillbirth)
        Died = "DIED",
        /// 88 (non-NHS hospice)
        Hospice = "HOSPICE",
        /// 98 (spell not finished)
        NotApplicable = "NOT_APPLICABLE",
        /// 99
        NotKnown = "NOT_KNOWN",
        /// 30
        RepatriationFromHighSecurityPsychiatric = "REPATRIATION_FROM_HIGH_SECURITY_PSYCHIATRIC",
        /// 37
        Court = "COURT",
        /// 38 (retired: split into 40 and 42)
        PenalEstablishmentOrPoliceStation = "PENAL_ESTABLISHMENT_OR_POLICE_STATION",
        /// 40
        PenalEstablishment = "PENAL_ESTABLISHMENT",
        /// 42
        PoliceStation = "POLICE_STATION",
        /// 48
        HighSecurityPsychiatricScotland = "HIGH_SECURITY_PSYCHIATRIC_SCOTLAND",
        /// 49
        NhsHospitalHighSecurityPsychiatric = "NHS_HOSPITAL_HIGH_SECURITY_PSYCHIATRIC",
        /// 50
        NhsHospitalMediumSecure = "NHS_HOSPITAL_MEDIUM_SECURE",
        /// 51
        NhsHospitalGeneralWard = "NHS_HOSPITAL_GENERAL_WARD",
        /// 52
        NhsHospitalMaternityOrNeonates = "NHS_HOSPITAL_MATERNITY_OR_NEONATES",
        /// 53
        NhsHospitalMentalIllnessOrLearningDisabilities = "NHS_HOSPITAL_MENTAL_ILLNESS_OR_LEARNING_DISABILITIES",
        /// 65 (retired care-home code)
        LocalAuthorityResidential = "LOCAL_AUTHORITY_RESIDENTIAL",
        /// 66
        LocalAuthorityFosterCare = "LOCAL_AUTHORITY_FOSTER_CARE",
        /// 84
        NonNhsMediumSecure = "NON_NHS_MEDIUM_SECURE",
        /// 85 (retired care-home code)
        NonNhsCareHome = "NON_NHS_CARE_HOME",
        /// 87
        NonNhsHospital = "NON_NHS_HOSPITAL",
        /// 89
        ForcedRepatriation = "FORCED_REPATRIATION",
    }
}

/// The destination groups national reporting uses, and the flow measures
/// report as the `destination` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DestinationGroup {
    /// 19: the BCF "usual place of residence" numerator.
    UsualResidence,
    /// 54, 55, 56, 65, 85: every care-home code, current and retired.
    CareHome,
    /// 48 to 53, 84, 87: another hospital, NHS or not. A transfer, not a
    /// discharge home.
    OtherHospital,
    /// 88.
    Hospice,
    /// 79.
    Died,
    /// Everything else: temporary residence, court, prison, police,
    /// foster care, repatriation, not applicable, not known.
    Other,
}

impl DestinationGroup {
    pub const ALL: [DestinationGroup; 6] = [
        DestinationGroup::UsualResidence,
        DestinationGroup::CareHome,
        DestinationGroup::OtherHospital,
        DestinationGroup::Hospice,
        DestinationGroup::Died,
        DestinationGroup::Other,
    ];
}

impl DischargeDestination {
    /// The national code, for example `"19"`.
    pub fn national_code(self) -> &'static str {
        use DischargeDestination::*;
        match self {
            UsualPlaceOfResidence => "19",
            TemporaryPlaceOfResidence => "29",
            CareHomeNhs => "54",
            CareHomeWithNursing => "55",
            CareHomeWithoutNursing => "56",
            Died => "79",
            Hospice => "88",
            NotApplicable => "98",
            NotKnown => "99",
            RepatriationFromHighSecurityPsychiatric => "30",
            Court => "37",
            PenalEstablishmentOrPoliceStation => "38",
            PenalEstablishment => "40",
            PoliceStation => "42",
            HighSecurityPsychiatricScotland => "48",
            NhsHospitalHighSecurityPsychiatric => "49",
            NhsHospitalMediumSecure => "50",
            NhsHospitalGeneralWard => "51",
            NhsHospitalMaternityOrNeonates => "52",
            NhsHospitalMentalIllnessOrLearningDisabilities => "53",
            LocalAuthorityResidential => "65",
            LocalAuthorityFosterCare => "66",
            NonNhsMediumSecure => "84",
            NonNhsCareHome => "85",
            NonNhsHospital => "87",
            ForcedRepatriation => "89",
        }
    }

    /// Whether the code has been retired from the national list (trust
    /// systems still send them; they are read like the current ones).
    pub fn is_retired(self) -> bool {
        matches!(
            self,
            DischargeDestination::CareHomeNhs
                | DischargeDestination::PenalEstablishmentOrPoliceStation
                | DischargeDestination::LocalAuthorityResidential
                | DischargeDestination::NonNhsCareHome
        )
    }

    pub fn group(self) -> DestinationGroup {
        use DischargeDestination::*;
        match self {
            UsualPlaceOfResidence => DestinationGroup::UsualResidence,
            CareHomeNhs
            | CareHomeWithNursing
            | CareHomeWithoutNursing
            | LocalAuthorityResidential
            | NonNhsCareHome => DestinationGroup::CareHome,
            HighSecurityPsychiatricScotland
            | NhsHospitalHighSecurityPsychiatric
            | NhsHospitalMediumSecure
            | NhsHospitalGeneralWard
            | NhsHospitalMaternityOrNeonates
            | NhsHospitalMentalIllnessOrLearningDisabilities
            | NonNhsMediumSecure
            | NonNhsHospital => DestinationGroup::OtherHospital,
            Hospice => DestinationGroup::Hospice,
            Died => DestinationGroup::Died,
            TemporaryPlaceOfResidence
            | NotApplicable
            | NotKnown
            | RepatriationFromHighSecurityPsychiatric
            | Court
            | PenalEstablishmentOrPoliceStation
            | PenalEstablishment
            | PoliceStation
            | LocalAuthorityFosterCare
            | ForcedRepatriation => DestinationGroup::Other,
        }
    }
}

code_list! {
    /// The kind of bed an admitted patient occupies, after the KH03 bed
    /// categories. The discharge sitrep counts adults in general and acute
    /// beds.
    BedType {
        GeneralAndAcute = "GENERAL_AND_ACUTE",
        CriticalCare = "CRITICAL_CARE",
        Maternity = "MATERNITY",
        MentalHealth = "MENTAL_HEALTH",
        LearningDisabilities = "LEARNING_DISABILITIES",
        Other = "OTHER",
    }
}

code_list! {
    /// NHS Data Dictionary DISCHARGE METHOD.
    DischargeMethod {
        /// 1
        ClinicalAdvice = "CLINICAL_ADVICE",
        /// 2
        SelfDischarge = "SELF_DISCHARGE",
        /// 3
        MentalHealthTribunal = "MENTAL_HEALTH_TRIBUNAL",
        /// 4
        Died = "DIED",
        /// 5
        Stillbirth = "STILLBIRTH",
        /// 8
        NotApplicable = "NOT_APPLICABLE",
        /// 9
        NotKnown = "NOT_KNOWN",
    }
}

code_list! {
    /// Client Level Data ROUTE OF ACCESS.
    RouteOfAccess {
        DischargeFromHospital = "DISCHARGE_FROM_HOSPITAL",
        DiversionFromHospitalServices = "DIVERSION_FROM_HOSPITAL_SERVICES",
        Community = "COMMUNITY",
        PlannedEntryTransition = "PLANNED_ENTRY_TRANSITION",
        SelfFunderDepletedFunds = "SELF_FUNDER_DEPLETED_FUNDS",
        Prison = "PRISON",
    }
}

code_list! {
    /// Short- or long-term assessment.
    AssessmentType {
        ShortTerm = "SHORT_TERM",
        LongTerm = "LONG_TERM",
    }
}

code_list! {
    /// Client Level Data SERVICE TYPE.
    ServiceType {
        LongTermCommunity = "LONG_TERM_COMMUNITY",
        LongTermNursing = "LONG_TERM_NURSING",
        LongTermResidential = "LONG_TERM_RESIDENTIAL",
        /// Short-term support to maximise independence.
        ShortTermStMax = "SHORT_TERM_ST_MAX",
        ShortTermOther = "SHORT_TERM_OTHER",
    }
}

code_list! {
    /// Client Level Data SERVICE COMPONENT.
    ServiceComponent {
        Reablement = "REABLEMENT",
        HomeCare = "HOME_CARE",
        SupportedLiving = "SUPPORTED_LIVING",
        DirectPayment = "DIRECT_PAYMENT",
        DayCare = "DAY_CARE",
        ResidentialCare = "RESIDENTIAL_CARE",
        NursingCare = "NURSING_CARE",
        EquipmentAndAdaptations = "EQUIPMENT_AND_ADAPTATIONS",
        Other = "OTHER",
    }
}

code_list! {
    /// Why a social care service ended.
    ServiceEndReason {
        NoOngoingNeeds = "NO_ONGOING_NEEDS",
        LongTermCommunitySupport = "LONG_TERM_COMMUNITY_SUPPORT",
        MovedToResidentialOrNursing = "MOVED_TO_RESIDENTIAL_OR_NURSING",
        AdmittedToHospital = "ADMITTED_TO_HOSPITAL",
        Died = "DIED",
        MovedAway = "MOVED_AWAY",
        Declined = "DECLINED",
        Other = "OTHER",
    }
}

code_list! {
    /// Planned or unplanned review.
    ReviewType {
        Planned = "PLANNED",
        Unplanned = "UNPLANNED",
    }
}

code_list! {
    /// What a social care review decided.
    ReviewOutcome {
        NoChange = "NO_CHANGE",
        SupportIncreased = "SUPPORT_INCREASED",
        SupportReduced = "SUPPORT_REDUCED",
        SupportEnded = "SUPPORT_ENDED",
        MovedToResidentialOrNursing = "MOVED_TO_RESIDENTIAL_OR_NURSING",
    }
}

code_list! {
    /// Whether a post-discharge contact took place.
    ContactAttendance {
        Attended = "ATTENDED",
        DidNotAttend = "DID_NOT_ATTEND",
    }
}

code_list! {
    /// How a primary care contact was made.
    ContactMode {
        FaceToFace = "FACE_TO_FACE",
        HomeVisit = "HOME_VISIT",
        Telephone = "TELEPHONE",
        Video = "VIDEO",
        Online = "ONLINE",
    }
}

code_list! {
    /// Kind of medication review after discharge.
    MedicationReviewKind {
        StructuredMedicationReview = "STRUCTURED_MEDICATION_REVIEW",
        DischargeMedicinesService = "DISCHARGE_MEDICINES_SERVICE",
    }
}

code_list! {
    /// A change of GP registration.
    RegistrationChange {
        Registered = "REGISTERED",
        Deregistered = "DEREGISTERED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_and_indices_agree() {
        fn check<Code: CodeList>() {
            assert_eq!(Code::ALL.len(), Code::SYMBOLS.len());
            for (index, code) in Code::ALL.iter().enumerate() {
                assert_eq!(code.index(), index);
                assert_eq!(Code::from_symbol(code.symbol()), Some(*code));
                assert_eq!(Code::from_index(index), Some(*code));
            }
            assert_eq!(Code::from_index(Code::ALL.len()), None);
        }
        check::<AdmissionMethod>();
        check::<DischargeDestination>();
        check::<CriteriaToResideCode>();
        check::<ServiceComponent>();
    }

    #[test]
    fn emergency_admissions_and_destination_groups() {
        let emergencies = AdmissionMethod::ALL
            .iter()
            .filter(|method| method.is_emergency())
            .count();
        assert_eq!(emergencies, 9);
        assert!(!AdmissionMethod::ElectiveBooked.is_emergency());
    }

    /// Every national code once, in the group DOMAIN's reporting puts it
    /// in: usual residence 19; care home 54, 55, 56, 65, 85; other hospital
    /// 48 to 53, 84, 87; hospice 88; died 79; other the rest.
    #[test]
    fn every_destination_code_is_national_and_grouped() {
        let mut codes: Vec<&str> = DischargeDestination::ALL
            .iter()
            .map(|destination| destination.national_code())
            .collect();
        codes.sort_unstable();
        assert_eq!(
            codes,
            [
                "19", "29", "30", "37", "38", "40", "42", "48", "49", "50", "51", "52", "53", "54",
                "55", "56", "65", "66", "79", "84", "85", "87", "88", "89", "98", "99"
            ]
        );
        let group_of = |code: &str| {
            DischargeDestination::ALL
                .iter()
                .find(|destination| destination.national_code() == code)
                .map(|destination| destination.group())
        };
        for (codes, group) in [
            (&["19"][..], DestinationGroup::UsualResidence),
            (&["54", "55", "56", "65", "85"], DestinationGroup::CareHome),
            (
                &["48", "49", "50", "51", "52", "53", "84", "87"],
                DestinationGroup::OtherHospital,
            ),
            (&["88"], DestinationGroup::Hospice),
            (&["79"], DestinationGroup::Died),
            (
                &["29", "30", "37", "38", "40", "42", "66", "89", "98", "99"],
                DestinationGroup::Other,
            ),
        ] {
            for code in codes {
                assert_eq!(group_of(code), Some(group), "code {code}");
            }
        }
        let retired: Vec<&str> = DischargeDestination::ALL
            .iter()
            .filter(|destination| destination.is_retired())
            .map(|destination| destination.national_code())
            .collect();
        assert_eq!(retired, ["54", "38", "65", "85"]);
    }
}
