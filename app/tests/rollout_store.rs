//! Stored rollouts on both stores (the embedded one and DynamoDB on the emulator), through the
//! repo: a deployment is held by one active rollout at most, a holder left by an ended rollout
//! is taken over, a creation cut short is removed without touching another rollout's holders,
//! the progress counters move with the records, and an idempotency key makes one rollout.

mod common;

use std::sync::Arc;

use app::{
    domain::{
        ids::Id,
        lifecycle::Health,
        model::EnvironmentName,
        rollout::{Item, ItemState, RolloutState},
        rollout_plan::{Gates, WaveSettings},
        rollout_record::{Rollout, RolloutItem},
        time::Timestamp,
    },
    ssr::{
        aws::load_sdk_config,
        repo::{HoldError, Repo, RepoError},
        store::{DynamoStore, RedbStore, Store},
    },
};
use common::{require_emulator, unique};

fn rollout(n: u64) -> Rollout {
    Rollout {
        id: Id::from_parts(n, 7),
        capability: "lead-scoring".into(),
        version: "1.1.0".parse().unwrap(),
        state: RolloutState::Creating,
        created_by: Id::from_parts(1, 1),
        team: None,
        settings: WaveSettings::default(),
        gates: Gates::default(),
        waves: Vec::new(),
        parameters: Default::default(),
        approvals: Vec::new(),
        finished_waves: Vec::new(),
        status_text: None,
        in_flight: false,
        changed_by: None,
        created_at: Timestamp::from_millis(1_800_000_000_000),
        updated_at: Timestamp::from_millis(1_800_000_000_000),
        lease_owner: None,
        lease_until: None,
        rev: 1,
    }
}

fn item(r: &Rollout, deployment: u64, wave: u32) -> RolloutItem {
    RolloutItem {
        rollout_id: r.id.clone(),
        item: Item {
            deployment_id: Id::from_parts(deployment, 3),
            customer_id: Id::from_parts(deployment, 2),
            account_id: "111111111111".into(),
            environment: EnvironmentName::Dev,
            wave,
            state: ItemState::Waiting,
            health: Health::Unknown,
        },
        customer: format!("Customer {deployment}"),
        from_version: "1.0.0".parse().unwrap(),
        note: None,
        finished_at: None,
        rev: 1,
    }
}

async fn holders_counters_and_undo(store: Arc<dyn Store>) {
    let repo = Repo::new(store);
    let mut first = rollout(1);
    repo.begin_rollout(&first).await.unwrap();
    let first_items: Vec<RolloutItem> = vec![item(&first, 1, 1), item(&first, 2, 1), item(&first, 3, 2)];
    repo.add_rollout_items(&first_items).await.unwrap();
    first.state = RolloutState::Running;
    repo.activate_rollout(&mut first, Some("key-1")).await.unwrap();
    assert_eq!(repo.idempotent_rollout(&first.created_by, "key-1").await.unwrap(), Some(first.id.clone()));
    // The same key again: the first rollout's id, nothing written.
    let mut copy = rollout(9);
    repo.begin_rollout(&copy).await.unwrap();
    copy.state = RolloutState::Running;
    match repo.activate_rollout(&mut copy, Some("key-1")).await {
        Err(RepoError::Conflict(earlier)) => assert_eq!(earlier, first.id.to_string()),
        other => panic!("a used key: {other:?}"),
    }
    assert_eq!(repo.rollout(&copy.id).await.unwrap().state, RolloutState::Creating);
    repo.discard_rollout(&copy.id).await.unwrap();

    let counts = repo.rollout_counts(&first.id).await.unwrap();
    assert_eq!(counts.iter().map(|c| (c.wave, c.waiting)).collect::<Vec<_>>(), [(1, 2), (2, 1)]);
    assert_eq!(repo.rollout_holders().await.unwrap().len(), 3);
    assert_eq!(repo.active_rollouts(10).await.unwrap().len(), 1);

    // A second rollout selecting a held deployment is refused, naming the holder; nothing of
    // the refused batch is written.
    let second = rollout(2);
    repo.begin_rollout(&second).await.unwrap();
    match repo.add_rollout_items(&[item(&second, 4, 1), item(&second, 2, 1)]).await {
        Err(HoldError::Held { deployment, rollout }) => {
            assert_eq!((deployment, rollout), (Id::from_parts(2, 3), first.id.clone()))
        }
        other => panic!("a held deployment: {other:?}"),
    }
    assert!(repo.rollout_items(&second.id).await.unwrap().is_empty());

    // A record moves and its counters with it.
    let mut moved = repo.rollout_items(&first.id).await.unwrap().remove(0);
    moved.item.state = ItemState::Skipped;
    repo.save_rollout_item(&ItemState::Waiting, &mut moved).await.unwrap();
    let mut stale = moved.clone();
    stale.rev -= 1;
    assert!(matches!(
        repo.save_rollout_item(&ItemState::Waiting, &mut stale).await,
        Err(RepoError::Conflict(_))
    ));
    let counts = repo.rollout_counts(&first.id).await.unwrap();
    assert_eq!((counts[0].waiting, counts[0].skipped, counts[0].total()), (1, 1, 2));

    // The first rollout ends without letting go (a crash before the release): its holders are
    // taken over by the next rollout that selects them.
    first.state = RolloutState::Cancelled;
    repo.save_rollout(&mut first).await.unwrap();
    assert!(repo.active_rollouts(10).await.unwrap().iter().all(|r| r.id != first.id));
    repo.add_rollout_items(&[item(&second, 4, 1), item(&second, 2, 1)]).await.unwrap();
    let held = repo.rollout_holders().await.unwrap();
    assert_eq!(held.get(&Id::from_parts(2, 3)), Some(&second.id));

    // The second creation is cut short and removed: its records, counters and holders go; the
    // first rollout's remaining holder (deployment 3) stays.
    repo.discard_rollout(&second.id).await.unwrap();
    assert!(matches!(repo.rollout(&second.id).await, Err(RepoError::NotFound)));
    assert!(repo.rollout_counts(&second.id).await.unwrap().is_empty());
    let third = rollout(3);
    repo.begin_rollout(&third).await.unwrap();
    repo.add_rollout_items(&[item(&third, 2, 1), item(&third, 4, 1)]).await.unwrap();
    // Releasing the ended first rollout lets go of its last holder (deployment 3).
    repo.release_rollout(&first.id).await.unwrap();
    repo.add_rollout_items(&[item(&third, 3, 2)]).await.unwrap();
    assert_eq!(repo.rollout_items(&third.id).await.unwrap().len(), 3);
}

#[tokio::test]
async fn embedded_store() {
    let dir = std::env::temp_dir().join(unique("nexus-rollouts"));
    holders_counters_and_undo(Arc::new(RedbStore::open(&dir).unwrap())).await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn dynamodb_store() {
    require_emulator();
    let dynamo = Arc::new(DynamoStore::new(&load_sdk_config().await, unique("nexus-rollouts")));
    dynamo.ensure_table().await.unwrap();
    holders_counters_and_undo(dynamo.clone()).await;
    dynamo.delete_table().await.unwrap();
}
