//! One conformance suite for both stores: every case runs on the embedded store and on DynamoDB
//! (the AWS emulator the test command starts, each test on its own table). Test names carry the
//! store (`embedded::…`, `dynamodb::…`), so a store whose run is missing shows in the output.

use std::{
    future::Future,
    path::PathBuf,
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use app::ssr::{
    aws::load_sdk_config,
    store::{
        Cond, Cursor, DynamoStore, Item, Query, RedbStore, Store, StoreError, Write, check_schema, keys,
    },
};

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

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
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run the suite through `make test`, which starts the AWS emulator"
    );
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
    assert_eq!(check_schema(&*store).await.unwrap(), 1);
    assert_eq!(check_schema(&*store).await.unwrap(), 1, "idempotent");
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
