//! The append-only, tamper-evident audit log.
//!
//! Each event stores the hash of the one before it (`prev_hash`) and its own `hash` over its
//! content and `prev_hash`, so editing, removing or reordering a record breaks the chain at that
//! record. The chain head (`AUDIT`/`HEAD`: last sequence number and hash) is updated in the same
//! transaction as the new event, conditionally on the head's revision: two server processes
//! appending at once cannot both extend the same head, so the chain never forks (the loser
//! re-reads the head and retries).

use std::{sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::{
    ids::Id,
    model::{AuditEvent, Page, Role},
    time::Timestamp,
};

use super::{
    error::ServiceError,
    repo::RepoError,
    store::{Cond, Cursor, Item, Query, Store, StoreError, Write},
};

const PARTITION: &str = "AUDIT";
const HEAD: &str = "HEAD";
/// The `prev_hash` of the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Appends retried this often against other processes before giving up.
const MAX_ATTEMPTS: u32 = 50;

/// Key names whose values never enter the log, whatever a caller passes.
/// Compared without case, `_` or `-`.
const SECRET_KEYS: [&str; 4] = ["password", "token", "secret", "externalid"];

fn seq_key(seq: u64) -> String {
    format!("{seq:020}")
}

/// What a caller records; the log adds sequence, time and hashes.
#[derive(Clone, Debug, Default)]
pub struct NewEvent {
    pub actor_id: Option<Id>,
    pub actor_email: Option<String>,
    pub actor_role: Option<Role>,
    pub source_ip: Option<String>,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub owner_id: Option<Id>,
    pub details: serde_json::Value,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Head {
    seq: u64,
    hash: String,
}

/// The result of recomputing the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VerifyReport {
    pub ok: bool,
    /// Events checked.
    pub checked: u64,
    /// The sequence number of the first record that does not fit the chain.
    pub first_broken: Option<u64>,
    pub reason: Option<String>,
}

/// Which events to list.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Only events whose action starts with this (`auth.` or `customer.update`).
    pub action: Option<String>,
    pub actor: Option<Id>,
    pub target: Option<String>,
    /// Words found (case-insensitively) in who did it, the action, the target, the outcome or
    /// the source address; every word must be found.
    pub search: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// `None`: everyone's; `Some(ids)`: events by, or about customers of, these users.
    pub people: Option<Vec<Id>>,
}

impl AuditFilter {
    fn matches(&self, e: &AuditEvent) -> bool {
        self.action.as_deref().is_none_or(|a| e.action.starts_with(a))
            && self.actor.as_ref().is_none_or(|a| e.actor_id.as_ref() == Some(a))
            && self.target.as_deref().is_none_or(|t| e.target == t)
            && self.search.as_deref().is_none_or(|q| found(q, e))
            && self.from.is_none_or(|f| e.at >= f)
            && self.to.is_none_or(|t| e.at < t)
            && self.people.as_ref().is_none_or(|ids| {
                e.actor_id.as_ref().is_some_and(|a| ids.contains(a))
                    || e.owner_id.as_ref().is_some_and(|o| ids.contains(o))
            })
    }
}

fn found(query: &str, e: &AuditEvent) -> bool {
    let fields = [
        e.actor_email.as_deref().unwrap_or("system"),
        &e.action,
        &e.target,
        &e.outcome,
        e.source_ip.as_deref().unwrap_or(""),
    ];
    crate::domain::search::every_word_in(query, &fields)
}

