//! A capability version's parameter schema, derived from its CloudFormation `Parameters`, and the
//! validator for user-supplied values. The browser's form and the server run this same code, so
//! they accept and refuse exactly the same input.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::outbound_url::{OutboundPolicy, check_public_url};

/// The parameter whose value a catalog template turns into its `HealthCheckUrl` output, which
/// the toolkit's workers GET.
pub const HEALTH_PARAMETER: &str = "HealthEndpoint";

/// CloudFormation's parameter types, as far as the toolkit checks them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum ParamType {
    String,
    Number,
    /// `List<Number>`
    NumberList,
    CommaDelimitedList,
    /// `AWS::…` types (key pairs, VPC ids, SSM parameter values …): passed through, not empty.
    Aws(String),
}

impl ParamType {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "String" => ParamType::String,
            "Number" => ParamType::Number,
            "List<Number>" => ParamType::NumberList,
            "CommaDelimitedList" => ParamType::CommaDelimitedList,
            s if s.starts_with("AWS::") || s.starts_with("List<AWS::") => ParamType::Aws(s.to_string()),
            _ => return None,
        })
    }

    fn is_list(&self) -> bool {
        matches!(self, ParamType::NumberList | ParamType::CommaDelimitedList)
    }
}

/// One parameter of a template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ParameterSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub param_type: ParamType,
    pub description: Option<String>,
    pub default: Option<String>,
    pub allowed_values: Vec<String>,
    pub allowed_pattern: Option<String>,
    pub constraint_description: Option<String>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub min_value: Option<f64>,
    pub max_value: Option<f64>,
    /// Secret: encrypted at rest, never logged or shown (`****`).
    pub no_echo: bool,
}

impl ParameterSpec {
    pub fn required(&self) -> bool {
        self.default.is_none()
    }
}

/// The parameter schema of a version, in template order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ParameterSchema {
    pub parameters: Vec<ParameterSpec>,
}

/// One field's problem, for the API's `{"error":{…,"field"}}` and the form's inline messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct FieldError {
    pub field: String,
    pub code: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), code: code.to_string(), message: message.into() }
    }
}

/// Values that passed validation, defaults filled in.
pub type ResolvedParameters = BTreeMap<String, String>;

/// What is shown in place of a `NoEcho` value.
pub const MASK: &str = "****";

/// CloudFormation template limits the schema enforces.
const MAX_PARAMETERS: usize = 200;

