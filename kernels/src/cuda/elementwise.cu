// Element-wise and row-wise steps of the forward pass: RoPE, RMSNorm, SwiGLU,
// embedding lookup and greedy argmax. Memory-bound: each reads its input once.

// RoPE in place on x [rows, n_heads, head_dim] (f32 or 16-bit). Row r is at
// position first_pos + r; pair i rotates by (first_pos + r) * inv_freq[i].
// halves = 0: pairs (2i, 2i+1) (llama); 1: pairs (i, i + pairs) (qwen2).
// inv_freq carries every scaling mode (none, linear, NTK, YaRN) computed on
// the host, as the CPU path does. Angles are reduced modulo 2*pi in f64:
// positions reach 1e5 and f32 would lose the phase. One thread per
// (row, pair) rotates that pair in every head, so sin/cos are computed once.
template <typename T> __device__ __forceinline__ float ld(const T* p);
template <> __device__ __forceinline__ float ld<float>(const float* p) { return *p; }
template <> __device__ __forceinline__ float ld<u16>(const u16* p) { return bf16_to_f32(*p); }
template <typename T> __device__ __forceinline__ void st(T* p, float v);
template <> __device__ __forceinline__ void st<float>(float* p, float v) { *p = v; }
template <> __device__ __forceinline__ void st<u16>(u16* p, float v) { *p = f32_to_bf16(v); }

template <typename T>
__device__ __forceinline__ void rope(T* x, const float* inv_freq, int rows, int n_heads, int head_dim,
                                     int pairs, int first_pos, int halves) {
    const long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)rows * pairs) return;
    const int r = (int)(idx / pairs), i = (int)(idx % pairs);
    const double two_pi = 6.283185307179586476925286766559;
    double ang = (double)(first_pos + r) * (double)inv_freq[i];
    ang -= floor(ang / two_pi) * two_pi;
    float s, c;
    sincosf((float)ang, &s, &c);
    const int a = halves ? i : 2 * i, b = halves ? i + pairs : 2 * i + 1;
    T* row = x + (long)r * n_heads * head_dim;
    for (int h = 0; h < n_heads; ++h) {
        T* hd = row + h * head_dim;
        const float x0 = ld<T>(hd + a), x1 = ld<T>(hd + b);
        st<T>(hd + a, x0 * c - x1 * s);
        st<T>(hd + b, x0 * s + x1 * c);
    }
}
extern "C" __global__ void rope_f32(float* x, const float* inv_freq, int rows, int n_heads, int head_dim,
                                    int pairs, int first_pos, int halves) {
    rope<float>(x, inv_freq, rows, n_heads, head_dim, pairs, first_pos, halves);
}
extern "C" __global__ void rope_bf16(u16* x, const float* inv_freq, int rows, int n_heads, int head_dim,
                                     int pairs, int first_pos, int halves) {
    rope<u16>(x, inv_freq, rows, n_heads, head_dim, pairs, first_pos, halves);
}

// RMSNorm: out = x / sqrt(mean(x^2) + eps) * w, one CTA (256 threads) per row.
template <typename T>
__device__ __forceinline__ void rms_norm(const float* __restrict__ x, const float* __restrict__ w,
                                         T* __restrict__ out, int h, float eps) {
    __shared__ float partial[8];
    const float* row = x + (long)blockIdx.x * h;
    float ss = 0.f;
    for (int i = threadIdx.x; i < h; i += blockDim.x) ss = fmaf(row[i], row[i], ss);
    ss = warp_sum(ss);
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = ss;
    __syncthreads();
    float tot = 0.f;
    for (int i = 0; i < (int)(blockDim.x >> 5); ++i) tot += partial[i];
    const float inv = rsqrtf(tot / (float)h + eps);
    T* o = out + (long)blockIdx.x * h;
    for (int i = threadIdx.x; i < h; i += blockDim.x) st<T>(o + i, row[i] * inv * w[i]);
}
extern "C" __global__ void __launch_bounds__(256)
    rms_norm_f32(const float* x, const float* w, float* out, int h, float eps) {
    rms_norm<float>(x, w, out, h, eps);
}
extern "C" __global__ void __launch_bounds__(256)
    rms_norm_f32_bf16(const float* x, const float* w, u16* out, int h, float eps) {
    rms_norm<u16>(x, w, out, h, eps);
}

// SwiGLU: rows laid out [gate (ffn) | up (ffn)] -> out [rows, ffn].
template <typename T>
__device__ __forceinline__ void swiglu(const T* __restrict__ gu, T* __restrict__ out, int rows, int ffn) {
    const long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)rows * ffn) return;
    const long r = idx / ffn, j = idx % ffn;
    const float g = ld<T>(gu + r * 2 * ffn + j), u = ld<T>(gu + r * 2 * ffn + ffn + j);
    st<T>(out + idx, g / (1.f + __expf(-g)) * u);
}
extern "C" __global__ void swiglu_f32(const float* gu, float* out, int rows, int ffn) {
    swiglu<float>(gu, out, rows, ffn);
}
extern "C" __global__ void swiglu_bf16(const u16* gu, u16* out, int rows, int ffn) {
    swiglu<u16>(gu, out, rows, ffn);
}

// Embedding lookup: out [n, h] f32 = table[tokens[i]]; the host has checked
// every token id against the vocabulary.
template <typename T>
__device__ __forceinline__ void embed(const u32* __restrict__ tokens, const T* __restrict__ table,
                                      float* __restrict__ out, int n, int h) {
    const long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)n * h) return;
    const long i = idx / h, c = idx % h;
    out[idx] = ld<T>(table + (long)tokens[i] * h + c);
}
extern "C" __global__ void embed_f32(const u32* tokens, const float* table, float* out, int n, int h) {
    embed<float>(tokens, table, out, n, h);
}
extern "C" __global__ void embed_bf16(const u32* tokens, const u16* table, float* out, int n, int h) {
    embed<u16>(tokens, table, out, n, h);
}

// Greedy sampling: index of the largest logit per row (lowest index on ties),
// one CTA (256 threads) per row.
extern "C" __global__ void __launch_bounds__(256)
    argmax_f32(const float* __restrict__ logits, u32* __restrict__ out, int vocab) {
    __shared__ float sv[8];
    __shared__ u32 si[8];
    const float* row = logits + (long)blockIdx.x * vocab;
    float best = NEG_INF;
    u32 bi = 0xffffffffu;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
        const float x = row[i];
        if (x > best || bi == 0xffffffffu) {
            best = x;
            bi = (u32)i;
        }
    }
    for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, best, o);
        const u32 oi = __shfl_xor_sync(0xffffffffu, bi, o);
        if (ov > best || (ov == best && oi < bi)) {
            best = ov;
            bi = oi;
        }
    }
    const int warp = threadIdx.x >> 5;
    if ((threadIdx.x & 31) == 0) {
        sv[warp] = best;
        si[warp] = bi;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < (int)(blockDim.x >> 5); ++w) {
            if (sv[w] > best || (sv[w] == best && si[w] < bi)) {
                best = sv[w];
                bi = si[w];
            }
        }
        out[blockIdx.x] = bi;
    }
}
