//! The append-only, tamper-evident audit log.
//!
//! Each event stores the hash of the one before it (`prev_hash`) and its own `hash` over its
//! content and `prev_hash`, so editing, removing or reordering a record breaks the chain at that
//! record. The chain head (`AUDIT`/`HEAD`: last sequence number and hash) is updated in the same
//! transaction as the new event, conditionally on the head's revision: two server processes
//! appending at once cannot both extend the same head, so the chain never forks (the loser
//! re-reads the head and retries).
//!
//! The hashes are keyed (HMAC, [`chain`]) with a key kept outside the store, and the head is
//! checkpointed outside the store ([`anchor`]): someone who can write the table can neither
//! recompute a rewritten chain nor cut its newest records unnoticed. [`verify`] says what it
//! found.

use std::{sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};

use crate::domain::{
    ids::Id,
    model::{AuditEvent, Page, Role},
    time::Timestamp,
};

use super::{
    error::ServiceError,
    repo::RepoError,
    store::{
        Cond,
        Cursor,
        Item,
        Query,
        Store,
        StoreError,
        Write,
        // The log's records: the events by sequence, the head, where keying starts, records
        // moved aside (`store::keys` holds every key).
        keys::{
            self, AUDIT as PARTITION, AUDIT_HEAD as HEAD, AUDIT_KEYED as MARK, AUDIT_PLANTED as PLANTED,
            audit_seq as seq_key,
        },
    },
};

mod anchor;
mod chain;
mod verify;
mod with_change;

pub use anchor::{Anchor, AnchorError, FileAnchor, NoAnchor, S3Anchor};
pub use chain::{ChainKey, Checkpoint, KeyedMark, MIN_KEY_LEN, keyed_hash, unkeyed_hash};
pub use verify::VerifyReport;
pub use with_change::ChangeError;

/// The `prev_hash` of the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Appends retried this often against other processes before giving up.
const MAX_ATTEMPTS: u32 = 50;

/// Key names whose values never enter the log, whatever a caller passes.
/// Compared without case, `_` or `-`.
const SECRET_KEYS: [&str; 4] = ["password", "token", "secret", "externalid"];

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
    key: ChainKey,
    anchor: Arc<dyn Anchor>,
    /// Appends from this process queue here instead of racing each other for the head.
    local: tokio::sync::Mutex<()>,
    /// Set once this process has made sure the start of the keyed chain is marked.
    marked: tokio::sync::OnceCell<()>,
    /// The head last anchored by this process: an unchanged head is not anchored again.
    anchored: std::sync::Mutex<Option<u64>>,
}

/// A record found where the next event belongs although the head never reached it.
struct Planted {
    seq: u64,
    kept_as: String,
}

impl AuditLog {
    /// A log keyed with `key`, without checkpoints (see [`AuditLog::anchored`]).
    pub fn new(store: Arc<dyn Store>, key: ChainKey) -> Self {
        AuditLog {
            store,
            key,
            anchor: Arc::new(NoAnchor),
            local: tokio::sync::Mutex::new(()),
            marked: tokio::sync::OnceCell::new(),
            anchored: std::sync::Mutex::new(None),
        }
    }

    /// Checkpoints of the head go to `anchor`.
    pub fn anchored(mut self, anchor: Arc<dyn Anchor>) -> Self {
        self.anchor = anchor;
        self
    }

    pub fn anchor_kind(&self) -> &'static str {
        self.anchor.kind()
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

    /// The stored mark of where the keyed chain starts; `Err` when it cannot be read.
    async fn mark(&self) -> Result<Option<Result<KeyedMark, String>>, ServiceError> {
        let item = self.store.get(PARTITION, MARK).await.map_err(RepoError::from)?;
        Ok(item.map(|item| serde_json::from_str::<KeyedMark>(&item.data).map_err(|e| e.to_string())))
    }

