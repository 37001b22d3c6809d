//! The cost model: multiply counts computed from shapes.

/// Multiplies of a convolution producing `out_pixels x out_channels` outputs, each reducing over
/// `kernel_h x kernel_w x in_channels` (every tap counted, padding included).
pub fn conv_macs(
    out_pixels: usize,
    out_channels: usize,
    kernel_h: usize,
    kernel_w: usize,
    in_channels: usize,
) -> u64 {
    [out_pixels, out_channels, kernel_h, kernel_w, in_channels]
        .iter()
        .map(|&x| x as u64)
        .product()
}

/// The two ways to compute an Inception 5x5 branch on an `h x w x in_channels` input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BottleneckCost {
    /// The 5x5 (or KxK) convolution straight on the input.
    pub naive: u64,
    /// The 1x1 reduction to `reduce` channels.
    pub reduce: u64,
    /// The KxK convolution on the reduced tensor.
    pub conv: u64,
}

impl BottleneckCost {
    /// Costs of a "same"-padded `k x k` branch with and without a 1x1 bottleneck.
    pub fn new(
        h: usize,
        w: usize,
        in_channels: usize,
        reduce: usize,
        out_channels: usize,
        k: usize,
    ) -> Self {
        let pixels = h * w;
        BottleneckCost {
            naive: conv_macs(pixels, out_channels, k, k, in_channels),
            reduce: conv_macs(pixels, reduce, 1, 1, in_channels),
            conv: conv_macs(pixels, out_channels, k, k, reduce),
        }
    }

    /// Total with the bottleneck.
    pub fn with_bottleneck(&self) -> u64 {
        self.reduce + self.conv
    }
}

/// Formats `n` with thousands separators: `12,443,648`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_example() {
        let cost = BottleneckCost::new(28, 28, 192, 16, 32, 5);
        assert_eq!(cost.naive, 120_422_400);
        assert_eq!((cost.reduce, cost.conv), (2_408_448, 10_035_200));
        assert_eq!(cost.with_bottleneck(), 12_443_648);
        assert_eq!(thousands(cost.with_bottleneck()), "12,443,648");
        assert_eq!(thousands(999), "999");
    }
}
