// Flash attention forward (FlashAttention-2 scheme) with mma.sync m16n8k16
// tensor-core tiles, online softmax in f32, causal mask and grouped-query heads.
//
// Layouts (16-bit values, row-major): q and out [q_len, n_heads, D],
// k and v [kv_len, n_kv_heads, D]. Query row i sits at absolute position
// q_start + i and attends keys 0..=q_start+i (and < kv_len).
// One CTA = WARPS x 16 query rows of one head (FA_BM = 64 rows with 4 warps,
// or 128 rows with 8 warps: the `_w8` kernels, which halve K/V traffic per
// FLOP); keys stream through shared memory in tiles of 64, double-buffered
// with cp.async. Heavy (late) query tiles are scheduled first: blockIdx.x is
// reversed. Softmax uses ex2.approx (exp2 of scaled scores).
#define FA_BM 64
#define FA_BN 64
#define FA_THREADS 128

__device__ __forceinline__ float fast_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

template <int D, bool BF, int WARPS>
__device__ __forceinline__ void flash_fwd(const u16* __restrict__ q, const u16* __restrict__ k,
                                          const u16* __restrict__ v, u16* __restrict__ o, int q_len,
                                          int kv_len, int q_start, int n_heads, int n_kv_heads,
                                          float scale_log2) {
    extern __shared__ __align__(128) unsigned char smem_raw[];
    u16* sQ = (u16*)smem_raw;
    constexpr int BM = 16 * WARPS, NT = 32 * WARPS;
    u16* sK = sQ + BM * D;
    u16* sV = sK + 2 * FA_BN * D;
    constexpr int CH = D / 8;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int mb = gridDim.x - 1 - blockIdx.x;
    const int h = blockIdx.y;
    const int kvh = h / (n_heads / n_kv_heads);
    const int q0 = mb * BM;
    const long q_stride = (long)n_heads * D, kv_stride = (long)n_kv_heads * D;
    const int last_pos = q_start + min(q0 + BM, q_len) - 1;
    const int n_keys = min(kv_len, last_pos + 1);
    const int n_tiles = (n_keys + FA_BN - 1) / FA_BN;

    for (int idx = tid; idx < BM * CH; idx += NT) {
        const int r = idx / CH, c = idx % CH, qi = q0 + r;
        const u16* src = q + (long)min(qi, q_len - 1) * q_stride + (long)h * D + c * 8;
        cp_async16(smem_addr(sQ + swz<D>(r, c)), src, qi < q_len ? 16 : 0);
    }
    cp_async_commit();
    auto load_kv = [&](int t, int buf) {
        u16* dk = sK + buf * FA_BN * D;
        u16* dv = sV + buf * FA_BN * D;
        for (int idx = tid; idx < FA_BN * CH; idx += NT) {
            const int r = idx / CH, c = idx % CH, key = t * FA_BN + r;
            const long off = (long)min(key, kv_len - 1) * kv_stride + (long)kvh * D + c * 8;
            const int bytes = key < kv_len ? 16 : 0;
            cp_async16(smem_addr(dk + swz<D>(r, c)), k + off, bytes);
            cp_async16(smem_addr(dv + swz<D>(r, c)), v + off, bytes);
        }
    };
    if (n_tiles > 0) load_kv(0, 0);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();

    u32 qf[D / 16][4];
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
        const int row = warp * 16 + (lane & 15);
        ldsm_x4(qf[ks], smem_addr(sQ + swz<D>(row, ks * 2 + (lane >> 4))));
    }
    float acc[D / 8][4];
