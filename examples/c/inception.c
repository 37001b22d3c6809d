/*
 * GoogLeNet inception 3a (28x28x192 -> 28x28x256) through incept's C API, checked against a
 * naive C reference on 64 pixels (corners, borders, interior) x all 256 channels.
 *
 *   make -C examples/c          # builds libincept.a (cargo, feature capi), this program, runs it
 *
 * The data are small integers, so every sum is exact in float whatever the summation order:
 * incept and the reference must agree exactly (a tiny tolerance is kept anyway). Exits 0 when
 * everything matches, 1 otherwise.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incept.h"

enum { H = 28, W = 28, CIN = 192, C1 = 64, R3 = 96, C3 = 128, R5 = 16, C5 = 32, CP = 32 };
enum { COUT = C1 + C3 + C5 + CP };

#define CHECK(call)                                                                           \
  do {                                                                                        \
    enum incept_status status_ = (call);                                                      \
    if (status_ != INCEPT_OK) {                                                               \
      fprintf(stderr, "%s failed (status %d): %s\n", #call, (int)status_, incept_last_error()); \
      return 1;                                                                               \
    }                                                                                         \
  } while (0)

/* An integer in -2..2 (times `scale`) from a hash of (i, seed). */
static float value(uint32_t i, uint32_t seed, float scale) {
  uint32_t h = (i + 1u) * 2654435761u ^ (seed * 0x9E3779B9u);
  h ^= h >> 16;
  h *= 0x7FEB352Du;
  h ^= h >> 15;
  return scale * (float)((int)(h % 5u) - 2);
}

static float *filled(size_t n, uint32_t seed, float scale) {
  float *p = malloc(n * sizeof *p);
  if (!p) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  for (size_t i = 0; i < n; i++) p[i] = value((uint32_t)i, seed, scale);
  return p;
}

/* One convolution's weights (OHWI) and bias. */
struct conv {
  float *w, *b;
  size_t w_len, b_len;
};

static struct conv make_conv(size_t out, size_t taps_x_in, uint32_t seed) {
  struct conv c = {filled(out * taps_x_in, seed, 1.0f), filled(out, seed + 100, 4.0f),
                   out * taps_x_in, out};
  return c;
}

static incept_conv_params params(const struct conv *c) {
  incept_conv_params p = {c->w, c->w_len, c->b, c->b_len};
  return p;
}

/* ---- the naive reference, in double ---------------------------------------------------- */

static float relu(double v) { return v > 0.0 ? (float)v : 0.0f; }

/* 1x1 convolution + ReLU at input pixel (y, x): out[cout]. */
static void ref_1x1(const float *in, int y, int x, const struct conv *c, int cout, float *out) {
  const float *px = in + ((size_t)y * W + x) * CIN;
  for (int o = 0; o < cout; o++) {
    double s = c->b[o];
    for (int i = 0; i < CIN; i++) s += (double)c->w[(size_t)o * CIN + i] * px[i];
    out[o] = relu(s);
  }
}

/* 1x1 reduction to r channels, then k x k "same" convolution + ReLU at (y, x): out[cout]. */
static void ref_branch(const float *in, int y, int x, const struct conv *red, int r, int k,
                       const struct conv *c, int cout, float *out) {
  float reduced[R3];
  double acc[C3];
  for (int o = 0; o < cout; o++) acc[o] = c->b[o];
  for (int ky = 0; ky < k; ky++) {
    for (int kx = 0; kx < k; kx++) {
      int iy = y + ky - k / 2, ix = x + kx - k / 2;
      if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue; /* zero padding */
      ref_1x1(in, iy, ix, red, r, reduced);
      for (int o = 0; o < cout; o++)
        for (int i = 0; i < r; i++)
          acc[o] += (double)c->w[(((size_t)o * k + ky) * k + kx) * r + i] * reduced[i];
    }
  }
  for (int o = 0; o < cout; o++) out[o] = relu(acc[o]);
}

/* 3x3 max-pool (stride 1, padding never wins), then 1x1 projection + ReLU at (y, x). */
static void ref_pool(const float *in, int y, int x, const struct conv *proj, float *out) {
  float pooled[CIN];
  for (int i = 0; i < CIN; i++) pooled[i] = -INFINITY;
  for (int iy = y - 1; iy <= y + 1; iy++)
    for (int ix = x - 1; ix <= x + 1; ix++)
      if (iy >= 0 && iy < H && ix >= 0 && ix < W)
        for (int i = 0; i < CIN; i++) {
          float v = in[((size_t)iy * W + ix) * CIN + i];
          if (v > pooled[i]) pooled[i] = v;
        }
  for (int o = 0; o < CP; o++) {
    double s = proj->b[o];
    for (int i = 0; i < CIN; i++) s += (double)proj->w[(size_t)o * CIN + i] * pooled[i];
    out[o] = relu(s);
  }
}

