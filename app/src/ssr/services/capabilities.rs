//! The capability catalog: reading it, and an Executive's publishing of new versions (validated
//! like the shipped templates, stored in the artifact store, remembered in the store) and
//! deprecation (no new deployments; existing ones are flagged).

use std::sync::Arc;

use serde::Deserialize;

use crate::domain::{
    model::{Capability, CapabilityVersion},
    parameters::FieldError,
    permissions::Action,
    semver::Version,
    views::CapabilityDetail,
};

use super::super::{
    artifacts::{ArtifactError, ArtifactStore},
    audit::{AuditLog, ChangeError},
    auth::Actor,
    catalog::{
        CatalogVersion, INLINE_TEMPLATE_LIMIT, MAX_TEMPLATE_BYTES, SharedCatalog, parse_template,
        parse_version,
    },
    clock,
    error::ServiceError,
    publish_rules,
    repo::{CatalogRecord, Repo, RepoError},
};

/// `POST /api/v1/capabilities/{slug}/versions`.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVersion {
    /// Semantic version, above none of the existing ones necessarily (patch releases of older
    /// lines are allowed), but new.
    pub version: String,
    /// The CloudFormation template, YAML or JSON, with `Metadata.Nexus`.
    pub template: String,
}

#[derive(Clone)]
pub struct CapabilityService {
    catalog: SharedCatalog,
    repo: Repo,
    artifacts: Arc<dyn ArtifactStore>,
    audit: Arc<AuditLog>,
}

fn artifact_key(slug: &str, version: &str, json: bool) -> String {
    format!("catalog/{slug}/{version}.{}", if json { "json" } else { "yaml" })
}

fn is_json(template: &str) -> bool {
    template.trim_start().starts_with('{')
}

