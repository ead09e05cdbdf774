//! The trainer: recovery of planted bits, E0, determinism, checkpoints and resume.

use super::*;
use crate::bae::{Estimator, Normalization};
use crate::config::Architecture;

fn config(estimator: Estimator, lambda: f64, epochs: usize, entropy_start_epoch: usize) -> TrainConfig {
    TrainConfig {
        d_hidden: Some(16),
        estimator,
        lambda_entropy: lambda,
        lambda_covariance: lambda,
        entropy_start_epoch,
        lr: 5e-3,
        batch: 128,
        epochs,
        val_fraction: 0.2,
        seed: 7,
        // These tests are about the loop itself, on raw rows with the reference's
        // initialisation and schedule; early stopping, the λ warm-up, merging, pruning
        // and normalisation have their own.
        patience: 0,
        lambda_warmup_steps: 0,
        merge_agreement: 0.0,
        prune_bits: false,
        normalize_activations: Normalization::None,
        decoder_bias_init: crate::config::DecoderBiasInit::Uniform,
        ..TrainConfig::default()
    }
}

fn last_val(trainer: &Trainer) -> &EpochMetrics {
    trainer.history.iter().rev().find(|m| m.split == Split::Val).unwrap()
}

#[test]
fn a_bae_recovers_about_r_bits_from_synthetic_data() {
    // 4 fair independent bits carry exactly 4 bits; an encoder that recovers them and
    // keeps its other 12 features constant reports 4. Half a bit of slack allows one
    // feature to be partly redundant. Measured: 3.99 bits, validation FVU about 0.02.
    let rows = synthetic_bits(2048, 16, 4, 4.0, 0.05, 3).unwrap();
    let trained = train_in_memory(&rows, config(Estimator::Sigmoid, 0.1, 100, 30)).unwrap();
    let m = last_val(&trained);
    assert!((m.codes.entropy_bits - 4.0).abs() <= 0.5, "{m:?}");
    assert!(m.fvu < 0.05, "{m:?}");
    assert!(m.codes.constant >= 8, "most spare features should be constant: {m:?}");
    // Without the entropy and covariance terms the codes are far more redundant.
    let free = train_in_memory(&rows, config(Estimator::Sigmoid, 0.0, 100, 30)).unwrap();
    assert!(last_val(&free).codes.entropy_bits > 8.0, "{:?}", last_val(&free));
}

#[test]
fn an_epoch_merges_a_copy_and_a_complement_of_a_bit() {
    let rows = synthetic_bits(2048, 16, 3, 4.0, 0.05, 4).unwrap();
    let (_, d) = rows.dims2().unwrap();
    let source = InMemoryRows::new(rows.flatten_all().unwrap().to_vec1().unwrap(), d, 512).unwrap();
    // A learning rate too small to move anything: only the merge changes the code.
    let c =
        TrainConfig { epochs: 1, lr: 1e-12, merge_agreement: 1.0, ..config(Estimator::Sigmoid, 0.0, 1, 0) };
    let mut trainer = Trainer::new(c, &source).unwrap();
    let h = trainer.autoencoder.d_hidden;
    // Bit 5 copies bit 0, bit 6 is its complement (pre-activations negated).
    for r in 0..d {
        let w = trainer.autoencoder.w_enc[r * h];
        (trainer.autoencoder.w_enc[r * h + 5], trainer.autoencoder.w_enc[r * h + 6]) = (w, -w);
    }
    let b = trainer.autoencoder.b_enc[0];
    (trainer.autoencoder.b_enc[5], trainer.autoencoder.b_enc[6]) = (b, -b);
    let before = trainer.autoencoder.clone();
    let varying_before = {
        let x = source.read_chunk(0).unwrap();
        let codes = PackedCodes::from_preactivations(&before.preactivations(&x), x.len() / d, h);
        codes.varying_features(&codes.counts())
    };
    assert!(varying_before.contains(&0), "bit 0 must vary for the test to mean anything");
    trainer.run(&source, None, &mut |_, _| Ok(())).unwrap();
    assert!(trainer.history[0].merged_bits >= 2, "{:?}", trainer.history[0]);
    assert_eq!((trainer.autoencoder.b_enc[5], trainer.autoencoder.b_enc[6]), (-1.0, -1.0));
    // Bit 0 now carries both decoder rows: its own plus the copy's, less the complement's.
    for c in 0..d {
        let want = before.w_dec[c] + before.w_dec[5 * d + c] - before.w_dec[6 * d + c];
        assert!((trainer.autoencoder.w_dec[c] - want).abs() < 1e-4, "column {c}");
    }
    // Without merging, the same epoch keeps all three.
    let c = TrainConfig { merge_agreement: 0.0, ..trainer.config.clone() };
    let mut kept = Trainer::new(c, &source).unwrap();
    kept.autoencoder = before;
    kept.run(&source, None, &mut |_, _| Ok(())).unwrap();
    assert_eq!(kept.history[0].merged_bits, 0);
}