/// The hash of an event: SHA-256 over the previous hash and the event's JSON without its hash.
pub fn event_hash(event: &AuditEvent) -> String {
    let mut unhashed = event.clone();
    unhashed.hash = String::new();
    let body = serde_json::to_vec(&unhashed).expect("audit events serialize");
    let mut h = Sha256::new();
    h.update(event.prev_hash.as_bytes());
    h.update(b"\n");
    h.update(&body);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Replaces the values of secret-looking keys, at any depth.
fn scrub(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let key: String = k.to_ascii_lowercase().chars().filter(|c| *c != '_' && *c != '-').collect();
                if SECRET_KEYS.iter().any(|s| key.contains(s)) {
                    *v = serde_json::Value::String(crate::domain::parameters::MASK.into());
                } else {
                    scrub(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(scrub),
        _ => {}
    }
}

pub struct AuditLog {
    store: Arc<dyn Store>,
    /// Appends from this process queue here instead of racing each other for the head.
    local: tokio::sync::Mutex<()>,
}

impl AuditLog {
    pub fn new(store: Arc<dyn Store>) -> Self {
        AuditLog { store, local: tokio::sync::Mutex::new(()) }
    }

    async fn head(&self) -> Result<(Head, Option<u64>), ServiceError> {
        match self.store.get(PARTITION, HEAD).await.map_err(RepoError::from)? {
            None => Ok((Head { seq: 0, hash: GENESIS.into() }, None)),
            Some(item) => {
                let head: Head = serde_json::from_str(&item.data).map_err(|e| {
                    tracing::error!(error = %e, "the audit chain head is corrupt");
                    ServiceError::Internal
                })?;
                Ok((head, Some(item.rev)))
            }
        }
    }

    /// Appends one event at the end of the chain.
    pub async fn append(&self, new: NewEvent, at: Timestamp) -> Result<AuditEvent, ServiceError> {
        let _turn = self.local.lock().await;
        let mut details = new.details;
        scrub(&mut details);
        for attempt in 0..MAX_ATTEMPTS {
            let (head, rev) = self.head().await?;
            let mut event = AuditEvent {
                seq: head.seq + 1,
                at,
                actor_id: new.actor_id.clone(),
                actor_email: new.actor_email.clone(),
                actor_role: new.actor_role,
                source_ip: new.source_ip.clone(),
                action: new.action.clone(),
                target: new.target.clone(),
                outcome: new.outcome.clone(),
                owner_id: new.owner_id.clone(),
                details: details.clone(),
                prev_hash: head.hash.clone(),
                hash: String::new(),
            };
            event.hash = event_hash(&event);
            let next_head = Head { seq: event.seq, hash: event.hash.clone() };
            let next_rev = rev.unwrap_or(0) + 1;
            let writes = vec![
                Write::put(
                    Item::new(
                        PARTITION,
                        seq_key(event.seq),
                        1,
                        serde_json::to_string(&event).expect("serializes"),
                    ),
                    Cond::NotExists,
                ),
                Write::put(
                    Item::new(
                        PARTITION,
                        HEAD,
                        next_rev,
                        serde_json::to_string(&next_head).expect("serializes"),
                    ),
                    rev.map_or(Cond::NotExists, Cond::Rev),
                ),
            ];
            match self.store.transact(writes).await {
                Ok(()) => return Ok(event),
                Err(StoreError::Conflict { .. }) => {
                    // Another process extended the chain: back off a little, re-read the head.
                    let jitter = u64::from(crate::ssr::ids::new_id().as_str().as_bytes()[25] % 8);
                    tokio::time::sleep(Duration::from_millis(2 + jitter + u64::from(attempt.min(10)))).await;
                }
                Err(e) => return Err(RepoError::from(e).into()),
            }
        }
        tracing::error!("audit append gave up after {MAX_ATTEMPTS} conflicting attempts");
        Err(ServiceError::Unavailable)
    }

    /// Events newest first, filtered; pages hold up to `limit` matching events.
    pub async fn list(
        &self,
        filter: &AuditFilter,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<AuditEvent>, ServiceError> {
        let mut cursor = match after {
            Some(c) => Some(Cursor::decode(c).filter(|c| c.pk == PARTITION).ok_or(RepoError::BadCursor)?),
            None => None,
        };
        let mut items = Vec::new();
        loop {
            // The sequence keys are all digits; the head ("HEAD") sorts after them and is skipped.
            let q =
                Query::table(PARTITION).prefix("0").descending().limit(limit.max(50)).after(cursor.clone());
            let page = self.store.query(q).await.map_err(RepoError::from)?;
            let read_all = page.next.is_none();
            for item in &page.items {
                let event: AuditEvent =
                    serde_json::from_str(&item.data).map_err(|_| ServiceError::Internal)?;
                let past_window = filter.from.is_some_and(|f| event.at < f);
                cursor = Some(Cursor { pk: item.pk.clone(), sk: item.sk.clone(), ipk: None, isk: None });
                if past_window {
                    return Ok(Page { items, next_cursor: None });
                }
                if filter.matches(&event) {
                    items.push(event);
                    if items.len() == limit {
                        let more = !read_all || item != page.items.last().expect("non-empty");
                        return Ok(Page { items, next_cursor: more.then(|| cursor.expect("set").encode()) });
                    }
                }
            }
            if read_all {
                return Ok(Page { items, next_cursor: None });
            }
        }
    }

    /// Recomputes the whole chain from the first event up to the head read at the start (events
    /// appended meanwhile are the next verification's), and names the first record that does not
    /// fit (edited, missing, reordered, or a head that does not match the last record).
    pub async fn verify(&self) -> Result<VerifyReport, ServiceError> {
        let (head, _) = self.head().await?;
        let mut expected_seq = 1u64;
        let mut prev = GENESIS.to_string();
        let mut cursor = None;
        let broken = |seq: u64, checked: u64, reason: String| VerifyReport {
            ok: false,
            checked,
            first_broken: Some(seq),
            reason: Some(reason),
        };
        loop {
            let q = Query::table(PARTITION).prefix("0").limit(1000).after(cursor.take());
            let page = self.store.query(q).await.map_err(RepoError::from)?;
            for item in &page.items {
                let checked = expected_seq - 1;
                if checked == head.seq {
                    break;
                }
                let Ok(event) = serde_json::from_str::<AuditEvent>(&item.data) else {
                    return Ok(broken(expected_seq, checked, "the record cannot be read".into()));
                };
                if item.sk != seq_key(event.seq) {
                    return Ok(broken(
                        expected_seq,
                        checked,
                        "the record's sequence number was changed".into(),
                    ));
                }
                if event.seq != expected_seq {
                    return Ok(broken(expected_seq, checked, format!("record {expected_seq} is missing")));
                }
                if event.prev_hash != prev {
                    return Ok(broken(
                        event.seq,
                        checked,
                        "the record does not follow the one before it".into(),
                    ));
                }
                if event_hash(&event) != event.hash {
                    return Ok(broken(event.seq, checked, "the record's content was changed".into()));
                }
                prev = event.hash;
                expected_seq += 1;
            }
            match page.next {
                Some(c) if expected_seq - 1 < head.seq => cursor = Some(c),
                _ => break,
            }
        }
        let checked = expected_seq - 1;
        if head.seq != checked || head.hash != prev {
            return Ok(broken(
                checked + 1,
                checked,
                format!("the chain head says {} records, {} were found", head.seq, checked),
            ));
        }
        Ok(VerifyReport { ok: true, checked, first_broken: None, reason: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_scrubbed_at_any_depth() {
        let mut v = serde_json::json!({
            "name": "Acme",
            "password": "Fake-Password-1!",
            "parameters": {"CrmApiToken": "fake-token", "Region": "eu-west-1"},
            "list": [{"ExternalId": "fake-external"}]
        });
        scrub(&mut v);
        assert_eq!(v["name"], "Acme");
        assert_eq!(v["password"], "****");
        assert_eq!(v["parameters"]["CrmApiToken"], "****");
        assert_eq!(v["parameters"]["Region"], "eu-west-1");
        assert_eq!(v["list"][0]["ExternalId"], "****");
    }

    #[test]
    fn search_finds_every_word_in_who_what_and_outcome() {
        let e = AuditEvent {
            seq: 1,
            at: Timestamp::from_millis(1),
            actor_id: None,
            actor_email: Some("Rep@Demo.Nexus".into()),
            actor_role: Some(Role::Rep),
            source_ip: Some("10.1.2.3".into()),
            action: "access.denied".into(),
            target: "/api/v1/users".into(),
            outcome: "denied".into(),
            owner_id: None,
            details: serde_json::Value::Null,
            prev_hash: String::new(),
            hash: String::new(),
        };
        let search = |q: &str| AuditFilter { search: Some(q.into()), ..AuditFilter::default() }.matches(&e);
        assert!(search("rep@demo.nexus"));
        assert!(search("  REP   denied "), "every word, any case, anywhere");
        assert!(search("10.1.2"));
        assert!(search("api/v1/users"));
        assert!(!search("rep approved"), "one word missing");
        assert!(!search("exec@demo.nexus"));
        let system = AuditEvent { actor_email: None, ..e.clone() };
        assert!(AuditFilter { search: Some("system".into()), ..AuditFilter::default() }.matches(&system));
    }

    #[test]
    fn the_hash_covers_content_and_the_previous_hash() {
        let mut e = AuditEvent {
            seq: 1,
            at: Timestamp::from_millis(1),
            actor_id: None,
            actor_email: Some("exec@demo.nexus".into()),
            actor_role: Some(Role::Executive),
            source_ip: Some("127.0.0.1".into()),
            action: "auth.login".into(),
            target: "user/exec@demo.nexus".into(),
            outcome: "success".into(),
            owner_id: None,
            details: serde_json::json!({}),
            prev_hash: GENESIS.into(),
            hash: String::new(),
        };
        let h = event_hash(&e);
        assert_eq!(h.len(), 64);
        e.outcome = "failure".into();
        assert_ne!(event_hash(&e), h);
        e.outcome = "success".into();
        e.prev_hash = "1".repeat(64);
        assert_ne!(event_hash(&e), h);
    }
}
