//! Second factors of local accounts (issue 25), through the real router on both stores:
//! enrolment of an authenticator app with recovery codes, sign-in with each, replay refusal,
//! failures counted toward the lockout, step-up, and an Executive's reset.

mod common;
#[path = "common/soft_passkey.rs"]
mod soft_passkey;

use app::ssr::{auth::mfa, clock, error::ServiceError};
use axum::http::{Method, StatusCode};
use common::{DEMO_PASSWORD, TestApp};
use serde_json::{Value, json};

const EXEC: &str = "exec@demo.nexus";
const MANAGER: &str = "manager@demo.nexus";
const REP: &str = "rep@demo.nexus";

fn now_secs() -> u64 {
    (clock::now().millis() / 1000) as u64
}

async fn login(app: &TestApp, email: &str, otp: Option<&str>) -> common::Answer {
    let mut body = json!({"email": email, "password": DEMO_PASSWORD});
    if let Some(o) = otp {
        body["otp"] = json!(o);
    }
    app.call(Method::POST, "/api/v1/auth/login", None, Some(body)).await
}

/// Enrols `email`'s authenticator app; answers its secret and the recovery codes.
async fn enrol(app: &TestApp, email: &str) -> (Vec<u8>, Vec<String>) {
    let token = app.login(email).await;
    enrol_session(app, &token).await
}

/// Enrols an authenticator app in the session of `token`.
async fn enrol_session(app: &TestApp, token: &str) -> (Vec<u8>, Vec<String>) {
    let token = token.to_string();
    let start = app.call(Method::POST, "/api/v1/me/mfa/totp", Some(&token), Some(json!({}))).await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.text);
    assert_eq!(start.headers["cache-control"], "no-store");
    let secret = mfa::from_base32(start.body["secret"].as_str().unwrap()).unwrap();
    assert_eq!(secret.len(), 20);
    let url = start.body["otpauth_url"].as_str().unwrap();
    assert!(
        url.starts_with("otpauth://totp/") && url.contains(start.body["secret"].as_str().unwrap()),
        "{url}"
    );
    assert!(start.body["qr_svg"].as_str().unwrap().contains("<svg"), "a QR code drawn on the server");

    let confirm = |code: String| {
        let token = token.clone();
        async move {
            app.call(Method::POST, "/api/v1/me/mfa/totp/confirm", Some(&token), Some(json!({"code": code})))
                .await
        }
    };
    let wrong = confirm("000000".into()).await;
    assert_eq!(
        (wrong.status, wrong.body["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("code"))
    );
    let ok = confirm(mfa::totp_code(&secret, now_secs())).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let codes: Vec<String> =
        ok.body["codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    assert_eq!(codes.len(), 10);
    let status = app.get("/api/v1/me/mfa", &token).await;
    assert_eq!((&status.body["totp"], &status.body["recovery_codes_left"]), (&json!(true), &json!(10)));
    (secret, codes)
}

async fn sign_in_with_each_factor_once(app: TestApp) {
    let exec = app.login(EXEC).await;
    let none = app.get("/api/v1/me/mfa", &exec).await.body;
    assert_eq!(
        none,
        json!({"totp": false, "recovery_codes_left": 0, "passkeys": [], "passkeys_available": false}),
        "no public URL with a host name: no passkeys"
    );
    let (secret, codes) = enrol(&app, REP).await;

    // The password alone is no longer enough: 401 with a machine-readable code.
    let a = login(&app, REP, None).await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("mfa_required"))
    );
    // The confirming code's step is used: that code (and the one before) is refused.
    let used = mfa::totp_code(&secret, now_secs());
    assert_eq!(login(&app, REP, Some(&used)).await.status, StatusCode::UNAUTHORIZED, "no replay");
    // The next step's code (within the skew) signs in once.
    let next = mfa::totp_code(&secret, now_secs() + mfa::STEP_SECONDS);
    let a = login(&app, REP, Some(&next)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(login(&app, REP, Some(&next)).await.status, StatusCode::UNAUTHORIZED, "single use");
    // A recovery code, typed loosely, signs in once.
    let typed = codes[0].to_lowercase();
    assert_eq!(login(&app, REP, Some(&typed)).await.status, StatusCode::OK);
    assert_eq!(login(&app, REP, Some(&codes[0])).await.status, StatusCode::UNAUTHORIZED, "single use");
    let token = a.body["token"].as_str().unwrap();
    assert_eq!(app.get("/api/v1/me/mfa", token).await.body["recovery_codes_left"], 9);

    // Each use and each failure is audited; no code or secret is.
    let audit = app.get("/api/v1/audit?action=auth.mfa&limit=50", &exec).await;
    let factors: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "success")
        .map(|e| e["details"]["factor"].as_str().unwrap())
        .collect();
    assert!(factors.contains(&"totp") && factors.contains(&"recovery_code"), "{}", audit.text);
    let all = app.get("/api/v1/audit?target=user/rep@demo.nexus&limit=200", &exec).await.text;
    assert!(all.contains("mfa.totp.enrol") && all.contains("bad_second_factor"), "{all}");
    assert!(!all.contains(&next) && !all.contains(&codes[1]) && !all.contains(&mfa::base32(&secret)));
}

