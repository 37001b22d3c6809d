//! The cost model: multiply counts computed from shapes.

/// Multiplies of a convolution producing `out_pixels x out_channels` outputs, each reducing over
/// `kernel_h x kernel_w x in_channels` (every tap counted, padding included).
///
/// # Examples
///
/// ```
/// use incept::cost::conv_macs;
///
/// // GoogLeNet 3a's 1x1 branch: 28x28 pixels, 192 -> 64 channels.
/// assert_eq!(conv_macs(28 * 28, 64, 1, 1, 192), 9_633_792);
/// ```
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
///
/// # Examples
///
/// The case for the bottleneck, on GoogLeNet 3a's 5x5 branch (192 channels reduced to 16, then
/// 32 filters of 5x5): about ten times fewer multiplies.
///
/// ```
/// use incept::cost::BottleneckCost;
///
/// let cost = BottleneckCost::new(28, 28, 192, 16, 32, 5);
/// assert_eq!(cost.naive, 120_422_400);
/// assert_eq!(cost.with_bottleneck(), 2_408_448 + 10_035_200);
/// assert!(cost.naive > 9 * cost.with_bottleneck());
/// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::cost::{conv_macs, BottleneckCost};
    ///
    /// let cost = BottleneckCost::new(14, 14, 480, 16, 48, 5);
    /// assert_eq!(cost.reduce, conv_macs(14 * 14, 16, 1, 1, 480));
    /// assert_eq!(cost.conv, conv_macs(14 * 14, 48, 5, 5, 16));
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::cost::BottleneckCost;
    ///
    /// // GoogLeNet 4a's 5x5 branch: 480 channels at 14x14 reduced to 16, then 48 filters.
    /// let cost = BottleneckCost::new(14, 14, 480, 16, 48, 5);
    /// assert_eq!(cost.with_bottleneck(), cost.reduce + cost.conv);
    /// assert_eq!(cost.with_bottleneck(), 1_505_280 + 3_763_200);
    /// assert!(cost.with_bottleneck() < cost.naive / 20);
    /// ```
    pub fn with_bottleneck(&self) -> u64 {
        self.reduce + self.conv
    }
}

/// Formats `n` with thousands separators: `12,443,648`.
///
/// # Examples
///
/// ```
/// assert_eq!(incept::cost::thousands(12_443_648), "12,443,648");
/// assert_eq!(incept::cost::thousands(999), "999");
/// ```
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