#[test]
fn the_entropy_term_has_no_effect_before_e0() {
    let rows = synthetic_bits(512, 8, 3, 4.0, 0.05, 1).unwrap();
    let run = |lambda_h: f64| {
        let mut c = config(Estimator::Identity, 0.0, 6, 3);
        c.lambda_entropy = lambda_h;
        let mut history = train_in_memory(&rows, c).unwrap().history;
        history.iter_mut().for_each(|m| m.seconds = 0.0);
        history
    };
    // Before E0 a huge λ_H changes nothing, bit for bit; from E0 on it does.
    let (plain, weighted) = (run(0.0), run(10.0));
    assert_eq!(plain[..6], weighted[..6]);
    assert_ne!(plain[6..], weighted[6..]);
}

fn weights(t: &Trainer) -> Vec<Vec<f32>> {
    let mut w: Vec<Vec<f32>> = t.autoencoder.params().iter().map(|p| p.to_vec()).collect();
    w.push(vec![t.autoencoder.batch_threshold]);
    w
}

#[test]
fn same_seed_same_weights() {
    let rows = synthetic_bits(512, 8, 3, 4.0, 0.05, 1).unwrap();
    let a = train_in_memory(&rows, config(Estimator::SignS, 1e-2, 3, 1)).unwrap();
    let b = train_in_memory(&rows, config(Estimator::SignS, 1e-2, 3, 1)).unwrap();
    assert_eq!(weights(&a), weights(&b));
    let mut other = config(Estimator::SignS, 1e-2, 3, 1);
    other.seed = 8;
    assert_ne!(weights(&a), weights(&train_in_memory(&rows, other).unwrap()));
}

#[test]
fn a_killed_run_resumes_to_the_same_weights() {
    let mut bae = config(Estimator::SignS, 1e-2, 7, 2);
    bae.d_hidden = Some(12);
    // The baselines with state beyond weights and moments: learned thresholds (JumpReLU)
    // and the running inference threshold (BatchTopK).
    let jump = TrainConfig { l0_coefficient: Some(0.1), ..sae_config(Architecture::JumpRelu, 7) };
    let batch_topk = TrainConfig { k: Some(3), ..sae_config(Architecture::BatchTopK, 7) };
    for mut c in [bae, jump, batch_topk] {
        c.checkpoint_every = 3;
        c.batch = 64;
        check_resume(c);
    }
}

