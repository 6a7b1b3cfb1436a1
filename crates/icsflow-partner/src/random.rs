//! A small deterministic random number generator (xoshiro256**, seeded
//! through SplitMix64). Written here rather than taken from a crate so that
//! a seed gives the same simulated ICS on every version and platform.

/// Deterministic pseudo-random numbers. Not for secrets.
#[derive(Clone, Debug)]
pub struct Random {
    state: [u64; 4],
}

impl Random {
    pub fn new(seed: u64) -> Random {
        let mut splitmix = seed;
        let mut next = || {
            splitmix = splitmix.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = splitmix;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Random {
            state: [next(), next(), next(), next()],
        }
    }

    /// An independent stream derived from this one (for one patient, say),
    /// so that adding draws in one place does not shift every other.
    pub fn fork(&mut self) -> Random {
        Random::new(self.next_u64())
    }

    pub fn next_u64(&mut self) -> u64 {
        let [s0, s1, s2, s3] = &mut self.state;
        let result = s1.wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = *s1 << 17;
        *s2 ^= *s0;
        *s3 ^= *s1;
        *s1 ^= *s2;
        *s0 ^= *s3;
        *s2 ^= t;
        *s3 = s3.rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
    }

    /// True with probability `probability`.
    pub fn chance(&mut self, probability: f64) -> bool {
        self.unit() < probability
    }

    /// Uniform in `low..=high`.
    pub fn between(&mut self, low: i64, high: i64) -> i64 {
        debug_assert!(low <= high);
        let span = (high - low) as u64 + 1;
        low + (self.next_u64() % span) as i64
    }

    /// An index drawn with the given relative weights.
    pub fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut target = self.unit() * total;
        for (index, weight) in weights.iter().enumerate() {
            if target < *weight {
                return index;
            }
            target -= weight;
        }
        weights.len().saturating_sub(1)
    }

    /// A whole number of days with an exponential distribution of this
    /// mean (at least `minimum`).
    pub fn exponential_days(&mut self, mean: f64, minimum: i64) -> i64 {
        let draw = -mean * (1.0 - self.unit()).ln();
        (draw.floor() as i64).max(minimum)
    }

    /// A count with a Poisson distribution of this mean (Knuth's method;
    /// fine for the small means used here).
    pub fn poisson(&mut self, mean: f64) -> u32 {
        if mean <= 0.0 {
            return 0;
        }
        if mean > 200.0 {
            // Normal approximation for large means.
            let normal = (-2.0 * (1.0 - self.unit()).ln()).sqrt()
                * (2.0 * std::f64::consts::PI * self.unit()).cos();
            return (mean + normal * mean.sqrt()).round().max(0.0) as u32;
        }
        let limit = (-mean).exp();
        let mut product = self.unit();
        let mut count = 0;
        while product > limit {
            product *= self.unit();
            count += 1;
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_always_gives_the_same_numbers() {
        let mut first = Random::new(42);
        let mut second = Random::new(42);
        let drawn: Vec<u64> = (0..5).map(|_| first.next_u64()).collect();
        assert_eq!(drawn, (0..5).map(|_| second.next_u64()).collect::<Vec<_>>());
        assert_ne!(Random::new(43).next_u64(), drawn[0]);
    }

    #[test]
    fn draws_stay_in_range_and_have_the_right_means() {
        let mut random = Random::new(7);
        let samples = 20_000;
        let mut poisson_total = 0_u64;
        let mut heads = 0;
        for _ in 0..samples {
            let value = random.between(3, 5);
            assert!((3..=5).contains(&value));
            poisson_total += u64::from(random.poisson(4.0));
            heads += usize::from(random.chance(0.25));
        }
        let poisson_mean = poisson_total as f64 / f64::from(samples);
        assert!((poisson_mean - 4.0).abs() < 0.1, "{poisson_mean}");
        let share = heads as f64 / f64::from(samples);
        assert!((share - 0.25).abs() < 0.02, "{share}");
        let picks = (0..samples)
            .filter(|_| random.weighted(&[1.0, 3.0]) == 1)
            .count();
        let share = picks as f64 / f64::from(samples);
        assert!((share - 0.75).abs() < 0.02, "{share}");
    }
}
