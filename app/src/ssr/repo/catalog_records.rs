//! What the store remembers about the catalog beyond the `catalog/` folder: versions published
//! through the API (their template is in the artifact store) and deprecations.

use serde::{Deserialize, Serialize};

use crate::domain::{ids::Id, time::Timestamp};

use super::{Repo, RepoError, from_item, to_json};
use crate::ssr::store::{
    Cond, Item, Query, Write,
    keys::{CATALOG as PARTITION, catalog_version},
};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogRecord {
    pub slug: String,
    pub version: String,
    /// Set for published versions: where the template is.
    pub artifact_key: Option<String>,
    pub published_at: Option<Timestamp>,
    pub published_by: Option<Id>,
    pub deprecated: bool,
    /// 0: not stored yet.
    #[serde(skip)]
    pub rev: u64,
}

impl Repo {
    /// Every record, in slug and version-text order.
    pub async fn catalog_records(&self) -> Result<Vec<CatalogRecord>, RepoError> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self.store.query(Query::table(PARTITION).limit(1000).after(after.take())).await?;
            for item in &page.items {
                let mut r: CatalogRecord = from_item(item)?;
                r.rev = item.rev;
                out.push(r);
            }
            match page.next {
                Some(c) => after = Some(c),
                None => return Ok(out),
            }
        }
    }

    pub async fn catalog_record(
        &self,
        slug: &str,
        version: &str,
    ) -> Result<Option<CatalogRecord>, RepoError> {
        let item = self.store.get(PARTITION, &catalog_version(slug, version)).await?;
        item.map(|i| {
            let mut r: CatalogRecord = from_item(&i)?;
            r.rev = i.rev;
            Ok(r)
        })
        .transpose()
    }

    /// Saves the record read at `r.rev` (0: creates it; a duplicate or stale write conflicts).
    pub async fn save_catalog_record(&self, r: &CatalogRecord) -> Result<(), RepoError> {
        let cond = if r.rev == 0 { Cond::NotExists } else { Cond::Rev(r.rev) };
        let item = Item::new(PARTITION, catalog_version(&r.slug, &r.version), r.rev + 1, to_json(r));
        self.store.transact(vec![Write::put(item, cond)]).await?;
        Ok(())
    }
}
