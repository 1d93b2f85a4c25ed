//! Single sign-on through Cognito: a token from the pool (REST) or the hosted UI's code flow
//! opens a session with the role the token's groups give. A locked password sign-in does not
//! lock single sign-on (a lock someone else causes by guessing cannot keep a user out).

use crate::{
    domain::{
        model::{Role, User},
        time::Timestamp,
    },
    ssr::{
        audit::NewEvent,
        error::ServiceError,
        ids::new_id,
        repo::{RepoError, Session},
    },
};

use super::{AuthService, ClientInfo, LoginResponse, SESSION_MAX_MS, cognito, hosted_ui, normalize_email};

impl AuthService {
    /// Opens a session for a Cognito ID or access token. The user is matched by email (or
    /// username), created on first sign-in, and takes the role their `cognito:groups` give: the
    /// pool, not this app, decides who is what.
    pub async fn login_cognito(
        &self,
        token: &str,
        client: &ClientInfo,
        now: Timestamp,
    ) -> Result<LoginResponse, ServiceError> {
        self.cognito_session(token, None, client, now).await
    }

    /// The hosted UI's callback: trades the authorization code for the user's ID token (with the
    /// flow's PKCE verifier) and opens a session for it when the token carries the flow's nonce.
    pub async fn login_hosted_ui(
        &self,
        code: &str,
        flow: &hosted_ui::Flow,
        redirect_uri: &str,
        client: &ClientInfo,
        now: Timestamp,
    ) -> Result<LoginResponse, ServiceError> {
        let verifier = self.cognito_verifier()?;
        let id_token = match verifier.exchange_code(code, &flow.verifier, redirect_uri).await {
            Ok(t) => t,
            Err(cognito::CognitoError::HostedUi(e)) => {
                tracing::error!(error = %e, "cannot reach the Cognito hosted UI's token endpoint");
                return Err(ServiceError::Unavailable);
            }
            Err(e) => {
                tracing::info!(reason = %e, "the hosted UI refused an authorization code");
                self.record(self.sso_failure(client, &e), now).await;
                return Err(ServiceError::Unauthenticated);
            }
        };
        self.cognito_session(&id_token, Some(&flow.nonce), client, now).await
    }

    pub(super) fn cognito_verifier(&self) -> Result<&cognito::CognitoVerifier, ServiceError> {
        self.cognito
            .as_ref()
            .ok_or_else(|| ServiceError::Forbidden("single sign-on is not configured".into()))
    }

    pub(super) fn sso_failure(&self, client: &ClientInfo, e: &cognito::CognitoError) -> NewEvent {
        NewEvent {
            source_ip: client.ip_string(),
            action: "auth.sso".into(),
            target: "cognito".into(),
            outcome: "failure".into(),
            details: serde_json::json!({"reason": e.to_string()}),
            ..Default::default()
        }
    }

    pub(super) async fn cognito_session(
        &self,
        token: &str,
        expected_nonce: Option<&str>,
        client: &ClientInfo,
        now: Timestamp,
    ) -> Result<LoginResponse, ServiceError> {
        let verifier = self.cognito_verifier()?;
        let verified = verifier.verify(token, now).await.and_then(|identity| match expected_nonce {
            Some(n) if !identity.nonce.as_deref().is_some_and(|got| hosted_ui::same(got, n)) => {
                Err(cognito::CognitoError::WrongNonce)
            }
            _ => Ok(identity),
        });
        let identity = match verified {
            Ok(identity) => identity,
            Err(cognito::CognitoError::Jwks(e)) => {
                tracing::error!(error = %e, "cannot verify Cognito tokens");
                return Err(ServiceError::Unavailable);
            }
            Err(e) => {
                tracing::info!(reason = %e, "refused a Cognito token");
                self.record(self.sso_failure(client, &e), now).await;
                return Err(ServiceError::Unauthenticated);
            }
        };
        let deny = |reason: &str, email: Option<String>| NewEvent {
            actor_email: email,
            source_ip: client.ip_string(),
            action: "auth.sso".into(),
            target: format!("cognito/{}", identity.subject),
            outcome: "denied".into(),
            details: serde_json::json!({"reason": reason, "groups": identity.groups}),
            ..Default::default()
        };
        let Some(role) = identity.role() else {
            self.record(deny("no role group", identity.email.clone()), now).await;
            return Err(ServiceError::Forbidden("your Cognito groups grant no role in the toolkit".into()));
        };
        // The Cognito subject is the identity once linked; the first sign-in links it through a
        // verified email (never an unverified one, which the user could have set themselves).
        let record = match self.repo.cognito_link(&identity.subject).await? {
            Some(id) => match self.repo.user(&id).await {
                Ok(r) => r,
                Err(RepoError::NotFound) => return Err(ServiceError::Unauthenticated),
                Err(e) => return Err(e.into()),
            },
            None => {
                let email = identity.email.as_deref().map(normalize_email).filter(|e| e.contains('@'));
                let Some(email) = email.filter(|_| identity.email_verified) else {
                    self.record(deny("no verified email", identity.email.clone()), now).await;
                    return Err(ServiceError::Forbidden(
                        "sign in with a Cognito ID token that carries a verified email address".into(),
                    ));
                };
                let record = match self.repo.user_by_email(&email).await? {
                    Some(r) => r,
                    None => {
                        let record = crate::ssr::repo::UserRecord {
                            user: User {
                                id: new_id(),
                                email: email.clone(),
                                name: identity.username.clone().unwrap_or_else(|| email.clone()),
                                role,
                                manager_id: None,
                                active: true,
                                created_at: now,
                                rev: 0,
                            },
                            // Signs in through the pool only.
                            password_hash: None,
                            sessions_valid_after: None,
                        };
                        let user = self.repo.create_user(record).await?;
                        self.repo.user(&user.id).await?
                    }
                };
                match self.repo.link_cognito(&identity.subject, &record.user.id).await {
                    Ok(()) | Err(RepoError::Conflict(_)) => {}
                    Err(e) => return Err(e.into()),
                }
                record
            }
        };
        if !record.user.active {
            return Err(ServiceError::Unauthenticated);
        }
        let email = record.user.email.clone();
        let user = if record.user.role != role {
            // The pool decides roles for SSO users.
            let mut after = record.clone();
            after.user.role = role;
            if role != Role::Rep {
                after.user.manager_id = None;
            }
            self.repo.update_user(&record, after).await?
        } else {
            record.user
        };
        let session = Session {
            id: new_id(),
            user_id: user.id.clone(),
            created_at: now,
            expires_at: Timestamp::from_millis(now.millis() + SESSION_MAX_MS),
            revoked_at: None,
            method: "cognito".into(),
            must_enrol: false,
            // The user pool enforces its own second factor.
            mfa_at: None,
        };
        self.repo.create_session(&session).await?;
        let (token, claims) = self.signer.issue(user.id.as_str(), session.id.as_str(), now);
        let event = NewEvent {
            actor_id: Some(user.id.clone()),
            actor_email: Some(email.clone()),
            actor_role: Some(role),
            source_ip: client.ip_string(),
            action: "auth.sso".into(),
            target: format!("user/{email}"),
            outcome: "success".into(),
            details: serde_json::json!({"session": session.id, "groups": identity.groups, "token_use": identity.token_use}),
            ..Default::default()
        };
        self.record(event, now).await;
        Ok(LoginResponse { token, expires_at: claims.expires_at(), user, mfa_enrolment_required: false })
    }
}
