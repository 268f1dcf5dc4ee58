//! A Qdrant server or cluster over gRPC (`qdrant-client`): for corpora that
//! outgrow one machine, or a Qdrant the user already runs. One collection per
//! store; the chunk id is the point id and is also kept in the payload, with
//! an integer index, so range deletes work as with the in-process engine.

use std::future::Future;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use qdrant_client::qdrant::point_id::PointIdOptions;
use qdrant_client::qdrant::vectors_config::Config as VectorsConfigKind;
use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
    DeletePointsBuilder, Distance, FieldType, Filter, PointStruct, QueryPointsBuilder, Range,
    UpsertPointsBuilder, VectorParamsBuilder,
};
use qdrant_client::{Payload, Qdrant, QdrantError};
use tokio::runtime::Runtime;

use super::{VectorStore, ID_KEY};

/// Vectors in a collection of a Qdrant server, reached over gRPC.
///
/// The trait is synchronous, so the store owns a small tokio runtime and
/// blocks on each call. It must not be used from inside another tokio
/// runtime's worker (folio's model work runs on plain threads).
pub struct ServerStore {
    client: Qdrant,
    runtime: Runtime,
    url: String,
    collection: String,
}

/// The URL with any `user:password@` replaced by `***@`: what messages,
/// reports and `--json` show of it.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***@{}", &url[..scheme_end], &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// `text` with the URL's credentials, wherever the client library echoed
/// them, redacted.
fn redact_in(text: &str, url: &str) -> String {
    let shown = redact_url(url);
    if shown == url {
        return text.to_string();
    }
    text.replace(url, &shown)
}

/// Whether `url` is plain http to a host other than this machine (where a
/// key or password would cross a network unencrypted).
fn plain_http_to_another_host(url: &str) -> bool {
    let Some(rest) = url
        .get(..7)
        .filter(|s| s.eq_ignore_ascii_case("http://"))
        .map(|_| &url[7..])
    else {
        return false;
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or(v6)
    } else {
        host_port.split(':').next().unwrap_or(host_port)
    };
    !(host.eq_ignore_ascii_case("localhost") || host.starts_with("127.") || host == "::1")
}

/// Major version of the pinned qdrant-client (`=1.20.0` in Cargo.toml).
const CLIENT_MAJOR: &str = "1";

/// Largest batch sent in one upsert request (gRPC messages stay well under
/// the 4 MiB default limit: 256 × 384 floats ≈ 0.4 MB).
const UPSERT_BATCH: usize = 256;

impl ServerStore {
    /// Connects to the server at `url` (gRPC, e.g. `http://localhost:6334`)
    /// and opens `collection`, creating it for `dims`-dimensional cosine
    /// vectors with an integer index on the chunk id if it does not exist.
    pub fn connect(url: &str, collection: &str, dims: usize) -> Result<Self> {
        let shown = redact_url(url);
        let api_key = std::env::var("QDRANT_API_KEY")
            .ok()
            .filter(|k| !k.is_empty());
        if (api_key.is_some() || shown != url) && plain_http_to_another_host(url) {
            log::warn!(
                "{shown} is plain http to another machine: the Qdrant API key or \
                 password goes over the network unencrypted; use https"
            );
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the runtime for the Qdrant client")?;
        let client = Qdrant::from_url(url)
            .skip_compatibility_check()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(5))
            .api_key(api_key)
            .build()
            .map_err(|e| anyhow!("--qdrant-url {shown}: {}", redact_in(&e.to_string(), url)))?;
        let store = Self {
            client,
            runtime,
            url: shown,
            collection: collection.to_string(),
        };
        store.check_server()?;
        store.ensure_collection(dims)?;
        Ok(store)
    }

    /// Fails early, with what to do, when nothing answers at the URL; warns
    /// when the server's major version differs from the client's.
    fn check_server(&self) -> Result<()> {
        let reply = self
            .runtime
            .block_on(self.client.health_check())
            .map_err(|e| {
                anyhow!(
                    "cannot reach a Qdrant server at {} ({e}). Start one (e.g. `docker run -p \
                     6334:6334 qdrant/qdrant`) and pass its gRPC address (port 6334, not the \
                     REST port 6333), or leave out --qdrant-url to use the in-process engine",
                    self.url
                )
            })?;
        let server_major = reply.version.split('.').next().unwrap_or_default();
        if !server_major.is_empty() && server_major != CLIENT_MAJOR {
            log::warn!(
                "Qdrant server {} is version {}; folio's client speaks {CLIENT_MAJOR}.x",
                self.url,
                reply.version
            );
        }
        Ok(())
    }

