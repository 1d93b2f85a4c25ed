//! The audit chain on both stores: appends from several writers at once never fork it (two real
//! processes on one DynamoDB table, two independent logs over one embedded store), and a store
//! writer without the audit key cannot rewrite it, cut its tail or block it unnoticed; a change
//! and its event are written together or not at all.

mod common;

use std::{
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use app::{
    domain::{model::AuditEvent, time::Timestamp},
    ssr::{
        audit::{
            Anchor, AuditFilter, AuditLog, ChainKey, ChangeError, Checkpoint, FileAnchor, NewEvent, S3Anchor,
            unkeyed_hash,
        },
        aws::load_sdk_config,
        repo::{CatalogRecord, Repo, RepoError},
        store::{Cond, DynamoStore, Item, RedbStore, Store, Write},
    },
};
use common::{require_emulator, unique};

const PER_WRITER: usize = 40;
const KEY: &[u8] = b"fake-audit-key-for-tests-0123456789";

fn log(store: Arc<dyn Store>) -> AuditLog {
    AuditLog::new(store, ChainKey::new(KEY))
}
const CHILD_TABLE: &str = "NEXUS_TEST_AUDIT_CHILD_TABLE";
const CHILD_NAME: &str = "NEXUS_TEST_AUDIT_CHILD_NAME";

async fn append_many(log: &AuditLog, writer: &str) {
    for i in 0..PER_WRITER {
        let event = NewEvent {
            actor_email: Some(format!("{writer}@writers.test")),
            action: "test.append".into(),
            target: format!("writer/{writer}/{i}"),
            outcome: "success".into(),
            ..Default::default()
        };
        log.append(event, Timestamp::from_millis(1_800_000_000_000 + i as i64)).await.unwrap();
    }
}

async fn check(store: Arc<dyn Store>, writers: &[&str]) {
    let audit = log(store);
    let report = audit.verify().await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.checked as usize, PER_WRITER * writers.len(), "{report:?}");
    for w in writers {
        let filter = AuditFilter { action: Some("test.append".into()), ..Default::default() };
        let page = audit.list(&filter, 200, None).await.unwrap();
        let mine = page
            .items
            .iter()
            .filter(|e| e.actor_email.as_deref() == Some(&format!("{w}@writers.test")))
            .count();
        assert_eq!(mine, PER_WRITER, "every append of {w} is in the chain");
    }
}

#[tokio::test]
async fn appends_from_two_processes_do_not_fork_the_chain() {
    require_emulator();
    let sdk = load_sdk_config().await;
    // A child: append to the parent's table, then exit.
    if let (Ok(table), Ok(name)) = (std::env::var(CHILD_TABLE), std::env::var(CHILD_NAME)) {
        let store: Arc<dyn Store> = Arc::new(DynamoStore::new(&sdk, table));
        append_many(&log(store), &name).await;
        return;
    }
    let table = unique("nexus-audit");
    let dynamo = Arc::new(DynamoStore::new(&sdk, table.clone()));
    dynamo.ensure_table().await.unwrap();
    let spawn = |name: &str| {
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "appends_from_two_processes_do_not_fork_the_chain", "--test-threads", "1"])
            .env(CHILD_TABLE, &table)
            .env(CHILD_NAME, name)
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn("alpha"), spawn("beta"));
    assert!(a.wait().unwrap().success(), "writer alpha failed");
    assert!(b.wait().unwrap().success(), "writer beta failed");
    check(dynamo.clone(), &["alpha", "beta"]).await;
    dynamo.delete_table().await.unwrap();
}

#[tokio::test]
async fn two_logs_over_one_embedded_store_do_not_fork_the_chain() {
    let dir = std::env::temp_dir().join(unique("nexus-audit"));
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(&dir).unwrap());
    // Separate logs do not share the in-process queue: they race for the chain head.
    let (one, two) = (log(store.clone()), log(store.clone()));
    tokio::join!(append_many(&one, "one"), append_many(&two, "two"));
    check(store, &["one", "two"]).await;
    std::fs::remove_dir_all(dir).unwrap();
}

