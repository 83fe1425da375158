//! The object-store backend (S3 and S3-compatible servers, GCS, Azure), via the
//! `object_store` crate.
//!
//! - A file is buffered in memory until it reaches `sink.object_store.part_size_bytes`; a
//!   small file is then written with one PUT at close (atomic: readers see all of it or
//!   nothing). A larger one becomes a multipart upload: parts go up as they fill, and the
//!   object appears only when the upload is completed at close.
//! - Before the first part of an upload, a small marker object
//!   `PREFIX/_trendscore_uploads/NAME.json` records the upload id; it is deleted once the
//!   upload is completed. A crash leaves the marker behind, so on (re)assignment
//!   [`Storage::discard_after`] aborts the partition's unfinished uploads (they are invisible
//!   but cost storage) as well as deleting its objects past the committed offset.
//!   (object_store cannot list a bucket's multipart uploads, hence the markers; an S3
//!   lifecycle rule `AbortIncompleteMultipartUpload` is a good second net.)
//! - Credentials, region and endpoint come from the usual environment (`AWS_ACCESS_KEY_ID`,
//!   `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`,
//!   `AWS_ALLOW_HTTP`; `GOOGLE_*`; `AZURE_*`), then `[sink.object_store]` overrides.
//! - All calls run on a private single-thread tokio runtime: the sink is called from the
//!   worker thread, which has none; object_store retries transient errors itself.

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::config::SinkConfig;
use crate::sink::{parse_file_name, SourceKey, Storage};
use crate::{Result, ScorerError};

/// What the sink needs of a store: plain objects and explicit multipart uploads.
pub trait Store: ObjectStore + MultipartStore {}
impl<T: ObjectStore + MultipartStore> Store for T {}

const UPLOADS: &str = "_trendscore_uploads";

/// A "directory" (URL prefix) in an object store.
pub struct ObjectDir {
    store: Arc<dyn Store>,
    url: String,
    prefix: ObjectPath,
    part_size: usize,
    rt: tokio::runtime::Runtime,
}

fn store_err(url: &str, e: object_store::Error) -> ScorerError {
    ScorerError::ObjectStore {
        url: url.to_string(),
        source: Box::new(e),
    }
}

impl ObjectDir {
    /// The object store `config.output_dir` names, or `None` for a local path (a plain
    /// path or `file://`).
    pub fn from_config(config: &SinkConfig) -> Result<Option<Self>> {
        let Some(text) = config.output_dir.to_str() else {
            return Ok(None);
        };
        let Some((scheme, _)) = text.split_once("://") else {
            return Ok(None);
        };
        if scheme == "file" {
            return Ok(None);
        }
        let url = url::Url::parse(text)
            .map_err(|e| ScorerError::Config(format!("sink.output_dir {text:?}: {e}")))?;
        let o = &config.object_store;
        let cfg_err =
            |e: object_store::Error| ScorerError::Config(format!("sink.output_dir {text:?}: {e}"));
        let store: Arc<dyn Store> = match scheme {
            "s3" | "s3a" => {
                let mut b = object_store::aws::AmazonS3Builder::from_env().with_url(text);
                if let Some(e) = &o.endpoint {
                    b = b.with_endpoint(e);
                }
                if let Some(r) = &o.region {
                    b = b.with_region(r);
                }
                if o.allow_http {
                    b = b.with_allow_http(true);
                }
                Arc::new(b.build().map_err(cfg_err)?)
            }
            "gs" => Arc::new(
                object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_url(text)
                    .build()
                    .map_err(cfg_err)?,
            ),
            "az" | "adl" | "azure" | "abfs" | "abfss" => Arc::new(
                object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_url(text)
                    .build()
                    .map_err(cfg_err)?,
            ),
            other => {
                return Err(ScorerError::Config(format!(
                    "sink.output_dir {text:?}: unsupported scheme {other}:// (s3, gs, az, file \
                     or a plain path)"
                )))
            }
        };
        // The bucket (or container) is the URL's host; the prefix is its path.
        let prefix = ObjectPath::from(url.path().trim_start_matches('/'));
        Self::with_store(
            store,
            text.trim_end_matches('/'),
            prefix,
            o.part_size_bytes.max(5 << 20) as usize,
        )
        .map(Some)
    }

