//! One conformance suite for both stores: every case runs on the embedded store and on DynamoDB
//! (the AWS emulator the test command starts, each test on its own table). Test names carry the
//! store (`embedded::…`, `dynamodb::…`), so a store whose run is missing shows in the output.

mod common;

use common::{require_emulator, unique};
use std::{future::Future, path::PathBuf, sync::Arc};

use app::domain::{
    lifecycle::{DeploymentStatus, OperationState},
    model::{EnvironmentName, Role},
};
use app::ssr::{
    aws::load_sdk_config,
    config::Secret,
    password::verify_password,
    repo::{Repo, RepoError},
    seed::seed_demo,
    store::{
        Cond, Cursor, DynamoStore, Item, Query, RedbStore, SCHEMA_VERSION, Store, StoreError, Write,
        check_schema, keys,
    },
};

/// Runs `case` on a fresh embedded store.
async fn on_embedded<F, Fut>(case: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir: PathBuf = std::env::temp_dir().join(unique("nexus-store"));
    let store = Arc::new(RedbStore::open(&dir).unwrap());
    case(store).await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs `case` on a fresh DynamoDB table on the emulator.
async fn on_dynamodb<F, Fut>(case: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    require_emulator();
    let store = Arc::new(DynamoStore::new(&load_sdk_config().await, unique("nexus-conf")));
    store.ensure_table().await.unwrap();
    case(store.clone()).await;
    store.delete_table().await.unwrap();
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test] async fn $name() { super::on_embedded(super::$name).await })*
        }
        mod dynamodb {
            $(#[tokio::test] async fn $name() { super::on_dynamodb(super::$name).await })*
        }
    };
}

conformance!(
    put_get_and_revisions,
    stale_writes_are_refused,
    transactions_are_all_or_nothing,
    invalid_transactions_are_refused,
    queries_page_past_several_pages_both_ways,
    sort_key_prefixes_select,
    indexes_follow_item_changes,
    counters_add_up,
    schema_version_is_recorded,
    demo_data_loads_and_reads_back_through_every_access_pattern,
    deployment_changes_move_fleet_counters,
);

fn item(pk: &str, sk: &str, rev: u64, data: &str) -> Item {
    Item::new(pk, sk, rev, data)
}

