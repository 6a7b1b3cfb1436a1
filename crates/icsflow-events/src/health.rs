//! Readiness: the conditions `/readyz` answers from, set by the roles.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use crate::GaugeHandle;

/// What `/readyz` reports; set by the roles. Each role that runs in the
/// process adds its own condition: a process running both (`run`, the
/// demo) is ready only when both are.
#[derive(Debug)]
pub struct Health {
    /// Join: every assigned partition replayed.
    replayed: RoleCondition,
    /// Ingest: partitions owned, so consuming.
    consuming: RoleCondition,
    /// Ingest: the schema registry accepts icsflow's credentials.
    registry_accepts: RoleCondition,
    /// Ingest: no record waits on a registry that does not answer.
    registry_answers: RoleCondition,
    /// A broker answered recently.
    broker_reachable: AtomicBool,
    ready_gauge: Option<GaugeHandle>,
}

/// A role's readiness condition: not run in this process (no say), or run
/// and met or not.
#[derive(Debug)]
struct RoleCondition(AtomicU8);

impl Default for RoleCondition {
    fn default() -> RoleCondition {
        RoleCondition(AtomicU8::new(RoleCondition::NOT_RUN))
    }
}

impl RoleCondition {
    const NOT_RUN: u8 = 0;
    const UNMET: u8 = 1;
    const MET: u8 = 2;

    fn set(&self, met: bool) {
        let state = if met {
            RoleCondition::MET
        } else {
            RoleCondition::UNMET
        };
        self.0.store(state, Ordering::Relaxed);
    }

    fn met(&self) -> bool {
        self.0.load(Ordering::Relaxed) == RoleCondition::MET
    }

    fn blocks(&self) -> bool {
        self.0.load(Ordering::Relaxed) == RoleCondition::UNMET
    }
}

impl Health {
    pub fn new(ready_gauge: Option<GaugeHandle>) -> Health {
        Health {
            replayed: RoleCondition::default(),
            consuming: RoleCondition::default(),
            registry_accepts: RoleCondition::default(),
            registry_answers: RoleCondition::default(),
            broker_reachable: AtomicBool::new(false),
            ready_gauge,
        }
    }

    /// Join: whether every assigned partition is replayed.
    pub fn set_caught_up(&self, caught_up: bool) {
        self.replayed.set(caught_up);
        self.update_gauge();
    }

    /// Ingest: whether it owns partitions (and so is consuming).
    pub fn set_consuming(&self, consuming: bool) {
        self.consuming.set(consuming);
        self.update_gauge();
    }

    /// Ingest: whether the schema registry accepts icsflow's credentials
    /// (false after a 401 or 403, until a lookup succeeds).
    pub fn set_registry_accepts(&self, accepts: bool) {
        self.registry_accepts.set(accepts);
        self.update_gauge();
    }

    /// Ingest: whether the registry answered the lookups records wait on
    /// (false while one is retried after the registry did not answer).
    pub fn set_registry_answers(&self, answers: bool) {
        self.registry_answers.set(answers);
        self.update_gauge();
    }

    pub fn set_broker_reachable(&self, reachable: bool) {
        self.broker_reachable.store(reachable, Ordering::Relaxed);
        self.update_gauge();
    }

    /// Join: every assigned partition replayed.
    pub fn caught_up(&self) -> bool {
        self.replayed.met()
    }

    /// Ingest: partitions owned.
    pub fn consuming(&self) -> bool {
        self.consuming.met()
    }

    /// Ingest: the last registry answer refused icsflow's credentials.
    pub fn registry_refused(&self) -> bool {
        self.registry_accepts.blocks()
    }

    pub fn broker_reachable(&self) -> bool {
        self.broker_reachable.load(Ordering::Relaxed)
    }

    /// Why the process is not ready, empty when it is.
    pub fn not_ready_reasons(&self) -> Vec<&'static str> {
        let mut reasons = Vec::new();
        if self.replayed.blocks() {
            reasons.push("assigned journey partitions not yet replayed");
        }
        if self.consuming.blocks() {
            reasons.push("ingest owns no partitions");
        }
        if self.registry_accepts.blocks() {
            reasons.push("the schema registry refuses icsflow's credentials");
        }
        if self.registry_answers.blocks() {
            reasons.push("records wait on the schema registry, which does not answer (their partitions are held and asked again)");
        }
        if !self.broker_reachable() {
            reasons.push("no broker reachable");
        }
        reasons
    }

    pub fn ready(&self) -> bool {
        self.not_ready_reasons().is_empty()
    }

    fn update_gauge(&self) {
        if let Some(gauge) = &self.ready_gauge {
            gauge.set(i64::from(self.ready()));
        }
    }
}
