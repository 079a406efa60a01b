//! What a build keeps of each resource beyond the snapshot (`Resources`), read from the lean rows of
//! the database with each distinct class and code string stored once.

use std::collections::HashSet;
use std::sync::Arc;

use uuid::Uuid;

use crate::db;
use crate::domain::resource::{BaseUnit, ResourceKind};

/// What a build keeps of a resource beyond the snapshot: what pooling reads, as stored (the
/// snapshot keeps a code without its hazardous `*`, which pooling tells apart). Class and code are
/// shared between the resources that have them (a few hundred distinct values for a million
/// resources); the label is the snapshot's.
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    pub id: Uuid,
    pub actor_id: Uuid,
    pub kind: ResourceKind,
    pub class: Arc<str>,
    pub ewc_code: Option<Arc<str>>,
    pub yearly_quantity: Option<f64>,
    pub base_unit: Option<BaseUnit>,
}

/// The resources of a build, sorted by id: 88 bytes each (a hash map of the same with owned
/// strings took ~240 at a million resources, and a build, its view and the next build hold two or
/// three of them at once).
#[derive(Debug, Default)]
pub struct Resources(Vec<ResourceInfo>);

impl Resources {
    /// From resources in any order; of two with the same id, the first is kept.
    pub fn new(mut resources: Vec<ResourceInfo>) -> Resources {
        if !resources.is_sorted_by_key(|r| r.id) {
            resources.sort_by_key(|r| r.id);
        }
        resources.dedup_by_key(|r| r.id);
        Resources(resources)
    }

    pub fn get(&self, id: &Uuid) -> Option<&ResourceInfo> {
        let i = self.0.binary_search_by_key(id, |r| r.id).ok()?;
        self.0.get(i)
    }

    pub fn contains_key(&self, id: &Uuid) -> bool {
        self.get(id).is_some()
    }

    /// In id order.
    pub fn iter(&self) -> std::slice::Iter<'_, ResourceInfo> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

pub(super) fn resource_input_info(
    r: &db::resources::ResourceInput,
    shared: &mut Interner,
) -> Option<ResourceInfo> {
    Some(ResourceInfo {
        id: Uuid::parse_str(&r.id).ok()?,
        actor_id: Uuid::parse_str(&r.actor_id).ok()?,
        kind: ResourceKind::parse(&r.kind)?,
        class: shared.get(&r.class),
        ewc_code: r.ewc_code.as_deref().map(|code| shared.get(code)),
        yearly_quantity: r.yearly_quantity,
        base_unit: r.base_unit.as_deref().and_then(BaseUnit::parse),
    })
}

/// One shared copy of each distinct string.
#[derive(Default)]
pub(super) struct Interner(HashSet<Arc<str>>);

impl Interner {
    pub(super) fn get(&mut self, text: &str) -> Arc<str> {
        if let Some(shared) = self.0.get(text) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(text);
        self.0.insert(shared.clone());
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Looked up by id whatever order the rows came in; a repeated id is kept once.
    #[test]
    fn resources_are_found_by_id_in_any_order() {
        let mut shared = Interner::default();
        let mut info = |n: u128, class: &str| ResourceInfo {
            id: Uuid::from_u128(n),
            actor_id: Uuid::from_u128(100),
            kind: ResourceKind::Offer,
            class: shared.get(class),
            ewc_code: None,
            yearly_quantity: Some(n as f64),
            base_unit: None,
        };
        let rows = vec![
            info(3, "wood"),
            info(1, "wood"),
            info(2, "metal"),
            info(1, "metal"),
        ];
        let resources = Resources::new(rows);
        assert_eq!(resources.len(), 3);
        let ids: Vec<u128> = resources.iter().map(|r| r.id.as_u128()).collect();
        assert_eq!(ids, [1, 2, 3]);
        for n in 1..=3 {
            let found = resources.get(&Uuid::from_u128(n));
            assert_eq!(found.and_then(|r| r.yearly_quantity), Some(n as f64));
        }
        assert!(!resources.contains_key(&Uuid::from_u128(4)));
        // One copy of each class.
        let wood: Vec<&Arc<str>> = resources
            .iter()
            .filter(|r| &*r.class == "wood")
            .map(|r| &r.class)
            .collect();
        assert!(Arc::ptr_eq(wood[0], wood[1]));
    }
}
