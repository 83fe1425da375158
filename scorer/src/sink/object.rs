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
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ScorerError::Internal(format!("tokio runtime: {e}")))?;
        Ok(Some(Self {
            store,
            url: text.trim_end_matches('/').to_string(),
            prefix,
            part_size: o.part_size_bytes.max(5 << 20) as usize,
            rt,
        }))
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

    fn put_part(&self, out: &mut ObjectOut) -> Result<()> {
        let data: Vec<u8> = std::mem::take(&mut out.buf);
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
        if out.buf.len() >= self.part_size {
            self.put_part(out)?;
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
        if out.upload.is_none() {
            let data = std::mem::take(&mut out.buf);
            self.rt
                .block_on(self.store.put(&out.key, PutPayload::from(data)))
                .map_err(|e| store_err(&self.url, e))?;
            return Ok(location);
        }
        if !out.buf.is_empty() {
            self.put_part(&mut out)?;
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