fn check_resume(c: TrainConfig) {
    let rows = synthetic_bits(600, 8, 3, 4.0, 0.05, 2).unwrap();
    let source = InMemoryRows::new(rows.flatten_all().unwrap().to_vec1().unwrap(), 8, 100).unwrap();
    let dir = tempfile::tempdir().unwrap();

    let mut whole = Trainer::new(c.clone(), &source).unwrap();
    whole.run(&source, Some(&dir.path().join("whole")), &mut |_, _| Ok(())).unwrap();

    // Die after epoch 5: the last checkpoint is from epoch 3.
    let killed = dir.path().join("killed");
    let mut first = Trainer::new(c.clone(), &source).unwrap();
    let died = first.run(&source, Some(&killed), &mut |t, _| {
        if t.epochs_done == 5 {
            Err(crate::TrainError::Input("killed".into()))
        } else {
            Ok(())
        }
    });
    assert!(died.is_err());
    let mut resumed =
        Trainer::resume(c.clone(), &source, &killed.join(crate::checkpoint::CHECKPOINT_FILE)).unwrap();
    assert_eq!(resumed.epochs_done, 3);
    resumed.run(&source, Some(&killed), &mut |_, _| Ok(())).unwrap();
    assert_eq!(weights(&resumed), weights(&whole));
    let strip =
        |h: &[EpochMetrics]| h.iter().map(|m| EpochMetrics { seconds: 0.0, ..m.clone() }).collect::<Vec<_>>();
    assert_eq!(strip(&resumed.history), strip(&whole.history));
    assert_eq!(
        std::fs::read(killed.join(crate::checkpoint::WEIGHTS_FILE)).unwrap(),
        std::fs::read(dir.path().join("whole").join(crate::checkpoint::WEIGHTS_FILE)).unwrap()
    );

    // A different config, or a checkpoint for another width, is refused by name.
    let mut changed = c.clone();
    changed.lr = 1e-3;
    let err = Trainer::resume(changed, &source, &killed.join(crate::checkpoint::CHECKPOINT_FILE))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("lr = 0.005") && err.contains("0.001"), "{err}");
    let mut wider = c;
    wider.d_hidden = Some(10);
    let err = Trainer::resume(wider, &source, &killed.join(crate::checkpoint::CHECKPOINT_FILE))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("d_hidden"), "{err}");
}

fn sae_config(architecture: Architecture, epochs: usize) -> TrainConfig {
    TrainConfig {
        architecture,
        d_hidden: Some(16),
        lr: 5e-3,
        batch: 128,
        epochs,
        seed: 7,
        patience: 0,
        normalize_activations: Normalization::None,
        decoder_bias_init: crate::config::DecoderBiasInit::Uniform,
        ..TrainConfig::default()
    }
}

#[test]
fn every_baseline_learns_and_keeps_its_sparsity() {
    let rows = synthetic_bits(2048, 16, 4, 4.0, 0.05, 3).unwrap();
    let untrained = |c: TrainConfig| {
        let mut c = c;
        c.epochs = 1;
        c.lr = 1e-12;
        last_val(&train_in_memory(&rows, c).unwrap()).fvu
    };
    for architecture in
        [Architecture::ReluL1, Architecture::TopK, Architecture::BatchTopK, Architecture::JumpRelu]
    {
        let mut c = sae_config(architecture, 40);
        match architecture {
            Architecture::TopK | Architecture::BatchTopK => c.k = Some(3),
            Architecture::ReluL1 => c.l1_coefficient = Some(1e-3),
            _ => c.l0_coefficient = Some(1e-3),
        }
        let before = untrained(c.clone());
        let trained = train_in_memory(&rows, c.clone()).unwrap();
        let m = last_val(&trained);
        // Measured: FVU 0.6–0.9 untrained, under 0.1 after 40 epochs.
        assert!(m.fvu < 0.2 && m.fvu < before / 3.0, "{architecture:?}: {before} -> {m:?}");
        match architecture {
            Architecture::TopK => assert!(m.codes.l0 <= 3.0 + 1e-9, "{m:?}"),
            Architecture::BatchTopK => assert!((1.5..=4.5).contains(&m.codes.l0), "{m:?}"),
            _ => {}
        }
        // Decoder rows stay unit vectors.
        for row in trained.autoencoder.w_dec.chunks(16) {
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4, "{architecture:?}: decoder row norm {norm}");
        }
    }
}

