//! Edits of one IPAMBlock object (`spec.allocations`, `spec.attributes`, `spec.unallocated`)
//! as Calico's IPAM makes them: release ordinals held by a handle (attributes kept compact),
//! and put released ordinals back when they are still free. Pure JSON edits: the caller reads
//! the block, edits it, and writes it back with its resourceVersion.

use serde_json::{Value, json};

/// The ordinal's attribute index and handle, when allocated.
fn held(block: &Value, ordinal: u32) -> Option<(usize, String)> {
    let idx = block["spec"]["allocations"]
        .get(ordinal as usize)?
        .as_u64()
        .and_then(|i| usize::try_from(i).ok())?;
    let handle = block["spec"]["attributes"]
        .get(idx)
        .and_then(|a| a["handle_id"].as_str())
        .unwrap_or_default()
        .to_owned();
    Some((idx, handle))
}

/// Releases each `(ordinal, handle)` still held by that handle; returns the ordinals released.
/// Ordinals held by another handle (reused since) are left alone.
pub fn release(block: &mut Value, wanted: &[(u32, String)]) -> Vec<u32> {
    let mut released = Vec::new();
    let mut dropped: Vec<usize> = Vec::new();
    for (ordinal, handle) in wanted {
        if let Some((idx, h)) = held(block, *ordinal)
            && &h == handle
        {
            block["spec"]["allocations"][*ordinal as usize] = Value::Null;
            released.push(*ordinal);
            dropped.push(idx);
        }
    }
    if released.is_empty() {
        return released;
    }
    dropped.sort_unstable();
    dropped.dedup();
    // Attributes stay compact: drop the released ones, renumber the allocations after them.
    if let Some(attrs) = block["spec"]["attributes"].as_array_mut() {
        for idx in dropped.iter().rev() {
            if *idx < attrs.len() {
                attrs.remove(*idx);
            }
        }
    }
    if let Some(allocs) = block["spec"]["allocations"].as_array_mut() {
        for a in allocs.iter_mut() {
            if let Some(i) = a.as_u64().and_then(|i| usize::try_from(i).ok()) {
                let below = dropped.iter().filter(|d| **d < i).count();
                *a = json!(i - below);
            }
        }
    }
    let unallocated = block["spec"]["unallocated"]
        .as_array_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    let mut free: Vec<u64> = unallocated.iter().filter_map(Value::as_u64).collect();
    free.extend(released.iter().map(|o| u64::from(*o)));
    free.sort_unstable();
    free.dedup();
    block["spec"]["unallocated"] = json!(free);
    released
}

/// What putting `before`'s allocations back into `current` did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// Ordinals allocated again, to the handle they had.
    pub restored: Vec<u32>,
    /// Ordinals another handle holds now: left to it.
    pub taken: Vec<u32>,
}

/// Puts back into `current` every allocation of `before` that is free now (with its
/// attribute); an ordinal another handle holds since is left to it.
pub fn restore(current: &mut Value, before: &Value) -> Restored {
    let mut out = Restored::default();
    let size = before["spec"]["allocations"].as_array().map_or(0, Vec::len);
    for ordinal in 0..u32::try_from(size).unwrap_or(u32::MAX) {
        let Some((idx, handle)) = held(before, ordinal) else {
            continue;
        };
        match held(current, ordinal) {
            Some((_, h)) if h == handle => {}
            Some(_) => out.taken.push(ordinal),
            None => {
                let attr = before["spec"]["attributes"][idx].clone();
                let Some(attrs) = current["spec"]["attributes"].as_array_mut() else {
                    current["spec"]["attributes"] = json!([attr]);
                    current["spec"]["allocations"][ordinal as usize] = json!(0);
                    out.restored.push(ordinal);
                    continue;
                };
                attrs.push(attr);
                let new_idx = attrs.len() - 1;
                current["spec"]["allocations"][ordinal as usize] = json!(new_idx);
                out.restored.push(ordinal);
            }
        }
    }
    if let Some(free) = current["spec"]["unallocated"].as_array_mut() {
        free.retain(|o| {
            o.as_u64()
                .and_then(|o| u32::try_from(o).ok())
                .is_none_or(|o| !out.restored.contains(&o))
        });
    }
    out
}

/// The ordinals `before` allocates that `current` does not hold with the same handle.
#[must_use]
pub fn missing(current: &Value, before: &Value) -> Vec<u32> {
    let size = before["spec"]["allocations"].as_array().map_or(0, Vec::len);
    (0..u32::try_from(size).unwrap_or(u32::MAX))
        .filter(|o| {
            held(before, *o).is_some_and(|(_, h)| held(current, *o).is_none_or(|(_, c)| c != h))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block() -> Value {
        json!({"spec": {
            "cidr": "192.168.0.0/29",
            "allocations": [0, 1, 2, null, 3, null, null, null],
            "attributes": [
                {"handle_id": "tunnel", "secondary": {}},
                {"handle_id": "a", "secondary": {"pod": "a"}},
                {"handle_id": "gone", "secondary": {"pod": "gone"}},
                {"handle_id": "b", "secondary": {"pod": "b"}}
            ],
            "unallocated": [3, 5, 6, 7]
        }})
    }

    #[test]
    fn a_release_frees_the_ordinal_and_keeps_attributes_compact() {
        let before = block();
        let mut b = block();
        let released = release(&mut b, &[(2, "gone".into()), (1, "not-its-handle".into())]);
        assert_eq!(released, [2]);
        assert_eq!(
            b["spec"]["allocations"],
            json!([0, 1, null, null, 2, null, null, null])
        );
        assert_eq!(b["spec"]["attributes"][2]["handle_id"], "b");
        assert_eq!(b["spec"]["unallocated"], json!([2, 3, 5, 6, 7]));
        assert_eq!(missing(&b, &before), [2]);

        // A pod started since takes ordinal 3: the rollback puts ordinal 2 back, 3 stays.
        let mut later = b.clone();
        later["spec"]["allocations"][3] = json!(3);
        later["spec"]["unallocated"] = json!([2, 5, 6, 7]);
        later["spec"]["attributes"]
            .as_array_mut()
            .expect("attributes")
            .push(json!({"handle_id": "new", "secondary": {}}));
        let r = restore(&mut later, &before);
        assert_eq!((r.restored, r.taken), (vec![2], vec![]));
        assert!(missing(&later, &before).is_empty());
        assert_eq!(later["spec"]["attributes"][4]["handle_id"], "gone");
        assert_eq!(later["spec"]["allocations"][2], json!(4));
        assert_eq!(
            later["spec"]["allocations"][3],
            json!(3),
            "the new pod keeps its address"
        );
        assert_eq!(later["spec"]["unallocated"], json!([5, 6, 7]));

        // A pod took ordinal 2 itself: it keeps it, the rollback says so.
        let mut reused = b.clone();
        reused["spec"]["allocations"][2] = json!(3);
        reused["spec"]["attributes"]
            .as_array_mut()
            .expect("attributes")
            .push(json!({"handle_id": "new", "secondary": {}}));
        let r = restore(&mut reused, &before);
        assert_eq!((r.restored, r.taken), (vec![], vec![2]));
        assert_eq!(missing(&reused, &before), [2]);
    }
}
