// Elementwise passes of the training step that are not about binary codes: bias
// broadcast, residual and its squared sum, the SAE activations and gradient masks,
// JumpReLU's threshold gradient, decoder-row normalisation and the Adam update. CPU
// twins in bae_train::bae::{step, activation}, bae_train::optim and
// Autoencoder::normalize_decoder_rows. Compiled at run time by NVRTC; no headers.

// out[r, c] = row[c]: the bias as the starting value of a GEMM with beta = 1.
extern "C" __global__ void fill_rows(float* out, const float* row, int rows, int cols) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)rows * cols) return;
    out[i] = row[i % cols];
}

// rec ← (rec − x)·scale, and Σ (rec − x)² added to *sse (double atomics: the metric's
// last bits depend on the order; the gradient does not).
extern "C" __global__ void residual(float* rec, const float* x, float scale, long long n, double* sse) {
    __shared__ double partial[256];
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    double sq = 0.0;
    if (i < n) {
        float r = rec[i] - x[i];
        sq = (double)r * (double)r;
        rec[i] = r * scale;
    }
    partial[threadIdx.x] = sq;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) atomicAdd(sse, partial[0]);
}

// Σ v into *total (the ReLU baseline's L1 term), double atomics.
extern "C" __global__ void sum_values(const float* v, long long n, double* total) {
    __shared__ double partial[256];
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    partial[threadIdx.x] = i < n ? (double)v[i] : 0.0;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) atomicAdd(total, partial[0]);
}

// act = relu(pre).
extern "C" __global__ void relu(const float* pre, float* act, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) act[i] = pre[i] > 0.0f ? pre[i] : 0.0f;
}

// act = pre where pre > exp(log_theta[j]), else 0 (JumpReLU).
extern "C" __global__ void jumprelu(const float* pre, const float* log_theta, float* act, int rows, int features) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)rows * features) return;
    float theta = expf(log_theta[i % features]);
    act[i] = pre[i] > theta ? pre[i] : 0.0f;
}

// g ← (g + extra) where act ≠ 0, else 0: the gradient through relu, a top-k
// selection or a JumpReLU gate, plus the L1 term's constant where it applies.
extern "C" __global__ void mask_gradient(float* g, const float* act, float extra, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) g[i] = act[i] != 0.0f ? g[i] + extra : 0.0f;
}

// JumpReLU's per-element threshold terms K_bj·(θ_j·g_bj + l0_per_row), K the rectangle
// kernel of width eps around θ_j; summed over rows by a GEMM with ones, then scaled
// by scale_threshold_gradient.
extern "C" __global__ void jump_threshold_terms(const float* pre, const float* log_theta, const float* g,
                                                float* out, float eps, float l0_per_row, int rows,
                                                int features) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)rows * features) return;
    int j = i % features;
    float theta = expf(log_theta[j]);
    bool inside = fabsf((pre[i] - theta) / eps) < 0.5f;
    out[i] = inside ? theta * g[i] + l0_per_row : 0.0f;
}

// g_log_theta[j] *= −θ_j / eps.
extern "C" __global__ void scale_threshold_gradient(float* g, const float* log_theta, float eps, int features) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j < features) g[j] *= -expf(log_theta[j]) / eps;
}

// One block of 256 threads per row of w [rows, cols]: scale the row to unit L2 norm.
extern "C" __global__ void normalize_rows(float* w, int rows, int cols) {
    __shared__ float partial[256];
    int r = blockIdx.x;
    if (r >= rows) return;
    float* row = w + (long long)r * cols;
    float s = 0.0f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) s += row[c] * row[c];
    partial[threadIdx.x] = s;
    __syncthreads();
    for (int step = blockDim.x / 2; step > 0; step >>= 1) {
        if (threadIdx.x < step) partial[threadIdx.x] += partial[threadIdx.x + step];
        __syncthreads();
    }
    float norm = sqrtf(partial[0]);
    if (norm > 0.0f)
        for (int c = threadIdx.x; c < cols; c += blockDim.x) row[c] /= norm;
}

// Adam as torch.optim.Adam, with the CPU twin's operation order (bae_train::optim).
extern "C" __global__ void adam_step(float* p, const float* g, float* m, float* v, long long n, float lr,
                                     float beta1, float beta2, float one_minus_beta1, float one_minus_beta2,
                                     float scale_m, float scale_v, float eps) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float gi = g[i];
    float mi = m[i] * beta1 + gi * one_minus_beta1;
    float vi = v[i] * beta2 + (gi * gi) * one_minus_beta2;
    m[i] = mi;
    v[i] = vi;
    float m_hat = mi * scale_m;
    float v_hat = vi * scale_v;
    p[i] -= (m_hat / (sqrtf(v_hat) + eps)) * lr;
}