    /// A directory `prefix` of `store` (named `url` in errors and locations), uploading
    /// files of `part_size` bytes or more in parts.
    pub fn with_store(
        store: Arc<dyn Store>,
        url: &str,
        prefix: ObjectPath,
        part_size: usize,
    ) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ScorerError::Internal(format!("tokio runtime: {e}")))?;
        Ok(Self {
            store,
            url: url.to_string(),
            prefix,
            part_size: part_size.max(1),
            rt,
        })
    }

    fn path(&self, rel: &str) -> ObjectPath {
        let mut p = self.prefix.clone();
        for part in rel.split('/').filter(|s| !s.is_empty()) {
            p = p.clone().join(part);
        }
        p
    }

    fn marker(&self, name: &str) -> ObjectPath {
        self.path(&format!("{UPLOADS}/{name}.json"))
    }

    /// Uploads the first `n` buffered bytes as the next part (starting the upload first).
    fn put_part(&self, out: &mut ObjectOut, n: usize) -> Result<()> {
        let rest = out.buf.split_off(n.min(out.buf.len()));
        let data: Vec<u8> = std::mem::replace(&mut out.buf, rest);
        let up = match &mut out.upload {
            Some(up) => up,
            None => {
                let id = self
                    .rt
                    .block_on(self.store.create_multipart(&out.key))
                    .map_err(|e| store_err(&self.url, e))?;
                let record = serde_json::json!({"key": out.key.as_ref(), "upload_id": id});
                self.rt
                    .block_on(self.store.put(
                        &out.marker,
                        PutPayload::from(record.to_string().into_bytes()),
                    ))
                    .map_err(|e| store_err(&self.url, e))?;
                out.upload.insert(Upload {
                    id,
                    parts: Vec::new(),
                })
            }
        };
        let idx = up.parts.len();
        let part = self
            .rt
            .block_on(
                self.store
                    .put_part(&out.key, &up.id, idx, PutPayload::from(data)),
            )
            .map_err(|e| store_err(&self.url, e))?;
        up.parts.push(part);
        Ok(())
    }
}

struct Upload {
    id: String,
    parts: Vec<PartId>,
}

/// An open object: bytes not yet uploaded, and the multipart upload once there is one.
pub struct ObjectOut {
    buf: Vec<u8>,
    key: ObjectPath,
    marker: ObjectPath,
    upload: Option<Upload>,
}

impl std::io::Write for ObjectOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Storage for ObjectDir {
    type Out = ObjectOut;

    fn create(&mut self, dir: &str, name: &str) -> Result<ObjectOut> {
        let rel = if dir.is_empty() {
            name.to_string()
        } else {
            format!("{dir}/{name}")
        };
        Ok(ObjectOut {
            buf: Vec::new(),
            key: self.path(&rel),
            marker: self.marker(name),
            upload: None,
        })
    }

    fn progress(&mut self, out: &mut ObjectOut) -> Result<()> {
        while out.buf.len() >= self.part_size {
            self.put_part(out, self.part_size)?;
        }
        Ok(())
    }

    fn commit(&mut self, mut out: ObjectOut) -> Result<String> {
        let location = format!(
            "{}/{}",
            self.url,
            out.key
                .as_ref()
                .strip_prefix(self.prefix.as_ref())
                .unwrap_or(out.key.as_ref())
                .trim_start_matches('/')
        );
        // Whole parts first (a large last row group is uploaded in parts too).
        while out.buf.len() > self.part_size {
            self.put_part(&mut out, self.part_size)?;
        }
        if out.upload.is_none() {
            let data = std::mem::take(&mut out.buf);
            self.rt
                .block_on(self.store.put(&out.key, PutPayload::from(data)))
                .map_err(|e| store_err(&self.url, e))?;
            return Ok(location);
        }
        if !out.buf.is_empty() {
            let n = out.buf.len();
            self.put_part(&mut out, n)?;
        }
        let up = out.upload.take().expect("checked above");
        self.rt
            .block_on(self.store.complete_multipart(&out.key, &up.id, up.parts))
            .map_err(|e| store_err(&self.url, e))?;
        self.rt
            .block_on(self.store.delete(&out.marker))
            .map_err(|e| store_err(&self.url, e))?;
        Ok(location)
    }