async fn wrong_codes_count_toward_the_lockout(app: TestApp) {
    let (secret, _) = enrol(&app, MANAGER).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(login(&app, MANAGER, Some("123456")).await.status);
    }
    assert_eq!(statuses[..4], [StatusCode::UNAUTHORIZED; 4]);
    assert_eq!(statuses[4], StatusCode::LOCKED, "the fifth failure locks, as for passwords");
    let right = mfa::totp_code(&secret, now_secs() + mfa::STEP_SECONDS);
    assert_eq!(login(&app, MANAGER, Some(&right)).await.status, StatusCode::LOCKED, "a lock is a lock");

    // The attempt that reaches the threshold locks even when its password was right and it only
    // lacked the code: reported as a lock (423, audited, the owner told), not as `mfa_required`.
    enrol(&app, EXEC).await;
    for _ in 0..4 {
        assert_eq!(login(&app, EXEC, Some("123456")).await.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(login(&app, EXEC, None).await.status, StatusCode::LOCKED);

    // Step-up codes count too: a stolen session cannot guess them at the request rate.
    let (secret, _) = enrol(&app, REP).await;
    let next = mfa::totp_code(&secret, now_secs() + mfa::STEP_SECONDS);
    let rep = login(&app, REP, Some(&next)).await.body["token"].as_str().unwrap().to_string();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let a =
            app.call(Method::POST, "/api/v1/auth/step-up", Some(&rep), Some(json!({"code": "123456"}))).await;
        statuses.push(a.status);
    }
    assert_eq!(statuses[..4], [StatusCode::BAD_REQUEST; 4]);
    assert_eq!(statuses[4], StatusCode::LOCKED);
    assert_eq!(login(&app, REP, Some("654321")).await.status, StatusCode::LOCKED, "the email is locked");
}

