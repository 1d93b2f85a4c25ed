//! The capability catalog: versioned CloudFormation templates from `catalog/` (one folder per
//! capability, one file per version), parsed and validated at start-up. A malformed template
//! stops start-up with the file and every reason.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::domain::{
    model::{Capability, CapabilityVersion, DataClassification, Strategy},
    parameters::ParameterSchema,
    semver::Version,
    time::Timestamp,
};

/// CloudFormation takes template bodies up to this size inline; larger ones go by S3 URL.
pub const INLINE_TEMPLATE_LIMIT: usize = 51_200;
/// CloudFormation's limit for templates passed by URL.
pub const MAX_TEMPLATE_BYTES: usize = 1_000_000;

/// Resource types that hold data: deleting the stack must not delete them unless the version
/// says `RetainData: false`.
const DATA_RESOURCES: [&str; 8] = [
    "AWS::S3::Bucket",
    "AWS::DynamoDB::Table",
    "AWS::DynamoDB::GlobalTable",
    "AWS::RDS::DBInstance",
    "AWS::RDS::DBCluster",
    "AWS::EFS::FileSystem",
    "AWS::OpenSearchService::Domain",
    "AWS::Kinesis::Stream",
];

/// One problem with one catalog file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogError {
    pub file: String,
    pub reason: String,
}

impl std::fmt::Display for CatalogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file, self.reason)
    }
}

/// One released version with its template.
#[derive(Clone, Debug)]
pub struct CatalogVersion {
    pub meta: CapabilityVersion,
    pub template_body: String,
    /// Over [`INLINE_TEMPLATE_LIMIT`]: passed to CloudFormation by URL from the artifacts bucket.
    pub needs_url: bool,
    pub source: PathBuf,
}

#[derive(Clone, Debug)]
pub struct CatalogEntry {
    pub capability: Capability,
    /// Newest first.
    pub versions: Vec<CatalogVersion>,
}

/// The newest version that takes new deployments: not deprecated, not a pre-release.
fn latest(versions: &[CatalogVersion]) -> Option<Version> {
    versions
        .iter()
        .find(|v| !v.meta.deprecated && !v.meta.version.is_prerelease())
        .map(|v| v.meta.version.clone())
}

/// The catalog the services share; publishing and deprecating change it while it is read.
pub type SharedCatalog = std::sync::Arc<std::sync::RwLock<Catalog>>;

#[derive(Clone, Debug, Default)]
pub struct Catalog {
    entries: BTreeMap<String, CatalogEntry>,
    /// Bumped by every change, so answers derived from the catalog can tell they are stale.
    revision: u64,
}

fn valid_slug(s: &str) -> bool {
    let b = s.as_bytes();
    (2..=63).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && !s.ends_with('-')
}

/// Converts a YAML template to JSON, turning CloudFormation's short-form tags into their long
/// form (`!Ref X` -> `{"Ref": "X"}`, `!GetAtt A.B` -> `{"Fn::GetAtt": ["A", "B"]}`, `!Sub s` ->
/// `{"Fn::Sub": s}` …).
pub fn yaml_to_json(v: serde_yaml_ng::Value) -> Result<Value, String> {
    use serde_yaml_ng::Value as Y;
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .ok_or("a number is not finite")?
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(yaml_to_json).collect::<Result<_, _>>()?),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => return Err(format!("unsupported mapping key {other:?}")),
                };
                out.insert(key, yaml_to_json(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = yaml_to_json(tagged.value)?;
            let (key, value) = match name {
                "Ref" | "Condition" => (name.to_string(), inner),
                "GetAtt" => {
                    let value = match inner {
                        Value::String(s) => match s.split_once('.') {
                            Some((res, attr)) => Value::Array(vec![res.into(), attr.into()]),
                            None => return Err(format!("!GetAtt {s} needs Resource.Attribute")),
                        },
                        other => other,
                    };
                    ("Fn::GetAtt".to_string(), value)
                }
                other => (format!("Fn::{other}"), inner),
            };
            Value::Object(Map::from_iter([(key, value)]))
        }
    })
}

