//! The outbox: operation and rollout events the bus refused, kept until it takes them.

use crate::{
    domain::events::{OperationEvent, Published, RolloutEvent},
    ssr::store::{Cond, Item, Query, Write, keys},
};

use super::{Repo, RepoError, from_item, to_json};

/// An event waiting in the outbox, and where it is kept.
#[derive(Clone, Debug)]
pub struct Held {
    pub key: String,
    pub event: Published,
}

impl Repo {
    /// Keeps an event for later delivery (again is harmless: same key, same event).
    pub async fn hold_event(&self, event: &OperationEvent) -> Result<(), RepoError> {
        let sk = keys::outbox_entry(event.at, &event.operation_id, event.state);
        let item = Item::new(keys::OUTBOX, sk, 1, to_json(event));
        Ok(self.store.transact(vec![Write::put(item, Cond::None)]).await?)
    }

    /// Keeps a rollout's event for later delivery.
    pub async fn hold_rollout_event(&self, event: &RolloutEvent) -> Result<(), RepoError> {
        let state = serde_json::to_value(event.state).ok().and_then(|v| v.as_str().map(String::from));
        let sk = keys::outbox_rollout_entry(event.at, &event.rollout_id, &state.unwrap_or_default());
        let item = Item::new(keys::OUTBOX, sk, 1, to_json(event));
        Ok(self.store.transact(vec![Write::put(item, Cond::None)]).await?)
    }

    /// The oldest `limit` events held.
    pub async fn held_events(&self, limit: usize) -> Result<Vec<Held>, RepoError> {
        let p = self.store.query(Query::table(keys::OUTBOX).limit(limit)).await?;
        p.items.iter().map(|item| Ok(Held { key: item.sk.clone(), event: from_item(item)? })).collect()
    }

    /// Forgets a delivered event.
    pub async fn release_event(&self, key: &str) -> Result<(), RepoError> {
        let delete = Write::Delete { pk: keys::OUTBOX.into(), sk: key.into(), cond: Cond::None };
        Ok(self.store.transact(vec![delete]).await?)
    }
}