async fn step_up_and_an_executives_reset(app: TestApp) {
    let (secret, _) = enrol(&app, REP).await;
    let code = mfa::totp_code(&secret, now_secs() + mfa::STEP_SECONDS);
    let rep = login(&app, REP, Some(&code)).await.body["token"].as_str().unwrap().to_string();

    // Removing the app needs a factor used within the window: right after sign-in it is; ten
    // minutes later it is not, until a step-up.
    let client = app::ssr::auth::ClientInfo::default();
    let actor = app.state.auth.authenticate(&rep, &client, clock::now()).await.unwrap().actor;
    let later = app::domain::time::Timestamp::from_millis(clock::now().millis() + 10 * 60 * 1000);
    let window = app.state.config.mfa_step_up_ms();
    let stale = app.state.auth.renew_recovery_codes(&actor, later, window).await;
    assert!(matches!(stale, Err(ServiceError::MfaRequired)), "{stale:?}");
    let wrong =
        app.call(Method::POST, "/api/v1/auth/step-up", Some(&rep), Some(json!({"code": "999999"}))).await;
    assert_eq!(
        (wrong.status, wrong.body["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("code"))
    );
    let step = mfa::totp_code(&secret, (later.millis() / 1000) as u64);
    app.state.auth.step_up(&actor, &step, later).await.unwrap();
    let renewed = app.state.auth.renew_recovery_codes(&actor, later, window).await.unwrap();
    assert_eq!(renewed.codes.len(), 10);

    // A lost phone: only an Executive resets it; the user signs in with the password again, and
    // every session they had open ends (the phone may hold one).
    let manager = app.login(MANAGER).await;
    let rep_id = app.get("/api/v1/me", &rep).await.body["user"]["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/users/{rep_id}/mfa/reset");
    assert_eq!(app.call(Method::POST, &path, Some(&manager), None).await.status, StatusCode::FORBIDDEN);
    let exec = app.login(EXEC).await;
    let exec_id = app.get("/api/v1/me", &exec).await.body["user"]["id"].as_str().unwrap().to_string();
    let own = app.call(Method::POST, &format!("/api/v1/users/{exec_id}/mfa/reset"), Some(&exec), None).await;
    assert_eq!(
        own.status,
        StatusCode::FORBIDDEN,
        "one's own factor is removed with a current code, not reset"
    );
    assert_eq!(app.get("/api/v1/me", &rep).await.status, StatusCode::OK);
    assert_eq!(app.call(Method::POST, &path, Some(&exec), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/v1/me", &rep).await.status, StatusCode::UNAUTHORIZED, "signed out");
    assert_eq!(login(&app, REP, None).await.status, StatusCode::OK);
    let audit = app.get("/api/v1/audit?action=mfa.reset", &exec).await;
    assert_eq!(audit.body["items"][0]["target"], "user/rep@demo.nexus", "{}", audit.text);
    let bad = app.call(Method::POST, "/api/v1/users/nope/mfa/reset", Some(&exec), None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let _: Value = bad.body;
}

/// The policy (`NEXUS_MFA_REQUIRED_ROLES=executive`, the default): an Executive without a factor
/// signs in to enrolment and nothing else, until enrolled; other roles are not held back.
async fn a_required_role_reaches_only_enrolment_until_it_has_a_factor(app: TestApp) {
    let a = login(&app, EXEC, None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["mfa_enrolment_required"], true, "{}", a.text);
    let exec = a.body["token"].as_str().unwrap().to_string();
    let earlier = app.login(EXEC).await;

    let closed = app.get("/api/v1/customers", &exec).await;
    assert_eq!(
        (closed.status, closed.body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("mfa_enrolment_required")),
        "{}",
        closed.text
    );
    let page = app.call(Method::GET, "/approvals", Some(&exec), None).await;
    assert_eq!(
        (page.status, page.headers["location"].to_str().unwrap()),
        (StatusCode::SEE_OTHER, "/account"),
        "a page goes to enrolment"
    );
    let sfn = app.call(Method::POST, "/sfn/dashboard", Some(&exec), None).await;
    assert_eq!(sfn.status, StatusCode::FORBIDDEN);
    assert_eq!(sfn.body, json!("MfaEnrolmentRequired"), "the pages' error: {}", sfn.text);
    for open in ["/api/v1/me", "/api/v1/me/mfa"] {
        assert_eq!(app.get(open, &exec).await.status, StatusCode::OK, "{open}");
    }
    assert_eq!(app.call(Method::GET, "/account", Some(&exec), None).await.status, StatusCode::OK);
    let manager = login(&app, MANAGER, None).await;
    assert_eq!(manager.body["mfa_enrolment_required"], false);
    let manager = manager.body["token"].as_str().unwrap().to_string();
    assert_eq!(app.get("/api/v1/customers", &manager).await.status, StatusCode::OK, "not required");

    // Enrolled: everything opens, in this session and in one opened before.
    enrol_session(&app, &exec).await;
    assert_eq!(app.get("/api/v1/customers", &exec).await.status, StatusCode::OK);
    assert_eq!(app.get("/api/v1/customers", &earlier).await.status, StatusCode::OK);
    assert_eq!(app.call(Method::GET, "/approvals", Some(&exec), None).await.status, StatusCode::OK);

    // Removing the only factor closes it again (the removal itself needs the fresh factor the
    // enrolment just proved).
    let removed = app.call(Method::DELETE, "/api/v1/me/mfa/totp", Some(&exec), None).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.text);
    let closed = app.get("/api/v1/customers", &exec).await;
    assert_eq!(closed.body["error"]["code"], "mfa_enrolment_required", "{}", closed.text);
}

/// Makes the session of `token` have last proved a factor ten minutes ago (time passing).
async fn age_the_factor(app: &TestApp, token: &str) {
    let client = app::ssr::auth::ClientInfo::default();
    let actor = app.state.auth.authenticate(token, &client, clock::now()).await.unwrap().actor;
    let long_ago = app::domain::time::Timestamp::from_millis(clock::now().millis() - 10 * 60 * 1000);
    app.state.repo.update_session(&actor.session_id, |s| s.mfa_at = Some(long_ago)).await.unwrap();
}

/// Publishing needs a factor proved within `NEXUS_MFA_STEP_UP_MINUTES` from a user who has one
/// (or whose role requires one): 401 `mfa_required`, then a step-up, then it goes through.
async fn publishing_asks_for_a_recent_factor(app: TestApp) {
    let publish = |token: String| {
        let app = &app;
        async move {
            // Not a valid template: a 400 says the factor check was passed.
            let body = json!({"version": "9.0.0", "template": "Resources: {}\n"});
            app.call(Method::POST, "/api/v1/capabilities/lead-scoring/versions", Some(&token), Some(body))
                .await
        }
    };
    let exec = app.login(EXEC).await;
    assert_eq!(publish(exec.clone()).await.status, StatusCode::BAD_REQUEST, "no factor, none required");
    let (secret, _) = enrol_session(&app, &exec).await;
    assert_eq!(publish(exec.clone()).await.status, StatusCode::BAD_REQUEST, "just proved by enrolling");
    age_the_factor(&app, &exec).await;
    let a = publish(exec.clone()).await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("mfa_required")),
        "{}",
        a.text
    );
    let code = mfa::totp_code(&secret, now_secs() + mfa::STEP_SECONDS);
    let up = app.call(Method::POST, "/api/v1/auth/step-up", Some(&exec), Some(json!({"code": code}))).await;
    assert_eq!(up.status, StatusCode::NO_CONTENT, "{}", up.text);
    assert_eq!(publish(exec.clone()).await.status, StatusCode::BAD_REQUEST, "stepped up");
}

macro_rules! on_both_stores {
    ($($check:ident),* $(,)?) => {$(
        mod $check {
            #[tokio::test]
            async fn embedded_store() {
                super::$check(super::TestApp::embedded(super::POLICY).await).await;
            }

            #[tokio::test]
            async fn dynamodb_store() {
                let table = super::common::unique("nexus-mfa");
                super::$check(super::TestApp::dynamodb(&table, super::POLICY).await).await;
            }
        }
    )*};
}

/// `NEXUS_DEMO_TOTP_SECRET` (what `make run` sets): the demo Executive has an authenticator app
/// with that key; nobody else does.
async fn the_demo_executive_has_the_demo_authenticator_app(app: TestApp) {
    let secret = mfa::from_base32(DEMO_TOTP).unwrap();
    let a = login(&app, EXEC, None).await;
    assert_eq!(a.body["error"]["code"], "mfa_required", "{}", a.text);
    let a = login(&app, EXEC, Some(&mfa::totp_code(&secret, now_secs()))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(login(&app, "exec2@demo.nexus", None).await.status, StatusCode::OK);
    assert_eq!(login(&app, MANAGER, None).await.status, StatusCode::OK);
}

const DEMO_TOTP: &str = "NEXUSDEMOFAKETOTPSECRETKEY234567";

const ORIGIN: &str = "http://localhost:3000";

/// The first half of a passkey ceremony: its token and the browser's options.
async fn options(app: &TestApp, path: &str, token: Option<&str>, body: Value) -> (String, Value) {
    let a = app.call(Method::POST, path, token, Some(body)).await;
    assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.text);
    let parsed: Value = serde_json::from_str(a.body["options"].as_str().unwrap()).unwrap();
    (a.body["token"].as_str().unwrap().to_string(), parsed)
}

/// Passkeys (a public URL with a host name): added, then signing in alone (username-less),
/// stepping up, each ceremony once; a failed one counts toward the lockout.
async fn passkeys_sign_in_alone_and_step_up_once_per_ceremony(app: TestApp) {
    let rep = app.login(REP).await;
    let (token, opts) =
        options(&app, "/api/v1/me/mfa/passkeys/options", Some(&rep), json!({"name": " Laptop "})).await;
    let mut passkey = soft_passkey::SoftPasskey::new(ORIGIN);
    let credential = passkey.create(&opts);
    let answer = json!({"token": token, "credential": credential});
    let added = app.call(Method::POST, "/api/v1/me/mfa/passkeys", Some(&rep), Some(answer.clone())).await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.text);
    assert_eq!(added.body["codes"].as_array().unwrap().len(), 10, "the first factor brings recovery codes");
    let again = app.call(Method::POST, "/api/v1/me/mfa/passkeys", Some(&rep), Some(answer)).await;
    assert_eq!((again.status, again.body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("used")));
    let status = app.get("/api/v1/me/mfa", &rep).await.body;
    assert_eq!(
        (status["passkeys_available"].as_bool(), status["passkeys"][0]["name"].as_str()),
        (Some(true), Some("Laptop"))
    );
    let bad_name = app
        .call(Method::POST, "/api/v1/me/mfa/passkeys/options", Some(&rep), Some(json!({"name": ""})))
        .await;
    assert_eq!(bad_name.body["error"]["field"], "name");

    // The password alone no longer signs in; the passkey alone does (it names its user).
    assert_eq!(login(&app, REP, None).await.body["error"]["code"], "mfa_required");
    let (token, opts) = options(&app, "/api/v1/auth/passkey/options", None, json!({})).await;
    assert!(opts["allowCredentials"].as_array().is_none_or(|a| a.is_empty()), "no user named: {opts}");
    let answer = json!({"token": token, "credential": passkey.get(&opts)});
    let signed_in = app.call(Method::POST, "/api/v1/auth/passkey", None, Some(answer.clone())).await;
    assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.text);
    assert_eq!(signed_in.body["user"]["email"], REP);
    let replay = app.call(Method::POST, "/api/v1/auth/passkey", None, Some(answer)).await;
    assert_eq!(
        (replay.status, replay.body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("used"))
    );
    let session = signed_in.body["token"].as_str().unwrap().to_string();
    let used = app.get("/api/v1/me/mfa", &session).await.body;
    assert!(used["passkeys"][0]["last_used_at"].is_string(), "{used}");

    // Step-up: one's own passkey, not someone else's.
    let (token, opts) = options(&app, "/api/v1/auth/passkey/options", None, json!({})).await;
    let answer = json!({"token": token, "credential": passkey.get(&opts)});
    let up = app.call(Method::POST, "/api/v1/auth/step-up/passkey", Some(&rep), Some(answer)).await;
    assert_eq!(up.status, StatusCode::NO_CONTENT, "{}", up.text);
    let manager = app.login(MANAGER).await;
    let (token, opts) = options(&app, "/api/v1/auth/passkey/options", None, json!({})).await;
    let answer = json!({"token": token, "credential": passkey.get(&opts)});
    let theirs = app.call(Method::POST, "/api/v1/auth/step-up/passkey", Some(&manager), Some(answer)).await;
    assert_eq!(theirs.body["error"]["code"], "not_yours", "{}", theirs.text);

    // A forged answer (the signature changed) fails, and failures lock like wrong passwords.
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let (token, opts) = options(&app, "/api/v1/auth/passkey/options", None, json!({})).await;
        let mut credential = passkey.get(&opts);
        credential["response"]["signature"] = json!(credential["response"]["authenticatorData"]);
        let a = app
            .call(
                Method::POST,
                "/api/v1/auth/passkey",
                None,
                Some(json!({"token": token, "credential": credential})),
            )
            .await;
        statuses.push(a.status);
    }
    assert_eq!(statuses[..4], [StatusCode::BAD_REQUEST; 4]);
    assert_eq!(statuses[4], StatusCode::LOCKED);
    assert_eq!(login(&app, REP, None).await.status, StatusCode::LOCKED);

    // Audited: the enrolment and each use and failure, by factor; no key material.
    let exec = app.login(EXEC).await;
    let all = app.get("/api/v1/audit?target=user/rep@demo.nexus&limit=200", &exec).await.text;
    assert!(all.contains("mfa.passkey.enrol") && all.contains("\"factor\":\"passkey\""), "{all}");
    let events = app.get("/api/v1/audit?action=auth.mfa&limit=100", &exec).await.body;
    let failed = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "failure" && e["details"]["factor"] == "passkey")
        .count();
    assert_eq!(failed, 5, "{events}");
}