/// Parses a template body: JSON, or YAML with CloudFormation tags.
pub fn parse_template(body: &str, json: bool) -> Result<Value, String> {
    if json {
        serde_json::from_str(body).map_err(|e| format!("not valid JSON: {e}"))
    } else {
        let yaml: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(body).map_err(|e| format!("not valid YAML: {e}"))?;
        yaml_to_json(yaml)
    }
}

fn text<'a>(nexus: &'a Map<String, Value>, key: &str, errors: &mut Vec<String>) -> &'a str {
    match nexus.get(key).and_then(Value::as_str).map(str::trim) {
        Some(s) if !s.is_empty() => s,
        _ => {
            errors.push(format!("Metadata.Nexus.{key} is missing or empty"));
            ""
        }
    }
}

/// Validates one version's template and builds its record.
pub fn parse_version(
    slug: &str,
    version: &str,
    body: &str,
    json: bool,
    file: &str,
    published_at: Timestamp,
) -> Result<(CapabilityVersion, Capability), Vec<CatalogError>> {
    let fail = |reasons: Vec<String>| {
        reasons.into_iter().map(|reason| CatalogError { file: file.to_string(), reason }).collect::<Vec<_>>()
    };
    let mut errors = Vec::new();
    if !valid_slug(slug) {
        errors.push(format!("`{slug}` is not a capability slug (lower-case letters, digits, dashes)"));
    }
    let version: Option<Version> =
        version.parse().map_err(|e: crate::domain::semver::VersionError| errors.push(e.to_string())).ok();
    if body.len() > MAX_TEMPLATE_BYTES {
        errors.push(format!(
            "the template is {} bytes; CloudFormation accepts at most {MAX_TEMPLATE_BYTES}",
            body.len()
        ));
        return Err(fail(errors));
    }
    let template = match parse_template(body, json) {
        Ok(Value::Object(t)) => t,
        Ok(_) => return Err(fail(vec!["the template is not a mapping".into()])),
        Err(e) => {
            errors.push(e);
            return Err(fail(errors));
        }
    };

    let resources = template.get("Resources").and_then(Value::as_object);
    match resources {
        None => errors.push("Resources is missing or not a mapping".into()),
        Some(r) if r.is_empty() => errors.push("Resources is empty".into()),
        Some(_) => {}
    }
    let empty = Map::new();
    let nexus = template.get("Metadata").and_then(|m| m.get("Nexus")).and_then(Value::as_object);
    if nexus.is_none() {
        errors.push("Metadata.Nexus is missing".into());
    }
    let nexus = nexus.unwrap_or(&empty);
    let name = text(nexus, "Name", &mut errors).to_string();
    let category = text(nexus, "Category", &mut errors).to_string();
    let changelog = text(nexus, "Changelog", &mut errors).trim().to_string();
    let description = nexus
        .get("Description")
        .or_else(|| template.get("Description"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_string();
    let classification = match text(nexus, "Classification", &mut errors) {
        "Public" => Some(DataClassification::Public),
        "Internal" => Some(DataClassification::Internal),
        "Confidential" => Some(DataClassification::Confidential),
        "Restricted" => Some(DataClassification::Restricted),
        "" => None,
        other => {
            errors.push(format!(
                "Metadata.Nexus.Classification `{other}` is not Public, Internal, Confidential or Restricted"
            ));
            None
        }
    };
    let strategy = match text(nexus, "Strategy", &mut errors) {
        "in-place" => Some(Strategy::InPlace),
        "blue-green" => Some(Strategy::BlueGreen),
        "" => None,
        other => {
            errors.push(format!("Metadata.Nexus.Strategy `{other}` is not in-place or blue-green"));
            None
        }
    };
    let retain_data = match nexus.get("RetainData") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errors.push("Metadata.Nexus.RetainData must be true or false".into());
            true
        }
    };
    if let Some(resources) = resources {
        for (logical_id, resource) in resources {
            let Some(kind) = resource.get("Type").and_then(Value::as_str) else {
                errors.push(format!("resource {logical_id} has no Type"));
                continue;
            };
            let policy = resource.get("DeletionPolicy").and_then(Value::as_str);
            let snapshots = matches!(kind, "AWS::RDS::DBInstance" | "AWS::RDS::DBCluster");
            for attribute in ["DeletionPolicy", "UpdateReplacePolicy"] {
                if resource.get(attribute).and_then(Value::as_str) == Some("Snapshot")
                    && DATA_RESOURCES.contains(&kind)
                    && !snapshots
                {
                    errors.push(format!(
                        "{logical_id}: CloudFormation cannot snapshot {kind}; use {attribute}: Retain"
                    ));
                }
            }
            if retain_data
                && DATA_RESOURCES.contains(&kind)
                && !matches!(policy, Some("Retain" | "Snapshot" | "RetainExceptOnCreate"))
            {
                errors.push(format!(
                    "data resource {logical_id} ({kind}) needs DeletionPolicy Retain or Snapshot (or Metadata.Nexus.RetainData: false)"
                ));
            }
        }
    }
    let parameters = ParameterSchema::from_template(&Value::Object(template.clone()))
        .map_err(|errs| errors.extend(errs.into_iter().map(|e| format!("{}: {}", e.field, e.message))))
        .ok();

    if !errors.is_empty() {
        return Err(fail(errors));
    }
    let (Some(version), Some(classification), Some(strategy), Some(parameters)) =
        (version, classification, strategy, parameters)
    else {
        return Err(fail(vec!["invalid template".into()]));
    };
    let sha = Sha256::digest(body.as_bytes());
    let meta = CapabilityVersion {
        capability: slug.to_string(),
        version: version.clone(),
        changelog,
        strategy,
        parameters,
        template_sha256: sha.iter().map(|b| format!("{b:02x}")).collect(),
        template_bytes: body.len() as u64,
        deprecated: false,
        retain_data,
        published_at,
    };
    let capability = Capability {
        slug: slug.to_string(),
        name,
        description,
        category,
        classification,
        versions: vec![version.clone()],
        latest: Some(version),
    };
    Ok((meta, capability))
}