// --- A change and its audit event in one transaction (issue 21) ------------------------------

fn event(action: &str, target: &str) -> NewEvent {
    NewEvent { action: action.into(), target: target.into(), outcome: "success".into(), ..Default::default() }
}

fn catalog_record(version: &str) -> CatalogRecord {
    CatalogRecord {
        slug: "thing".into(),
        version: version.into(),
        artifact_key: None,
        published_at: None,
        published_by: None,
        deprecated: false,
        rev: 0,
    }
}

async fn actions(log: &AuditLog) -> Vec<String> {
    let page = log.list(&AuditFilter::default(), 200, None).await.unwrap();
    let mut events = page.items;
    events.sort_by_key(|e| e.seq);
    events.into_iter().map(|e| format!("{} {}", e.action, e.target)).collect()
}

/// Another writer moves the chain's head while a change is being written: the change's
/// transaction (change + event + head) is refused whole and made again over the new head, so
/// the change exists once with its event after the other writer's. A change refused by its own
/// condition leaves no event; a change that writes nothing still gets its event.
async fn a_change_is_written_with_its_event_or_not_at_all(store: Arc<dyn Store>) {
    let (changer, other) = (log(store.clone()), log(store.clone()));
    let repo = Repo::new(store.clone());
    let attempts = AtomicUsize::new(0);
    let made = changer
        .with_change(event("test.change", "thing/1"), at(1), |repo| {
            let (first, other) = (attempts.fetch_add(1, Ordering::SeqCst) == 0, &other);
            async move {
                if first {
                    other.append(event("test.other", "interloper"), at(1)).await.unwrap();
                }
                repo.save_catalog_record(&catalog_record("1.0.0")).await
            }
        })
        .await;
    assert!(made.is_ok(), "{made:?}");
    assert_eq!(attempts.load(Ordering::SeqCst), 2, "made again over the moved head");
    assert!(repo.catalog_record("thing", "1.0.0").await.unwrap().is_some());
    assert_eq!(actions(&changer).await, ["test.other interloper", "test.change thing/1"]);

    // Its own condition fails (the record exists): nothing, not even the event.
    let refused = changer
        .with_change(event("test.change", "thing/again"), at(2), |repo| async move {
            repo.save_catalog_record(&catalog_record("1.0.0")).await
        })
        .await;
    assert!(matches!(refused, Err(ChangeError::Change(RepoError::Conflict(_)))), "{refused:?}");
    assert_eq!(actions(&changer).await.len(), 2);

    // Nothing to write: the event alone.
    let nothing = changer
        .with_change(event("test.change", "thing/none"), at(3), |_| async { Ok::<_, RepoError>(()) })
        .await;
    assert!(nothing.is_ok());
    assert_eq!(actions(&changer).await.last().unwrap(), "test.change thing/none");
    let report = changer.verify().await.unwrap();
    assert!(report.ok && report.checked == 3, "{report:?}");
}

// --- A store writer without the key (issue 20 §6) ---------------------------------------------

fn at(i: i64) -> Timestamp {
    Timestamp::from_millis(1_800_000_000_000 + i)
}

async fn append(log: &AuditLog, n: usize) {
    for i in 0..n {
        let event = NewEvent {
            action: "test.tamper".into(),
            target: format!("thing/{i}"),
            outcome: "success".into(),
            ..Default::default()
        };
        log.append(event, at(i as i64)).await.unwrap();
    }
}

fn key(seq: u64) -> String {
    format!("{seq:020}")
}

async fn record(store: &Arc<dyn Store>, seq: u64) -> (Item, AuditEvent) {
    let item = store.get("AUDIT", &key(seq)).await.unwrap().unwrap_or_else(|| panic!("record {seq}"));
    let event = serde_json::from_str(&item.data).unwrap();
    (item, event)
}