int main(void) {
  printf("incept %s: GoogLeNet inception 3a, %dx%dx%d -> %dx%dx%d\n", incept_version(), H, W,
         CIN, H, W, COUT);

  /* Weights, in incept_inception_weights order; incept copies them at creation. */
  struct conv c1 = make_conv(C1, CIN, 1), r3 = make_conv(R3, CIN, 2),
              c3 = make_conv(C3, 9 * R3, 3), r5 = make_conv(R5, CIN, 4),
              c5 = make_conv(C5, 25 * R5, 5), cp = make_conv(CP, CIN, 6);
  incept_inception_desc desc = {CIN, C1, R3, C3, R5, C5, CP, INCEPT_ISA_AUTO,
                               INCEPT_ALGORITHM_AUTO, INCEPT_ACCURACY_EXACT};
  incept_inception_weights weights = {params(&c1), params(&r3), params(&c3),
                                      params(&r5), params(&c5), params(&cp)};
  incept_inception *module = NULL;
  CHECK(incept_inception_create(&desc, &weights, &module));

  size_t in_len = (size_t)H * W * CIN, out_len = (size_t)H * W * COUT;
  float *in = filled(in_len, 7, 1.0f);
  float *out = malloc(out_len * sizeof *out), *out2 = malloc(out_len * sizeof *out2);
  if (!out || !out2) return 1;
  incept_tensor x = {in, in_len, 1, H, W, CIN, 0, 0};
  incept_tensor_mut y = {out, out_len, 1, H, W, COUT, 0, 0};
  incept_tensor_mut y2 = {out2, out_len, 1, H, W, COUT, 0, 0};

  CHECK(incept_inception_run(module, &x, &y, 0));  /* rayon's global pool */
  CHECK(incept_inception_run(module, &x, &y2, 2)); /* the module's own 2-thread pool */
  if (memcmp(out, out2, out_len * sizeof *out) != 0) {
    fprintf(stderr, "FAIL: results differ between thread counts\n");
    return 1;
  }

  /* Misuse is a status and a message, not a crash: reading channels 0..192 of the buffer the
   * module writes (an in-place run) is refused. */
  incept_tensor in_place = {out2, out_len, 1, H, W, CIN, COUT, 0};
  if (incept_inception_run(module, &in_place, &y2, 1) != INCEPT_OVERLAP) {
    fprintf(stderr, "FAIL: an in-place run was not refused\n");
    return 1;
  }
  printf("in-place run refused as expected: %s\n", incept_last_error());

  /* 64 sampled pixels: rows and columns at the borders, next to them, and in the middle. */
  static const int coords[8] = {0, 1, 2, 13, 14, 25, 26, 27};
  long checked = 0, bad = 0, positive = 0;
  double max_err = 0.0;
  float want[COUT];
  for (int a = 0; a < 8; a++) {
    for (int b = 0; b < 8; b++) {
      int py = coords[a], px = coords[b];
      ref_1x1(in, py, px, &c1, C1, want);
      ref_branch(in, py, px, &r3, R3, 3, &c3, C3, want + C1);
      ref_branch(in, py, px, &r5, R5, 5, &c5, C5, want + C1 + C3);
      ref_pool(in, py, px, &cp, want + C1 + C3 + C5);
      const float *got = out + ((size_t)py * W + px) * COUT;
      for (int ch = 0; ch < COUT; ch++) {
        double err = fabs((double)got[ch] - want[ch]);
        if (err > max_err) max_err = err;
        if (err > 1e-4 * (1.0 + fabs(want[ch]))) {
          if (bad++ < 10)
            fprintf(stderr, "mismatch at y=%d x=%d channel %d: got %g, want %g\n", py, px, ch,
                    got[ch], want[ch]);
        }
        positive += want[ch] > 0.0f;
        checked++;
      }
    }
  }
  printf("checked %ld outputs (%ld positive) against the C reference: %ld mismatches, max error %g\n",
         checked, positive, bad, max_err);

  CHECK(incept_inception_destroy(module));
  CHECK(incept_inception_destroy(NULL)); /* a no-op */
  free(in);
  free(out);
  free(out2);
  struct conv *all[6] = {&c1, &r3, &c3, &r5, &c5, &cp};
  for (int i = 0; i < 6; i++) {
    free(all[i]->w);
    free(all[i]->b);
  }
  if (bad != 0 || positive == 0) {
    fprintf(stderr, "FAIL\n");
    return 1;
  }
  printf("OK\n");
  return 0;
}
