// DSA-style sparse attention: an indexer scores key blocks per query, each
// query keeps its top-k blocks (plus sink blocks and a local window), and
// exact attention runs over the selected keys only.
//
// 1. block_minmax: per kv head and block of SP_BLOCK keys, per-channel min
//    and max of the keys -> kmin/kmax [n_kv_heads, n_blocks, D] f32.
// 2. indexer_scores (Quest): score(i, g, b) = sum over the query heads h of
//    group g of sum_c max(q_c * min_c, q_c * max_c); blocks after the query's
//    block are -inf. scores [n_kv_heads, q_len, n_blocks] f32.
// 3. topk_blocks: per (query, kv head), the k best causal blocks with the
//    first n_sink blocks and the n_local blocks ending at the query's own
//    block forced in; indices ascending, -1 padded. [n_kv_heads, q_len, k].
// 4. sparse_attn: exact softmax attention of each query head over the keys of
//    its group's selected blocks (causal inside blocks), mma.sync tiles.
#define SP_BLOCK 64

template <bool BF>
__device__ __forceinline__ void block_minmax(const u16* __restrict__ k, float* __restrict__ kmin,
                                             float* __restrict__ kmax, int kv_len, int n_kv_heads,
                                             int d, int n_blocks) {
    const int b = blockIdx.x, g = blockIdx.y;
    const long kv_stride = (long)n_kv_heads * d;
    for (int c = threadIdx.x; c < d; c += blockDim.x) {
        float lo = __int_as_float(0x7f800000), hi = NEG_INF;
        const int end = min(kv_len, (b + 1) * SP_BLOCK);
        for (int key = b * SP_BLOCK; key < end; ++key) {
            const float x = h_to_f32<BF>(k[(long)key * kv_stride + (long)g * d + c]);
            lo = fminf(lo, x);
            hi = fmaxf(hi, x);
        }
        const long off = ((long)g * n_blocks + b) * d + c;
        kmin[off] = lo;
        kmax[off] = hi;
    }
}

extern "C" __global__ void block_minmax_bf16(const u16* k, float* kmin, float* kmax, int kv_len,
                                             int n_kv_heads, int d, int n_blocks) {
    block_minmax<true>(k, kmin, kmax, kv_len, n_kv_heads, d, n_blocks);
}
extern "C" __global__ void block_minmax_f16(const u16* k, float* kmin, float* kmax, int kv_len,
                                            int n_kv_heads, int d, int n_blocks) {
    block_minmax<false>(k, kmin, kmax, kv_len, n_kv_heads, d, n_blocks);
}

// CTA tile: 64 queries x 64 blocks, 256 threads with 4x4 outputs each,
// channels staged through shared memory 32 at a time.
#define IX_T 64
#define IX_C 32
template <bool BF>
__device__ __forceinline__ void indexer_scores(const u16* __restrict__ q, const float* __restrict__ kmin,
                                               const float* __restrict__ kmax, float* __restrict__ scores,
                                               int q_len, int q_start, int n_heads, int n_kv_heads, int d,
                                               int n_blocks) {
    __shared__ float sq[IX_C][IX_T + 1];
    __shared__ float smx[IX_C][IX_T + 1];
    __shared__ float smn[IX_C][IX_T + 1];
    const int b0 = blockIdx.x * IX_T, q0 = blockIdx.y * IX_T, g = blockIdx.z;
    const int group = n_heads / n_kv_heads;
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int max_pos = q_start + min(q0 + IX_T, q_len) - 1;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0.f;
    const bool live = b0 * SP_BLOCK <= max_pos;
    if (live) {
        for (int hh = 0; hh < group; ++hh) {
            const int h = g * group + hh;
            for (int c0 = 0; c0 < d; c0 += IX_C) {
                for (int idx = tid; idx < IX_T * IX_C; idx += 256) {
                    const int r = idx / IX_C, c = idx % IX_C;
                    const int qi = q0 + r, b = b0 + r;
                    sq[c][r] = qi < q_len ? h_to_f32<BF>(q[((long)qi * n_heads + h) * d + c0 + c]) : 0.f;
                    const long off = ((long)g * n_blocks + b) * d + c0 + c;
                    smx[c][r] = b < n_blocks ? kmax[off] : 0.f;
                    smn[c][r] = b < n_blocks ? kmin[off] : 0.f;
                }
                __syncthreads();
#pragma unroll 8
                for (int c = 0; c < IX_C; ++c) {
                    float qp[4], qn[4], mx[4], mn[4];
#pragma unroll
                    for (int i = 0; i < 4; ++i) {
                        const float x = sq[c][ty + 16 * i];
                        qp[i] = fmaxf(x, 0.f);
                        qn[i] = fminf(x, 0.f);
                        mx[i] = smx[c][tx + 16 * i];
                        mn[i] = smn[c][tx + 16 * i];
                    }
#pragma unroll
                    for (int i = 0; i < 4; ++i)
#pragma unroll
                        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(qp[i], mx[j], fmaf(qn[i], mn[j], acc[i][j]));
                }
                __syncthreads();
            }
        }
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int qi = q0 + ty + 16 * i;
        if (qi >= q_len) continue;
        const int pos = q_start + qi;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const int b = b0 + tx + 16 * j;
            if (b >= n_blocks) continue;
            scores[((long)g * q_len + qi) * n_blocks + b] = b * SP_BLOCK <= pos ? acc[i][j] : NEG_INF;
        }
    }
}