/// Removing passkeys needs a recent factor; the last one takes the recovery codes with it.
async fn removing_a_passkey_needs_a_recent_factor(app: TestApp) {
    let rep = app.login(REP).await;
    let (token, opts) =
        options(&app, "/api/v1/me/mfa/passkeys/options", Some(&rep), json!({"name": "Phone"})).await;
    let mut passkey = soft_passkey::SoftPasskey::new(ORIGIN);
    let answer = json!({"token": token, "credential": passkey.create(&opts)});
    assert_eq!(
        app.call(Method::POST, "/api/v1/me/mfa/passkeys", Some(&rep), Some(answer)).await.status,
        StatusCode::OK
    );
    let id = app.get("/api/v1/me/mfa", &rep).await.body["passkeys"][0]["id"].as_str().unwrap().to_string();
    age_the_factor(&app, &rep).await;
    let path = format!("/api/v1/me/mfa/passkeys/{id}");
    let stale = app.call(Method::DELETE, &path, Some(&rep), None).await;
    assert_eq!(stale.body["error"]["code"], "mfa_required", "{}", stale.text);
    let (token, opts) = options(&app, "/api/v1/auth/passkey/options", None, json!({})).await;
    let answer = json!({"token": token, "credential": passkey.get(&opts)});
    assert_eq!(
        app.call(Method::POST, "/api/v1/auth/step-up/passkey", Some(&rep), Some(answer)).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.call(Method::DELETE, &path, Some(&rep), None).await.status, StatusCode::NO_CONTENT);
    let status = app.get("/api/v1/me/mfa", &rep).await.body;
    assert_eq!(
        (status["passkeys"].as_array().unwrap().len(), &status["recovery_codes_left"]),
        (0, &json!(0))
    );
    assert_eq!(login(&app, REP, None).await.status, StatusCode::OK, "the password alone again");
}

/// These tests run with the requirement off (the test default: `none`), except the policy's.
const POLICY: &[(&str, &str)] = &[];

on_both_stores!(
    sign_in_with_each_factor_once,
    wrong_codes_count_toward_the_lockout,
    step_up_and_an_executives_reset,
    publishing_asks_for_a_recent_factor
);

mod policy {
    use super::*;

    const POLICY: &[(&str, &str)] = &[("NEXUS_MFA_REQUIRED_ROLES", "executive")];
    on_both_stores!(a_required_role_reaches_only_enrolment_until_it_has_a_factor);
}

mod passkeys {
    use super::*;

    const POLICY: &[(&str, &str)] = &[("NEXUS_PUBLIC_URL", ORIGIN)];
    on_both_stores!(
        passkeys_sign_in_alone_and_step_up_once_per_ceremony,
        removing_a_passkey_needs_a_recent_factor
    );
}

mod demo {
    use super::*;

    const POLICY: &[(&str, &str)] = &[("NEXUS_DEMO_TOTP_SECRET", DEMO_TOTP)];
    on_both_stores!(the_demo_executive_has_the_demo_authenticator_app);
}