impl Catalog {
    /// Loads every `<slug>/<version>.{yaml,yml,json}` under `dir`; all problems come back at once.
    pub fn load(dir: &Path, published_at: Timestamp) -> Result<Catalog, Vec<CatalogError>> {
        let shown = |p: &Path| p.display().to_string();
        let read_dir = |p: &Path| {
            std::fs::read_dir(p).map_err(|e| {
                vec![CatalogError { file: shown(p), reason: format!("cannot read the folder: {e}") }]
            })
        };
        let mut errors = Vec::new();
        let mut catalog = Catalog::default();
        let mut folders: Vec<PathBuf> =
            read_dir(dir)?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect();
        folders.sort();
        for folder in folders {
            let slug = folder.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            let mut files: Vec<PathBuf> =
                read_dir(&folder)?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
            files.sort();
            for file in files {
                let ext = file.extension().and_then(|e| e.to_str()).unwrap_or_default();
                if !matches!(ext, "yaml" | "yml" | "json") {
                    continue;
                }
                let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
                let body = match std::fs::read_to_string(&file) {
                    Ok(b) => b,
                    Err(e) => {
                        errors.push(CatalogError { file: shown(&file), reason: format!("cannot read: {e}") });
                        continue;
                    }
                };
                match parse_version(&slug, stem, &body, ext == "json", &shown(&file), published_at) {
                    Ok((meta, capability)) => {
                        let version = CatalogVersion {
                            needs_url: body.len() > INLINE_TEMPLATE_LIMIT,
                            meta,
                            template_body: body,
                            source: file.clone(),
                        };
                        if let Err(e) = catalog.insert(capability, version) {
                            errors.push(CatalogError { file: shown(&file), reason: e });
                        }
                    }
                    Err(errs) => errors.extend(errs),
                }
            }
        }
        if catalog.entries.is_empty() && errors.is_empty() {
            errors.push(CatalogError {
                file: shown(dir),
                reason: "the catalog has no capability versions".into(),
            });
        }
        if errors.is_empty() { Ok(catalog) } else { Err(errors) }
    }

