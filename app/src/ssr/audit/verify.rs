//! Recomputing the chain: every record list and export would show, the mark where the keyed
//! chain starts, the newest checkpoint, and records that sit where the chain never reached.

use serde::{Deserialize, Serialize};

use crate::domain::model::AuditEvent;

use super::{
    super::{error::ServiceError, repo::RepoError, store::Query},
    AuditLog, GENESIS, PARTITION, PLANTED,
    anchor::AnchorError,
    chain::{keyed_hash, unkeyed_hash},
    seq_key,
};

/// What the verification found. `ok` only when the chain is whole, nothing was cut after the
/// newest checkpoint and nothing was planted past the head.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VerifyReport {
    pub ok: bool,
    /// Records of the chain checked (up to the head read at the start).
    pub checked: u64,
    /// The sequence number of the first record that does not fit the chain.
    pub first_broken: Option<u64>,
    /// Why the first problem found is one.
    pub reason: Option<String>,
    /// Records from this sequence number on are keyed (HMAC-SHA-256 with the audit key); the
    /// ones before were written before the chain was keyed and carry plain SHA-256.
    pub keyed_from: Option<u64>,
    /// The newest checkpoint saw records that are no longer there: the tail was cut.
    pub tail_cut: bool,
    /// The sequence number of the newest checkpoint compared with the chain.
    pub checkpoint: Option<u64>,
    /// Where checkpoints are kept: `s3`, `file` or `none`.
    pub anchor: String,
    /// Sequence numbers of records found past the head (written into the store, not appended
    /// through the log), including those moved aside when an append needed their place.
    pub planted: Vec<u64>,
}

impl VerifyReport {
    /// Notes a problem; the first one found is the one named.
    fn broken(&mut self, seq: Option<u64>, reason: String) {
        if self.reason.is_none() {
            self.first_broken = seq;
            self.reason = Some(reason);
        }
    }
}

fn seq_of(sk: &str) -> Option<u64> {
    sk.trim_start_matches(PLANTED).split('#').next()?.parse().ok()
}

impl AuditLog {
    /// Recomputes the chain from the first record up to the head read at the start (records
    /// appended meanwhile are the next verification's), and names the first record that does
    /// not fit: edited, missing, reordered, unsigned where the chain is keyed, or a head that
    /// does not match the last record.
    pub async fn verify(&self) -> Result<VerifyReport, ServiceError> {
        let mut report = VerifyReport { anchor: self.anchor.kind().into(), ..VerifyReport::default() };
        // The checkpoint first: one written after the head is read could be newer than it.
        let checkpoint = match self.anchor.latest(&self.key).await {
            Ok(cp) => cp,
            Err(AnchorError::Corrupt(why)) => {
                tracing::error!(why, "the newest audit checkpoint is not genuine");
                report.broken(None, "the newest checkpoint is not genuine".into());
                None
            }
            Err(AnchorError::Unavailable(why)) => {
                tracing::warn!(why, "the audit checkpoints cannot be read");
                report.broken(None, "the checkpoints cannot be read now".into());
                None
            }
        };
        report.checkpoint = checkpoint.as_ref().map(|cp| cp.seq);
        let (head, _) = self.head().await?;
        let keyed_from = match self.mark().await? {
            Some(Ok(mark)) if mark.is_genuine(&self.key) => mark.from,
            Some(_) => {
                report.broken(None, "the mark where the keyed chain starts was altered".into());
                1
            }
            // Only a store that never held a record has no mark (it is made before the first
            // keyed append): without it every record must be keyed.
            None => 1,
        };
        report.keyed_from = Some(keyed_from);
        if let Some(cp) = &checkpoint
            && cp.keyed_from.is_some_and(|k| k != keyed_from)
        {
            report.broken(None, "the keyed chain's start moved since the last checkpoint".into());
        }

        let mut expected = 1u64;
        let mut prev = GENESIS.to_string();
        let mut past_head = Vec::new();
        let mut walking = true;
        let mut cursor = None;
        loop {
            let q = Query::table(PARTITION).prefix("0").limit(1000).after(cursor.take());
            let page = self.store.query(q).await.map_err(RepoError::from)?;
            for item in &page.items {
                if seq_of(&item.sk).is_some_and(|seq| seq > head.seq) {
                    past_head.extend(seq_of(&item.sk));
                    continue;
                }
                if !walking {
                    continue;
                }
                let Ok(event) = serde_json::from_str::<AuditEvent>(&item.data) else {
                    walking = false;
                    report.broken(Some(expected), "the record cannot be read".into());
                    continue;
                };
                let problem = if item.sk != seq_key(event.seq) {
                    Some((expected, "the record's sequence number was changed".to_string()))
                } else if event.seq != expected {
                    Some((expected, format!("record {expected} is missing")))
                } else if event.prev_hash != prev {
                    Some((event.seq, "the record does not follow the one before it".into()))
                } else if event.seq >= keyed_from && keyed_hash(&self.key, &event) != event.hash {
                    Some((event.seq, "the record was changed or not signed with the audit key".into()))
                } else if event.seq < keyed_from && unkeyed_hash(&event) != event.hash {
                    Some((event.seq, "the record's content was changed".into()))
                } else if checkpoint.as_ref().is_some_and(|cp| cp.seq == event.seq && cp.hash != event.hash) {
                    Some((event.seq, "the record differs from the one the last checkpoint saw".into()))
                } else {
                    None
                };
                if let Some((seq, why)) = problem {
                    walking = false;
                    report.broken(Some(seq), why);
                    continue;
                }
                prev = event.hash;
                expected += 1;
            }
            match page.next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        report.checked = expected - 1;
        if walking && (head.seq != report.checked || head.hash != prev) {
            report.broken(
                Some(report.checked + 1),
                format!("the chain head says {} records, {} were found", head.seq, report.checked),
            );
        }
        if let Some(cp) = &checkpoint
            && cp.seq > head.seq
        {
            report.tail_cut = true;
            report.broken(
                Some(head.seq + 1),
                format!(
                    "records {} to {} were removed (the checkpoint of {} saw them)",
                    head.seq + 1,
                    cp.seq,
                    cp.at
                ),
            );
        }

        // Records appended while this ran sit past the head read at the start: only what is
        // still past the head now was planted.
        let (now, _) = self.head().await?;
        report.planted = past_head.into_iter().filter(|seq| *seq > now.seq).collect();
        let moved =
            self.store.query(Query::table(PARTITION).prefix(PLANTED)).await.map_err(RepoError::from)?;
        report.planted.extend(moved.items.iter().filter_map(|item| seq_of(&item.sk)));
        report.planted.sort_unstable();
        if !report.planted.is_empty() && report.reason.is_none() {
            report.reason =
                Some(format!("{} record(s) were written past the chain's head", report.planted.len()));
        }
        report.ok = report.reason.is_none();
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_are_read_from_both_kinds_of_key() {
        assert_eq!(seq_of(&seq_key(42)), Some(42));
        assert_eq!(seq_of(&format!("{PLANTED}{}#01ABC", seq_key(7))), Some(7));
        assert_eq!(seq_of("HEAD"), None);
    }
}
