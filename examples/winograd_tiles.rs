//! Why incept's Winograd 3x3 uses F(4x4, 3x3) and not F(6x6, 3x3): the two measured on
//! GoogLeNet shapes, independently of the crate's kernels.
//!
//! For each tile size it builds the Toom-Cook matrices from interpolation points (F(4x4): 0, ±1,
//! ±2, ∞; F(6x6): 0, ±1, ±2, ±1/2, ∞), convolves random data in f32 the way incept does (filter
//! transform in f64, input/output transforms and the channel sums in f32 with FMA) and reports
//! max |error| / max |output| against a direct f64 convolution; then it counts the
//! transformed-domain multiplies (the GEMM work) on the GoogLeNet feature-map sizes, where the tile
//! grid must cover the whole image.
//!
//! ```text
//! cargo run --release --example winograd_tiles
//! ```

/// A dense row-major matrix.
type Matrix = Vec<Vec<f64>>;

/// The Toom-Cook matrices of F(m, 3) for the finite points `points` plus the point at infinity:
/// `(Aᵀ: m x n, G: n x 3, Bᵀ: n x n)` with `n = m + 2`, so that the 1D correlation of `d` (n
/// inputs) with `g` (3 taps) is `Aᵀ [(G g) ⊙ (Bᵀ d)]`.
fn toom_cook(m: usize, points: &[f64]) -> (Matrix, Matrix, Matrix) {
    let n = m + 2;
    assert_eq!(
        points.len(),
        n - 1,
        "F({m}, 3) needs {} finite points",
        n - 1
    );
    let power = |p: f64, i: usize| p.powi(i as i32);
    // Aᵀ evaluates the output polynomial at the points; ∞ contributes its leading coefficient.
    let a_t: Matrix = (0..m)
        .map(|i| {
            let mut row: Vec<f64> = points.iter().map(|&p| power(p, i)).collect();
            row.push(if i == m - 1 { 1.0 } else { 0.0 });
            row
        })
        .collect();
    // G evaluates the filter polynomial at each point, scaled by the Lagrange denominator.
    let mut g: Matrix = points
        .iter()
        .enumerate()
        .map(|(j, &p)| {
            let denominator: f64 = points
                .iter()
                .enumerate()
                .filter(|&(l, _)| l != j)
                .map(|(_, &q)| p - q)
                .product();
            (0..3).map(|k| power(p, k) / denominator).collect()
        })
        .collect();
    g.push(vec![0.0, 0.0, 1.0]);
    // Bᵀ: coefficients of the products of (x - p_l) over the other points (all of them for ∞).
    let product_without = |skip: Option<usize>| {
        let mut coefficients = vec![1.0];
        for (l, &p) in points.iter().enumerate() {
            if Some(l) == skip {
                continue;
            }
            let mut next = vec![0.0; coefficients.len() + 1];
            for (i, &c) in coefficients.iter().enumerate() {
                next[i + 1] += c;
                next[i] -= c * p;
            }
            coefficients = next;
        }
        coefficients.resize(n, 0.0);
        coefficients
    };
    let mut b_t: Matrix = (0..n - 1).map(|j| product_without(Some(j))).collect();
    b_t.push(product_without(None));
    (a_t, g, b_t)
}

/// Checks `toom_cook` in f64 on one 1D correlation: it must be exact to rounding.
fn check_1d(m: usize, points: &[f64]) {
    let (a_t, g, b_t) = toom_cook(m, points);
    let n = m + 2;
    let d: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
    let taps = [0.3, -0.7, 1.1];
    let gg: Vec<f64> = g
        .iter()
        .map(|row| (0..3).map(|k| row[k] * taps[k]).sum())
        .collect();
    let bd: Vec<f64> = b_t
        .iter()
        .map(|row| (0..n).map(|i| row[i] * d[i]).sum())
        .collect();
    for (i, row) in a_t.iter().enumerate() {
        let y: f64 = (0..n).map(|j| row[j] * gg[j] * bd[j]).sum();
        let expected: f64 = (0..3).map(|k| taps[k] * d[i + k]).sum();
        assert!(
            (y - expected).abs() < 1e-9,
            "F({m}, 3) output {i}: {y} vs {expected}"
        );
    }
}

/// A small xorshift generator: uniform values in [-1, 1).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32
    }
}

/// A "same" 3x3 convolution of an `h x h x cin` image to `cout` channels.
struct Problem {
    h: usize,
    cin: usize,
    cout: usize,
    input: Vec<f32>,
    /// OHWI.
    weights: Vec<f32>,
}

impl Problem {
    fn new(h: usize, cin: usize, cout: usize) -> Self {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let input = (0..h * h * cin).map(|_| rng.next()).collect();
        let weights = (0..cout * 9 * cin).map(|_| rng.next() * 0.1).collect();
        Problem {
            h,
            cin,
            cout,
            input,
            weights,
        }
    }

    /// Input pixel (y, x) channel c, zero outside the image.
    fn x(&self, y: isize, x: isize, c: usize) -> f32 {
        let h = self.h as isize;
        if y < 0 || x < 0 || y >= h || x >= h {
            return 0.0;
        }
        self.input[(y as usize * self.h + x as usize) * self.cin + c]
    }

    fn w(&self, o: usize, ky: usize, kx: usize, c: usize) -> f32 {
        self.weights[((o * 3 + ky) * 3 + kx) * self.cin + c]
    }

