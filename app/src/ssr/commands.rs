//! The server binary's maintenance commands (`nexus-toolkit <command>`): backup and restore of
//! the embedded store, and loading demo or scale data. They open the store themselves, so the
//! embedded store's commands run while the server is stopped (the store file is locked while
//! it runs; the command says so).

use std::path::{Path, PathBuf};

use super::{
    catalog::Catalog,
    clock,
    config::{Config, StoreKind},
    repo::Repo,
    seed,
    state::{StartupError, open_store},
    store::{RedbStore, SCHEMA_VERSION, Store, StoreError, check_schema, keys},
};

pub const USAGE: &str = "usage: nexus-toolkit [serve]
       nexus-toolkit backup <file>        copy the embedded store to a new file
       nexus-toolkit restore <file>       replace the embedded store with a backup (server stopped)
       nexus-toolkit seed [--scale] [--customers N]
                                          load the demo data, or the benchmark data set
                                          (1,000 customers x 3 environments x 5 capabilities)";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Serve,
    Backup(PathBuf),
    Restore(PathBuf),
    Seed { scale: bool, customers: usize },
}

impl Command {
    pub fn parse(args: &[String]) -> Result<Command, String> {
        match args.first().map(String::as_str) {
            None | Some("serve") if args.len() <= 1 => Ok(Command::Serve),
            Some("backup") if args.len() == 2 => Ok(Command::Backup(PathBuf::from(&args[1]))),
            Some("restore") if args.len() == 2 => Ok(Command::Restore(PathBuf::from(&args[1]))),
            Some("seed") => {
                let (mut scale, mut customers) = (false, 1000);
                let mut rest = args[1..].iter();
                while let Some(a) = rest.next() {
                    match a.as_str() {
                        "--scale" => scale = true,
                        "--customers" => {
                            customers = rest
                                .next()
                                .and_then(|n| n.parse().ok())
                                .filter(|n| *n > 0)
                                .ok_or("--customers takes a number above 0")?;
                        }
                        other => return Err(format!("unknown option `{other}`")),
                    }
                }
                Ok(Command::Seed { scale, customers })
            }
            _ => Err(format!("unknown command `{}`", args.join(" "))),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{0}")]
    Usage(String),
    #[error(
        "cannot open the store in {0}: is the server running? Stop it first (the store file is locked while it runs)"
    )]
    Locked(String),
    #[error("{0}")]
    Failed(String),
}

impl From<StoreError> for CommandError {
    fn from(e: StoreError) -> Self {
        CommandError::Failed(e.to_string())
    }
}

impl From<StartupError> for CommandError {
    fn from(e: StartupError) -> Self {
        CommandError::Failed(e.to_string())
    }
}

fn embedded_only(config: &Config, what: &str) -> Result<RedbStore, CommandError> {
    if config.store != StoreKind::Embedded {
        return Err(CommandError::Usage(format!(
            "{what} is for the embedded store; DynamoDB is backed up by point-in-time recovery (see infra/)"
        )));
    }
    RedbStore::open(&config.data_dir).map_err(|_| CommandError::Locked(config.data_dir.display().to_string()))
}

/// Writes a consistent copy of the embedded store to `target` (which must not exist).
pub fn backup(config: &Config, target: &Path) -> Result<String, CommandError> {
    let store = embedded_only(config, "backup")?;
    let items = store.backup(target)?;
    Ok(format!("backed up {items} records to {}", target.display()))
}

