//! A total order for values used as map keys.
//!
//! TarsCpp orders struct keys with the IDL `key[...]` members (or all members) through
//! `operator<`, so `map<Struct, V>` encodes in that order. Generated structs implement
//! [`KeyOrd`] member by member, and structs used as keys get `Ord` from it. Floats compare
//! with `total_cmp` so that the order is total.

use bytes::Bytes;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// A total order over wire values.
pub trait KeyOrd {
    /// Compares `self` with `other`.
    fn key_cmp(&self, other: &Self) -> Ordering;
}

macro_rules! by_ord {
    ($($t:ty),*) => { $(impl KeyOrd for $t {
        fn key_cmp(&self, other: &Self) -> Ordering { Ord::cmp(self, other) }
    })* };
}

by_ord!(bool, i8, i16, i32, i64, u8, u16, u32, String, Bytes, super::BinString);

impl KeyOrd for f32 {
    fn key_cmp(&self, other: &Self) -> Ordering {
        self.total_cmp(other)
    }
}

impl KeyOrd for f64 {
    fn key_cmp(&self, other: &Self) -> Ordering {
        self.total_cmp(other)
    }
}

impl<T: KeyOrd> KeyOrd for Vec<T> {
    fn key_cmp(&self, other: &Self) -> Ordering {
        for (a, b) in self.iter().zip(other) {
            match a.key_cmp(b) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        self.len().cmp(&other.len())
    }
}

impl<K: KeyOrd, V: KeyOrd> KeyOrd for BTreeMap<K, V> {
    fn key_cmp(&self, other: &Self) -> Ordering {
        for ((ka, va), (kb, vb)) in self.iter().zip(other) {
            match ka.key_cmp(kb).then_with(|| va.key_cmp(vb)) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        self.len().cmp(&other.len())
    }
}