impl ParameterSchema {
    /// Reads a template's `Parameters` section (the template as JSON; YAML templates are converted
    /// first). Every problem is reported, with the parameter it concerns.
    pub fn from_template(template: &Value) -> Result<Self, Vec<FieldError>> {
        let Some(params) = template.get("Parameters") else {
            return Ok(ParameterSchema::default());
        };
        let Some(params) = params.as_object() else {
            return Err(vec![FieldError::new("Parameters", "invalid", "`Parameters` must be a mapping")]);
        };
        let mut errors = Vec::new();
        if params.len() > MAX_PARAMETERS {
            errors.push(FieldError::new(
                "Parameters",
                "too_many",
                format!("at most {MAX_PARAMETERS} parameters"),
            ));
        }
        let mut specs = Vec::new();
        for (name, body) in params {
            let field = format!("Parameters.{name}");
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
                errors.push(FieldError::new(&field, "invalid_name", "parameter names are alphanumeric"));
            }
            let Some(body) = body.as_object() else {
                errors.push(FieldError::new(&field, "invalid", "a parameter must be a mapping"));
                continue;
            };
            let type_name = body.get("Type").and_then(Value::as_str);
            let Some(param_type) = type_name.and_then(ParamType::parse) else {
                errors.push(FieldError::new(
                    format!("{field}.Type"),
                    "invalid_type",
                    format!(
                        "unsupported or missing Type {}",
                        type_name.map(|t| format!("`{t}`")).unwrap_or_default()
                    ),
                ));
                continue;
            };
            let text = |key: &str| body.get(key).and_then(scalar_to_string);
            let number = |key: &str, errors: &mut Vec<FieldError>| -> Option<f64> {
                let v = body.get(key)?;
                let parsed =
                    scalar_to_string(v).and_then(|s| s.trim().parse::<f64>().ok()).filter(|n| n.is_finite());
                if parsed.is_none() {
                    errors.push(FieldError::new(
                        format!("{field}.{key}"),
                        "invalid",
                        format!("`{key}` must be a number"),
                    ));
                }
                parsed
            };
            let count = |key: &str, errors: &mut Vec<FieldError>| -> Option<u64> {
                let v = body.get(key)?;
                let parsed = scalar_to_string(v).and_then(|s| s.trim().parse::<u64>().ok());
                if parsed.is_none() {
                    errors.push(FieldError::new(
                        format!("{field}.{key}"),
                        "invalid",
                        format!("`{key}` must be a whole number"),
                    ));
                }
                parsed
            };
            let allowed_values = match body.get("AllowedValues") {
                None => Vec::new(),
                Some(Value::Array(items)) => {
                    let values: Vec<String> = items.iter().filter_map(scalar_to_string).collect();
                    if values.len() != items.len() || values.is_empty() {
                        errors.push(FieldError::new(
                            format!("{field}.AllowedValues"),
                            "invalid",
                            "`AllowedValues` must be a non-empty list of scalars",
                        ));
                    }
                    values
                }
                Some(_) => {
                    errors.push(FieldError::new(
                        format!("{field}.AllowedValues"),
                        "invalid",
                        "`AllowedValues` must be a list",
                    ));
                    Vec::new()
                }
            };
            let allowed_pattern = text("AllowedPattern");
            if let Some(pattern) = &allowed_pattern
                && let Err(e) = compile_pattern(pattern)
            {
                errors.push(FieldError::new(
                    format!("{field}.AllowedPattern"),
                    "invalid",
                    format!("`AllowedPattern` is not a valid regular expression: {e}"),
                ));
            }
            let no_echo = match body.get("NoEcho") {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
                Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
                Some(_) => {
                    errors.push(FieldError::new(
                        format!("{field}.NoEcho"),
                        "invalid",
                        "`NoEcho` must be true or false",
                    ));
                    false
                }
            };
            let spec = ParameterSpec {
                name: name.clone(),
                param_type,
                description: text("Description"),
                default: text("Default"),
                allowed_values,
                allowed_pattern,
                constraint_description: text("ConstraintDescription"),
                min_length: count("MinLength", &mut errors),
                max_length: count("MaxLength", &mut errors),
                min_value: number("MinValue", &mut errors),
                max_value: number("MaxValue", &mut errors),
                no_echo,
            };
            // A default that breaks its own constraints would fail every deployment that relies on it.
            if let Some(default) = &spec.default {
                let mut default_errors = Vec::new();
                check_value(&spec, default, &mut default_errors);
                errors.extend(default_errors.into_iter().map(|e| FieldError {
                    field: format!("{field}.Default"),
                    code: "invalid_default".into(),
                    message: format!("the default value is invalid: {}", e.message),
                }));
            }
            specs.push(spec);
        }
        if errors.is_empty() { Ok(ParameterSchema { parameters: specs }) } else { Err(errors) }
    }

    pub fn get(&self, name: &str) -> Option<&ParameterSpec> {
        self.parameters.iter().find(|p| p.name == name)
    }

    /// Checks user-supplied values and fills in defaults. All problems come back at once, each
    /// naming its field as `parameters.<Name>`.
    pub fn validate(&self, values: &BTreeMap<String, String>) -> Result<ResolvedParameters, Vec<FieldError>> {
        let mut errors = Vec::new();
        for name in values.keys() {
            if self.get(name).is_none() {
                errors.push(FieldError::new(
                    format!("parameters.{name}"),
                    "unknown_parameter",
                    format!("this version has no parameter `{name}`"),
                ));
            }
        }
        let mut resolved = ResolvedParameters::new();
        for spec in &self.parameters {
            let field = format!("parameters.{}", spec.name);
            let value = match (values.get(&spec.name), &spec.default) {
                (Some(v), _) => v.clone(),
                (None, Some(default)) => default.clone(),
                (None, None) => {
                    errors.push(FieldError::new(&field, "required", format!("{} is required", spec.name)));
                    continue;
                }
            };
            let mut own = Vec::new();
            check_value(spec, &value, &mut own);
            if own.is_empty() {
                resolved.insert(spec.name.clone(), value);
            }
            errors.extend(own.into_iter().map(|mut e| {
                e.field = field.clone();
                if let Some(hint) = &spec.constraint_description {
                    e.message = format!("{} ({hint})", e.message);
                }
                e
            }));
        }
        if errors.is_empty() { Ok(resolved) } else { Err(errors) }
    }

    /// The outbound-URL rule over the health URL a deployment would get (the value given, else
    /// the default): the toolkit GETs it, so it must be a public address. Server-side only (the
    /// test suite may allow loopback there); its errors go beside [`Self::validate`]'s, so one
    /// answer names every bad field.
    pub fn outbound_errors(
        &self,
        values: &BTreeMap<String, String>,
        policy: OutboundPolicy,
    ) -> Vec<FieldError> {
        let Some(spec) = self.get(HEALTH_PARAMETER) else { return Vec::new() };
        match values.get(&spec.name).or(spec.default.as_ref()).filter(|v| !v.is_empty()) {
            Some(url) => match check_public_url(url, policy) {
                Ok(()) => Vec::new(),
                Err(message) => {
                    vec![FieldError::new(format!("parameters.{}", spec.name), "internal_address", message)]
                }
            },
            None => Vec::new(),
        }
    }

    /// A copy of `values` fit to show or log: `NoEcho` values replaced by [`MASK`].
    pub fn masked(&self, values: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        values
            .iter()
            .map(|(k, v)| {
                let secret = self.get(k).is_some_and(|s| s.no_echo);
                (k.clone(), if secret { MASK.to_string() } else { v.clone() })
            })
            .collect()
    }
}

