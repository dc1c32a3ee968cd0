//! What the gateway's long-lived maps share.

use std::{
    collections::HashMap,
    hash::{BuildHasher, Hash},
};

/// Gives back most of a map's table once it is far larger than what it holds: a burst (of
/// sessions, say) would otherwise leave its size behind for good.
pub fn shrink<K: Hash + Eq, V, S: BuildHasher>(map: &mut HashMap<K, V, S>) {
    if map.capacity() > 64 && map.len() < map.capacity() / 4 {
        let keep = map.len() * 2;
        map.shrink_to(keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_far_larger_than_what_it_holds_gives_most_of_its_table_back() {
        let mut map = foldhash::HashMap::default();
        map.extend((0..1_000).map(|key| (key, ())));
        map.retain(|key, ()| *key < 10);
        let before = map.capacity();
        shrink(&mut map);
        assert!(
            map.capacity() < before / 10,
            "{} of {before}",
            map.capacity()
        );
        assert_eq!(map.len(), 10);

        // A small table, or one still a quarter full, is left as it is.
        let mut small: HashMap<u32, ()> = (0..40).map(|key| (key, ())).collect();
        small.retain(|key, ()| *key < 2);
        let small_before = small.capacity();
        shrink(&mut small);
        assert_eq!(small.capacity(), small_before);
    }
}
