//! Criterion bench of one optimisation step of the default model on CPU at batch 32 and 256.
//! The Rust-vs-PyTorch ratio is printed by `tests/python/bench_train_step.py`.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tch::Device;
use trendscore_trainer::bench::StepRig;
use trendscore_trainer::TrainConfig;

fn train_step(c: &mut Criterion) {
    let cfg = TrainConfig::default();
    let mut group = c.benchmark_group("train_step_cpu");
    group.sample_size(10);
    for batch in [32usize, 256] {
        let mut rig = StepRig::new(&cfg, batch, Device::Cpu);
        rig.step();
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, _| {
            b.iter(|| rig.step())
        });
    }
    group.finish();
}

criterion_group!(benches, train_step);
criterion_main!(benches);