    /// Adds a version; the newest version's name, category and classification describe the
    /// capability.
    pub fn insert(&mut self, capability: Capability, version: CatalogVersion) -> Result<(), String> {
        let entry = self
            .entries
            .entry(capability.slug.clone())
            .or_insert_with(|| CatalogEntry { capability: capability.clone(), versions: Vec::new() });
        if entry.versions.iter().any(|v| v.meta.version == version.meta.version) {
            return Err(format!("version {} of {} exists already", version.meta.version, capability.slug));
        }
        let newest = entry.versions.first().is_none_or(|v| version.meta.version > v.meta.version);
        entry.versions.push(version);
        entry.versions.sort_by(|a, b| b.meta.version.cmp(&a.meta.version));
        if newest {
            entry.capability = Capability { versions: Vec::new(), latest: None, ..capability };
        }
        entry.capability.versions = entry.versions.iter().map(|v| v.meta.version.clone()).collect();
        entry.capability.latest = latest(&entry.versions);
        self.revision += 1;
        Ok(())
    }

    /// Marks a version deprecated: no new deployments; `latest` moves to the newest other one.
    pub fn set_deprecated(&mut self, slug: &str, version: &Version) -> Result<CapabilityVersion, String> {
        let entry = self.entries.get_mut(slug).ok_or_else(|| format!("no capability `{slug}`"))?;
        let v = entry
            .versions
            .iter_mut()
            .find(|v| &v.meta.version == version)
            .ok_or_else(|| format!("{slug} has no version {version}"))?;
        v.meta.deprecated = true;
        let meta = v.meta.clone();
        entry.capability.latest = latest(&entry.versions);
        self.revision += 1;
        Ok(meta)
    }