    /// Marks the start of the keyed chain right after the last record, unless it is marked
    /// already. Runs once per process, before its first append: every record this version
    /// writes is keyed, and the records before the mark stay as they were written.
    pub async fn ensure_keyed(&self) -> Result<(), ServiceError> {
        self.marked
            .get_or_try_init(|| async {
                for _ in 0..MAX_ATTEMPTS {
                    if self.mark().await?.is_some() {
                        return Ok(());
                    }
                    let (head, rev) = self.head().await?;
                    let mark = KeyedMark::new(&self.key, head.seq + 1);
                    let writes = vec![
                        // Pinned to the head read: an append from an older replica meanwhile
                        // moves the mark after it.
                        Write::Check {
                            pk: PARTITION.into(),
                            sk: HEAD.into(),
                            cond: rev.map_or(Cond::NotExists, Cond::Rev),
                        },
                        Write::put(
                            Item::new(PARTITION, MARK, 1, serde_json::to_string(&mark).expect("serializes")),
                            Cond::NotExists,
                        ),
                    ];
                    match self.store.transact(writes).await {
                        Ok(()) => {
                            tracing::info!(from = mark.from, "the audit chain is keyed from this record on");
                            return Ok(());
                        }
                        Err(StoreError::Conflict { .. }) => continue,
                        Err(e) => return Err(RepoError::from(e).into()),
                    }
                }
                Err(ServiceError::Unavailable)
            })
            .await
            .map(|_| ())
    }

    /// Appends one event at the end of the chain. A record planted where the event belongs is
    /// moved aside (kept for the verification, and noted in the chain) rather than blocking
    /// every audited action.
    pub async fn append(&self, new: NewEvent, at: Timestamp) -> Result<AuditEvent, ServiceError> {
        let _turn = self.local.lock().await;
        self.ensure_keyed().await?;
        let (event, planted) = self.append_one(new, at).await?;
        self.note_planted(planted, at).await;
        Ok(event)
    }

    /// Notes in the chain each record moved aside.
    async fn note_planted(&self, planted: Vec<Planted>, at: Timestamp) {
        for p in planted {
            let note = NewEvent {
                action: "audit.planted".into(),
                target: format!("audit/{}", p.seq),
                outcome: "moved".into(),
                details: serde_json::json!({"seq": p.seq, "kept_as": p.kept_as}),
                ..NewEvent::default()
            };
            if let Err(e) = Box::pin(self.append_one(note, at)).await {
                tracing::error!(error = %e, seq = p.seq, "the note of a planted audit record was not written");
            }
        }
    }

