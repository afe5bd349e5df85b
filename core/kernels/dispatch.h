// Run-time kernel dispatch. The instruction set is chosen once, at the first kernel call:
// the best one that was compiled in and that this CPU has, unless KD_KERNELS says otherwise:
//   KD_KERNELS=ref     scalar references everywhere (auditing: compare a run against it)
//   KD_KERNELS=avx2 | avx512 | neon   that variant (an error if not compiled in or not supported)
//   unset or auto      the best available
// and KD_WINOGRAD=off keeps the direct 3x3 convolution where Winograd would apply
// (core/kernels/winograd.h): its rounding differs from the direct sum's.
// Portable binaries (KD_NATIVE=OFF) thus still run AVX2/AVX-512/NEON code where the CPU has it.
#pragma once
#include <string>
#include <vector>

namespace kd::kernels {

enum class Isa { ref, avx2, avx512, neon };

const char* isa_name(Isa isa);
bool isa_compiled(Isa isa);   // built into this binary
bool isa_supported(Isa isa);  // this CPU can run it
Isa selected_isa();           // the choice (computed once; throws kd::Error on a bad KD_KERNELS)

// Extensions that single kernels need beyond their ISA level (the int8 GEMM's dot products).
bool cpu_has_avx512_vnni();
bool cpu_has_neon_dotprod();

struct KernelVariant {
  std::string kernel, variant, note;
};
// One line per dispatched kernel: what runs on this machine (kd info --kernels).
std::vector<KernelVariant> kernel_variants();

}  // namespace kd::kernels
