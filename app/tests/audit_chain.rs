//! Appends from several writers at once never fork the audit chain: two real processes on one
//! DynamoDB table (the emulator), and two independent logs over one embedded store.

mod common;

use std::{process::Command, sync::Arc};

use app::{
    domain::time::Timestamp,
    ssr::{
        audit::{AuditFilter, AuditLog, NewEvent},
        aws::load_sdk_config,
        store::{DynamoStore, RedbStore, Store},
    },
};
use common::{require_emulator, unique};

const PER_WRITER: usize = 40;
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
    let log = AuditLog::new(store);
    let report = log.verify().await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.checked as usize, PER_WRITER * writers.len(), "{report:?}");
    for w in writers {
        let filter = AuditFilter { action: Some("test.append".into()), ..Default::default() };
        let page = log.list(&filter, 200, None).await.unwrap();
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
        append_many(&AuditLog::new(store), &name).await;
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
    let (one, two) = (AuditLog::new(store.clone()), AuditLog::new(store.clone()));
    tokio::join!(append_many(&one, "one"), append_many(&two, "two"));
    check(store, &["one", "two"]).await;
    std::fs::remove_dir_all(dir).unwrap();
}
