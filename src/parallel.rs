//! Threading: how an operator's output is shared among threads.
//!
//! The output pixels are cut into chunks of whole microkernel tiles; each chunk is one task that
//! computes every output channel of its pixels with the full reduction. A reduction is never
//! split, so every output element is summed in the same order whatever the thread count: the
//! result is bit-identical for 1, 2 or 64 threads.

use rayon::prelude::*;
use rayon::ThreadPool;

use crate::error::Result;

/// Where an operator's work runs: the last argument of every `run`. Whatever it is, the result
/// is bit-identical (see the crate docs on determinism).
///
/// # Examples
///
/// ```
/// use incept::{MaxPool2d, MaxPool2dDesc, Nhwc, Parallelism, TensorView, TensorViewMut};
///
/// let pool = MaxPool2d::new(&MaxPool2dDesc::INCEPTION)?;
/// let shape = Nhwc::new(1, 64, 64, 16);
/// let x: Vec<f32> = (0..shape.element_count()?).map(|i| (i % 7) as f32).collect();
/// let input = TensorView::new(&x, shape)?;
///
/// let threads = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
/// let mut outputs = Vec::new();
/// for par in [Parallelism::Sequential, Parallelism::Global, Parallelism::Pool(&threads)] {
///     let mut y = vec![0.0; shape.element_count()?];
///     pool.run(&input, &mut TensorViewMut::new(&mut y, shape)?, par)?;
///     outputs.push(y);
/// }
/// assert!(outputs.windows(2).all(|w| w[0] == w[1]));
/// # Ok::<(), incept::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub enum Parallelism<'p> {
    /// On the calling thread only.
    Sequential,
    /// On rayon's global pool (or the pool the caller is already running in).
    #[default]
    Global,
    /// On a caller-supplied pool (the pool's threads do the work; the calling thread waits).
    ///
    /// Entering a pool from a thread outside it costs a few microseconds per run (the caller
    /// sleeps on a latch until the pool is done; 6-8 us on our 2-vCPU test VM), which matters
    /// for operators that take well under a millisecond. To run many of them, enter the pool
    /// once and call them with [`Parallelism::Global`] from inside:
    /// `pool.install(|| { a.run(.., Parallelism::Global)?; b.run(.., Parallelism::Global) })`.
    Pool(&'p ThreadPool),
}

impl Parallelism<'_> {
    /// Number of threads this choice can use.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::Parallelism;
    ///
    /// let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
    /// assert_eq!(Parallelism::Pool(&pool).threads(), 3);
    /// assert_eq!(Parallelism::Sequential.threads(), 1);
    /// assert_eq!(Parallelism::Global.threads(), rayon::current_num_threads());
    /// ```
    pub fn threads(&self) -> usize {
        match self {
            Parallelism::Sequential => 1,
            Parallelism::Global => rayon::current_num_threads(),
            Parallelism::Pool(pool) => pool.current_num_threads(),
        }
    }
}

/// Below this many multiply-adds an operator runs on the calling thread: handing work to
/// other threads costs a few microseconds.
pub(crate) const SEQUENTIAL_BELOW_MACS: usize = 1 << 18;

/// Output rows per task for an operator over `images` images of `rows` output rows in all (a
/// multiple of `granule`): [`chunk_pixels`] with one task per thread unless every thread gets at
/// least two whole images, then about four per thread, so an image is a task (or less) and a
/// thread that falls behind is balanced by the others. Measured at 2 threads with the timed loop
/// inside the pool: for one 28x28 image, one task per thread made the module 16% (exact) and 26%
/// (Winograd) faster than four, the Winograd 3x3 10% and the max-pool 7% faster than two (each
/// task repeats halo rows and fixed costs); at batch 8 four per thread made the max-pool 1.37x
/// faster than one and the module no slower.
pub(crate) fn chunk_rows(
    par: Parallelism<'_>,
    images: usize,
    rows: usize,
    granule: usize,
    macs: usize,
) -> usize {
    let tasks_per_thread = if threads_share_images(par, images) {
        1
    } else {
        4
    };
    chunk_pixels(par, rows, granule, macs, tasks_per_thread)
}

/// Whether the threads of `par` share images (fewer than two per thread): then each task is a
/// part of an image, one per thread ([`chunk_rows`]).
pub(crate) fn threads_share_images(par: Parallelism<'_>, images: usize) -> bool {
    images < 2 * par.threads()
}

/// How many pixels (or rows) each task covers: a multiple of `mr`, at least `mr`, about
/// `tasks_per_thread` tasks per thread. More tasks balance threads better; fewer keep the
/// per-task overheads of fused operators (halo rows recomputed at task edges) small.
pub(crate) fn chunk_pixels(
    par: Parallelism<'_>,
    pixels: usize,
    mr: usize,
    macs: usize,
    tasks_per_thread: usize,
) -> usize {
    let threads = if macs < SEQUENTIAL_BELOW_MACS {
        1
    } else {
        par.threads()
    };
    if threads <= 1 {
        return pixels.max(1);
    }
    let tiles = pixels.div_ceil(mr);
    let tasks = (threads * tasks_per_thread).min(tiles).max(1);
    tiles.div_ceil(tasks) * mr
}

/// Runs `task(first_pixel, chunk)` for each chunk of `chunk_pixels` pixels of an output whose
/// pixels are `pixel_stride` apart in `out` (which starts at pixel 0). `chunk` starts at
/// `first_pixel` and ends after the chunk's last pixel's last channel or at the end of `out`.
pub(crate) fn for_each_output_chunk<F>(
    par: Parallelism<'_>,
    out: &mut [f32],
    pixel_stride: usize,
    chunk_pixels: usize,
    task: F,
) -> Result<()>
where
    F: Fn(usize, &mut [f32]) -> Result<()> + Sync,
{
    // Saturating: a chunk wider than `out` (e.g. one pixel with a huge stride) is one chunk.
    let chunk_len = chunk_pixels.saturating_mul(pixel_stride).max(1);
    let run = |(i, chunk): (usize, &mut [f32])| task(i * chunk_pixels, chunk);
    if out.len() <= chunk_len || matches!(par, Parallelism::Sequential) {
        return out.chunks_mut(chunk_len).enumerate().try_for_each(run);
    }
    let mut parallel = move || out.par_chunks_mut(chunk_len).enumerate().try_for_each(run);
    match par {
        Parallelism::Pool(pool) => pool.install(parallel),
        _ => parallel(),
    }
}
