// Binary codes on the GPU: binarize-and-pack with per-feature popcounts, and the
// covariance term's pairwise co-occurrence counts with the sign pattern its gradient
// needs. CPU twins: bae_train::bits::PackedCodes::from_preactivations, counts and
// covariance_with_signs. Compiled at run time by NVRTC; no headers.
//
// Packed layout (as on the CPU): feature j's bits over rows are words
// [j * words_per_feature, (j + 1) * words_per_feature) of u64, row r at bit r % 64 of
// word r / 64. Seen as u32 (little-endian), row r is bit r % 32 of u32 word
// j * 2 * words_per_feature + r / 32.

#define TILE 32
#define TILE_ROWS 8

// One block per 32 rows x 32 features, 32 x 8 threads. Loads the tile coalesced
// along features into shared memory (writing the float codes z = v > 0 on the way
// when z is not null), then each warp turns one feature's 32 rows into a ballot: one
// u32 of packed bits and its popcount, added to the feature's count. Rows past
// `rows` read as 0. `words32` must be zeroed first (a ragged last u64 may have a
// half no warp writes); `counts` too, or it accumulates.
extern "C" __global__ void binarize_pack_count(const float* v, float* z, unsigned int* words32,
                                               unsigned int* counts, int rows, int features,
                                               int words_per_feature) {
    __shared__ float tile[TILE][TILE + 1];
    int col0 = blockIdx.x * TILE;
    int row0 = blockIdx.y * TILE;
    int tx = threadIdx.x, ty = threadIdx.y;
    for (int i = ty; i < TILE; i += TILE_ROWS) {
        int r = row0 + i, c = col0 + tx;
        float x = 0.0f;
        if (r < rows && c < features) {
            x = v[(long long)r * features + c];
            if (z != 0) z[(long long)r * features + c] = x > 0.0f ? 1.0f : 0.0f;
        }
        tile[i][tx] = x;
    }
    __syncthreads();
    for (int f = ty; f < TILE; f += TILE_ROWS) {
        int c = col0 + f;
        unsigned int bits = __ballot_sync(0xffffffffu, tile[tx][f] > 0.0f);
        if (tx == 0 && c < features) {
            words32[(long long)c * 2 * words_per_feature + row0 / 32] = bits;
            atomicAdd(&counts[c], (unsigned int)__popc(bits));
        }
    }
}

#define PAIR_TILE 16
#define WORD_CHUNK 32

// Thread (j, k) of a 16 x 16 block: co-occurrence n_jk = Σ popcount(w_j & w_k) over
// the packed words, staged through shared memory 32 words at a time; then
// numerator = n_jk·B − n_j·n_k (an exact integer), sign(numerator) into
// signs[j * features + k] (0 on the diagonal), and |numerator| summed into *abs_sum
// with integer atomics (exact, order-free). The covariance term is
// abs_sum / (B (B − 1)); the gradient's pattern S is `signs`.
extern "C" __global__ void covariance_signs(const unsigned long long* words, const unsigned int* counts,
                                            float* signs, unsigned long long* abs_sum, int features,
                                            int words_per_feature, long long rows) {
    __shared__ unsigned long long wj[PAIR_TILE][WORD_CHUNK];
    __shared__ unsigned long long wk[PAIR_TILE][WORD_CHUNK];
    __shared__ unsigned long long block_sum;
    int tx = threadIdx.x, ty = threadIdx.y;
    int j = blockIdx.y * PAIR_TILE + ty;
    int k = blockIdx.x * PAIR_TILE + tx;
    int tid = ty * PAIR_TILE + tx;
    if (tid == 0) block_sum = 0;
    long long co = 0;
    for (int w0 = 0; w0 < words_per_feature; w0 += WORD_CHUNK) {
        int chunk = min(WORD_CHUNK, words_per_feature - w0);
        // 256 threads load two 16 x chunk tiles.
        for (int i = tid; i < PAIR_TILE * WORD_CHUNK; i += PAIR_TILE * PAIR_TILE) {
            int f = i / WORD_CHUNK, w = i % WORD_CHUNK;
            int fj = blockIdx.y * PAIR_TILE + f, fk = blockIdx.x * PAIR_TILE + f;
            wj[f][w] = (fj < features && w < chunk) ? words[(long long)fj * words_per_feature + w0 + w] : 0ull;
            wk[f][w] = (fk < features && w < chunk) ? words[(long long)fk * words_per_feature + w0 + w] : 0ull;
        }
        __syncthreads();
        for (int w = 0; w < chunk; ++w) co += __popcll(wj[ty][w] & wk[tx][w]);
        __syncthreads();
    }
    if (j < features && k < features) {
        long long numerator = j == k ? 0 : co * rows - (long long)counts[j] * (long long)counts[k];
        signs[(long long)j * features + k] = numerator > 0 ? 1.0f : (numerator < 0 ? -1.0f : 0.0f);
        unsigned long long magnitude = (unsigned long long)(numerator < 0 ? -numerator : numerator);
        if (magnitude != 0) atomicAdd(&block_sum, magnitude);
    }
    __syncthreads();
    if (tid == 0 && block_sum != 0) atomicAdd(abs_sum, block_sum);
}

// Per feature: p_j = n_j / B into p, and the entropy term's gradient with respect to
// each code of column j, λ_H · dh(p_j)/dp / B, into col_add (h with the reference's
// 1e-10 inside the logarithms). CPU twin: step::loss_entropy_derivative.
extern "C" __global__ void entropy_columns(const unsigned int* counts, float* p, float* col_add,
                                           int features, int rows, double lambda_entropy) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= features) return;
    double pj = (double)counts[j] / (double)rows;
    double q = 1.0 - pj;
    const double ln2 = 0.69314718055994530942;
    double d = -(log2(pj + 1e-10) + pj / ((pj + 1e-10) * ln2) - log2(q + 1e-10) - q / ((q + 1e-10) * ln2));
    p[j] = (float)pj;
    col_add[j] = (float)(lambda_entropy * d / (double)rows);
}

// zc = z − p (row-wise), the centred codes of the covariance gradient.
extern "C" __global__ void center_columns(const float* z, const float* p, float* zc, int rows, int features) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)rows * features) return;
    zc[i] = z[i] - p[i % features];
}

// g[b, j] += col_add[j].
extern "C" __global__ void add_columns(float* g, const float* col_add, int rows, int features) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)rows * features) return;
    g[i] += col_add[i % features];
}

// The binarization's backward pass: kind 0 identity, 1 sign_s g(1 − g), 2 sigmoid
// g·σ(x)(1 − σ(x)). CPU twin: Estimator::backward.
extern "C" __global__ void estimator_backward(float* g, const float* pre, long long n, int kind) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float gi = g[i];
    if (kind == 1) {
        g[i] = gi * (1.0f - gi);
    } else if (kind == 2) {
        float s = 1.0f / (1.0f + expf(-pre[i]));
        g[i] = gi * s * (1.0f - s);
    }
}