/// Replaces the embedded store with a backup: the backup is checked first (it opens, and its
/// layout is one this build reads), the current file is kept beside it, and the swap is a rename.
pub async fn restore(config: &Config, source: &Path) -> Result<String, CommandError> {
    if !source.is_file() {
        return Err(CommandError::Usage(format!("{} is not a file", source.display())));
    }
    // Fails while a server holds the store.
    drop(embedded_only(config, "restore")?);
    let staging = config.data_dir.join(format!("{}.restoring", RedbStore::FILE_NAME));
    let _ = std::fs::remove_file(&staging);
    std::fs::copy(source, &staging)
        .map_err(|e| CommandError::Failed(format!("cannot copy the backup: {e}")))?;
    let check = async {
        let store = RedbStore::open_file(&staging)?;
        let version = match store.get(keys::META, keys::SCHEMA).await? {
            Some(item) => {
                item.data.parse::<u64>().map_err(|_| StoreError::Corrupt("schema version".into()))?
            }
            None => return Err(StoreError::Invalid("the file is not a NexusAI Toolkit backup".into())),
        };
        if version > SCHEMA_VERSION {
            return Err(StoreError::Invalid(format!(
                "the backup has layout {version}; this build reads up to {SCHEMA_VERSION}"
            )));
        }
        Ok(())
    };
    if let Err(e) = check.await {
        let _ = std::fs::remove_file(&staging);
        return Err(CommandError::Failed(format!("{} cannot be restored: {e}", source.display())));
    }
    let live = config.data_dir.join(RedbStore::FILE_NAME);
    let mut kept = String::new();
    if live.exists() {
        let old = config.data_dir.join(format!(
            "{}.before-restore-{}",
            RedbStore::FILE_NAME,
            clock::now().millis()
        ));
        std::fs::rename(&live, &old)
            .map_err(|e| CommandError::Failed(format!("cannot move the current store aside: {e}")))?;
        kept = format!("; the previous store is kept as {}", old.display());
    }
    std::fs::rename(&staging, &live)
        .map_err(|e| CommandError::Failed(format!("cannot put the backup in place: {e}")))?;
    Ok(format!("restored {} into {}{kept}", source.display(), live.display()))
}

/// Loads the demo data into an empty store, or the scale data set.
pub async fn seed(config: &Config, scale: bool, customers: usize) -> Result<String, CommandError> {
    let (store, _) = match open_store(config).await {
        Err(StartupError::Store(_)) if config.store == StoreKind::Embedded => {
            return Err(CommandError::Locked(config.data_dir.display().to_string()));
        }
        other => other?,
    };
    let version = check_schema(&*store).await?;
    let repo = Repo::new(store.clone());
    if version < SCHEMA_VERSION {
        repo.migrate(version).await.map_err(|e| CommandError::Failed(e.to_string()))?;
        super::store::set_schema_version(&*store, SCHEMA_VERSION).await?;
    }
    let started = std::time::Instant::now();
    let summary = if scale {
        let catalog = Catalog::load(&config.catalog_dir, clock::now()).map_err(|errors| {
            CommandError::Failed(errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))
        })?;
        seed::seed_scale(&repo, &catalog, customers, &config.demo_password).await
    } else if repo.is_empty().await.map_err(|e| CommandError::Failed(e.to_string()))? {
        seed::seed_demo(&repo, &config.demo_password).await
    } else {
        return Ok("the store has data already: demo data not loaded".into());
    }
    .map_err(|e| CommandError::Failed(e.to_string()))?;
    Ok(format!(
        "loaded {} customers, {} environments, {} deployments into the {} store in {:.1} s",
        summary.customers,
        summary.environments,
        summary.deployments,
        store.kind(),
        started.elapsed().as_secs_f64()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn commands_parse() {
        assert_eq!(Command::parse(&[]), Ok(Command::Serve));
        assert_eq!(Command::parse(&args("serve")), Ok(Command::Serve));
        assert_eq!(Command::parse(&args("backup /tmp/x")), Ok(Command::Backup("/tmp/x".into())));
        assert_eq!(Command::parse(&args("restore b.redb")), Ok(Command::Restore("b.redb".into())));
        assert_eq!(Command::parse(&args("seed")), Ok(Command::Seed { scale: false, customers: 1000 }));
        assert_eq!(
            Command::parse(&args("seed --scale --customers 10")),
            Ok(Command::Seed { scale: true, customers: 10 })
        );
        assert!(Command::parse(&args("seed --customers 0")).is_err());
        assert!(Command::parse(&args("backup")).is_err());
        assert!(Command::parse(&args("explode")).is_err());
    }
}
