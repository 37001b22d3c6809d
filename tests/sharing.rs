//! Sharing operators between threads: every operator is `Send + Sync + Clone`, a clone shares
//! the packed weights of the operator it came from (no copy), and clones running at once on
//! several threads, each with any `Parallelism`, give the bits one sequential run gives.

mod common;

use std::sync::Arc;

use common::{activations, bias, thread_pool, weights, Mode};
use incept::{
    Bottleneck, BottleneckDesc, BottleneckWeights, Conv1x1, Conv2d, Conv2dDesc, ConvParams,
    Epilogue, Inception, InceptionConfig, InceptionWeights, MaxPool2d, MaxPool2dDesc, Nhwc,
    Parallelism, PoolProjection, TensorView, TensorViewMut,
};

const fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}

// Checked when the test crate compiles: a field that is not `Send`, `Sync` or `Clone` breaks the
// build here rather than in an embedder's code.
const _: () = {
    assert_send_sync_clone::<Conv1x1>();
    assert_send_sync_clone::<Conv2d>();
    assert_send_sync_clone::<MaxPool2d>();
    assert_send_sync_clone::<Bottleneck>();
    assert_send_sync_clone::<PoolProjection>();
    assert_send_sync_clone::<Inception>();
};

#[test]
fn every_operator_is_send_sync_and_clone() {
    // The assertions are the `const` block above; this test names them in the test list.
    assert_send_sync_clone::<Conv1x1>();
    assert_send_sync_clone::<Inception>();
}

