//! One shard's table of pre-encoded answers, for QueryObj's hot calls.
//!
//! With 10,000 servants the route table is far larger than the CPU caches, so what a lookup
//! costs is the cache lines it touches. A `HashMap<String, Arc<ServantRoutes>>` touches the
//! bucket, the key's heap bytes, the `ServantRoutes` and the answer's refcount before the
//! answer itself. Here the servant's name and both answers sit in one allocation behind the
//! bucket: the name compare reads its first line, and the answer follows it. Nothing is
//! written on a lookup, so no cache line moves between shards.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

use super::table::EncodedAnswers;

/// Bytes before the name: the name's length and `findObjectById`'s answer length, u32 LE.
const HEADER: usize = 8;

/// `[name len][by_id len][name][by_id answer][4Any answer]` in one allocation.
#[derive(Debug)]
struct Entry(Box<[u8]>);

impl Entry {
    fn new(name: &str, answers: &EncodedAnswers) -> Option<Entry> {
        let name_len = u32::try_from(name.len()).ok()?;
        let by_id_len = u32::try_from(answers.by_id.len()).ok()?;
        let mut blob = Vec::with_capacity(HEADER + name.len() + answers.by_id.len() + answers.any.len());
        blob.extend_from_slice(&name_len.to_le_bytes());
        blob.extend_from_slice(&by_id_len.to_le_bytes());
        blob.extend_from_slice(name.as_bytes());
        blob.extend_from_slice(&answers.by_id);
        blob.extend_from_slice(&answers.any);
        Some(Entry(blob.into_boxed_slice()))
    }

    fn len_at(&self, at: usize) -> usize {
        let mut n = [0u8; 4];
        n.copy_from_slice(&self.0[at..at + 4]);
        u32::from_le_bytes(n) as usize
    }

    fn name(&self) -> &[u8] {
        &self.0[HEADER..HEADER + self.len_at(0)]
    }

    fn answers(&self) -> Answers<'_> {
        let name_end = HEADER + self.len_at(0);
        let (by_id, any) = self.0[name_end..].split_at(self.len_at(4));
        Answers { by_id, any }
    }
}

/// The two pre-encoded reply bodies of one servant, borrowed from the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answers<'a> {
    /// `findObjectById`.
    pub by_id: &'a [u8],
    /// `findObjectById4Any`.
    pub any: &'a [u8],
}

/// Servant name → pre-encoded answers. Lives on one shard, inside its
/// [`super::ShardRoutes`]; built and changed only by that shard.
#[derive(Debug, Default)]
pub struct FastTable {
    table: HashTable<Entry>,
    hasher: DefaultHashBuilder,
}

impl FastTable {
    /// Sets `name`'s answers.
    pub fn insert(&mut self, name: &str, answers: &EncodedAnswers) {
        self.remove(name);
        let Some(entry) = Entry::new(name, answers) else { return };
        let hasher = &self.hasher;
        let hash = hasher.hash_one(name.as_bytes());
        self.table.insert_unique(hash, entry, |e| hasher.hash_one(e.name()));
    }

    /// Forgets `name`.
    pub fn remove(&mut self, name: &str) {
        let hash = self.hasher.hash_one(name.as_bytes());
        if let Ok(found) = self.table.find_entry(hash, |e| e.name() == name.as_bytes()) {
            found.remove();
        }
    }

    /// `name`'s answers, if it is routed.
    pub fn get(&self, name: &[u8]) -> Option<Answers<'_>> {
        let hash = self.hasher.hash_one(name);
        self.table.find(hash, |e| e.name() == name).map(Entry::answers)
    }

    /// How many servants it holds.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tars_protocol::tars::EndpointF;

    fn answers(port: i32) -> EncodedAnswers {
        let ep = EndpointF { host: "10.0.0.1".into(), port, ..EndpointF::default() };
        EncodedAnswers::new(&vec![ep.clone()], &vec![ep])
    }

    #[test]
    fn holds_exactly_the_answers_inserted_and_forgets_removed_ones() {
        let mut t = FastTable::default();
        for i in 0..1000 {
            t.insert(&format!("App.S{i}.Obj"), &answers(i));
        }
        t.insert("App.S7.Obj", &answers(70_000));
        assert_eq!(t.len(), 1000);
        let want = answers(70_000);
        let got = t.get(b"App.S7.Obj").expect("present");
        assert_eq!((got.by_id, got.any), (&want.by_id[..], &want.any[..]));
        let other = answers(8);
        assert_eq!(t.get(b"App.S8.Obj").map(|a| a.any), Some(&other.any[..]));
        assert!(t.get(b"App.S8.Ob").is_none());
        assert!(t.get(b"").is_none());
        t.remove("App.S8.Obj");
        t.remove("never.there");
        assert!(t.get(b"App.S8.Obj").is_none());
        assert_eq!(t.len(), 999);
    }

    #[test]
    fn empty_names_and_answers_are_kept_apart() {
        let mut t = FastTable::default();
        let empty = EncodedAnswers::new(&Vec::new(), &Vec::new());
        t.insert("", &empty);
        let got = t.get(b"").expect("the empty name is a name");
        assert_eq!((got.by_id, got.any), (&empty.by_id[..], &empty.any[..]));
        assert!(!t.is_empty());
    }
}
