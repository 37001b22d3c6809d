//! `cargo run --release`: the 1x1 branch of GoogLeNet inception 3a on seeded data, timed and
//! checked against the scalar reference.

use incept::cost::{thousands, BottleneckCost};
use incept::reference::{self, Layout, Window};
use incept::{Conv1x1, Epilogue, Nhwc, Parallelism, TensorView, TensorViewMut};

use super::bench::{time, uniform};

pub fn run() -> Result<(), String> {
    let err = |e: incept::Error| e.to_string();
    let (h, w, cin, cout) = (28, 28, 192, 64);
    let input = uniform(h * w * cin, 1);
    let weights = uniform(cout * cin, 2);
    let bias = uniform(cout, 3);
    let conv = Conv1x1::new(cin, cout, &weights, Some(&bias), Epilogue::Relu).map_err(err)?;
    println!("incept demo: the 1x1 branch of GoogLeNet inception 3a");
    println!("cpu:      {}", super::cpu_name());
    println!("isa:      {} (kernel {})", conv.isa(), conv.kernel_name());
    println!("threads:  {}", rayon::current_num_threads());

    let in_view = TensorView::new(&input, Nhwc::new(1, h, w, cin)).map_err(err)?;
    let mut out = vec![0.0; h * w * cout];
    let mut result = Ok(());
    let timing = time(0.5, || {
        let mut view = TensorViewMut::new(&mut out, Nhwc::new(1, h, w, cout)).expect("valid shape");
        result = conv.run(&in_view, &mut view, Parallelism::Global);
    });
    result.map_err(err)?;
    let macs = conv.macs(h * w);
    let ms = timing.median.as_secs_f64() * 1e3;
    println!(
        "conv1x1:  28x28x192 -> 28x28x64, bias + ReLU: {} multiplies, {ms:.3} ms (median), {:.1} GFLOP/s",
        thousands(macs as u64),
        2.0 * macs as f64 / timing.median.as_secs_f64() / 1e9
    );

    let mut want = vec![0.0; h * w * cout];
    reference::conv2d(
        &input,
        &Layout::dense(1, h, w, cin),
        &weights,
        Some(&bias),
        &Window::square(1, 1, 0),
        reference::Clamp {
            min: 0.0,
            max: f32::INFINITY,
        },
        &mut want,
        &Layout::dense(1, h, w, cout),
    );
    let max_err = out
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    println!(
        "check:    max |incept - reference| = {max_err:.2e} over {} outputs",
        out.len()
    );

    let c = BottleneckCost::new(28, 28, 192, 16, 32, 5);
    println!(
        "lesson:   a naive 5x5 branch 192 -> 32 costs {} multiplies; with a 1x1 bottleneck to 16 \
         channels {} + {} = {} ({:.1}x fewer)",
        thousands(c.naive),
        thousands(c.reduce),
        thousands(c.conv),
        thousands(c.with_bottleneck()),
        c.naive as f64 / c.with_bottleneck() as f64
    );
    Ok(())
}
