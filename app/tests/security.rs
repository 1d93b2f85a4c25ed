//! The ways in that issue 20 closed, each tried from outside through the real router (and, for
//! the health client, real sockets): what used to get through is refused, with the field named.

mod common;

use std::time::Duration;

use app::{
    domain::{lifecycle::Health, outbound_url::OutboundPolicy},
    ssr::{http_client::HttpClient, lifecycle::engine::probe},
};
use axum::{
    body::Body,
    http::{Method, Request, StatusCode, header},
};
use common::{DEMO_PASSWORD, TestApp};
use serde_json::json;

const EXEC: &str = "exec@demo.nexus";
const MANAGER: &str = "manager@demo.nexus";
const REP: &str = "rep@demo.nexus";

/// A 12-digit account id no other call uses.
fn fresh_account() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{:012}", 700_000_000_000u64 + u64::from(std::process::id()) * 1000 + n)
}

/// A customer of the demo Rep with one dev environment; answers the environment's id.
async fn dev_environment(app: &TestApp, exec: &str) -> String {
    dev_environment_in(app, exec, &fresh_account()).await.0
}

/// As `dev_environment`, in the given account: the environment's id and the customer's.
async fn dev_environment_in(app: &TestApp, exec: &str, account: &str) -> (String, String) {
    let rep = app.user_id(REP).await;
    let slug = format!("s{}", common::unique("").replace('-', "").chars().rev().take(12).collect::<String>());
    let c = app
        .call(
            Method::POST,
            "/api/v1/customers",
            Some(exec),
            Some(json!({"name": format!("Customer {slug}"), "slug": slug, "owner_id": rep, "cost_center": "CC-1"})),
        )
        .await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.text);
    let e = app
        .call(
            Method::POST,
            &format!("/api/v1/customers/{}/environments", c.body["id"].as_str().unwrap()),
            Some(exec),
            Some(json!({"name": "dev", "account_id": account, "region": "eu-west-1",
                "role_arn": format!("arn:aws:iam::{account}:role/NexusDeploymentRole")})),
        )
        .await;
    assert_eq!(e.status, StatusCode::CREATED, "{}", e.text);
    (e.body["id"].as_str().unwrap().to_string(), c.body["id"].as_str().unwrap().to_string())
}

fn fields(a: &common::Answer) -> Vec<String> {
    a.body["error"]["details"]
        .as_array()
        .map(|d| d.iter().map(|e| e["field"].as_str().unwrap_or_default().to_string()).collect())
        .unwrap_or_else(|| vec![a.body["error"]["field"].as_str().unwrap_or_default().to_string()])
}

// §2: a health URL is the toolkit's own outbound request, so it may only name public addresses.
#[tokio::test]
async fn health_urls_inside_the_network_are_refused_naming_the_field() {
    let app = TestApp::embedded(&[]).await;
    let manager = app.login(MANAGER).await;
    let exec = app.login(EXEC).await;
    let env = dev_environment(&app, &exec).await;
    let deploy = |parameters: serde_json::Value| {
        let (app, manager, env) = (&app, &manager, &env);
        async move {
            let body = json!({"environment_id": env, "capability": "document-intelligence", "version": "1.1.0",
                "parameters": parameters});
            app.call(Method::POST, "/api/v1/deployments", Some(manager), Some(body)).await
        }
    };
    for url in [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://169.254.170.2/v2/credentials",
        "http://127.0.0.1:3000/health",
        "http://2130706433/",
        "http://127.1/",
        "http://[::ffff:169.254.169.254]/",
        "http://10.0.0.5/",
        "http://localhost/",
        "http://metadata.google.internal/",
    ] {
        let a = deploy(json!({"Environment": "dev", "HealthEndpoint": url})).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{url}: {}", a.text);
        assert_eq!(fields(&a), ["parameters.HealthEndpoint"], "{url}: {}", a.text);
    }
    // Beside another bad field, both are named in one answer.
    let a = deploy(json!({"Environment": "qa", "HealthEndpoint": "http://169.254.169.254/"})).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    let mut named = fields(&a);
    named.sort();
    assert_eq!(named, ["parameters.Environment", "parameters.HealthEndpoint"], "{}", a.text);
    // A public URL is taken.
    let a =
        deploy(json!({"Environment": "dev", "HealthEndpoint": "https://status.example.com/health"})).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
}

