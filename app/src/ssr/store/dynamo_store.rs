//! The production store: one DynamoDB table (keys in [`super::keys`]) through `aws-sdk-dynamodb`.
//!
//! Table: `pk` (S, hash) + `sk` (S, range); attributes `rev` (N), `data` (S), `n` (N);
//! global secondary indexes `gsi1`..`gsi5` on `gsiNpk` (S, hash) + `gsiNsk` (S, range), projecting
//! all attributes. Reads of the table are strongly consistent; index reads are eventually
//! consistent, as DynamoDB allows nothing else. Writes are `TransactWriteItems` with condition
//! expressions. Every SDK call is counted by operation name through an interceptor, so a Scan
//! anywhere would show up in [`Store::calls`].

use std::{collections::HashMap, sync::Arc};

use async_trait::async_trait;
use aws_sdk_dynamodb::{
    Client,
    config::{
        ConfigBag, Intercept, RuntimeComponents, interceptors::BeforeSerializationInterceptorContextRef,
    },
    error::{DisplayErrorContext, SdkError},
    operation::transact_write_items::TransactWriteItemsError,
    types::{
        AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, GlobalSecondaryIndex,
        KeySchemaElement, KeyType, Projection, ProjectionType, Put, ScalarAttributeType, TransactWriteItem,
        Update,
    },
};
use aws_smithy_runtime_api::{box_error::BoxError, client::orchestrator::Metadata};

use super::{
    CallCounter, CallCounts, Cond, INDEX_COUNT, Item, Query, QueryPage, Store, StoreError, Write,
    validate_transaction,
};

fn ipk(i: usize) -> String {
    format!("gsi{}pk", i + 1)
}
fn isk(i: usize) -> String {
    format!("gsi{}sk", i + 1)
}
fn index_name(i: usize) -> String {
    format!("gsi{}", i + 1)
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}
fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Counts every SDK operation by name.
#[derive(Debug)]
struct CountCalls(Arc<CallCounter>);

impl Intercept for CountCalls {
    fn name(&self) -> &'static str {
        "CountCalls"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let c = &self.0;
        let counter = match cfg.load::<Metadata>().map(|m| m.name()) {
            Some("GetItem") => &c.get,
            Some("Query") => &c.query,
            Some("TransactWriteItems") => &c.transact,
            Some("Scan") => &c.scan,
            _ => &c.other,
        };
        CallCounter::bump(counter);
        Ok(())
    }
}

pub struct DynamoStore {
    client: Client,
    table: String,
    calls: Arc<CallCounter>,
}

fn sdk_error<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    tracing::warn!(error = %DisplayErrorContext(&e), "DynamoDB call failed");
    StoreError::Unavailable("DynamoDB is unreachable".into())
}

impl DynamoStore {
    pub fn new(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::from_conf(sdk.into(), table)
    }