async fn put_raw(store: &Arc<dyn Store>, sk: &str, data: String) {
    let rev = store.get("AUDIT", sk).await.unwrap().map_or(1, |i| i.rev + 1);
    store.transact(vec![Write::put(Item::new("AUDIT", sk, rev, data), Cond::None)]).await.unwrap();
}

async fn set_head(store: &Arc<dyn Store>, seq: u64, hash: &str) {
    put_raw(store, "HEAD", serde_json::json!({"seq": seq, "hash": hash}).to_string()).await;
}

/// A checkpoint file in a fresh directory.
fn file_anchor() -> (Arc<dyn Anchor>, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(unique("nexus-anchor"));
    (Arc::new(FileAnchor::new(dir.join("audit-checkpoint.json"))), dir)
}

async fn rewritten_record_with_recomputed_hashes_is_found(store: Arc<dyn Store>) {
    let audit = log(store.clone());
    append(&audit, 5).await;
    assert!(audit.verify().await.unwrap().ok);
    // What a writer of the table could always do: change record 3, then recompute every hash
    // after it the way the unkeyed chain was made, and move the head along.
    let mut prev = record(&store, 2).await.1.hash;
    for seq in 3..=5 {
        let (_, mut event) = record(&store, seq).await;
        if seq == 3 {
            event.outcome = "failure".into();
        }
        event.prev_hash = prev;
        event.hash = unkeyed_hash(&event);
        prev = event.hash.clone();
        put_raw(&store, &key(seq), serde_json::to_string(&event).unwrap()).await;
    }
    set_head(&store, 5, &prev).await;
    let report = audit.verify().await.unwrap();
    assert!(!report.ok, "{report:?}");
    assert_eq!(report.first_broken, Some(3), "{report:?}");
    assert_eq!(report.checked, 2, "{report:?}");
    assert!(report.reason.unwrap().contains("audit key"));
}

async fn unkeyed_records_stay_and_the_keyed_chain_starts_after_them(store: Arc<dyn Store>) {
    // Three records as the toolkit wrote them before it keyed the chain.
    let mut prev = app::ssr::audit::GENESIS.to_string();
    for seq in 1..=3u64 {
        let mut event: AuditEvent = serde_json::from_value(serde_json::json!({
            "seq": seq, "at": at(seq as i64), "actor_id": null, "actor_email": "exec@demo.nexus",
            "actor_role": "executive", "source_ip": null, "action": "auth.login", "target": "user/exec@demo.nexus",
            "outcome": "success", "owner_id": null, "details": {}, "prev_hash": prev, "hash": ""
        }))
        .unwrap();
        event.hash = unkeyed_hash(&event);
        prev = event.hash.clone();
        put_raw(&store, &key(seq), serde_json::to_string(&event).unwrap()).await;
    }
    set_head(&store, 3, &prev).await;

    let audit = log(store.clone());
    append(&audit, 2).await;
    let report = audit.verify().await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!((report.checked, report.keyed_from), (5, Some(4)), "{report:?}");
    assert_eq!(record(&store, 3).await.1.hash, prev, "records written before are never rewritten");

    // Moving the mark (to pass rewritten records off as unkeyed ones) needs the key.
    let mark = store.get("AUDIT", "KEYED").await.unwrap().unwrap();
    let mut moved: serde_json::Value = serde_json::from_str(&mark.data).unwrap();
    moved["from"] = 6.into();
    put_raw(&store, "KEYED", moved.to_string()).await;
    let report = audit.verify().await.unwrap();
    assert!(!report.ok && report.reason.as_deref().unwrap().contains("mark"), "{report:?}");
    // Without any mark every record must be keyed: the old ones are then reported.
    store
        .transact(vec![Write::Delete { pk: "AUDIT".into(), sk: "KEYED".into(), cond: Cond::None }])
        .await
        .unwrap();
    let report = log(store.clone()).verify().await.unwrap();
    assert_eq!((report.ok, report.first_broken), (false, Some(1)), "{report:?}");
}