    /// The direct convolution in f64: `[y][x][o]`.
    fn direct(&self) -> Vec<f64> {
        let (h, cout) = (self.h, self.cout);
        let mut out = vec![0.0; h * h * cout];
        for y in 0..h {
            for x in 0..h {
                for o in 0..cout {
                    let mut sum = 0.0;
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let (iy, ix) = ((y + ky) as isize - 1, (x + kx) as isize - 1);
                            for c in 0..self.cin {
                                sum += self.x(iy, ix, c) as f64 * self.w(o, ky, kx, c) as f64;
                            }
                        }
                    }
                    out[(y * h + x) * cout + o] = sum;
                }
            }
        }
        out
    }

    /// max |error| / max |output| of Winograd F(m x m, 3 x 3) in f32 against [`Problem::direct`].
    fn winograd_error(&self, m: usize, points: &[f64]) -> f64 {
        let (a_t, g, b_t) = toom_cook(m, points);
        let n = m + 2;
        let to_f32 = |a: &Matrix| -> Vec<Vec<f32>> {
            a.iter()
                .map(|row| row.iter().map(|&v| v as f32).collect())
                .collect()
        };
        let (a_t32, b_t32) = (to_f32(&a_t), to_f32(&b_t));
        // f32 product `left x right` (or `left x rightᵀ`), each sum an FMA chain.
        let mul = |left: &[Vec<f32>], right: &[Vec<f32>], transpose_right: bool| {
            let cols = if transpose_right {
                right.len()
            } else {
                right[0].len()
            };
            left.iter()
                .map(|row| {
                    (0..cols)
                        .map(|j| {
                            row.iter().enumerate().fold(0.0f32, |sum, (i, &l)| {
                                let r = if transpose_right {
                                    right[j][i]
                                } else {
                                    right[i][j]
                                };
                                l.mul_add(r, sum)
                            })
                        })
                        .collect::<Vec<f32>>()
                })
                .collect::<Vec<_>>()
        };
        // U = G g Gᵀ in f64, stored in f32: `[o][c][a][b]`.
        let (cin, cout, h) = (self.cin, self.cout, self.h);
        let mut u = vec![0.0f32; cout * cin * n * n];
        for o in 0..cout {
            for c in 0..cin {
                for a in 0..n {
                    for b in 0..n {
                        let mut sum = 0.0;
                        for ky in 0..3 {
                            for kx in 0..3 {
                                sum += g[a][ky] * self.w(o, ky, kx, c) as f64 * g[b][kx];
                            }
                        }
                        u[((o * cin + c) * n + a) * n + b] = sum as f32;
                    }
                }
            }
        }
        let reference = self.direct();
        let (mut max_error, mut max_output) = (0.0f64, 0.0f64);
        let tiles = h.div_ceil(m);
        for ty in 0..tiles {
            for tx in 0..tiles {
                // V = Bᵀ d B per channel.
                let v: Vec<Vec<Vec<f32>>> = (0..cin)
                    .map(|c| {
                        let d: Vec<Vec<f32>> = (0..n)
                            .map(|a| {
                                (0..n)
                                    .map(|b| {
                                        let (iy, ix) = (ty * m + a, tx * m + b);
                                        self.x(iy as isize - 1, ix as isize - 1, c)
                                    })
                                    .collect()
                            })
                            .collect();
                        mul(&mul(&b_t32, &d, false), &b_t32, true)
                    })
                    .collect();
                for o in 0..cout {
                    // M[a][b] = sum over channels of V ⊙ U (the GEMMs), then Y = Aᵀ M A.
                    let prods: Vec<Vec<f32>> = (0..n)
                        .map(|a| {
                            (0..n)
                                .map(|b| {
                                    (0..cin).fold(0.0f32, |sum, c| {
                                        v[c][a][b].mul_add(u[((o * cin + c) * n + a) * n + b], sum)
                                    })
                                })
                                .collect()
                        })
                        .collect();
                    let y = mul(&mul(&a_t32, &prods, false), &a_t32, true);
                    for (i, row) in y.iter().enumerate() {
                        for (j, &value) in row.iter().enumerate() {
                            let (oy, ox) = (ty * m + i, tx * m + j);
                            if oy < h && ox < h {
                                let r = reference[(oy * h + ox) * cout + o];
                                max_error = max_error.max((value as f64 - r).abs());
                                max_output = max_output.max(r.abs());
                            }
                        }
                    }
                }
            }
        }
        max_error / max_output
    }
}

/// Transformed-domain multiplies per input and output channel pair for an `h x h` output:
/// every tile of the grid covering the image costs `(m + 2)^2`.
fn gemm_work(m: usize, h: usize) -> usize {
    h.div_ceil(m).pow(2) * (m + 2).pow(2)
}

fn main() {
    const F4: [f64; 5] = [0.0, 1.0, -1.0, 2.0, -2.0];
    const F6: [f64; 7] = [0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5];
    check_1d(4, &F4);
    check_1d(6, &F6);
    println!("max |error| / max |output| against a direct f64 convolution (random data):");
    for (h, cin, cout) in [(28, 96, 16), (28, 192, 8), (14, 832, 4)] {
        let problem = Problem::new(h, cin, cout);
        println!(
            "  {h}x{h}, {cin} -> {cout} channels: F(4x4) {:.1e}, F(6x6) {:.1e}",
            problem.winograd_error(4, &F4),
            problem.winograd_error(6, &F6)
        );
    }
    println!("GEMM work of F(6x6) relative to F(4x4) (tile grids covering the image):");
    for h in [56, 28, 14, 7] {
        println!(
            "  {h}x{h}: {:.2} ({} vs {} per channel pair; direct: {})",
            gemm_work(6, h) as f64 / gemm_work(4, h) as f64,
            gemm_work(6, h),
            gemm_work(4, h),
            9 * h * h
        );
    }
}
