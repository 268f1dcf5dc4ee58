//! Qdrant's engine in process: one `qdrant-edge` shard in the store folder.

use std::path::Path;

use anyhow::{anyhow, Result};
use qdrant_edge::external::ordered_float::OrderedFloat;
use qdrant_edge::external::serde_json::json;
use qdrant_edge::{
    Condition, CreateIndex, Distance, EdgeConfigBuilder, EdgeShard, EdgeVectorParamsBuilder,
    FieldCondition, FieldIndexOperations, Filter, NamedQuery, PayloadFieldSchema,
    PayloadSchemaType, PointId, PointInsertOperations, PointOperations, PointStruct, QueryEnum,
    QueryRequest, Range, ScoringQuery, UpdateOperation, WithPayloadInterface, WithVector,
    DEFAULT_VECTOR_NAME,
};

use super::{VectorStore, ID_KEY};

/// Qdrant's engine in process (`qdrant-edge`), one shard in a directory.
pub struct EdgeStore {
    shard: EdgeShard,
    dir: std::path::PathBuf,
}

fn qerr(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("qdrant-edge: {e}")
}

fn id_range(start: u64, end: Option<u64>) -> Filter {
    let range = Range {
        lt: end.map(|e| OrderedFloat(e as f64)),
        gt: None,
        gte: Some(OrderedFloat(start as f64)),
        lte: None,
    };
    Filter::new_must(Condition::Field(FieldCondition::new_range(
        ID_KEY.try_into().expect("valid key"),
        range,
    )))
}

impl EdgeStore {
    /// Opens the shard in `dir`, creating one for `dims`-dimensional cosine
    /// vectors (with an integer index on the chunk id) if there is none.
    pub fn open_or_create(dir: &Path, dims: usize) -> Result<Self> {
        let fresh = !dir.join("edge_config.json").exists();
        let config = EdgeConfigBuilder::new()
            .vector(
                DEFAULT_VECTOR_NAME,
                EdgeVectorParamsBuilder::new(dims, Distance::Cosine).build(),
            )
            .build();
        std::fs::create_dir_all(dir)?;
        let shard = if fresh {
            let shard = EdgeShard::new(dir, config).map_err(qerr)?;
            shard
                .update(UpdateOperation::FieldIndexOperation(
                    FieldIndexOperations::CreateIndex(CreateIndex {
                        field_name: ID_KEY.try_into().expect("valid key"),
                        field_schema: Some(PayloadFieldSchema::FieldType(
                            PayloadSchemaType::Integer,
                        )),
                    }),
                ))
                .map_err(qerr)?;
            shard
        } else {
            EdgeShard::load(dir, None).map_err(|e| {
                if e.to_string().contains("WouldBlock") {
                    anyhow!(
                        "{} is open in another folio process (Qdrant's engine allows one \
                         process at a time; wait for it to finish)",
                        dir.display()
                    )
                } else {
                    qerr(e)
                }
            })?
        };
        Ok(Self {
            shard,
            dir: dir.to_path_buf(),
        })
    }
}

impl VectorStore for EdgeStore {
    fn upsert(&self, points: &[(u64, Vec<f32>)]) -> Result<()> {
        let list = points
            .iter()
            .map(|(id, v)| PointStruct::new(*id, v.clone(), json!({ ID_KEY: id })).into())
            .collect();
        self.shard
            .update(UpdateOperation::PointOperation(
                PointOperations::UpsertPoints(PointInsertOperations::PointsList(list)),
            ))
            .map_err(qerr)
    }

    fn delete_range(&self, start: u64, end: Option<u64>) -> Result<()> {
        self.shard
            .update(UpdateOperation::PointOperation(
                PointOperations::DeletePointsByFilter(id_range(start, end)),
            ))
            .map_err(qerr)
    }

    fn search(&self, query: &[f32], k: usize) -> Result<Vec<(u64, f32)>> {
        let hits = self
            .shard
            .query(QueryRequest {
                prefetches: vec![],
                query: Some(ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery {
                    query: query.to_vec().into(),
                    using: None,
                }))),
                filter: None,
                score_threshold: None,
                limit: k,
                offset: 0,
                params: None,
                with_vector: WithVector::Bool(false),
                with_payload: WithPayloadInterface::Bool(false),
            })
            .map_err(qerr)?;
        Ok(hits
            .into_iter()
            .filter_map(|p| match p.id {
                PointId::NumId(id) => Some((id, p.score)),
                _ => None,
            })
            .collect())
    }

    fn commit(&self) -> Result<()> {
        self.shard.flush();
        Ok(())
    }

    fn optimize(&self) -> Result<()> {
        self.shard.optimize().map_err(qerr)?;
        self.shard.flush();
        Ok(())
    }

    fn len(&self) -> Result<usize> {
        self.shard
            .count(qdrant_edge::CountRequest {
                filter: None,
                exact: true,
            })
            .map_err(qerr)
    }

    fn describe(&self) -> String {
        format!("qdrant-edge at {}", self.dir.display())
    }
}