    fn ensure_collection(&self, dims: usize) -> Result<()> {
        let name = &self.collection;
        let exists = self.call(
            "checking the collection",
            self.client.collection_exists(name.as_str()),
        )?;
        if exists {
            let info = self.call(
                "reading the collection",
                self.client.collection_info(name.as_str()),
            )?;
            let size = info
                .result
                .and_then(|r| r.config)
                .and_then(|c| c.params)
                .and_then(|p| p.vectors_config)
                .and_then(|v| v.config);
            match size {
                Some(VectorsConfigKind::Params(p)) if p.size as usize == dims => return Ok(()),
                Some(VectorsConfigKind::Params(p)) => bail!(
                    "Qdrant collection {name} at {} holds {}-dimensional vectors; folio's \
                     embeddings have {dims}. Use another store folder (the collection is named \
                     after it) or delete the collection",
                    self.url,
                    p.size
                ),
                _ => bail!(
                    "Qdrant collection {name} at {} has named or no vectors; folio needs one \
                     unnamed {dims}-dimensional vector per point",
                    self.url
                ),
            }
        }
        self.call(
            "creating the collection",
            self.client.create_collection(
                CreateCollectionBuilder::new(name.as_str())
                    .vectors_config(VectorParamsBuilder::new(dims as u64, Distance::Cosine)),
            ),
        )?;
        self.call(
            "indexing the chunk id",
            self.client.create_field_index(
                CreateFieldIndexCollectionBuilder::new(name.as_str(), ID_KEY, FieldType::Integer)
                    .wait(true),
            ),
        )?;
        Ok(())
    }

    /// Runs one client call to completion; a failure names the server and
    /// `what` was being done.
    fn call<T>(
        &self,
        what: &str,
        request: impl Future<Output = Result<T, QdrantError>>,
    ) -> Result<T> {
        self.runtime
            .block_on(request)
            .map_err(|e| anyhow!("Qdrant at {}: {what}: {e}", self.url))
    }

    /// The collection this store writes to.
    pub fn collection(&self) -> &str {
        &self.collection
    }
}

impl VectorStore for ServerStore {
    fn upsert(&self, points: &[(u64, Vec<f32>)]) -> Result<()> {
        for batch in points.chunks(UPSERT_BATCH) {
            let list: Vec<PointStruct> = batch
                .iter()
                .map(|(id, v)| {
                    let mut payload = Payload::new();
                    payload.insert(ID_KEY, *id as i64);
                    PointStruct::new(*id, v.clone(), payload)
                })
                .collect();
            self.call(
                "upserting vectors",
                self.client
                    .upsert_points(UpsertPointsBuilder::new(&self.collection, list).wait(true)),
            )?;
        }
        Ok(())
    }

    fn delete_range(&self, start: u64, end: Option<u64>) -> Result<()> {
        let range = Range {
            gte: Some(start as f64),
            lt: end.map(|e| e as f64),
            ..Default::default()
        };
        let filter = Filter::must([Condition::range(ID_KEY, range)]);
        self.call(
            "deleting vectors",
            self.client.delete_points(
                DeletePointsBuilder::new(&self.collection)
                    .points(filter)
                    .wait(true),
            ),
        )?;
        Ok(())
    }

    fn search(&self, query: &[f32], k: usize) -> Result<Vec<(u64, f32)>> {
        let reply = self.call(
            "searching",
            self.client.query(
                QueryPointsBuilder::new(&self.collection)
                    .query(query.to_vec())
                    .limit(k as u64),
            ),
        )?;
        Ok(reply
            .result
            .into_iter()
            .filter_map(|p| match p.id?.point_id_options? {
                PointIdOptions::Num(id) => Some((id, p.score)),
                PointIdOptions::Uuid(_) => None,
            })
            .collect())
    }

    /// Every write waits for the server to apply it (`wait: true`), so there
    /// is nothing left to flush.
    fn commit(&self) -> Result<()> {
        Ok(())
    }

    fn len(&self) -> Result<usize> {
        let reply = self.call(
            "counting vectors",
            self.client
                .count(CountPointsBuilder::new(&self.collection).exact(true)),
        )?;
        Ok(reply.result.map_or(0, |r| r.count as usize))
    }

    fn describe(&self) -> String {
        format!(
            "Qdrant server {} (collection {})",
            self.url, self.collection
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show_and_plain_http_to_a_remote_host_is_told() {
        assert_eq!(
            redact_url("http://admin:s3cret@qdrant.example:6334/x?y=1"),
            "http://***@qdrant.example:6334/x?y=1"
        );
        assert_eq!(redact_url("http://localhost:6334"), "http://localhost:6334");
        assert_eq!(
            redact_url("https://h:6334/p@th"),
            "https://h:6334/p@th",
            "an @ after the host is not a credential"
        );
        let msg = redact_in("bad uri http://a:b@h:1: refused", "http://a:b@h:1");
        assert!(!msg.contains("a:b"), "{msg}");
        assert!(plain_http_to_another_host("http://qdrant.example:6334"));
        assert!(plain_http_to_another_host("HTTP://u:p@10.0.0.5:6334"));
        for local in [
            "http://localhost:6334",
            "http://127.0.0.1:6334",
            "http://[::1]:6334",
            "https://qdrant.example:6334",
        ] {
            assert!(!plain_http_to_another_host(local), "{local}");
        }
    }
}
