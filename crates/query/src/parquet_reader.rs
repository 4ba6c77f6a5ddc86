//! How queries open persisted Parquet files: through the runtime's metadata
//! cache, footer and page index together.
//!
//! DataFusion's Parquet scan asks its reader for the footer alone and then
//! reads and parses the page index itself, every query, outside the cache.
//! Asking for both at the first open puts both in the cache, so a selective
//! query on a warm file parses nothing. Data files are immutable and their
//! numbers never reused, so an entry never goes stale.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::ParquetFileReaderFactory;
use datafusion::error::Result;
use datafusion::execution::cache::cache_manager::FileMetadataCache;
use datafusion::object_store::ObjectStore;
use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
use datafusion::parquet::arrow::async_reader::AsyncFileReader;
use datafusion::parquet::file::metadata::ParquetMetaData;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures::future::BoxFuture;

/// Creates readers whose metadata, page index included, comes from and
/// goes to a [`FileMetadataCache`].
#[derive(Debug)]
pub(crate) struct CachedReaders(CachedParquetFileReaderFactory);

impl CachedReaders {
    /// Readers of files in `store`, cached in `cache`.
    pub(crate) fn new(store: Arc<dyn ObjectStore>, cache: Arc<FileMetadataCache>) -> Self {
        CachedReaders(CachedParquetFileReaderFactory::new(store, cache))
    }
}

impl ParquetFileReaderFactory for CachedReaders {
    fn create_reader(
        &self,
        partition_index: usize,
        file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> Result<Box<dyn AsyncFileReader + Send>> {
        let reader = self
            .0
            .create_reader(partition_index, file, metadata_size_hint, metrics)?;
        Ok(Box::new(WithPageIndex(reader)))
    }
}

/// A reader that always fetches the page index with the footer.
struct WithPageIndex(Box<dyn AsyncFileReader + Send>);

impl AsyncFileReader for WithPageIndex {
    fn get_bytes(
        &mut self,
        range: Range<u64>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<Bytes>> {
        self.0.get_bytes(range)
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<Vec<Bytes>>> {
        self.0.get_byte_ranges(ranges)
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, datafusion::parquet::errors::Result<Arc<ParquetMetaData>>> {
        // No options: with a cache, the reader loads the page index too (and
        // files are not encrypted, the only other thing options carry).
        self.0.get_metadata(None)
    }
}
