//! Demo data for `make run` and the end-to-end tests: users of every role, about 20 customers
//! with dev/staging/prod environments, and deployments in varied states with their history.
//!
//! Ids are fixed, so loading again after an interrupted run only fills in what is missing; users
//! are written last because "no users" is what marks a store as empty.

use std::collections::BTreeMap;

use crate::domain::{
    ids::Id,
    lifecycle::{DeploymentStatus, Drift, Health, OperationKind, OperationState},
    model::{
        Approver, Color, ConnectionStatus, Customer, Deployment, Environment, EnvironmentName, Operation,
        Role, User,
    },
    semver::Version,
    time::Timestamp,
};

use super::{
    clock,
    config::Secret,
    password::hash_password,
    repo::{DeploymentRecord, Repo, RepoError, UserRecord},
};

/// What was loaded.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SeedSummary {
    pub users: usize,
    pub customers: usize,
    pub environments: usize,
    pub deployments: usize,
}

/// Fixed ids: (kind, n) -> a valid ULID that never collides with generated ones' time part.
fn fixed_id(kind: u8, n: u64) -> Id {
    Id::from_parts(1_700_000_000_000 + kind as u64, n as u128)
}

/// A created-or-already-there write: conflicts mean an earlier run wrote it.
fn tolerate<T>(r: Result<T, RepoError>) -> Result<bool, RepoError> {
    match r {
        Ok(_) => Ok(true),
        Err(RepoError::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

const CUSTOMERS: [&str; 20] = [
    "Acme Logistics",
    "Bluewave Retail",
    "Cobalt Insurance",
    "Delta Health",
    "Evergreen Foods",
    "Fjord Shipping",
    "Granite Bank",
    "Helix Pharma",
    "Ionic Energy",
    "Juniper Media",
    "Kestrel Airlines",
    "Lumen Telecom",
    "Meridian Hotels",
    "Northwind Traders",
    "Orbit Mobility",
    "Pinnacle Realty",
    "Quartz Manufacturing",
    "Redwood Education",
    "Summit Outdoor",
    "Tidal Water",
];

/// The demo customers' time zones, in turn.
const DEMO_ZONES: [&str; 4] = ["Europe/Berlin", "America/New_York", "Europe/London", "Asia/Singapore"];

/// Capabilities the catalog ships (`catalog/`), with the versions the demo runs.
const CAPABILITIES: [(&str, &str, &str); 4] = [
    ("lead-scoring", "1.0.0", "1.1.0"),
    ("sales-forecasting", "1.0.0", "2.0.0"),
    ("document-intelligence", "1.0.0", "1.1.0"),
    ("customer-360", "1.0.0", "1.2.0"),
];

fn slug(name: &str) -> String {
    name.to_ascii_lowercase().split_whitespace().collect::<Vec<_>>().join("-")
}

pub async fn seed_demo(repo: &Repo, password: &Secret) -> Result<SeedSummary, RepoError> {
    let now = clock::now();
    let mut summary = SeedSummary::default();

    let exec = fixed_id(1, 1);
    let manager = fixed_id(1, 2);
    let manager2 = fixed_id(1, 3);
    let rep = fixed_id(1, 4);
    let rep2 = fixed_id(1, 5);
    let rep3 = fixed_id(1, 6);
    // A second Executive: an Executive's prod change waits for another (four eyes).
    let exec2 = fixed_id(1, 7);
    let users = [
        (exec, "exec@demo.nexus", "Erin Executive", Role::Executive, None),
        (exec2, "exec2@demo.nexus", "Ezra Executive", Role::Executive, None),
        (manager.clone(), "manager@demo.nexus", "Morgan Manager", Role::SalesManager, None),
        (manager2.clone(), "manager2@demo.nexus", "Mika Manager", Role::SalesManager, None),
        (rep.clone(), "rep@demo.nexus", "Riley Rep", Role::Rep, Some(manager.clone())),
        (rep2.clone(), "rep2@demo.nexus", "Robin Rep", Role::Rep, Some(manager.clone())),
        (rep3.clone(), "rep3@demo.nexus", "Rowan Rep", Role::Rep, Some(manager2)),
    ];
    let owners = [rep, rep2, rep3];

    for (i, name) in CUSTOMERS.iter().enumerate() {
        let owner = owners[i % owners.len()].clone();
        let customer = Customer {
            id: fixed_id(2, i as u64),
            name: name.to_string(),
            slug: slug(name),
            owner_id: owner.clone(),
            cost_center: format!("CC-{:04}", 1000 + i),
            time_zone: Some(DEMO_ZONES[i % DEMO_ZONES.len()].to_string()),
            // Every fourth customer allows prod changes only in its nights to Wednesday.
            windows: if i % 4 == 0 {
                vec!["Tue 22:00-02:00".parse().expect("a valid window")]
            } else {
                Vec::new()
            },
            created_at: now,
            updated_at: now,
            rev: 0,
        };
        if tolerate(repo.create_customer(customer.clone()).await)? {
            summary.customers += 1;
        }
        for (e, env) in EnvironmentName::ALL.into_iter().enumerate() {
            // Demo account ids: 12 digits, one account per customer and environment.
            let account_id = format!("{:012}", 210_000_000_000u64 + (i as u64) * 10 + e as u64);
            let environment = Environment {
                id: fixed_id(3, (i * 3 + e) as u64),
                customer_id: customer.id.clone(),
                name: env,
                role_arn: format!("arn:aws:iam::{account_id}:role/NexusDeploymentRole"),
                account_id,
                region: if i % 4 == 3 { "eu-west-1".into() } else { "us-east-1".into() },
                external_id: super::ids::new_external_id(),
                connection: ConnectionStatus::Unchecked,
                connection_checked_at: None,
                connection_error: None,
                role_version: None,
                rev: 0,
            };
            if tolerate(repo.create_environment(environment.clone()).await)? {
                summary.environments += 1;
            }
            for (c, (capability, old, new)) in CAPABILITIES.iter().enumerate() {
                // Not every customer runs everything everywhere.
                if (i + c) % 3 == 2 && env == EnvironmentName::Prod {
                    continue;
                }
                let n = i * 12 + e * 4 + c;
                let (status, health, drift) = match n % 17 {
                    3 => (DeploymentStatus::Failed, Health::Unknown, Drift::NotChecked),
                    7 => (DeploymentStatus::UpdateFailed, Health::Degraded, Drift::InSync),
                    11 => (DeploymentStatus::Active, Health::Degraded, Drift::Drifted),
                    13 => (DeploymentStatus::Pending, Health::Unknown, Drift::NotChecked),
                    16 => (DeploymentStatus::Missing, Health::Unknown, Drift::Unknown),
                    _ => (DeploymentStatus::Active, Health::Healthy, Drift::InSync),
                };
                let version: Version =
                    if n % 2 == 0 { new } else { old }.parse().expect("demo versions are valid");
                let deployment_id = fixed_id(4, n as u64);
                let operation_id = fixed_id(5, n as u64);
                let deployment = Deployment {
                    id: deployment_id.clone(),
                    customer_id: customer.id.clone(),
                    environment_id: environment.id.clone(),
                    environment: env,
                    capability: capability.to_string(),
                    version: version.clone(),
                    parameters: BTreeMap::from([("Environment".to_string(), env.as_str().to_string())]),
                    stack_name: format!("nexus-{capability}-{}-{}", customer.slug, env.as_str()),
                    stack_id: None,
                    status,
                    health,
                    drift,
                    outputs: BTreeMap::new(),
                    active_color: (*capability == "sales-forecasting").then_some(Color::Blue),
                    last_operation_id: Some(operation_id.clone()),
                    last_synced_at: Some(now),
                    previous_version: None,
                    previous_parameters: BTreeMap::new(),
                    created_at: now,
                    updated_at: now,
                    rev: 0,
                };
                let record = DeploymentRecord { deployment, owner_id: owner.clone() };
                if tolerate(repo.create_deployment(record).await)? {
                    summary.deployments += 1;
                }
                let (op_state, failure) = match status {
                    DeploymentStatus::Failed => {
                        (OperationState::RolledBack, Some("Bucket name already taken"))
                    }
                    DeploymentStatus::Pending => (OperationState::AwaitingApproval, None),
                    _ => (OperationState::Succeeded, None),
                };
                let operation = Operation {
                    id: operation_id,
                    deployment_id,
                    customer_id: customer.id.clone(),
                    environment: env,
                    capability: capability.to_string(),
                    kind: OperationKind::Deploy,
                    state: op_state,
                    requested_by: owner.clone(),
                    approved_by: (op_state != OperationState::AwaitingApproval).then(|| manager.clone()),
                    rejected_by: None,
                    target_version: Some(version),
                    parameters: BTreeMap::from([("Environment".to_string(), env.as_str().to_string())]),
                    auto_execute: false,
                    change_set_id: None,
                    changes: Vec::new(),
                    failure: failure.map(|reason| crate::domain::model::FailureCause {
                        logical_id: Some("DataBucket".into()),
                        resource_type: Some("AWS::S3::Bucket".into()),
                        reason: reason.into(),
                        stack_status: Some("ROLLBACK_COMPLETE".into()),
                    }),
                    error: None,
                    created_at: Timestamp::from_millis(now.millis() - 86_400_000),
                    started_at: None,
                    finished_at: None,
                    rev: 0,
                    approver: if env == EnvironmentName::Prod {
                        Approver::Executive
                    } else {
                        Approver::SalesManager
                    },
                    stack_name: format!("nexus-{capability}-{}-{}", customer.slug, env.as_str()),
                    ..Operation::blank()
                };
                tolerate(repo.create_operation(operation).await)?;
            }
        }
    }

    for (id, email, name, role, manager_id) in users {
        let record = UserRecord {
            user: User {
                id,
                email: email.into(),
                name: name.into(),
                role,
                manager_id,
                active: true,
                created_at: now,
                rev: 0,
            },
            password_hash: Some(hash_password(password.expose())),
            sessions_valid_after: None,
        };
        if tolerate(repo.create_user(record).await)? {
            summary.users += 1;
        }
    }
    Ok(summary)
}

/// The benchmark data set: `customers` customers (1,000 by default) x dev/staging/prod x the
/// catalog's first five capabilities (15,000 deployments), each with one to three operations,
/// owned in turn by the demo Reps. Loads the demo users first when the store is empty; ids are
/// fixed, so running it again adds only what is missing.
pub async fn seed_scale(
    repo: &Repo,
    catalog: &super::catalog::Catalog,
    customers: usize,
    password: &Secret,
) -> Result<SeedSummary, RepoError> {
    if repo.is_empty().await? {
        seed_demo(repo, password).await?;
    }
    let now = clock::now();
    let capabilities: Vec<(String, Version, Version)> = catalog
        .capabilities()
        .take(5)
        .map(|c| {
            let newest = c.versions.first().cloned().expect("a capability has versions");
            let oldest = c.versions.last().cloned().expect("a capability has versions");
            (c.slug.clone(), newest, oldest)
        })
        .collect();
    let owners = [fixed_id(1, 4), fixed_id(1, 5), fixed_id(1, 6)];
    let approver = fixed_id(1, 2);
    let mut summary = SeedSummary::default();
    for i in 0..customers {
        let owner = owners[i % owners.len()].clone();
        let name = format!("Scale Customer {i:05}");
        let customer = Customer {
            id: fixed_id(6, i as u64),
            slug: format!("scale-{i:05}"),
            name,
            owner_id: owner.clone(),
            cost_center: format!("CC-S{:05}", i),
            time_zone: None,
            windows: Vec::new(),
            created_at: now,
            updated_at: now,
            rev: 1,
        };
        let mut environments = Vec::new();
        let mut deployments = Vec::new();
        let mut operations = Vec::new();
        for (e, env) in EnvironmentName::ALL.into_iter().enumerate() {
            let account_id = format!("{:012}", 300_000_000_000u64 + (i as u64) * 10 + e as u64);
            let environment = Environment {
                id: fixed_id(7, (i * 3 + e) as u64),
                customer_id: customer.id.clone(),
                name: env,
                role_arn: format!("arn:aws:iam::{account_id}:role/NexusDeploymentRole"),
                account_id,
                region: "us-east-1".into(),
                external_id: super::ids::new_external_id(),
                connection: ConnectionStatus::Connected,
                connection_checked_at: Some(now),
                connection_error: None,
                role_version: None,
                rev: 1,
            };
            for (c, (capability, newest, oldest)) in capabilities.iter().enumerate() {
                let n = (i * 15 + e * 5 + c) as u64;
                let status = match n % 50 {
                    7 => DeploymentStatus::Failed,
                    13 | 29 => DeploymentStatus::UpdateFailed,
                    21 => DeploymentStatus::InProgress,
                    33 => DeploymentStatus::Pending,
                    41 => DeploymentStatus::Missing,
                    _ => DeploymentStatus::Active,
                };
                let version = if n.is_multiple_of(3) { oldest.clone() } else { newest.clone() };
                let deployment_id = fixed_id(8, n);
                let history = 1 + (n % 3);
                let mut last_op = None;
                for h in 0..history {
                    let op_id = fixed_id(9, n * 4 + h);
                    let last = h + 1 == history;
                    let state = match (last, status) {
                        (true, DeploymentStatus::Failed) => OperationState::RolledBack,
                        (true, DeploymentStatus::UpdateFailed) => OperationState::RolledBack,
                        // A change set waiting for confirmation: nothing for a worker to pick up.
                        (true, DeploymentStatus::InProgress) => OperationState::PreviewReady,
                        (true, DeploymentStatus::Pending) => OperationState::AwaitingApproval,
                        _ => OperationState::Succeeded,
                    };
                    operations.push(Operation {
                        id: op_id.clone(),
                        deployment_id: deployment_id.clone(),
                        customer_id: customer.id.clone(),
                        environment: env,
                        capability: capability.clone(),
                        kind: if h == 0 { OperationKind::Deploy } else { OperationKind::Upgrade },
                        state,
                        requested_by: owner.clone(),
                        approved_by: (state != OperationState::AwaitingApproval).then(|| approver.clone()),
                        rejected_by: None,
                        target_version: Some(version.clone()),
                        parameters: BTreeMap::from([("Environment".to_string(), env.as_str().to_string())]),
                        auto_execute: true,
                        change_set_id: None,
                        changes: Vec::new(),
                        failure: None,
                        error: None,
                        created_at: Timestamp::from_millis(now.millis() - 86_400_000 * (history - h) as i64),
                        started_at: None,
                        finished_at: None,
                        rev: 1,
                        approver: if env == EnvironmentName::Prod {
                            Approver::Executive
                        } else {
                            Approver::SalesManager
                        },
                        stack_name: format!("nexus-{capability}-{}-{}", customer.slug, env.as_str()),
                        ..Operation::blank()
                    });
                    last_op = Some(op_id);
                }
                deployments.push(DeploymentRecord {
                    deployment: Deployment {
                        id: deployment_id,
                        customer_id: customer.id.clone(),
                        environment_id: environment.id.clone(),
                        environment: env,
                        capability: capability.clone(),
                        version,
                        parameters: BTreeMap::from([("Environment".to_string(), env.as_str().to_string())]),
                        stack_name: format!("nexus-{capability}-{}-{}", customer.slug, env.as_str()),
                        stack_id: None,
                        status,
                        health: if status == DeploymentStatus::Active {
                            Health::Healthy
                        } else {
                            Health::Unknown
                        },
                        drift: Drift::InSync,
                        outputs: BTreeMap::new(),
                        active_color: None,
                        last_operation_id: last_op,
                        last_synced_at: Some(now),
                        previous_version: None,
                        previous_parameters: BTreeMap::new(),
                        created_at: now,
                        updated_at: now,
                        rev: 1,
                    },
                    owner_id: owner.clone(),
                });
            }
            environments.push(environment);
        }
        if repo.import_customer(&customer, &environments, &deployments, &operations).await? {
            summary.customers += 1;
            summary.environments += environments.len();
            summary.deployments += deployments.len();
        }
    }
    Ok(summary)
}
