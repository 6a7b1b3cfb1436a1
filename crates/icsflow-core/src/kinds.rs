//! Closed sets of kinds and values kept per kind.
//!
//! [`kinds!`](crate::kinds) declares an enum, its [`Kind::ALL`] and its
//! labels from one list, so that the list and the enum cannot disagree;
//! [`PerKind`] keeps one value per kind, indexed by the kind itself (not by
//! a number whose order nothing checks).

use std::marker::PhantomData;

/// A closed set of kinds, every one listed once in [`Kind::ALL`] at its
/// [`Kind::index`].
pub trait Kind: Copy + std::fmt::Debug + 'static {
    const ALL: &'static [Self];
    fn index(self) -> usize;
}

/// Declares a fieldless enum whose variants are a closed set: with
/// `ALL` (the variants in order), `label` (each one's name in labels and
/// logs) and [`Kind`](crate::Kind), all from the one list.
#[macro_export]
macro_rules! kinds {
    ($(#[$meta:meta])* $vis:vis enum $kind:ident {
        $($(#[doc = $doc:literal])* $variant:ident => $label:literal,)*
    }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $kind {
            $($(#[doc = $doc])* $variant,)*
        }

        impl $kind {
            #[allow(dead_code)]
            $vis const fn label(self) -> &'static str {
                match self {
                    $($kind::$variant => $label,)*
                }
            }
        }

        impl $crate::Kind for $kind {
            const ALL: &'static [$kind] = &[$($kind::$variant),*];

            fn index(self) -> usize {
                // Declaration order, which is `ALL`'s: both come from the
                // one list above.
                self as usize
            }
        }
    };
}

/// One `T` per kind of `K`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerKind<K, T> {
    values: Vec<T>,
    kind: PhantomData<K>,
}

impl<K: Kind, T> PerKind<K, T> {
    /// The value of each kind, from `value`.
    pub fn new(value: impl FnMut(&K) -> T) -> PerKind<K, T> {
        PerKind {
            values: K::ALL.iter().map(value).collect(),
            kind: PhantomData,
        }
    }

    /// Each kind with its value, in the order of [`Kind::ALL`].
    pub fn iter(&self) -> impl Iterator<Item = (K, &T)> {
        K::ALL.iter().copied().zip(&self.values)
    }
}

impl<K: Kind, T: Default> Default for PerKind<K, T> {
    fn default() -> PerKind<K, T> {
        PerKind::new(|_| T::default())
    }
}

impl<K: Kind, T> std::ops::Index<K> for PerKind<K, T> {
    type Output = T;

    fn index(&self, kind: K) -> &T {
        &self.values[kind.index()]
    }
}

impl<K: Kind, T> std::ops::IndexMut<K> for PerKind<K, T> {
    fn index_mut(&mut self, kind: K) -> &mut T {
        &mut self.values[kind.index()]
    }
}

impl Kind for crate::Feed {
    const ALL: &'static [crate::Feed] = &crate::Feed::ALL;

    fn index(self) -> usize {
        match self {
            crate::Feed::Discharge => 0,
            crate::Feed::SocialCare => 1,
            crate::Feed::PrimaryCare => 2,
        }
    }
}

impl Kind for crate::PartnerKind {
    const ALL: &'static [crate::PartnerKind] = &crate::PartnerKind::ALL;

    fn index(self) -> usize {
        match self {
            crate::PartnerKind::AcuteTrust => 0,
            crate::PartnerKind::LocalAuthority => 1,
            crate::PartnerKind::PrimaryCare => 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::kinds! {
        enum Colour {
            Red => "red",
            Green => "green",
            Blue => "blue",
        }
    }

    #[test]
    fn values_are_kept_and_found_by_kind() {
        let mut counts: PerKind<Colour, u64> = PerKind::default();
        counts[Colour::Green] += 2;
        counts[Colour::Blue] += 1;
        assert_eq!(
            counts
                .iter()
                .map(|(colour, count)| (colour.label(), *count))
                .collect::<Vec<_>>(),
            [("red", 0), ("green", 2), ("blue", 1)]
        );
        for (position, colour) in Colour::ALL.iter().enumerate() {
            assert_eq!(colour.index(), position);
        }
        // The kinds declared by hand list ALL in their index order.
        for (position, feed) in <crate::Feed as Kind>::ALL.iter().enumerate() {
            assert_eq!(feed.index(), position);
        }
        for (position, kind) in <crate::PartnerKind as Kind>::ALL.iter().enumerate() {
            assert_eq!(kind.index(), position);
        }
    }
}