#[test]
fn sparsity_penalties_lower_l0() {
    let rows = synthetic_bits(2048, 16, 4, 4.0, 0.05, 3).unwrap();
    for (architecture, strong) in [(Architecture::ReluL1, 0.3), (Architecture::JumpRelu, 0.3)] {
        let run = |coefficient: f64| {
            let mut c = sae_config(architecture, 40);
            if architecture == Architecture::ReluL1 {
                c.l1_coefficient = Some(coefficient);
            } else {
                c.l0_coefficient = Some(coefficient);
                c.jumprelu_bandwidth = Some(0.1);
                c.jumprelu_initial_threshold = Some(0.1);
            }
            train_in_memory(&rows, c).unwrap()
        };
        let (free, penalised) = (run(0.0), run(strong));
        let (a, b) = (last_val(&free), last_val(&penalised));
        assert!(
            b.codes.l0 < 0.8 * a.codes.l0,
            "{architecture:?}: L0 {} without, {} with",
            a.codes.l0,
            b.codes.l0
        );
        assert!(
            b.sparsity > 0.0 && b.sparsity < a.sparsity,
            "{architecture:?}: {} vs {}",
            a.sparsity,
            b.sparsity
        );
        if architecture == Architecture::JumpRelu {
            let mean_theta =
                |t: &Trainer| t.autoencoder.log_threshold.iter().map(|l| l.exp()).sum::<f32>() / 16.0;
            assert!(mean_theta(&penalised) > mean_theta(&free), "the L0 term should raise thresholds");
        }
    }
}

#[test]
fn the_decoder_bias_can_start_at_the_training_mean() {
    let rows = synthetic_bits(600, 8, 3, 4.0, 0.05, 2).unwrap();
    let source = InMemoryRows::new(rows.flatten_all().unwrap().to_vec1().unwrap(), 8, 100).unwrap();
    let mut c = config(Estimator::SignS, 1e-2, 1, 0);
    c.decoder_bias_init = crate::config::DecoderBiasInit::Mean;
    let trainer = Trainer::new(c.clone(), &source).unwrap();
    assert_eq!(trainer.autoencoder.b_dec, trainer.train_mean);
    c.decoder_bias_init = crate::config::DecoderBiasInit::Uniform;
    let plain = Trainer::new(c, &source).unwrap();
    assert_ne!(plain.autoencoder.b_dec, plain.train_mean);
    assert!(plain.autoencoder.b_dec.iter().all(|b| b.abs() <= 1.0 / 4.0), "uniform in ±1/sqrt(16)");
}

#[test]
fn early_stopping_ends_when_the_validation_loss_stalls_and_resumes_to_the_same_end() {
    let rows = synthetic_bits(600, 8, 3, 4.0, 0.05, 2).unwrap();
    let source = InMemoryRows::new(rows.flatten_all().unwrap().to_vec1().unwrap(), 8, 100).unwrap();
    let mut c = config(Estimator::SignS, 1e-2, 400, 0);
    c.patience = 3;
    c.min_improvement = 0.01;
    c.checkpoint_every = 4;
    let dir = tempfile::tempdir().unwrap();
    let mut whole = Trainer::new(c.clone(), &source).unwrap();
    whole.run(&source, Some(&dir.path().join("whole")), &mut |_, _| Ok(())).unwrap();
    assert!(whole.stopped_early() && whole.epochs_done < 400, "ran {} epochs", whole.epochs_done);
    // The rule itself, from the history: the best loss (by 1%) is exactly 3 epochs old.
    let losses: Vec<f64> = whole.history.iter().filter(|m| m.split == Split::Val).map(|m| m.loss).collect();
    let mut best = 0;
    for (i, &l) in losses.iter().enumerate() {
        if l < losses[best] * 0.99 {
            best = i;
        }
    }
    assert_eq!(losses.len() - 1 - best, 3, "{losses:?}");
    // A run killed mid-way resumes and stops at the same epoch with the same weights.
    let killed = dir.path().join("killed");
    let stop_at = whole.epochs_done - 1;
    let mut first = Trainer::new(c.clone(), &source).unwrap();
    let died = first.run(&source, Some(&killed), &mut |t, _| {
        if t.epochs_done == stop_at {
            Err(crate::TrainError::Input("killed".into()))
        } else {
            Ok(())
        }
    });
    assert!(died.is_err());
    let mut resumed = Trainer::resume(c, &source, &killed.join(crate::checkpoint::CHECKPOINT_FILE)).unwrap();
    resumed.run(&source, Some(&killed), &mut |_, _| Ok(())).unwrap();
    assert_eq!((resumed.epochs_done, weights(&resumed)), (whole.epochs_done, weights(&whole)));
}

