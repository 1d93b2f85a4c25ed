//! The binary's maintenance commands, run as a user runs them: seed, backup, change, restore,
//! and the refusals (a running server holds the store; a file that is not a backup).

use std::{path::Path, process::Command, sync::Arc};

use app::ssr::{
    repo::Repo,
    store::{RedbStore, Store},
};

fn run(data: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nexus-toolkit"))
        .args(args)
        .env("NEXUS_DATA_DIR", data)
        .env("NEXUS_CATALOG_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/../catalog"))
        .env("NEXUS_DEMO_PASSWORD", "Fake-Demo-Password-2026!")
        .env("NEXUS_LOG_FORMAT", "text")
        .env_remove("NEXUS_STORE")
        .output()
        .expect("the server binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

async fn customers(data: &Path) -> usize {
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(data).unwrap());
    Repo::new(store).customers(None, 200, None).await.unwrap().items.len()
}

#[tokio::test]
async fn backup_and_restore_round_trip_through_the_binary() {
    let root = std::env::temp_dir().join(format!("nexus-commands-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let data = root.join("data");
    let backup = root.join("backup.redb");

    let (ok, out, err) = run(&data, &["seed"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("loaded 20 customers"), "{out}");
    assert_eq!(customers(&data).await, 20);

    let (ok, out, err) = run(&data, &["backup", backup.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("backed up"), "{out}");
    let (ok, _, err) = run(&data, &["backup", backup.to_str().unwrap()]);
    assert!(!ok && err.contains("already exists"), "a backup never overwrites: {err}");

    // Change the store after the backup.
    let (ok, out, err) = run(&data, &["seed", "--scale", "--customers", "3"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("loaded 3 customers, 9 environments, 45 deployments"), "{out}");
    assert_eq!(customers(&data).await, 23);

    // While something holds the store, the commands refuse and say why.
    {
        let _held = RedbStore::open(&data).unwrap();
        let (ok, _, err) = run(&data, &["restore", backup.to_str().unwrap()]);
        assert!(!ok, "{err}");
        assert!(err.contains("is the server running"), "{err}");
    }

    // A file that is not a backup is refused and the store is left as it was.
    let junk = root.join("junk.redb");
    std::fs::write(&junk, b"not a store").unwrap();
    let (ok, _, err) = run(&data, &["restore", junk.to_str().unwrap()]);
    assert!(!ok && err.contains("cannot be restored"), "{err}");
    assert_eq!(customers(&data).await, 23);

    let (ok, out, err) = run(&data, &["restore", backup.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("previous store is kept"), "{out}");
    assert_eq!(customers(&data).await, 20, "the store is back to the backup");
    let kept = std::fs::read_dir(&data)
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().contains("before-restore"));
    assert!(kept);

    let (ok, _, err) = run(&data, &["explode"]);
    assert!(!ok && err.contains("usage"), "{err}");
    std::fs::remove_dir_all(&root).unwrap();
}