async fn a_cut_tail_is_found_against_the_checkpoint(store: Arc<dyn Store>) {
    let (anchor, dir) = file_anchor();
    let audit = log(store.clone()).anchored(anchor.clone());
    append(&audit, 6).await;
    assert_eq!(audit.checkpoint(at(100)).await.unwrap(), Some(6));
    assert_eq!(audit.checkpoint(at(101)).await.unwrap(), None, "an unchanged head is not anchored again");
    // Delete the two newest records and move the head back: the rest of the chain is intact.
    for seq in [5, 6] {
        store
            .transact(vec![Write::Delete { pk: "AUDIT".into(), sk: key(seq), cond: Cond::None }])
            .await
            .unwrap();
    }
    set_head(&store, 4, &record(&store, 4).await.1.hash).await;
    let report = audit.verify().await.unwrap();
    assert!(!report.ok, "{report:?}");
    assert!(report.tail_cut, "{report:?}");
    assert_eq!((report.checked, report.first_broken, report.checkpoint), (4, Some(5), Some(6)), "{report:?}");
    assert_eq!(report.anchor, "file");

    // The chain goes on from the cut; record 6 is now another record than the checkpoint saw.
    append(&audit, 3).await;
    let report = audit.verify().await.unwrap();
    assert!(!report.ok && !report.tail_cut, "{report:?}");
    assert_eq!(report.first_broken, Some(6), "{report:?}");

    // A checkpoint file edited by hand is not believed.
    let path = dir.join("audit-checkpoint.json");
    let mut cp: Checkpoint = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    cp.seq = 4;
    std::fs::write(&path, serde_json::to_vec(&cp).unwrap()).unwrap();
    let report = audit.verify().await.unwrap();
    assert!(report.reason.as_deref().unwrap().contains("not genuine"), "{report:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

async fn a_record_planted_past_the_head_is_reported_and_appends_go_on(store: Arc<dyn Store>) {
    let audit = log(store.clone());
    append(&audit, 3).await;
    let (_, mut fake) = record(&store, 3).await;
    for seq in [4, 9] {
        fake.seq = seq;
        fake.action = "auth.login".into();
        put_raw(&store, &key(seq), serde_json::to_string(&fake).unwrap()).await;
    }
    let report = audit.verify().await.unwrap();
    assert!(!report.ok, "{report:?}");
    assert_eq!((report.checked, report.first_broken), (3, None), "{report:?}");
    assert_eq!(report.planted, vec![4, 9], "{report:?}");

    // The next appends take record 4's place (the planted one is kept aside) and go on.
    append(&audit, 2).await;
    let report = audit.verify().await.unwrap();
    assert_eq!(report.planted, vec![4, 9], "{report:?}");
    assert_eq!(report.first_broken, None, "{report:?}");
    assert_eq!(report.checked, 6, "two appends and the note of the planted record: {report:?}");
    let notes = audit
        .list(&AuditFilter { action: Some("audit.planted".into()), ..Default::default() }, 10, None)
        .await
        .unwrap();
    assert_eq!(notes.items.len(), 1);
    assert_eq!(notes.items[0].target, "audit/4");
}

async fn embedded() -> (Arc<dyn Store>, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(unique("nexus-audit"));
    (Arc::new(RedbStore::open(&dir).unwrap()), dir)
}

/// Each check on a fresh embedded store and on a fresh DynamoDB table in the emulator.
macro_rules! on_both_stores {
    ($($check:ident),* $(,)?) => {$(
        mod $check {
            use super::*;

            #[tokio::test]
            async fn embedded_store() {
                let (store, dir) = embedded().await;
                super::$check(store).await;
                std::fs::remove_dir_all(dir).unwrap();
            }

            #[tokio::test]
            async fn dynamodb_store() {
                require_emulator();
                let dynamo = Arc::new(DynamoStore::new(&load_sdk_config().await, unique("nexus-audit")));
                dynamo.ensure_table().await.unwrap();
                super::$check(dynamo.clone()).await;
                dynamo.delete_table().await.unwrap();
            }
        }
    )*};
}

on_both_stores!(
    a_change_is_written_with_its_event_or_not_at_all,
    rewritten_record_with_recomputed_hashes_is_found,
    unkeyed_records_stay_and_the_keyed_chain_starts_after_them,
    a_cut_tail_is_found_against_the_checkpoint,
    a_record_planted_past_the_head_is_reported_and_appends_go_on,
);

/// The emulator's S3 keeps Object Lock on a bucket made through the API: checkpoints written
/// there cannot be deleted without bypassing governance, and a planted object is not believed.
#[tokio::test]
async fn checkpoints_in_an_object_lock_bucket() {
    use aws_sdk_s3::types::{
        DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode, ObjectLockRule,
    };
    require_emulator();
    let sdk = load_sdk_config().await;
    let s3 =
        aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    let bucket = unique("nexus-anchor");
    s3.create_bucket().bucket(&bucket).object_lock_enabled_for_bucket(true).send().await.unwrap();
    let retention = DefaultRetention::builder().mode(ObjectLockRetentionMode::Governance).days(1).build();
    s3.put_object_lock_configuration()
        .bucket(&bucket)
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(ObjectLockRule::builder().default_retention(retention).build())
                .build(),
        )
        .send()
        .await
        .unwrap();

    let (store, dir) = embedded().await;
    let anchor: Arc<dyn Anchor> = Arc::new(S3Anchor::new(&sdk, bucket.clone()));
    let audit = log(store.clone()).anchored(anchor.clone());
    append(&audit, 3).await;
    assert_eq!(audit.checkpoint(at(10)).await.unwrap(), Some(3));
    append(&audit, 2).await;
    assert_eq!(audit.checkpoint(at(20)).await.unwrap(), Some(5));
    let key_ = ChainKey::new(KEY);
    assert_eq!(anchor.latest(&key_).await.unwrap().map(|cp| cp.seq), Some(5));

    // A newer-looking checkpoint that was not signed with the key is skipped.
    let forged = Checkpoint { seq: 9, ..anchor.latest(&key_).await.unwrap().unwrap() };
    s3.put_object()
        .bucket(&bucket)
        .key(format!("audit-checkpoints/{:020}.json", u64::MAX - 9))
        .body(serde_json::to_vec(&forged).unwrap().into())
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
        .send()
        .await
        .unwrap();
    assert_eq!(anchor.latest(&key_).await.unwrap().map(|cp| cp.seq), Some(5));

    // The checkpoint cannot be deleted (the toolkit never holds the right to bypass governance).
    let listed = s3.list_object_versions().bucket(&bucket).prefix("audit-checkpoints/").send().await.unwrap();
    let newest = listed
        .versions()
        .iter()
        .find(|v| v.key() == Some(&format!("audit-checkpoints/{:020}.json", u64::MAX - 5)))
        .unwrap();
    let deleted = s3
        .delete_object()
        .bucket(&bucket)
        .key(newest.key().unwrap())
        .version_id(newest.version_id().unwrap())
        .send()
        .await;
    let code = deleted.expect_err("a locked checkpoint version was deleted").into_service_error();
    assert_eq!(aws_sdk_s3::error::ProvideErrorMetadata::code(&code), Some("AccessDenied"), "{code:?}");

    // Cut the tail in the store: the verification reports it against the bucket's checkpoint.
    store.transact(vec![Write::Delete { pk: "AUDIT".into(), sk: key(5), cond: Cond::None }]).await.unwrap();
    set_head(&store, 4, &record(&store, 4).await.1.hash).await;
    let report = audit.verify().await.unwrap();
    assert!(report.tail_cut && !report.ok, "{report:?}");
    assert_eq!((report.anchor.as_str(), report.checkpoint), ("s3", Some(5)));
    std::fs::remove_dir_all(dir).unwrap();
}
