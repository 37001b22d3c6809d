// include/incept.h compiles as C++17 (extern "C", no C-only constructs) and its types work with
// RAII. Syntax-checked only (make -C examples/c header-check), never linked.
#include "incept.h"

#include <memory>
#include <type_traits>

static_assert(std::is_standard_layout<incept_tensor>::value, "plain C struct");
static_assert(std::is_trivially_copyable<incept_inception_desc>::value, "plain C struct");
static_assert(INCEPT_OK == 0, "success is 0");

struct InceptionDeleter {
  void operator()(incept_inception *module) const { incept_inception_destroy(module); }
};
using InceptionPtr = std::unique_ptr<incept_inception, InceptionDeleter>;

inline InceptionPtr make_module(const incept_inception_desc &desc,
                                const incept_inception_weights &weights) {
  incept_inception *raw = nullptr;
  if (incept_inception_create(&desc, &weights, &raw) != INCEPT_OK) return nullptr;
  return InceptionPtr(raw);
}

inline incept_status run(const InceptionPtr &module, const incept_tensor &x,
                         const incept_tensor_mut &y) {
  return incept_inception_run(module.get(), &x, &y, 0);
}