#[test]
fn training_on_x_and_on_ten_x_gives_the_same_codes() {
    // The normalisation constant absorbs the scale: the trained models see rows that
    // agree to rounding, so they end with (nearly) the same codes on the same inputs.
    let rows = synthetic_bits(1024, 8, 3, 4.0, 0.05, 5).unwrap();
    let big = (&rows * 10.0).unwrap();
    let mut c = config(Estimator::SignS, 1e-2, 20, 5);
    c.normalize_activations = Normalization::ExpectedAverageOnlyIn;
    let (a, b) = (train_in_memory(&rows, c.clone()).unwrap(), train_in_memory(&big, c).unwrap());
    let ratio = a.autoencoder.input_scale / b.autoencoder.input_scale;
    assert!(
        (ratio - 10.0).abs() < 1e-4,
        "scales {} and {}",
        a.autoencoder.input_scale,
        b.autoencoder.input_scale
    );
    let x: Vec<f32> = rows.flatten_all().unwrap().to_vec1().unwrap();
    let x10: Vec<f32> = x.iter().map(|v| v * 10.0).collect();
    let (ca, cb) = (a.autoencoder.encode(&x), b.autoencoder.encode(&x10));
    let agree = ca.iter().zip(&cb).filter(|(p, q)| p == q).count() as f64 / ca.len() as f64;
    assert!(agree > 0.99, "codes agree on {agree}");
    // Reconstructions come back in the input's units.
    let (ra, rb) = (a.autoencoder.reconstruct(&x), b.autoencoder.reconstruct(&x10));
    let err =
        |r: &[f32], x: &[f32]| r.iter().zip(x).map(|(r, x)| (r - x).powi(2)).sum::<f32>() / x.len() as f32;
    let (ea, eb) = (err(&ra, &x), err(&rb, &x10));
    assert!((eb / ea - 100.0).abs() < 5.0, "errors {ea} and {eb} should differ by 10²");
    // Without normalisation the two runs are different models.
    let raw = config(Estimator::SignS, 1e-2, 20, 5);
    let (ra, rb) = (train_in_memory(&rows, raw.clone()).unwrap(), train_in_memory(&big, raw).unwrap());
    assert_eq!((ra.autoencoder.input_scale, rb.autoencoder.input_scale), (1.0, 1.0));
    let (ca, cb) = (ra.autoencoder.encode(&x), rb.autoencoder.encode(&x10));
    assert_ne!(ca, cb);
}

