//! A Qdrant gRPC server on 127.0.0.1 for tests: qdrant-client's own service
//! definitions (tonic), served from folio's in-process vector index
//! (`HnswStore`, one per collection). It implements the calls folio's
//! `ServerStore` makes and checks their shape strictly (cosine distance, an
//! integer index on the chunk id, range filters on it, dense queries); every
//! other call answers `unimplemented`.

mod grpc;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use folio_retrieval::vector::{HnswStore, VectorStore, ID_KEY};
use qdrant_client::qdrant::{self as pb, value::Kind};
use tonic::Status;

/// Requests the server has answered, by method, so tests can check that
/// calls really went over the wire.
pub type CallLog = Arc<Mutex<Vec<&'static str>>>;

struct Collection {
    store: HnswStore,
    dims: u64,
    id_index: bool,
}

/// The service state: collections by name, each an in-process shard.
#[derive(Clone)]
pub struct Loopback {
    root: PathBuf,
    collections: Arc<Mutex<HashMap<String, Collection>>>,
    calls: CallLog,
}

/// A running server: its address and the log of calls it served.
pub struct Running {
    pub url: String,
    pub calls: CallLog,
}

/// Starts the server on a free port of 127.0.0.1, on its own thread and
/// runtime, storing shards under `root`. It lives until the process exits.
pub fn start(root: PathBuf) -> Running {
    let calls: CallLog = Arc::default();
    let service = Loopback {
        root,
        collections: Arc::default(),
        calls: calls.clone(),
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let addr: SocketAddr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            tonic::transport::Server::builder()
                .add_service(pb::qdrant_server::QdrantServer::new(service.clone()))
                .add_service(pb::collections_server::CollectionsServer::new(
                    service.clone(),
                ))
                .add_service(pb::points_server::PointsServer::new(service))
                .serve_with_incoming(incoming)
                .await
                .expect("loopback Qdrant server");
        });
    });
    Running {
        url: format!("http://{addr}"),
        calls,
    }
}

fn internal(e: anyhow::Error) -> Status {
    Status::internal(e.to_string())
}

impl Loopback {
    fn log(&self, call: &'static str) {
        self.calls.lock().unwrap().push(call);
    }

    fn with<T>(
        &self,
        name: &str,
        f: impl FnOnce(&mut Collection) -> Result<T, Status>,
    ) -> Result<T, Status> {
        let mut all = self.collections.lock().unwrap();
        let c = all
            .get_mut(name)
            .ok_or_else(|| Status::not_found(format!("collection {name} not found")))?;
        f(c)
    }

    fn health_check(&self, _: pb::HealthCheckRequest) -> Result<pb::HealthCheckReply, Status> {
        self.log("health_check");
        Ok(pb::HealthCheckReply {
            title: "folio loopback (HNSW on LMDB)".into(),
            version: "1.17.0".into(),
            commit: None,
        })
    }

    fn exists(
        &self,
        r: pb::CollectionExistsRequest,
    ) -> Result<pb::CollectionExistsResponse, Status> {
        self.log("collection_exists");
        let exists = self
            .collections
            .lock()
            .unwrap()
            .contains_key(&r.collection_name);
        Ok(pb::CollectionExistsResponse {
            result: Some(pb::CollectionExists { exists }),
            time: 0.0,
        })
    }

    fn create(&self, r: pb::CreateCollection) -> Result<pb::CollectionOperationResponse, Status> {
        self.log("create_collection");
        let params = match r.vectors_config.and_then(|v| v.config) {
            Some(pb::vectors_config::Config::Params(p)) => p,
            other => return Err(Status::invalid_argument(format!("vectors: {other:?}"))),
        };
        if params.distance != pb::Distance::Cosine as i32 {
            return Err(Status::invalid_argument("only cosine distance is served"));
        }
        let mut all = self.collections.lock().unwrap();
        if all.contains_key(&r.collection_name) {
            return Err(Status::already_exists(r.collection_name));
        }
        let dir = self.root.join(&r.collection_name);
        let store = HnswStore::open_or_create(&dir, params.size as usize).map_err(internal)?;
        all.insert(
            r.collection_name,
            Collection {
                store,
                dims: params.size,
                id_index: false,
            },
        );
        Ok(pb::CollectionOperationResponse {
            result: true,
            time: 0.0,
        })
    }

    fn info(
        &self,
        r: pb::GetCollectionInfoRequest,
    ) -> Result<pb::GetCollectionInfoResponse, Status> {
        self.log("collection_info");
        self.with(&r.collection_name, |c| {
            let params = pb::CollectionParams {
                vectors_config: Some(pb::VectorsConfig {
                    config: Some(pb::vectors_config::Config::Params(pb::VectorParams {
                        size: c.dims,
                        distance: pb::Distance::Cosine as i32,
                        ..Default::default()
                    })),
                }),
                ..Default::default()
            };
            Ok(pb::GetCollectionInfoResponse {
                result: Some(pb::CollectionInfo {
                    config: Some(pb::CollectionConfig {
                        params: Some(params),
                        ..Default::default()
                    }),
                    points_count: Some(c.store.len().map_err(internal)? as u64),
                    ..Default::default()
                }),
                time: 0.0,
            })
        })
    }

