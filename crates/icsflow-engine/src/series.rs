//! A metric value as a function of the "as of" day, maintained
//! incrementally.
//!
//! Every journey contributes constants, steps ("+1 from day d") and slopes
//! ("+1 per day from day d", for bed days). A [`Series`] is the sum of all
//! contributions to one label combination. Evaluating it as of a day costs
//! time proportional to the number of distinct days with a change, never to
//! the number of patients; eviction folds settled contributions into the
//! constant, which keeps those day maps to the live horizon.

use std::collections::BTreeMap;

/// One journey's contribution to one series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Contribution {
    /// Counts whatever the day.
    Constant(i64),
    /// Counts `delta` from `day` (inclusive) on.
    Step { day: i32, delta: i64 },
    /// Adds `delta` for each day after `day`: `delta * (as_of - day)` once
    /// `as_of >= day`. A `+1` slope at `a` and a `-1` slope at `b` count the
    /// days from `a` to `b`.
    Slope { day: i32, delta: i64 },
}

impl Contribution {
    pub(crate) fn negated(self) -> Contribution {
        match self {
            Contribution::Constant(value) => Contribution::Constant(-value),
            Contribution::Step { day, delta } => Contribution::Step { day, delta: -delta },
            Contribution::Slope { day, delta } => Contribution::Slope { day, delta: -delta },
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Series {
    constant: i64,
    steps: BTreeMap<i32, i64>,
    slopes: BTreeMap<i32, i64>,
}

impl Series {
    pub(crate) fn add(&mut self, contribution: Contribution) {
        match contribution {
            Contribution::Constant(value) => self.constant += value,
            Contribution::Step { day, delta } => add_to(&mut self.steps, day, delta),
            Contribution::Slope { day, delta } => add_to(&mut self.slopes, day, delta),
        }
    }

    /// The value as of `day`.
    pub(crate) fn value(&self, day: i32) -> i64 {
        let steps: i64 = self.steps.range(..=day).map(|(_, delta)| delta).sum();
        let slopes: i64 = self
            .slopes
            .range(..=day)
            .map(|(start, delta)| delta * i64::from(day - start))
            .sum();
        self.constant + steps + slopes
    }

    /// Whether it is 0 on every day: nothing held.
    pub(crate) fn is_zero(&self) -> bool {
        self.constant == 0 && self.steps.is_empty() && self.slopes.is_empty()
    }

    /// Distinct days held, for memory accounting.
    pub(crate) fn entries(&self) -> usize {
        self.steps.len() + self.slopes.len()
    }
}

fn add_to(map: &mut BTreeMap<i32, i64>, day: i32, delta: i64) {
    let entry = map.entry(day).or_insert(0);
    *entry += delta;
    if *entry == 0 {
        map.remove(&day);
    }
}

/// The value a set of contributions settles to once every day in them has
/// passed: steps summed, closed slopes as the days they span. `None` when a
/// slope is still open (the value keeps growing).
pub(crate) fn settled_value(contributions: impl IntoIterator<Item = Contribution>) -> Option<i64> {
    let (mut value, mut open_slope) = (0_i64, 0_i64);
    for contribution in contributions {
        match contribution {
            Contribution::Constant(constant) => value += constant,
            Contribution::Step { delta, .. } => value += delta,
            Contribution::Slope { day, delta } => {
                open_slope += delta;
                value -= delta * i64::from(day);
            }
        }
    }
    (open_slope == 0).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_slopes_evaluate_as_of_a_day() {
        let mut series = Series::default();
        series.add(Contribution::Constant(2));
        series.add(Contribution::Step { day: 10, delta: 1 });
        series.add(Contribution::Step { day: 15, delta: -1 });
        assert_eq!(
            [
                series.value(9),
                series.value(10),
                series.value(14),
                series.value(15)
            ],
            [2, 3, 3, 2]
        );

        let mut bed_days = Series::default();
        bed_days.add(Contribution::Slope { day: 10, delta: 1 });
        bed_days.add(Contribution::Slope { day: 13, delta: -1 });
        bed_days.add(Contribution::Slope { day: 12, delta: 1 });
        assert_eq!(
            [
                bed_days.value(10),
                bed_days.value(12),
                bed_days.value(13),
                bed_days.value(20)
            ],
            [0, 2, 4, 11]
        );
    }

    #[test]
    fn cancelling_contributions_leave_nothing_behind() {
        let mut series = Series::default();
        let contribution = Contribution::Step { day: 3, delta: 1 };
        series.add(contribution);
        series.add(contribution.negated());
        assert_eq!(series, Series::default());
        assert_eq!(series.entries(), 0);
    }

    #[test]
    fn settled_values() {
        let closed = [
            Contribution::Slope { day: 10, delta: 1 },
            Contribution::Slope { day: 13, delta: -1 },
            Contribution::Step { day: 5, delta: 1 },
        ];
        assert_eq!(settled_value(closed), Some(4));
        assert_eq!(
            settled_value([Contribution::Slope { day: 10, delta: 1 }]),
            None
        );
    }
}
