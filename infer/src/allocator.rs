//! How the process keeps the memory it frees: the glibc allocator tuned for repeated model
//! calls. Opt-in, process-wide: a binary calls [`keep_freed_memory`] once, first thing in
//! `main`, before it starts any thread.
//!
//! Why: each model call allocates and frees the same large tensors again (tract: every node's
//! output, for every step of the LSTM's scan; batch 64 x 512 gates is 128 KiB). By default
//! glibc serves allocations from 128 KiB up with `mmap` (the threshold only grows after such a
//! block is freed), and gives the free top of each thread's heap back to the kernel once it
//! passes 128 KiB. So every call faulted fresh zeroed pages in again: the profile of tract on
//! one thread at batch 64 spent about 4 % in the kernel's page-fault and unmap paths and 1.8 %
//! in `memset`. With the three settings below, freed blocks stay in the heap for the next
//! call. Measured (exporter bench, tract, 2 threads, old and new builds alternated 9 times;
//! exporter/README.md, tract item 10): page faults 15x fewer, batch 64 +19 %, batch 1024
//! +11 %; ort-cpu, whose arena already reuses its buffers, within its noise.
//!
//! The cost: the resident size no longer falls back after a peak, it stays at the high-water
//! mark of each heap (which the memory limits are sized for anyway, docs/operations.md).

/// Blocks this size and larger still come from `mmap` (and go back to the kernel when freed).
pub const MMAP_THRESHOLD: usize = 32 << 20;
/// Free memory at the top of a heap is given back to the kernel only past this size.
pub const TRIM_THRESHOLD: usize = 256 << 20;
/// Extra memory asked of the kernel whenever a heap grows (not touched, so not resident,
/// until used).
pub const TOP_PAD: usize = 64 << 20;

/// Applies [`MMAP_THRESHOLD`], [`TRIM_THRESHOLD`] and [`TOP_PAD`] to the process's glibc
/// allocator. Returns whether all three took (false on a libc other than glibc, where nothing
/// is changed).
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let set = |param: libc::c_int, value: usize| {
            let value = libc::c_int::try_from(value).unwrap_or(libc::c_int::MAX);
            // SAFETY: mallopt only sets allocator parameters; it is called before the caller
            // starts threads (the documented contract of this function), and any value is
            // accepted or refused by glibc itself (returns 0 then).
            unsafe { libc::mallopt(param, value) == 1 }
        };
        set(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD)
            & set(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD)
            & set(libc::M_TOP_PAD, TOP_PAD)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_takes_every_setting() {
        // The supported platform is Linux with glibc: there all three settings must take.
        assert_eq!(
            keep_freed_memory(),
            cfg!(all(target_os = "linux", target_env = "gnu"))
        );
    }
}
