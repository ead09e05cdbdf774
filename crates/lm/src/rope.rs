//! Rotary position embeddings: inverse frequencies (with Llama 3, linear and
//! llama.cpp-style rescaling) and the per-token cos/sin tables.

use candle_core::{DType, Device, Tensor};

use crate::config::RopeScaling;
use crate::error::Result;

/// Inverse frequencies `1 / theta^(2i / head_dim)` for `i < head_dim / 2`, rescaled.
pub fn inverse_frequencies(head_dim: usize, theta: f64, scaling: Option<&RopeScaling>) -> Vec<f64> {
    let base = (0..head_dim / 2).map(|i| 1.0 / theta.powf(2.0 * i as f64 / head_dim as f64));
    match scaling {
        None => base.collect(),
        Some(RopeScaling::Linear { factor }) => base.map(|f| f / factor).collect(),
        Some(RopeScaling::FreqFactors(factors)) => base.zip(factors).map(|(f, k)| f / k).collect(),
        Some(RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings: original,
        }) => {
            let low_freq_wavelen = original / low_freq_factor;
            let high_freq_wavelen = original / high_freq_factor;
            base.map(|freq| {
                let wavelen = 2.0 * std::f64::consts::PI / freq;
                if wavelen < high_freq_wavelen {
                    freq
                } else if wavelen > low_freq_wavelen {
                    freq / factor
                } else {
                    let smooth =
                        (original / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
                    (1.0 - smooth) * freq / factor + smooth * freq
                }
            })
            .collect()
        }
    }
}

/// Cos and sin tables of shape `[batch, seq, head_dim / 2]` for per-token positions.
pub fn cos_sin(
    inv_freq: &[f64],
    positions: &[u32],
    batch: usize,
    seq: usize,
    dtype: DType,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let half = inv_freq.len();
    let mut cos = Vec::with_capacity(positions.len() * half);
    let mut sin = Vec::with_capacity(positions.len() * half);
    for &p in positions {
        for &f in inv_freq {
            // Angles in f64 then rounded once: f32 products lose digits at long positions.
            let angle = p as f64 * f;
            cos.push(angle.cos() as f32);
            sin.push(angle.sin() as f32);
        }
    }
    let cos = Tensor::from_vec(cos, (batch, seq, half), device)?.to_dtype(dtype)?;
    let sin = Tensor::from_vec(sin, (batch, seq, half), device)?.to_dtype(dtype)?;
    Ok((cos, sin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama3_scaling_keeps_high_and_divides_low_frequencies() {
        let scaling = RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 8192.0,
        };
        let plain = inverse_frequencies(128, 500000.0, None);
        let scaled = inverse_frequencies(128, 500000.0, Some(&scaling));
        assert_eq!(plain[0], scaled[0], "the highest frequency is kept");
        let last = plain.len() - 1;
        assert!((scaled[last] - plain[last] / 8.0).abs() < 1e-18, "the lowest is divided by 8");
        assert!(scaled.iter().zip(&plain).all(|(s, p)| s <= p));
    }

    #[test]
    fn tables_hold_cos_and_sin_of_position_times_frequency() {
        let inv = inverse_frequencies(4, 10000.0, None);
        assert_eq!(inv, vec![1.0, 0.01]);
        let (cos, sin) = cos_sin(&inv, &[0, 3], 1, 2, DType::F32, &Device::Cpu).unwrap();
        let cos: Vec<f32> = cos.flatten_all().unwrap().to_vec1().unwrap();
        let sin: Vec<f32> = sin.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(cos[0], 1.0);
        assert!((cos[2] - 3f32.cos()).abs() < 1e-7 && (sin[3] - 0.03f32.sin()).abs() < 1e-7);
    }
}