#pragma unroll
    for (int i = 0; i < D / 8; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;
    float m_r[2] = {NEG_INF, NEG_INF}, l_r[2] = {0.f, 0.f};
    const int r0 = warp * 16 + (lane >> 2);
    const int pos0 = q_start + q0 + r0, pos1 = pos0 + 8;
    const int min_pos = q_start + q0;

    for (int t = 0; t < n_tiles; ++t) {
        const int buf = t & 1;
        if (t + 1 < n_tiles) {
            load_kv(t + 1, buf ^ 1);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        const u16* cK = sK + buf * FA_BN * D;
        const u16* cV = sV + buf * FA_BN * D;
        float s[FA_BN / 8][4];
#pragma unroll
        for (int i = 0; i < FA_BN / 8; ++i) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.f;
#pragma unroll
        for (int ks = 0; ks < D / 16; ++ks) {
#pragma unroll
            for (int n2 = 0; n2 < FA_BN / 16; ++n2) {
                u32 b[4];
                const int krow = n2 * 16 + (lane & 7) + ((lane >> 4) << 3);
                ldsm_x4(b, smem_addr(cK + swz<D>(krow, ks * 2 + ((lane >> 3) & 1))));
                mma16816<BF>(s[2 * n2], qf[ks], b);
                mma16816<BF>(s[2 * n2 + 1], qf[ks], b + 2);
            }
        }
        const int key_base = t * FA_BN;
        const bool need_mask = (key_base + FA_BN - 1 > min_pos) || (key_base + FA_BN > kv_len);
#pragma unroll
        for (int nt = 0; nt < FA_BN / 8; ++nt) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                float x = s[nt][e] * scale_log2;
                if (need_mask) {
                    const int key = key_base + nt * 8 + 2 * (lane & 3) + (e & 1);
                    const int pos = e < 2 ? pos0 : pos1;
                    if (key > pos || key >= kv_len) x = NEG_INF;
                }
                s[nt][e] = x;
            }
        }
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            float mx = NEG_INF;
#pragma unroll
            for (int nt = 0; nt < FA_BN / 8; ++nt) mx = fmaxf(mx, fmaxf(s[nt][2 * i], s[nt][2 * i + 1]));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            const float m_new = fmaxf(m_r[i], mx);
            const float base = m_new == NEG_INF ? 0.f : m_new;
            const float alpha = fast_exp2(m_r[i] - base);
            float sum = 0.f;
#pragma unroll
            for (int nt = 0; nt < FA_BN / 8; ++nt) {
                const float p0 = fast_exp2(s[nt][2 * i] - base), p1 = fast_exp2(s[nt][2 * i + 1] - base);
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
        for (int j = 0; j < FA_BN / 16; ++j) {
            u32 a[4];
            a[0] = pack2<BF>(s[2 * j][0], s[2 * j][1]);
            a[1] = pack2<BF>(s[2 * j][2], s[2 * j][3]);
            a[2] = pack2<BF>(s[2 * j + 1][0], s[2 * j + 1][1]);
            a[3] = pack2<BF>(s[2 * j + 1][2], s[2 * j + 1][3]);
#pragma unroll
            for (int d2 = 0; d2 < D / 16; ++d2) {
                u32 b[4];
                const int vrow = j * 16 + (lane & 7) + (((lane >> 3) & 1) << 3);
                ldsm_x4_t(b, smem_addr(cV + swz<D>(vrow, d2 * 2 + (lane >> 4))));
                mma16816<BF>(acc[2 * d2], a, b);
                mma16816<BF>(acc[2 * d2 + 1], a, b + 2);
            }
        }
        __syncthreads();
    }

#pragma unroll
    for (int i = 0; i < 2; ++i) {
        float l = l_r[i];
        l += __shfl_xor_sync(0xffffffffu, l, 1);
        l += __shfl_xor_sync(0xffffffffu, l, 2);
        const float inv = l > 0.f ? 1.f / l : 0.f;
        const int qi = q0 + r0 + 8 * i;
        if (qi < q_len) {
            u16* dst = o + (long)qi * q_stride + (long)h * D + 2 * (lane & 3);
#pragma unroll
            for (int dt = 0; dt < D / 8; ++dt) {
                *(u32*)(dst + dt * 8) = pack2<BF>(acc[dt][2 * i] * inv, acc[dt][2 * i + 1] * inv);
            }
        }
    }
}

#define FLASH_ENTRY(NAME, D, BF, WARPS)                                                              \
    extern "C" __global__ void __launch_bounds__(32 * WARPS)                                       \
        NAME(const u16* q, const u16* k, const u16* v, u16* o, int q_len, int kv_len, int q_start, \
             int n_heads, int n_kv_heads, float scale_log2) {                                       \
        flash_fwd<D, BF, WARPS>(q, k, v, o, q_len, kv_len, q_start, n_heads, n_kv_heads, scale_log2);      \
    }

FLASH_ENTRY(flash_fwd_bf16_d64, 64, true, 4)
FLASH_ENTRY(flash_fwd_bf16_d128, 128, true, 4)
FLASH_ENTRY(flash_fwd_f16_d64, 64, false, 4)
FLASH_ENTRY(flash_fwd_f16_d128, 128, false, 4)
FLASH_ENTRY(flash_fwd_bf16_d64_w8, 64, true, 8)
FLASH_ENTRY(flash_fwd_bf16_d128_w8, 128, true, 8)
FLASH_ENTRY(flash_fwd_f16_d64_w8, 64, false, 8)
FLASH_ENTRY(flash_fwd_f16_d128_w8, 128, false, 8)