    /// A store with its own client settings (endpoint, retries).
    pub fn from_conf(conf: aws_sdk_dynamodb::config::Builder, table: impl Into<String>) -> Self {
        let calls = Arc::new(CallCounter::default());
        let conf = conf.interceptor(CountCalls(calls.clone())).build();
        DynamoStore { client: Client::from_conf(conf), table: table.into(), calls }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table with the layout above if it does not exist (tests and local use;
    /// production tables come from `infra/`), and waits until it is active.
    pub async fn ensure_table(&self) -> Result<(), StoreError> {
        if self.client.describe_table().table_name(&self.table).send().await.is_ok() {
            return Ok(());
        }
        let key =
            |name: &str, t: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(t).build();
        let attr = |name: &str| {
            AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build()
        };
        let mut req = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("pk", KeyType::Hash).map_err(|e| StoreError::Invalid(e.to_string()))?)
            .key_schema(key("sk", KeyType::Range).map_err(|e| StoreError::Invalid(e.to_string()))?)
            .attribute_definitions(attr("pk").map_err(|e| StoreError::Invalid(e.to_string()))?)
            .attribute_definitions(attr("sk").map_err(|e| StoreError::Invalid(e.to_string()))?);
        for i in 0..INDEX_COUNT {
            let gsi = GlobalSecondaryIndex::builder()
                .index_name(index_name(i))
                .key_schema(key(&ipk(i), KeyType::Hash).map_err(|e| StoreError::Invalid(e.to_string()))?)
                .key_schema(key(&isk(i), KeyType::Range).map_err(|e| StoreError::Invalid(e.to_string()))?)
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
            req = req
                .global_secondary_indexes(gsi)
                .attribute_definitions(attr(&ipk(i)).map_err(|e| StoreError::Invalid(e.to_string()))?)
                .attribute_definitions(attr(&isk(i)).map_err(|e| StoreError::Invalid(e.to_string()))?);
        }
        match req.send().await {
            Ok(_) => {}
            // Created meanwhile by another process: fine.
            Err(e) if DisplayErrorContext(&e).to_string().contains("ResourceInUse") => {}
            Err(e) => return Err(sdk_error(e)),
        }
        for _ in 0..100 {
            let out = self.client.describe_table().table_name(&self.table).send().await.map_err(sdk_error)?;
            if out.table().and_then(|t| t.table_status())
                == Some(&aws_sdk_dynamodb::types::TableStatus::Active)
            {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Err(StoreError::Unavailable(format!("table {} did not become active", self.table)))
    }

    /// Deletes the table (tests).
    pub async fn delete_table(&self) -> Result<(), StoreError> {
        self.client.delete_table().table_name(&self.table).send().await.map_err(sdk_error)?;
        Ok(())
    }

    fn attributes(item: &Item) -> HashMap<String, AttributeValue> {
        let mut m = HashMap::from([
            ("pk".to_string(), s(&item.pk)),
            ("sk".to_string(), s(&item.sk)),
            ("rev".to_string(), n(item.rev)),
            ("data".to_string(), s(&item.data)),
            ("n".to_string(), n(item.n)),
        ]);
        for (i, key) in item.index.iter().enumerate() {
            if let Some((p, k)) = key {
                m.insert(ipk(i), s(p));
                m.insert(isk(i), s(k));
            }
        }
        m
    }

    fn from_attributes(m: &HashMap<String, AttributeValue>) -> Result<Item, StoreError> {
        let text = |k: &str| m.get(k).and_then(|v| v.as_s().ok()).cloned();
        let num = |k: &str| -> Result<i64, StoreError> {
            match m.get(k) {
                None => Ok(0),
                Some(v) => v
                    .as_n()
                    .ok()
                    .and_then(|x| x.parse().ok())
                    .ok_or_else(|| StoreError::Corrupt(format!("attribute {k} is not a number"))),
            }
        };
        let mut index: [Option<(String, String)>; INDEX_COUNT] = Default::default();
        for (i, slot) in index.iter_mut().enumerate() {
            if let (Some(p), Some(k)) = (text(&ipk(i)), text(&isk(i))) {
                *slot = Some((p, k));
            }
        }
        Ok(Item {
            pk: text("pk").ok_or_else(|| StoreError::Corrupt("item without pk".into()))?,
            sk: text("sk").ok_or_else(|| StoreError::Corrupt("item without sk".into()))?,
            rev: num("rev")? as u64,
            index,
            data: text("data").unwrap_or_default(),
            n: num("n")?,
        })
    }

    fn key(pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
    }

    /// The condition expression and its values for `cond`.
    fn condition(cond: Cond) -> (Option<String>, Option<HashMap<String, AttributeValue>>) {
        match cond {
            Cond::None => (None, None),
            Cond::NotExists => (Some("attribute_not_exists(pk)".into()), None),
            Cond::Exists => (Some("attribute_exists(pk)".into()), None),
            Cond::Rev(r) => {
                (Some("rev = :expected_rev".into()), Some(HashMap::from([(":expected_rev".into(), n(r))])))
            }
        }
    }

    fn transact_item(&self, w: &Write) -> Result<TransactWriteItem, StoreError> {
        let invalid = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Invalid(e.to_string());
        Ok(match w {
            Write::Put { item, cond } => {
                let (expr, values) = Self::condition(*cond);
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(Self::attributes(item)))
                    .set_condition_expression(expr)
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(invalid)?;
                TransactWriteItem::builder().put(put).build()
            }
            Write::Delete { pk, sk, cond } => {
                let (expr, values) = Self::condition(*cond);
                let delete = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(Self::key(pk, sk)))
                    .set_condition_expression(expr)
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(invalid)?;
                TransactWriteItem::builder().delete(delete).build()
            }
            Write::Add { pk, sk, delta } => {
                let update = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(Self::key(pk, sk)))
                    .update_expression("ADD n :delta")
                    .expression_attribute_values(":delta", n(delta))
                    .build()
                    .map_err(invalid)?;
                TransactWriteItem::builder().update(update).build()
            }
            Write::Check { pk, sk, cond } => {
                let (expr, values) = Self::condition(*cond);
                let check = ConditionCheck::builder()
                    .table_name(&self.table)
                    .set_key(Some(Self::key(pk, sk)))
                    .condition_expression(
                        expr.unwrap_or_else(|| "attribute_exists(pk) OR attribute_not_exists(pk)".into()),
                    )
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(invalid)?;
                TransactWriteItem::builder().condition_check(check).build()
            }
        })
    }
}