fn scalar_to_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// CloudFormation's `AllowedPattern` must match the whole value.
fn compile_pattern(pattern: &str) -> Result<regex_lite::Regex, regex_lite::Error> {
    regex_lite::Regex::new(&format!("^(?:{pattern})$"))
}

fn check_value(spec: &ParameterSpec, value: &str, errors: &mut Vec<FieldError>) {
    let mut fail = |code: &str, message: String| errors.push(FieldError::new("", code, message));
    let items: Vec<&str> =
        if spec.param_type.is_list() { value.split(',').map(str::trim).collect() } else { vec![value] };

    match &spec.param_type {
        ParamType::String => {
            let len = value.chars().count() as u64;
            if let Some(min) = spec.min_length
                && len < min
            {
                fail("too_short", format!("must be at least {min} characters"));
            }
            if let Some(max) = spec.max_length
                && len > max
            {
                fail("too_long", format!("must be at most {max} characters"));
            }
            if let Some(pattern) = &spec.allowed_pattern
                && let Ok(re) = compile_pattern(pattern)
                && !re.is_match(value)
            {
                fail("pattern", format!("must match the pattern {pattern}"));
            }
        }
        ParamType::Number | ParamType::NumberList => {
            for item in &items {
                match item.parse::<f64>() {
                    Ok(n) if n.is_finite() => {
                        if let Some(min) = spec.min_value
                            && n < min
                        {
                            fail("too_small", format!("must be at least {min}"));
                        }
                        if let Some(max) = spec.max_value
                            && n > max
                        {
                            fail("too_large", format!("must be at most {max}"));
                        }
                    }
                    _ => fail("not_a_number", format!("`{item}` is not a number")),
                }
            }
        }
        ParamType::CommaDelimitedList => {
            if let Some(pattern) = &spec.allowed_pattern
                && let Ok(re) = compile_pattern(pattern)
                && let Some(bad) = items.iter().find(|i| !re.is_match(i))
            {
                fail("pattern", format!("`{bad}` must match the pattern {pattern}"));
            }
        }
        ParamType::Aws(_) => {
            if value.trim().is_empty() {
                fail("required", "must not be empty".into());
            }
        }
    }

    if !spec.allowed_values.is_empty() {
        let numeric = matches!(spec.param_type, ParamType::Number | ParamType::NumberList);
        let allowed = |item: &str| {
            spec.allowed_values.iter().any(|a| {
                a == item
                    || (numeric
                        && matches!((a.parse::<f64>(), item.parse::<f64>()), (Ok(x), Ok(y)) if x == y))
            })
        };
        if let Some(bad) = items.iter().find(|i| !allowed(i)) {
            fail("not_allowed", format!("`{bad}` is not one of: {}", spec.allowed_values.join(", ")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template() -> Value {
        json!({
            "Parameters": {
                "Environment": { "Type": "String", "AllowedValues": ["dev", "staging", "prod"] },
                "BucketPrefix": {
                    "Type": "String", "Default": "nexus-data", "MinLength": 3, "MaxLength": 20,
                    "AllowedPattern": "[a-z][a-z0-9-]*", "ConstraintDescription": "lower-case letters, digits and dashes"
                },
                "RetentionDays": { "Type": "Number", "Default": "30", "MinValue": 1, "MaxValue": 365 },
                "Shards": { "Type": "Number", "Default": 2, "AllowedValues": [1, 2, 4] },
                "Regions": { "Type": "CommaDelimitedList", "Default": "us-east-1", "AllowedValues": ["us-east-1", "eu-west-1"] },
                "Ports": { "Type": "List<Number>", "Default": "80,443", "MaxValue": 65535 },
                "ApiKey": { "Type": "String", "NoEcho": true, "MinLength": 8 },
                "KeyName": { "Type": "AWS::EC2::KeyPair::KeyName", "Default": "ops" }
            }
        })
    }

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn reads_every_constraint() {
        let schema = ParameterSchema::from_template(&template()).unwrap();
        assert_eq!(schema.parameters.len(), 8);
        let p = schema.get("BucketPrefix").unwrap();
        assert_eq!(p.param_type, ParamType::String);
        assert_eq!(p.default.as_deref(), Some("nexus-data"));
        assert_eq!((p.min_length, p.max_length), (Some(3), Some(20)));
        assert_eq!(p.allowed_pattern.as_deref(), Some("[a-z][a-z0-9-]*"));
        let r = schema.get("RetentionDays").unwrap();
        assert_eq!((r.min_value, r.max_value), (Some(1.0), Some(365.0)));
        assert_eq!(schema.get("Shards").unwrap().allowed_values, ["1", "2", "4"]);
        assert_eq!(schema.get("Ports").unwrap().param_type, ParamType::NumberList);
        assert!(schema.get("ApiKey").unwrap().no_echo);
        assert!(schema.get("ApiKey").unwrap().required());
        assert_eq!(
            schema.get("KeyName").unwrap().param_type,
            ParamType::Aws("AWS::EC2::KeyPair::KeyName".into())
        );
    }

    #[test]
    fn a_template_without_parameters_has_an_empty_schema() {
        assert!(ParameterSchema::from_template(&json!({"Resources": {}})).unwrap().parameters.is_empty());
    }

    #[test]
    fn valid_values_resolve_with_defaults() {
        let schema = ParameterSchema::from_template(&template()).unwrap();
        let resolved = schema
            .validate(&values(&[("Environment", "prod"), ("ApiKey", "fake-key-123"), ("Shards", "4.0")]))
            .unwrap();
        assert_eq!(resolved["Environment"], "prod");
        assert_eq!(resolved["BucketPrefix"], "nexus-data");
        assert_eq!(resolved["RetentionDays"], "30");
        assert_eq!(resolved["Shards"], "4.0");
        assert_eq!(resolved["Ports"], "80,443");
        assert_eq!(resolved.len(), 8);
    }

    #[test]
    fn every_error_comes_back_at_once_with_its_field() {
        let schema = ParameterSchema::from_template(&template()).unwrap();
        let errors = schema
            .validate(&values(&[
                ("Environment", "qa"),
                ("BucketPrefix", "X"),
                ("RetentionDays", "400"),
                ("Shards", "3"),
                ("Regions", "us-east-1, ap-south-1"),
                ("Ports", "80,http"),
                ("Bogus", "1"),
            ]))
            .unwrap_err();
        let got: Vec<(&str, &str)> = errors.iter().map(|e| (e.field.as_str(), e.code.as_str())).collect();
        for expected in [
            ("parameters.Bogus", "unknown_parameter"),
            ("parameters.Environment", "not_allowed"),
            ("parameters.BucketPrefix", "too_short"),
            ("parameters.BucketPrefix", "pattern"),
            ("parameters.RetentionDays", "too_large"),
            ("parameters.Shards", "not_allowed"),
            ("parameters.Regions", "not_allowed"),
            ("parameters.Ports", "not_a_number"),
            ("parameters.ApiKey", "required"),
        ] {
            assert!(got.contains(&expected), "missing {expected:?} in {got:?}");
        }
        assert_eq!(got.len(), 9, "{got:?}");
        let prefix = errors.iter().find(|e| e.code == "pattern").unwrap();
        assert!(prefix.message.contains("lower-case letters"), "{}", prefix.message);
    }

    #[test]
    fn patterns_match_the_whole_value() {
        let schema = ParameterSchema::from_template(&template()).unwrap();
        let e = schema.validate(&values(&[
            ("Environment", "dev"),
            ("ApiKey", "fake-key-123"),
            ("BucketPrefix", "abc DEF"),
        ]));
        assert_eq!(e.unwrap_err()[0].code, "pattern");
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        let schema = ParameterSchema::from_template(
            &json!({"Parameters": {"Name": {"Type": "String", "MaxLength": 3}}}),
        )
        .unwrap();
        assert!(schema.validate(&values(&[("Name", "äöü")])).is_ok());
        assert!(schema.validate(&values(&[("Name", "äöüß")])).is_err());
    }

    #[test]
    fn numbers_reject_non_finite_and_garbage() {
        let schema =
            ParameterSchema::from_template(&json!({"Parameters": {"N": {"Type": "Number"}}})).unwrap();
        for bad in ["", "abc", "NaN", "inf", "1e999"] {
            assert!(schema.validate(&values(&[("N", bad)])).is_err(), "{bad:?}");
        }
        assert!(schema.validate(&values(&[("N", "-2.5")])).is_ok());
    }

    #[test]
    fn malformed_schemas_name_the_parameter() {
        let errors = ParameterSchema::from_template(&json!({
            "Parameters": {
                "NoType": {},
                "BadType": { "Type": "Integer" },
                "BadPattern": { "Type": "String", "AllowedPattern": "([a-z" },
                "BadDefault": { "Type": "String", "AllowedValues": ["a", "b"], "Default": "c" },
                "BadMin": { "Type": "Number", "MinValue": "low" },
                "bad-name": { "Type": "String" }
            }
        }))
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "Parameters.NoType.Type",
            "Parameters.BadType.Type",
            "Parameters.BadPattern.AllowedPattern",
            "Parameters.BadDefault.Default",
            "Parameters.BadMin.MinValue",
            "Parameters.bad-name",
        ] {
            assert!(fields.contains(&f), "missing {f} in {fields:?}");
        }
    }

    #[test]
    fn health_urls_must_be_public_and_name_their_field() {
        let schema = ParameterSchema::from_template(&json!({"Parameters": {
            "HealthEndpoint": {"Type": "String", "Default": ""},
            "Other": {"Type": "String"}
        }}))
        .unwrap();
        let strict = OutboundPolicy::default();
        let errors =
            schema.outbound_errors(&values(&[("HealthEndpoint", "http://169.254.169.254/")]), strict);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "parameters.HealthEndpoint");
        assert_eq!(errors[0].code, "internal_address");
        assert!(
            schema.outbound_errors(&values(&[("HealthEndpoint", "https://ok.example/h")]), strict).is_empty()
        );
        assert!(schema.outbound_errors(&values(&[("HealthEndpoint", "")]), strict).is_empty());
        assert!(schema.outbound_errors(&values(&[]), strict).is_empty());
        let local = values(&[("HealthEndpoint", "http://127.0.0.1:9/")]);
        assert_eq!(schema.outbound_errors(&local, strict).len(), 1);
        assert!(schema.outbound_errors(&local, OutboundPolicy { allow_loopback: true }).is_empty());
    }

    #[test]
    fn no_echo_values_are_masked() {
        let schema = ParameterSchema::from_template(&template()).unwrap();
        let shown = schema.masked(&values(&[("ApiKey", "fake-key-123"), ("Environment", "dev")]));
        assert_eq!(shown["ApiKey"], MASK);
        assert_eq!(shown["Environment"], "dev");
    }
}
