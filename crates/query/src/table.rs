//! DataFusion's view of the store: a schema per database, a table provider
//! per table.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use store::Store;

use crate::time_filter::{restricts_time, time_range};

/// The tables of one database.
#[derive(Debug)]
pub struct StoreSchema {
    store: Arc<Store>,
    db: String,
}

impl StoreSchema {
    /// The tables of database `db` in `store`.
    pub fn new(store: Arc<Store>, db: &str) -> Self {
        StoreSchema {
            store,
            db: db.to_owned(),
        }
    }
}

#[async_trait]
impl SchemaProvider for StoreSchema {
    fn table_names(&self) -> Vec<String> {
        self.store
            .catalog()
            .databases
            .get(&self.db)
            .map(|d| d.tables.keys().cloned().collect())
            .unwrap_or_default()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        Ok(self.store.table_schema(&self.db, name).map(|schema| {
            Arc::new(StoreTable {
                store: Arc::clone(&self.store),
                db: self.db.clone(),
                name: name.to_owned(),
                schema,
            }) as Arc<dyn TableProvider>
        }))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.store.table_schema(&self.db, name).is_some()
    }
}

/// One table: its rows as of the moment a query scans it.
#[derive(Debug)]
pub struct StoreTable {
    store: Arc<Store>,
    db: String,
    name: String,
    /// The schema when the query was planned; later columns are left out.
    schema: SchemaRef,
}

#[async_trait]
impl TableProvider for StoreTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batches = self
            .store
            .scan_with_schema(&self.db, &self.name, &self.schema, &time_range(filters))
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let partitions = spread(batches, state.config().target_partitions());
        let exec =
            MemorySourceConfig::try_new_exec(&partitions, self.schema(), projection.cloned())?;
        Ok(exec)
    }

    /// Time comparisons prune chunks but not rows, so DataFusion still
    /// applies them (`Inexact`); other filters are left to it entirely.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if restricts_time(f) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }
}

/// Deals `batches` round-robin into at most `n` partitions so scans run in
/// parallel.
fn spread(batches: Vec<RecordBatch>, n: usize) -> Vec<Vec<RecordBatch>> {
    let n = n.clamp(1, batches.len().max(1));
    let mut partitions = vec![Vec::new(); n];
    for (i, batch) in batches.into_iter().enumerate() {
        partitions[i % n].push(batch);
    }
    partitions
}
