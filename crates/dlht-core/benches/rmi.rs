//! Criterion benches of the RMI on seeded data: training 1k/10k/1M keys (linear and cubic) and
//! prediction, single and batched. Short measurements so `cargo bench` stays within minutes.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dlht_core::{ModelType, Rmi, RmiConfig};

#[path = "../tests/common/mod.rs"]
mod common;

fn config(model_type: ModelType) -> RmiConfig {
    RmiConfig {
        model_type,
        stage1_model_type: model_type,
        ..RmiConfig::default()
    }
}

fn train(c: &mut Criterion) {
    let mut group = c.benchmark_group("train");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    for n in [1_000, 10_000, 1_000_000] {
        let keys = common::lognormal(n, 1);
        group.throughput(Throughput::Elements(n as u64));
        for model_type in [ModelType::Linear, ModelType::Cubic] {
            group.bench_with_input(
                BenchmarkId::new(model_type.as_str(), n),
                &keys,
                |b, keys| b.iter(|| Rmi::train(config(model_type), black_box(keys)).unwrap()),
            );
        }
    }
    group.finish();
}

/// Probes drawn like the keys but in random order, as lookups arrive.
fn shuffled(mut probes: Vec<f64>) -> Vec<f64> {
    let mut rng = dlht_core::SplitMix64::new(4);
    for i in (1..probes.len()).rev() {
        probes.swap(i, rng.below(i as u64 + 1) as usize);
    }
    probes
}

fn predict(c: &mut Criterion) {
    let mut group = c.benchmark_group("predict");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    // Uniform keys get a linear-scale root, lognormal ones a log-scale root.
    let sets = [
        (
            "uniform",
            common::uniform(1_000_000, 2),
            shuffled(common::uniform(1_000_000, 3)),
        ),
        (
            "lognormal",
            common::lognormal(1_000_000, 2),
            shuffled(common::lognormal(1_000_000, 3)),
        ),
    ];
    for (name, keys, probes) in &sets {
        for model_type in [ModelType::Linear, ModelType::Cubic] {
            let rmi = Rmi::train(config(model_type), keys).unwrap();
            let id = format!("{name}/{model_type}");
            group.throughput(Throughput::Elements(1));
            group.bench_function(BenchmarkId::new("single", &id), |b| {
                let mut keys = probes.iter().cycle();
                b.iter(|| rmi.predict(black_box(*keys.next().unwrap())))
            });
            let mut out = vec![0u64; probes.len()];
            group.throughput(Throughput::Elements(probes.len() as u64));
            group.bench_function(BenchmarkId::new("many_1m", &id), |b| {
                b.iter(|| rmi.predict_many(black_box(probes), &mut out).unwrap())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, train, predict);
criterion_main!(benches);