    fn discard_after(&mut self, source: &SourceKey, committed: i64) -> Result<usize> {
        let listed: Vec<object_store::ObjectMeta> = self
            .rt
            .block_on(self.store.list(Some(&self.prefix)).try_collect())
            .map_err(|e| store_err(&self.url, e))?;
        let mut removed = 0;
        for meta in listed {
            let Some(name) = meta.location.filename() else {
                continue;
            };
            let in_uploads = meta.location.as_ref().contains(&format!("{UPLOADS}/"));
            let base = name
                .strip_suffix(".json")
                .filter(|_| in_uploads)
                .unwrap_or(name);
            let Some((topic, partition, first, _)) = parse_file_name(base) else {
                continue;
            };
            if topic != source.topic || partition != source.partition {
                continue;
            }
            if in_uploads {
                // An upload a crash left unfinished (or finished but not yet unmarked).
                let bytes = self
                    .rt
                    .block_on(async { self.store.get(&meta.location).await?.bytes().await })
                    .map_err(|e| store_err(&self.url, e))?;
                let record: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                if let (Some(key), Some(id)) =
                    (record["key"].as_str(), record["upload_id"].as_str())
                {
                    let key = ObjectPath::from(key);
                    if let Err(e) = self
                        .rt
                        .block_on(self.store.abort_multipart(&key, &id.to_string()))
                    {
                        tracing::warn!(error = %e, key = %key, "aborting an unfinished upload");
                    }
                }
                self.rt
                    .block_on(self.store.delete(&meta.location))
                    .map_err(|e| store_err(&self.url, e))?;
                removed += 1;
            } else if first >= committed {
                self.rt
                    .block_on(self.store.delete(&meta.location))
                    .map_err(|e| store_err(&self.url, e))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn describe(&self) -> String {
        self.url.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PartitionBy;
    use crate::sink::{PredictionSink, Rolling};
    use chrono::NaiveDate;
    use object_store::memory::InMemory;
    use std::time::Instant;
    use trendscore_schemas::PredictionRow;

    fn pred(i: i64) -> PredictionRow {
        let w = NaiveDate::from_ymd_opt(2024, 1, 5).unwrap() + chrono::Duration::weeks(i % 40);
        PredictionRow {
            ticker: format!("T{i}"),
            week: w,
            model_version: "v1".into(),
            trend_7d: i as f32 * 0.001,
            p_up_7d: 0.6,
            trend_30d: -0.2,
            p_up_30d: 0.4,
            attention: (0..12).map(|k| (i * 12 + k) as f32 * 1e-4).collect(),
            window_start: w - chrono::Duration::weeks(11),
            scored_at: trendscore_schemas::now_ms(),
            source_partition: Some(0),
            source_offset: Some(i),
        }
    }

    fn sink(store: &Arc<InMemory>) -> Rolling<ObjectDir> {
        let config = SinkConfig {
            partition_by: PartitionBy::None,
            row_group_rows: 256,
            ..SinkConfig::default()
        };
        let dir = ObjectDir::with_store(store.clone(), "memory://b/p", ObjectPath::from("p"), 4096)
            .unwrap();
        Rolling::new(&config, dir).unwrap()
    }

    fn list(store: &InMemory) -> Vec<String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut v: Vec<String> = rt
            .block_on(store.list(None).try_collect::<Vec<_>>())
            .unwrap()
            .into_iter()
            .map(|m| m.location.to_string())
            .collect();
        v.sort();
        v
    }

    fn src() -> SourceKey {
        SourceKey {
            topic: "rows".into(),
            partition: 0,
        }
    }

    #[test]
    fn large_files_go_up_in_parts_and_appear_only_when_complete() {
        let store = Arc::new(InMemory::new());
        let mut s = sink(&store);
        let rows: Vec<_> = (0..2000).map(pred).collect();
        let offsets: Vec<i64> = (0..2000).collect();
        s.write(&src(), &rows, &offsets, Instant::now()).unwrap();
        let open = list(&store);
        assert_eq!(
            open,
            vec!["p/_trendscore_uploads/rows-0-00000000000000000000.parquet.json".to_string()],
            "a multipart upload is under way, the object is not visible"
        );
        let closed = s.close_all().unwrap();
        assert_eq!(
            closed[0].location,
            "memory://b/p/rows-0-00000000000000000000.parquet"
        );
        assert_eq!(
            list(&store),
            vec!["p/rows-0-00000000000000000000.parquet".to_string()]
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bytes = rt
            .block_on(async {
                store
                    .get(&ObjectPath::from("p/rows-0-00000000000000000000.parquet"))
                    .await?
                    .bytes()
                    .await
            })
            .unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap();
        let mut back = Vec::new();
        for b in reader {
            back.extend(trendscore_schemas::read_predictions_batch(&b.unwrap()).unwrap());
        }
        assert_eq!(back, rows);
    }

    #[test]
    fn an_upload_a_crash_left_behind_is_aborted_and_later_files_removed() {
        let store = Arc::new(InMemory::new());
        {
            let mut s = sink(&store);
            let rows: Vec<_> = (0..10).map(pred).collect();
            s.write(&src(), &rows, &(0..10).collect::<Vec<_>>(), Instant::now())
                .unwrap();
            s.close_all().unwrap(); // durable: first offset 0
            let rows: Vec<_> = (10..2010).map(pred).collect();
            s.write(
                &src(),
                &rows,
                &(10..2010).collect::<Vec<_>>(),
                Instant::now(),
            )
            .unwrap();
            // crash: the sink goes away mid-upload
        }
        assert_eq!(list(&store).len(), 2, "one object and one upload marker");
        let mut s = sink(&store);
        let other = SourceKey {
            topic: "rows".into(),
            partition: 1,
        };
        assert_eq!(
            s.discard_after(&other, 0).unwrap(),
            0,
            "another partition's are left"
        );
        assert_eq!(
            s.discard_after(&src(), 10).unwrap(),
            1,
            "the marker (upload aborted)"
        );
        assert_eq!(
            list(&store),
            vec!["p/rows-0-00000000000000000000.parquet".to_string()]
        );
        assert_eq!(
            s.discard_after(&src(), 0).unwrap(),
            1,
            "files at or past the committed offset"
        );
        assert!(list(&store).is_empty());
    }
}