    /// How many changes the catalog has seen.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn capabilities(&self) -> impl Iterator<Item = &Capability> {
        self.entries.values().map(|e| &e.capability)
    }

    pub fn get(&self, slug: &str) -> Option<&CatalogEntry> {
        self.entries.get(slug)
    }

    pub fn version(&self, slug: &str, version: &Version) -> Option<&CatalogVersion> {
        self.get(slug)?.versions.iter().find(|v| &v.meta.version == version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
Metadata:
  Nexus: { Name: Demo, Category: Test, Classification: Internal, Strategy: in-place, Changelog: first }
Parameters:
  Size: { Type: Number, Default: 2, MaxValue: 5 }
Resources:
  Data:
    Type: AWS::S3::Bucket
    DeletionPolicy: Retain
  Role:
    Type: AWS::IAM::Role
    Properties:
      Arn: !GetAtt Data.Arn
      Name: !Sub "${AWS::StackName}-x"
      List: !Split [",", !Ref Size]
"#;

    fn temp_catalog(files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "nexus-catalog-{}-{}",
            std::process::id(),
            crate::ssr::ids::new_id()
        ));
        for (path, body) in files {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        }
        dir
    }

    #[test]
    fn the_shipped_catalog_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../catalog");
        let catalog = Catalog::load(&dir, Timestamp(0)).unwrap_or_else(|e| panic!("{e:#?}"));
        let slugs: Vec<&str> = catalog.capabilities().map(|c| c.slug.as_str()).collect();
        assert_eq!(
            slugs,
            [
                "churn-prediction",
                "customer-360",
                "document-intelligence",
                "lead-scoring",
                "sales-forecasting"
            ]
        );
        for c in catalog.capabilities() {
            assert!(c.versions.len() >= 2, "{} has {:?}", c.slug, c.versions);
        }
        assert_eq!(catalog.get("sales-forecasting").unwrap().versions[0].meta.strategy, Strategy::BlueGreen);
        assert_eq!(
            catalog.get("customer-360").unwrap().capability.classification,
            DataClassification::Restricted
        );
        let c360 = catalog.version("customer-360", &"1.2.0".parse().unwrap()).unwrap();
        assert!(c360.meta.parameters.get("CrmApiToken").unwrap().no_echo);
        let lead = catalog.get("lead-scoring").unwrap();
        assert_eq!(lead.capability.latest, Some("1.1.0".parse().unwrap()));
        assert!(lead.versions[0].meta.changelog.contains("dead-letter"));
    }

    #[test]
    fn snapshot_is_refused_where_cloudformation_cannot_take_one() {
        let body = GOOD.replace("DeletionPolicy: Retain", "DeletionPolicy: Snapshot");
        assert_ne!(body, GOOD, "the fixture has a retained data resource");
        let errors = parse_version("demo", "1.0.0", &body, false, "f.yaml", Timestamp(0)).unwrap_err();
        assert!(errors.iter().any(|e| e.reason.contains("cannot snapshot")), "{errors:?}");
    }

    #[test]
    fn short_form_tags_become_long_form() {
        let t = parse_template(GOOD, false).unwrap();
        let role = &t["Resources"]["Role"]["Properties"];
        assert_eq!(role["Arn"], serde_json::json!({"Fn::GetAtt": ["Data", "Arn"]}));
        assert_eq!(role["Name"], serde_json::json!({"Fn::Sub": "${AWS::StackName}-x"}));
        assert_eq!(role["List"], serde_json::json!({"Fn::Split": [",", {"Ref": "Size"}]}));
    }

    #[test]
    fn a_good_version_parses_with_its_schema_and_hash() {
        let (v, c) = parse_version("demo", "1.0.0", GOOD, false, "demo/1.0.0.yaml", Timestamp(0)).unwrap();
        assert_eq!(c.name, "Demo");
        assert_eq!(v.parameters.get("Size").unwrap().max_value, Some(5.0));
        assert_eq!(v.template_sha256.len(), 64);
        assert!(v.retain_data);
    }

    #[test]
    fn malformed_templates_name_the_file_and_every_reason() {
        let bad = r#"
Metadata:
  Nexus: { Name: Demo, Classification: Secret, Strategy: canary, Changelog: x }
Parameters:
  Size: { Type: Integer }
Resources:
  Data: { Type: AWS::DynamoDB::Table }
"#;
        let dir = temp_catalog(&[
            ("demo/1.0.yaml", bad),
            ("demo/2.0.0.yaml", "a: [unclosed"),
            ("Bad_Slug/1.0.0.yaml", GOOD),
        ]);
        let errors = Catalog::load(&dir, Timestamp(0)).unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let has = |file: &str, what: &str| text.iter().any(|t| t.contains(file) && t.contains(what));
        assert!(has("demo/1.0.yaml", "not a semantic version"), "{text:#?}");
        assert!(has("demo/1.0.yaml", "Category"), "{text:#?}");
        assert!(has("demo/1.0.yaml", "Secret"), "{text:#?}");
        assert!(has("demo/1.0.yaml", "canary"), "{text:#?}");
        assert!(has("demo/1.0.yaml", "Parameters.Size.Type"), "{text:#?}");
        assert!(has("demo/1.0.yaml", "DeletionPolicy"), "{text:#?}");
        assert!(has("demo/2.0.0.yaml", "not valid YAML"), "{text:#?}");
        assert!(has("Bad_Slug/1.0.0.yaml", "slug"), "{text:#?}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn retain_data_false_allows_deleting_data_resources() {
        let body = GOOD
            .replace("Changelog: first", "Changelog: first, RetainData: false")
            .replace("DeletionPolicy: Retain", "DeletionPolicy: Delete");
        let (v, _) = parse_version("demo", "1.0.0", &body, false, "f", Timestamp(0)).unwrap();
        assert!(!v.retain_data);
    }

    #[test]
    fn large_templates_go_by_url_and_huge_ones_are_refused() {
        let padding = format!("\nOutputs:\n  Pad:\n    Value: \"{}\"\n", "x".repeat(60_000));
        let big = format!("{GOOD}{padding}");
        let dir = temp_catalog(&[
            ("demo/1.0.0.yaml", &big),
            ("demo/1.1.0.json", &serde_json::to_string(&parse_template(GOOD, false).unwrap()).unwrap()),
        ]);
        let catalog = Catalog::load(&dir, Timestamp(0)).unwrap();
        assert!(catalog.version("demo", &"1.0.0".parse().unwrap()).unwrap().needs_url);
        assert!(!catalog.version("demo", &"1.1.0".parse().unwrap()).unwrap().needs_url);
        let huge = format!("{GOOD}\nOutputs:\n  Pad:\n    Value: \"{}\"\n", "x".repeat(1_000_001));
        let e = parse_version("demo", "1.0.0", &huge, false, "f", Timestamp(0)).unwrap_err();
        assert!(e[0].reason.contains("at most"), "{e:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