    fn create_field_index(
        &self,
        r: pb::CreateFieldIndexCollection,
    ) -> Result<pb::PointsOperationResponse, Status> {
        self.log("create_field_index");
        if r.field_name != ID_KEY || r.field_type != Some(pb::FieldType::Integer as i32) {
            return Err(Status::invalid_argument(format!(
                "only an integer index on {ID_KEY} is served, not {} {:?}",
                r.field_name, r.field_type
            )));
        }
        self.with(&r.collection_name, |c| {
            c.id_index = true;
            Ok(done())
        })
    }

    fn upsert(&self, r: pb::UpsertPoints) -> Result<pb::PointsOperationResponse, Status> {
        self.log("upsert");
        let points = r
            .points
            .into_iter()
            .map(point_from_grpc)
            .collect::<Result<Vec<_>, Status>>()?;
        self.with(&r.collection_name, |c| {
            if let Some((id, v)) = points.iter().find(|(_, v)| v.len() as u64 != c.dims) {
                return Err(Status::invalid_argument(format!(
                    "point {id}: {} dimensions, collection has {}",
                    v.len(),
                    c.dims
                )));
            }
            c.store.upsert(&points).map_err(internal)?;
            c.store.commit().map_err(internal)?;
            Ok(done())
        })
    }

    fn delete(&self, r: pb::DeletePoints) -> Result<pb::PointsOperationResponse, Status> {
        self.log("delete");
        use pb::points_selector::PointsSelectorOneOf;
        let filter = match r.points.and_then(|p| p.points_selector_one_of) {
            Some(PointsSelectorOneOf::Filter(f)) => f,
            other => return Err(Status::invalid_argument(format!("selector: {other:?}"))),
        };
        let (start, end) = id_range_from_grpc(filter)?;
        self.with(&r.collection_name, |c| {
            if !c.id_index {
                return Err(Status::failed_precondition("range delete without an index"));
            }
            c.store.delete_range(start, end).map_err(internal)?;
            c.store.commit().map_err(internal)?;
            Ok(done())
        })
    }

    fn query(&self, r: pb::QueryPoints) -> Result<pb::QueryResponse, Status> {
        self.log("query");
        use pb::{query::Variant, vector_input::Variant as Input};
        let vector = match r.query.and_then(|q| q.variant) {
            Some(Variant::Nearest(pb::VectorInput {
                variant: Some(Input::Dense(d)),
            })) => d.data,
            other => return Err(Status::invalid_argument(format!("query: {other:?}"))),
        };
        let limit = r.limit.unwrap_or(10) as usize;
        self.with(&r.collection_name, |c| {
            let hits = c.store.search(&vector, limit).map_err(internal)?;
            Ok(pb::QueryResponse {
                result: hits
                    .into_iter()
                    .map(|(id, score)| pb::ScoredPoint {
                        id: Some(id.into()),
                        score,
                        ..Default::default()
                    })
                    .collect(),
                time: 0.0,
                usage: None,
            })
        })
    }

    fn count(&self, r: pb::CountPoints) -> Result<pb::CountResponse, Status> {
        self.log("count");
        self.with(&r.collection_name, |c| {
            Ok(pb::CountResponse {
                result: Some(pb::CountResult {
                    count: c.store.len().map_err(internal)? as u64,
                }),
                time: 0.0,
                usage: None,
            })
        })
    }
}

fn done() -> pb::PointsOperationResponse {
    pb::PointsOperationResponse {
        result: Some(pb::UpdateResult {
            operation_id: Some(0),
            status: pb::UpdateStatus::Completed as i32,
        }),
        time: 0.0,
        usage: None,
    }
}

/// A gRPC point as folio sends it: a numeric id, one dense unnamed vector
/// and the chunk id repeated in the payload.
fn point_from_grpc(p: pb::PointStruct) -> Result<(u64, Vec<f32>), Status> {
    use pb::{point_id::PointIdOptions, vector::Vector as VectorKind, vectors::VectorsOptions};
    let id = match p.id.and_then(|i| i.point_id_options) {
        Some(PointIdOptions::Num(n)) => n,
        other => return Err(Status::invalid_argument(format!("id: {other:?}"))),
    };
    let vector = match p.vectors.and_then(|v| v.vectors_options) {
        Some(VectorsOptions::Vector(pb::Vector {
            vector: Some(VectorKind::Dense(d)),
            ..
        })) => d.data,
        other => return Err(Status::invalid_argument(format!("vectors: {other:?}"))),
    };
    match p.payload.get(ID_KEY).and_then(|v| v.kind.clone()) {
        Some(Kind::IntegerValue(cid)) if cid as u64 == id => Ok((id, vector)),
        other => Err(Status::invalid_argument(format!(
            "payload {ID_KEY} = {other:?}, point id {id}"
        ))),
    }
}

/// The `[start, end)` chunk-id range of a filter `must: [range on cid]`.
fn id_range_from_grpc(f: pb::Filter) -> Result<(u64, Option<u64>), Status> {
    use pb::condition::ConditionOneOf;
    let [pb::Condition {
        condition_one_of: Some(ConditionOneOf::Field(field)),
    }] = f.must.as_slice()
    else {
        return Err(Status::invalid_argument(format!("filter: {f:?}")));
    };
    match (&field.key, &field.range) {
        (
            key,
            Some(pb::Range {
                gte: Some(start),
                lt,
                gt: None,
                lte: None,
            }),
        ) if key == ID_KEY => Ok((*start as u64, lt.map(|e| e as u64))),
        _ => Err(Status::invalid_argument(format!("condition: {field:?}"))),
    }
}