/// The signature shared by every operator's `run`.
type RunFn<T> =
    fn(&T, &TensorView<'_>, &mut TensorViewMut<'_>, Parallelism<'_>) -> Result<(), incept::Error>;

/// Threads running clones at once, and runs per thread.
const THREADS: usize = 6;
const RUNS: usize = 3;

fn compute<T>(
    op: &T,
    run: RunFn<T>,
    x: &[f32],
    shapes: (Nhwc, Nhwc),
    par: Parallelism<'_>,
) -> Vec<f32> {
    let mut y = vec![0.0; shapes.1.element_count().unwrap()];
    run(
        op,
        &TensorView::new(x, shapes.0).unwrap(),
        &mut TensorViewMut::new(&mut y, shapes.1).unwrap(),
        par,
    )
    .unwrap();
    y
}

/// Runs `op` once sequentially, then clones of it (and an `Arc` of it) on `THREADS` threads at
/// once, each with a different `Parallelism`, and checks every output is bit-identical.
fn clones_run_alike<T>(name: &str, op: T, run: RunFn<T>, shapes: (Nhwc, Nhwc))
where
    T: Clone + Send + Sync + 'static,
{
    let x: Arc<Vec<f32>> = Arc::new(activations(
        Mode::Random,
        shapes.0.element_count().unwrap(),
        42,
    ));
    let want = compute(&op, run, &x, shapes, Parallelism::Sequential);
    let pool = Arc::new(thread_pool(3));
    let shared = Arc::new(op.clone());
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            // Even threads own a clone; odd ones share one operator through an `Arc`.
            let own = op.clone();
            let (shared, x, pool) = (Arc::clone(&shared), Arc::clone(&x), Arc::clone(&pool));
            std::thread::spawn(move || {
                let op: &T = if t % 2 == 0 { &own } else { &shared };
                let par = match t % 3 {
                    0 => Parallelism::Sequential,
                    1 => Parallelism::Global,
                    _ => Parallelism::Pool(&pool),
                };
                (0..RUNS)
                    .map(|_| compute(op, run, &x, shapes, par))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for (t, handle) in handles.into_iter().enumerate() {
        for (r, got) in handle.join().unwrap().iter().enumerate() {
            let same = got.len() == want.len()
                && got
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(
                same,
                "{name}: thread {t}, run {r} differs from the sequential run"
            );
        }
    }
}

fn input() -> Nhwc {
    // 2 x 12 x 12 x 32: every operator below is above the work threshold for splitting.
    Nhwc::new(2, 12, 12, 32)
}

#[test]
fn conv1x1_clones_share_weights_and_run_alike() {
    let cin = input().c;
    let conv = Conv1x1::new(
        cin,
        48,
        &weights(Mode::Random, 48 * cin, 1),
        Some(&bias(Mode::Random, 48, 1)),
        Epilogue::Relu,
    )
    .unwrap();
    let clone = conv.clone();
    assert!(clone.shares_weights_with(&conv) && conv.shares_weights_with(&clone));
    assert!(clone.clone().shares_weights_with(&conv));
    let twin = Conv1x1::new(
        cin,
        48,
        &weights(Mode::Random, 48 * cin, 1),
        Some(&bias(Mode::Random, 48, 1)),
        Epilogue::Relu,
    )
    .unwrap();
    assert!(!twin.shares_weights_with(&conv));
    let shapes = (input(), Nhwc { c: 48, ..input() });
    clones_run_alike("conv1x1", conv, Conv1x1::run, shapes);
}

#[test]
fn conv2d_clones_share_weights_and_run_alike() {
    let cin = input().c;
    let desc = Conv2dDesc::same(cin, 24, 3, Epilogue::Relu6);
    let w = weights(Mode::Random, 24 * 9 * cin, 2);
    let conv = Conv2d::new(&desc, &w, None).unwrap();
    assert!(conv.clone().shares_weights_with(&conv));
    assert!(!Conv2d::new(&desc, &w, None)
        .unwrap()
        .shares_weights_with(&conv));
    let shapes = (input(), conv.output_shape(input()).unwrap());
    clones_run_alike("conv2d", conv, Conv2d::run, shapes);
}

#[test]
fn maxpool_clones_run_alike() {
    let pool = MaxPool2d::new(&MaxPool2dDesc::INCEPTION).unwrap();
    let shapes = (input(), pool.output_shape(input()).unwrap());
    clones_run_alike("maxpool", pool, MaxPool2d::run, shapes);
}

#[test]
fn bottleneck_clones_share_weights_and_run_alike() {
    let cin = input().c;
    let (reduce, conv) = (
        weights(Mode::Random, 12 * cin, 3),
        weights(Mode::Random, 16 * 25 * 12, 4),
    );
    let b = bias(Mode::Random, 16, 4);
    let desc = BottleneckDesc::same_relu(cin, 12, 16, 5);
    let w = BottleneckWeights {
        reduce: &reduce,
        reduce_bias: None,
        conv: &conv,
        conv_bias: Some(&b),
    };
    let op = Bottleneck::new(&desc, &w).unwrap();
    assert!(op.clone().shares_weights_with(&op));
    assert!(!Bottleneck::new(&desc, &w).unwrap().shares_weights_with(&op));
    let shapes = (input(), op.output_shape(input()).unwrap());
    clones_run_alike("bottleneck", op, Bottleneck::run, shapes);
}

#[test]
fn pool_projection_clones_share_weights_and_run_alike() {
    let cin = input().c;
    let w = weights(Mode::Random, 40 * cin, 5);
    let make = || {
        PoolProjection::new(
            &MaxPool2dDesc::INCEPTION,
            cin,
            40,
            ConvParams {
                weights: &w,
                bias: None,
            },
            Epilogue::None,
        )
        .unwrap()
    };
    let op = make();
    assert!(op.clone().shares_weights_with(&op));
    assert!(!make().shares_weights_with(&op));
    let shapes = (input(), op.output_shape(input()).unwrap());
    clones_run_alike("pool projection", op, PoolProjection::run, shapes);
}

#[test]
fn inception_clones_share_weights_and_run_alike() {
    let cin = input().c;
    let config = InceptionConfig::googlenet(cin, 8, 12, 16, 4, 8, 8);
    let data: Vec<(Vec<f32>, Vec<f32>)> = [
        (8, cin),
        (12, cin),
        (16, 9 * 12),
        (4, cin),
        (8, 25 * 4),
        (8, cin),
    ]
    .iter()
    .enumerate()
    .map(|(i, &(out, per_out))| {
        (
            weights(Mode::Random, out * per_out, 10 + i as u64),
            bias(Mode::Random, out, 10 + i as u64),
        )
    })
    .collect();
    let p = |i: usize| ConvParams {
        weights: &data[i].0,
        bias: Some(&data[i].1),
    };
    let w = InceptionWeights {
        conv1x1: p(0),
        reduce3x3: Some(p(1)),
        conv3x3: p(2),
        reduce5x5: Some(p(3)),
        conv5x5: p(4),
        pool_proj: Some(p(5)),
    };
    let module = Inception::new(&config, &w).unwrap();
    assert!(module.clone().shares_weights_with(&module));
    assert!(!Inception::new(&config, &w)
        .unwrap()
        .shares_weights_with(&module));
    let shapes = (input(), module.output_shape(input()));
    clones_run_alike("inception", module, Inception::run, shapes);
}
