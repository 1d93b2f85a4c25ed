//! Single sign-on with Cognito, against the tokens an emulator's cognito-idp really issues
//! (RS256, its JWKS): exchange for a session, the role from `cognito:groups`, and every refusal.
//!
//! The emulator is moto (`NEXUS_TEST_COGNITO_ENDPOINT`, started by the test command beside
//! ministack): ministack 1.5.33 issues RS256 tokens but serves a JWKS whose modulus is not valid
//! base64url (193 characters), so no verifier can check its signatures.

mod common;

use app::{
    domain::time::Timestamp,
    ssr::{
        auth::cognito::{CognitoConfig, CognitoError, CognitoVerifier},
        clock,
        http_client::HttpClient,
    },
};
use axum::{
    body::Bytes,
    http::{Method, Request, StatusCode},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use common::{TestApp, unique};
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use serde_json::{Value, json};

/// One cognito-idp call on the emulator (its JSON protocol).
fn endpoint() -> String {
    std::env::var("NEXUS_TEST_COGNITO_ENDPOINT").expect(
        "NEXUS_TEST_COGNITO_ENDPOINT is not set: run these tests through `make test`, which starts moto for cognito-idp",
    )
}

async fn idp(target: &str, body: Value) -> Value {
    let endpoint = endpoint();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = Request::post(endpoint)
        .header("x-amz-target", format!("AWSCognitoIdentityProviderService.{target}"))
        .header("content-type", "application/x-amz-json-1.1")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAFAKETESTKEY/20261128/us-east-1/cognito-idp/aws4_request, SignedHeaders=host, Signature=fake",
        )
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = client.request(req).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert!(status.is_success(), "{target}: {status} {}", String::from_utf8_lossy(&bytes));
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

struct Pool {
    id: String,
    client: String,
}

async fn pool() -> Pool {
    let id = idp("CreateUserPool", json!({"PoolName": unique("nexus")})).await["UserPool"]["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let client = idp(
        "CreateUserPoolClient",
        json!({"UserPoolId": id, "ClientName": "web", "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH"],
               "ReadAttributes": ["email", "email_verified"]}),
    )
    .await["UserPoolClient"]["ClientId"]
        .as_str()
        .unwrap()
        .to_string();
    for group in ["executive", "sales_manager", "rep", "contractors"] {
        idp("CreateGroup", json!({"UserPoolId": id, "GroupName": group})).await;
    }
    Pool { id, client }
}

const PASSWORD: &str = "Fake-Sso-Password-1!";

async fn user(pool: &Pool, email: &str, group: &str) {
    user_with(pool, email, group, true).await
}

async fn user_with(pool: &Pool, email: &str, group: &str, verified: bool) {
    idp(
        "AdminCreateUser",
        json!({"UserPoolId": pool.id, "Username": email, "MessageAction": "SUPPRESS",
               "UserAttributes": [{"Name": "email", "Value": email},
                                  {"Name": "email_verified", "Value": verified.to_string()}]}),
    )
    .await;
    idp(
        "AdminSetUserPassword",
        json!({"UserPoolId": pool.id, "Username": email, "Password": PASSWORD, "Permanent": true}),
    )
    .await;
    idp("AdminAddUserToGroup", json!({"UserPoolId": pool.id, "Username": email, "GroupName": group})).await;
}

/// (ID token, access token) as the pool issues them.
async fn tokens(client: &str, email: &str) -> (String, String) {
    let r = idp(
        "InitiateAuth",
        json!({"ClientId": client, "AuthFlow": "USER_PASSWORD_AUTH", "AuthParameters": {"USERNAME": email, "PASSWORD": PASSWORD}}),
    )
    .await;
    let result = &r["AuthenticationResult"];
    (result["IdToken"].as_str().unwrap().into(), result["AccessToken"].as_str().unwrap().into())
}

fn config(pool: &Pool) -> CognitoConfig {
    let endpoint = endpoint();
    CognitoConfig {
        region: "us-east-1".into(),
        user_pool_id: pool.id.clone(),
        client_id: pool.client.clone(),
        jwks_url: Some(format!("{endpoint}/{}/.well-known/jwks.json", pool.id)),
        issuer: None,
        hosted_ui: None,
    }
}