#[test]
fn the_folded_model_reads_raw_activations_as_the_scaled_one_does() {
    let rows = synthetic_bits(512, 8, 3, 40.0, 0.5, 6).unwrap();
    let mut c = config(Estimator::SignS, 1e-2, 4, 0);
    c.normalize_activations = Normalization::ExpectedAverageOnlyIn;
    let trained = train_in_memory(&rows, c).unwrap();
    let model = &trained.autoencoder;
    assert!((model.input_scale - 1.0).abs() > 0.1, "the rows are far from unit scale");
    let folded = model.folded();
    assert_eq!(folded.input_scale, 1.0);
    let x: Vec<f32> = rows.flatten_all().unwrap().to_vec1().unwrap();
    let (c, cf) = (model.encode(&x), folded.encode(&x));
    let agree = c.iter().zip(&cf).filter(|(p, q)| p == q).count() as f64 / c.len() as f64;
    assert!(agree > 0.999, "{agree}");
    for (r, rf) in model.reconstruct(&x).iter().zip(folded.reconstruct(&x)) {
        assert!((r - rf).abs() <= 1e-3 * r.abs().max(1.0), "{r} vs {rf}");
    }
}

#[test]
fn rows_far_above_the_median_norm_are_left_out_of_both_splits() {
    // 2048 ordinary rows with 6 massive ones (1000x) spread through both splits: the
    // default ratio leaves exactly those out, and the model fits the rest.
    let rows = synthetic_bits(2048, 8, 3, 4.0, 0.05, 9).unwrap();
    let mut data: Vec<f32> = rows.flatten_all().unwrap().to_vec1().unwrap();
    for r in [5usize, 300, 900, 1500, 1700, 2000] {
        data[r * 8..(r + 1) * 8].iter_mut().for_each(|x| *x *= 1000.0);
    }
    let massive = Tensor::from_vec(data, (2048, 8), &Device::Cpu).unwrap();
    let c = config(Estimator::Sigmoid, 1e-2, 30, 5);
    let trained = train_in_memory(&massive, c.clone()).unwrap();
    assert_eq!(trained.outlier_rows, 6);
    let n_val = c.validation_rows(2048);
    assert_eq!((trained.train_rows, trained.val_rows), (2048 - n_val - 4, n_val - 2));
    let bound = trained.outlier_norm_bound.unwrap();
    assert!(bound > 20.0 && bound < 20.0 * 10.0, "20x a median norm of about 4-8: {bound}");
    assert!(last_val(&trained).fvu < 0.2, "{:?}", last_val(&trained));
    // Kept in, they are most of the variance, and the same recipe fits them instead.
    let kept = train_in_memory(&massive, TrainConfig { outlier_norm_ratio: 0.0, ..c }).unwrap();
    assert_eq!((kept.outlier_rows, kept.outlier_norm_bound, kept.train_rows), (0, None, 2048 - n_val));
    assert!(last_val(&kept).fvu > last_val(&trained).fvu, "{:?}", last_val(&kept));
}

#[test]
fn the_lambda_warm_up_ramps_both_regularisers_per_step() {
    let c = TrainConfig { lambda_warmup_steps: 100, entropy_start_epoch: 2, ..TrainConfig::default() };
    let at = |epoch, steps| LossWeights::at(&c, epoch, steps);
    assert_eq!((at(0, 0).lambda_entropy, at(0, 0).lambda_covariance), (0.0, 0.0));
    // Half-way through the warm-up λ_C is half its value; λ_H waits for E0.
    assert_eq!((at(1, 50).lambda_entropy, at(1, 50).lambda_covariance), (0.0, 0.5 * c.lambda_covariance));
    assert_eq!(at(2, 50).lambda_entropy, 0.5 * c.lambda_entropy);
    assert_eq!(
        (at(3, 100).lambda_entropy, at(9, 1000).lambda_covariance),
        (c.lambda_entropy, c.lambda_covariance)
    );
    // Early stopping compares epochs from the first that starts after both.
    assert_eq!(c.objective_start_epoch(30), 4);
    assert_eq!(c.objective_start_epoch(200), 2);
    let none = TrainConfig { lambda_warmup_steps: 0, ..c };
    assert_eq!((none.lambda_ramp(0), none.objective_start_epoch(1)), (1.0, 2));
}

