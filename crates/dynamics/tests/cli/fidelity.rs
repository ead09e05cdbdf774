//! `bae fidelity`: an SAE that reconstructs exactly (relu(x) − relu(−x) = x) changes
//! nothing; one that reconstructs zero is zero ablation.

use std::collections::HashMap;

use super::*;

pub(super) fn write_sae(dir: &Path, hook: &str, d: usize, exact: bool) {
    std::fs::create_dir_all(dir).unwrap();
    let h = 2 * d;
    let (mut w_enc, mut w_dec) = (vec![0f32; d * h], vec![0f32; h * d]);
    for i in 0..d {
        w_enc[i * h + i] = 1.0;
        w_enc[i * h + d + i] = -1.0;
        if exact {
            w_dec[i * d + i] = 1.0;
            w_dec[(d + i) * d + i] = -1.0;
        }
    }
    let t = |v: Vec<f32>, shape: &[usize]| Tensor::from_vec(v, shape, &Device::Cpu).unwrap();
    let tensors = HashMap::from([
        ("W_enc".to_string(), t(w_enc, &[d, h])),
        ("b_enc".to_string(), t(vec![0.0; h], &[h])),
        ("W_dec".to_string(), t(w_dec, &[h, d])),
        ("b_dec".to_string(), t(vec![0.0; d], &[d])),
    ]);
    candle_core::safetensors::save(&tensors, dir.join("sae_weights.safetensors")).unwrap();
    let cfg =
        serde_json::json!({"bae_architecture": "relu_l1", "hook_name": hook, "d_in": d, "d_sae": h, "k": 0});
    std::fs::write(dir.join("cfg.json"), cfg.to_string()).unwrap();
}

#[test]
fn fidelity_of_exact_and_zero_reconstructions() {
    let f = fixture(Family::Llama);
    let baes = f.root.join("saes");
    write_sae(&baes.join("exact"), "blocks.0.hook_resid_post", 64, true);
    write_sae(&baes.join("zero"), "blocks.1.hook_resid_mid", 64, false);
    let prompts = f.root.join("heldout.txt");
    std::fs::write(&prompts, "the cat sat on the mat\na dog and a cat\n").unwrap();
    let out = f.root.join("fidelity.parquet");
    let o = bae(&[
        "fidelity",
        "--model",
        s(&f.hf),
        "--baes",
        s(&baes),
        "--prompts",
        s(&prompts),
        "--out",
        s(&out),
    ]);
    assert_ok(&o);
    check_tables_with_pyarrow(&[&out]);
    let (b, _) = read_parquet(&out);
    let col = |name: &str| -> Vec<f64> {
        b.column_by_name(name)
            .unwrap()
            .as_any()
            .downcast_ref::<arrow::array::Float64Array>()
            .unwrap()
            .values()
            .to_vec()
    };
    let (kl, js, recovered) = (col("kl"), col("js"), col("ce_recovered"));
    let (clean, spliced, zero) = (col("ce_clean"), col("ce_spliced"), col("ce_zero"));
    // Rows in hook order: blocks.0.hook_resid_post (exact), blocks.1.hook_resid_mid (zero).
    assert!(
        kl[0].abs() < 1e-5 && js[0].abs() < 1e-5 && (recovered[0] - 1.0).abs() < 1e-3,
        "{kl:?} {js:?} {recovered:?}"
    );
    assert!((spliced[0] - clean[0]).abs() < 1e-5);
    assert!((spliced[1] - zero[1]).abs() < 1e-5 && recovered[1].abs() < 1e-3, "{spliced:?} {zero:?}");
    assert!(kl[1] > 1e-3, "{kl:?}");
}