extern "C" __global__ void __launch_bounds__(256)
    indexer_scores_bf16(const u16* q, const float* kmin, const float* kmax, float* scores, int q_len,
                        int q_start, int n_heads, int n_kv_heads, int d, int n_blocks) {
    indexer_scores<true>(q, kmin, kmax, scores, q_len, q_start, n_heads, n_kv_heads, d, n_blocks);
}
extern "C" __global__ void __launch_bounds__(256)
    indexer_scores_f16(const u16* q, const float* kmin, const float* kmax, float* scores, int q_len,
                       int q_start, int n_heads, int n_kv_heads, int d, int n_blocks) {
    indexer_scores<false>(q, kmin, kmax, scores, q_len, q_start, n_heads, n_kv_heads, d, n_blocks);
}

__device__ __forceinline__ u32 order_key(float f) {
    const u32 u = __float_as_uint(f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// One warp per (query, kv head), 4 warps per CTA; dynamic shared memory holds
// 4 * n_blocks keys. The k-th largest key is found bit by bit (radix select),
// then the selected indices are written in ascending order.
extern "C" __global__ void __launch_bounds__(128)
    topk_blocks(const float* __restrict__ scores, int* __restrict__ sel, int q_len, int q_start,
                int n_kv_heads, int n_blocks, int k, int n_sink, int n_local) {
    extern __shared__ u32 keys_all[];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const long row = (long)blockIdx.x * 4 + warp;
    if (row >= (long)q_len * n_kv_heads) return;
    const int qi = (int)(row % q_len);
    const int pos = q_start + qi;
    const int nb = min(pos / SP_BLOCK + 1, n_blocks);
    const float* sc = scores + row * n_blocks;
    int* out = sel + row * k;
    if (nb <= k) {
        for (int j = lane; j < k; j += 32) out[j] = j < nb ? j : -1;
        return;
    }
    u32* keys = keys_all + warp * n_blocks;
    for (int b = lane; b < nb; b += 32) {
        const bool forced = b < n_sink || b >= nb - n_local;
        keys[b] = forced ? 0xffffffffu : order_key(sc[b]);
    }
    __syncwarp();
    u32 thr = 0;
    for (int bit = 31; bit >= 0; --bit) {
        const u32 cand = thr | (1u << bit);
        int cnt = 0;
        for (int b = lane; b < nb; b += 32) cnt += keys[b] >= cand;
        for (int o = 16; o > 0; o >>= 1) cnt += __shfl_xor_sync(0xffffffffu, cnt, o);
        if (cnt >= k) thr = cand;
    }
    int gt = 0;
    for (int b = lane; b < nb; b += 32) gt += keys[b] > thr;
    for (int o = 16; o > 0; o >>= 1) gt += __shfl_xor_sync(0xffffffffu, gt, o);
    const int need_eq = k - gt;
    int written = 0, eq_seen = 0;
    const u32 lt_mask = (1u << lane) - 1u;
    for (int base = 0; base < nb; base += 32) {
        const int b = base + lane;
        const u32 key = b < nb ? keys[b] : 0u;
        const bool eq = b < nb && key == thr;
        const u32 eq_mask = __ballot_sync(0xffffffffu, eq);
        const int eq_rank = eq_seen + __popc(eq_mask & lt_mask);
        const bool take = b < nb && (key > thr || (eq && eq_rank < need_eq));
        const u32 take_mask = __ballot_sync(0xffffffffu, take);
        if (take) out[written + __popc(take_mask & lt_mask)] = b;
        written += __popc(take_mask);
        eq_seen += __popc(eq_mask);
    }
    for (int j = written + lane; j < k; j += 32) out[j] = -1;
}

// Sparse attention: one CTA = 16 rows = (16 / group) consecutive queries x
// the group's query heads, for one kv head. The union of those queries'
// selected blocks is built in shared memory (bit q of blockmask[b] = query q
// chose block b); each of the 4 warps walks a quarter of the union in
// sub-tiles of SP_SUB keys with its own online softmax, and the 4 partial
// results are merged at the end. Rows whose query did not select a block see
// -inf there, so each row attends exactly its own selection.
#define SP_SUB 32
#define SP_THREADS 128
template <int D, bool BF>
__device__ __forceinline__ void sparse_attn(const u16* __restrict__ q, const u16* __restrict__ k,
                                            const u16* __restrict__ v, const int* __restrict__ sel,
                                            u16* __restrict__ o, int q_len, int kv_len, int q_start,
                                            int n_heads, int n_kv_heads, int n_blocks, int topk,
                                            float scale_log2) {
    extern __shared__ __align__(128) unsigned char smem_raw[];
    constexpr int CH = D / 8;
    u16* sQ = (u16*)smem_raw;                       // 16 x D
    u16* sKV = sQ + 16 * D;                         // 4 warps x (K, V) x SP_SUB x D
    u32* bmask = (u32*)(sKV + 4 * 2 * SP_SUB * D);  // n_blocks
    int* ulist = (int*)(bmask + n_blocks);          // n_blocks
    __shared__ int ucount;
    __shared__ float sm_m[4][16], sm_l[4][16];
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int group = n_heads / n_kv_heads;
    const int qpc = 16 / group;
    const int qi0 = blockIdx.x * qpc, g = blockIdx.y;
    const long q_stride = (long)n_heads * D, kv_stride = (long)n_kv_heads * D;
    const int n_q = min(qpc, q_len - qi0);
    const int max_pos = q_start + qi0 + n_q - 1;
    const int nb_live = min(n_blocks, max_pos / SP_BLOCK + 1);

    for (int b = tid; b < nb_live; b += SP_THREADS) bmask[b] = 0u;
    for (int idx = tid; idx < 16 * CH; idx += SP_THREADS) {
        const int r = idx / CH, c = idx % CH;
        const int qq = r / group, hh = r % group, qi = qi0 + qq;
        const u16* src = q + (long)min(qi, q_len - 1) * q_stride + (long)(g * group + hh) * D + c * 8;
        cp_async16(smem_addr(sQ + swz<D>(r, c)), src, qi < q_len ? 16 : 0);
    }
    cp_async_commit();
    __syncthreads();
    for (int idx = tid; idx < n_q * topk; idx += SP_THREADS) {
        const int qq = idx / topk, j = idx % topk;
        const int b = sel[((long)g * q_len + qi0 + qq) * topk + j];
        if (b >= 0 && b < nb_live) atomicOr(&bmask[b], 1u << qq);
    }
    __syncthreads();
    if (warp == 0) {
        int n = 0;
        for (int base = 0; base < nb_live; base += 32) {
            const int b = base + lane;
            const bool on = b < nb_live && bmask[b] != 0u;
            const u32 m = __ballot_sync(0xffffffffu, on);
            if (on) ulist[n + __popc(m & ((1u << lane) - 1u))] = b;
            n += __popc(m);
        }
        if (lane == 0) ucount = n;
    }
    cp_async_wait<0>();
    __syncthreads();

    u32 qf[D / 16][4];
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
        const int row = lane & 15;
        ldsm_x4(qf[ks], smem_addr(sQ + swz<D>(row, ks * 2 + (lane >> 4))));
    }
    float acc[D / 8][4];
#pragma unroll
    for (int i = 0; i < D / 8; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;
    float m_r[2] = {NEG_INF, NEG_INF}, l_r[2] = {0.f, 0.f};
    const int r0 = lane >> 2;
    const int qq0 = r0 / group, qq1 = (r0 + 8) / group;
    const int pos0 = q_start + qi0 + qq0, pos1 = q_start + qi0 + qq1;
    const bool ok0 = qq0 < n_q, ok1 = qq1 < n_q;
    u16* wK = sKV + warp * 2 * SP_SUB * D;
    u16* wV = wK + SP_SUB * D;
    const int nu = ucount;

    for (int u = warp; u < nu; u += 4) {
        const int b = ulist[u];
        const u32 bm = bmask[b];
        const bool sel0 = ok0 && ((bm >> qq0) & 1u), sel1 = ok1 && ((bm >> qq1) & 1u);
        for (int sub = 0; sub < SP_BLOCK / SP_SUB; ++sub) {
            const int key0 = b * SP_BLOCK + sub * SP_SUB;
            if (key0 > max_pos || key0 >= kv_len) break;
            for (int idx = lane; idx < SP_SUB * CH; idx += 32) {
                const int r = idx / CH, c = idx % CH, key = key0 + r;
                const long off = (long)min(key, kv_len - 1) * kv_stride + (long)g * D + c * 8;
                const int bytes = key < kv_len ? 16 : 0;
                cp_async16(smem_addr(wK + swz<D>(r, c)), k + off, bytes);
                cp_async16(smem_addr(wV + swz<D>(r, c)), v + off, bytes);
            }
            cp_async_commit();
            cp_async_wait<0>();
            __syncwarp();
            float s[SP_SUB / 8][4];
#pragma unroll
            for (int i = 0; i < SP_SUB / 8; ++i) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.f;
#pragma unroll
            for (int ks = 0; ks < D / 16; ++ks) {
#pragma unroll
                for (int n2 = 0; n2 < SP_SUB / 16; ++n2) {
                    u32 bb[4];
                    const int krow = n2 * 16 + (lane & 7) + ((lane >> 4) << 3);
                    ldsm_x4(bb, smem_addr(wK + swz<D>(krow, ks * 2 + ((lane >> 3) & 1))));
                    mma16816<BF>(s[2 * n2], qf[ks], bb);
                    mma16816<BF>(s[2 * n2 + 1], qf[ks], bb + 2);
                }
            }
#pragma unroll
            for (int nt = 0; nt < SP_SUB / 8; ++nt) {
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const int key = key0 + nt * 8 + 2 * (lane & 3) + (e & 1);
                    const bool ok = e < 2 ? (sel0 && key <= pos0) : (sel1 && key <= pos1);
                    s[nt][e] = (ok && key < kv_len) ? s[nt][e] * scale_log2 : NEG_INF;
                }
            }
#pragma unroll
            for (int i = 0; i < 2; ++i) {
                float mx = NEG_INF;
#pragma unroll
                for (int nt = 0; nt < SP_SUB / 8; ++nt) mx = fmaxf(mx, fmaxf(s[nt][2 * i], s[nt][2 * i + 1]));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                const float m_new = fmaxf(m_r[i], mx);
                const float base = m_new == NEG_INF ? 0.f : m_new;
                const float alpha = exp2f(m_r[i] - base);
                float sum = 0.f;
#pragma unroll
                for (int nt = 0; nt < SP_SUB / 8; ++nt) {
                    const float p0 = exp2f(s[nt][2 * i] - base), p1 = exp2f(s[nt][2 * i + 1] - base);
                    s[nt][2 * i] = p0;
                    s[nt][2 * i + 1] = p1;
                    sum += p0 + p1;
                }
                l_r[i] = l_r[i] * alpha + sum;
                m_r[i] = m_new;
#pragma unroll
                for (int dt = 0; dt < D / 8; ++dt) {
                    acc[dt][2 * i] *= alpha;
                    acc[dt][2 * i + 1] *= alpha;
                }
            }
#pragma unroll
            for (int j = 0; j < SP_SUB / 16; ++j) {
                u32 a[4];
                a[0] = pack2<BF>(s[2 * j][0], s[2 * j][1]);
                a[1] = pack2<BF>(s[2 * j][2], s[2 * j][3]);
                a[2] = pack2<BF>(s[2 * j + 1][0], s[2 * j + 1][1]);
                a[3] = pack2<BF>(s[2 * j + 1][2], s[2 * j + 1][3]);
#pragma unroll
                for (int d2 = 0; d2 < D / 16; ++d2) {
                    u32 bb[4];
                    const int vrow = j * 16 + (lane & 7) + (((lane >> 3) & 1) << 3);
                    ldsm_x4_t(bb, smem_addr(wV + swz<D>(vrow, d2 * 2 + (lane >> 4))));
                    mma16816<BF>(acc[2 * d2], a, bb);
                    mma16816<BF>(acc[2 * d2 + 1], a, bb + 2);
                }
            }
            __syncwarp();
        }
    }

    // Merge the 4 warps' partial softmax states through shared memory (the
    // K/V staging area is free now).
    __syncthreads();
    float* sO = (float*)sKV;  // 4 x 16 x D floats
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        float l = l_r[i];
        l += __shfl_xor_sync(0xffffffffu, l, 1);
        l += __shfl_xor_sync(0xffffffffu, l, 2);
        const int r = r0 + 8 * i;
        if ((lane & 3) == 0) {
            sm_m[warp][r] = m_r[i];
            sm_l[warp][r] = l;
        }
#pragma unroll
        for (int dt = 0; dt < D / 8; ++dt) {
            const int c = dt * 8 + 2 * (lane & 3);
            sO[(warp * 16 + r) * D + c] = acc[dt][2 * i];
            sO[(warp * 16 + r) * D + c + 1] = acc[dt][2 * i + 1];
        }
    }
    __syncthreads();
    for (int idx = tid; idx < 16 * D; idx += SP_THREADS) {
        const int r = idx / D, c = idx % D;
        const int qq = r / group, hh = r % group, qi = qi0 + qq;
        if (qi >= q_len) continue;
        float mx = NEG_INF;
#pragma unroll
        for (int w = 0; w < 4; ++w) mx = fmaxf(mx, sm_m[w][r]);
        const float base = mx == NEG_INF ? 0.f : mx;
        float l = 0.f, val = 0.f;
#pragma unroll
        for (int w = 0; w < 4; ++w) {
            const float f = exp2f(sm_m[w][r] - base);
            l += sm_l[w][r] * f;
            val += sO[(w * 16 + r) * D + c] * f;
        }
        o[(long)qi * q_stride + (long)(g * group + hh) * D + c] = f32_to_h<BF>(l > 0.f ? val / l : 0.f);
    }
}

#define SPARSE_ENTRY(NAME, D, BF)                                                                       \
    extern "C" __global__ void __launch_bounds__(SP_THREADS)                                          \
        NAME(const u16* q, const u16* k, const u16* v, const int* sel, u16* o, int q_len, int kv_len, \
             int q_start, int n_heads, int n_kv_heads, int n_blocks, int topk, float scale_log2) {      \
        sparse_attn<D, BF>(q, k, v, sel, o, q_len, kv_len, q_start, n_heads, n_kv_heads, n_blocks,    \
                           topk, scale_log2);                                                           \
    }

SPARSE_ENTRY(sparse_attn_bf16_d64, 64, true)
SPARSE_ENTRY(sparse_attn_bf16_d128, 128, true)
SPARSE_ENTRY(sparse_attn_f16_d64, 64, false)
SPARSE_ENTRY(sparse_attn_f16_d128, 128, false)
