// Glue kernels of folio's GPU forward pass (engine/src/gpu): the pieces
// between cuBLAS matrix products and folio_kernels::cuda's attention, norm
// and embedding kernels. Self-contained (no CUDA headers): NVRTC compiles it
// at run time for compute_90, like the kernels crate's sources.
typedef unsigned int u32;
typedef unsigned short u16;

__device__ __forceinline__ u16 f32_to_bf16(float f) {
    u16 h;
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}

// Cosine and sine of every (row, rotary pair) of one forward chunk, in double
// precision then rounded to f32, exactly as the CPU's `Rope::table`: rows at
// positions first_pos.., out [rows, pairs, 2] = (cos, sin).
extern "C" __global__ void rope_table(const float* __restrict__ inv_freq, float* __restrict__ cos_sin,
                                      int rows, int pairs, int first_pos) {
    const long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)rows * pairs) return;
    const int r = (int)(idx / pairs), i = (int)(idx % pairs);
    const double ang = (double)(first_pos + r) * (double)inv_freq[i];
    double s, c;
    sincos(ang, &s, &c);
    cos_sin[2 * idx] = (float)c;
    cos_sin[2 * idx + 1] = (float)s;
}

// Splits the fused QKV product (f32 rows [q (n_heads*d) | k (n_kv*d) | v (n_kv*d)])
// after adding its bias (if has_bias), rotates q and k with the table of
// `rope_table`, and stores q as bf16 [rows, n_heads, d] and k, v as bf16 into
// the cache rows start.. ([capacity, n_kv, d] each). One thread per (row,
// head, pair j < d/2): for rotated heads pair j < pairs is the rotary pair
// (2j, 2j+1) (interleaved, llama) or (j, j+pairs) (halves, qwen2); every
// other j copies elements (2j, 2j+1), which lie past the rotated 2*pairs.
extern "C" __global__ void qkv_split_rope(const float* __restrict__ qkv, const float* __restrict__ bias,
                                          int has_bias, const float* __restrict__ cos_sin,
                                          u16* __restrict__ q, u16* __restrict__ k_cache,
                                          u16* __restrict__ v_cache, int rows, int n_heads, int n_kv,
                                          int d, int pairs, int halves, int start) {
    const int heads = n_heads + 2 * n_kv, half_d = d / 2;
    const long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)rows * heads * half_d) return;
    const int j = (int)(idx % half_d);
    const int hh = (int)((idx / half_d) % heads);
    const long r = idx / ((long)half_d * heads);
    const float* src = qkv + r * heads * d + (long)hh * d;
    const float* b = bias + (long)hh * d;
    const bool rotate = hh < n_heads + n_kv && j < pairs;
    int a, e;
    if (rotate && halves) {
        a = j;
        e = j + pairs;
    } else {
        a = 2 * j;
        e = 2 * j + 1;
    }
    float x0 = src[a], x1 = src[e];
    if (has_bias) {
        x0 += b[a];
        x1 += b[e];
    }
    float y0 = x0, y1 = x1;
    if (rotate) {
        const float c = cos_sin[2 * (r * pairs + j)], s = cos_sin[2 * (r * pairs + j) + 1];
        y0 = x0 * c - x1 * s;
        y1 = x0 * s + x1 * c;
    }
    u16* dst;
    if (hh < n_heads) {
        dst = q + r * n_heads * d + (long)hh * d;
    } else if (hh < n_heads + n_kv) {
        dst = k_cache + ((long)start + r) * n_kv * d + (long)(hh - n_heads) * d;
    } else {
        dst = v_cache + ((long)start + r) * n_kv * d + (long)(hh - n_heads - n_kv) * d;
    }
    dst[a] = f32_to_bf16(y0);
    dst[e] = f32_to_bf16(y1);
}

// SwiGLU of the fused gate/up product: f32 rows [gate (ffn) | up (ffn)] ->
// bf16 [rows, ffn] = silu(gate) * up, the input of the down projection.
extern "C" __global__ void swiglu_f32_bf16(const float* __restrict__ gu, u16* __restrict__ out, int rows,
                                           int ffn) {
    const long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)rows * ffn) return;
    const long r = idx / ffn, c = idx % ffn;
    const float g = gu[r * 2 * ffn + c], u = gu[r * 2 * ffn + ffn + c];
    out[idx] = f32_to_bf16(g / (1.f + expf(-g)) * u);
}

// x [rows, n] += bias [n] broadcast over rows (biases of projections whose
// product was accumulated straight into its destination).
extern "C" __global__ void add_bias_f32(float* __restrict__ x, const float* __restrict__ bias, int rows,
                                        int n) {
    const long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)rows * n) return;
    x[idx] += bias[idx % n];
}

// Deterministic pseudo-random bf16 values, uniform in [-scale, scale), from a
// hash of (seed, index): weights of a model's shape for timing, made on the
// device so that no host memory or transfer is needed.
extern "C" __global__ void fill_random_bf16(u16* __restrict__ x, long n, u32 seed, float scale) {
    const long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n) return;
    u32 h = (u32)idx * 0x9E3779B1u ^ (u32)(idx >> 32) * 0x85EBCA77u ^ seed * 0xC2B2AE3Du;
    h ^= h >> 16;
    h *= 0x7FEB352Du;
    h ^= h >> 15;
    h *= 0x846CA68Bu;
    h ^= h >> 16;
    const float u = (float)(h >> 8) * (1.f / 16777216.f);
    x[idx] = f32_to_bf16((2.f * u - 1.f) * scale);
}