#[async_trait]
impl Store for DynamoStore {
    fn kind(&self) -> &'static str {
        "dynamodb"
    }

    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        out.item().map(Self::from_attributes).transpose()
    }

    async fn query(&self, q: Query) -> Result<QueryPage, StoreError> {
        if q.limit == 0 {
            return Err(StoreError::Invalid("a query's limit must be at least 1".into()));
        }
        let (pk_name, sk_name) = match q.index {
            Some(i) => (ipk(i), isk(i)),
            None => ("pk".to_string(), "sk".to_string()),
        };
        let condition = if q.sk_prefix.is_empty() {
            "#p = :p".to_string()
        } else {
            "#p = :p AND begins_with(#s, :prefix)".to_string()
        };
        let want = q.limit + 1;
        let mut items = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = q.after.as_ref().map(|c| {
            let mut k = Self::key(&c.pk, &c.sk);
            if let (Some(i), Some(p), Some(s_)) = (q.index, &c.ipk, &c.isk) {
                k.insert(ipk(i), s(p));
                k.insert(isk(i), s(s_));
            }
            k
        });
        loop {
            let mut req = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(&condition)
                .expression_attribute_names("#p", &pk_name)
                .expression_attribute_values(":p", s(&q.pk))
                .scan_index_forward(!q.descending)
                .limit((want - items.len()).min(1000) as i32)
                .set_exclusive_start_key(start.take());
            if !q.sk_prefix.is_empty() {
                req = req
                    .expression_attribute_names("#s", &sk_name)
                    .expression_attribute_values(":prefix", s(&q.sk_prefix));
            }
            req = match q.index {
                Some(i) => req.index_name(index_name(i)),
                None => req.consistent_read(true),
            };
            let out = req.send().await.map_err(sdk_error)?;
            for m in out.items() {
                items.push(Self::from_attributes(m)?);
            }
            match out.last_evaluated_key() {
                Some(lek) if items.len() < want => start = Some(lek.clone()),
                _ => break,
            }
        }
        let next = if items.len() > q.limit {
            items.truncate(q.limit);
            items.last().map(|last| q.cursor_for(last))
        } else {
            None
        };
        Ok(QueryPage { items, next })
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        validate_transaction(&writes)?;
        let items = writes.iter().map(|w| self.transact_item(w)).collect::<Result<Vec<_>, _>>()?;
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(ctx))
                if let TransactWriteItemsError::TransactionCanceledException(e) = ctx.err()
                    && let Some(index) = e.cancellation_reasons().iter().position(|r| {
                        matches!(r.code(), Some("ConditionalCheckFailed") | Some("TransactionConflict"))
                    }) =>
            {
                Err(StoreError::Conflict { index })
            }
            Err(e) => Err(sdk_error(e)),
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let out = self.client.describe_table().table_name(&self.table).send().await.map_err(|e| {
            let detail = DisplayErrorContext(&e).to_string();
            if detail.contains("ResourceNotFoundException") {
                StoreError::Unavailable(format!("table `{}` does not exist", self.table))
            } else {
                sdk_error(e)
            }
        })?;
        match out.table().and_then(|t| t.table_status()).map(|s| s.as_str()) {
            Some("ACTIVE") | Some("UPDATING") => Ok(()),
            other => Err(StoreError::Unavailable(format!(
                "table `{}` is {}",
                self.table,
                other.unwrap_or("unknown")
            ))),
        }
    }

    fn calls(&self) -> CallCounts {
        self.calls.snapshot()
    }
}
