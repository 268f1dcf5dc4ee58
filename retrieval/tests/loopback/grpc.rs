//! The generated tonic service traits, implemented for [`Loopback`]: the
//! calls folio makes go to its methods, every other one is `unimplemented`.
//! (The traits have no default methods, hence the full lists.)

use qdrant_client::qdrant::{self as pb, collections_server, points_server, qdrant_server};
use tonic::{Request, Response, Status};

use super::Loopback;

/// Writes a `#[tonic::async_trait]` impl: `name(Request) -> Reply => method`
/// lines forward to an inherent method, `name(Request) -> Reply` lines
/// answer `unimplemented`.
macro_rules! serve {
    ($trait:path { $($name:ident($req:ident) -> $resp:ident $(=> $method:ident)?;)* }) => {
        #[tonic::async_trait]
        impl $trait for Loopback {
            $(
                async fn $name(
                    &self,
                    request: Request<pb::$req>,
                ) -> Result<Response<pb::$resp>, Status> {
                    serve!(@body self, request, $name $(, $method)?)
                }
            )*
        }
    };
    (@body $self:ident, $request:ident, $name:ident, $method:ident) => {
        $self.$method($request.into_inner()).map(Response::new)
    };
    (@body $self:ident, $request:ident, $name:ident) => {{
        let _ = $request;
        Err(Status::unimplemented(concat!("loopback server: ", stringify!($name))))
    }};
}

serve!(qdrant_server::Qdrant {
    health_check(HealthCheckRequest) -> HealthCheckReply => health_check;
});

serve!(collections_server::Collections {
    get(GetCollectionInfoRequest) -> GetCollectionInfoResponse => info;
    list(ListCollectionsRequest) -> ListCollectionsResponse;
    create(CreateCollection) -> CollectionOperationResponse => create;
    update(UpdateCollection) -> CollectionOperationResponse;
    delete(DeleteCollection) -> CollectionOperationResponse;
    update_aliases(ChangeAliases) -> CollectionOperationResponse;
    list_collection_aliases(ListCollectionAliasesRequest) -> ListAliasesResponse;
    list_aliases(ListAliasesRequest) -> ListAliasesResponse;
    collection_cluster_info(CollectionClusterInfoRequest) -> CollectionClusterInfoResponse;
    collection_exists(CollectionExistsRequest) -> CollectionExistsResponse => exists;
    update_collection_cluster_setup(UpdateCollectionClusterSetupRequest)
        -> UpdateCollectionClusterSetupResponse;
    create_shard_key(CreateShardKeyRequest) -> CreateShardKeyResponse;
    delete_shard_key(DeleteShardKeyRequest) -> DeleteShardKeyResponse;
    list_shard_keys(ListShardKeysRequest) -> ListShardKeysResponse;
});

serve!(points_server::Points {
    upsert(UpsertPoints) -> PointsOperationResponse => upsert;
    delete(DeletePoints) -> PointsOperationResponse => delete;
    get(GetPoints) -> GetResponse;
    update_vectors(UpdatePointVectors) -> PointsOperationResponse;
    delete_vectors(DeletePointVectors) -> PointsOperationResponse;
    set_payload(SetPayloadPoints) -> PointsOperationResponse;
    overwrite_payload(SetPayloadPoints) -> PointsOperationResponse;
    delete_payload(DeletePayloadPoints) -> PointsOperationResponse;
    clear_payload(ClearPayloadPoints) -> PointsOperationResponse;
    create_field_index(CreateFieldIndexCollection) -> PointsOperationResponse => create_field_index;
    delete_field_index(DeleteFieldIndexCollection) -> PointsOperationResponse;
    create_vector_name(CreateVectorNameRequest) -> PointsOperationResponse;
    delete_vector_name(DeleteVectorNameRequest) -> PointsOperationResponse;
    search(SearchPoints) -> SearchResponse;
    search_batch(SearchBatchPoints) -> SearchBatchResponse;
    search_groups(SearchPointGroups) -> SearchGroupsResponse;
    scroll(ScrollPoints) -> ScrollResponse;
    recommend(RecommendPoints) -> RecommendResponse;
    recommend_batch(RecommendBatchPoints) -> RecommendBatchResponse;
    recommend_groups(RecommendPointGroups) -> RecommendGroupsResponse;
    discover(DiscoverPoints) -> DiscoverResponse;
    discover_batch(DiscoverBatchPoints) -> DiscoverBatchResponse;
    count(CountPoints) -> CountResponse => count;
    update_batch(UpdateBatchPoints) -> UpdateBatchResponse;
    query(QueryPoints) -> QueryResponse => query;
    query_batch(QueryBatchPoints) -> QueryBatchResponse;
    query_groups(QueryPointGroups) -> QueryGroupsResponse;
    facet(FacetCounts) -> FacetResponse;
    search_matrix_pairs(SearchMatrixPoints) -> SearchMatrixPairsResponse;
    search_matrix_offsets(SearchMatrixPoints) -> SearchMatrixOffsetsResponse;
});