    /// The next event after `head` (read at `rev`), and the writes that append it: the event
    /// where the head points next, and the head moved on, conditionally on its revision.
    fn next_record(
        &self,
        new: &NewEvent,
        details: &serde_json::Value,
        head: &Head,
        rev: Option<u64>,
        at: Timestamp,
    ) -> (AuditEvent, Vec<Write>) {
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
        event.hash = keyed_hash(&self.key, &event);
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
                Item::new(PARTITION, HEAD, next_rev, serde_json::to_string(&next_head).expect("serializes")),
                rev.map_or(Cond::NotExists, Cond::Rev),
            ),
        ];
        (event, writes)
    }

    /// After a conflict on the record at `seq` (head read at `rev`): moves a planted record
    /// aside, or waits a little before the head is read again (another process extended it).
    async fn after_conflict(
        &self,
        seq: u64,
        rev: Option<u64>,
        attempt: u32,
        planted: &mut Vec<Planted>,
    ) -> Result<(), ServiceError> {
        if let Some(p) = self.move_planted(seq, rev).await? {
            planted.push(p);
            return Ok(());
        }
        let jitter = u64::from(crate::ssr::ids::new_id().as_str().as_bytes()[25] % 8);
        tokio::time::sleep(Duration::from_millis(2 + jitter + u64::from(attempt.min(10)))).await;
        Ok(())
    }

    async fn append_one(
        &self,
        new: NewEvent,
        at: Timestamp,
    ) -> Result<(AuditEvent, Vec<Planted>), ServiceError> {
        let mut details = new.details.clone();
        scrub(&mut details);
        let mut planted = Vec::new();
        for attempt in 0..MAX_ATTEMPTS {
            let (head, rev) = self.head().await?;
            let (event, writes) = self.next_record(&new, &details, &head, rev, at);
            match self.store.transact(writes).await {
                Ok(()) => return Ok((event, planted)),
                Err(StoreError::Conflict { .. }) => {
                    self.after_conflict(event.seq, rev, attempt, &mut planted).await?
                }
                Err(e) => return Err(RepoError::from(e).into()),
            }
        }
        tracing::error!("audit append gave up after {MAX_ATTEMPTS} conflicting attempts");
        Err(ServiceError::Unavailable)
    }

    /// When the slot after the head (`seq`) holds a record although the head is still where it
    /// was read (`rev`), nobody appended it through the log — a real append moves the head in the
    /// same transaction — so it is moved aside, under the head's revision so a concurrent real
    /// append is never mistaken for a planted one.
    async fn move_planted(&self, seq: u64, rev: Option<u64>) -> Result<Option<Planted>, ServiceError> {
        let Some(item) = self.store.get(PARTITION, &seq_key(seq)).await.map_err(RepoError::from)? else {
            return Ok(None);
        };
        let kept_as = keys::audit_planted(seq, crate::ssr::ids::new_id().as_str());
        let writes = vec![
            Write::Check {
                pk: PARTITION.into(),
                sk: HEAD.into(),
                cond: rev.map_or(Cond::NotExists, Cond::Rev),
            },
            Write::Delete { pk: PARTITION.into(), sk: seq_key(seq), cond: Cond::Rev(item.rev) },
            Write::put(Item::new(PARTITION, kept_as.clone(), 1, item.data), Cond::NotExists),
        ];
        match self.store.transact(writes).await {
            Ok(()) => {
                tracing::error!(seq, kept_as, "a record planted past the audit chain's head was moved aside");
                Ok(Some(Planted { seq, kept_as }))
            }
            Err(StoreError::Conflict { .. }) => Ok(None),
            Err(e) => Err(RepoError::from(e).into()),
        }
    }

    /// Writes a signed checkpoint of the head to the anchor, unless this process anchored the
    /// same head already. Answers the sequence number anchored.
    pub async fn checkpoint(&self, now: Timestamp) -> Result<Option<u64>, ServiceError> {
        let (head, _) = self.head().await?;
        if head.seq == 0 || *self.anchored.lock().expect("not poisoned") == Some(head.seq) {
            return Ok(None);
        }
        let keyed_from = match self.mark().await? {
            Some(Ok(mark)) if mark.is_genuine(&self.key) => Some(mark.from),
            _ => None,
        };
        let checkpoint = Checkpoint::new(&self.key, head.seq, &head.hash, keyed_from, now);
        self.anchor.write(&checkpoint).await.map_err(|e| {
            tracing::warn!(error = %e, anchor = self.anchor.kind(), "the audit checkpoint was not written");
            ServiceError::Unavailable
        })?;
        *self.anchored.lock().expect("not poisoned") = Some(head.seq);
        tracing::debug!(seq = head.seq, anchor = self.anchor.kind(), "audit checkpoint written");
        Ok(Some(head.seq))
    }

    /// Anchors the head every `every` (the server also anchors it once more on shutdown). The
    /// task holds the log weakly: it ends when the log is dropped, so it never keeps the store
    /// open after the state that owns it is gone.
    pub fn spawn_checkpoints(self: &Arc<Self>, every: Duration) {
        if self.anchor.kind() == "none" {
            return;
        }
        let log = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(log) = log.upgrade() else { return };
                // Errors are logged where they happen; the next round tries again.
                let _ = log.checkpoint(crate::ssr::clock::now()).await;
            }
        });
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
}
