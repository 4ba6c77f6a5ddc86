//! `last_rows('table')`: the latest row of every series of a raw table (a rollup
//! table is refused), as a table, from [`store::Store::last_rows`] — the current state of every
//! host, interface or path without reading every row:
//!
//! ```sql
//! SELECT hostname, time, usage_user FROM last_rows('cpu') ORDER BY hostname
//! ```

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::runtime::SpawnedTask;
use datafusion::common::{plan_err, ScalarValue};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use store::Store;

/// The table function `last_rows`, for the tables of one database.
#[derive(Debug)]
pub(crate) struct LastRowsFunction {
    store: Arc<Store>,
    db: String,
}

impl LastRowsFunction {
    /// `last_rows` over the tables of database `db`.
    pub(crate) fn new(store: Arc<Store>, db: &str) -> Self {
        LastRowsFunction {
            store,
            db: db.to_owned(),
        }
    }
}

impl TableFunctionImpl for LastRowsFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let table = match args.exprs() {
            [Expr::Literal(
                ScalarValue::Utf8(Some(name))
                | ScalarValue::LargeUtf8(Some(name))
                | ScalarValue::Utf8View(Some(name)),
                _,
            )] => name.clone(),
            _ => {
                return plan_err!(
                    "last_rows takes one argument, a table name in quotes: last_rows('cpu')"
                )
            }
        };
        let Some(schema) = self.store.table_schema(&self.db, &table) else {
            return plan_err!("last_rows: no table {table:?} in database {:?}", self.db);
        };
        // A series' latest rollup row may be one partial row of its bucket.
        if self.store.is_rollup_table(&self.db, &table) {
            return plan_err!(
                "last_rows: table {table:?} holds rollups, whose rows of one bucket merge at \
                 query time; ask for the latest bucket with GROUP BY and max(time)"
            );
        }
        Ok(Arc::new(LastRowsTable {
            store: Arc::clone(&self.store),
            db: self.db.clone(),
            table,
            schema,
        }))
    }
}

/// The latest rows of one table, read when the query runs.
#[derive(Debug)]
struct LastRowsTable {
    store: Arc<Store>,
    db: String,
    table: String,
    schema: SchemaRef,
}

#[async_trait]
impl TableProvider for LastRowsTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // The first use of a data file reads all of it: off the async threads.
        let (store, db, table, schema) = (
            Arc::clone(&self.store),
            self.db.clone(),
            self.table.clone(),
            self.schema(),
        );
        let rows = SpawnedTask::spawn_blocking(move || store.last_rows(&db, &table, &schema))
            .join_unwind()
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![rows]],
            self.schema(),
            projection.cloned(),
        )?)
    }
}