/// A server on loopback that answers 200 on `/ok` and redirects `/moved` to `/ok`.
async fn loopback_server() -> String {
    use axum::{Router, http::StatusCode as S, response::Redirect, routing::get};
    let app = Router::new()
        .route("/ok", get(|| async { S::OK }))
        .route("/moved", get(|| async { Redirect::temporary("/ok") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

// §2, at fetch time: the health client refuses what validation would, after DNS too, and never
// follows a redirect.
#[tokio::test]
async fn the_health_client_calls_public_addresses_only_and_follows_no_redirect() {
    let server = loopback_server().await;
    let port = server.rsplit(':').next().unwrap();
    let strict = HttpClient::public_only(OutboundPolicy::default()).unwrap();
    let wait = Duration::from_secs(2);
    // The same server is reachable by the general client, so the refusals below are the policy's.
    let general = HttpClient::new().unwrap();
    assert_eq!(general.status(&format!("{server}/ok"), wait).await, Ok(200));
    for url in [
        format!("{server}/ok"),
        format!("http://2130706433:{port}/ok"),
        format!("http://[::ffff:127.0.0.1]:{port}/ok"),
        format!("http://localhost:{port}/ok"),
    ] {
        let refused = strict.status(&url, wait).await;
        assert!(refused.as_ref().is_err_and(|e| e.contains("refused")), "{url}: {refused:?}");
        assert_eq!(probe(&strict, Some(&url)).await, Health::Degraded, "{url}");
    }
    // After DNS: `localhost` resolves (through /etc/hosts) only to loopback addresses, and the
    // resolver itself refuses them, whatever the URL check said.
    let mut resolver = app::ssr::http_client::Resolver::public_only(OutboundPolicy::default());
    let name: hyper_util::client::legacy::connect::dns::Name = "localhost".parse().unwrap();
    let resolved = tower::Service::call(&mut resolver, name).await;
    assert!(resolved.is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied));

    // With the test-only setting loopback is open, and a redirect is answered as it is.
    let tests = HttpClient::public_only(OutboundPolicy { allow_loopback: true }).unwrap();
    assert_eq!(tests.status(&format!("{server}/ok"), wait).await, Ok(200));
    assert_eq!(tests.status(&format!("{server}/moved"), wait).await, Ok(307));
    assert_eq!(probe(&tests, Some(&format!("{server}/moved"))).await, Health::Degraded);
}

/// Posts the sign-in form as a browser without JavaScript does.
async fn sign_in_form(app: &TestApp, next: &str) -> common::Answer {
    let body = app::url::query(&[("email", EXEC), ("password", DEMO_PASSWORD), ("next", next)]);
    let req = Request::post("/sfn/sign-in")
        .header(header::HOST, "localhost")
        .header(header::ORIGIN, "http://localhost")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "text/html")
        .body(Body::from(body))
        .unwrap();
    app.send(req).await
}

// §4: after sign-in only a path on this site is followed.
#[tokio::test]
async fn sign_in_never_redirects_off_site_nor_breaks_on_control_characters() {
    let app = TestApp::embedded(&[]).await;
    for (next, expected) in [
        ("/approvals", "/approvals"),
        ("/\t/evil.example", "/"),
        ("/\r\nSet-Cookie: planted=1", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
    ] {
        let a = sign_in_form(&app, next).await;
        assert!(a.status.is_redirection(), "{next:?}: {} {}", a.status, a.text);
        assert_eq!(a.headers[header::LOCATION], expected, "{next:?}");
        assert!(
            a.headers.get_all(header::SET_COOKIE).iter().all(|c| !c.to_str().unwrap().contains("planted")),
            "{next:?}"
        );
    }
}

// §1: publishing checks every template against the policy rules, not only its structure; each
// violation is named (resource, rule, why) and nothing is stored.
#[tokio::test]
async fn publishing_refuses_templates_that_break_the_policy_naming_each_violation() {
    let app = TestApp::embedded(&[]).await;
    let exec = app.login(EXEC).await;
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../catalog/document-intelligence/1.1.1.yaml"
    ))
    .unwrap();
    let publish = |version: &'static str, template: String| {
        let app = &app;
        let exec = exec.clone();
        async move {
            app.call(
                Method::POST,
                "/api/v1/capabilities/document-intelligence/versions",
                Some(&exec),
                Some(json!({"version": version, "template": template})),
            )
            .await
        }
    };
    // The released 1.1.0 (a role without the boundary), plus an outside trust and a Lambda.
    let bad = shipped
        .replace(
            "      PermissionsBoundary: !Sub \"arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/NexusPermissionsBoundary\"\n",
            "",
        )
        .replace(
            "            Principal:\n              Service: lambda.amazonaws.com\n",
            "            Principal:\n              AWS: arn:aws:iam::999999999999:root\n",
        )
        .replace(
            "Outputs:\n",
            "  Backdoor:\n    Type: AWS::Lambda::Function\n    Properties: {}\nOutputs:\n",
        );
    assert_ne!(bad, shipped);
    let a = publish("1.1.2", bad).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert_eq!(a.body["error"]["field"], "template", "{}", a.text);
    let messages: Vec<String> = a.body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert_eq!(d["code"], "policy_violation", "{d}");
            d["message"].as_str().unwrap().to_string()
        })
        .collect();
    for (resource, rule) in [
        ("WorkerRole", "roles_carry_the_boundary"),
        ("WorkerRole", "roles_trust_services_or_this_account"),
        ("Backdoor", "resource_types_on_the_allow_list"),
    ] {
        assert!(
            messages.iter().any(|m| m.starts_with(&format!("{resource}: ")) && m.contains(rule)),
            "{resource} {rule}: {messages:?}"
        );
    }
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(!app.dir.join("artifacts/catalog/document-intelligence/1.1.2.yaml").exists());
    let caps = app.get("/api/v1/capabilities/document-intelligence", &exec).await;
    assert!(!caps.text.contains("1.1.2"), "{}", caps.text);
    // The shipped patch, renumbered, meets every rule.
    let a = publish("1.1.2", shipped).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
}

