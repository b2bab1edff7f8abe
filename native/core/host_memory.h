// The C library's heap, tuned for a training loop: every step frees and reallocates the same tensors (tens of MB of
// activations), and glibc's defaults hand part of that memory back to the kernel after each step and fault it in again,
// zeroed, in the next (about 13 000 page faults per step for ResNet-18 at 28 px, batch 128).
#pragma once

namespace simclr {

// Keeps freed heap memory for reuse instead of returning it to the kernel: allocations up to 32 MiB come from the heap
// (glibc's own ceiling for its adaptive threshold, reached at once instead of after the first frees), and the heap is
// trimmed only when over 1 GiB of it is free. Process-wide; peak memory is unchanged, but it stays resident until the
// process exits. Returns false where the C library is not glibc (nothing changed).
bool RetainFreedHostMemory();

}  // namespace simclr