impl CapabilityService {
    pub fn new(
        catalog: SharedCatalog,
        repo: Repo,
        artifacts: Arc<dyn ArtifactStore>,
        audit: Arc<AuditLog>,
    ) -> Self {
        CapabilityService { catalog, repo, artifacts, audit }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, super::super::catalog::Catalog> {
        self.catalog.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn list(&self, actor: &Actor) -> Result<Vec<Capability>, ServiceError> {
        actor.require(Action::ViewCatalog)?;
        Ok(self.read().capabilities().cloned().collect())
    }

    pub fn get(&self, actor: &Actor, slug: &str) -> Result<CapabilityDetail, ServiceError> {
        actor.require(Action::ViewCatalog)?;
        let catalog = self.read();
        let entry = catalog.get(slug).ok_or(ServiceError::NotFound("capability"))?;
        Ok(CapabilityDetail {
            capability: entry.capability.clone(),
            releases: entry.versions.iter().map(|v| v.meta.clone()).collect(),
        })
    }

    /// Every capability with its versions (the catalog page, the deploy wizard).
    pub fn details(&self, actor: &Actor) -> Result<Vec<CapabilityDetail>, ServiceError> {
        actor.require(Action::ViewCatalog)?;
        let catalog = self.read();
        Ok(catalog
            .capabilities()
            .filter_map(|c| catalog.get(&c.slug))
            .map(|entry| CapabilityDetail {
                capability: entry.capability.clone(),
                releases: entry.versions.iter().map(|v| v.meta.clone()).collect(),
            })
            .collect())
    }

    /// Applies what the store remembers (published versions, deprecations) to the catalog the
    /// folder gave; a published template that no longer validates stops start-up, naming it.
    pub async fn load_published(&self) -> Result<usize, Vec<super::super::catalog::CatalogError>> {
        let fail = |file: String, reason: String| vec![super::super::catalog::CatalogError { file, reason }];
        let records = self.repo.catalog_records().await.map_err(|e| fail("store".into(), e.to_string()))?;
        let mut applied = 0;
        for r in records {
            if let Some(key) = &r.artifact_key {
                let v: Version = r
                    .version
                    .parse()
                    .map_err(|e: crate::domain::semver::VersionError| fail(key.clone(), e.to_string()))?;
                let known = self.read().version(&r.slug, &v).is_some();
                if !known {
                    let body = self.artifacts.get(key).await.map_err(|e| fail(key.clone(), e.to_string()))?;
                    let body =
                        String::from_utf8(body).map_err(|_| fail(key.clone(), "not UTF-8 text".into()))?;
                    let at = r.published_at.unwrap_or_else(clock::now);
                    let (meta, capability) =
                        parse_version(&r.slug, &r.version, &body, key.ends_with(".json"), key, at)?;
                    let version = CatalogVersion {
                        needs_url: body.len() > INLINE_TEMPLATE_LIMIT,
                        meta,
                        template_body: body,
                        source: key.into(),
                    };
                    let mut catalog = self.catalog.write().unwrap_or_else(|p| p.into_inner());
                    catalog.insert(capability, version).map_err(|e| fail(key.clone(), e))?;
                    applied += 1;
                }
            }
            if r.deprecated
                && let Ok(v) = r.version.parse::<Version>()
            {
                let mut catalog = self.catalog.write().unwrap_or_else(|p| p.into_inner());
                // A deprecation of a version the folder no longer ships is moot.
                let _ = catalog.set_deprecated(&r.slug, &v);
                applied += 1;
            }
        }
        Ok(applied)
    }

    pub async fn publish(
        &self,
        actor: &Actor,
        slug: &str,
        input: NewVersion,
    ) -> Result<CapabilityVersion, ServiceError> {
        actor.require(Action::ManageCatalog)?;
        // A published version runs in every customer's account: a recent second factor first.
        crate::ssr::auth::require_step_up(&self.repo, actor, clock::now()).await?;
        let version: Version =
            input.version.trim().parse().map_err(|e: crate::domain::semver::VersionError| {
                ServiceError::invalid("version", "invalid_version", e.to_string())
            })?;
        if input.template.len() > MAX_TEMPLATE_BYTES {
            return Err(ServiceError::invalid(
                "template",
                "template_too_large",
                "a template is at most 1,000,000 bytes",
            ));
        }
        let json = is_json(&input.template);
        let key = artifact_key(slug, &version.to_string(), json);
        let now = clock::now();
        let (meta, capability) =
            parse_version(slug, &version.to_string(), &input.template, json, "template", now).map_err(
                |errors| {
                    ServiceError::fields(
                        errors
                            .into_iter()
                            .map(|e| FieldError::new("template", "invalid_template", e.reason))
                            .collect(),
                    )
                },
            )?;
        // The policy rules (resource types, IAM grants and trust, the boundary), every
        // violation named; the template parsed above, so parsing again cannot fail.
        let template = parse_template(&input.template, json).map_err(|_| ServiceError::Internal)?;
        publish_rules::check(&template).map_err(|violations| {
            ServiceError::fields(
                violations
                    .iter()
                    .map(|v| FieldError::new("template", "policy_violation", v.to_string()))
                    .collect(),
            )
        })?;
        if self.read().version(slug, &version).is_some() {
            return Err(ServiceError::Conflict(format!("{slug} {version} exists already")));
        }
        // The template first, then the record that points at it: a crash in between leaves an
        // unreferenced file, never a record without its template.
        self.artifacts.put(&key, input.template.as_bytes()).await.map_err(|e| match e {
            ArtifactError::NotFound(_) | ArtifactError::Unavailable(_) => {
                tracing::error!(error = %e, "publishing a template failed");
                ServiceError::Unavailable
            }
        })?;
        let record = CatalogRecord {
            slug: slug.into(),
            version: version.to_string(),
            artifact_key: Some(key.clone()),
            published_at: Some(now),
            published_by: Some(actor.user.id.clone()),
            deprecated: false,
            rev: 0,
        };
        let mut event = actor.audit("catalog.publish", format!("capability/{slug}/{version}"), "success");
        event.details = serde_json::json!({
            "sha256": meta.template_sha256, "bytes": meta.template_bytes, "artifact": key, "strategy": meta.strategy,
        });
        // The published version and its audit event in one transaction.
        let saved = self.audit.with_change(event, now, |repo| {
            let record = &record;
            async move { repo.save_catalog_record(record).await }
        });
        saved.await.map_err(|e| match e {
            ChangeError::Change(RepoError::Conflict(_)) => {
                ServiceError::Conflict(format!("{slug} {version} exists already"))
            }
            e => e.into(),
        })?;
        {
            let mut catalog = self.catalog.write().unwrap_or_else(|p| p.into_inner());
            let entry = CatalogVersion {
                needs_url: input.template.len() > INLINE_TEMPLATE_LIMIT,
                meta: meta.clone(),
                template_body: input.template.clone(),
                source: key.clone().into(),
            };
            catalog.insert(capability, entry).map_err(ServiceError::Conflict)?;
        }
        Ok(meta)
    }

    pub async fn deprecate(
        &self,
        actor: &Actor,
        slug: &str,
        version: &str,
    ) -> Result<CapabilityVersion, ServiceError> {
        actor.require(Action::ManageCatalog)?;
        let v: Version = version.parse().map_err(|e: crate::domain::semver::VersionError| {
            ServiceError::invalid("version", "invalid_version", e.to_string())
        })?;
        if self.read().version(slug, &v).is_none() {
            return Err(ServiceError::NotFound("capability version"));
        }
        let mut record = self.repo.catalog_record(slug, &v.to_string()).await?.unwrap_or(CatalogRecord {
            slug: slug.into(),
            version: v.to_string(),
            artifact_key: None,
            published_at: None,
            published_by: None,
            deprecated: false,
            rev: 0,
        });
        let event = actor.audit("catalog.deprecate", format!("capability/{slug}/{v}"), "success");
        // The deprecation and its audit event in one transaction (deprecated already: the
        // event alone).
        let record_was_deprecated = std::mem::replace(&mut record.deprecated, true);
        let saved = self.audit.with_change(event, clock::now(), |repo| {
            let record = (!record_was_deprecated).then_some(&record);
            async move {
                match record {
                    Some(r) => repo.save_catalog_record(r).await,
                    None => Ok(()),
                }
            }
        });
        saved.await?;
        let mut catalog = self.catalog.write().unwrap_or_else(|p| p.into_inner());
        catalog.set_deprecated(slug, &v).map_err(|_| ServiceError::NotFound("capability version"))
    }
}
