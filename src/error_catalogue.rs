//! # Every error the API returns
//!
//! Each failure is an [`Error`](crate::Error): an [`ErrorKind`](crate::ErrorKind) to match on
//! and a message that names the field and the numbers. Nothing here panics: every row below is
//! an `Err`. Checks run in the order of the sections (views when they are built; an operator's
//! descriptor, weights, epilogue, then ISA when it is created; shapes when it runs), and every
//! check comes before any allocation or write: a refused `run` leaves the output untouched, and
//! sizes too large for memory are refused before anything is allocated.
//!
//! `op` in a message is the part that failed: `conv1x1`, `conv2d`, `maxpool`, `bottleneck`,
//! `bottleneck reduction`, `bottleneck conv`, `pool projection`, and for
//! [`Inception`](crate::Inception) `1x1 branch`, `3x3 reduction`, `3x3 branch`,
//! `5x5 reduction`, `5x5 branch`, `pool projection`. `input` / `output` name the view.
//!
//! Each row has a test, in `tests/errors.rs` (E), `tests/conv2d.rs` (C), `tests/pool.rs` (P),
//! `tests/inception.rs` (I) or `tests/error_catalogue.rs` (K, one test per row for what the
//! others do not cover).
//!
//! ## Views and shapes
//!
//! | # | Operation | Condition | `ErrorKind` | Example message | Tests |
//! |---|---|---|---|---|---|
//! | 1 | `TensorView::new` / `with_layout`, `TensorViewMut::new` / `with_layout` | a dimension is 0 | `InvalidArgument` | `input height is 0; every dimension must be at least 1` | E `views_with_a_zero_dimension` |
//! | 2 | same | pixel stride < channels | `InvalidArgument` | `input pixel stride 3 is less than its channels 4: pixels would overlap` | E `pixel_stride_below_channels` |
//! | 3 | same | `n * h * w` overflows `usize` | `Overflow` | `input pixel count overflows usize` | E `offsets_and_shapes_overflowing_usize` |
//! | 4 | same | `(pixels - 1) * pixel_stride + c` overflows | `Overflow` | `input extent of shape 1099511627776x1x1x1 with pixel stride 1073741824 overflows usize` | E `offsets_and_shapes_overflowing_usize` |
//! | 5 | same | `offset + extent` overflows | `Overflow` | `output offset 18446744073709551615 + extent 1 overflows usize` | E `offsets_and_shapes_overflowing_usize` |
//! | 6 | same | the slice is shorter than `offset + extent` (including shapes that fit `usize` but not memory) | `BufferTooSmall` | `input slice has 15 elements but shape 1x1x3x2 with pixel stride 5 and offset 4 needs 16` | E `slice_too_short_for_the_layout`, K `huge_sizes_are_rejected_before_any_allocation` |
//! | 7 | `TensorView::channels`, `TensorViewMut::channels` | empty slice, or `start + count` beyond the channels (or overflowing) | `InvalidArgument` | `input channel slice 2..5 is empty or outside its 4 channels` | E `channel_slice_out_of_range` |
//! | 8 | `Nhwc::element_count` | `n * h * w * c` overflows | `Overflow` | `tensor element count overflows usize` | E `offsets_and_shapes_overflowing_usize` |
//!
//! ## Creating an operator
//!
//! `Conv1x1`, `Conv2d`, `MaxPool2d`, `Bottleneck`, `PoolProjection`, `Inception` (`new` and
//! `with_options`).
//!
//! | # | Operation | Condition | `ErrorKind` | Example message | Tests |
//! |---|---|---|---|---|---|
//! | 9 | `Conv2d`, `Bottleneck`, `MaxPool2d`, `PoolProjection` | kernel 0, or above `MAX_KERNEL` (16; convolutions) / `MAX_POOL_KERNEL` (64; pools); a window whose height and width differ names the side (`kernel height`, `kernel width`) | `InvalidArgument` | `conv2d kernel 17 must be in 1..=16`, `maxpool kernel 65 must be in 1..=64`, `maxpool kernel width 0 must be in 1..=64` | C `kernel_zero_or_above_the_maximum`, P `bad_pool_descriptors_are_errors`, K `window_descriptors_in_every_operator` |
//! | 10 | same | stride 0 (`vertical stride` or `horizontal stride` when the two strides differ) | `InvalidArgument` | `bottleneck stride is 0; it must be at least 1`, `maxpool horizontal stride is 0; it must be at least 1` | C `zero_stride`, P `bad_pool_descriptors_are_errors`, K `window_descriptors_in_every_operator` |
//! | 11 | same | a side's padding >= the window's side along it (top and bottom: height, left and right: width; named as in row 9) | `InvalidArgument` | `maxpool right padding 3 must be less than the kernel 3`, `maxpool top padding 1 must be less than the kernel height 1` | C `padding_not_less_than_the_kernel_on_each_side`, P `bad_pool_descriptors_are_errors`, K `window_descriptors_in_every_operator` |
//! | 12 | every convolution (each stage of the fused operators, each convolution of a module) | a channel count is 0 | `InvalidArgument` | `bottleneck reduction channels must be at least 1, got in_channels 3, out_channels 0` | E `zero_input_or_output_channels`, K `zero_channels_in_every_operator` |
//! | 13 | same | `out x taps x in` overflows `usize` | `Overflow` | `conv2d weight count overflows usize` | E `weight_count_overflowing_usize`, K `weight_counts_overflowing_usize_in_every_operator` |
//! | 14 | same | weights' length is not `out x taps x in` (OHWI); channel counts too large for memory land here, since no slice is that long | `BufferTooSmall` | `conv2d weights have 179 elements but 5 out x 9 taps x 4 in (OHWI) needs 180` | E `weights_of_the_wrong_length`, C `weights_of_the_wrong_length`, K `weights_of_the_wrong_length_in_every_operator`, K `huge_sizes_are_rejected_before_any_allocation` |
//! | 15 | same | bias length is not `out` | `ShapeMismatch` | `bottleneck conv bias has 4 elements but there are 5 output channels` | E `bias_of_the_wrong_length`, C `weights_of_the_wrong_length`, K `bias_of_the_wrong_length_in_every_operator` |
//! | 16 | every operator with an `Epilogue` (both of a bottleneck's) | `Epilogue::Clamp` with `min > max` or a NaN bound | `InvalidArgument` | `epilogue clamp min 2 must be <= max 1, neither NaN` | E `epilogue_clamp_min_above_max_or_nan`, K `invalid_clamp_in_every_operator` |
//! | 17 | every operator | `OpOptions::max_isa` names an ISA this CPU (or build) lacks | `UnsupportedIsa` | `ISA neon is not supported by this CPU (available: scalar, avx2, avx512)` | E `unsupported_isa_as_operator_cap`, K `unavailable_isa_cap_in_every_operator` |
//! | 18 | `Inception` | the config has a reduction or projection and the weights do not | `InvalidArgument` | `inception config has a 3x3 reduction but no weights were given for it` | I `mismatched_weights_and_shapes_are_errors`, K `inception_weights_not_matching_the_config` |
//! | 19 | `Inception` | the weights have a reduction or projection the config does not | `InvalidArgument` | `inception weights include a 5x5 reduction the config does not have` | K `inception_weights_not_matching_the_config` |
//! | 20 | any constructor or view | sizes whose products overflow `usize` (`Overflow`, rows 3-5, 13) or fit but exceed memory (`BufferTooSmall`, rows 6, 14): refused before any allocation | `Overflow` / `BufferTooSmall` | `conv1x1 weights have 4 elements but 2147483648 out x 1 taps x 2147483648 in (OHWI) needs 4611686018427387904` | K `huge_sizes_are_rejected_before_any_allocation` |
//! | 36 | `Conv2d`, `Bottleneck` (its KxK) with `OpOptions::algorithm = ConvAlgorithm::Winograd` | the kernel is not 3x3 or 5x5, or the stride not 1 (`ConvAlgorithm::Auto` falls back to direct instead) | `InvalidArgument` | `conv2d: Winograd needs a 3x3 or 5x5 kernel with stride 1, got kernel 7, stride 1`; a rectangle: `got kernel 1x7, stride 1,1` | K `winograd_forced_on_a_shape_it_cannot_compute` |
//! | 37 | `PoolProjection`, `Inception` (with a pool projection) with `OpOptions::pool_schedule = PoolSchedule::Interleaved` | the operator's ISA is not AVX-512, the pool is not 3x3 stride 1 padded by 1, or the input channels are not a multiple of 16 (`PoolSchedule::Auto` runs them separately instead) | `InvalidArgument` | `pool projection: the interleaved pool schedule needs AVX-512, a 3x3 stride-1 pool padded by 1 on every side and input channels a multiple of 16; got ISA avx512, a 3x3 pool with stride 1,1 and padding 1,1,1,1 (top, left, bottom, right), 8 channels` | P `interleaving_needs_a_3x3_same_pool_and_channels_in_sixteens`, K `interleaved_pool_schedule_where_it_cannot_run` |
//!
//! ## Running an operator
//!
//! | # | Operation | Condition | `ErrorKind` | Example message | Tests |
//! |---|---|---|---|---|---|
//! | 21 | `run` of `Conv1x1`, `Conv2d`, `Bottleneck`, `PoolProjection`, `Inception` | input channels are not the operator's | `ShapeMismatch` | `input channels 190 do not match weights' 192`; `Inception`: `input channels 5 do not match the module's 3` | E `input_channels_do_not_match_the_weights`, C `input_channels_do_not_match_the_weights`, K `input_channels_mismatch_in_every_run` |
//! | 22 | `run` of `Conv1x1`, `Conv2d`, `Bottleneck`, `PoolProjection` | output channels are not the operator's | `ShapeMismatch` | `output channels 5 do not match weights' 4` | E `output_channels_do_not_match_the_weights`, C `output_view_shape_does_not_match`, K `output_channels_mismatch_in_every_run` |
//! | 23 | `Conv1x1::run` | output batch, height or width differ from the input's | `ShapeMismatch` | `output batch x height x width 1x3x4 does not match input's 2x3x4` | E `output_spatial_shape_does_not_match_the_input` |
//! | 24 | `run` of `Conv2d`, `MaxPool2d`, `Bottleneck`, `PoolProjection`, `Inception` | the output view's shape is not `output_shape(input)` | `ShapeMismatch` | `maxpool output shape 1x4x4x3 does not match the expected 1x2x2x3` | C `output_view_shape_does_not_match`, I `mismatched_weights_and_shapes_are_errors`, K `output_shape_mismatch_in_every_run` |
//! | 25 | `run` and `output_shape` of `Conv2d`, `MaxPool2d`, `Bottleneck`, `PoolProjection`; `Conv2d::macs` | the window is larger than the padded input | `InvalidArgument` | `conv2d kernel 5 is larger than the padded input 4x5 (2x3 plus padding 1+1 rows, 1+1 columns)`; a rectangular window: `maxpool window 5x2 is larger than ...` | C `kernel_larger_than_the_padded_input`, P `bad_pool_descriptors_are_errors`, K `window_larger_than_the_padded_input_in_every_run` |
//! | 26 | `output_shape` of `Conv2d`, `MaxPool2d`, `Bottleneck`, `PoolProjection`; `Conv2d::macs` | the height or width plus the padding overflows `usize` (a shape not from a view: a view is never that large) | `Overflow` | `conv2d padded input size overflows usize` | K `padded_input_size_overflowing_usize` |
//!
//! ## ISA selection
//!
//! | # | Operation | Condition | `ErrorKind` | Example message | Tests |
//! |---|---|---|---|---|---|
//! | 27 | `"...".parse::<Isa>()` | not `scalar`, `avx2`, `avx512`, `neon` (trimmed, any case) | `UnsupportedIsa` | `unknown ISA 'foo': expected one of scalar, avx2, avx512, neon` | E `unknown_isa_name` |
//! | 28 | `set_max_isa(Some(isa))` | this CPU lacks `isa` (the cap in force is unchanged) | `UnsupportedIsa` | `ISA neon is not supported by this CPU (available: scalar, avx2, avx512)` | K `set_max_isa_with_an_unavailable_isa` |
//! | 29 | `isa::max_isa`, `isa::resolve`, every constructor | `INCEPT_MAX_ISA` is not an ISA name (and no `set_max_isa` cap overrides it) | `UnsupportedIsa` | `INCEPT_MAX_ISA: unknown ISA 'avx-1024': expected one of scalar, avx2, avx512, neon` | K `incept_max_isa_environment` |
//! | 30 | `isa::resolve`, every constructor | `INCEPT_MAX_ISA` (or an operator's cap) names an ISA this CPU lacks | `UnsupportedIsa` | `ISA neon is not supported by this CPU (available: scalar, avx2, avx512)` | E `unsupported_isa_as_operator_cap`, K `incept_max_isa_environment` |
//!
//! ## Weights and the reference
//!
//! | # | Operation | Condition | `ErrorKind` | Example message | Tests |
//! |---|---|---|---|---|---|
//! | 31 | `to_ohwi` | data length is not the shape's element count | `BufferTooSmall` | `weights have 71 elements but 4x3x3x2 (out x kh x kw x in) needs 72` | E `to_ohwi_with_the_wrong_length` |
//! | 32 | `to_ohwi`, `WeightShape::element_count` | the element count overflows `usize` | `Overflow` | `weight count overflows usize` | E `to_ohwi_with_the_wrong_length` |
//! | 33 | `inception_reference` | anything `Inception::new` refuses (rows 12-19) | as there | `inception weights include a 3x3 reduction the config does not have` | K `inception_reference_errors` |
//! | 34 | `inception_reference` | the shape's channels are not the module's, or the input's length is not the shape's element count | `ShapeMismatch` | `reference input 1x2x2x4 does not match the module's 3 channels` | K `inception_reference_errors` |
//! | 35 | `inception_reference` | the shape's element count overflows `usize` | `Overflow` | `tensor element count overflows usize` | K `inception_reference_errors` |
//!
//! ## Errors that validation makes unreachable
//!
//! These exist so that a bug in incept is reported instead of becoming undefined behaviour or a
//! panic. No input should produce them; the `api_bad_input` fuzz target asserts that
//! `ErrorKind::Internal` never appears.
//!
//! | Operation | Condition | `ErrorKind` | Example message |
//! |---|---|---|---|
//! | any `run` | a microkernel's bounds check (`run_tile`, `run_pool_line`) refused a tile: the operator computed an address outside the views | `Internal` | `conv2d: internal error, microkernel refused a tile (Output)` |
//! | constructors | the packed weight buffer's size overflows `usize` (needs a weights slice longer than `usize::MAX / 32`) | `Overflow` | `packed weight block overflows usize` |
//! | constructors | an ISA was detected but this build has no kernel for it (detection only offers ISAs with kernels) | `UnsupportedIsa` | `no conv kernel for ISA avx512 in this build` |
//!
//! ## Guarantees that are not errors
//!
//! * Operators are `Send + Sync`: any number of threads may run the same packed operator on
//!   different data at once, and each gets the bits one thread alone would (K
//!   `concurrent_runs_match_one_thread`; `tests/miri.rs` runs a two-thread version under Miri).
//! * A refused `run` writes nothing, and a successful one writes only the output view (the
//!   `api_bad_input` fuzz target checks both on arbitrary views).
