//! DataFusion's view of the store: a schema per database, a table provider
//! per table.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::object_store::ObjectStoreUrl;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{col, lit, Expr, TableProviderFilterPushDown};
use datafusion::object_store::path::Path as ObjectPath;
use datafusion::object_store::ObjectMeta;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::ExecutionPlan;
use store::catalog::TIME_COLUMN;
use store::{ScanFile, Store};

use crate::parquet_reader::CachedReaders;
use crate::time_filter::time_range;

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
        self.store.table_names(&self.db)
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
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let scan = self
            .store
            .plan_scan(&self.db, &self.name, &self.schema, &time_range(filters))
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let partitions = state.config().target_partitions();
        let mut inputs = Vec::new();
        if !scan.files.is_empty() {
            inputs.push(self.parquet_scan(
                state,
                scan.files,
                scan.keep_from,
                projection,
                filters,
                limit,
            )?);
        }
        if !scan.batches.is_empty() {
            inputs.push(MemorySourceConfig::try_new_exec(
                &spread(scan.batches, partitions),
                self.schema(),
                projection.cloned(),
            )? as Arc<dyn ExecutionPlan>);
        }
        if inputs.is_empty() {
            let schema = match projection {
                Some(p) => Arc::new(self.schema.project(p)?),
                None => self.schema(),
            };
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        UnionExec::try_new(inputs)
    }

    /// DataFusion reads Parquet with row-group and page pruning; every
    /// filter is offered to it (`Inexact`: DataFusion still applies them
    /// to the rows that come back, from files and memory alike).
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }
}

impl StoreTable {
    /// A scan of persisted files by DataFusion's Parquet reader: the
    /// query's filters prune row groups and pages, only projected columns
    /// are decoded, and rows past the database's retention (`keep_from`)
    /// are dropped.
    fn parquet_scan(
        &self,
        state: &dyn Session,
        files: Vec<ScanFile>,
        keep_from: Option<i64>,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let df_schema = DFSchema::try_from(self.schema())?;
        let retention = keep_from
            .map(|t| col(TIME_COLUMN).gt_eq(lit(ScalarValue::TimestampNanosecond(Some(t), None))));
        let predicate = conjunction(filters.iter().cloned().chain(retention.clone()));
        let runtime = state.runtime_env();
        let object_store = runtime.object_store(ObjectStoreUrl::local_filesystem())?;
        let readers = CachedReaders::new(
            object_store,
            runtime.cache_manager.get_file_metadata_cache(),
        );
        let mut source = ParquetSource::new(self.schema())
            .with_table_parquet_options(state.table_options().parquet.clone())
            .with_parquet_file_reader_factory(Arc::new(readers));
        if let Some(predicate) = predicate {
            source = source.with_predicate(state.create_physical_expr(predicate, &df_schema)?);
        }
        let n = state.config().target_partitions().clamp(1, files.len());
        let mut groups = vec![Vec::new(); n];
        for (i, file) in files.into_iter().enumerate() {
            let location = ObjectPath::from_absolute_path(&file.path)
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            let meta = ObjectMeta {
                location,
                last_modified: Default::default(),
                size: file.file.bytes,
                e_tag: None,
                version: None,
            };
            // The lease travels with the file: it stays on disk until read.
            groups[i % n].push(PartitionedFile::new_from_meta(meta).with_extension(file.lease));
        }
        let builder =
            FileScanConfigBuilder::new(ObjectStoreUrl::local_filesystem(), Arc::new(source))
                .with_file_groups(groups.into_iter().map(FileGroup::new).collect());
        let Some(retention) = retention else {
            let config = builder
                .with_projection_indices(projection.cloned())?
                .with_limit(limit)
                .build();
            return Ok(DataSourceExec::from_data_source(config));
        };
        // Retention is exact: filter every row (reading `time` too), then
        // project to the columns asked for.
        let time = self.schema.index_of(TIME_COLUMN)?;
        let wanted: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let mut read = wanted.clone();
        if !read.contains(&time) {
            read.push(time);
        }
        let read_schema = Arc::new(self.schema.project(&read)?);
        let config = builder.with_projection_indices(Some(read.clone()))?.build();
        let exec: Arc<dyn ExecutionPlan> = DataSourceExec::from_data_source(config);
        let exec = Arc::new(FilterExec::try_new(
            state.create_physical_expr(retention, &DFSchema::try_from(read_schema)?)?,
            exec,
        )?);
        if wanted == read {
            return Ok(exec);
        }
        let exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = wanted
            .iter()
            .enumerate()
            .map(|(at, &i)| {
                let name = self.schema.field(i).name();
                (Arc::new(Column::new(name, at)) as _, name.clone())
            })
            .collect();
        Ok(Arc::new(ProjectionExec::try_new(exprs, exec)?))
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