async fn put_get_and_revisions(store: Arc<dyn Store>) {
    assert_eq!(store.get("A", "1").await.unwrap(), None);
    store.transact(vec![Write::put(item("A", "1", 1, r#"{"v":1}"#), Cond::NotExists)]).await.unwrap();
    let got = store.get("A", "1").await.unwrap().unwrap();
    assert_eq!((got.rev, got.data.as_str()), (1, r#"{"v":1}"#));

    store.transact(vec![Write::put(item("A", "1", 2, r#"{"v":2}"#), Cond::Rev(1))]).await.unwrap();
    assert_eq!(store.get("A", "1").await.unwrap().unwrap().rev, 2);

    store.transact(vec![Write::Delete { pk: "A".into(), sk: "1".into(), cond: Cond::Rev(2) }]).await.unwrap();
    assert_eq!(store.get("A", "1").await.unwrap(), None);
    store.ping().await.unwrap();
}

async fn stale_writes_are_refused(store: Arc<dyn Store>) {
    store.transact(vec![Write::put(item("A", "1", 1, "first"), Cond::NotExists)]).await.unwrap();
    // Creating it again.
    let e = store.transact(vec![Write::put(item("A", "1", 1, "again"), Cond::NotExists)]).await.unwrap_err();
    assert!(matches!(e, StoreError::Conflict { index: 0 }), "{e:?}");
    // Two writers read rev 1; the first wins, the second is refused, nothing overwritten.
    store.transact(vec![Write::put(item("A", "1", 2, "writer one"), Cond::Rev(1))]).await.unwrap();
    let e =
        store.transact(vec![Write::put(item("A", "1", 2, "writer two"), Cond::Rev(1))]).await.unwrap_err();
    assert!(matches!(e, StoreError::Conflict { index: 0 }), "{e:?}");
    assert_eq!(store.get("A", "1").await.unwrap().unwrap().data, "writer one");
    // A revision condition on a missing item fails too, as does deleting with a stale one.
    let e = store.transact(vec![Write::put(item("B", "1", 2, "x"), Cond::Rev(1))]).await.unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
    let e = store
        .transact(vec![Write::Delete { pk: "A".into(), sk: "1".into(), cond: Cond::Rev(1) }])
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
    assert!(store.get("A", "1").await.unwrap().is_some());
}

async fn transactions_are_all_or_nothing(store: Arc<dyn Store>) {
    store.transact(vec![Write::put(item("T", "existing", 1, "keep"), Cond::NotExists)]).await.unwrap();
    // The third write fails its condition: the first two must not land.
    let e = store
        .transact(vec![
            Write::put(item("T", "new-1", 1, "a").with_index(keys::GSI1, "IDX", "a"), Cond::NotExists),
            Write::Add { pk: "T".into(), sk: "counter".into(), delta: 5 },
            Write::put(item("T", "existing", 2, "overwritten"), Cond::Rev(7)),
        ])
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict { index: 2 }), "{e:?}");
    assert_eq!(store.get("T", "new-1").await.unwrap(), None);
    assert_eq!(store.get("T", "counter").await.unwrap(), None);
    assert_eq!(store.get("T", "existing").await.unwrap().unwrap().data, "keep");
    assert!(store.query(Query::index(keys::GSI1, "IDX")).await.unwrap().items.is_empty());

    // A failing condition check alone also stops the rest.
    let e = store
        .transact(vec![
            Write::put(item("T", "new-2", 1, "b"), Cond::NotExists),
            Write::Check { pk: "T".into(), sk: "missing".into(), cond: Cond::Exists },
        ])
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict { index: 1 }), "{e:?}");
    assert_eq!(store.get("T", "new-2").await.unwrap(), None);

    // And when all conditions hold, everything lands.
    store
        .transact(vec![
            Write::put(item("T", "new-3", 1, "c"), Cond::NotExists),
            Write::Check { pk: "T".into(), sk: "existing".into(), cond: Cond::Rev(1) },
            Write::Add { pk: "T".into(), sk: "counter".into(), delta: 2 },
        ])
        .await
        .unwrap();
    assert!(store.get("T", "new-3").await.unwrap().is_some());
    assert_eq!(store.get("T", "counter").await.unwrap().unwrap().n, 2);
}

async fn invalid_transactions_are_refused(store: Arc<dyn Store>) {
    let e = store.transact(vec![]).await.unwrap_err();
    assert!(matches!(e, StoreError::Invalid(_)), "{e:?}");
    let too_many: Vec<Write> =
        (0..101).map(|i| Write::put(item("X", &format!("{i:03}"), 1, ""), Cond::None)).collect();
    assert!(matches!(store.transact(too_many).await.unwrap_err(), StoreError::Invalid(_)));
    let twice = vec![
        Write::put(item("X", "1", 1, ""), Cond::None),
        Write::Add { pk: "X".into(), sk: "1".into(), delta: 1 },
    ];
    assert!(matches!(store.transact(twice).await.unwrap_err(), StoreError::Invalid(_)));
    assert_eq!(store.get("X", "1").await.unwrap(), None);
    let hundred: Vec<Write> =
        (0..100).map(|i| Write::put(item("X", &format!("{i:03}"), 1, ""), Cond::None)).collect();
    store.transact(hundred).await.unwrap();
    assert_eq!(store.query(Query::table("X").limit(200)).await.unwrap().items.len(), 100);
}

async fn collect_pages(store: &dyn Store, query: Query) -> (Vec<String>, usize) {
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = store.query(query.clone().after(cursor.clone())).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= query.limit);
        seen.extend(page.items.iter().map(|i| i.sk.clone()));
        match page.next {
            // Cursors survive a round trip through their opaque text form.
            Some(c) => cursor = Some(Cursor::decode(&c.encode()).unwrap()),
            None => break,
        }
        assert!(pages < 100, "pagination does not end");
    }
    (seen, pages)
}

async fn queries_page_past_several_pages_both_ways(store: Arc<dyn Store>) {
    let writes: Vec<Write> = (0..23)
        .map(|i| {
            Write::put(
                item("P", &format!("OP#{i:03}"), 1, "").with_index(
                    keys::GSI2,
                    "BYPART",
                    format!("k#{:03}", 22 - i),
                ),
                Cond::NotExists,
            )
        })
        .collect();
    store.transact(writes).await.unwrap();
    // Something in the same partition outside the prefix, and another partition.
    store
        .transact(vec![
            Write::put(item("P", "ZZZ", 1, ""), Cond::None),
            Write::put(item("Q", "OP#000", 1, ""), Cond::None),
        ])
        .await
        .unwrap();

    let expected: Vec<String> = (0..23).map(|i| format!("OP#{i:03}")).collect();
    let (asc, pages) = collect_pages(&*store, Query::table("P").prefix("OP#").limit(5)).await;
    assert_eq!(asc, expected);
    assert_eq!(pages, 5);

    let (desc, _) = collect_pages(&*store, Query::table("P").prefix("OP#").limit(5).descending()).await;
    let mut reversed = expected.clone();
    reversed.reverse();
    assert_eq!(desc, reversed);

    // An exact multiple of the page size ends with next = None, not an empty extra page.
    let (exact, pages) = collect_pages(&*store, Query::table("P").prefix("OP#0").limit(10)).await;
    assert_eq!(exact.len(), 23);
    assert_eq!(pages, 3);
    let (twenty, pages) = collect_pages(&*store, Query::table("P").prefix("OP#01").limit(10)).await;
    assert_eq!((twenty.len(), pages), (10, 1));

    // Through an index: ordered by the index sort key, paged the same way.
    let (by_index, pages) =
        collect_pages(&*store, Query::index(keys::GSI2, "BYPART").prefix("k#").limit(4)).await;
    assert_eq!(by_index, reversed);
    assert_eq!(pages, 6);
    let (by_index_desc, _) =
        collect_pages(&*store, Query::index(keys::GSI2, "BYPART").prefix("k#").limit(4).descending()).await;
    assert_eq!(by_index_desc, expected);
}

async fn sort_key_prefixes_select(store: Arc<dyn Store>) {
    store
        .transact(vec![
            Write::put(item("C", "DEP#dev#a", 1, ""), Cond::None),
            Write::put(item("C", "DEP#dev#b", 1, ""), Cond::None),
            Write::put(item("C", "DEP#prod#a", 1, ""), Cond::None),
            Write::put(item("C", "ENV#dev", 1, ""), Cond::None),
        ])
        .await
        .unwrap();
    let sks = |q: Query| {
        let store = store.clone();
        async move { store.query(q).await.unwrap().items.into_iter().map(|i| i.sk).collect::<Vec<_>>() }
    };
    assert_eq!(sks(Query::table("C").prefix("DEP#dev#")).await, ["DEP#dev#a", "DEP#dev#b"]);
    assert_eq!(sks(Query::table("C").prefix("DEP#")).await.len(), 3);
    assert_eq!(sks(Query::table("C")).await.len(), 4);
    assert!(sks(Query::table("C").prefix("NOPE")).await.is_empty());
    assert!(sks(Query::table("missing")).await.is_empty());
}

async fn indexes_follow_item_changes(store: Arc<dyn Store>) {
    let dep = |rev, status: &str| {
        item("DEP#1", "DEP", rev, status).with_index(
            keys::GSI3,
            format!("STATUS#{status}"),
            "prod#lead-scoring#1",
        )
    };
    store.transact(vec![Write::put(dep(1, "pending"), Cond::NotExists)]).await.unwrap();
    let in_status = |status: &'static str| {
        let store = store.clone();
        async move { store.query(Query::index(keys::GSI3, format!("STATUS#{status}"))).await.unwrap().items.len() }
    };
    assert_eq!(in_status("pending").await, 1);
    store.transact(vec![Write::put(dep(2, "active"), Cond::Rev(1))]).await.unwrap();
    assert_eq!(in_status("pending").await, 0, "the old index entry must go");
    assert_eq!(in_status("active").await, 1);
    let found = store.query(Query::index(keys::GSI3, "STATUS#active").prefix("prod#")).await.unwrap();
    assert_eq!(found.items[0].data, "active");
    assert_eq!(
        found.items[0].index[keys::GSI3],
        Some(("STATUS#active".into(), "prod#lead-scoring#1".into()))
    );
    // Dropping the index keys removes the item from the index.
    store.transact(vec![Write::put(item("DEP#1", "DEP", 3, "plain"), Cond::Rev(2))]).await.unwrap();
    assert_eq!(in_status("active").await, 0);
    store
        .transact(vec![Write::Delete { pk: "DEP#1".into(), sk: "DEP".into(), cond: Cond::None }])
        .await
        .unwrap();
    assert_eq!(in_status("active").await, 0);
}

async fn counters_add_up(store: Arc<dyn Store>) {
    for delta in [1, 1, 1, -1, 5] {
        store
            .transact(vec![Write::Add { pk: "SUMMARY#ALL".into(), sk: "lead#prod#active".into(), delta }])
            .await
            .unwrap();
    }
    store
        .transact(vec![Write::Add { pk: "SUMMARY#ALL".into(), sk: "lead#dev#failed".into(), delta: 2 }])
        .await
        .unwrap();
    let page = store.query(Query::table("SUMMARY#ALL")).await.unwrap();
    let counts: Vec<(String, i64)> = page.items.into_iter().map(|i| (i.sk, i.n)).collect();
    assert_eq!(counts, [("lead#dev#failed".to_string(), 2), ("lead#prod#active".to_string(), 7)]);
}

async fn schema_version_is_recorded(store: Arc<dyn Store>) {
    assert_eq!(check_schema(&*store).await.unwrap(), SCHEMA_VERSION);
    assert_eq!(check_schema(&*store).await.unwrap(), SCHEMA_VERSION, "idempotent");
    let stored = store.get(keys::META, keys::SCHEMA).await.unwrap().unwrap();
    store
        .transact(vec![Write::put(
            item(keys::META, keys::SCHEMA, stored.rev + 1, "99"),
            Cond::Rev(stored.rev),
        )])
        .await
        .unwrap();
    let e = check_schema(&*store).await.unwrap_err();
    assert!(e.to_string().contains("99"), "{e}");
    let calls = store.calls();
    assert_eq!(calls.scan, 0);
    assert!(calls.get >= 3 && calls.transact >= 2, "{calls:?}");
}

async fn demo_data_loads_and_reads_back_through_every_access_pattern(store: Arc<dyn Store>) {
    let repo = Repo::new(store.clone());
    assert!(repo.is_empty().await.unwrap());
    let password = Secret::new("Fake-Demo-Password-1!");
    let summary = seed_demo(&repo, &password).await.unwrap();
    assert_eq!((summary.users, summary.customers, summary.environments), (7, 20, 60));
    assert!(summary.deployments > 150, "{summary:?}");
    assert!(!repo.is_empty().await.unwrap());
    // Loading again adds nothing (fixed ids), so an interrupted load can simply be re-run.
    let again = seed_demo(&repo, &password).await.unwrap();
    assert_eq!((again.users, again.customers, again.deployments), (0, 0, 0));

    let exec = repo.user_by_email("EXEC@demo.nexus").await.unwrap().expect("emails are case-insensitive");
    assert_eq!(exec.user.role, Role::Executive);
    // Four eyes can be tried in the demo: a second Executive, and a Rep's request waiting.
    let exec2 = repo.user_by_email("exec2@demo.nexus").await.unwrap().expect("a second Executive");
    assert_eq!(exec2.user.role, Role::Executive);
    let rep = repo.user_by_email("rep@demo.nexus").await.unwrap().unwrap().user.id;
    let mut waiting_for_rep = 0;
    for op in repo.waiting_operations(500).await.unwrap() {
        let owner = repo.customer(&op.customer_id).await.unwrap().owner_id;
        if op.state == OperationState::AwaitingApproval && owner == rep && op.requested_by == rep {
            waiting_for_rep += 1;
        }
    }
    assert!(waiting_for_rep >= 1, "a request on rep@demo.nexus's customers waits for approval");
    assert!(verify_password("Fake-Demo-Password-1!", exec.password_hash.as_deref().unwrap()));
    assert!(repo.user_by_email("nobody@demo.nexus").await.unwrap().is_none());
    let manager = repo.user_by_email("manager@demo.nexus").await.unwrap().unwrap();
    let team: Vec<String> = repo.team(&manager.user.id).await.unwrap().into_iter().map(|u| u.email).collect();
    assert_eq!(team, ["rep2@demo.nexus", "rep@demo.nexus"]);
    assert_eq!(repo.users(10, None).await.unwrap().items.len(), 7);

    // Customers: all, and by owner, paged.
    let all = repo.customers(None, 100, None).await.unwrap();
    assert_eq!(all.items.len(), 20);
    assert!(all.next_cursor.is_none());
    let first = repo.customers(None, 8, None).await.unwrap();
    let second = repo.customers(None, 8, first.next_cursor.as_deref()).await.unwrap();
    assert_eq!(first.items.len() + second.items.len(), 16);
    assert_ne!(first.items[0].id, second.items[0].id);
    let rep = repo.user_by_email("rep@demo.nexus").await.unwrap().unwrap();
    let own = repo.customers(Some(&rep.user.id), 100, None).await.unwrap();
    assert!(own.items.len() >= 6 && own.items.iter().all(|c| c.owner_id == rep.user.id));
    assert!(matches!(repo.customers(None, 10, Some("not-a-cursor")).await, Err(RepoError::BadCursor)));

    // A customer's environments and deployments; a deployment's history.
    let customer = &all.items[0];
    let envs = repo.environments(&customer.id).await.unwrap();
    assert_eq!(
        envs.iter().map(|e| e.name).collect::<Vec<_>>(),
        [EnvironmentName::Dev, EnvironmentName::Prod, EnvironmentName::Staging]
    );
    assert_eq!(repo.environment(&envs[0].id).await.unwrap(), envs[0]);
    let deps = repo.deployments_by_customer(&customer.id, None, 100, None).await.unwrap();
    assert!(!deps.items.is_empty());
    let prod =
        repo.deployments_by_customer(&customer.id, Some(EnvironmentName::Prod), 100, None).await.unwrap();
    assert!(prod.items.iter().all(|d| d.deployment.environment == EnvironmentName::Prod));
    assert!(prod.items.len() < deps.items.len());
    let d = &deps.items[0].deployment;
    assert_eq!(repo.deployment(&d.id).await.unwrap().deployment, *d);
    let ops = repo.operations(&d.id, 10, None).await.unwrap();
    assert_eq!(ops.items.len(), 1);
    assert_eq!(ops.items[0].deployment_id, d.id);

    // The fleet summary comes from counters and adds up to the deployments that exist.
    let counts = repo.fleet_counts(None).await.unwrap();
    let total: i64 = counts.iter().map(|c| c.3).sum();
    assert_eq!(total as usize, summary.deployments);
    assert!(counts.iter().any(|c| c.2 == DeploymentStatus::Failed));
    let team_ids = [rep.user.id.clone()];
    let rep_total: i64 = repo.fleet_counts(Some(&team_ids)).await.unwrap().iter().map(|c| c.3).sum();
    assert!(rep_total > 0 && rep_total < total);

    assert_eq!(store.calls().scan, 0, "no Scan on any read path");
}

async fn deployment_changes_move_fleet_counters(store: Arc<dyn Store>) {
    let repo = Repo::new(store.clone());
    seed_demo(&repo, &Secret::new("Fake-Demo-Password-1!")).await.unwrap();
    let customer = repo.customers(None, 1, None).await.unwrap().items.remove(0);
    let before = repo.deployments_by_customer(&customer.id, None, 100, None).await.unwrap().items.remove(0);
    let count = |status: DeploymentStatus| {
        let repo = repo.clone();
        let cap = before.deployment.capability.clone();
        let env = before.deployment.environment;
        async move {
            repo.fleet_counts(None)
                .await
                .unwrap()
                .into_iter()
                .filter(|c| c.0 == cap && c.1 == env && c.2 == status)
                .map(|c| c.3)
                .sum::<i64>()
        }
    };
    let from = before.deployment.status;
    let to =
        if from == DeploymentStatus::Deleted { DeploymentStatus::Active } else { DeploymentStatus::Deleted };
    let (from_n, to_n) = (count(from).await, count(to).await);

    let mut after = before.clone();
    after.deployment.status = to;
    let saved = repo.update_deployment(&before, after.clone()).await.unwrap();
    assert_eq!(saved.rev, before.deployment.rev + 1);
    assert_eq!((count(from).await, count(to).await), (from_n - 1, to_n + 1));

    // A second writer holding the old revision is refused, and the counters stay put.
    let e = repo.update_deployment(&before, after).await.unwrap_err();
    assert!(matches!(e, RepoError::Conflict(_)), "{e:?}");
    assert_eq!((count(from).await, count(to).await), (from_n - 1, to_n + 1));
}