#[test]
fn a_diverging_run_stops_with_its_epoch_and_step_instead_of_writing_nan() {
    let rows = synthetic_bits(512, 8, 3, 4.0, 0.05, 1).unwrap();
    // A learning rate that overflows f32 within a step or two.
    let c = TrainConfig { lr: 1e38, ..config(Estimator::Sigmoid, 0.0, 3, 0) };
    let Err(err) = train_in_memory(&rows, c) else { panic!("the run must stop") };
    let err = err.to_string();
    assert!(
        err.contains("not finite") && err.contains("epoch 0") && err.contains("optimiser steps"),
        "{err}"
    );
    // The same run at a sane rate finishes with finite weights.
    let fine = train_in_memory(&rows, config(Estimator::Sigmoid, 0.0, 3, 0)).unwrap();
    assert!(fine.autoencoder.params().iter().all(|p| p.iter().all(|v| v.is_finite())));
}

#[test]
fn fuzzed_checkpoints_give_errors_that_name_them_and_never_panic() {
    let c = TrainConfig { epochs: 1, batch: 64, ..config(Estimator::SignS, 1e-2, 1, 0) };
    let rows = synthetic_bits(600, 8, 3, 4.0, 0.05, 2).unwrap();
    let source = InMemoryRows::new(rows.flatten_all().unwrap().to_vec1().unwrap(), 8, 100).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut trainer = Trainer::new(c.clone(), &source).unwrap();
    trainer.run(&source, Some(dir.path()), &mut |_, _| Ok(())).unwrap();
    let path = dir.path().join(crate::checkpoint::CHECKPOINT_FILE);
    let original = std::fs::read(&path).unwrap();
    bae_lm::fuzz::run("checkpoint", &original, crate::checkpoint::CHECKPOINT_FILE, |bytes| {
        std::fs::write(&path, bytes).unwrap();
        Trainer::resume(c.clone(), &source, &path).err().map(|e| e.to_string())
    });
}

/// A full disk at a checkpoint (writes to /dev/full fail with ENOSPC) stops the run
/// with the error, leaves the last good checkpoint and no temporary file, and the run
/// resumed once there is room ends with the weights of one that never failed.
#[test]
fn a_full_disk_at_a_checkpoint_fails_cleanly_and_the_run_resumes_to_the_same_weights() {
    let mut c = config(Estimator::SignS, 1e-2, 6, 2);
    c.checkpoint_every = 2;
    c.batch = 64;
    let rows = synthetic_bits(600, 8, 3, 4.0, 0.05, 2).unwrap();
    let source = InMemoryRows::new(rows.flatten_all().unwrap().to_vec1().unwrap(), 8, 100).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut whole = Trainer::new(c.clone(), &source).unwrap();
    whole.run(&source, Some(&dir.path().join("whole")), &mut |_, _| Ok(())).unwrap();

    let full = dir.path().join("full");
    let checkpoint = full.join(crate::checkpoint::CHECKPOINT_FILE);
    let tmp = crate::files::partial_path(&checkpoint);
    let mut first = Trainer::new(c.clone(), &source).unwrap();
    // The disk fills after the first checkpoint (epoch 2): the second one fails.
    let err = first
        .run(&source, Some(&full), &mut |t, checkpointed| {
            if checkpointed && t.epochs_done == 2 {
                std::os::unix::fs::symlink("/dev/full", &tmp).unwrap();
            }
            Ok(())
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("No space left") && err.contains(&*tmp.to_string_lossy()), "{err}");
    assert!(!tmp.exists() && std::fs::symlink_metadata(&tmp).is_err(), "the temporary file stayed");
    let mut resumed = Trainer::resume(c, &source, &checkpoint).unwrap();
    assert_eq!(resumed.epochs_done, 2, "the checkpoint before the full disk");
    resumed.run(&source, Some(&full), &mut |_, _| Ok(())).unwrap();
    assert_eq!(weights(&resumed), weights(&whole));
}