#[tokio::test]
async fn cognito_tokens_open_sessions_with_the_role_their_groups_give() {
    let pool = pool().await;
    user(&pool, "sso.manager@demo.nexus", "sales_manager").await;
    user(&pool, "contractor@demo.nexus", "contractors").await;
    // Someone who set another person's email on their own account: never verified.
    user_with(&pool, "manager@demo.nexus", "rep", false).await;
    let c = config(&pool);
    let jwks = c.jwks_url.clone().unwrap();
    let app = TestApp::embedded(&[
        ("NEXUS_COGNITO_USER_POOL_ID", &pool.id),
        ("NEXUS_COGNITO_CLIENT_ID", &pool.client),
        ("NEXUS_COGNITO_REGION", "us-east-1"),
        ("NEXUS_COGNITO_JWKS_URL", &jwks),
    ])
    .await;
    let sso = |token: String| {
        let app = &app;
        async move { app.call(Method::POST, "/api/v1/auth/cognito", None, Some(json!({"token": token}))).await }
    };

    let (id_token, access_token) = tokens(&pool.client, "sso.manager@demo.nexus").await;
    let a = sso(id_token.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["user"]["role"], "sales_manager");
    assert_eq!(a.body["user"]["email"], "sso.manager@demo.nexus");
    let session = a.body["token"].as_str().unwrap().to_string();
    assert_eq!(app.get("/api/v1/me", &session).await.body["user"]["role"], "sales_manager");
    // The access token (no email in it) works once the subject is linked, and finds the same user.
    let b = sso(access_token).await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.text);
    assert_eq!(b.body["user"]["id"], a.body["user"]["id"]);

    // A changed group changes the role at the next sign-in.
    idp(
        "AdminRemoveUserFromGroup",
        json!({"UserPoolId": pool.id, "Username": "sso.manager@demo.nexus", "GroupName": "sales_manager"}),
    )
    .await;
    idp(
        "AdminAddUserToGroup",
        json!({"UserPoolId": pool.id, "Username": "sso.manager@demo.nexus", "GroupName": "executive"}),
    )
    .await;
    let (promoted, _) = tokens(&pool.client, "sso.manager@demo.nexus").await;
    assert_eq!(sso(promoted).await.body["user"]["role"], "executive");

    // Groups that grant no role: 403, audited.
    let (contractor, _) = tokens(&pool.client, "contractor@demo.nexus").await;
    assert_eq!(sso(contractor).await.status, StatusCode::FORBIDDEN);
    // An unverified email never matches an account (here: the demo Sales Manager's).
    let (impostor, impostor_access) = tokens(&pool.client, "manager@demo.nexus").await;
    let a = sso(impostor).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    assert_eq!(sso(impostor_access).await.status, StatusCode::FORBIDDEN);
    let manager = app.login("manager@demo.nexus").await;
    assert_eq!(app.get("/api/v1/me", &manager).await.body["user"]["role"], "sales_manager", "untouched");

    // A tampered token: 401.
    let parts: Vec<&str> = id_token.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["cognito:groups"] = json!(["executive"]);
    let forged = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(claims.to_string()), parts[2]);
    assert_eq!(sso(forged).await.status, StatusCode::UNAUTHORIZED);

    let exec = app.login("exec@demo.nexus").await;
    let log = app.get("/api/v1/audit?action=auth.sso&limit=20", &exec).await;
    let outcomes: Vec<&str> =
        log.body["items"].as_array().unwrap().iter().map(|e| e["outcome"].as_str().unwrap()).collect();
    assert_eq!(
        outcomes,
        ["failure", "denied", "denied", "denied", "success", "success", "success"],
        "{}",
        log.text
    );

    // Wrong passwords lock the email, not the way in through SSO: a lock cannot be used to keep
    // someone out for ever.
    let wrong = json!({"email": "sso.manager@demo.nexus", "password": "Wrong-Password-1!"});
    let mut last = StatusCode::OK;
    for _ in 0..6 {
        last = app.call(Method::POST, "/api/v1/auth/login", None, Some(wrong.clone())).await.status;
    }
    assert_eq!(last, StatusCode::LOCKED);
    let (again, _) = tokens(&pool.client, "sso.manager@demo.nexus").await;
    let a = sso(again).await;
    assert_eq!(a.status, StatusCode::OK, "a locked email still signs in through SSO: {}", a.text);
}

#[tokio::test]
async fn the_verifier_refuses_what_it_must() {
    let pool = pool().await;
    user(&pool, "someone@demo.nexus", "rep").await;
    let verifier = CognitoVerifier::new(config(&pool), HttpClient::new().unwrap());
    let (id_token, access_token) = tokens(&pool.client, "someone@demo.nexus").await;
    let now = clock::now();

    let identity = verifier.verify(&id_token, now).await.unwrap();
    assert_eq!(identity.token_use, "id");
    assert_eq!(identity.groups, ["rep"]);
    assert_eq!(verifier.verify(&access_token, now).await.unwrap().token_use, "access");

    // Expired: the same token an hour and a bit later.
    let later = Timestamp::from_millis(now.millis() + 2 * 3600 * 1000);
    assert_eq!(verifier.verify(&id_token, later).await, Err(CognitoError::Expired));

    // Another app client of the same pool.
    let other_client = idp("CreateUserPoolClient", json!({"UserPoolId": pool.id, "ClientName": "other", "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH"]}))
        .await["UserPoolClient"]["ClientId"]
        .as_str()
        .unwrap()
        .to_string();
    let (foreign, foreign_access) = tokens(&other_client, "someone@demo.nexus").await;
    assert_eq!(verifier.verify(&foreign, now).await, Err(CognitoError::WrongAudience));
    assert_eq!(verifier.verify(&foreign_access, now).await, Err(CognitoError::WrongAudience));

    // Another pool: its issuer differs.
    let other_pool = self::pool().await;
    user(&other_pool, "someone@demo.nexus", "rep").await;
    let (from_other_pool, _) = tokens(&other_pool.client, "someone@demo.nexus").await;
    // (Signed by the same emulator key, so only the issuer and audience tell it apart.)
    assert!(matches!(
        verifier.verify(&from_other_pool, now).await,
        Err(CognitoError::WrongIssuer | CognitoError::WrongAudience)
    ));

    // Headers: HS256 (a key-confusion attempt), and a key id the pool does not have.
    let parts: Vec<&str> = id_token.split('.').collect();
    let hs = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","kid":"ministack-key-1"}"#);
    assert_eq!(
        verifier.verify(&format!("{hs}.{}.{}", parts[1], parts[2]), now).await,
        Err(CognitoError::WrongAlgorithm)
    );
    let none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
    assert!(verifier.verify(&format!("{none}.{}.", parts[1]), now).await.is_err());
    let unknown = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"rotated-away"}"#);
    assert_eq!(
        verifier.verify(&format!("{unknown}.{}.{}", parts[1], parts[2]), now).await,
        Err(CognitoError::UnknownKey)
    );
}
