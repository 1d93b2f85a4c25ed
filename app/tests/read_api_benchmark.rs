//! The read API benchmark (not a timed test: it asserts nothing about speed). With the scale
//! data set (1,000 customers x 3 environments x 5 capabilities = 15,000 deployments, with
//! operations) it measures p50/p95/p99 of `GET /deployments?customer=…` and
//! `GET /fleet/summary` at 1, 10 and 100 concurrent clients on each store, over HTTP on
//! loopback (so time spent queueing in the server counts, as a client sees it), and prints a
//! table. Clients and server share the machine's cores.
//!
//! Run: `make bench` (starts the AWS emulator for the DynamoDB run).

mod common;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use app::ssr::{catalog::Catalog, clock, seed::seed_scale};
use axum::{
    body::Bytes,
    http::{Request, StatusCode, header},
};
use common::{TestApp, unique};
use http_body_util::{BodyExt, Empty};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};

const CUSTOMERS: usize = 1000;
const REQUESTS_PER_CASE: usize = 3000;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>;

async fn run_case(
    base: &str,
    token: &str,
    paths: Arc<Vec<String>>,
    clients: usize,
) -> (Vec<Duration>, Duration) {
    let per_client = REQUESTS_PER_CASE / clients;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        // One connection per client (keep-alive), like a browser or an API script.
        let client: HttpClient = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(1).build_http();
        let token = token.to_string();
        let paths = paths.clone();
        let base = base.to_string();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_client);
            for i in 0..per_client {
                let path = &paths[(c * per_client + i) % paths.len()];
                let req = Request::get(format!("{base}{path}"))
                    .header(header::AUTHORIZATION, format!("Bearer {token}"))
                    .body(Empty::new())
                    .unwrap();
                let t = Instant::now();
                let response = client.request(req).await.unwrap();
                let status = response.status();
                let _ = response.into_body().collect().await.unwrap();
                latencies.push(t.elapsed());
                assert_eq!(status, StatusCode::OK, "{path}");
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let wall = started.elapsed();
    all.sort();
    (all, wall)
}

async fn benchmark(app: TestApp) {
    let kind = app.state.repo.store().kind();
    let catalog = Catalog::load(&app.state.config.catalog_dir, clock::now()).unwrap();
    let t = Instant::now();
    let summary =
        seed_scale(&app.state.repo, &catalog, CUSTOMERS, &app.state.config.demo_password).await.unwrap();
    println!("{kind}: loaded {summary:?} in {:.1} s", t.elapsed().as_secs_f64());

    let token = app.login("exec@demo.nexus").await;
    let fleet = app.get("/api/v1/fleet/summary", &token).await;
    let total = fleet.body["total"].as_i64().unwrap();
    println!("{kind}: fleet total {total} deployments");
    assert!(total >= (CUSTOMERS * 15) as i64, "{}", fleet.text);

    // Every scale customer, from the API's own pages.
    let mut customers = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => "/api/v1/customers?limit=200".to_string(),
            Some(c) => format!("/api/v1/customers?limit=200&cursor={c}"),
        };
        let page = app.get(&path, &token).await.body;
        customers
            .extend(page["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let by_customer: Vec<String> =
        customers.iter().map(|c| format!("/api/v1/deployments?customer={c}")).collect();
    let endpoints = [
        ("GET /deployments?customer=…", Arc::new(by_customer)),
        ("GET /fleet/summary", Arc::new(vec!["/api/v1/fleet/summary".to_string()])),
    ];

    // The real server on a loopback port.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let service = app::ssr::http::router(app.state.clone())
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });

    let before = app.state.repo.store().calls();
    let _ = app.get("/api/v1/fleet/summary", &token).await;
    let after = app.state.repo.store().calls();
    println!(
        "{kind}: one fleet summary request = {} get + {} query store calls (no deployment is read)",
        after.get - before.get,
        after.query - before.query
    );

    println!("\n| store | endpoint | clients | requests | p50 ms | p95 ms | p99 ms | req/s |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, paths) in &endpoints {
        // Warm-up: caches, connection pools.
        run_case(&base, &token, paths.clone(), 10).await;
        for clients in [1, 10, 100] {
            let (lat, wall) = run_case(&base, &token, paths.clone(), clients).await;
            println!(
                "| {kind} | {name} | {clients} | {} | {:.2} | {:.2} | {:.2} | {:.0} |",
                lat.len(),
                percentile(&lat, 0.50),
                percentile(&lat, 0.95),
                percentile(&lat, 0.99),
                lat.len() as f64 / wall.as_secs_f64()
            );
        }
    }
    let calls = app.state.repo.store().calls();
    println!("\n{kind}: store calls over the run: {calls:?}");
    assert_eq!(calls.scan, 0);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark: run with `make bench`"]
async fn embedded_store() {
    benchmark(TestApp::embedded(&[]).await).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark: run with `make bench`"]
async fn dynamodb_store() {
    benchmark(TestApp::dynamodb(&unique("nexus-bench"), &[]).await).await;
}

/// Where one request's time goes (in process, one client): auth, the service call, the JSON.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark: run with `make bench`"]
async fn embedded_cost_breakdown() {
    use app::ssr::{auth::ClientInfo, services::deployments::DeploymentFilter};
    let app = TestApp::embedded(&[]).await;
    let catalog = Catalog::load(&app.state.config.catalog_dir, clock::now()).unwrap();
    seed_scale(&app.state.repo, &catalog, 200, &app.state.config.demo_password).await.unwrap();
    let token = app.login("exec@demo.nexus").await;
    let customers = app.get("/api/v1/customers?limit=200", &token).await.body;
    let ids: Vec<app::domain::ids::Id> = customers["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| app::domain::ids::Id::parse(c["id"].as_str().unwrap()).unwrap())
        .collect();
    let n = 5000;
    let client = ClientInfo::default();
    let t = Instant::now();
    let mut actor = None;
    for _ in 0..n {
        actor = Some(app.state.auth.authenticate(&token, &client, clock::now()).await.unwrap().actor);
    }
    let auth_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let actor = actor.unwrap();
    let t = Instant::now();
    let mut last = None;
    for i in 0..n {
        let filter = DeploymentFilter { customer: Some(ids[i % ids.len()].clone()), ..Default::default() };
        last = Some(app.state.deployments.list(&actor, &filter, 50, None).await.unwrap());
    }
    let service_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let page = last.unwrap();
    let t = Instant::now();
    for i in 0..n {
        app.state.repo.deployments_by_customer(&ids[i % ids.len()], None, 50, None).await.unwrap();
    }
    let repo_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let t = Instant::now();
    for i in 0..n {
        let q = app::ssr::store::Query::index(
            app::ssr::store::keys::GSI1,
            app::ssr::store::keys::customer(ids[i % ids.len()].as_str()),
        )
        .limit(50);
        app.state.repo.store().query(q).await.unwrap();
    }
    let store_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let t = Instant::now();
    for i in 0..n {
        app.state.repo.customer(&ids[i % ids.len()]).await.unwrap();
    }
    let get_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!(
        "of which: store query {store_us:.1} µs, repo (query + records) {repo_us:.1} µs, customer get {get_us:.1} µs"
    );
    let t = Instant::now();
    let mut bytes = 0;
    for _ in 0..n {
        bytes = serde_json::to_vec(&page).unwrap().len();
    }
    let json_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!(
        "per request: authenticate {auth_us:.1} µs, deployments service {service_us:.1} µs, JSON {json_us:.1} µs ({bytes} bytes)"
    );
}