/// Deploys customer-360 (its `CrmApiToken` is `NoEcho`) as the Executive; answers the
/// operation's id and the deployment's.
async fn deploy_with_secret(app: &TestApp, exec: &str, env: &str, token: &str) -> (String, String) {
    let a = app
        .call(
            Method::POST,
            "/api/v1/deployments",
            Some(exec),
            Some(json!({"environment_id": env, "capability": "customer-360", "version": "1.2.0",
                "parameters": {"Environment": "dev", "CrmApiToken": token}})),
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    (a.body["id"].as_str().unwrap().to_string(), a.body["deployment_id"].as_str().unwrap().to_string())
}

fn id(s: &str) -> app::domain::ids::Id {
    app::domain::ids::Id::parse(s).unwrap()
}

// §3: sealed values never leave, are never taken from a client, and open only where sealed.
#[tokio::test]
async fn sealed_values_never_leave_nor_come_back_in() {
    let app = TestApp::embedded(&[]).await;
    let exec = app.login(EXEC).await;
    let env_a = dev_environment(&app, &exec).await;
    let env_b = dev_environment(&app, &exec).await;
    let (op, deployment) = deploy_with_secret(&app, &exec, &env_a, "fake-crm-token-0123456789").await;
    let stored = app.state.repo.operation(&id(&op)).await.unwrap().parameters["CrmApiToken"].clone();
    assert!(stored.starts_with("enc:v2:"), "{stored}");

    // A rollback target holding a sealed value (as after an upgrade) is masked in reads too.
    let mut r = app.state.repo.deployment(&id(&deployment)).await.unwrap();
    let before = r.clone();
    r.deployment.previous_version = Some("1.0.0".parse().unwrap());
    r.deployment.previous_parameters =
        [("CrmApiToken".to_string(), stored.clone()), ("Environment".to_string(), "dev".to_string())].into();
    app.state.repo.update_deployment(&before, r).await.unwrap();
    for path in [format!("/api/v1/deployments/{deployment}"), format!("/api/v1/operations/{op}")] {
        let a = app.get(&path, &exec).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.text);
        assert!(!a.text.contains("enc:"), "{path}: {}", a.text);
    }
    let d = app.get(&format!("/api/v1/deployments/{deployment}"), &exec).await;
    assert_eq!(d.body["previous_parameters"]["CrmApiToken"], "****", "{}", d.text);
    assert_eq!(d.body["previous_parameters"]["Environment"], "dev", "{}", d.text);
    let list = app.get("/api/v1/deployments?capability=customer-360&limit=200", &exec).await;
    assert!(!list.text.contains("enc:"));

    // Replaying the ciphertext into another customer's deployment is refused, naming the field.
    for replay in [stored.clone(), "enc:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_string()] {
        let a = app
            .call(
                Method::POST,
                "/api/v1/deployments",
                Some(&exec),
                Some(json!({"environment_id": env_b, "capability": "customer-360", "version": "1.2.0",
                    "parameters": {"Environment": "dev", "CrmApiToken": replay}})),
            )
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
        assert_eq!(a.body["error"]["field"], "parameters.CrmApiToken", "{}", a.text);
        assert_eq!(a.body["error"]["details"][0]["code"], "sealed_value", "{}", a.text);
    }
    // "Keep the current value" is the mask, and only where there is a current value.
    let a = app
        .call(
            Method::POST,
            "/api/v1/deployments",
            Some(&exec),
            Some(json!({"environment_id": env_b, "capability": "customer-360", "version": "1.2.0",
                "parameters": {"Environment": "dev", "CrmApiToken": "****"}})),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert_eq!(a.body["error"]["details"][0]["code"], "nothing_to_keep", "{}", a.text);

    // Even planted in the store, a value sealed for one deployment does not open in another.
    let (op_b, deployment_b) = deploy_with_secret(&app, &exec, &env_b, "fake-other-token-0123456789").await;
    let key = std::fs::read(app.dir.join("parameter.key")).unwrap();
    let cipher = app::ssr::lifecycle::secrets::ParameterCipher::new(&key);
    let planted = [("CrmApiToken".to_string(), stored)].into();
    assert!(cipher.open_all(&planted, &id(&deployment_b)).is_err());
    assert_eq!(
        cipher.open_all(&planted, &id(&deployment)).unwrap()["CrmApiToken"],
        "fake-crm-token-0123456789"
    );
    let own = app.state.repo.operation(&id(&op_b)).await.unwrap().parameters;
    assert_eq!(
        cipher.open_all(&own, &id(&deployment_b)).unwrap()["CrmApiToken"],
        "fake-other-token-0123456789"
    );
}

// §3, stored data: values sealed before layout 5 (unbound) are re-sealed bound to their
// deployment at start-up.
#[tokio::test]
async fn unbound_sealed_values_are_migrated_at_start_up() {
    let app = TestApp::embedded(&[]).await;
    let exec = app.login(EXEC).await;
    let env = dev_environment(&app, &exec).await;
    let (op, deployment) = deploy_with_secret(&app, &exec, &env, "fake-crm-token-0123456789").await;
    let key = std::fs::read(app.dir.join("parameter.key")).unwrap();
    let cipher = app::ssr::lifecycle::secrets::ParameterCipher::new(&key);
    // As the build before layout 5 stored it.
    let mut o = app.state.repo.operation(&id(&op)).await.unwrap();
    o.parameters.insert("CrmApiToken".into(), cipher.seal_v1_for_tests("fake-crm-token-0123456789"));
    app.state.repo.save_operation(&mut o).await.unwrap();
    let mut r = app.state.repo.deployment(&id(&deployment)).await.unwrap();
    let before = r.clone();
    r.deployment
        .parameters
        .insert("CrmApiToken".into(), cipher.seal_v1_for_tests("fake-crm-token-0123456789"));
    app.state.repo.update_deployment(&before, r).await.unwrap();
    app::ssr::store::set_schema_version(&**app.state.repo.store(), 4).await.unwrap();
    let config = app.state.config.clone();
    let dir = app.keep();

    let app = TestApp::build((*config).clone(), dir).await;
    let o = app.state.repo.operation(&id(&op)).await.unwrap();
    let d = app.state.repo.deployment(&id(&deployment)).await.unwrap().deployment;
    for values in [&o.parameters, &d.parameters] {
        assert!(values["CrmApiToken"].starts_with("enc:v2:"), "{values:?}");
        assert_eq!(
            cipher.open_all(values, &id(&deployment)).unwrap()["CrmApiToken"],
            "fake-crm-token-0123456789"
        );
    }
    let schema = app.state.repo.store().get(app::ssr::store::keys::META, app::ssr::store::keys::SCHEMA).await;
    assert_eq!(schema.unwrap().unwrap().data, app::ssr::store::SCHEMA_VERSION.to_string());
}

// §5: the server makes each environment's external id; only Executives read it, never the log.
#[tokio::test]
async fn external_ids_are_the_servers_and_only_executives_read_them() {
    let app = TestApp::embedded(&[]).await;
    let exec = app.login(EXEC).await;
    let manager = app.login(MANAGER).await;
    let rep = app.login(REP).await;
    let account = fresh_account();
    let (env, customer) = dev_environment_in(&app, &exec, &account).await;
    let environments = app.get(&format!("/api/v1/customers/{customer}/environments"), &exec).await;
    let external_id = environments.body["items"][0]["external_id"].as_str().unwrap().to_string();
    assert!(
        external_id.len() >= 32 && external_id.chars().all(|c| c.is_ascii_alphanumeric()),
        "{external_id}"
    );

    // An Executive who sends one is told which field; the others are refused before the body.
    let path = format!("/api/v1/customers/{customer}/environments");
    let body = json!({"name": "prod", "account_id": account, "region": "eu-west-1",
        "role_arn": format!("arn:aws:iam::{account}:role/NexusDeploymentRole"), "external_id": "mine-0123456789"});
    let a = app.call(Method::POST, &path, Some(&exec), Some(body.clone())).await;
    assert_eq!(
        (a.status, a.body["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("external_id")),
        "{}",
        a.text
    );
    let patch = json!({"rev": 1, "external_id": "mine-0123456789"});
    let a = app.call(Method::PATCH, &format!("{path}/dev"), Some(&exec), Some(patch.clone())).await;
    assert_eq!(
        (a.status, a.body["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("external_id")),
        "{}",
        a.text
    );
    for token in [&manager, &rep] {
        for (method, path, body) in [
            (Method::POST, path.clone(), body.clone()),
            (Method::POST, path.clone(), json!({"garbage": true})),
            (Method::PATCH, format!("{path}/dev"), patch.clone()),
        ] {
            let a = app.call(method, &path, Some(token), Some(body)).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}: {}", a.text);
        }
    }

    // Reads: the Executive sees it; the customer's Rep and Sales Manager never do.
    let customer_path = format!("/api/v1/customers/{customer}");
    assert!(app.get(&customer_path, &exec).await.text.contains(&external_id));
    for token in [&manager, &rep] {
        for path in [customer_path.clone(), format!("{customer_path}/environments")] {
            let a = app.get(&path, token).await;
            assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.text);
            assert!(!a.text.contains(&external_id) && !a.text.contains("external_id"), "{path}: {}", a.text);
        }
        let page = app.get_as_browser(&format!("/customers/{customer}"), token).await;
        assert!(!page.text.contains(&external_id), "the customer page");
    }

    // Rotation: an Executive's explicit action; the environment must be connected again.
    let rotate = format!("/api/v1/environments/{env}/external-id");
    for token in [&manager, &rep] {
        assert_eq!(
            app.call(Method::POST, &rotate, Some(token), Some(json!({}))).await.status,
            StatusCode::FORBIDDEN
        );
    }
    let a = app.call(Method::POST, &rotate, Some(&exec), Some(json!({}))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let rotated = a.body["external_id"].as_str().unwrap().to_string();
    assert!(rotated.len() >= 32 && rotated != external_id);
    assert_eq!(a.body["connection"], "unchecked");

    // The audit log has the changes, never an external id.
    let log = app.get("/api/v1/audit?action=environment.&limit=200", &exec).await;
    assert!(log.text.contains("environment.rotate_external_id"), "{}", log.text);
    assert!(!log.text.contains(&external_id) && !log.text.contains(&rotated), "{}", log.text);
}

// §5: an (account, role) pair belongs to one customer.
#[tokio::test]
async fn an_account_and_role_belong_to_one_customer() {
    let app = TestApp::embedded(&[]).await;
    let exec = app.login(EXEC).await;
    let account = fresh_account();
    let (_, first) = dev_environment_in(&app, &exec, &account).await;
    let role = format!("arn:aws:iam::{account}:role/NexusDeploymentRole");
    // The same customer's other environment may share it.
    let a = app
        .call(
            Method::POST,
            &format!("/api/v1/customers/{first}/environments"),
            Some(&exec),
            Some(json!({"name": "prod", "account_id": account, "region": "eu-west-1", "role_arn": role})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    // Another customer may not, neither when created nor by a change.
    let other_account = fresh_account();
    let (_, second) = dev_environment_in(&app, &exec, &other_account).await;
    let a = app
        .call(
            Method::POST,
            &format!("/api/v1/customers/{second}/environments"),
            Some(&exec),
            Some(json!({"name": "prod", "account_id": account, "region": "eu-west-1", "role_arn": role})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.text);
    assert!(a.body["error"]["message"].as_str().unwrap().contains(&account), "{}", a.text);
    let a = app
        .call(
            Method::PATCH,
            &format!("/api/v1/customers/{second}/environments/dev"),
            Some(&exec),
            Some(json!({"rev": 1, "account_id": account, "role_arn": role})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.text);
    // Another role in that account is another pair.
    let a = app
        .call(
            Method::POST,
            &format!("/api/v1/customers/{second}/environments"),
            Some(&exec),
            Some(json!({"name": "prod", "account_id": account, "region": "eu-west-1",
                "role_arn": format!("arn:aws:iam::{account}:role/NexusDeploymentRoleB")})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
}

// §5: checking production's connection assumes the prod role: Executives only.
#[tokio::test]
async fn only_executives_check_a_production_connection() {
    let app = TestApp::embedded(&[]).await;
    let exec = app.login(EXEC).await;
    let manager = app.login(MANAGER).await;
    let account = fresh_account();
    let (_, customer) = dev_environment_in(&app, &exec, &account).await;
    let a = app
        .call(
            Method::POST,
            &format!("/api/v1/customers/{customer}/environments"),
            Some(&exec),
            Some(json!({"name": "prod", "account_id": account, "region": "eu-west-1",
                "role_arn": format!("arn:aws:iam::{account}:role/NexusDeploymentRole")})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let prod = a.body["id"].as_str().unwrap();
    let a = app
        .call(Method::POST, &format!("/api/v1/environments/{prod}/connect"), Some(&manager), Some(json!({})))
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    assert!(a.text.contains("only an Executive"), "{}", a.text);
}

/// A state-changing sign-in carrying `origin`, to a server at `host`.
async fn login_from(app: &TestApp, host: &str, origin: &str) -> StatusCode {
    let req = Request::post("/api/v1/auth/login")
        .header(header::HOST, host)
        .header(header::ORIGIN, origin)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"email": REP, "password": DEMO_PASSWORD}).to_string()))
        .unwrap();
    app.send(req).await.status
}

// §7: the Origin check compares the whole origin exactly.
#[tokio::test]
async fn the_origin_must_match_exactly() {
    let app = TestApp::embedded(&[]).await;
    assert_eq!(login_from(&app, "localhost:3000", "http://localhost:3000").await, StatusCode::OK);
    for other in
        ["https://localhost:3000", "http://localhost:3000/", "http://localhost", "http://localhost:3001"]
    {
        assert_eq!(login_from(&app, "localhost:3000", other).await, StatusCode::FORBIDDEN, "{other}");
    }
    let public = TestApp::embedded(&[("NEXUS_PUBLIC_URL", "https://nexus.example.com")]).await;
    assert_eq!(login_from(&public, "internal:3000", "https://nexus.example.com").await, StatusCode::OK);
    for other in ["http://nexus.example.com", "https://nexus.example.com/", "https://nexus.example.com:8443"]
    {
        assert_eq!(login_from(&public, "internal:3000", other).await, StatusCode::FORBIDDEN, "{other}");
    }
}

// §7: outside one's scope, a deploy is answered exactly as for an environment that does not exist.
#[tokio::test]
async fn a_deploy_outside_ones_scope_reads_as_an_unknown_environment() {
    let app = TestApp::embedded(&[]).await;
    let exec = app.login(EXEC).await;
    // A customer of another Rep than the demo Rep.
    let users = app.get("/api/v1/users?limit=200", &exec).await;
    let other_rep = users.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["role"] == "rep" && u["email"] != REP)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let slug = format!("o{}", common::unique("").replace('-', "").chars().rev().take(12).collect::<String>());
    let c = app
        .call(
            Method::POST,
            "/api/v1/customers",
            Some(&exec),
            Some(json!({"name": format!("Other {slug}"), "slug": slug, "owner_id": other_rep, "cost_center": "CC-1"})),
        )
        .await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.text);
    let account = fresh_account();
    let e = app
        .call(
            Method::POST,
            &format!("/api/v1/customers/{}/environments", c.body["id"].as_str().unwrap()),
            Some(&exec),
            Some(json!({"name": "dev", "account_id": account, "region": "eu-west-1",
                "role_arn": format!("arn:aws:iam::{account}:role/NexusDeploymentRole")})),
        )
        .await;
    assert_eq!(e.status, StatusCode::CREATED, "{}", e.text);
    let rep = app.login(REP).await;
    let deploy = |env: String| {
        let app = &app;
        let rep = rep.clone();
        async move {
            app.call(
                Method::POST,
                "/api/v1/deployments",
                Some(&rep),
                Some(json!({"environment_id": env, "capability": "lead-scoring", "version": "1.0.0",
                    "parameters": {"Environment": "dev"}})),
            )
            .await
        }
    };
    let hidden = deploy(e.body["id"].as_str().unwrap().to_string()).await;
    let unknown = deploy("01JDQ8ZK3M6V2C0N7R5T9W4XYA".to_string()).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND, "{}", hidden.text);
    assert_eq!((hidden.status, hidden.text.clone()), (unknown.status, unknown.text.clone()));
}

// §7: notifications follow the customer's current owner: a reassigned customer's events leave
// its previous Rep's feed.
#[tokio::test]
async fn notifications_follow_the_customers_current_owner() {
    let app = TestApp::embedded(&[]).await;
    let exec = app.login(EXEC).await;
    let rep = app.login(REP).await;
    let (env, customer) = dev_environment_in(&app, &exec, &fresh_account()).await;
    let a = app
        .call(
            Method::POST,
            "/api/v1/deployments",
            Some(&exec),
            Some(json!({"environment_id": env, "capability": "lead-scoring", "version": "1.0.0",
                "parameters": {"Environment": "dev"}})),
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    let feed = |token: String| {
        let app = &app;
        async move {
            let a = app.get_as_browser("/sfn/notifications", &token).await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.text);
            a.body
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["customer_id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert!(feed(rep.clone()).await.contains(&customer), "the owner sees the request");

    let rep2_id = app.user_id("rep2@demo.nexus").await;
    let rev = app.get(&format!("/api/v1/customers/{customer}"), &exec).await.body["rev"].clone();
    let a = app
        .call(
            Method::PATCH,
            &format!("/api/v1/customers/{customer}"),
            Some(&exec),
            Some(json!({"rev": rev, "owner_id": rep2_id})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert!(!feed(rep.clone()).await.contains(&customer), "the previous owner no longer sees it");
}
